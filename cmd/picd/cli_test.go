package main

import (
	"bytes"
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// TestEveryCommandHasItsOwnHelp: -h prints the command's own usage and
// flags on stdout and exits 0, without opening a store.
func TestEveryCommandHasItsOwnHelp(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("PIC_DATA_DIR", dir)
	for _, tc := range []struct {
		args []string
		want string   // in the help
		not  []string // never in it
	}{
		{[]string{"serve", "-h"}, "usage: picd serve", []string{"Usage of"}},
		{[]string{"migrate", "-h"}, "usage: picd migrate", []string{"Usage of", "-listen", "-mnemonic"}},
		{[]string{"migrate", "--help"}, "-postgres-url", nil},
		{[]string{"audit", "-h"}, "usage: picd audit", []string{"Usage of", "picd serve"}},
		{[]string{"projections", "-h"}, "usage: picd projections status", nil},
		{[]string{"projections", "rebuild", "-h"}, "usage: picd projections rebuild", []string{"-listen"}},
		{[]string{"projections", "status", "-h"}, "usage: picd projections status", []string{"-listen"}},
		{[]string{"health", "-h"}, "usage: picd health", []string{"PIC_"}},
		{[]string{"copy-events", "-h"}, "usage: picd copy-events", nil},
		{[]string{"sim", "-h"}, "usage: picd sim", nil},
		{[]string{"help"}, "picd version", nil},
		{[]string{"-h"}, "exit status: 0 ok", nil},
	} {
		var out, errOut bytes.Buffer
		err := run(context.Background(), tc.args, &out, &errOut)
		if exitCode(err) != 0 {
			t.Errorf("%v: exit %d (%v), want 0", tc.args, exitCode(err), err)
		}
		if !strings.Contains(out.String(), tc.want) {
			t.Errorf("%v: help lacks %q:\n%s", tc.args, tc.want, out.String())
		}
		for _, n := range tc.not {
			if strings.Contains(out.String(), n) {
				t.Errorf("%v: help has %q:\n%s", tc.args, n, out.String())
			}
		}
	}
	// No help opened a store: the data directory is as it was.
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a help created %v in the data directory", entries)
	}
}

// TestExitCodes: 2 for bad usage, 3 for a dependency picd cannot reach,
// 1 for another failure.
func TestExitCodes(t *testing.T) {
	t.Setenv("PIC_DATA_DIR", t.TempDir())
	ctx := context.Background()
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer refused.Close()
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"bogus"}, 2},
		{[]string{"serve", "--no-such-flag"}, 2},
		{[]string{"serve", "--store", "mongo"}, 2},
		{[]string{"serve", "extra"}, 2},
		{[]string{"serve", "--webhook-log-days", "-1"}, 2},
		{[]string{"migrate", "--listen", ":3000"}, 2}, // not a migrate flag
		{[]string{"projections"}, 2},
		{[]string{"projections", "shuffle"}, 2},
		{[]string{"projections", "status", "extra"}, 2},
		{[]string{"health"}, 2},
		{[]string{"health", "--timeout", "soon", "http://x"}, 2},
		{[]string{"copy-events", "--from", "sqlite:a"}, 2},
		{[]string{"copy-events", "--from", "mysql:x", "--to", "sqlite:b"}, 2},
		{[]string{"sim"}, 2},
		{[]string{"sim", "fly"}, 2},
		{[]string{"health", "http://127.0.0.1:37001/healthz"}, 3}, // nobody listens there (this helper's range)
		{[]string{"health", refused.URL}, 1},
		{[]string{"migrate", "--store", "postgres", "--postgres-url", "postgres://postgres@127.0.0.1:37002/x?sslmode=disable&connect_timeout=2"}, 3},
		{[]string{"version"}, 0},
	} {
		var out, errOut bytes.Buffer
		err := run(ctx, tc.args, &out, &errOut)
		if got := exitCode(err); got != tc.code {
			t.Errorf("%v: exit %d (%v), want %d", tc.args, got, err, tc.code)
		}
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "picd ") || !strings.Contains(out.String(), runtime.Version()) {
		t.Fatalf("picd version: %q", out.String())
	}
	defer func(v string) { version = v }(version)
	version = "v1.2.3"
	out.Reset()
	if err := run(context.Background(), []string{"--version"}, &out, &out); err != nil || !strings.HasPrefix(out.String(), "picd v1.2.3 (") {
		t.Fatalf("picd --version with -X main.version=v1.2.3: %q, %v", out.String(), err)
	}
}

// TestReadOnlyCommandsNeverMigrate: projections status and the source of
// copy-events look without changing a schema or creating a file.
func TestReadOnlyCommandsNeverMigrate(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	missing := filepath.Join(t.TempDir(), "nowhere")
	err := run(ctx, []string{"projections", "status", "--data", missing}, &out, &errOut)
	if exitCode(err) != 3 {
		t.Fatalf("status of a missing log: exit %d (%v), want 3", exitCode(err), err)
	}
	if _, err := os.Stat(filepath.Join(missing, "picd.db")); !os.IsNotExist(err) {
		t.Fatalf("projections status created a database (%v)", err)
	}
	// An event store whose read models were never migrated.
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	err = run(ctx, []string{"projections", "status", "--data", dir}, &out, &errOut)
	if exitCode(err) != 3 || !strings.Contains(err.Error(), "picd migrate") {
		t.Fatalf("status of unmigrated read models: exit %d (%v), want 3 naming picd migrate", exitCode(err), err)
	}
	if n := tableCount(t, filepath.Join(dir, "picd.db"), "read_model_migrations"); n != 0 {
		t.Fatal("projections status migrated the read models")
	}
	// Migrated: status answers.
	out.Reset()
	if err := run(ctx, []string{"migrate", "--data", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(ctx, []string{"projections", "status", "--data", dir}, &out, &errOut); err != nil || !strings.Contains(out.String(), "invoices") {
		t.Fatalf("status: %v\n%s", err, out.String())
	}
	// copy-events does not create a missing source.
	src := filepath.Join(t.TempDir(), "typo.db")
	err = run(ctx, []string{"copy-events", "--from", "sqlite:" + src, "--to", "sqlite:" + filepath.Join(t.TempDir(), "to.db")}, &out, &errOut)
	if exitCode(err) != 3 {
		t.Fatalf("copy from a missing source: exit %d (%v), want 3", exitCode(err), err)
	}
	if _, err := os.Stat(src); !os.IsNotExist(err) {
		t.Fatalf("copy-events created its source (%v)", err)
	}
}

func tableCount(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = ?`, table).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestRefusesEmptyOrForeignDatabase: a zero-byte picd.db (a failed copy,
// a full disk) is not taken for a new, empty log, and neither a non-SQLite
// file nor another program's SQLite database gets picd's tables.
func TestRefusesEmptyOrForeignDatabase(t *testing.T) {
	ctx := context.Background()
	foreign := func(t *testing.T, path string) {
		db, err := sql.Open("sqlite", "file:"+path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if _, err := db.Exec(`CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)`); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name string
		make func(t *testing.T, path string)
		want string
	}{
		{"empty", func(t *testing.T, path string) { writeFile(t, path, "") }, "empty (0 bytes)"},
		{"not sqlite", func(t *testing.T, path string) { writeFile(t, path, "BTC,ETH\n1,2\n") }, "not an SQLite database"},
		{"foreign", foreign, "another program's SQLite database (tables customers)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "picd.db")
			tc.make(t, path)
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			for _, args := range [][]string{
				{"migrate", "--data", dir},
				{"audit", "--data", dir, "--no-progress"},
				{"projections", "status", "--data", dir},
				{"serve", "--data", dir, "--listen", "127.0.0.1:37003", "--metrics-listen", ""},
				{"copy-events", "--from", "sqlite:" + path, "--to", "sqlite:" + filepath.Join(t.TempDir(), "to.db")},
			} {
				var out, errOut bytes.Buffer
				err := run(ctx, args, &out, &errOut)
				if exitCode(err) != 3 || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: exit %d (%v), want 3 saying %q", args[0], exitCode(err), err, tc.want)
				}
			}
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(before, after) {
				t.Fatalf("the refused file changed (%v)", err)
			}
		})
	}
	// A picd database, new or migrated, passes.
	dir := t.TempDir()
	var out bytes.Buffer
	for i := 0; i < 2; i++ {
		if err := run(ctx, []string{"migrate", "--data", dir}, &out, &out); err != nil {
			t.Fatalf("migrate #%d: %v", i+1, err)
		}
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
