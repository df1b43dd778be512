package projections

import (
	"context"
	"embed"

	"github.com/acceptcryptohere/gateway/sqldb"
)

//go:embed migrations
var migrations embed.FS

// Migrate applies the read models' numbered migrations that have not run yet.
func Migrate(ctx context.Context, db sqldb.DB) error {
	return sqldb.ApplyMigrations(ctx, db, migrations, "migrations", "read_model_migrations")
}
