package readapi_test

import (
	"context"
	"encoding/hex"
	"path/filepath"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

type fixedCredits map[string]string

func (f fixedCredits) Credited(_ context.Context, _, asset string, _ eventstore.Position) (domain.Amount, error) {
	return domain.MustAmount(f[asset]), nil
}

// TestStatementOfAMonth: a log of payments, a withdrawal and a network
// cost, spread over November and December 2026 (each event's recorded
// time, as a copied log keeps it); the November statement is recomputed
// here from the events themselves, line by line, and its closing is the
// December statement's opening; a statement to the end equals the audit's
// ledger; and it carries the chain's head, which --verify-chain finds.
func TestStatementOfAMonth(t *testing.T) {
	ctx := context.Background()
	src, err := sqlite.Open(filepath.Join(t.TempDir(), "src.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := commands.Deps{Store: src, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock),
		Credits: fixedCredits{"USDT.ETH": "1000"}}
	h := commands.New(d, commands.StaticAddresses{domain.ChainEthereum: "0xabc"}, func(domain.Chain, string) error { return nil })
	var merchants []string
	for m := 0; m < 2; m++ {
		reg, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{Name: "Shop"})
		if err != nil {
			t.Fatal(err)
		}
		merchants = append(merchants, reg.MerchantID)
		for i, amount := range []string{"49.99", "10", "120.5", "3.01"} {
			inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{MerchantID: reg.MerchantID, Asset: "USDT.ETH", Amount: amount})
			if err != nil {
				t.Fatal(err)
			}
			dep := inv.Invoice.InvoiceID + ":0"
			id := inv.Invoice.InvoiceID
			if _, err := h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{InvoiceID: id,
				Deposit: domain.ObservedDeposit{DepositID: dep, TxID: dep, Amount: inv.Invoice.PayAmount}}); err != nil {
				t.Fatal(err)
			}
			if _, err := h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{InvoiceID: id, DepositID: dep, Confirmations: 12}); err != nil {
				t.Fatal(err)
			}
			if i%2 == 0 {
				if _, err := h.FinalizeDeposit.Handle(ctx, commands.FinalizeDeposit{InvoiceID: id, DepositID: dep, Depth: 64}); err != nil {
					t.Fatal(err)
				}
			}
		}
		po, err := h.RequestPayout.Handle(ctx, commands.RequestPayout{MerchantID: reg.MerchantID, Asset: "USDT.ETH", Amount: "20",
			ToAddress: "0x1111111111111111111111111111111111111111", Kind: domain.PayoutKindWithdrawal})
		if err != nil {
			t.Fatal(err)
		}
		// Its fee charged in the token for the coin burned: the
		// operator's revenue (operator:network_fee_revenue).
		if _, err := h.SignPayout.Handle(ctx, commands.SignPayout{CommandID: "sign" + reg.MerchantID, Ref: po.Ref,
			Tx: domain.SignedTx{TxID: "0xpo" + reg.MerchantID, Raw: "00", NetworkFee: domain.MustAmount("0.5"), FeeConverted: true}}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.ConfirmPayout.Handle(ctx, commands.ConfirmPayout{CommandID: "confirm" + reg.MerchantID, Ref: po.Ref, Confirmations: 12}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.RecordNetworkCost.Handle(ctx, commands.RecordNetworkCost{Chain: domain.ChainEthereum, TxID: "0xsweep" + reg.MerchantID,
			Kind: domain.CostSweepGas, Asset: "ETH", Amount: domain.MustAmount("0.000420000000000001"), From: "0xabc"}); err != nil {
			t.Fatal(err)
		}
	}
	// The copy: event i recorded 7 h after event i−1, from 20 November on,
	// so the log crosses into December.
	recs, err := src.ReadAll(ctx, eventstore.Start, 10000)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "picd.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	at := func(i int) time.Time { return now.Add(time.Duration(i) * 7 * time.Hour) }
	for i, r := range recs {
		if _, err := store.Append(ctx, r.Stream, eventstore.Any, []eventstore.EventData{{ID: r.ID, Type: r.Type, Data: r.Data, Metadata: r.Metadata, RecordedAt: at(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	nov, dec, end := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	if !at(0).Before(dec) || at(len(recs)-1).Before(dec) {
		t.Fatalf("the log from %s to %s does not cross into December", at(0), at(len(recs)-1))
	}

	st, err := readapi.BuildStatement(ctx, store, readapi.StatementOptions{From: nov, To: dec})
	if err != nil {
		t.Fatal(err)
	}
	// Recomputed here: opening before November, movements by event type.
	type key struct{ account, asset string }
	opening, moved, count := map[key]domain.Amount{}, map[key]domain.Amount{}, 0
	for i, r := range recs {
		ev, err := domain.DecodeStored(r.Type, r.Data, r.Metadata)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := ev.(domain.MoneyEvent)
		if !ok || !at(i).Before(dec) {
			continue
		}
		hit := false
		for _, p := range m.LedgerPostings() {
			if p.Account == domain.ExternalAccount || p.Account == domain.NetworkFeeAccount {
				continue
			}
			k := key{p.Account, p.Asset}
			if at(i).Before(nov) {
				opening[k] = opening[k].Add(p.Amount)
			} else {
				moved[k] = moved[k].Add(p.Amount)
				hit = true
			}
		}
		if hit {
			count++
		}
	}
	if st.Events != count || count == 0 {
		t.Fatalf("statement counts %d money events in November, the log %d", st.Events, count)
	}
	seen := map[key]bool{}
	for _, a := range st.Accounts {
		k := key{a.Account, a.Asset}
		seen[k] = true
		var sum domain.Amount
		for _, mv := range a.Movements {
			sum = sum.Add(mv.Amount)
		}
		if !a.Opening.Equal(opening[k]) || !sum.Equal(moved[k]) || !a.Closing.Equal(opening[k].Add(moved[k])) {
			t.Errorf("%s %s: opening %s, movements %s, closing %s; recomputed %s, %s", a.Account, a.Asset, a.Opening, sum, a.Closing, opening[k], moved[k])
		}
	}
	for k := range moved {
		if !seen[k] {
			t.Errorf("%s %s moved in November but is not in the statement", k.account, k.asset)
		}
	}
	var fees domain.Amount
	for _, a := range st.Accounts {
		if a.Account == domain.FeeAccount && a.Owner == readapi.OperatorOwner {
			fees = a.Closing
		}
	}
	if fees.IsZero() {
		t.Fatalf("no fee revenue in November: %+v", st.Accounts)
	}
	// The two payouts' fees charged in the token (0.5 each) are the
	// operator's, to the log's end.
	charged := ""
	for _, a := range mustStatement(t, store, nov, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)).Accounts {
		if a.Account == domain.NetworkFeeRevenueAccount && a.Owner == readapi.OperatorOwner && a.Asset == "USDT.ETH" {
			charged = a.Closing.String()
		}
	}
	if charged != "1" {
		t.Fatalf("the network fees charged in the token: %q in the operator's %s, want 1", charged, domain.NetworkFeeRevenueAccount)
	}

	// December opens where November closed; to the end is the audit's ledger.
	decSt, err := readapi.BuildStatement(ctx, store, readapi.StatementOptions{From: dec, To: end})
	if err != nil {
		t.Fatal(err)
	}
	closing := map[key]domain.Amount{}
	for _, a := range st.Accounts {
		closing[key{a.Account, a.Asset}] = a.Closing
	}
	rep, err := projections.AuditWith(ctx, store, sqldb.DB{}, projections.AuditOptions{SkipReadModels: true})
	if err != nil || !rep.OK() {
		t.Fatalf("audit: %v %v", rep.Problems, err)
	}
	for _, a := range decSt.Accounts {
		if !a.Opening.Equal(closing[key{a.Account, a.Asset}]) {
			t.Errorf("%s %s opens December at %s, November closed at %s", a.Account, a.Asset, a.Opening, closing[key{a.Account, a.Asset}])
		}
		if !a.Closing.Equal(rep.Ledger[a.Account][a.Asset]) {
			t.Errorf("%s %s closes at %s, the audit's ledger says %s", a.Account, a.Asset, a.Closing, rep.Ledger[a.Account][a.Asset])
		}
	}
	// One merchant's statement holds its accounts only.
	one, err := readapi.BuildStatement(ctx, store, readapi.StatementOptions{From: nov, To: dec, Merchant: merchants[1]})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range one.Accounts {
		if a.Owner != merchants[1] {
			t.Fatalf("merchant %s's statement shows %s", merchants[1], a.Account)
		}
	}
	// The log's end it read is the chain's head.
	seq, hash, err := store.ChainHead(ctx)
	if err != nil || st.LogEnd == nil || st.LogEnd.Seq != seq || st.LogEnd.Hash != hex.EncodeToString(hash) {
		t.Fatalf("statement log end %+v, chain head %d %x %v", st.LogEnd, seq, hash, err)
	}
}

func mustStatement(t *testing.T, store eventstore.Store, from, to time.Time) readapi.Statement {
	t.Helper()
	st, err := readapi.BuildStatement(context.Background(), store, readapi.StatementOptions{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	return st
}
