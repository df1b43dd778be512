package webhooks

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// StateCopy is what CopyState carried.
type StateCopy struct {
	Deliveries, Attempts int
	// Checkpoint is the subscriber's position in the target's log, NextSeq
	// the next delivery number there.
	Checkpoint eventstore.Position
	NextSeq    int64
}

// copyPage bounds the rows CopyState holds at once.
const copyPage = 1000

// CopyState carries the webhook delivery state of a gateway whose log was
// copied (picd copy-events) to the target's database, so that a gateway
// started on the copy does not deliver again what was delivered (money
// rule 8), and still delivers what was pending: every delivery with its
// status, body and schedule, every attempt, and the subscriber's checkpoint
// moved to the same event in the target's log (translate maps a source
// position to the target's). Rows already in the target are kept, so a
// second run changes nothing; a target whose own subscriber already made
// other deliveries is refused, since its numbering would clash.
func CopyState(ctx context.Context, from, to sqldb.DB, translate func(context.Context, eventstore.Position) (eventstore.Position, error)) (StateCopy, error) {
	var out StateCopy
	var srcPos string
	var srcSeq int64
	err := from.Read.QueryRowContext(ctx, from.Q(`SELECT position, next_seq FROM webhook_checkpoint WHERE name = ?`), checkpointName).Scan(&srcPos, &srcSeq)
	if err != nil {
		return out, fmt.Errorf("webhooks: source checkpoint: %w", err)
	}
	src, err := eventstore.ParsePosition(srcPos)
	if err != nil {
		return out, fmt.Errorf("webhooks: source checkpoint: %w", err)
	}
	if err := Migrate(ctx, to); err != nil {
		return out, err
	}
	if out.Deliveries, err = copyDeliveries(ctx, from, to); err != nil {
		return out, err
	}
	if out.Attempts, err = copyAttempts(ctx, from, to); err != nil {
		return out, err
	}
	target, err := translate(ctx, src)
	if err != nil {
		return out, fmt.Errorf("webhooks: checkpoint %s in the target log: %w", src, err)
	}
	// Forward only: a target whose subscriber already went further keeps its place.
	tx, err := to.Write.BeginTx(ctx, nil)
	if err != nil {
		return out, err
	}
	defer func() { _ = tx.Rollback() }()
	var curPos string
	var curSeq int64
	if err := tx.QueryRowContext(ctx, to.Q(`SELECT position, next_seq FROM webhook_checkpoint WHERE name = ?`), checkpointName).Scan(&curPos, &curSeq); err != nil {
		return out, fmt.Errorf("webhooks: target checkpoint: %w", err)
	}
	cur, err := eventstore.ParsePosition(curPos)
	if err != nil {
		return out, fmt.Errorf("webhooks: target checkpoint: %w", err)
	}
	out.Checkpoint, out.NextSeq = cur, max(curSeq, srcSeq)
	if cur.Less(target) {
		out.Checkpoint = target
	}
	if _, err := tx.ExecContext(ctx, to.Q(`UPDATE webhook_checkpoint SET position = ?, next_seq = ? WHERE name = ?`),
		out.Checkpoint.String(), out.NextSeq, checkpointName); err != nil {
		return out, fmt.Errorf("webhooks: target checkpoint: %w", err)
	}
	return out, tx.Commit()
}

// copyDeliveries copies webhook_deliveries in pages by seq.
func copyDeliveries(ctx context.Context, from, to sqldb.DB) (int, error) {
	type row struct {
		id                                                  string
		seq                                                 int64
		eventID, position, merchantID, invoiceID, eventType string
		body                                                []byte
		status                                              string
		attempts                                            int64
		next                                                sql.NullInt64
		created, updated                                    int64
	}
	copied := 0
	for after := int64(-1); ; {
		rows, err := from.Read.QueryContext(ctx, from.Q(`SELECT delivery_id, seq, event_id, event_position, merchant_id, invoice_id, event_type,
			body, status, attempt_count, next_attempt_at, created_at, updated_at
			FROM webhook_deliveries WHERE seq > ? ORDER BY seq LIMIT ?`), after, copyPage)
		if err != nil {
			return copied, fmt.Errorf("webhooks: read deliveries: %w", err)
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.seq, &r.eventID, &r.position, &r.merchantID, &r.invoiceID, &r.eventType,
				&r.body, &r.status, &r.attempts, &r.next, &r.created, &r.updated); err != nil {
				rows.Close()
				return copied, fmt.Errorf("webhooks: read deliveries: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return copied, fmt.Errorf("webhooks: read deliveries: %w", err)
		}
		if len(page) == 0 {
			return copied, nil
		}
		tx, err := to.Write.BeginTx(ctx, nil)
		if err != nil {
			return copied, err
		}
		for _, r := range page {
			// A row with the same id is this copy's from an earlier run; a
			// different delivery under the same seq fails on UNIQUE (seq).
			if _, err := tx.ExecContext(ctx, to.Q(`INSERT INTO webhook_deliveries (delivery_id, seq, event_id, event_position, merchant_id, invoice_id,
				event_type, body, status, attempt_count, next_attempt_at, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING`),
				r.id, r.seq, r.eventID, r.position, r.merchantID, r.invoiceID, r.eventType, r.body, r.status, r.attempts, r.next, r.created, r.updated); err != nil {
				_ = tx.Rollback()
				return copied, fmt.Errorf("webhooks: delivery %s (seq %d): %w; the target's gateway made deliveries of its own: copy into a gateway that has not run", r.id, r.seq, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return copied, err
		}
		copied += len(page)
		after = page[len(page)-1].seq
	}
}

// copyAttempts copies webhook_attempts in pages by (delivery_id, attempt).
func copyAttempts(ctx context.Context, from, to sqldb.DB) (int, error) {
	type row struct {
		id           string
		attempt, at  int64
		code         sql.NullInt64
		errText      string
		latency      int64
		responseBody string
	}
	copied := 0
	afterID, afterN := "", int64(-1)
	for {
		rows, err := from.Read.QueryContext(ctx, from.Q(`SELECT delivery_id, attempt, at, status_code, error, latency_ms, response_body
			FROM webhook_attempts WHERE delivery_id > ? OR (delivery_id = ? AND attempt > ?) ORDER BY delivery_id, attempt LIMIT ?`),
			afterID, afterID, afterN, copyPage)
		if err != nil {
			return copied, fmt.Errorf("webhooks: read attempts: %w", err)
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.attempt, &r.at, &r.code, &r.errText, &r.latency, &r.responseBody); err != nil {
				rows.Close()
				return copied, fmt.Errorf("webhooks: read attempts: %w", err)
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return copied, fmt.Errorf("webhooks: read attempts: %w", err)
		}
		if len(page) == 0 {
			return copied, nil
		}
		tx, err := to.Write.BeginTx(ctx, nil)
		if err != nil {
			return copied, err
		}
		for _, r := range page {
			if _, err := tx.ExecContext(ctx, to.Q(`INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, latency_ms, response_body)
				VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (delivery_id, attempt) DO NOTHING`),
				r.id, r.attempt, r.at, r.code, r.errText, r.latency, r.responseBody); err != nil {
				_ = tx.Rollback()
				return copied, fmt.Errorf("webhooks: attempt %s/%d: %w", r.id, r.attempt, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return copied, err
		}
		copied += len(page)
		afterID, afterN = page[len(page)-1].id, page[len(page)-1].attempt
	}
}

// HasState reports whether db holds the webhook tables (a log copied from
// a bare event store has none to carry).
func HasState(ctx context.Context, db sqldb.DB) (bool, error) {
	q := `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'webhook_checkpoint'`
	if db.Dialect == sqldb.Postgres {
		q = `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'webhook_checkpoint'`
	}
	var n int64
	if err := db.Read.QueryRowContext(ctx, q).Scan(&n); err != nil {
		return false, fmt.Errorf("webhooks: look for the webhook tables: %w", err)
	}
	return n == 1, nil
}
