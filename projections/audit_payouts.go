package projections

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// payoutComparer compares the payouts' read-model rows with the log. A
// payout the log has ended (confirmed, failed, canceled) can change no
// more, so it is compared then, in batches looked up by id, and let go:
// the audit holds the payouts open at a point of the log, not every
// payout ever made (at 10M generated events the payouts had been a
// third of its heap, and a merchant in instant mode makes one per paid
// invoice). The payouts still open at the log's end are compared last.
type payoutComparer struct {
	db    sqldb.DB
	skip  bool
	batch int // payouts per lookup (0: compareBatch)
	want  map[string]*auditPayout
	// found counts the read-model rows the lookups found: more rows in the
	// table are payouts the log does not have.
	found int64
	// statuses counts the log's payouts by status.
	statuses map[string]int64
	// ended counts the payouts let go; most is the most payouts held at
	// once (for the tests).
	ended, most int
}

// end lets a payout the log has just ended go: it is compared with its
// row once the batch is full.
func (c *payoutComparer) end(ctx context.Context, rep *AuditReport, id string) error {
	p := rep.payouts[id]
	if p == nil {
		return nil
	}
	c.most = max(c.most, len(rep.payouts))
	delete(rep.payouts, id)
	c.ended++
	if rep.addresses {
		if rep.endedStatus == nil {
			rep.endedStatus = map[string]string{}
		}
		rep.endedStatus[id] = p.status
	}
	return c.add(ctx, rep, id, p)
}

func (c *payoutComparer) add(ctx context.Context, rep *AuditReport, id string, p *auditPayout) error {
	if c.statuses == nil {
		c.statuses = map[string]int64{}
	}
	c.statuses[p.status]++
	if c.skip {
		return nil
	}
	if c.want == nil {
		c.want = make(map[string]*auditPayout, compareBatch)
	}
	c.want[id] = p
	if len(c.want) < cmp.Or(c.batch, compareBatch) {
		return nil
	}
	return c.flush(ctx, rep)
}

// flush compares the batch: merchant, status, amount, transaction and
// network fee.
func (c *payoutComparer) flush(ctx context.Context, rep *AuditReport) error {
	if len(c.want) == 0 {
		return nil
	}
	ids := make([]any, 0, len(c.want))
	for id := range c.want {
		ids = append(ids, id)
	}
	q := c.db.Q(`SELECT payout_id, merchant_id, status, amount, txid, network_fee FROM payouts WHERE payout_id IN (?` +
		strings.Repeat(", ?", len(ids)-1) + `)`)
	rows, err := c.db.Read.QueryContext(ctx, q, ids...)
	if err != nil {
		return fmt.Errorf("audit: payouts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, merchantID, status, amount, txid, fee string
		if err := rows.Scan(&id, &merchantID, &status, &amount, &txid, &fee); err != nil {
			return err
		}
		rep.RowsCompared++
		c.found++
		want := c.want[id]
		if want == nil {
			continue // a duplicate id: the table's key forbids it
		}
		delete(c.want, id)
		wantFee := ""
		if want.networkFee != nil {
			wantFee = want.networkFee.String()
		}
		if merchantID != want.merchantID || status != want.status || amount != want.amount.String() || txid != want.txid || fee != wantFee {
			rep.problem("payout %s: read model %s/%s/%s/%s/%s, log %s/%s/%s/%s/%s", id, merchantID, status, amount, txid, fee,
				want.merchantID, want.status, want.amount, want.txid, wantFee)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for id := range c.want {
		rep.problem("payout %s: missing from the read model", id)
	}
	clear(c.want)
	return nil
}

// comparePayouts ends the payouts' comparison: those still open, rows of
// payouts the log does not have, and the counts by status the projector
// keeps (the picd_payouts gauge).
func (rep *AuditReport) comparePayouts(ctx context.Context, store eventstore.Store, db sqldb.DB, c *payoutComparer, through eventstore.Position) error {
	c.most = max(c.most, len(rep.payouts))
	for id, p := range rep.payouts {
		if err := c.add(ctx, rep, id, p); err != nil {
			return err
		}
	}
	if c.skip {
		return nil
	}
	if err := c.flush(ctx, rep); err != nil {
		return err
	}
	var rowsTotal int64
	if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM payouts`).Scan(&rowsTotal); err != nil {
		return fmt.Errorf("audit: payouts: %w", err)
	}
	if extra := rowsTotal - c.found; extra > 0 {
		if err := rep.extraPayoutRows(ctx, store, db, through, extra); err != nil {
			return err
		}
	}
	return rep.compareStatusCounts(ctx, db, "payout_status_counts", "payouts", c.statuses)
}

// extraPayoutRows names the read model's payouts the log does not have:
// it reads the request each row names (its stream and version) until it
// has found n rows whose request is not there, or is another payout's, or
// came after the audit's last event. The slow path of a read model that
// is wrong already.
func (rep *AuditReport) extraPayoutRows(ctx context.Context, store eventstore.Store, db sqldb.DB, through eventstore.Position, n int64) error {
	q := db.Q(`SELECT payout_id, request_stream, request_version FROM payouts WHERE payout_id > ? ORDER BY payout_id LIMIT 1000`)
	after := ""
	for n > 0 {
		rows, err := db.Read.QueryContext(ctx, q, after)
		if err != nil {
			return fmt.Errorf("audit: payouts: %w", err)
		}
		type row struct {
			id, stream string
			version    int64
		}
		var page []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.stream, &r.version); err != nil {
				rows.Close()
				return err
			}
			page = append(page, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(page) == 0 {
			return nil
		}
		after = page[len(page)-1].id
		for _, r := range page {
			ok, err := requestedAt(ctx, store, r.stream, r.version, r.id, through)
			if err != nil {
				return err
			}
			if !ok {
				rep.problem("payout %s: in the read model, not in the log", r.id)
				if n--; n == 0 {
					return nil
				}
			}
		}
	}
	return nil
}

// requestedAt reports whether the event at stream's version is the
// request of payout id, at or before through.
func requestedAt(ctx context.Context, store eventstore.Store, stream string, version int64, id string, through eventstore.Position) (bool, error) {
	recs, err := store.ReadStream(ctx, stream, version, 1)
	if err != nil {
		return false, err
	}
	if len(recs) == 0 || recs[0].Version != version || recs[0].Type != domain.TypePayoutRequested || through.Less(recs[0].Position) {
		return false, nil
	}
	e, err := domain.DecodeStored(recs[0].Type, recs[0].Data, recs[0].Metadata)
	if err != nil {
		return false, nil
	}
	req, ok := e.(domain.PayoutRequested)
	return ok && req.PayoutID == id, nil
}
