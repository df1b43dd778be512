package sqldb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

func sqliteDB(t *testing.T) sqldb.DB {
	return sqldbtest.SQLite(t)
}

func postgresDB(t *testing.T) sqldb.DB {
	return sqldbtest.Postgres(t, "mig")
}

// TestApplyMigrations: files apply in number order, once each, with the
// database's time in applied_at; a second run changes nothing.
func TestApplyMigrationsSQLite(t *testing.T)   { testApplyMigrations(t, sqliteDB(t)) }
func TestApplyMigrationsPostgres(t *testing.T) { testApplyMigrations(t, postgresDB(t)) }

func testApplyMigrations(t *testing.T, db sqldb.DB) {
	ctx := context.Background()
	dir := "m/" + string(db.Dialect)
	files := fstest.MapFS{
		dir + "/0002_b.sql": {Data: []byte("-- second\nINSERT INTO t (v) VALUES (2);")},
		dir + "/0001_a.sql": {Data: []byte("CREATE TABLE t (v BIGINT);\nINSERT INTO t (v) VALUES (1);")},
	}
	before := time.Now().Add(-time.Minute).UnixMilli()
	for i := 0; i < 2; i++ {
		if err := sqldb.ApplyMigrations(ctx, db, files, "m", "test_migrations"); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	var n, sum int
	if err := db.Read.QueryRowContext(ctx, `SELECT count(*), sum(v) FROM t`).Scan(&n, &sum); err != nil || n != 2 || sum != 3 {
		t.Fatalf("t: %d rows, sum %d, %v", n, sum, err)
	}
	rows, err := db.Read.QueryContext(ctx, `SELECT version, applied_at FROM test_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	after := time.Now().Add(time.Minute).UnixMilli()
	var versions []int
	for rows.Next() {
		var v int
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		if at < before || at > after {
			t.Fatalf("version %d applied_at %d, not around now (%d..%d)", v, at, before, after)
		}
		versions = append(versions, v)
	}
	if len(versions) != 2 || versions[0] != 1 || versions[1] != 2 {
		t.Fatalf("recorded versions %v", versions)
	}
}

// Two files of one number (two branches each adding "the next" migration)
// are refused: the second would have been taken for applied and never run.
func TestApplyMigrationsRefusesANumberTwice(t *testing.T) {
	db := sqliteDB(t)
	dir := "m/" + string(db.Dialect)
	files := fstest.MapFS{
		dir + "/0001_a.sql":     {Data: []byte("CREATE TABLE t (v BIGINT);")},
		dir + "/0002_b.sql":     {Data: []byte("INSERT INTO t (v) VALUES (2);")},
		dir + "/0002_other.sql": {Data: []byte("INSERT INTO t (v) VALUES (3);")},
	}
	err := sqldb.ApplyMigrations(context.Background(), db, files, "m", "test_migrations")
	if err == nil || !strings.Contains(err.Error(), "0002_b.sql and 0002_other.sql have the same number") {
		t.Fatalf("err = %v", err)
	}
}

// A schema that a newer build migrated is refused by an older one, which
// would not keep up what the newer migrations added; the read-only check
// refuses it too.
func TestOlderBuildRefusesANewerSchema(t *testing.T) {
	for _, db := range []sqldb.DB{sqliteDB(t), postgresDB(t)} {
		t.Run(string(db.Dialect), func(t *testing.T) {
			ctx := context.Background()
			dir := "m/" + string(db.Dialect)
			older := fstest.MapFS{dir + "/0001_a.sql": {Data: []byte("CREATE TABLE t (v BIGINT);")}}
			newer := fstest.MapFS{
				dir + "/0001_a.sql": older[dir+"/0001_a.sql"],
				dir + "/0002_b.sql": {Data: []byte("ALTER TABLE t ADD COLUMN w BIGINT;")},
			}
			if err := sqldb.ApplyMigrations(ctx, db, newer, "m", "test_migrations"); err != nil {
				t.Fatal(err)
			}
			err := sqldb.ApplyMigrations(ctx, db, older, "m", "test_migrations")
			if !errors.Is(err, sqldb.ErrNewerSchema) || !strings.Contains(err.Error(), "records migration 2, this build knows up to 1") {
				t.Fatalf("older build migrating: %v", err)
			}
			check := db
			check.CheckOnly = true
			if err := sqldb.ApplyMigrations(ctx, check, older, "m", "test_migrations"); !errors.Is(err, sqldb.ErrNewerSchema) {
				t.Fatalf("older build checking: %v", err)
			}
			if err := sqldb.ApplyMigrations(ctx, check, newer, "m", "test_migrations"); err != nil {
				t.Fatalf("the build that migrated it, checking: %v", err)
			}
		})
	}
}
