package projections_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

// The feed keeps copies of the events where the log is in another
// database, and references into the log where it is in the same one.
func TestEventFeedSQLite(t *testing.T) { testEventFeed(t, sqliteLog, apart(separateSQLite)) }
func TestEventFeedPostgres(t *testing.T) {
	testEventFeed(t, sqliteLog, apart(postgresDB))
}
func TestEventFeedRefsSQLite(t *testing.T)   { testEventFeed(t, sqliteLog, sameSQLite) }
func TestEventFeedRefsPostgres(t *testing.T) { testEventFeed(t, postgresLog, samePostgres) }

func sqliteLog(t *testing.T) eventstore.Store {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// postgresLog is a Postgres log in a schema of its own on the test server.
func postgresLog(t *testing.T) eventstore.Store {
	t.Helper()
	ctx := context.Background()
	var schema string
	if err := sqldbtest.Postgres(t, "es").Read.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	store, err := postgres.Open(ctx, sqldbtest.PostgresURL(), postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	if err := store.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return store
}

// apart gives read-model databases that do not hold the log.
func apart(newDB func(*testing.T) sqldb.DB) func(*testing.T, eventstore.Store) sqldb.DB {
	return func(t *testing.T, _ eventstore.Store) sqldb.DB { return newDB(t) }
}

// sameSQLite is the SQLite log's own file, as the embedded gateway has it.
func sameSQLite(t *testing.T, store eventstore.Store) sqldb.DB {
	s := store.(*sqlite.Store)
	return sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite, LogTable: s.LogTable()}
}

// samePostgres is a schema of its own in the Postgres log's database.
func samePostgres(t *testing.T, store eventstore.Store) sqldb.DB {
	db := postgresDB(t)
	db.LogTable = store.(*postgres.Store).LogTable()
	return db
}

// feedLog is a log with two merchants' interleaved events, written in two
// rounds so the live feed is built over several runner transactions.
type feedLog struct {
	store eventstore.Store
	h     commands.Handlers
	a, b  string // merchant ids
}

func newFeedLog(t *testing.T) *feedLog { return newFeedLogIn(t, sqliteLog(t)) }

func newFeedLogIn(t *testing.T, store eventstore.Store) *feedLog {
	t.Helper()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { now = now.Add(time.Millisecond); return now }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	ctx := context.Background()
	a, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "ra", Name: "Shop A"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "rb", Name: "Shop B"})
	if err != nil {
		t.Fatal(err)
	}
	return &feedLog{store: store, h: h, a: a.MerchantID, b: b.MerchantID}
}

// round writes invoices for both merchants, pays A's, and rotates A's
// webhook secret.
func (l *feedLog) round(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		id := fmt.Sprintf("%d-%d", n, i)
		inv, err := l.h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: "ia" + id, MerchantID: l.a, Asset: "USDT.ETH", Amount: "49.99"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: "ib" + id, MerchantID: l.b, Asset: "BTC", Amount: "0.01"}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{CommandID: "o" + id, InvoiceID: inv.Invoice.InvoiceID,
			Deposit: domain.ObservedDeposit{DepositID: "d" + id, TxID: "tx" + id, Amount: domain.MustAmount("49.99")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := l.h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{CommandID: "c" + id, InvoiceID: inv.Invoice.InvoiceID, DepositID: "d" + id, Confirmations: 12}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.h.RotateWebhookSecret.Handle(ctx, commands.RotateWebhookSecret{CommandID: fmt.Sprint("w", n), MerchantID: l.a}); err != nil {
		t.Fatal(err)
	}
}

// migratedFeedLog is a feed log in openLog's store and its read models'
// database from newDB, migrated.
func migratedFeedLog(t *testing.T, openLog func(*testing.T) eventstore.Store, newDB func(*testing.T, eventstore.Store) sqldb.DB) (*feedLog, sqldb.DB) {
	t.Helper()
	l := newFeedLogIn(t, openLog(t))
	db := newDB(t, l.store)
	if err := projections.Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	return l, db
}

// merchantLog is the merchant's events read from the log itself.
func merchantLog(t *testing.T, store eventstore.Store, merchantID string) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for pos := eventstore.Start; ; {
		recs, err := store.ReadAll(context.Background(), pos, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			var md struct {
				MerchantID string `json:"merchant_id"`
			}
			json.Unmarshal(r.Metadata, &md)
			if md.MerchantID == merchantID {
				out = append(out, r)
			}
		}
		pos = recs[len(recs)-1].Position
	}
}

func wholeFeed(t *testing.T, r *readapi.SQL, merchantID string) []readapi.FeedEvent {
	t.Helper()
	page, more, err := r.Events(context.Background(), merchantID, 0, readapi.MaxFeedPage)
	if err != nil || more {
		t.Fatalf("feed of %s: more %v, %v", merchantID, more, err)
	}
	return page
}

// checkFeed compares the feed with the merchant's events in the log: the
// same events, in log order, numbered 1, 2, …, bodies as stored (minus
// secrets).
func checkFeed(t *testing.T, feed []readapi.FeedEvent, log []eventstore.RecordedEvent) {
	t.Helper()
	if len(feed) != len(log) || len(log) == 0 {
		t.Fatalf("feed has %d events, the log %d", len(feed), len(log))
	}
	for i, e := range feed {
		rec := log[i]
		if e.Seq != int64(i+1) || e.EventID != rec.ID || e.Type != rec.Type || e.Stream != rec.Stream ||
			e.Version != rec.Version || e.Position != rec.Position.String() || e.RecordedAt.UnixMilli() != rec.RecordedAt.UnixMilli() ||
			string(e.Metadata) != string(rec.Metadata) {
			t.Fatalf("feed event %d = %+v, log has %+v", i, e, rec)
		}
		switch rec.Type {
		case domain.TypeMerchantRegistered, domain.TypeWebhookSecretRotated, domain.TypeAPIKeysRotated:
			for _, secret := range []string{"webhook_secret", "secret_key_hash", "whsec_"} {
				if strings.Contains(string(e.Data), secret) {
					t.Fatalf("%s in the feed carries %s: %s", rec.Type, secret, e.Data)
				}
			}
			var got, want map[string]json.RawMessage
			json.Unmarshal(e.Data, &got)
			json.Unmarshal(rec.Data, &want)
			delete(want, "webhook_secret")
			delete(want, "secret_key_hash")
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s redacted to %s from %s", rec.Type, e.Data, rec.Data)
			}
		default:
			if string(e.Data) != string(rec.Data) {
				t.Fatalf("feed data %s, stored %s", e.Data, rec.Data)
			}
		}
	}
}

func testEventFeed(t *testing.T, openLog func(*testing.T) eventstore.Store, newDB func(*testing.T, eventstore.Store) sqldb.DB) {
	ctx := context.Background()
	l, db := migratedFeedLog(t, openLog, newDB)
	// Two rounds with a catch-up between: seqs continue across transactions.
	l.round(t, 1)
	if err := projections.NewRunner(l.store, db, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	l.round(t, 2)
	if err := projections.NewRunner(l.store, db, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	r := readapi.NewSQL(db)
	feedA, feedB := wholeFeed(t, r, l.a), wholeFeed(t, r, l.b)
	checkFeed(t, feedA, merchantLog(t, l.store, l.a))
	checkFeed(t, feedB, merchantLog(t, l.store, l.b))
	for _, e := range feedB {
		if strings.Contains(string(e.Metadata), l.a) || strings.Contains(string(e.Data), l.a) {
			t.Fatalf("B's feed holds A's event %+v", e)
		}
	}
	if none := wholeFeed(t, r, "mer_nobody"); len(none) != 0 {
		t.Fatalf("unknown merchant sees %d events", len(none))
	}
	// Money stays a decimal string.
	for _, e := range feedA {
		if e.Type == domain.TypeDepositConfirmed && !strings.Contains(string(e.Data), `"amount":"49.99"`) {
			t.Fatalf("amount is not a decimal string: %s", e.Data)
		}
	}

	// Pages.
	page, more, err := r.Events(ctx, l.a, 2, 3)
	if err != nil || !more || len(page) != 3 || page[0].Seq != 3 || page[2].Seq != 5 {
		t.Fatalf("page after 2: %v %v %v", page, more, err)
	}
	last := feedA[len(feedA)-1].Seq
	if page, more, err := r.Events(ctx, l.a, last-1, 5); err != nil || more || len(page) != 1 || page[0].Seq != last {
		t.Fatalf("last page: %v %v %v", page, more, err)
	}
	if page, more, err := r.Events(ctx, l.a, last, 5); err != nil || more || len(page) != 0 {
		t.Fatalf("after the end: %v %v %v", page, more, err)
	}
	for _, bad := range []struct {
		after int64
		limit int
	}{{0, 0}, {0, readapi.MaxFeedPage + 1}, {-1, 10}} {
		if _, _, err := r.Events(ctx, l.a, bad.after, bad.limit); !errors.Is(err, domain.ErrValidation) {
			t.Fatalf("after %d limit %d: %v", bad.after, bad.limit, err)
		}
	}

	// A rebuild into a fresh database that keeps copies, in one go,
	// numbers every event the same and reads the same.
	fresh := separateSQLite(t)
	if err := projections.Migrate(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := projections.NewRunner(l.store, fresh, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rf := readapi.NewSQL(fresh)
	if again := wholeFeed(t, rf, l.a); !reflect.DeepEqual(again, feedA) {
		t.Fatalf("rebuilt feed of A differs:\n%v\n%v", again, feedA)
	}
	if again := wholeFeed(t, rf, l.b); !reflect.DeepEqual(again, feedB) {
		t.Fatalf("rebuilt feed of B differs")
	}
}

// A gateway whose log is in its database but whose feed holds copies
// (written before the feed kept references): new events are referenced
// after the copies, the feed and the ledger export read both as one, and
// the blue/green rebuild (projections.Rebuild) turns the copies into
// references with the same ids; the live runner numbers on after it.
func TestEventFeedCopiesThenRefsSQLite(t *testing.T) { testCopiesThenRefs(t, sqliteLog, sameSQLite) }
func TestEventFeedCopiesThenRefsPostgres(t *testing.T) {
	testCopiesThenRefs(t, postgresLog, samePostgres)
}

func testCopiesThenRefs(t *testing.T, openLog func(*testing.T) eventstore.Store, newDB func(*testing.T, eventstore.Store) sqldb.DB) {
	ctx := context.Background()
	l := newFeedLogIn(t, openLog(t))
	db := newDB(t, l.store)
	before := db
	before.LogTable = ""
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	l.round(t, 1)
	if err := projections.NewRunner(l.store, before, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	l.round(t, 2)
	if err := projections.NewRunner(l.store, db, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	count := func(table string) int {
		var n int
		if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	copies, refs := count("event_feed"), count("event_feed_refs")
	if copies == 0 || refs == 0 {
		t.Fatalf("%d copies and %d references: want both", copies, refs)
	}
	r := readapi.NewSQL(db)
	// A merchant without copies does not hide the others' copies.
	if none := wholeFeed(t, r, "mer_nobody"); len(none) != 0 {
		t.Fatalf("unknown merchant sees %d events", len(none))
	}
	feedA := wholeFeed(t, r, l.a)
	checkFeed(t, feedA, merchantLog(t, l.store, l.a))
	checkFeed(t, wholeFeed(t, r, l.b), merchantLog(t, l.store, l.b))

	// A page across the last copy and the first references.
	var lastCopy int64
	if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT MAX(seq) FROM event_feed WHERE merchant_id = ?`), l.a).Scan(&lastCopy); err != nil {
		t.Fatal(err)
	}
	page, more, err := r.Events(ctx, l.a, lastCopy-2, 4)
	if err != nil || !more || len(page) != 4 || page[0].Seq != lastCopy-1 || page[3].Seq != lastCopy+2 {
		t.Fatalf("page after %d: %v %v %v", lastCopy-2, page, more, err)
	}

	// The ledger export, and one in a period, read the same from a
	// database of copies only.
	allCopies := separateSQLite(t)
	if err := projections.Migrate(ctx, allCopies); err != nil {
		t.Fatal(err)
	}
	if err := projections.NewRunner(l.store, allCopies, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	ledger := func(r *readapi.SQL, from, to time.Time) []readapi.LedgerEntry {
		var out []readapi.LedgerEntry
		if err := r.ExportLedger(ctx, l.a, from, to, func(e readapi.LedgerEntry) error { out = append(out, e); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	all := ledger(r, time.Time{}, time.Time{})
	if want := ledger(readapi.NewSQL(allCopies), time.Time{}, time.Time{}); len(all) == 0 || !reflect.DeepEqual(all, want) {
		t.Fatalf("ledger of copies and references:\n%v\nof copies:\n%v", all, want)
	}
	from, to := all[1].RecordedAt, all[len(all)-1].RecordedAt
	part := ledger(r, from, to)
	if want := ledger(readapi.NewSQL(allCopies), from, to); len(part) == 0 || len(part) >= len(all) || !reflect.DeepEqual(part, want) {
		t.Fatalf("ledger of [%v, %v): %d entries of %d, from copies %d", from, to, len(part), len(all), len(want))
	}

	if err := projections.Rebuild(ctx, l.store, db, []string{"event_feed"}, nil); err != nil {
		t.Fatal(err)
	}
	if n, m := count("event_feed"), count("event_feed_refs"); n != 0 || m != copies+refs {
		t.Fatalf("after the rebuild: %d copies and %d references, want 0 and %d", n, m, copies+refs)
	}
	if after := wholeFeed(t, r, l.a); !reflect.DeepEqual(after, feedA) {
		t.Fatalf("after a rebuild:\n%v\nbefore:\n%v", after, feedA)
	}
	l.round(t, 3)
	if err := projections.NewRunner(l.store, db, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	checkFeed(t, wholeFeed(t, r, l.a), merchantLog(t, l.store, l.a))
	// The ids are the merchant's own sequence.
	if got := wholeFeed(t, r, l.b); got[len(got)-1].JSON().ID != strconv.Itoa(len(got)) {
		t.Fatalf("B's last id %s of %d events", got[len(got)-1].JSON().ID, len(got))
	}
}
