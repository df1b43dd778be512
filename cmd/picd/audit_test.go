package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
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
	}
	if _, err := h.RequestPayout.Handle(ctx, commands.RequestPayout{MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: "20",
		ToAddress: "0x1111111111111111111111111111111111111111", Kind: domain.PayoutKindWithdrawal}); err != nil {
		t.Fatal(err)
	}
	store.Close()

	var out, errOut bytes.Buffer
	if err := auditCmd(ctx, []string{"--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("audit: %v\n%s", err, out.String())
	}
	for _, want := range []string{"RESULT: OK", "25 bps", "merchant:" + m.MerchantID + ":reserved", "platform:fees"} {
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
	}
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("--json: %v\n%s", err, out.String())
	}
	// Fees: 49.99 → 0.124975, 10 → 0.025.
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
	if !errors.Is(err, errAuditMismatch) || !strings.Contains(out.String(), "PROBLEM: balance merchant:"+m.MerchantID+":reserved") {
		t.Fatalf("corrupted read model: %v\n%s", err, out.String())
	}
}

// fixedCredits stands in for the balances read model.
type fixedCredits map[string]string

func (f fixedCredits) Credited(_ context.Context, _, asset string, _ eventstore.Position) (domain.Amount, error) {
	return domain.MustAmount(f[asset]), nil
}
