package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// ErrRebuildRunning: another rebuild of this read-model database holds the
// rebuild lock (in another process, or started earlier in this one).
var ErrRebuildRunning = errors.New("projections: another rebuild of this database is running")

// LockRebuild takes the read-model database's rebuild lock, or answers
// ErrRebuildRunning. Two rebuilds at once would fill the same shadow
// tables, and either could swap in what the other had half written: wrong
// balances served, with a checkpoint that says they are complete.
//
// On Postgres it is a session advisory lock keyed by the schema, held on a
// connection of db.Write until release (the server drops it with a dead
// process's session). On SQLite it is an exclusive lock on a file beside
// the database (the kernel drops it with a dead process), where the
// platform has one.
func LockRebuild(ctx context.Context, db sqldb.DB) (release func(), err error) {
	if db.Dialect == sqldb.Postgres {
		return lockRebuildPostgres(ctx, db.Write)
	}
	var seq int
	var name, file string
	if err := db.Write.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
		return nil, fmt.Errorf("rebuild lock: %w", err)
	}
	if file == "" { // an in-memory database: no other process sees it
		return func() {}, nil
	}
	return lockFile(file + "-rebuild.lock")
}

// TryLockRebuild is LockRebuild for a caller that answers a held lock
// itself: ok is false, with no error, while another rebuild holds it.
func TryLockRebuild(ctx context.Context, db sqldb.DB) (release func(), ok bool, err error) {
	release, err = LockRebuild(ctx, db)
	if errors.Is(err, ErrRebuildRunning) {
		return nil, false, nil
	}
	return release, err == nil, err
}

func lockRebuildPostgres(ctx context.Context, pool *sql.DB) (func(), error) {
	conn, err := pool.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("rebuild lock: %w", err)
	}
	var ok bool
	if err := conn.QueryRowContext(ctx, `SELECT pg_try_advisory_lock(hashtext('picd projections rebuild'), hashtext(current_schema()))`).Scan(&ok); err != nil {
		conn.Close()
		return nil, fmt.Errorf("rebuild lock: %w", err)
	}
	if !ok {
		conn.Close()
		return nil, ErrRebuildRunning
	}
	return func() {
		// Closing would only return the session to the pool, lock held:
		// unlock, and where that fails, have the pool drop the session.
		var unlocked bool
		err := conn.QueryRowContext(context.Background(), `SELECT pg_advisory_unlock(hashtext('picd projections rebuild'), hashtext(current_schema()))`).Scan(&unlocked)
		if err != nil || !unlocked {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}, nil
}
