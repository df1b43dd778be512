package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/acceptcryptohere/gateway/eventstore"
)

var _ eventstore.Snapshots = (*Store)(nil)

// LoadSnapshot implements eventstore.Snapshots.
func (s *Store) LoadSnapshot(ctx context.Context, stream, kind string) (eventstore.Snapshot, bool, error) {
	if s.closed.Load() {
		return eventstore.Snapshot{}, false, eventstore.ErrClosed
	}
	snap := eventstore.Snapshot{Stream: stream, Kind: kind}
	err := s.pool.QueryRow(ctx, `SELECT version, data FROM `+s.table("snapshots")+` WHERE stream = $1 AND kind = $2`, stream, kind).
		Scan(&snap.Version, &snap.Data)
	if errors.Is(err, pgx.ErrNoRows) {
		return eventstore.Snapshot{}, false, nil
	}
	if err != nil {
		return eventstore.Snapshot{}, false, fmt.Errorf("postgres: load snapshot %s of %q: %w", kind, stream, err)
	}
	return snap, true, nil
}

// SaveSnapshot implements eventstore.Snapshots. It writes outside the
// append lock: a snapshot is not part of the log.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := eventstore.ValidateSnapshot(snap); err != nil {
		return fmt.Errorf("postgres: save snapshot: %w", err)
	}
	if s.closed.Load() {
		return eventstore.ErrClosed
	}
	t := s.table("snapshots")
	_, err := s.pool.Exec(ctx, `INSERT INTO `+t+` AS old (stream, kind, version, data) VALUES ($1, $2, $3, $4)
		ON CONFLICT (stream, kind) DO UPDATE SET version = excluded.version, data = excluded.data, saved_at = now()
		WHERE excluded.version > old.version`,
		snap.Stream, snap.Kind, snap.Version, snap.Data)
	if err != nil {
		return fmt.Errorf("postgres: save snapshot %s of %q: %w", snap.Kind, snap.Stream, err)
	}
	return nil
}

// EventVersion implements eventstore.Snapshots through the event_id key.
func (s *Store) EventVersion(ctx context.Context, stream, id string) (int64, error) {
	if s.closed.Load() {
		return -1, eventstore.ErrClosed
	}
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT version FROM `+s.table("events")+` WHERE event_id = $1 AND stream = $2`, id, stream).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("postgres: find event %s in %q: %w", id, stream, err)
	}
	return v, nil
}

// table is the schema-qualified name of one of the store's tables.
func (s *Store) table(name string) string { return pgx.Identifier{s.schema, name}.Sanitize() }
