package eth

import (
	"context"
	"embed"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrate creates or upgrades the watcher's tables in the read-model
// database: numbered migrations per dialect, each applied once in its own
// transaction, tracked in eth_migrations (apart from the read models' own
// bookkeeping, so their numbers never collide).
func Migrate(ctx context.Context, db sqldb.DB) error {
	return sqldb.ApplyMigrations(ctx, db, migrations, "migrations", "eth_migrations")
}

func newStore(db sqldb.DB) scan.Store {
	return scan.NewStore(db, "eth", "hash", "block_hash").WithIdentity()
}

// scanFinal is the state of a credited deposit whose block is final
// (money rule 4), next to chain.ScanSeen and the others.
const scanFinal = chain.ScanFinal
