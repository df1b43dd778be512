package simulation

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// docExamples reads the tables of docs/money.md's worked examples: each
// follows a "<!-- example: name -->" line; its rows are figure | value.
func docExamples(t *testing.T) map[string]map[string]string {
	f, err := os.Open("../docs/money.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]map[string]string{}
	var cur map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "<!-- example: "); ok {
			cur = map[string]string{}
			out[strings.TrimSuffix(name, " -->")] = cur
			continue
		}
		if cur == nil {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			if line == "" && len(cur) > 0 {
				cur = nil
			}
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) != 2 || strings.HasPrefix(strings.TrimSpace(cells[0]), "---") || strings.TrimSpace(cells[0]) == "figure" {
			continue
		}
		cur[strings.TrimSpace(cells[0])] = strings.TrimSpace(cells[1])
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMoneyDocExamples runs each worked example of docs/money.md on the
// real gateway and checks every figure its table states.
func TestMoneyDocExamples(t *testing.T) {
	examples := docExamples(t)
	for name, run := range map[string]func(t *testing.T, e *docEnv) map[string]string{
		"split": exampleSplit, "overpayment": exampleOverpayment, "converted": exampleConverted,
		"reversal-after-payout": exampleReversalAfterPayout,
	} {
		t.Run(name, func(t *testing.T) {
			doc, ok := examples[name]
			if !ok || len(doc) == 0 {
				t.Fatalf("docs/money.md has no table for example %q", name)
			}
			got := run(t, &docEnv{w: newWorld(t, 1)})
			for figure, want := range doc {
				g, ok := got[figure]
				if !ok {
					t.Errorf("the test does not compute %q", figure)
					continue
				}
				if !sameFigure(g, want) {
					t.Errorf("%s: the gateway says %s, docs/money.md says %s", figure, g, want)
				}
			}
			for figure := range got {
				if _, ok := doc[figure]; !ok {
					t.Errorf("docs/money.md does not state %q", figure)
				}
			}
		})
	}
}

func sameFigure(a, b string) bool {
	da, errA := decimal.NewFromString(a)
	db, errB := decimal.NewFromString(b)
	if errA == nil && errB == nil {
		return da.Equal(db)
	}
	return a == b
}

type docEnv struct{ w *world }

func (e *docEnv) must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func (e *docEnv) merchant(t *testing.T, settings ...domain.PayoutSettings) string {
	w := e.w
	reg, err := w.h.RegisterMerchant.Handle(w.ctx, commands.RegisterMerchant{Name: "Shop"})
	e.must(t, err)
	for _, s := range settings {
		_, err := w.h.SetPayoutSettings.Handle(w.ctx, commands.SetPayoutSettings{MerchantID: reg.MerchantID, Settings: s})
		e.must(t, err)
	}
	e.must(t, w.project())
	return reg.MerchantID
}

func (e *docEnv) invoice(t *testing.T, merchant, asset, amount, settleAs string) domain.InvoiceCreated {
	w := e.w
	w.clock.Advance(1)
	res, err := w.h.CreateInvoice.Handle(w.ctx, commands.CreateInvoice{MerchantID: merchant, Asset: asset, Amount: amount, SettleAs: settleAs})
	e.must(t, err)
	e.must(t, w.project())
	return res.Invoice
}

func (e *docEnv) pay(t *testing.T, invoiceID, amount string) string {
	p, err := e.w.sim.PayDetailed(e.w.ctx, invoiceID, amount)
	e.must(t, err)
	e.must(t, e.w.sync())
	return p.DepositID
}

func (e *docEnv) mine(t *testing.T, blocks int) {
	_, err := e.w.sim.Mine(e.w.ctx, blocks)
	e.must(t, err)
	e.must(t, e.w.sync())
}

func (e *docEnv) events(t *testing.T, stream string) []domain.Event {
	recs, err := eventstore.ReadFullStream(e.w.ctx, e.w.store, stream)
	e.must(t, err)
	out := make([]domain.Event, 0, len(recs))
	for _, r := range recs {
		ev, err := domain.Decode(r.Type, r.Data)
		e.must(t, err)
		out = append(out, ev)
	}
	return out
}

func (e *docEnv) available(t *testing.T, merchant, asset string) string {
	bals, err := e.w.reader.Balances(e.w.ctx, merchant)
	e.must(t, err)
	for _, b := range bals {
		if b.Asset == asset {
			return b.Available.String()
		}
	}
	return "0"
}

func (e *docEnv) fee(t *testing.T, invoiceID string) string {
	inv, err := e.w.reader.InvoiceByID(e.w.ctx, "", invoiceID)
	e.must(t, err)
	return inv.Fee.String()
}

func (e *docEnv) instantPayout(t *testing.T, merchant, asset, invoiceID string) string {
	for _, ev := range e.events(t, commands.FundsStream(merchant, asset)) {
		if p, ok := ev.(domain.PayoutRequested); ok && p.SourceInvoiceID == invoiceID {
			return p.Amount.String()
		}
	}
	return "none"
}

func exampleSplit(t *testing.T, e *docEnv) map[string]string {
	m := e.merchant(t)
	inv := e.invoice(t, m, "USDT.TRON", "40.0004", "")
	e.pay(t, inv.InvoiceID, "20.0002")
	e.mine(t, 3)
	e.pay(t, inv.InvoiceID, "20.0002")
	e.mine(t, 3)
	var charged []domain.Amount
	for _, ev := range e.events(t, commands.InvoiceStream(inv.InvoiceID)) {
		if c, ok := ev.(domain.DepositConfirmed); ok {
			charged = append(charged, c.Charged)
		}
	}
	if len(charged) != 2 {
		t.Fatalf("%d confirmations", len(charged))
	}
	half := domain.ComputeFee(domain.MustAmount("20.0002"), 25, 6).Fee
	return map[string]string{
		"fee charged by the first half":                charged[0].String(),
		"fee charged by the second half":               charged[1].String(),
		"the invoice's fee":                            e.fee(t, inv.InvoiceID),
		"what per-payment rounding would have charged": half.Add(half).String(),
		"available once both are final":                e.available(t, m, "USDT.TRON"),
	}
}

func exampleOverpayment(t *testing.T, e *docEnv) map[string]string {
	m := e.merchant(t)
	inv := e.invoice(t, m, "USDT.ETH", "49.99", "")
	before := e.fee(t, inv.InvoiceID)
	e.pay(t, inv.InvoiceID, "50")
	e.mine(t, 3)
	got, err := e.w.reader.InvoiceByID(e.w.ctx, "", inv.InvoiceID)
	e.must(t, err)
	return map[string]string{
		"the invoice's fee before payment": before,
		"the invoice's fee once paid":      got.Fee.String(),
		"amount_due once paid":             got.AmountDue().String(),
		"available once final":             e.available(t, m, "USDT.ETH"),
	}
}

func exampleConverted(t *testing.T, e *docEnv) map[string]string {
	e.w.prices.mu.Lock()
	e.w.prices.rates[[2]string{"USDT.ETH", "BTC"}] = decimal.RequireFromString("0.00001666667")
	e.w.prices.mu.Unlock()
	m := e.merchant(t)
	inv := e.invoice(t, m, "USDT.ETH", "100.502513", "BTC")
	e.pay(t, inv.InvoiceID, "100.502513")
	e.mine(t, 3)
	var conv domain.ConversionExecuted
	for _, ev := range e.events(t, commands.FundsStream(m, "USDT.ETH")) {
		if c, ok := ev.(domain.ConversionExecuted); ok {
			conv = c
		}
	}
	got, err := e.w.reader.InvoiceByID(e.w.ctx, "", inv.InvoiceID)
	e.must(t, err)
	return map[string]string{
		"fee_bps": decimal.NewFromInt(got.FeeBps).String(),
		"the invoice's fee (0.5 %, charged once)":             got.Fee.String(),
		"net in USDT.ETH":                                     conv.FromAmount.String(),
		"converted into BTC (rounded down)":                   conv.ToAmount.String(),
		"USDT.ETH the BTC is worth (rounded up)":              conv.FromUsed.String(),
		"rounding remainder booked as fee revenue (USDT.ETH)": conv.Remainder.String(),
		"fee charged by the conversion":                       conv.Fee.Fee.String(),
		"available BTC":                                       e.available(t, m, "BTC"),
		"available USDT.ETH":                                  e.available(t, m, "USDT.ETH"),
	}
}

func exampleReversalAfterPayout(t *testing.T, e *docEnv) map[string]string {
	m := e.merchant(t, domain.PayoutSettings{Asset: "USDT.TRON", PayoutAddress: "payout-address", Mode: domain.PayoutInstant})
	out := map[string]string{}
	first := e.invoice(t, m, "USDT.TRON", "100", "")
	e.pay(t, first.InvoiceID, "100")
	e.mine(t, 3)
	out["instant payout of the first invoice"] = e.instantPayout(t, m, "USDT.TRON", first.InvoiceID)
	_, err := e.w.sim.Reorg(e.w.ctx, 3, false)
	e.must(t, err)
	e.must(t, e.w.sync())
	got, err := e.w.reader.InvoiceByID(e.w.ctx, "", first.InvoiceID)
	e.must(t, err)
	out["the first invoice's status after the reorganisation"] = string(got.Status)
	out["the first invoice's fee after the reorganisation"] = got.Fee.String()
	out["available after the reorganisation (a debt)"] = e.available(t, m, "USDT.TRON")
	second := e.invoice(t, m, "USDT.TRON", "50", "")
	e.pay(t, second.InvoiceID, "50")
	e.mine(t, 3)
	out["available after the invoice of 50 is final"] = e.available(t, m, "USDT.TRON")
	out["instant payout of the invoice of 50"] = e.instantPayout(t, m, "USDT.TRON", second.InvoiceID)
	third := e.invoice(t, m, "USDT.TRON", "60", "")
	e.pay(t, third.InvoiceID, "60")
	e.mine(t, 3)
	out["instant payout of the invoice of 60"] = e.instantPayout(t, m, "USDT.TRON", third.InvoiceID)
	// Available once final, before its payout took it: what is left plus the payout.
	left := e.available(t, m, "USDT.TRON")
	paid := decimal.Zero
	if p := out["instant payout of the invoice of 60"]; p != "none" {
		paid = decimal.RequireFromString(p)
	}
	out["available after the invoice of 60 is final"] = decimal.RequireFromString(left).Add(paid).String()
	out["available at the end"] = left
	return out
}
