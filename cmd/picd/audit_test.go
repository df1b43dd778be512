package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// TestAuditCommand writes a small log with paid invoices and a withdrawal
// into a data directory, then runs "picd audit": the table, --json, and a
// non-zero result once a read-model row is corrupted.
func TestAuditCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock),
		Credits: fixedCredits{"USDT.ETH": "1000"}}
	h := commands.New(d, commands.StaticAddresses{domain.ChainEthereum: "0xabc"}, func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	// ledger reads the merchant's USDT.ETH accounts from the log alone.
	ledger := func(account string) string {
		t.Helper()
		rep, err := projections.AuditWith(ctx, store, sqldb.DB{}, projections.AuditOptions{SkipReadModels: true})
		if err != nil || !rep.OK() {
			t.Fatalf("audit of the log: %v %v", rep.Problems, err)
		}
		return rep.Ledger[account]["USDT.ETH"].String()
	}
	pending, available := domain.PendingAccount(m.MerchantID), domain.AvailableAccount(m.MerchantID)
	for i, amount := range []string{"49.99", "10"} {
		inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		dep := string(rune('a' + i))
		if _, err := h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{InvoiceID: inv.Invoice.InvoiceID,
			Deposit: domain.ObservedDeposit{DepositID: dep, TxID: dep, Amount: inv.Invoice.PayAmount}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{InvoiceID: inv.Invoice.InvoiceID, DepositID: dep, Confirmations: 12}); err != nil {
			t.Fatal(err)
		}
		// Money rule 4: the withdrawal below takes available funds, so the
		// payments are made final; the net is pending until then.
		before := domain.MustAmount(ledger(available))
		net := []string{"49.865025", "9.975"}[i]
		if got := ledger(pending); got != net {
			t.Fatalf("pending once paid = %s, want %s", got, net)
		}
		if _, err := h.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{InvoiceID: inv.Invoice.InvoiceID, DepositID: dep, Depth: 64}); err != nil {
			t.Fatal(err)
		}
		if got, want := ledger(available), before.Add(domain.MustAmount(net)).String(); got != want || ledger(pending) != "0" {
			t.Fatalf("once final: available %s, pending %s; want %s and 0", got, ledger(pending), want)
		}
	}
	if _, err := h.RequestPayout.Handle(ctx, commands.RequestPayout{MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: "20",
		ToAddress: "0x1111111111111111111111111111111111111111", Kind: domain.PayoutKindWithdrawal}); err != nil {
		t.Fatal(err)
	}
	// A sweep's gas the gateway paid (money rule 7), recorded twice as a
	// sender that sees the receipt again would: booked once.
	for i := 0; i < 2; i++ {
		if _, err := h.RecordNetworkCost.Handle(ctx, commands.RecordNetworkCost{Chain: domain.ChainEthereum, TxID: "0xSWEEP", Kind: domain.CostSweepGas,
			Asset: "ETH", Amount: domain.MustAmount("0.00042"), From: "0xabc", Ref: "swp_1"}); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	migrateData(t, dir)

	var out, errOut bytes.Buffer
	if err := auditCmd(ctx, []string{"--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("audit: %v\n%s", err, out.String())
	}
	for _, want := range []string{"RESULT: OK", "25 bps", "merchant:" + m.MerchantID + ":reserved", "platform:fees", "OPEN DEBTS: none",
		"sweep_gas     ETH    0.00042", "ETH              0            0.00042        -0.00042", "USDT.ETH         0.149975     0              0.149975",
		"merchant:" + m.MerchantID + ":available  USDT.ETH  39.840025"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("report lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := auditCmd(ctx, []string{"--json", "--data", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var rep struct {
		OK         bool                         `json:"ok"`
		Events     int                          `json:"events"`
		FeeRevenue map[string]map[string]string `json:"fee_revenue"`
		Held       map[string]string            `json:"held"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	// Fees: 49.99 → 0.124975, 10 → 0.025.
	// Held on chain by the ledger: both payments (the withdrawal is not
	// confirmed: still ours); the sweep's gas left ETH.
	if rep.Held["USDT.ETH"] != "59.99" || rep.Held["ETH"] != "-0.00042" {
		t.Fatalf("--json held: %v", rep.Held)
	}
	if !rep.OK || rep.Events < 10 || rep.FeeRevenue["25"]["USDT.ETH"] != "0.149975" {
		t.Fatalf("--json: %s", out.String())
	}

	store, err = sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteDB().Exec(`UPDATE balances SET reserved = '19.999999'`); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out.Reset()
	err = auditCmd(ctx, []string{"--data", dir}, &out, &errOut)
	if !errors.Is(err, errAuditMismatch) || exitCode(err) != 1 || !strings.Contains(out.String(), "PROBLEM: balance merchant:"+m.MerchantID+":reserved") {
		t.Fatalf("corrupted read model: %v (exit %d)\n%s", err, exitCode(err), out.String())
	}
}

// migrateData runs "picd migrate" on a data directory, as an operator
// does before serving: the audit itself never migrates.
func migrateData(t *testing.T, dir string) {
	t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "--data", dir}, &out, &out); err != nil {
		t.Fatalf("picd migrate: %v\n%s", err, out.String())
	}
}

// TestAuditExitCodes: 0 clean, 1 a problem, 3 a store it cannot reach or
// whose schema lags (the audit does not migrate it: nothing is written).
func TestAuditExitCodes(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer

	// No database in the data directory.
	err := auditCmd(ctx, []string{"--data", filepath.Join(t.TempDir(), "nowhere")}, &out, &errOut)
	if exitCode(err) != 3 {
		t.Fatalf("missing data directory: exit %d (%v), want 3", exitCode(err), err)
	}
	// A Postgres nobody listens on (a port of this test's range).
	err = auditCmd(ctx, []string{"--store", "postgres", "--postgres-url", "postgres://postgres@127.0.0.1:35001/test?sslmode=disable&connect_timeout=2"}, &out, &errOut)
	if exitCode(err) != 3 {
		t.Fatalf("unreachable Postgres: exit %d (%v), want 3", exitCode(err), err)
	}
	// An event store whose read models were never migrated: 3, and the
	// audit created nothing.
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	store.Close()
	err = auditCmd(ctx, []string{"--data", dir}, &out, &errOut)
	if exitCode(err) != 3 || !strings.Contains(err.Error(), "picd migrate") {
		t.Fatalf("unmigrated read models: exit %d (%v), want 3 naming picd migrate", exitCode(err), err)
	}
	store, err = sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	var tables int
	if err := store.DB().QueryRow(`SELECT count(*) FROM sqlite_master WHERE name = 'read_model_migrations'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("the audit migrated the read models (%d, %v)", tables, err)
	}
	store.Close()
	// Migrated and empty: clean.
	migrateData(t, dir)
	if err := auditCmd(ctx, []string{"--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("clean empty log: %v", err)
	}
	// Bad flags.
	if err := auditCmd(ctx, []string{"--no-such-flag"}, &out, &errOut); exitCode(err) != 2 {
		t.Fatalf("bad flag: exit %d (%v), want 2", exitCode(err), err)
	}
}

// fixedCredits stands in for the balances read model.
type fixedCredits map[string]string

func (f fixedCredits) Credited(_ context.Context, _, asset string, _ eventstore.Position) (domain.Amount, error) {
	return domain.MustAmount(f[asset]), nil
}

// TestAuditDebtsAndTampering: a log with a reversal of funds already paid
// out passes the audit, which lists the open debt (money rule 6); the same
// log fails once a balance row is corrupted, and fails on a fee that
// money rule 1 does not give.
func TestAuditDebtsAndTampering(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock),
		Credits: fixedCredits{"USDT.ETH": "99.75"}}
	h := commands.New(d, commands.StaticAddresses{domain.ChainEthereum: "0xabc"}, func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: "100"})
	if err != nil {
		t.Fatal(err)
	}
	id := inv.Invoice.InvoiceID
	steps := []func() error{
		func() error {
			_, err := h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{InvoiceID: id,
				Deposit: domain.ObservedDeposit{DepositID: "tx:0", TxID: "tx", Amount: domain.MustAmount("100")}})
			return err
		},
		func() error {
			_, err := h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{InvoiceID: id, DepositID: "tx:0", Confirmations: 12})
			return err
		},
		func() error {
			_, err := h.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{InvoiceID: id, DepositID: "tx:0", Depth: 64})
			return err
		},
		func() error {
			_, err := h.RequestPayout.Handle(ctx, commands.RequestPayout{MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: "99.75",
				ToAddress: "0x1111111111111111111111111111111111111111", Kind: domain.PayoutKindInstant})
			return err
		},
		func() error {
			_, err := h.RevertDeposit.Handle(ctx, commands.RevertDeposit{InvoiceID: id, DepositID: "tx:0", Reason: "reorg"})
			return err
		},
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	store.Close()
	migrateData(t, dir)

	var out, errOut bytes.Buffer
	if err := auditCmd(ctx, []string{"--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("audit of a consistent ledger with a debt: %v\n%s", err, out.String())
	}
	debt := "merchant:" + m.MerchantID + ":available  USDT.ETH  -99.75"
	if !strings.Contains(out.String(), "RESULT: OK") || !strings.Contains(out.String(), debt) {
		t.Fatalf("the report does not pass or does not list %q:\n%s", debt, out.String())
	}

	// A balance row that disagrees with the log.
	store, err = sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteDB().Exec(`UPDATE balances SET available = '0'`); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out.Reset()
	err = auditCmd(ctx, []string{"--data", dir}, &out, &errOut)
	if !errors.Is(err, errAuditMismatch) || !strings.Contains(out.String(), "PROBLEM: balance merchant:"+m.MerchantID+":available") {
		t.Fatalf("corrupted balance row: %v\n%s", err, out.String())
	}

	// An invoice row whose fee is not what the invoice was charged.
	store, err = sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteDB().Exec(`UPDATE balances SET available = '-99.75'`); err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteDB().Exec(`UPDATE invoices SET fee = '0.25'`); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out.Reset()
	err = auditCmd(ctx, []string{"--data", dir}, &out, &errOut)
	if !errors.Is(err, errAuditMismatch) || !strings.Contains(out.String(), "PROBLEM: invoice "+id+": read model fee 0.25") {
		t.Fatalf("corrupted invoice fee: %v\n%s", err, out.String())
	}

	// A mistyped data directory is an error, not an empty log that passes.
	missing := filepath.Join(t.TempDir(), "nowhere")
	if err := auditCmd(ctx, []string{"--data", missing}, &out, &errOut); err == nil || errors.Is(err, errAuditMismatch) || exitCode(err) != 3 {
		t.Fatalf("audit of a missing data directory: %v", err)
	}

	// A confirmation that charges the fee of the deposit alone on an invoice
	// that had already been charged: balanced postings, a wrong fee.
	store, err = sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if _, err := store.WriteDB().Exec(`UPDATE invoices SET fee = '0'`); err != nil {
		t.Fatal(err)
	}
	fee := domain.ComputeFee(domain.MustAmount("0.000002"), domain.FeeBps, 6)
	wrong := domain.DepositConfirmed{InvoiceID: id, MerchantID: m.MerchantID, DepositID: "tx2:0", Asset: "USDT.ETH",
		Amount: domain.MustAmount("0.000002"), Confirmations: 12, Fee: fee, Charged: domain.MustAmount("0.000001"),
		Net: domain.MustAmount("0.000001"), ConfirmedAt: now, Postings: []domain.Posting{
			{Account: domain.ExternalAccount, Asset: "USDT.ETH", Amount: domain.MustAmount("-0.000001")},
			{Account: domain.FeeAccount, Asset: "USDT.ETH", Amount: domain.MustAmount("0.000001")},
		}}
	data, err := domain.Encode(wrong)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Append(ctx, commands.InvoiceStream(id), eventstore.Any, []eventstore.EventData{{ID: "00000000-0000-4000-8000-000000000001",
		Type: wrong.EventType(), Data: data}}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out.Reset()
	err = auditCmd(ctx, []string{"--data", dir}, &out, &errOut)
	if !errors.Is(err, errAuditMismatch) || !strings.Contains(out.String(), "PROBLEM: event 00000000-0000-4000-8000-000000000001: charged 0.000001") {
		t.Fatalf("a wrong fee: %v\n%s", err, out.String())
	}
}

// TestAuditVerifyChain: "picd audit --verify-chain" passes on a log written
// through the commands and fails, naming the position, once one stored
// event is altered.
func TestAuditVerifyChain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock),
		Credits: fixedCredits{"USDT.ETH": "0"}}
	h := commands.New(d, commands.StaticAddresses{domain.ChainEthereum: "0xabc"}, func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: "10"}); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := store.DB().QueryRow(`SELECT count(*) FROM events`).Scan(&n); err != nil || n < 6 {
		t.Fatalf("%d events (%v)", n, err)
	}
	store.Close()
	migrateData(t, dir)

	var out, errOut bytes.Buffer
	if err := auditCmd(ctx, []string{"--verify-chain", "--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("intact log: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("hash chain verified: %d events", n)) || !strings.Contains(out.String(), "RESULT: OK") {
		t.Fatalf("intact log:\n%s", out.String())
	}

	store, err = sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteDB().Exec(`UPDATE events SET data = replace(data, '"10"', '"1"') WHERE global_position = 3`); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out.Reset()
	err = auditCmd(ctx, []string{"--verify-chain", "--json", "--data", dir}, &out, &errOut)
	var rep struct {
		OK    bool `json:"ok"`
		Break struct {
			Seq      uint64 `json:"seq"`
			Position string `json:"position"`
		} `json:"break"`
	}
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil || exitCode(err) != 1 || rep.OK || rep.Break.Seq != 3 || rep.Break.Position != "3/0" {
		t.Fatalf("altered event 3: exit %d (%v), %+v %v\n%s", exitCode(err), err, rep, jerr, out.String())
	}
}

// TestAuditStatement: "picd audit --from --to" as a table, JSON and CSV;
// the hash it carries is the one --verify-chain --at recomputes; bad
// bounds are a usage error.
func TestAuditStatement(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	h := commands.New(d, commands.StaticAddresses{domain.ChainEthereum: "0xabc"}, func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: "100"})
	if err != nil {
		t.Fatal(err)
	}
	id := inv.Invoice.InvoiceID
	if _, err := h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{InvoiceID: id, Deposit: domain.ObservedDeposit{DepositID: "d", TxID: "d", Amount: domain.MustAmount("100")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{InvoiceID: id, DepositID: "d", Confirmations: 12}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	migrateData(t, dir)
	from, to := now.UTC().AddDate(0, 0, -1).Format("2006-01-02"), now.UTC().AddDate(0, 0, 2).Format("2006-01-02")

	var out, errOut bytes.Buffer
	if err := auditCmd(ctx, []string{"--from", from, "--to=" + to, "--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("statement: %v\n%s", err, out.String())
	}
	for _, want := range []string{"merchant:" + m.MerchantID + ":pending", "deposits", "fees_and_confirmations", "closing", "platform:fees", "read the log to chain seq"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("statement lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := auditCmd(ctx, []string{"--from", from, "--to", to, "--merchant", m.MerchantID, "--json", "--data", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	var st struct {
		Accounts []struct {
			Owner, Account, Asset, Opening, Closing string
		} `json:"accounts"`
		LogEnd struct {
			Seq  uint64 `json:"seq"`
			Hash string `json:"hash"`
		} `json:"log_end"`
	}
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	closing := map[string]string{}
	for _, a := range st.Accounts {
		if a.Owner != m.MerchantID {
			t.Fatalf("a merchant's statement shows %s", a.Account)
		}
		closing[a.Account] = a.Closing
	}
	// 100 in, the 0.25 fee charged at confirmation: 99.75 pending.
	if closing["merchant:"+m.MerchantID+":pending"] != "99.75" || st.LogEnd.Seq == 0 {
		t.Fatalf("--json: %s", out.String())
	}
	out.Reset()
	if err := auditCmd(ctx, []string{"--from", from, "--to", to, "--csv", "--data", dir}, &out, &errOut); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "from,to,owner,account,asset,line,amount,count\n") || !strings.Contains(out.String(), ",log_end,,seq ") ||
		!strings.Contains(out.String(), ",platform:fees,USDT.ETH,closing,0.25,") {
		t.Fatalf("--csv:\n%s", out.String())
	}
	out.Reset()
	if err := auditCmd(ctx, []string{"--verify-chain", "--at", fmt.Sprint(st.LogEnd.Seq), "--data", dir}, &out, &errOut); err != nil ||
		!strings.Contains(out.String(), fmt.Sprintf("at seq %d: hash %s", st.LogEnd.Seq, st.LogEnd.Hash)) {
		t.Fatalf("--verify-chain --at: %v\n%s", err, out.String())
	}
	if err := auditCmd(ctx, []string{"--from", to, "--to", from, "--data", dir}, &out, &errOut); exitCode(err) != 2 {
		t.Fatalf("from after to: exit %d (%v)", exitCode(err), err)
	}
	if err := auditCmd(ctx, []string{"--from", "yesterday", "--to", to, "--data", dir}, &out, &errOut); exitCode(err) != 2 {
		t.Fatalf("a bad date: exit %d (%v)", exitCode(err), err)
	}
}

// TestAuditConvertedNetworkFee: a token payout whose network fee is the
// native coin its transaction burned, charged in the token (a TRON token
// payout priced through the oracle), posts that fee to the operator's
// revenue (operator:network_fee_revenue), which picd audit counts in the
// operator's income and in what is held on chain. A stored
// PayoutConfirmed that posts it to network:fees instead is a problem.
func TestAuditConvertedNetworkFee(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	store, err := sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock),
		Credits: fixedCredits{"USDT.TRON": "99.75"}}
	h := commands.New(d, commands.StaticAddresses{domain.ChainTron: "TAbc"}, func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{MerchantID: m.MerchantID, Asset: "USDT.TRON", Amount: "100"})
	if err != nil {
		t.Fatal(err)
	}
	id := inv.Invoice.InvoiceID
	if _, err := h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{InvoiceID: id,
		Deposit: domain.ObservedDeposit{DepositID: "tx:0", TxID: "tx", Amount: domain.MustAmount("100")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{InvoiceID: id, DepositID: "tx:0", Confirmations: 19}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{InvoiceID: id, DepositID: "tx:0", Depth: 20}); err != nil {
		t.Fatal(err)
	}
	po, err := h.RequestPayout.Handle(ctx, commands.RequestPayout{MerchantID: m.MerchantID, Asset: "USDT.TRON", Amount: "50",
		ToAddress: "TPayee", Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.SignPayout.Handle(ctx, commands.SignPayout{CommandID: "sign", Ref: po.Ref,
		Tx: domain.SignedTx{TxID: "t1", Raw: "00", NetworkFee: domain.MustAmount("1.5"), FeeConverted: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.ConfirmPayout.Handle(ctx, commands.ConfirmPayout{CommandID: "confirm", Ref: po.Ref, Confirmations: 19}); err != nil {
		t.Fatal(err)
	}
	store.Close()
	migrateData(t, dir)

	var out, errOut bytes.Buffer
	if err := auditCmd(ctx, []string{"--json", "--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("audit: %v\n%s", err, out.String())
	}
	var rep struct {
		Ledger         map[string]map[string]string `json:"ledger"`
		Held           map[string]string            `json:"held"`
		OperatorIncome map[string]struct {
			NetworkFeeRevenue string `json:"network_fee_revenue"`
			Income            string `json:"income"`
		} `json:"operator_income"`
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	// 100 in, 48.5 sent; the 0.25 fee and the 1.5 charged stay, the operator's.
	inc := rep.OperatorIncome["USDT.TRON"]
	if rep.Ledger[domain.NetworkFeeRevenueAccount]["USDT.TRON"] != "1.5" || rep.Ledger[domain.NetworkFeeAccount]["USDT.TRON"] != "" ||
		rep.Held["USDT.TRON"] != "51.5" || inc.NetworkFeeRevenue != "1.5" || inc.Income != "1.75" {
		t.Fatalf("ledger %v, held %v, income %+v", rep.Ledger, rep.Held, inc)
	}

	store, err = sqlite.Open(filepath.Join(dir, "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.WriteDB().Exec(`UPDATE events SET data = replace(data, '"` + domain.NetworkFeeRevenueAccount + `"', '"` +
		domain.NetworkFeeAccount + `"') WHERE type = 'PayoutConfirmed'`); err != nil {
		t.Fatal(err)
	}
	store.Close()
	out.Reset()
	err = auditCmd(ctx, []string{"--data", dir}, &out, &errOut)
	if !errors.Is(err, errAuditMismatch) || !strings.Contains(out.String(), "posts its fee 1.5 as 1.5 to network:fees and 0 to "+domain.NetworkFeeRevenueAccount) {
		t.Fatalf("a converted fee posted to the network: %v\n%s", err, out.String())
	}
}
