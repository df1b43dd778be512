package projections_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

func derive(chain domain.Chain, index int64) (string, error) {
	return fmt.Sprintf("%s-addr-%d", chain, index), nil
}

// separateSQLite opens a read-model database in its own file.
func separateSQLite(t *testing.T) sqldb.DB {
	return sqldbtest.SQLite(t)
}

// postgresDB gives the test its own schema on the real Postgres.
func postgresDB(t *testing.T) sqldb.DB {
	return sqldbtest.Postgres(t, "rm")
}

func TestProjectionsSQLite(t *testing.T)   { testProjections(t, separateSQLite) }
func TestProjectionsPostgres(t *testing.T) { testProjections(t, postgresDB) }

// testProjections drives commands, projects, checks the read models, then
// rebuilds into a fresh database from the log and compares.
func testProjections(t *testing.T, newDB func(*testing.T) sqldb.DB) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })

	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "r", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < 5; i++ {
		now = now.Add(time.Millisecond)
		inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: fmt.Sprint("i", i), MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: "49.99"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, inv.Invoice.InvoiceID)
	}
	pay := func(inv, dep, amount string, confirm bool) {
		t.Helper()
		if _, err := h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{CommandID: "o" + dep, InvoiceID: inv,
			Deposit: domain.ObservedDeposit{DepositID: dep, TxID: dep, Amount: domain.MustAmount(amount)}}); err != nil {
			t.Fatal(err)
		}
		if confirm {
			if _, err := h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{CommandID: "c" + dep, InvoiceID: inv, DepositID: dep, Confirmations: 12}); err != nil {
				t.Fatal(err)
			}
		}
	}
	pay(ids[0], "d0", "49.99", true) // paid: 49.99 - 0.124975, in pending until final (below)
	pay(ids[1], "d1", "10", false)   // partially paid, pending 10
	pay(ids[2], "d2", "49.99", false)
	if _, err := h.RevertDeposit.Handle(ctx, commands.RevertDeposit{CommandID: "rv", InvoiceID: ids[2], DepositID: "d2", Reason: "reorg"}); err != nil {
		t.Fatal(err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := h.ExpireInvoice.Handle(ctx, commands.ExpireInvoice{CommandID: "x", InvoiceID: ids[3]}); err != nil {
		t.Fatal(err)
	}

	db := newDB(t)
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	runner := projections.NewRunner(store, db, slog.Default())
	if err := runner.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	r := readapi.NewSQL(db)
	// Paid is not yet spendable (money rule 4): d0's net is in pending
	// with d1 until d0 is final.
	bal, err := r.Balances(ctx, m.MerchantID)
	if err != nil || len(bal) != 1 || bal[0].Available.String() != "0" || bal[0].Pending.String() != "59.865025" {
		t.Fatalf("balances before finality = %+v, %v", bal, err)
	}
	if _, err := h.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{CommandID: "fd0", InvoiceID: ids[0], DepositID: "d0", Depth: 64}); err != nil {
		t.Fatal(err)
	}
	// d1 is not credited: it cannot be final.
	if _, err := h.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{CommandID: "fd1", InvoiceID: ids[1], DepositID: "d1", Depth: 64}); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("finalized a deposit that was never confirmed: %v", err)
	}
	if err := runner.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	wantStatus := []domain.Status{domain.StatusPaid, domain.StatusPartiallyPaid, domain.StatusNew, domain.StatusExpired, domain.StatusNew}
	for i, id := range ids {
		inv, err := r.InvoiceByID(ctx, m.MerchantID, id)
		if err != nil {
			t.Fatal(err)
		}
		if inv.Status != wantStatus[i] {
			t.Errorf("invoice %d status %s, want %s", i, inv.Status, wantStatus[i])
		}
	}
	// The read model and a fold of the invoice's own stream agree.
	for _, id := range ids {
		fromModel, _ := r.InvoiceByID(ctx, m.MerchantID, id)
		recs, err := eventstore.ReadFullStream(ctx, store, commands.InvoiceStream(id))
		if err != nil {
			t.Fatal(err)
		}
		var evs []domain.Event
		for _, rec := range recs {
			e, err := domain.Decode(rec.Type, rec.Data)
			if err != nil {
				t.Fatal(err)
			}
			evs = append(evs, e)
		}
		fromLog, err := readapi.InvoiceFromEvents(evs)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(fromModel.JSON("http://x"))
		b, _ := json.Marshal(fromLog.JSON("http://x"))
		if string(a) != string(b) {
			t.Fatalf("read model and stream fold differ:\n%s\n%s", a, b)
		}
	}
	paid, _ := r.InvoiceByID(ctx, m.MerchantID, ids[0])
	if paid.PaidAt == nil || paid.AmountReceived.String() != "49.99" || len(paid.Payments) != 1 || paid.Payments[0].Status != readapi.PaymentConfirmed {
		t.Fatalf("paid invoice: %+v", paid)
	}
	if reverted, _ := r.InvoiceByID(ctx, m.MerchantID, ids[2]); reverted.AmountReceived.String() != "0" || reverted.Payments[0].Status != readapi.PaymentReverted {
		t.Fatalf("reverted invoice: %+v", reverted)
	}
	if _, err := r.InvoiceByID(ctx, "mer_other", ids[0]); err == nil {
		t.Fatal("another merchant read the invoice")
	}
	bal, err = r.Balances(ctx, m.MerchantID)
	if err != nil || len(bal) != 1 || bal[0].Available.String() != "49.865025" || bal[0].Pending.String() != "10" {
		t.Fatalf("balances = %+v, %v", bal, err)
	}
	page, more, err := r.ListInvoices(ctx, m.MerchantID, readapi.InvoiceFilter{Limit: 2})
	if err != nil || len(page) != 2 || !more || page[0].ID != ids[4] || page[1].ID != ids[3] {
		t.Fatalf("page 1: %v %v %v", page, more, err)
	}
	page, more, err = r.ListInvoices(ctx, m.MerchantID, readapi.InvoiceFilter{Limit: 2, StartingAfter: page[1].ID})
	if err != nil || len(page) != 2 || !more || page[0].ID != ids[2] {
		t.Fatalf("page 2: %v %v %v", page, more, err)
	}
	// A page reads each invoice's payments in the same query: they are
	// the ones InvoiceByID reads.
	page, _, err = r.ListInvoices(ctx, m.MerchantID, readapi.InvoiceFilter{Limit: 10})
	if err != nil || len(page) != len(ids) {
		t.Fatalf("whole list: %d invoices, %v", len(page), err)
	}
	for i, inv := range page {
		one, err := r.InvoiceByID(ctx, m.MerchantID, inv.ID)
		if err != nil {
			t.Fatal(err)
		}
		a, _ := json.Marshal(inv.JSON("http://x"))
		b, _ := json.Marshal(one.JSON("http://x"))
		if inv.ID != ids[len(ids)-1-i] || string(a) != string(b) {
			t.Fatalf("list row %d differs from InvoiceByID:\n%s\n%s", i, a, b)
		}
	}
	page, _, _ = r.ListInvoices(ctx, m.MerchantID, readapi.InvoiceFilter{Limit: 10, Status: domain.StatusNew})
	if len(page) != 2 {
		t.Fatalf("status filter: %d invoices", len(page))
	}
	if id, err := r.MerchantByKey(ctx, readapi.SecretKey, commands.HashSecretKey(m.SecretKey)); err != nil || id != m.MerchantID {
		t.Fatalf("key lookup: %s %v", id, err)
	}
	due, _ := r.DueInvoices(ctx, now, 10)
	if len(due) != 3 { // ids 1, 2, 4 are open and past their hour
		t.Fatalf("due = %v", due)
	}

	rep, err := projections.Audit(ctx, store, db)
	// Money events: three detections, a confirmation, a reversal, a finality.
	if err != nil || !rep.OK() || rep.FeesChecked != 6 || rep.MoneyEvents != 6 {
		t.Fatalf("audit: %+v %v", rep, err)
	}
	if got := rep.Ledger[domain.FeeAccount]["USDT.ETH"].String(); got != "0.124975" {
		t.Fatalf("fee account = %s", got)
	}
	// An audit that lets each invoice go after every event, so that it
	// rebuilds the invoice from its stream whenever the log names it again,
	// gives the same report.
	revived := projections.AuditOptions{Window: 1, CompareBatch: 1}
	if again, err := projections.AuditWith(ctx, store, db, revived); err != nil || !again.OK() || again.FeesChecked != rep.FeesChecked ||
		again.MoneyEvents != rep.MoneyEvents || again.RowsCompared != rep.RowsCompared || fmt.Sprint(again.Ledger) != fmt.Sprint(rep.Ledger) ||
		fmt.Sprint(again.FeeRevenue) != fmt.Sprint(rep.FeeRevenue) || again.InvoicesRevived == 0 || rep.InvoicesRevived != 0 {
		t.Fatalf("audit with every invoice revived: %+v %v\nheld: %+v", again, err, rep)
	}
	// An invoice row under another id: the invoice is missing from the read
	// model, and the row is not in the log.
	renamed := "inv_" + strings.Repeat("z", 26)
	if _, err := db.Write.Exec(db.Q(`UPDATE invoices SET invoice_id = ? WHERE invoice_id = ?`), renamed, ids[0]); err != nil {
		t.Fatal(err)
	}
	for _, opt := range []projections.AuditOptions{{}, revived} {
		rep, _ := projections.AuditWith(ctx, store, db, opt)
		if got := fmt.Sprint(rep.Problems); !strings.Contains(got, "invoice "+ids[0]+": missing from the read model") ||
			!strings.Contains(got, "invoice "+renamed+": in the read model, not in the log") || len(rep.Problems) != 2 {
			t.Fatalf("audit of a renamed invoice row: %v", rep.Problems)
		}
	}
	if _, err := db.Write.Exec(db.Q(`UPDATE invoices SET invoice_id = ? WHERE invoice_id = ?`), ids[0], renamed); err != nil {
		t.Fatal(err)
	}
	// The counts by status (the picd_invoices gauge) are kept by the
	// projector, equal to counting the rows, and checked by the audit.
	if got, want := statusCounts(t, db, `SELECT status, n FROM invoice_status_counts WHERE n <> 0`),
		statusCounts(t, db, `SELECT status, count(*) FROM invoices GROUP BY status`); got != want || !strings.Contains(got, "paid:1") {
		t.Fatalf("invoice_status_counts %s, invoices %s", got, want)
	}
	if _, err := db.Write.Exec(`UPDATE invoice_status_counts SET n = n + 1 WHERE status = 'new'`); err != nil {
		t.Fatal(err)
	}
	if rep, _ := projections.Audit(ctx, store, db); rep.OK() || !strings.Contains(fmt.Sprint(rep.Problems), "invoices new: the read model counts 3, the log has 2") {
		t.Fatalf("audit of a tampered count: %v", rep.Problems)
	}
	if _, err := db.Write.Exec(`UPDATE invoice_status_counts SET n = n - 1 WHERE status = 'new'`); err != nil {
		t.Fatal(err)
	}
	// A tampered read model is caught.
	if _, err := db.Write.Exec(`UPDATE balances SET available = '1000'`); err != nil {
		t.Fatal(err)
	}
	if rep, _ := projections.Audit(ctx, store, db); rep.OK() {
		t.Fatal("audit missed a tampered balance")
	}

	// A fresh rebuild from the log gives the same balances.
	fresh := newDB(t)
	if err := projections.Migrate(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := projections.NewRunner(store, fresh, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	again, _ := readapi.NewSQL(fresh).Balances(ctx, m.MerchantID)
	if fmt.Sprint(again) != fmt.Sprint(bal) {
		t.Fatalf("rebuild %v != live %v", again, bal)
	}
}

// A runner restarted from its checkpoint neither re-applies nor skips.
func TestRunnerResumesFromCheckpoint(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clock := time.Now
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	m, _ := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "r", Name: "Shop"})
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	confirmOne := func(i int) string {
		inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: fmt.Sprint("i", i), MerchantID: m.MerchantID, Asset: "BTC", Amount: "1"})
		if err != nil {
			t.Fatal(err)
		}
		id := inv.Invoice.InvoiceID
		h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{CommandID: fmt.Sprint("o", i), InvoiceID: id, Deposit: domain.ObservedDeposit{DepositID: "d", Amount: domain.MustAmount("1")}})
		h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{CommandID: fmt.Sprint("c", i), InvoiceID: id, DepositID: "d", Confirmations: 6})
		return id
	}
	restart := func() []readapi.Balance {
		t.Helper()
		if err := projections.NewRunner(store, db, slog.Default()).CatchUp(ctx); err != nil {
			t.Fatal(err)
		}
		bal, err := readapi.NewSQL(db).Balances(ctx, m.MerchantID)
		if err != nil || len(bal) != 1 {
			t.Fatalf("balances: %+v %v", bal, err)
		}
		return bal
	}
	available := domain.MustAmount("0")
	for round := 0; round < 3; round++ {
		id := confirmOne(round)
		// Confirmed, not yet final (money rule 4): the net is in pending.
		if bal := restart(); !bal[0].Available.Equal(available) || bal[0].Pending.String() != "0.9975" {
			t.Fatalf("round %d, confirmed: %+v", round, bal)
		}
		if _, err := h.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{CommandID: fmt.Sprint("f", round), InvoiceID: id, DepositID: "d", Depth: 6}); err != nil {
			t.Fatal(err)
		}
		available = available.Add(domain.MustAmount("0.9975"))
		if bal := restart(); !bal[0].Available.Equal(available) || bal[0].Pending.String() != "0" {
			t.Fatalf("round %d, final: %+v", round, bal)
		}
	}
	bal := restart()
	if bal[0].Available.String() != "2.9925" || bal[0].Pending.String() != "0" {
		t.Fatalf("after six runner restarts: %+v", bal)
	}
}

// Two runners on one read-model database (a leader and a former leader
// still finishing) never apply an event twice.
func TestTwoRunnersApplyOnce(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	clock := time.Now
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	m, _ := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "r", Name: "Shop"})
	for i := 0; i < 300; i++ {
		inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: fmt.Sprint("i", i), MerchantID: m.MerchantID, Asset: "BTC", Amount: "1"})
		if err != nil {
			t.Fatal(err)
		}
		h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{InvoiceID: inv.Invoice.InvoiceID, Deposit: domain.ObservedDeposit{DepositID: "d", Amount: domain.MustAmount("1")}})
	}
	db := postgresDB(t)
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() { errs <- projections.NewRunner(store, db, slog.Default()).CatchUp(ctx) }()
	}
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil && !strings.Contains(err.Error(), "checkpoint moved") {
			t.Fatal(err)
		}
	}
	if err := projections.NewRunner(store, db, slog.Default()).CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	rep, err := projections.Audit(ctx, store, db)
	if err != nil || !rep.OK() {
		t.Fatalf("audit after two runners: %v %v", rep.Problems, err)
	}
	bal, _ := readapi.NewSQL(db).Balances(ctx, m.MerchantID)
	if len(bal) != 1 || bal[0].Pending.String() != "300" {
		t.Fatalf("balances = %+v", bal)
	}
}

// TestRebuildSwapsWhileServing rebuilds every projection beside the live
// tables while a live runner keeps applying new events, then checks that
// the swapped-in tables equal a fresh projection and the audit passes.
func TestRebuildSQLite(t *testing.T)   { testRebuild(t, true) }
func TestRebuildPostgres(t *testing.T) { testRebuild(t, false) }

func testRebuild(t *testing.T, embedded bool) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	store, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	if !embedded {
		db = postgresDB(t)
	}
	if err := projections.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	clock := time.Now
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })
	m, _ := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "r", Name: "Shop"})
	// pay confirms a payment and, but for the last one, makes it final
	// (money rule 4: the net moves from pending to available).
	var last string
	pay := func(i int) {
		inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: fmt.Sprint("i", i), MerchantID: m.MerchantID, Asset: "BTC", Amount: "1"})
		if err != nil {
			t.Error(err)
			return
		}
		h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{InvoiceID: inv.Invoice.InvoiceID, Deposit: domain.ObservedDeposit{DepositID: "d", Amount: domain.MustAmount("1")}})
		h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{InvoiceID: inv.Invoice.InvoiceID, DepositID: "d", Confirmations: 6})
		if i == 299 {
			last = inv.Invoice.InvoiceID
			return
		}
		if _, err := h.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{InvoiceID: inv.Invoice.InvoiceID, DepositID: "d", Depth: 6}); err != nil {
			t.Error(err)
		}
	}
	for i := 0; i < 200; i++ {
		pay(i)
	}
	live := projections.NewRunner(store, db, slog.Default())
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { live.Run(runCtx); close(done) }()
	writes := make(chan struct{})
	go func() { // the service keeps taking payments during the rebuild
		for i := 200; i < 300; i++ {
			pay(i)
		}
		close(writes)
	}()
	var reports int
	indexesBefore := indexNames(t, db)
	// Another process's connection, its schema read before the rebuild.
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	addressPlan := func() string {
		t.Helper()
		var n int
		if err := other.QueryRow(`SELECT count(*) FROM invoices WHERE pay_address = 'x'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		var id, parent, unused int
		var detail string
		if err := other.QueryRow(`EXPLAIN QUERY PLAN SELECT count(*) FROM invoices WHERE pay_address = 'x'`).Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		return detail
	}
	if embedded {
		if plan := addressPlan(); !strings.Contains(plan, "INDEX invoices_address ") {
			t.Fatalf("plan before the rebuild: %s", plan)
		}
	}
	// An old table a former rebuild left behind (stopped between its swap
	// and the drop) would take the name the swap gives the live one.
	if _, err := db.Write.Exec(`CREATE TABLE balances__old (x INTEGER)`); err != nil {
		t.Fatal(err)
	}
	var phases []string
	yields := 0
	if err := projections.RebuildWith(ctx, store, db, nil, projections.RebuildOptions{
		Progress: func(projections.RebuildProgress) { reports++ },
		Phase: func(name string, _ time.Duration) {
			phases = append(phases, name)
			if name == "catch-up" && embedded {
				if pages := walAutocheckpoint(t, db); pages != 20_000 {
					t.Errorf("the WAL's checkpoint during the rebuild: every %d pages, want 20,000", pages)
				}
			}
			if name == "swap" && embedded {
				// The swap set the old tables' indexes aside, renamed, for
				// the drops after it; the file is sound in between.
				var aside int
				if err := db.Write.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND name LIKE '%\_\_old' ESCAPE '\' AND tbl_name LIKE '%\_\_old' ESCAPE '\'`).Scan(&aside); err != nil || aside != 10 {
					t.Errorf("indexes set aside by the swap: %d %v; want 10", aside, err)
				}
				var check string
				if err := db.Write.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
					t.Errorf("integrity_check after the swap: %q %v", check, err)
				}
			}
		},
		Yield: func(context.Context) { yields++ },
	}); err != nil {
		t.Fatal(err)
	}
	<-writes
	if embedded {
		if pages := walAutocheckpoint(t, db); pages != 1000 {
			t.Errorf("the WAL's checkpoint after the rebuild: every %d pages, want SQLite's 1,000 again", pages)
		}
	}
	if got := strings.Join(phases, ", "); got != "catch-up, held rows, indexes, catch-up again, swap, old tables dropped" {
		t.Fatalf("phases: %s", got)
	}
	// Before each of the 10 index builds and the swap; on SQLite also each
	// of the 10 old tables' drops and their 10 indexes' (after the swap
	// there, not in it).
	if want := map[bool]int{true: 31, false: 11}[embedded]; yields != want {
		t.Fatalf("the rebuild yielded %d times, want %d", yields, want)
	}
	var left []string
	for _, table := range []string{"invoices", "payments", "balances", "merchants", "event_feed_refs"} {
		var n int
		q := `SELECT count(*) FROM sqlite_schema WHERE name = ?`
		if !embedded {
			q = `SELECT count(*) FROM (SELECT to_regclass($1) AS r) t WHERE r IS NOT NULL`
		}
		if err := db.Write.QueryRow(q, table+"__old").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			left = append(left, table+"__old")
		}
	}
	if len(left) > 0 {
		t.Fatalf("old tables left after the rebuild: %v", left)
	}
	if embedded {
		// The index builds' settings were set back on the writer.
		var threads, tempStore int
		if err := db.Write.QueryRow(`PRAGMA threads`).Scan(&threads); err != nil {
			t.Fatal(err)
		}
		if err := db.Write.QueryRow(`PRAGMA temp_store`).Scan(&tempStore); err != nil {
			t.Fatal(err)
		}
		if threads != 0 || tempStore != 2 {
			t.Fatalf("writer after the rebuild: threads %d, temp_store %d; want 0 and 2 (memory)", threads, tempStore)
		}
	}
	// The rebuilt tables carry the live ones' index names, so a later
	// migration that names an index finds it.
	if after := indexNames(t, db); after != indexesBefore {
		t.Fatalf("index names after the rebuild:\n%s\nbefore:\n%s", after, indexesBefore)
	}
	if embedded {
		// The indexes were renamed in sqlite_schema: the file is sound, and
		// a connection that read the schema before reads it again.
		var check string
		if err := db.Write.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("integrity_check: %q %v", check, err)
		}
		if plan := addressPlan(); !strings.Contains(plan, "INDEX invoices_address ") {
			t.Fatalf("plan after the rebuild: %s", plan)
		}
	}
	waitFor := func(what, available, pending string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			bal, _ := readapi.NewSQL(db).Balances(ctx, m.MerchantID)
			if len(bal) == 1 && bal[0].Available.String() == available && bal[0].Pending.String() == pending {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the rebuild the live runner did not reach %s: %+v", what, bal)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// 299 payments final, the last one confirmed: its net in pending.
	waitFor("300 payments, 299 final", "298.2525", "0.9975")
	if _, err := h.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{InvoiceID: last, DepositID: "d", Depth: 6}); err != nil {
		t.Fatal(err)
	}
	waitFor("300 final payments", "299.25", "0")
	stop()
	<-done
	rep, err := projections.Audit(ctx, store, db)
	if err != nil || !rep.OK() {
		t.Fatalf("audit after rebuild: %v %v", rep.Problems, err)
	}
	page, _, err := readapi.NewSQL(db).ListInvoices(ctx, m.MerchantID, readapi.InvoiceFilter{Limit: 100, Status: domain.StatusPaid})
	if err != nil || len(page) != 100 {
		t.Fatalf("invoices after rebuild: %d %v", len(page), err)
	}
	if reports == 0 {
		t.Fatal("no progress reported")
	}
	// A second rebuild works on the swapped-in tables too.
	if err := projections.Rebuild(ctx, store, db, []string{"balances", "invoices"}, nil); err != nil {
		t.Fatalf("second rebuild: %v", err)
	}
	if rep, _ := projections.Audit(ctx, store, db); !rep.OK() {
		t.Fatalf("audit after second rebuild: %v", rep.Problems)
	}
	if after := indexNames(t, db); after != indexesBefore {
		t.Fatalf("index names after the second rebuild:\n%s\nbefore:\n%s", after, indexesBefore)
	}
}

// indexNames lists the read models' indexes as "table index" lines, sorted.
func indexNames(t *testing.T, db sqldb.DB) string {
	t.Helper()
	// With their definitions: a rebuild builds the indexes after the rows.
	q := `SELECT tbl_name || ' ' || name || ' ' || COALESCE(sql, '') FROM sqlite_master WHERE type = 'index'
		AND tbl_name IN ('invoices', 'payments', 'balances', 'merchants', 'payout_settings', 'payouts', 'event_feed') ORDER BY 1`
	if db.Dialect == sqldb.Postgres {
		q = `SELECT tablename || ' ' || indexname || ' ' || indexdef FROM pg_indexes WHERE schemaname = current_schema()
			AND tablename IN ('invoices', 'payments', 'balances', 'merchants', 'payout_settings', 'payouts', 'event_feed') ORDER BY 1`
	}
	rows, err := db.Read.Query(q)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.Join(strings.Fields(strings.ReplaceAll(s, `"`, "")), " "))
	}
	return strings.Join(out, "\n")
}

// statusCounts renders a (status, count) query's rows in status order.
func statusCounts(t *testing.T, db sqldb.DB, query string) string {
	t.Helper()
	rows, err := db.Read.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s:%d", status, n))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// walAutocheckpoint reads how many pages the SQLite writer's WAL holds
// before it is copied into the database file.
func walAutocheckpoint(t *testing.T, db sqldb.DB) int {
	t.Helper()
	var pages int
	if err := db.Write.QueryRow(`PRAGMA wal_autocheckpoint`).Scan(&pages); err != nil {
		t.Fatal(err)
	}
	return pages
}
