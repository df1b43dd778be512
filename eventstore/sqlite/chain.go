package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
)

var _ eventstore.Chained = (*Store)(nil)

// chainHead is the writer's copy of the last stored link, so that an append
// reads nothing to chain its events: the writer inserts at head+1
// explicitly, and if another process appended meanwhile the insert hits
// the primary key, the batch fails, and the head is read again.
type chainHead struct {
	valid bool
	pos   int64
	hash  []byte
}

// loadHead reads the last link inside the writer's transaction. A tail
// without hashes (rows an older build appended) is chained first.
func (s *Store) loadHead(ctx context.Context, tx *sql.Tx) error {
	if err := backfillChain(ctx, tx, 0); err != nil {
		return err
	}
	var pos int64
	var h []byte
	err := tx.QueryRowContext(ctx, `SELECT global_position, chain_hash FROM events ORDER BY global_position DESC LIMIT 1`).Scan(&pos, &h)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		s.chain = chainHead{valid: true, pos: 0, hash: append([]byte(nil), eventstore.Genesis...)}
		return nil
	case err != nil:
		return fmt.Errorf("chain head: %w", err)
	}
	s.chain = chainHead{valid: true, pos: pos, hash: h}
	return nil
}

// isPositionTaken: another process appended at the position the writer
// chose, so the cached chain head is stale.
func isPositionTaken(err error) bool {
	return err != nil && strings.Contains(err.Error(), "events.global_position")
}

func backfillChain(ctx context.Context, tx *sql.Tx, limit int) error {
	_, err := backfillSome(ctx, tx, limit)
	return err
}

// backfillSome chains rows without a hash, in position order, from the
// first such row; at most limit rows (0: all). It returns how many it
// chained: fewer than limit means none remain.
func backfillSome(ctx context.Context, tx *sql.Tx, limit int) (int, error) {
	// The last row hashed means every row is (rows are chained in order and
	// appends chain theirs): one index probe on every open.
	var last int64
	var lastHash []byte
	err := tx.QueryRowContext(ctx, `SELECT global_position, chain_hash FROM events ORDER BY global_position DESC LIMIT 1`).Scan(&last, &lastHash)
	if errors.Is(err, sql.ErrNoRows) || (err == nil && lastHash != nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("chain backfill: %w", err)
	}
	var first int64
	if err := tx.QueryRowContext(ctx, `SELECT min(global_position) FROM events WHERE chain_hash IS NULL`).Scan(&first); err != nil {
		return 0, fmt.Errorf("chain backfill: %w", err)
	}
	prev := append([]byte(nil), eventstore.Genesis...)
	err = tx.QueryRowContext(ctx, `SELECT chain_hash FROM events WHERE global_position < ? ORDER BY global_position DESC LIMIT 1`, first).Scan(&prev)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("chain backfill: %w", err)
	}
	q := `SELECT global_position, event_id, stream, version, type, data, metadata, recorded_at FROM events WHERE global_position >= ? ORDER BY global_position`
	args := []any{first}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, fmt.Errorf("chain backfill: %w", err)
	}
	type update struct {
		pos  int64
		hash []byte
	}
	var ups []update
	ch := eventstore.NewChainer()
	for rows.Next() {
		var pos, version, at int64
		var id, stream, typ string
		var data, meta []byte
		if err := rows.Scan(&pos, &id, &stream, &version, &typ, &data, &meta, &at); err != nil {
			rows.Close()
			return 0, fmt.Errorf("chain backfill: %w", err)
		}
		prev = ch.Next(nil, prev, uint64(pos), id, stream, version, typ, data, meta, time.UnixMicro(at))
		ups = append(ups, update{pos, prev})
	}
	if err := rows.Close(); err != nil {
		return 0, fmt.Errorf("chain backfill: %w", err)
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("chain backfill: %w", err)
	}
	st, err := tx.PrepareContext(ctx, `UPDATE events SET chain_hash = ? WHERE global_position = ?`)
	if err != nil {
		return 0, fmt.Errorf("chain backfill: %w", err)
	}
	defer st.Close()
	for _, u := range ups {
		if _, err := st.ExecContext(ctx, u.hash, u.pos); err != nil {
			return 0, fmt.Errorf("chain backfill: %w", err)
		}
	}
	return len(ups), nil
}

// chainExisting gives every row written before the chain its hash, in
// transactions of chunk rows, so that a large log is migrated without one
// huge transaction. Idempotent: it continues where a crash left it.
func chainExisting(ctx context.Context, db *sql.DB) error {
	const chunk = 20000
	for {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("sqlite: chain existing events: %w", err)
		}
		n, err := backfillSome(ctx, tx, chunk)
		if err != nil {
			_ = tx.Rollback()
			return fmt.Errorf("sqlite: %w", err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("sqlite: chain existing events: %w", err)
		}
		if n < chunk {
			return nil
		}
	}
}

// ReadChain implements eventstore.Chained: the events after seq (the
// global position) with their stored hashes.
func (s *Store) ReadChain(ctx context.Context, after uint64, max int) ([]eventstore.ChainLink, error) {
	if s.isClosed() {
		return nil, eventstore.ErrClosed
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT global_position, event_id, stream, version, type, data, metadata, recorded_at, chain_hash
		FROM events WHERE global_position > ? ORDER BY global_position LIMIT ?`, int64(after), max)
	if err != nil {
		return nil, fmt.Errorf("sqlite: read chain: %w", err)
	}
	defer rows.Close()
	var out []eventstore.ChainLink
	for rows.Next() {
		var l eventstore.ChainLink
		var pos, at int64
		e := &l.Event
		if err := rows.Scan(&pos, &e.ID, &e.Stream, &e.Version, &e.Type, &e.Data, &e.Metadata, &at, &l.Hash); err != nil {
			return nil, fmt.Errorf("sqlite: read chain: %w", err)
		}
		l.Seq = uint64(pos)
		e.Position = eventstore.Position{Commit: uint64(pos)}
		e.RecordedAt = time.UnixMicro(at).UTC()
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: read chain: %w", err)
	}
	return out, nil
}

// ChainHead implements eventstore.Chained.
func (s *Store) ChainHead(ctx context.Context) (uint64, []byte, error) {
	var pos int64
	var h []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT global_position, chain_hash FROM events ORDER BY global_position DESC LIMIT 1`).Scan(&pos, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, eventstore.Genesis, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("sqlite: chain head: %w", err)
	}
	return uint64(pos), h, nil
}
