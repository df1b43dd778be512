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
	// Rows as the old code wrote them: a done key in the old columns
	// (opstore's later migrations add columns), a session by the store.
	id, mac, sealed, err := opstore.LegacyIdempotencyRow("mer_1|POST|/v1/invoices", "k1", []byte(`{}`), []byte(`{"id":"inv_1"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO idempotency_keys (id, claim, request_mac, state, status, response, created_at)
		VALUES (?, 'tok', ?, 'done', 201, ?, ?)`), id, mac, sealed, now.UnixMilli()); err != nil {
		t.Fatal(err)
	}
	sess := opstore.Session{ID: "s1", MerchantID: "mer_1", KeyHash: "h", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := opstore.NewSessions(db).Create(ctx, sess, now); err != nil {
		t.Fatal(err)
	}

	for i := 0; i < 2; i++ { // the upgrade, then a restart
		if err := opstore.Migrate(ctx, db); err != nil {
			t.Fatalf("migrate over the old tables (run %d): %v", i+1, err)
		}
	}
	var versions int
	if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM opstore_migrations`).Scan(&versions); err != nil || versions != 3 {
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

// A released key keeps the time of its first claim, which a retry's command
// id is derived from; only the first body may claim it again; a claim whose
// lease ran out is taken over with the same first-claim time.
func TestReleasedKeyKeepsFirstClaimSQLite(t *testing.T) {
	testReleasedKeyKeepsFirstClaim(t, sqliteDB(t))
}
func TestReleasedKeyKeepsFirstClaimPostgres(t *testing.T) {
	testReleasedKeyKeepsFirstClaim(t, postgresDB(t))
}

func testReleasedKeyKeepsFirstClaim(t *testing.T, db sqldb.DB) {
	ctx := context.Background()
	if err := opstore.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	idem := opstore.NewIdempotency(db)
	const scope, key = "mer_1|POST|/v1/invoices", "k"
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	first, err := idem.Claim(ctx, scope, key, []byte(`{"a":1}`), t0)
	if err != nil || !first.Claimed || !first.FirstClaim.Equal(t0) {
		t.Fatalf("first claim: %+v %v", first, err)
	}
	if err := idem.Release(ctx, scope, key, first.Token); err != nil {
		t.Fatal(err)
	}
	other, err := idem.Claim(ctx, scope, key, []byte(`{"a":2}`), t0.Add(time.Second))
	if err != nil || other.Claimed || other.SameBody {
		t.Fatalf("another body after a release: %+v %v, want a conflict", other, err)
	}
	retry, err := idem.Claim(ctx, scope, key, []byte(`{"a":1}`), t0.Add(2*time.Second))
	if err != nil || !retry.Claimed || !retry.FirstClaim.Equal(t0) {
		t.Fatalf("retry after a release: %+v %v, want claimed with the first claim's time", retry, err)
	}
	waiting, err := idem.Claim(ctx, scope, key, []byte(`{"a":1}`), t0.Add(3*time.Second))
	if err != nil || waiting.Claimed || waiting.Done {
		t.Fatalf("while claimed: %+v %v, want in progress", waiting, err)
	}
	late := t0.Add(2*time.Second + opstore.ClaimLease + time.Millisecond)
	taken, err := idem.Claim(ctx, scope, key, []byte(`{"a":1}`), late)
	if err != nil || !taken.Claimed || !taken.FirstClaim.Equal(t0) {
		t.Fatalf("after the lease ran out: %+v %v", taken, err)
	}
	if err := idem.Complete(ctx, scope, key, retry.Token, opstore.StoredResponse{Status: 201}); err == nil {
		t.Fatal("the claim whose lease ran out completed over its successor")
	}
	expired, err := idem.Claim(ctx, scope, key, []byte(`{"a":2}`), t0.Add(opstore.IdempotencyTTL+time.Second))
	if err != nil || !expired.Claimed || !expired.FirstClaim.Equal(t0.Add(opstore.IdempotencyTTL+time.Second)) {
		t.Fatalf("after the key expired: %+v %v, want a new key", expired, err)
	}
}
