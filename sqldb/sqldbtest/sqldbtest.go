// Package sqldbtest gives a test a database of its own: a SQLite file in
// the test's temporary directory, or a schema of its own on the real
// Postgres (PIC_TEST_POSTGRES_URL, by default the local database test),
// dropped when the test ends.
package sqldbtest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// SQLite opens a database file with one connection, as the embedded
// writer has.
func SQLite(t testing.TB) sqldb.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "test.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return sqldb.DB{Read: db, Write: db, Dialect: sqldb.SQLite}
}

// PostgresURL is the test server's URL.
func PostgresURL() string {
	if url := os.Getenv("PIC_TEST_POSTGRES_URL"); url != "" {
		return url
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// Postgres opens a schema named prefix_<random> on the test server. A
// missing server fails the test: CI always has one.
func Postgres(t testing.TB, prefix string) sqldb.DB {
	t.Helper()
	url := PostgresURL()
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := prefix + "_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("postgres (set PIC_TEST_POSTGRES_URL): %v", err)
	}
	t.Cleanup(func() { admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) })
	db, err := sql.Open("pgx", url+"&search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return sqldb.DB{Read: db, Write: db, Dialect: sqldb.Postgres}
}
