package httpapi

import (
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
