package opstore_test

import (
	"context"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/acceptcryptohere/gateway/opstore"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

func sqliteDB(t *testing.T) sqldb.DB {
	return sqldbtest.SQLite(t)
}

// postgresDB gives the test its own schema on the real Postgres.
func postgresDB(t *testing.T) sqldb.DB {
	return sqldbtest.Postgres(t, "ops")
}

// legacySchema is what httpapi's MigrateIdempotency and MigrateSessions
// ran at every start before opstore owned these tables (commit ca1d880).
func legacySchema(d sqldb.Dialect) []string {
	blob, integer := "BLOB", "INTEGER"
	if d == sqldb.Postgres {
		blob, integer = "BYTEA", "BIGINT"
	}
	return []string{
		`CREATE TABLE IF NOT EXISTS idempotency_keys (
			id          TEXT PRIMARY KEY,
			claim       TEXT NOT NULL,
			request_mac TEXT NOT NULL,
			state       TEXT NOT NULL,
			status      ` + integer + ` NOT NULL DEFAULT 0,
			response    ` + blob + `,
			created_at  ` + integer + ` NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at)`,
		`CREATE TABLE IF NOT EXISTS dashboard_sessions (
			id          TEXT PRIMARY KEY,
			merchant_id TEXT NOT NULL,
			key_hash    TEXT NOT NULL,
			created_at  ` + integer + ` NOT NULL,
			expires_at  ` + integer + ` NOT NULL
		)`,
		`CREATE INDEX IF NOT EXISTS dashboard_sessions_merchant ON dashboard_sessions (merchant_id)`,
		`CREATE INDEX IF NOT EXISTS dashboard_sessions_expires_at ON dashboard_sessions (expires_at)`,
	}
}

// TestUpgradeKeepsRows: a database whose idempotency keys and sessions
// httpapi created before opstore existed is migrated by opstore without
// an error and without losing a row; the stores read the old rows.
func TestUpgradeKeepsRowsSQLite(t *testing.T)   { testUpgradeKeepsRows(t, sqliteDB(t)) }
func TestUpgradeKeepsRowsPostgres(t *testing.T) { testUpgradeKeepsRows(t, postgresDB(t)) }

func testUpgradeKeepsRows(t *testing.T, db sqldb.DB) {
	ctx := context.Background()
	for _, q := range legacySchema(db.Dialect) {
		if _, err := db.Write.ExecContext(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	// Rows written by the old code, which opstore's stores are.
	idem, sessions := opstore.NewIdempotency(db), opstore.NewSessions(db)
	rec, err := idem.Claim(ctx, "mer_1|POST|/v1/invoices", "k1", []byte(`{}`), now)
	if err != nil || !rec.Claimed {
		t.Fatalf("claim: %+v %v", rec, err)
	}
	if err := idem.Complete(ctx, "mer_1|POST|/v1/invoices", "k1", rec.Token, opstore.StoredResponse{Status: 201, Body: []byte(`{"id":"inv_1"}`)}); err != nil {
		t.Fatal(err)
	}
	sess := opstore.Session{ID: "s1", MerchantID: "mer_1", KeyHash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := sessions.Create(ctx, sess, now); err != nil {
		t.Fatal(err)
	}

	for i := 0; i < 2; i++ { // the upgrade, then a restart
		if err := opstore.Migrate(ctx, db); err != nil {
			t.Fatalf("migrate over the old tables (run %d): %v", i+1, err)
		}
	}
	var versions int
	if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM opstore_migrations`).Scan(&versions); err != nil || versions != 2 {
		t.Fatalf("opstore_migrations: %d rows, %v", versions, err)
	}
	again, err := opstore.NewIdempotency(db).Claim(ctx, "mer_1|POST|/v1/invoices", "k1", []byte(`{}`), now.Add(time.Minute))
	if err != nil || !again.Done || again.Response.Status != 201 || string(again.Response.Body) != `{"id":"inv_1"}` {
		t.Fatalf("the key stored before the upgrade: %+v %v", again, err)
	}
	got, err := opstore.NewSessions(db).Get(ctx, "s1", now.Add(time.Minute))
	if err != nil || got.MerchantID != "mer_1" || got.KeyHash != "h" {
		t.Fatalf("the session stored before the upgrade: %+v %v", got, err)
	}
}

// TestMigrateFresh: on an empty database the migrations create the tables,
// and running them again changes nothing.
func TestMigrateFreshSQLite(t *testing.T)   { testMigrateFresh(t, sqliteDB(t)) }
func TestMigrateFreshPostgres(t *testing.T) { testMigrateFresh(t, postgresDB(t)) }

func testMigrateFresh(t *testing.T, db sqldb.DB) {
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	if err := opstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := opstore.NewSessions(db).Create(ctx, opstore.Session{ID: "s", MerchantID: "m", KeyHash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, now); err != nil {
		t.Fatal(err)
	}
	if err := opstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if _, err := opstore.NewSessions(db).Get(ctx, "s", now); err != nil {
		t.Fatalf("session after a second migrate: %v", err)
	}
}
