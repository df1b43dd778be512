package eth

import (
	"context"
	"embed"
	"fmt"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
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

// The watcher's scan state is chain.ScanStore over the eth_ tables.
type (
	checkpoint = chain.ScanPoint
	deposit    = chain.ScanDeposit
	store      = chain.ScanStore
)

func newStore(db sqldb.DB) store { return chain.NewScanStore(db, "eth", "hash", "block_hash") }

// scanFinal is the state of a credited deposit whose block is final
// (money rule 4), next to chain.ScanSeen and the others.
const scanFinal = "final"

// orphanFinal marks orphaned the final deposits above the fork, as
// ScanStore.Rewind does for seen ones: a reorg deeper than finality (by
// depth, without a finalized block) removes them too, and they are
// reverted unless the rescan finds them again.
func orphanFinal(ctx context.Context, db sqldb.DB, fork int64, now time.Time) (int64, error) {
	res, err := db.Write.ExecContext(ctx, db.Q(`UPDATE eth_deposits SET state = ?, updated_at = ? WHERE state = ? AND block_height > ?`),
		chain.ScanOrphaned, now.UnixMilli(), scanFinal, fork)
	if err != nil {
		return 0, fmt.Errorf("eth rewind: %w", err)
	}
	return res.RowsAffected()
}
