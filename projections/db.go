// Package projections builds the read models from the global log. Each
// projector writes its rows and its checkpoint in one transaction, so a
// crash never applies an event twice or skips one.
package projections

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// beginReadModelTx starts a transaction for read-model writes that commits
// without waiting for its flush to disk (Postgres: synchronous_commit off
// for this transaction; SQLite: synchronous=NORMAL, on a connection held
// for the purpose). Read models are rebuilt from the log, and a crash can
// only roll a projection and its checkpoint back together, to be applied
// again; the log's own appends keep their durable commits, and each
// flush of the log covers what was written before it. release must be
// called after the transaction ends: on SQLite it sets synchronous back to
// FULL before the connection returns to the pool, since that pool is the
// event store's single writer (TestReadModelTxRestoresTheWriter).
func beginReadModelTx(ctx context.Context, db sqldb.DB) (*sql.Tx, func(), error) {
	tx, _, release, err := beginReadModelConnTx(ctx, db)
	return tx, release, err
}

// beginReadModelConnTx is beginReadModelTx with the connection that holds
// the transaction (for what database/sql does not offer: COPY).
func beginReadModelConnTx(ctx context.Context, db sqldb.DB) (*sql.Tx, *sql.Conn, func(), error) {
	conn, err := db.Write.Conn(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	if db.Dialect != sqldb.SQLite {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			conn.Close()
			return nil, nil, nil, err
		}
		if _, err := tx.ExecContext(ctx, `SET LOCAL synchronous_commit = off`); err != nil {
			_ = tx.Rollback()
			conn.Close()
			return nil, nil, nil, err
		}
		return tx, conn, func() { conn.Close() }, nil
	}
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = NORMAL`); err != nil {
		conn.Close()
		return nil, nil, nil, err
	}
	release := func() {
		// Never hand the connection back relaxed: the event log's appends
		// share it. If restoring fails, make database/sql discard it.
		if _, err := conn.ExecContext(context.Background(), `PRAGMA synchronous = FULL`); err != nil {
			_ = conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		conn.Close()
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		release()
		return nil, nil, nil, err
	}
	return tx, conn, release, nil
}
