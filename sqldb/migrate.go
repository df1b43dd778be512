package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
)

// ApplyMigrations applies the numbered files NNNN_name.sql of
// <dir>/<dialect> in files that are not yet recorded in table, each in its
// own transaction together with its bookkeeping row. Every package that
// keeps tables in the database (projections, webhooks, chain watchers, the
// simulator) runs its own set through it, with its own table.
func ApplyMigrations(ctx context.Context, db DB, files fs.FS, dir, table string) error {
	if db.CheckOnly {
		return checkMigrations(ctx, db, files, dir, table)
	}
	if _, err := db.Write.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	dir += "/" + string(db.Dialect)
	entries, err := fs.ReadDir(files, dir)
	if err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	if err := refuseNewer(ctx, db, entries, table); err != nil {
		return err
	}
	named := map[int]string{}
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		version, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("migrate %s: %s is not named NNNN_name.sql", table, e.Name())
		}
		// A second file of a number would be taken for applied and never
		// run (two branches that each added "the next" migration).
		if other, dup := named[version]; dup {
			return fmt.Errorf("migrate %s: %s and %s have the same number", table, other, e.Name())
		}
		named[version] = e.Name()
		body, err := fs.ReadFile(files, dir+"/"+e.Name())
		if err != nil {
			return err
		}
		if err := applyMigration(ctx, db, table, string(body), version); err != nil {
			return fmt.Errorf("migrate %s: %w", e.Name(), err)
		}
	}
	return nil
}

// ErrNotMigrated: a schema lacks migrations of this build (run picd migrate).
var ErrNotMigrated = errors.New("schema not migrated (run picd migrate)")

// checkMigrations fails with ErrNotMigrated unless every file of dir is
// recorded in table. It only reads.
func checkMigrations(ctx context.Context, db DB, files fs.FS, dir, table string) error {
	entries, err := fs.ReadDir(files, dir+"/"+string(db.Dialect))
	if err != nil {
		return fmt.Errorf("check migrations %s: %w", table, err)
	}
	applied := map[int]bool{}
	rows, err := db.Read.QueryContext(ctx, `SELECT version FROM `+table)
	if err != nil {
		// The table itself is missing (or the database is unreachable, which
		// the caller's ping tells apart).
		return fmt.Errorf("%w: %s: %w", ErrNotMigrated, table, err)
	}
	defer rows.Close()
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("check migrations %s: %w", table, err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("check migrations %s: %w", table, err)
	}
	known := newestKnown(entries)
	for v := range applied {
		if v > known {
			return fmt.Errorf("%w: %s records migration %d, this build knows up to %d", ErrNewerSchema, table, v, known)
		}
	}
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.Atoi(num); err == nil && !applied[v] {
			return fmt.Errorf("%w: %s lacks %s", ErrNotMigrated, table, e.Name())
		}
	}
	return nil
}

// ErrNewerSchema: a schema holds a migration this build does not know. A
// newer release made it, and this one would not keep up what it added (a
// table or column the newer projectors maintain): run the newer release,
// or restore the backup taken before the upgrade.
var ErrNewerSchema = errors.New("schema is newer than this build (run the newer release, or restore the backup taken before the upgrade)")

// refuseNewer fails with ErrNewerSchema when table records a migration
// above the highest of entries.
func refuseNewer(ctx context.Context, db DB, entries []fs.DirEntry, table string) error {
	known := newestKnown(entries)
	var newest sql.NullInt64
	if err := db.Read.QueryRowContext(ctx, `SELECT max(version) FROM `+table).Scan(&newest); err != nil {
		return fmt.Errorf("migrate %s: %w", table, err)
	}
	if newest.Valid && newest.Int64 > int64(known) {
		return fmt.Errorf("%w: %s records migration %d, this build knows up to %d", ErrNewerSchema, table, newest.Int64, known)
	}
	return nil
}

// newestKnown is the highest number of the migration files entries.
func newestKnown(entries []fs.DirEntry) int {
	known := 0
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.Atoi(num); err == nil && v > known {
			known = v
		}
	}
	return known
}

func applyMigration(ctx context.Context, db DB, table, body string, version int) error {
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, db.Q(`SELECT count(*) FROM `+table+` WHERE version = ?`), version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	// Statements are split on ";" once comments are gone; our migrations
	// hold no string literals with semicolons.
	for _, stmt := range strings.Split(stripComments(body), ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, db.Q(`INSERT INTO `+table+` (version, applied_at) VALUES (?, `+db.nowMillis()+`)`), version); err != nil {
		return err
	}
	return tx.Commit()
}

// nowMillis is the database's clock in Unix ms: a migration is stamped
// with the time of the database it changed, as the event stores' are.
func (db DB) nowMillis() string {
	if db.Dialect == Postgres {
		return `(extract(epoch FROM clock_timestamp()) * 1000)::bigint`
	}
	return `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`
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
