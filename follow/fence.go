package follow

import (
	"context"
	"database/sql"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// FenceAppends returns store with its appends fenced: an append whose
// context carries a fence (sqldb.WithFence: a leader's background loop)
// runs while a transaction of db holds the fence, so a takeover waits for
// it and a stale leader's append is refused before it is sent. The event
// store writes on connections of its own, so the append is not inside
// that transaction: a holder paused between the check and the append for
// longer than the lease's bound could still append once; the background
// commands all have ids derived from what they handle, so such an append
// is one the new leader makes (or made) too, recorded once.
// Appends without a fence (HTTP requests) go straight to store.
func FenceAppends(store eventstore.Store, db *sql.DB) eventstore.Store {
	return &fencedStore{Store: store, db: db}
}

type fencedStore struct {
	eventstore.Store
	db *sql.DB
}

func (s *fencedStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if sqldb.FenceOf(ctx) == nil {
		return s.Store.Append(ctx, stream, expected, events)
	}
	// The fence is checked once, here, whatever kind of handle db is.
	tx, err := s.db.BeginTx(sqldb.WithFence(ctx, nil), nil)
	if err != nil {
		return eventstore.AppendResult{}, err
	}
	defer tx.Rollback()
	if err := sqldb.CheckFence(ctx, tx); err != nil {
		return eventstore.AppendResult{}, err
	}
	res, err := s.Store.Append(ctx, stream, expected, events)
	if err != nil {
		return res, err
	}
	return res, tx.Commit()
}

// ReadAllOfTypes keeps the store's own filter (eventstore.TypeReader).
func (s *fencedStore) ReadAllOfTypes(ctx context.Context, after eventstore.Position, max int, types []string) (eventstore.Page, error) {
	return eventstore.ReadAllOfTypes(ctx, s.Store, after, max, types)
}

// ReportsReplays is the store's (eventstore.ReplayReporter).
func (s *fencedStore) ReportsReplays() bool {
	r, ok := s.Store.(eventstore.ReplayReporter)
	return ok && r.ReportsReplays()
}
