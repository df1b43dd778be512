package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/acceptcryptohere/gateway/eventstore"
)

var _ eventstore.Chained = (*Store)(nil)

// errChainMoved: another process appended since the writer read the chain
// head; the batch inserted nothing and is decided again.
var errChainMoved = errors.New("postgres: chain head moved")

// chainHead is the writer's copy of the last link, so that an append reads
// nothing to chain its events; the insert checks it (insertNotify).
type chainHead struct {
	valid bool
	seq   uint64
	hash  []byte
}

func (s *Store) loadHead(ctx context.Context, conn *pgx.Conn) error {
	var seq int64
	var h []byte
	if err := conn.QueryRow(ctx, s.q.chainHead).Scan(&seq, &h); err != nil {
		return fmt.Errorf("postgres: chain head: %w", err)
	}
	s.chain = chainHead{valid: true, seq: uint64(seq), hash: h}
	return nil
}

// ReadChain implements eventstore.Chained.
func (s *Store) ReadChain(ctx context.Context, after uint64, max int) ([]eventstore.ChainLink, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	rows, err := s.pool.Query(ctx, s.q.readChain, int64(after), max)
	if err != nil {
		return nil, fmt.Errorf("postgres: read chain: %w", ctxErr(ctx, err))
	}
	links, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (eventstore.ChainLink, error) {
		var l eventstore.ChainLink
		var seq int64
		e := &l.Event
		err := row.Scan(&seq, &l.Hash, &e.Position.Commit, &e.Position.Prepare, &e.ID, &e.Stream, &e.Version, &e.Type, &e.Data, &e.Metadata, &e.RecordedAt)
		l.Seq = uint64(seq)
		return l, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: read chain: %w", ctxErr(ctx, err))
	}
	return links, nil
}

// ChainHead implements eventstore.Chained.
func (s *Store) ChainHead(ctx context.Context) (uint64, []byte, error) {
	var seq int64
	var h []byte
	if err := s.pool.QueryRow(ctx, s.q.chainHead).Scan(&seq, &h); err != nil {
		return 0, nil, fmt.Errorf("postgres: chain head: %w", ctxErr(ctx, err))
	}
	return uint64(seq), h, nil
}

// chainExisting chains the events written before migration 0002 (or by an
// older build since), in the global log's order, continuing from the head,
// inside the migration's transaction.
func chainExisting(ctx context.Context, tx pgx.Tx, schema string) error {
	t := pgx.Identifier{schema, "events"}.Sanitize()
	head := pgx.Identifier{schema, "chain_head"}.Sanitize()
	var seq int64
	var prev []byte
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM `+head+` FOR UPDATE`).Scan(&seq, &prev); err != nil {
		return fmt.Errorf("chain head: %w", err)
	}
	ch := eventstore.NewChainer()
	var afterTx, afterPos uint64
	const page = 10000
	for {
		rows, err := tx.Query(ctx, `SELECT transaction_id, global_position, event_id, stream, version, type, data, metadata, recorded_at FROM `+t+`
			WHERE chain_seq IS NULL AND (transaction_id, global_position) > ($1::xid8, $2::bigint)
			ORDER BY transaction_id, global_position LIMIT $3`, afterTx, int64(afterPos), page)
		if err != nil {
			return fmt.Errorf("chain existing events: %w", err)
		}
		evs, err := pgx.CollectRows(rows, scanEvent)
		if err != nil {
			return fmt.Errorf("chain existing events: %w", err)
		}
		if len(evs) == 0 {
			break
		}
		positions, seqs := make([]int64, len(evs)), make([]int64, len(evs))
		hashes := make([][]byte, len(evs))
		for i, e := range evs {
			seq++
			prev = ch.Next(nil, prev, uint64(seq), e.ID, e.Stream, e.Version, e.Type, e.Data, e.Metadata, e.RecordedAt)
			positions[i], seqs[i], hashes[i] = int64(e.Position.Prepare), seq, prev
		}
		if _, err := tx.Exec(ctx, `UPDATE `+t+` AS e SET chain_seq = u.seq, chain_hash = u.h
			FROM unnest($1::bigint[], $2::bigint[], $3::bytea[]) AS u(pos, seq, h) WHERE e.global_position = u.pos`, positions, seqs, hashes); err != nil {
			return fmt.Errorf("chain existing events: %w", err)
		}
		last := evs[len(evs)-1].Position
		afterTx, afterPos = last.Commit, last.Prepare
	}
	if _, err := tx.Exec(ctx, `UPDATE `+head+` SET seq = $1, hash = $2`, seq, prev); err != nil {
		return fmt.Errorf("chain head: %w", err)
	}
	return nil
}
