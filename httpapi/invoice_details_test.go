package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

// TestInvoiceDetails (issue #19): description, metadata and redirect_url
// on POST /v1/invoices: their bounds, the publishable key's limits, and the
// exact-case duplicate check inside metadata.
func TestInvoiceDetails(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	meta21 := map[string]string{}
	for i := range 21 {
		meta21["k"+strings.Repeat("x", i)] = "v"
	}
	raw21, _ := json.Marshal(meta21)
	tests := []struct {
		name       string
		key        string
		body       string
		wantStatus int
		wantCode   string
	}{
		{"all three", m.secret, `{"asset":"BTC","amount":"0.01","description":"2 × coffee","metadata":{"cart":"42","a":"1","A":"2"},"redirect_url":"https://shop.example/thanks"}`, 201, ""},
		{"description 500", m.secret, `{"asset":"BTC","amount":"0.01","description":"` + strings.Repeat("é", 500) + `"}`, 201, ""},
		{"description 501", m.secret, `{"asset":"BTC","amount":"0.01","description":"` + strings.Repeat("é", 501) + `"}`, 400, "validation_error"},
		{"description bidi", m.secret, `{"asset":"BTC","amount":"0.01","description":"a\u202eb"}`, 400, "validation_error"},
		{"description null", m.secret, `{"asset":"BTC","amount":"0.01","description":null}`, 400, "validation_error"},
		{"metadata empty", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{}}`, 201, ""},
		{"metadata 21 keys", m.secret, `{"asset":"BTC","amount":"0.01","metadata":` + string(raw21) + `}`, 400, "validation_error"},
		{"metadata key 41", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{"` + strings.Repeat("k", 41) + `":"v"}}`, 400, "validation_error"},
		{"metadata key empty", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{"":"v"}}`, 400, "validation_error"},
		{"metadata value 501", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{"k":"` + strings.Repeat("v", 501) + `"}}`, 400, "validation_error"},
		{"metadata value number", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{"k":1}}`, 400, "validation_error"},
		{"metadata value null", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{"k":null}}`, 400, "validation_error"},
		{"metadata value control", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{"k":"a\u0000b"}}`, 400, "validation_error"},
		{"metadata key control", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{"a\u200bb":"v"}}`, 400, "validation_error"},
		{"metadata not an object", m.secret, `{"asset":"BTC","amount":"0.01","metadata":["a"]}`, 400, "validation_error"},
		{"metadata duplicate key", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{"a":"1","a":"2"}}`, 400, "invalid_json"},
		{"metadata keys differ in case", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{"Cart":"1","cart":"2","CART":"3"}}`, 201, ""},
		{"metadata field twice other case", m.secret, `{"asset":"BTC","amount":"0.01","metadata":{},"Metadata":{}}`, 400, "invalid_json"},
		{"redirect http", m.secret, `{"asset":"BTC","amount":"0.01","redirect_url":"http://shop.example/"}`, 400, "validation_error"},
		{"redirect javascript", m.secret, `{"asset":"BTC","amount":"0.01","redirect_url":"javascript:alert(1)"}`, 400, "validation_error"},
		{"redirect no host", m.secret, `{"asset":"BTC","amount":"0.01","redirect_url":"https:///x"}`, 400, "validation_error"},
		{"redirect with user", m.secret, `{"asset":"BTC","amount":"0.01","redirect_url":"https://u:p@shop.example/"}`, 400, "validation_error"},
		{"publishable description", m.pub, `{"asset":"BTC","amount":"0.01","description":"coffee"}`, 201, ""},
		{"publishable metadata", m.pub, `{"asset":"BTC","amount":"0.01","metadata":{"a":"1"}}`, 403, "forbidden"},
		{"publishable empty metadata", m.pub, `{"asset":"BTC","amount":"0.01","metadata":{}}`, 403, "forbidden"},
		{"publishable redirect_url", m.pub, `{"asset":"BTC","amount":"0.01","redirect_url":"https://evil.example/"}`, 403, "forbidden"},
	}
	for _, tc := range tests {
		res := b.do(t, req{method: "POST", path: "/v1/invoices", key: tc.key, body: tc.body})
		if res.status != tc.wantStatus || (tc.wantCode != "" && res.code() != tc.wantCode) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, res.status, res.raw, tc.wantStatus, tc.wantCode)
		}
		if res.status == http.StatusForbidden && !strings.Contains(res.json(t)["message"].(string), "secret key") {
			t.Errorf("%s: the message should say the secret key may: %s", tc.name, res.raw)
		}
	}
}

// TestInvoiceDetailsRoundTrip: what was sent comes back the same in the
// creation's answer, GET, the list and a webhook's body; so does the fiat
// price.
func TestInvoiceDetailsRoundTrip(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	rc := newHookReceiver(t)
	if res := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"webhook_url":"` + rc.srv.URL + `/ipn"}`}); res.status != http.StatusOK {
		t.Fatalf("set webhook_url: %d %s", res.status, res.raw)
	}
	wantMeta := map[string]any{"cart": "42", "Cart": "x", "note": "Größe L / 注文"}
	created := b.createInvoice(t, m.secret, `{"asset":"BTC","price_amount":"600","price_currency":"USD","description":"2 × coffee","metadata":{"cart":"42","Cart":"x","note":"Größe L / 注文"},"redirect_url":"https://shop.example/thanks?o=1"}`)
	check := func(where string, inv map[string]any) {
		t.Helper()
		if inv["description"] != "2 × coffee" || inv["redirect_url"] != "https://shop.example/thanks?o=1" || !reflect.DeepEqual(inv["metadata"], wantMeta) {
			t.Errorf("%s: description %v, metadata %v, redirect_url %v", where, inv["description"], inv["metadata"], inv["redirect_url"])
		}
		wantPrice := map[string]any{"currency": "USD", "amount": "600", "rate": "60000", "source": "static", "rate_at": float64(b.clock.Now().UnixMilli())}
		if inv["amount"] != "0.01" || !reflect.DeepEqual(inv["price"], wantPrice) {
			t.Errorf("%s: amount %v, price %v", where, inv["amount"], inv["price"])
		}
	}
	check("created", created)
	id := created["id"].(string)
	check("GET", b.do(t, req{method: "GET", path: "/v1/invoices/" + id, key: m.secret}).json(t))
	check("GET publishable", b.do(t, req{method: "GET", path: "/v1/invoices/" + id, key: m.pub}).json(t))
	list := b.do(t, req{method: "GET", path: "/v1/invoices", key: m.secret}).json(t)["data"].([]any)
	check("list", list[0].(map[string]any))

	// Left out: null description and redirect_url, an empty metadata object.
	plain := b.createInvoice(t, m.secret, btcBody)
	if plain["description"] != nil || plain["redirect_url"] != nil || !reflect.DeepEqual(plain["metadata"], map[string]any{}) {
		t.Errorf("plain invoice: description %v, metadata %v, redirect_url %v", plain["description"], plain["metadata"], plain["redirect_url"])
	}
	plainGot := b.do(t, req{method: "GET", path: "/v1/invoices/" + plain["id"].(string), key: m.secret}).json(t)
	if !reflect.DeepEqual(plainGot["metadata"], map[string]any{}) {
		t.Errorf("plain invoice GET metadata %v", plainGot["metadata"])
	}

	b.payDeposit(t, id, "0.01")
	b.syncWebhooks(t)
	b.passAll(t)
	var body struct {
		Type string         `json:"type"`
		Data map[string]any `json:"data"`
	}
	got := rc.requests()
	if len(got) == 0 {
		t.Fatal("no webhook")
	}
	if err := json.Unmarshal(got[len(got)-1].body, &body); err != nil {
		t.Fatal(err)
	}
	check("webhook "+body.Type, body.Data)
}
