package httpapi

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestTextFieldsRefuseInvisibleCharacters (issue #17, finding 5): order_id
// and a merchant's name refuse bidirectional controls, other format and
// control characters and invalid UTF-8, whether sent as JSON escapes or as
// raw bytes (which JSON decoding would turn into U+FFFD), with a 400 that
// says what is allowed.
func TestTextFieldsRefuseInvisibleCharacters(t *testing.T) {
	b := setup(t, func(c *Config) { c.SignupRatePerMinute = 1000 })
	m := b.signUp(t, "Shop")
	refused := map[string]string{
		"escaped U+202E":            `order-\u202e321`,
		"raw U+202E":                "order-\u202e321",
		"escaped U+2066":            `a\u2066b`,
		"raw U+200F":                "a\u200fb",
		"escaped U+061C":            `a\u061cb`,
		"escaped U+200B":            `a\u200bb`,
		"escaped U+FEFF":            `\ufeffabc`,
		"escaped U+FFFD":            `a\ufffdb`,
		"lone surrogate":            `a\ud800b`,
		"raw invalid UTF-8":         "a\xffb",
		"raw overlong UTF-8":        "a\xc0\xafb",
		"escaped newline":           `a\nb`,
		"escaped DEL":               `a\u007fb`,
		"escaped C1 control U+009B": `a\u009bb`,
	}
	for what, field := range refused {
		res := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret,
			body: `{"asset":"BTC","amount":"0.01","order_id":"` + field + `"}`})
		checkTextRefused(t, "order_id "+what, res, "order_id")
		res = b.do(t, req{method: "POST", path: "/v1/merchants", body: `{"name":"Shop ` + field + `"}`})
		checkTextRefused(t, "name "+what, res, "name")
	}
	if n := b.countInvoices(t, m.secret); n != 0 {
		t.Errorf("%d invoices were created", n)
	}
	// Readable text in any script still works, right-to-left letters too.
	for _, s := range []string{"order-123", "Größe L / 注文-42", "طلب ٤٢", "🎉 #7"} {
		inv := b.createInvoice(t, m.secret, `{"asset":"BTC","amount":"0.01","order_id":"`+s+`"}`)
		if inv["order_id"] != s {
			t.Errorf("order_id %q came back as %q", s, inv["order_id"])
		}
		if res := b.do(t, req{method: "POST", path: "/v1/merchants", body: `{"name":"` + s + `"}`}); res.status != http.StatusCreated {
			t.Errorf("name %q: %d %s", s, res.status, res.raw)
		}
	}
}

func checkTextRefused(t *testing.T, what string, res response, field string) {
	t.Helper()
	if res.status != http.StatusBadRequest || res.code() != "validation_error" {
		t.Errorf("%s: %d %s, want 400 validation_error", what, res.status, res.raw)
		return
	}
	msg, _ := res.json(t)["message"].(string)
	for _, want := range []string{field, "letters", "digits", "punctuation", "symbols", "spaces"} {
		if !strings.Contains(msg, want) {
			t.Errorf("%s: message %q does not say %q", what, msg, want)
		}
	}
}

// TestCreatedBy (issue #17, finding 3): what the publishable key creates is
// marked created_by "publishable_key" in the POST answer, GET (with either
// key), the list and the webhook's data; the secret key and the dashboard's
// session create "secret_key" invoices.
func TestCreatedBy(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	body := `{"asset":"USDT.ETH","amount":"49.99","order_id":"order-1"}`
	bySecret := b.createInvoice(t, m.secret, body)
	byPub := b.createInvoice(t, m.pub, `{"asset":"USDT.ETH","amount":"0.01","order_id":"order-1"}`)
	cookie := b.login(t, m.secret)
	res := b.do(t, req{method: "POST", path: "/v1/invoices", body: body, header: withCookie(cookie, "X-Requested-With", "dashboard")})
	if res.status != http.StatusCreated {
		t.Fatalf("create with the session: %d %s", res.status, res.raw)
	}
	bySession := res.json(t)
	want := map[string]string{bySecret["id"].(string): "secret_key", byPub["id"].(string): "publishable_key", bySession["id"].(string): "secret_key"}
	for what, inv := range map[string]map[string]any{"secret key": bySecret, "publishable key": byPub, "session": bySession} {
		id := inv["id"].(string)
		if inv["created_by"] != want[id] {
			t.Errorf("POST with the %s: created_by %#v, want %q", what, inv["created_by"], want[id])
		}
		for _, key := range []string{m.secret, m.pub} {
			got := b.do(t, req{method: "GET", path: "/v1/invoices/" + id, key: key}).json(t)
			if got["created_by"] != want[id] {
				t.Errorf("GET of the %s's invoice: created_by %#v, want %q", what, got["created_by"], want[id])
			}
		}
	}
	list := b.do(t, req{method: "GET", path: "/v1/invoices", key: m.secret}).json(t)["data"].([]any)
	if len(list) != 3 {
		t.Fatalf("list: %d invoices", len(list))
	}
	for _, x := range list {
		inv := x.(map[string]any)
		if inv["created_by"] != want[inv["id"].(string)] {
			t.Errorf("list: %s created_by %#v, want %q", inv["id"], inv["created_by"], want[inv["id"].(string)])
		}
	}
	// The public status endpoint says nothing about keys.
	if pub := b.do(t, req{method: "GET", path: "/v1/public/invoices/" + byPub["id"].(string)}).json(t); pub["created_by"] != nil {
		t.Errorf("public invoice shows created_by %v", pub["created_by"])
	}

	// The webhook of the publishable key's invoice says so too.
	rc := newHookReceiver(t)
	if res := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"webhook_url":"` + rc.srv.URL + `/ipn"}`}); res.status != http.StatusOK {
		t.Fatalf("set webhook_url: %d %s", res.status, res.raw)
	}
	b.payDeposit(t, byPub["id"].(string), "0.01")
	b.syncWebhooks(t)
	b.passAll(t)
	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d webhooks, want 1", len(got))
	}
	var hook struct {
		Data map[string]any `json:"data"`
	}
	if err := json.Unmarshal(got[0].body, &hook); err != nil {
		t.Fatal(err)
	}
	if hook.Data["id"] != byPub["id"] || hook.Data["created_by"] != "publishable_key" || hook.Data["order_id"] != "order-1" {
		t.Errorf("webhook data: id %v created_by %#v order_id %#v", hook.Data["id"], hook.Data["created_by"], hook.Data["order_id"])
	}
}
