package domain

import (
	"strings"
	"testing"
)

// TestInvoiceCreatedBy (issue #17, finding 3): every invoice records which
// kind of key created it; logs from before created_by read as the secret
// key's.
func TestInvoiceCreatedBy(t *testing.T) {
	assets := DefaultAssets()
	btc, _ := assets.Lookup("BTC")
	base := NewInvoice{InvoiceID: "inv_1", MerchantID: "mer_1", Asset: btc, Amount: MustAmount("1"), PayAmount: MustAmount("1"), PayAddress: "bc1q"}
	for _, tc := range []struct {
		in   CreatedBy
		want CreatedBy
	}{
		{"", CreatedBySecretKey},
		{CreatedBySecretKey, CreatedBySecretKey},
		{CreatedByPublishableKey, CreatedByPublishableKey},
	} {
		n := base
		n.CreatedBy = tc.in
		ev, err := CreateInvoice(n, assets, t0)
		if err != nil {
			t.Fatal(err)
		}
		if ev.CreatedBy != tc.want || ev.Creator() != tc.want {
			t.Errorf("created by %q: recorded %q (Creator %q), want %q", tc.in, ev.CreatedBy, ev.Creator(), tc.want)
		}
		data, err := Encode(ev)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"created_by":"` + string(tc.want) + `"`; !strings.Contains(string(data), want) {
			t.Errorf("the event does not record %s: %s", want, data)
		}
		back, err := Decode(TypeInvoiceCreated, data)
		if err != nil || back.(InvoiceCreated).Creator() != tc.want {
			t.Errorf("decoded: %v %v", back, err)
		}
		inv := &Invoice{}
		inv.Apply(ev)
		if inv.Created().Creator() != tc.want {
			t.Errorf("aggregate: %q", inv.Created().Creator())
		}
	}
	n := base
	n.CreatedBy = "admin"
	if _, err := CreateInvoice(n, assets, t0); err == nil {
		t.Error("an unknown creator was recorded")
	}

	// An InvoiceCreated of a log from before created_by.
	old := `{"invoice_id":"inv_old","merchant_id":"mer_1","asset":"BTC","decimals":8,"amount":"1","pay_amount":"1","pay_address":"bc1q",` +
		`"address_index":3,"required_confirmations":2,"fee":{"base":"1","bps":25,"fee":"0.0025","decimals":8,"rounding":"half_up"},` +
		`"created_at":"2026-11-01T00:00:00Z","expires_at":"2026-11-01T01:00:00Z"}`
	ev, err := Decode(TypeInvoiceCreated, []byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.(InvoiceCreated); got.CreatedBy != "" || got.Creator() != CreatedBySecretKey {
		t.Errorf("old event: CreatedBy %q, Creator %q, want the secret key", got.CreatedBy, got.Creator())
	}
}
