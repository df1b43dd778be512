package webhooks

import (
	"context"
	"embed"

	"github.com/acceptcryptohere/gateway/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrate applies the webhook tables' numbered migrations for db's dialect
// (webhook_deliveries, webhook_attempts, webhook_checkpoint) that have not
// run yet, each in its own transaction with its row in webhook_migrations.
// It is safe to run on every start. The merchants table it reads at send
// time belongs to projections.Migrate.
func Migrate(ctx context.Context, db sqldb.DB) error {
	return sqldb.ApplyMigrations(ctx, db, migrations, "migrations", "webhook_migrations")
}
