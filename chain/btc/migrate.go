package btc

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

// Migrate creates or updates the watcher's tables in the read-model
// database: numbered files per dialect, each applied once in its own
// transaction, tracked in chain_btc_migrations.
func Migrate(ctx context.Context, db projections.DB) error {
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS chain_btc_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("btc migrate: %w", err)
	}
	dir := "migrations/" + string(db.Dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("btc migrate: dialect %q: %w", db.Dialect, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("btc migrate: %s is not named NNNN_name.sql", e.Name())
		}
		if err := apply(ctx, db, dir+"/"+e.Name(), version); err != nil {
			return fmt.Errorf("btc migrate %s: %w", e.Name(), err)
		}
	}
	return nil
}

func apply(ctx context.Context, db projections.DB, path string, version int) error {
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
	if err := tx.QueryRowContext(ctx, db.Q(`SELECT count(*) FROM chain_btc_migrations WHERE version = ?`), version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	var lines []string
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			lines = append(lines, line)
		}
	}
	// Our migrations hold no string literals with semicolons.
	for _, stmt := range strings.Split(strings.Join(lines, "\n"), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_migrations (version, applied_at) VALUES (?, ?)`), version, time.Now().UnixMilli()); err != nil {
		return err
	}
	return tx.Commit()
}
