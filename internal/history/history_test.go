package history_test

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/internal/history"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

func smallConfig() history.Config {
	return history.Config{Events: 20000, Merchants: 40, Seed: 7, Workers: 8,
		Start: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		PayoutEvery: 10, FailEvery: 10}
}

// A 20,000-event history on each store: every event counted is in the log,
// the mix is the one asked for, the audit finds no problem, the read models
// agree with the log, and a rebuild gives the same answer.
func TestGeneratedHistoryAudits(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		s, db := sqliteStore(t)
		checkHistory(t, s, db)
	})
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		db := sqldbtest.Postgres(t, "history")
		var schema string
		if err := db.Read.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
			t.Fatal(err)
		}
		s, err := postgres.Open(ctx, sqldbtest.PostgresURL(), postgres.WithSchema(schema+"_events"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			s.Close()
			db.Write.Exec(`DROP SCHEMA ` + schema + `_events CASCADE`)
		})
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		checkHistory(t, s, db)
	})
}

// With Spread, the invoices' lives interleave in the log as a gateway's
// do: an audit that lets invoices go after a short window must read many
// of them again from their streams, and still find what one that holds
// them all finds.
func TestSpreadHistoryInterleavesInvoices(t *testing.T) {
	ctx := context.Background()
	s, db, rep := spreadHistory(t)
	audit(t, s, db, rep.Events)
	checkStatuses(t, db, rep)
	held, err := projections.Audit(ctx, s, db)
	if err != nil {
		t.Fatal(err)
	}
	short, err := projections.AuditWith(ctx, s, db, projections.AuditOptions{Window: 100, CompareBatch: 7})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d events, %d invoices revived with a window of 100 events", short.Events, short.InvoicesRevived)
	if held.InvoicesRevived != 0 || short.InvoicesRevived < 100 {
		t.Fatalf("invoices revived: %d holding them, %d with a window of 100 events", held.InvoicesRevived, short.InvoicesRevived)
	}
	if a, b := fmt.Sprint(short.RowsCompared, short.Ledger, short.FeeRevenue, short.Problems), fmt.Sprint(held.RowsCompared, held.Ledger,
		held.FeeRevenue, held.Problems); a != b {
		t.Fatalf("a window of 100 events:\n%s\nholding them:\n%s", a, b)
	}
}

// spreadHistory is a 10,000-event history whose invoices' lives
// interleave (Spread), on SQLite, with its read models rebuilt.
func spreadHistory(t *testing.T) (*sqlite.Store, sqldb.DB, history.Report) {
	ctx := context.Background()
	s, db := sqliteStore(t)
	cfg := smallConfig()
	cfg.Events, cfg.Spread = 10000, 50
	rep, err := history.Generate(ctx, s, nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := projections.Rebuild(ctx, s, db, nil, nil); err != nil {
		t.Fatal(err)
	}
	return s, db, rep
}

func sqliteStore(t *testing.T) (*sqlite.Store, sqldb.DB) {
	s, err := sqlite.Open(filepath.Join(t.TempDir(), "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite}
}

func checkHistory(t *testing.T, store eventstore.Store, db sqldb.DB) {
	ctx := context.Background()
	cfg := smallConfig()
	rep, err := history.Generate(ctx, store, nil, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %d events in %s (%.0f events/s), invoices %v, payouts %d, failed %d", rep.Events, rep.Elapsed.Round(time.Millisecond),
		float64(rep.Events)/rep.Elapsed.Seconds(), rep.Invoices, rep.Payouts, rep.FailedPayouts)
	if rep.Events < int64(cfg.Events) || rep.Events > int64(cfg.Events)+int64(cfg.Workers)*8 {
		t.Errorf("wrote %d events, want %d (each writer may pass its share by one invoice and payout)", rep.Events, cfg.Events)
	}
	// Postgres shows an append once every write transaction open on the
	// server before it ended (other packages' tests write beside this one).
	n := countLog(t, store)
	for deadline := time.Now().Add(time.Minute); n < rep.Events && time.Now().Before(deadline); n = countLog(t, store) {
		time.Sleep(100 * time.Millisecond)
	}
	if n != rep.Events {
		t.Errorf("the log holds %d events, the report says %d", n, rep.Events)
	}
	if len(rep.Merchants) != cfg.Merchants || rep.Merchants[0].SecretKey == "" {
		t.Errorf("merchants: %d (first %+v), want %d with keys", len(rep.Merchants), rep.Merchants[0], cfg.Merchants)
	}
	checkMix(t, rep)
	if rep.Payouts == 0 || rep.FailedPayouts == 0 {
		t.Errorf("payouts %d, failed %d: want both", rep.Payouts, rep.FailedPayouts)
	}

	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	// Rebuilt before any projector ran (as after picd generate), then
	// caught up: the runner starts where the rebuild ended.
	if err := projections.Rebuild(ctx, store, db, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := projections.NewRunner(store, db, nil).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	audit(t, store, db, rep.Events)
	checkStatuses(t, db, rep)
	// The payouts' counts by status (picd_payouts) are audited: one more
	// confirmed in the table than in the log is named. The rebuild below
	// writes them again.
	if _, err := db.Write.Exec(`UPDATE payout_status_counts SET n = n + 1 WHERE status = 'confirmed'`); err != nil {
		t.Fatal(err)
	}
	if a, err := projections.Audit(ctx, store, db); err != nil || !strings.Contains(fmt.Sprint(a.Problems), "payouts confirmed: the read model counts") {
		t.Fatalf("audit of a tampered payout count: %v %v", a.Problems, err)
	}
	if err := projections.Rebuild(ctx, store, db, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := projections.NewRunner(store, db, nil).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	audit(t, store, db, rep.Events)
}

func audit(t *testing.T, store eventstore.Store, db sqldb.DB, events int64) {
	t.Helper()
	a, err := projections.Audit(context.Background(), store, db)
	if err != nil {
		t.Fatal(err)
	}
	if !a.OK() || int64(a.Events) != events || a.Payouts == 0 {
		t.Fatalf("audit of %d events (want %d), %d payouts: problems %v", a.Events, events, a.Payouts, a.Problems)
	}
}

// checkMix: each kind's share of the invoices is the asked one, within
// what 4,000 draws allow.
func checkMix(t *testing.T, rep history.Report) {
	t.Helper()
	var total int64
	for _, n := range rep.Invoices {
		total += n
	}
	for _, k := range history.Kinds {
		want := history.DefaultMix[k]
		got := float64(rep.Invoices[k]) / float64(total)
		if tol := 4*math.Sqrt(want*(1-want)/float64(total)) + 0.002; math.Abs(got-want) > tol {
			t.Errorf("%s: %.3f of %d invoices, want %.3f ± %.3f", k, got, total, want, tol)
		}
	}
}

// checkStatuses: the invoices read model holds each kind's end status.
func checkStatuses(t *testing.T, db sqldb.DB, rep history.Report) {
	t.Helper()
	want := map[domain.Status]int64{
		domain.StatusPaid:     rep.Invoices[history.Paid],
		domain.StatusExpired:  rep.Invoices[history.Partial] + rep.Invoices[history.Late] + rep.Invoices[history.Expired],
		domain.StatusReverted: rep.Invoices[history.Reverted],
		domain.StatusNew:      rep.Invoices[history.Open],
	}
	rows, err := db.Read.Query(`SELECT status, COUNT(*) FROM invoices GROUP BY status`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	got := map[domain.Status]int64{}
	for rows.Next() {
		var s string
		var n int64
		if err := rows.Scan(&s, &n); err != nil {
			t.Fatal(err)
		}
		got[domain.Status(s)] = n
	}
	for s, n := range want {
		if got[s] != n {
			t.Errorf("status %s: %d invoices in the read model, want %d (all: %v)", s, got[s], n, got)
		}
	}
}

func countLog(t *testing.T, s eventstore.Store) int64 {
	t.Helper()
	var n int64
	for pos := eventstore.Start; ; {
		page, err := s.ReadAll(context.Background(), pos, 5000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			return n
		}
		n += int64(len(page))
		pos = page[len(page)-1].Position
	}
}

// The same Config writes the same history whatever the pipeline depth:
// every event (id, stream, version, type, data) but the merchants' own,
// which carry their random secrets. Only the log's order may differ.
func TestSameConfigSameHistory(t *testing.T) {
	ctx := context.Background()
	cfg := smallConfig()
	cfg.Events = 6000
	var got []map[string]string
	for _, pipeline := range []int{1, 8} {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "picd.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		cfg.Pipeline = pipeline
		if _, err := history.Generate(ctx, s, nil, cfg, nil); err != nil {
			t.Fatal(err)
		}
		events := map[string]string{}
		for pos := eventstore.Start; ; {
			page, err := s.ReadAll(ctx, pos, 5000)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			for _, e := range page {
				if !strings.HasPrefix(e.Stream, "merchant-") {
					events[e.ID] = fmt.Sprintf("%s %d %s %s", e.Stream, e.Version, e.Type, e.Data)
				}
			}
			pos = page[len(page)-1].Position
		}
		got = append(got, events)
	}
	if len(got[0]) < cfg.Events/2 || len(got[0]) != len(got[1]) {
		t.Fatalf("%d and %d events", len(got[0]), len(got[1]))
	}
	for id, e := range got[0] {
		if then := got[1][id]; then != e {
			i := 0
			for i < min(len(e), len(then)) && e[i] == then[i] {
				i++
			}
			t.Fatalf("event %s differs at byte %d: %.60s…\nthen: %.60s…\n(%.120s)", id, i, e[i:], then[i:], e)
		}
	}
}

// The audit compares a payout with its read-model row once the log has
// ended it and lets it go, so it holds the payouts open at a point of the
// log, not all of them; a wrong, missing or extra row of an ended payout
// is still named.
func TestAuditLetsEndedPayoutsGo(t *testing.T) {
	ctx := context.Background()
	s, db, gen := spreadHistory(t)
	rep, err := projections.Audit(ctx, s, db)
	if err != nil || !rep.OK() {
		t.Fatalf("audit: %v %v", err, rep.Problems)
	}
	t.Logf("%d payouts (%d failed), at most %d held at once", rep.Payouts, gen.FailedPayouts, rep.PayoutsHeldMost)
	if int64(rep.Payouts) != gen.Payouts+gen.FailedPayouts && int64(rep.Payouts) != gen.Payouts {
		t.Fatalf("audit counted %d payouts, the generator wrote %d and %d failed", rep.Payouts, gen.Payouts, gen.FailedPayouts)
	}
	if rep.Payouts < 50 || rep.PayoutsHeldMost > rep.Payouts/10 {
		t.Fatalf("%d payouts, %d held at once", rep.Payouts, rep.PayoutsHeldMost)
	}
	var ids []string
	rows, err := db.Read.Query(`SELECT payout_id FROM payouts WHERE status = 'confirmed' ORDER BY payout_id LIMIT 3`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if len(ids) != 3 {
		t.Fatalf("confirmed payouts: %v", ids)
	}
	extra := ids[2] + "x"
	for _, q := range []string{
		`UPDATE payouts SET amount = '1' WHERE payout_id = '` + ids[0] + `'`,
		`DELETE FROM payouts WHERE payout_id = '` + ids[1] + `'`,
		// A row whose request is another payout's.
		`INSERT INTO payouts SELECT '` + extra + `', merchant_id, asset, kind, amount, to_address, status, txid, network_fee, sent_amount,
			source_invoice_id, failure_reason, request_stream, request_version, created_at, sent_at, confirmed_at, failed_at, updated_at
			FROM payouts WHERE payout_id = '` + ids[2] + `'`,
	} {
		if _, err := db.Write.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	for _, opt := range []projections.AuditOptions{{}, {Window: 1, CompareBatch: 1}} {
		rep, err := projections.AuditWith(ctx, s, db, opt)
		if err != nil {
			t.Fatal(err)
		}
		got := strings.Join(rep.Problems, "\n")
		if len(rep.Problems) != 3 || !strings.Contains(got, "payout "+ids[0]+": read model ") ||
			!strings.Contains(got, "payout "+ids[1]+": missing from the read model") ||
			!strings.Contains(got, "payout "+extra+": in the read model, not in the log") {
			t.Fatalf("audit %+v of a tampered payouts table:\n%s", opt, got)
		}
	}
}
