// Package opstore owns the operational state that more than one part of
// the gateway shares and that nothing rebuilds from the event log:
// idempotency keys and dashboard sessions. Its tables have their own
// migrations (table opstore_migrations), apart from the read models.
//
// The rule for every table in the database:
//   - a read model (rebuilt from the log by `picd projections rebuild`)
//     lives in projections' migrations, and only there;
//   - operational state (what a rebuild must never touch: nonces, broadcast
//     records, sweeps, delivery attempts, checkpoints of followers that act
//     on the outside world, idempotency keys, sessions) lives here when it
//     is shared, or in the migrations of the one package that uses it
//     (chain, chain/btc, chain/eth, chain/tron, chain/sim, webhooks), each
//     with its own migrations table, all run through sqldb.ApplyMigrations.
package opstore

import (
	"context"
	"embed"

	"github.com/acceptcryptohere/gateway/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrate applies opstore's numbered migrations that have not run yet. A
// database where httpapi created these tables before opstore existed keeps
// them and their rows (the migrations create only what is missing).
func Migrate(ctx context.Context, db sqldb.DB) error {
	return sqldb.ApplyMigrations(ctx, db, migrations, "migrations", "opstore_migrations")
}
