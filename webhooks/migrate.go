package webhooks

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/projections"
)

//go:embed migrations
var migrations embed.FS

// Migrate applies the webhook tables' numbered migrations for db's dialect
// (webhook_deliveries, webhook_attempts, webhook_checkpoint) that have not
// run yet, each in its own transaction with its row in webhook_migrations.
// It is safe to run on every start. The merchants table it reads at send
// time belongs to projections.Migrate.
func Migrate(ctx context.Context, db projections.DB) error {
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS webhook_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("webhooks: migrate: %w", err)
	}
	dir := "migrations/" + string(db.Dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("webhooks: migrate: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("webhooks: migrate: %s is not named NNNN_name.sql", e.Name())
		}
		if err := applyMigration(ctx, db, dir+"/"+e.Name(), version); err != nil {
			return fmt.Errorf("webhooks: migrate %s: %w", e.Name(), err)
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db projections.DB, path string, version int) error {
	body, err := migrations.ReadFile(path)
	if err != nil {
		return err
	}
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, db.Q(`SELECT count(*) FROM webhook_migrations WHERE version = ?`), version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	// Statements are split on ";" once comment lines are gone; the
	// migrations hold no string literal with a semicolon.
	for _, stmt := range strings.Split(stripComments(string(body)), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, db.Q(`INSERT INTO webhook_migrations (version, applied_at) VALUES (?, ?)`), version, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}

func stripComments(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
