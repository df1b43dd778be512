package webhooks

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// TestWebhookShowsCreatedBy (issue #17, finding 3): a webhook's invoice
// says which kind of key created it, so a shop that fulfils on webhooks can
// tell an invoice of the public publishable key from its server's own.
func TestWebhookShowsCreatedBy(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	m := e.merchant("A", rc.srv.URL+"/ipn")
	want := map[string]string{}
	for _, by := range []domain.CreatedBy{"", domain.CreatedBySecretKey, domain.CreatedByPublishableKey} {
		e.clock.Advance(time.Millisecond)
		inv, err := e.h.CreateInvoice.Handle(e.ctx, commands.CreateInvoice{CommandID: e.id("i"), MerchantID: m.MerchantID,
			Asset: "USDT.ETH", Amount: "10", OrderID: "order-1", CreatedBy: by})
		if err != nil {
			t.Fatal(err)
		}
		id := inv.Invoice.InvoiceID
		want[id] = "secret_key"
		if by == domain.CreatedByPublishableKey {
			want[id] = "publishable_key"
		}
		e.observe(id, "4") // partially_paid: one webhook
	}
	e.sync()
	w := e.worker(Config{AllowPrivate: true})
	if sent := e.drain(w, time.Millisecond, 20); sent != 3 {
		t.Fatalf("handled %d deliveries, want 3", sent)
	}
	got := rc.requests()
	if len(got) != 3 {
		t.Fatalf("received %d webhooks, want 3", len(got))
	}
	for _, r := range got {
		var body struct {
			Data map[string]any `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatal(err)
		}
		id, _ := body.Data["id"].(string)
		if body.Data["created_by"] != want[id] {
			t.Errorf("webhook of %s: created_by %#v, want %q", id, body.Data["created_by"], want[id])
		}
	}
}
