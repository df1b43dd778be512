package follow

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// A lease makes one process of many the leader of a name (picd's
// background work) on Postgres. The holder renews it every second or so;
// a candidate takes it over when it was not renewed within Bound, even if
// the holder's session lives on (a paused process keeps its session), or
// at once when the holder's lease session is gone. Every takeover raises
// the token, and the holder's writes carry it (Fence): the store rejects
// them once the token moved, so a holder that wakes after a takeover
// writes nothing. The SQLite store is one process and needs none.

//go:embed migrations
var migrations embed.FS

// MigrateLease creates the lease table (Postgres only: on SQLite the one
// process always leads).
func MigrateLease(ctx context.Context, db sqldb.DB) error {
	if db.Dialect != sqldb.Postgres {
		return nil
	}
	return sqldb.ApplyMigrations(ctx, db, migrations, "migrations", "follow_migrations")
}

// ErrLeaseLost: the lease's token is not the holder's any more (another
// process took it over).
var ErrLeaseLost = errors.New("follow: lease lost (another process took it over)")

// Lease is one named lease, seen from one process.
type Lease struct {
	Name   string
	Holder string        // who this process is, as operators see it
	Bound  time.Duration // a lease not renewed for this long may be taken over
}

// TryAcquire takes the lease when it is free: never held, released, not
// renewed within Bound, or its holder's session is gone. It returns the
// new token. Run it on a handle of one connection (the lease session),
// whose process id it records.
func (l Lease) TryAcquire(ctx context.Context, db *sql.DB) (token int64, ok bool, err error) {
	if _, err := db.ExecContext(ctx, `INSERT INTO leader_lease (name, token, holder, holder_pid, acquired_at, renewed_at)
		VALUES ($1, 0, '', 0, 'epoch', 'epoch') ON CONFLICT (name) DO NOTHING`, l.Name); err != nil {
		return 0, false, err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, err
	}
	defer tx.Rollback()
	// A paused holder may sit in a transaction holding the fence: wait a
	// little, not for ever (idle_in_transaction_session_timeout ends it).
	if _, err := tx.ExecContext(ctx, `SET LOCAL lock_timeout = '1s'`); err != nil {
		return 0, false, err
	}
	var expired, gone bool
	// FOR UPDATE waits for every fenced write in flight (FOR KEY SHARE).
	err = tx.QueryRowContext(ctx, `SELECT l.renewed_at < clock_timestamp() - make_interval(secs => $2),
			NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = l.holder_pid AND a.backend_start = l.holder_since)
		FROM leader_lease l WHERE l.name = $1 FOR UPDATE OF l`, l.Name, l.Bound.Seconds()).Scan(&expired, &gone)
	if err != nil {
		return 0, false, err
	}
	if !expired && !gone {
		return 0, false, nil
	}
	err = tx.QueryRowContext(ctx, `UPDATE leader_lease SET token = token + 1, holder = $2, holder_pid = pg_backend_pid(),
			holder_since = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),
			acquired_at = clock_timestamp(), renewed_at = clock_timestamp()
		WHERE name = $1 RETURNING token`, l.Name, l.Holder).Scan(&token)
	if err != nil {
		return 0, false, err
	}
	if err := tx.Commit(); err != nil {
		return 0, false, err
	}
	return token, true, nil
}

// Renew moves the lease's renewal to now (the database's clock) while
// token is still the lease's; ErrLeaseLost otherwise. It records the
// session it runs on, which may be a new one after a reconnect.
func (l Lease) Renew(ctx context.Context, db *sql.DB, token int64) error {
	res, err := db.ExecContext(ctx, `UPDATE leader_lease SET renewed_at = clock_timestamp(), holder_pid = pg_backend_pid(),
			holder_since = (SELECT backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid())
		WHERE name = $1 AND token = $2`, l.Name, token)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil {
		return err
	} else if n != 1 {
		return ErrLeaseLost
	}
	return nil
}

// Release gives the lease up (a clean shutdown), so a candidate takes it
// at its next try instead of after Bound.
func (l Lease) Release(ctx context.Context, db *sql.DB, token int64) error {
	_, err := db.ExecContext(ctx, `UPDATE leader_lease SET renewed_at = 'epoch', holder_pid = 0, holder_since = NULL
		WHERE name = $1 AND token = $2`, l.Name, token)
	return err
}

// Fence is what the holder of token puts in its background loops' context
// (sqldb.WithFence): each of their transactions locks the lease row while
// the token is still the lease's, so a takeover waits for it, and fails
// once the token moved. held is the holder's own view (a lapsed renewal).
func (l Lease) Fence(token int64, held func() bool) *sqldb.Fence {
	return &sqldb.Fence{
		Query: `SELECT 1 FROM leader_lease WHERE name = $1 AND token = $2 FOR KEY SHARE`,
		Args:  []any{l.Name, token},
		Held:  held,
	}
}

// LeaseStatus is the lease as the database has it.
type LeaseStatus struct {
	Holder string
	Token  int64
	// Renewed is how long ago it was renewed, Held how long ago it was
	// taken (the database's clock).
	Renewed, Held time.Duration
	// Live: renewed within the bound (a holder is leading).
	Live bool
}

func (s LeaseStatus) String() string {
	if s.Token == 0 || s.Holder == "" {
		return "no leader yet"
	}
	state := "live"
	if !s.Live {
		state = "LAPSED"
	}
	return fmt.Sprintf("%s (token %d, %s, renewed %s ago, leading for %s)", s.Holder, s.Token, state,
		s.Renewed.Round(time.Millisecond), s.Held.Round(time.Second))
}

// ReadLease reads the lease named name; ok is false when no process ever
// took it (or the table is not there: an older or SQLite database).
func ReadLease(ctx context.Context, db *sql.DB, name string, bound time.Duration) (st LeaseStatus, ok bool, err error) {
	var renewed, held float64
	err = db.QueryRowContext(ctx, `SELECT holder, token, EXTRACT(EPOCH FROM clock_timestamp() - renewed_at)::float8,
			EXTRACT(EPOCH FROM clock_timestamp() - acquired_at)::float8
		FROM leader_lease WHERE name = $1`, name).Scan(&st.Holder, &st.Token, &renewed, &held)
	if errors.Is(err, sql.ErrNoRows) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	st.Renewed = time.Duration(renewed * float64(time.Second))
	st.Held = time.Duration(held * float64(time.Second))
	st.Live = st.Token > 0 && st.Renewed < bound
	return st, st.Token > 0, nil
}
