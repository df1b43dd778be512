package eth

import (
	"context"
	"embed"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/projections"
)

//go:embed migrations
var migrations embed.FS

// Migrate creates or upgrades the watcher's tables in the read-model
// database: numbered migrations per dialect, each applied once in its own
// transaction, tracked in eth_migrations (apart from the read models' own
// bookkeeping, so their numbers never collide).
func Migrate(ctx context.Context, db projections.DB) error {
	return projections.ApplyMigrations(ctx, db, migrations, "migrations", "eth_migrations")
}

// The watcher's scan state is chain.ScanStore over the eth_ tables.
type (
	checkpoint = chain.ScanPoint
	deposit    = chain.ScanDeposit
	store      = chain.ScanStore
)

func newStore(db projections.DB) store { return chain.NewScanStore(db, "eth", "hash", "block_hash") }
