package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/acceptcryptohere/gateway/eventstore"
)

// Migrations are numbered files, applied in order, each once per schema.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version int
	name    string
	sql     string
}

func loadMigrations() ([]migration, error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	seen := map[int]string{}
	for _, name := range names {
		base := strings.TrimPrefix(name, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", base)
		}
		if prev, dup := seen[v]; dup {
			return nil, fmt.Errorf("migrations %s and %s share version %d", prev, base, v)
		}
		seen[v] = base
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// Migrate creates the store's schema and applies the migrations it has not
// applied yet, all in one transaction. It is idempotent and safe to run from
// several processes at once: an advisory lock serialises them.
func (s *Store) Migrate(ctx context.Context) error {
	migs, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()

	schema := pgx.Identifier{s.schema}.Sanitize()
	steps := []struct {
		sql  string
		args []any
	}{
		{"SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", []any{"eventstore.migrate:" + s.schema}},
		{"CREATE SCHEMA IF NOT EXISTS " + schema, nil},
		// Migration files use unqualified names; they land in the schema.
		{"SET LOCAL search_path TO " + schema, nil},
		{`CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			name       text        NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now())`, nil},
	}
	for _, st := range steps {
		if _, err := tx.Exec(ctx, st.sql, st.args...); err != nil {
			return fmt.Errorf("postgres: migrate %s: %w", s.schema, err)
		}
	}
	applied := map[int]bool{}
	rows, err := tx.Query(ctx, "SELECT version FROM schema_migrations")
	if err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", s.schema, err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", s.schema, err)
	}
	for _, v := range versions {
		applied[int(v)] = true
	}
	for _, m := range migs {
		if applied[m.version] {
			continue
		}
		// No arguments: pgx uses the simple protocol, so a file may hold
		// several statements.
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			return fmt.Errorf("postgres: migrate %s: %s: %w", s.schema, m.name, err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			return fmt.Errorf("postgres: migrate %s: %s: %w", s.schema, m.name, err)
		}
	}
	// Part of migration 0002: events written before the chain get it.
	if err := chainExisting(ctx, tx, s.schema); err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", s.schema, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: migrate %s: %w", s.schema, err)
	}
	return nil
}

// CheckMigrated fails with eventstore.ErrNotMigrated unless every migration
// of this build is applied. It writes nothing (read-only tools such as
// picd audit must not change the schema they inspect).
func (s *Store) CheckMigrated(ctx context.Context) error {
	migs, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("postgres: check migrations: %w", err)
	}
	rows, err := s.pool.Query(ctx, "SELECT version FROM "+pgx.Identifier{s.schema, "schema_migrations"}.Sanitize())
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			return fmt.Errorf("%w: postgres %s: %w", eventstore.ErrNotMigrated, s.schema, err)
		}
		return fmt.Errorf("postgres: check migrations: %w", err)
	}
	versions, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return fmt.Errorf("postgres: check migrations: %w", err)
	}
	applied := map[int]bool{}
	for _, v := range versions {
		applied[int(v)] = true
	}
	for _, m := range migs {
		if !applied[m.version] {
			return fmt.Errorf("%w: postgres %s lacks %s", eventstore.ErrNotMigrated, s.schema, m.name)
		}
	}
	return nil
}
