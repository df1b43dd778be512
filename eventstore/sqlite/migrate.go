package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/acceptcryptohere/gateway/eventstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// migrationScope is the event store's namespace in schema_migrations. The
// other schemas that share the file (read models, opstore, webhooks, the
// chains) have their own tables, through sqldb.ApplyMigrations; the event
// store keeps this runner because it sits below sqldb (docs/architecture.md,
// "Hand-written parts we keep") and existing files record its migrations here.
const migrationScope = "eventstore"

// migrate applies the numbered migrations in dir of files (names like
// 0001_events.sql, applied in number order) that schema_migrations does not
// yet list under scope. Each migration runs in its own write transaction
// together with its schema_migrations row, so a crash leaves it either fully
// applied or not at all, and running migrate again is a no-op. db must be
// the write pool (Store.WriteDB).
//
// Errors: a malformed or duplicate migration number, or the database's.
func migrate(ctx context.Context, db *sql.DB, scope string, files fs.FS, dir string) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		scope      TEXT    NOT NULL,
		version    INTEGER NOT NULL,
		name       TEXT    NOT NULL,
		applied_at INTEGER NOT NULL, -- unix microseconds
		PRIMARY KEY (scope, version)
	)`); err != nil {
		return fmt.Errorf("sqlite: migrate %s: schema_migrations: %w", scope, err)
	}
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return fmt.Errorf("sqlite: migrate %s: %w", scope, err)
	}
	type migration struct {
		version int
		name    string
	}
	var todo []migration
	seen := map[int]string{}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil || v <= 0 {
			return fmt.Errorf("sqlite: migrate %s: %s: want a name like 0001_what.sql", scope, e.Name())
		}
		if other, ok := seen[v]; ok {
			return fmt.Errorf("sqlite: migrate %s: %s and %s share number %d", scope, other, e.Name(), v)
		}
		seen[v] = e.Name()
		todo = append(todo, migration{v, e.Name()})
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].version < todo[j].version })
	for _, m := range todo {
		body, err := fs.ReadFile(files, path.Join(dir, m.name))
		if err != nil {
			return fmt.Errorf("sqlite: migrate %s: %w", scope, err)
		}
		if err := applyMigration(ctx, db, scope, m.version, m.name, string(body)); err != nil {
			return fmt.Errorf("sqlite: migrate %s: %s: %w", scope, m.name, err)
		}
	}
	return nil
}

// checkMigrated fails with eventstore.ErrNotMigrated unless every
// migration in dir is recorded under scope. It writes nothing.
func checkMigrated(ctx context.Context, db *sql.DB, scope string, files fs.FS, dir string) error {
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return fmt.Errorf("sqlite: check %s: %w", scope, err)
	}
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			continue
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations WHERE scope = ? AND version = ?`, scope, v).Scan(&n); err != nil {
			return fmt.Errorf("%w: sqlite %s: %w", eventstore.ErrNotMigrated, scope, err)
		}
		if n == 0 {
			return fmt.Errorf("%w: sqlite %s lacks %s", eventstore.ErrNotMigrated, scope, e.Name())
		}
	}
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, scope string, version int, name, body string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var n int
	if err := tx.QueryRowContext(ctx,
		`SELECT count(*) FROM schema_migrations WHERE scope = ? AND version = ?`, scope, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil // applied earlier, perhaps by another process
	}
	if _, err := tx.ExecContext(ctx, body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx,
		`INSERT INTO schema_migrations (scope, version, name, applied_at) VALUES (?, ?, ?, CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER))`,
		scope, version, name); err != nil { // applied_at: the database's clock, as on Postgres
		return err
	}
	return tx.Commit()
}
