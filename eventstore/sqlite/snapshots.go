package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/eventstore"
)

var _ eventstore.Snapshots = (*Store)(nil)

// LoadSnapshot implements eventstore.Snapshots.
func (s *Store) LoadSnapshot(ctx context.Context, stream, kind string) (eventstore.Snapshot, bool, error) {
	if s.isClosed() {
		return eventstore.Snapshot{}, false, eventstore.ErrClosed
	}
	snap := eventstore.Snapshot{Stream: stream, Kind: kind}
	err := s.rdb.QueryRowContext(ctx, `SELECT version, data FROM snapshots WHERE stream = ? AND kind = ?`, stream, kind).
		Scan(&snap.Version, &snap.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return eventstore.Snapshot{}, false, nil
	}
	if err != nil {
		return eventstore.Snapshot{}, false, fmt.Errorf("sqlite: load snapshot %s of %s: %w", kind, stream, err)
	}
	return snap, true, nil
}

// SaveSnapshot implements eventstore.Snapshots. It writes outside the
// appends' batches: a snapshot is not part of the log.
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) error {
	if err := eventstore.ValidateSnapshot(snap); err != nil {
		return fmt.Errorf("sqlite: save snapshot: %w", err)
	}
	if s.isClosed() {
		return eventstore.ErrClosed
	}
	_, err := s.wdb.ExecContext(ctx, `INSERT INTO snapshots (stream, kind, version, data, saved_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (stream, kind) DO UPDATE SET version = excluded.version, data = excluded.data, saved_at = excluded.saved_at
		WHERE excluded.version > snapshots.version`,
		snap.Stream, snap.Kind, snap.Version, snap.Data, s.now().UnixMicro())
	if err != nil {
		return fmt.Errorf("sqlite: save snapshot %s of %s: %w", snap.Kind, snap.Stream, err)
	}
	return nil
}

// EventVersion implements eventstore.Snapshots through the event_id key.
func (s *Store) EventVersion(ctx context.Context, stream, id string) (int64, error) {
	if s.isClosed() {
		return -1, eventstore.ErrClosed
	}
	var v int64
	err := s.rdb.QueryRowContext(ctx, `SELECT version FROM events WHERE event_id = ? AND stream = ?`, id, stream).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("sqlite: find event %s in %s: %w", id, stream, err)
	}
	return v, nil
}
