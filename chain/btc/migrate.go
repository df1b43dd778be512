package btc

import (
	"context"
	"embed"

	"github.com/acceptcryptohere/gateway/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrate creates or updates the watcher's tables in the read-model
// database: numbered files per dialect, each applied once in its own
// transaction, tracked in chain_btc_migrations.
func Migrate(ctx context.Context, db sqldb.DB) error {
	return sqldb.ApplyMigrations(ctx, db, migrations, "migrations", "chain_btc_migrations")
}
