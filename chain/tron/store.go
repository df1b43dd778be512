package tron

import (
	"context"
	"embed"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/projections"
)

//go:embed migrations
var migrations embed.FS

// Migrate creates or upgrades the watcher's and the sender's tables in the
// read-model database: numbered migrations per dialect, each applied once in its own
// transaction, tracked in tron_migrations (apart from the read models' own
// bookkeeping, so their numbers never collide).
func Migrate(ctx context.Context, db projections.DB) error {
	return projections.ApplyMigrations(ctx, db, migrations, "migrations", "tron_migrations")
}

// The watcher's scan state is chain.ScanStore over the tron_ tables.
type (
	checkpoint = chain.ScanPoint
	deposit    = chain.ScanDeposit
	store      = chain.ScanStore
)

func newStore(db projections.DB) store { return chain.NewScanStore(db, "tron", "block_id", "block_id") }
