package webhooks

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

func (e *env) revert(inv, dep string) {
	e.t.Helper()
	if _, err := e.h.RevertDeposit.Handle(e.ctx, commands.RevertDeposit{CommandID: e.id("rv"), InvoiceID: inv, DepositID: dep, Reason: "reorg"}); err != nil {
		e.t.Fatal(err)
	}
}

// TestBackwardStatusWebhooks is money rule 5: every status change, backwards
// too, is a webhook named after the new status. A paid invoice whose
// payment a reorganisation took away is invoice.reverted; the same payment
// mined again and confirmed makes it invoice.paid again, with a new
// delivery id. An invoice that loses its only (unconfirmed) payment is
// invoice.new.
func TestBackwardStatusWebhooks(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	m := e.merchant("A", rc.srv.URL+"/ipn")

	paid := e.invoice(m.MerchantID)
	dep := e.observe(paid, "10") // confirming
	e.confirm(paid, dep)         // paid
	e.revert(paid, dep)          // reverted
	// The same transaction in a block again: detected (still reverted:
	// nothing is confirmed), then confirmed: paid again.
	if _, err := e.h.ObserveDeposit.Handle(e.ctx, commands.ObserveDeposit{CommandID: e.id("o"), InvoiceID: paid,
		Deposit: domain.ObservedDeposit{DepositID: dep, TxID: "tx" + dep, Amount: domain.MustAmount("10")}}); err != nil {
		t.Fatal(err)
	}
	e.confirm(paid, dep)

	unconfirmed := e.invoice(m.MerchantID)
	e.revert(unconfirmed, e.observe(unconfirmed, "10")) // confirming, then new
	e.sync()

	w := e.worker(Config{AllowPrivate: true})
	if sent := e.drain(w, time.Millisecond, 20); sent != 6 {
		t.Fatalf("handled %d deliveries, want 6", sent)
	}
	type got struct {
		typ, delivery string
		data          readapi.InvoiceJSON
	}
	byInvoice := map[string][]got{}
	for _, r := range rc.requests() {
		var b struct {
			Type string              `json:"type"`
			Data readapi.InvoiceJSON `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &b); err != nil {
			t.Fatal(err)
		}
		if b.Type != r.Header.Get(HeaderEvent) || string(b.Data.Status) != b.Type[len("invoice."):] {
			t.Errorf("%s (header %s) carries an invoice in status %s", b.Type, r.Header.Get(HeaderEvent), b.Data.Status)
		}
		byInvoice[b.Data.ID] = append(byInvoice[b.Data.ID], got{b.Type, r.Header.Get(HeaderDelivery), b.Data})
	}
	types := func(gs []got) string {
		var out []string
		for _, g := range gs {
			out = append(out, g.typ)
		}
		return fmt.Sprint(out)
	}
	p := byInvoice[paid]
	if types(p) != "[invoice.confirming invoice.paid invoice.reverted invoice.paid]" {
		t.Fatalf("paid invoice: %s", types(p))
	}
	if p[1].delivery == p[3].delivery {
		t.Errorf("paid again with the same delivery id %s", p[1].delivery)
	}
	// The reverted invoice holds nothing credited and was charged nothing
	// (money rule 1: the reversal gave the fee back).
	if r := p[2].data; r.Fee.String() != "0" || r.AmountReceived.String() != "0" {
		t.Errorf("invoice.reverted data: fee %s, received %s", r.Fee, r.AmountReceived)
	}
	if again := p[3].data; again.Fee.String() != "0.025" || again.AmountReceived.String() != "10" {
		t.Errorf("invoice.paid again data: fee %s, received %s", again.Fee, again.AmountReceived)
	}
	if u := byInvoice[unconfirmed]; types(u) != "[invoice.confirming invoice.new]" || u[1].data.AmountReceived.String() != "0" {
		t.Fatalf("unconfirmed invoice: %s", types(u))
	}
}
