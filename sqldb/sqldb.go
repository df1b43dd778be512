// Package sqldb is the SQL handle and dialect shared by the read models
// (projections) and the operational tables (chain watchers and senders,
// webhook deliveries, idempotency keys, sessions), and the one migration
// runner every schema goes through.
package sqldb

import (
	"database/sql"
	"strconv"
	"strings"
)

// Dialect is the SQL flavour of the database.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// DB is the gateway's SQL database. In embedded mode Write is the SQLite
// store's single writer connection and Read its reader pool; on Postgres
// both are the same pool.
type DB struct {
	Read    *sql.DB
	Write   *sql.DB
	Dialect Dialect
	// CheckOnly makes ApplyMigrations only check that every migration is
	// applied (ErrNotMigrated otherwise), writing nothing: read-only tools
	// (picd audit) must not change the schema of the gateway they inspect.
	CheckOnly bool
	// LogTable is the event store's table of the global log when the log
	// is kept in this database (the SQLite store: "events"; the Postgres
	// store: its schema's events table, quoted), and empty when it is kept
	// elsewhere (EventStoreDB). Where the log is at hand, the event feed
	// keeps references into it rather than a copy of every event. Its rows
	// are keyed by global_position (LogRow); LogColumns reads them.
	LogTable string
}

// LogRow is the global_position of the LogTable row of the event at the
// store position (commit, prepare): the commit on SQLite, the prepare on
// Postgres (whose commit is the writing transaction's id).
func (db DB) LogRow(commit, prepare uint64) int64 {
	if db.Dialect == Postgres {
		return int64(prepare)
	}
	return int64(commit)
}

// LogColumns are the SQL expressions, over the LogTable row aliased e, of
// the event's position in its String form ("commit/prepare") and of its
// recorded time in Unix microseconds.
func (db DB) LogColumns() (position, recordedMicros string) {
	if db.Dialect == Postgres {
		return `e.transaction_id::text || '/' || e.global_position`, `(extract(epoch FROM e.recorded_at) * 1000000)::bigint`
	}
	return `e.global_position || '/0'`, `e.recorded_at`
}

// Q adapts a query written with ? placeholders to the dialect ($1, $2, ...
// on Postgres). Queries are constants, so a ? never appears inside a string.
func (db DB) Q(query string) string {
	if db.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
