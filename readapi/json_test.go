package readapi

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/domain"
)

// TestAmountDue: what the customer still has to send, exact and never negative.
func TestAmountDue(t *testing.T) {
	for _, tc := range []struct{ pay, received, want string }{
		{"49.990001", "0", "49.990001"},
		{"49.990001", "20", "29.990001"},
		{"0.01", "0.00999999", "0.00000001"},
		{"0.123456789012345678", "0.000000000000000001", "0.123456789012345677"},
		{"0.01", "0.01", "0"},
		{"0.01", "0.02", "0"}, // overpaid
	} {
		inv := Invoice{ID: "inv_1", PayAmount: domain.MustAmount(tc.pay), AmountReceived: domain.MustAmount(tc.received)}
		if got := inv.AmountDue().String(); got != tc.want {
			t.Errorf("pay %s received %s: amount due %s, want %s", tc.pay, tc.received, got, tc.want)
		}
		raw, err := json.Marshal(inv.JSON("https://pay.example"))
		if err != nil {
			t.Fatal(err)
		}
		if want := `"amount_due":"` + tc.want + `"`; !strings.Contains(string(raw), want) {
			t.Errorf("invoice JSON lacks %s: %s", want, raw)
		}
	}
}

// TestInvoiceJSONCreatedBy (issue #17, finding 3): the invoice document,
// which webhooks render from the log through InvoiceFromEvents, says which
// kind of key created the invoice; an event from before created_by reads
// as the secret key's.
func TestInvoiceJSONCreatedBy(t *testing.T) {
	created := domain.InvoiceCreated{InvoiceID: "inv_1", MerchantID: "mer_1", Asset: "BTC", Amount: domain.MustAmount("1"),
		PayAmount: domain.MustAmount("1"), PayAddress: "bc1q", RequiredConfirmations: 2}
	for _, tc := range []struct {
		recorded domain.CreatedBy
		want     string
	}{
		{"", "secret_key"}, // a log from before created_by
		{domain.CreatedBySecretKey, "secret_key"},
		{domain.CreatedByPublishableKey, "publishable_key"},
	} {
		created.CreatedBy = tc.recorded
		inv, err := InvoiceFromEvents([]domain.Event{created})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(inv.JSON("https://pay.example"))
		if err != nil {
			t.Fatal(err)
		}
		if want := `"created_by":"` + tc.want + `"`; !strings.Contains(string(raw), want) {
			t.Errorf("recorded %q: invoice JSON lacks %s: %s", tc.recorded, want, raw)
		}
	}
}
