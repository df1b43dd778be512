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
	// are keyed by global_position, which is the adapter's Position.Commit
	// on SQLite and Position.Prepare on Postgres (the dialect says which).
	LogTable string
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
