package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/webhooks"
)

// Issue #17, finding 8: a webhook URL on loopback, a private network,
// link-local (cloud metadata) or any other range the delivery guard
// refuses, as a literal or through a name that resolves there now, is
// refused when it is saved (sign-up and PATCH /v1/account), with a message
// that names no address; a name that does not resolve yet is accepted (the
// dial-time guard still checks every connection). PIC_WEBHOOK_ALLOW_PRIVATE
// keeps allowing them.
func TestWebhookURLCheckedWhenSaved(t *testing.T) {
	b := setup(t, func(c *Config) { c.SignupRatePerMinute = 1000 })
	strict := *b
	deps := b.deps
	deps.Webhooks = webhooks.NewWorker(b.db, webhooks.Config{}) // picd without PIC_WEBHOOK_ALLOW_PRIVATE
	strict.srv = httptest.NewServer(recordAnswers(New(b.cfg, deps)))
	t.Cleanup(strict.srv.Close)

	refused := []string{"http://127.0.0.1:8080/ipn", "http://localhost/ipn", "http://LOCALHOST./ipn", "http://10.0.0.5/ipn",
		"http://172.16.3.4/", "http://192.168.1.10/", "http://169.254.169.254/latest/meta-data/", "http://100.64.0.1/",
		"http://0.0.0.0/", "http://[::1]/ipn", "http://[fd00::1]/", "http://[fe80::1%25eth0]/", "http://[::ffff:127.0.0.1]/",
		"http://[64:ff9b::a00:1]/"}
	accepted := []string{"https://shop.example/ipn", "https://93.184.216.34/ipn", "http://[2606:4700::1111]/hook"}

	m := strict.signUp(t, "Shop")
	for _, url := range refused {
		res := strict.do(t, req{method: "POST", path: "/v1/merchants", body: `{"name":"Shop","webhook_url":"` + url + `"}`})
		msg, _ := res.json(t)["message"].(string)
		if res.status != http.StatusBadRequest || res.code() != "validation_error" || !strings.Contains(msg, "webhook_url") {
			t.Errorf("sign-up with %s: %d %.200s", url, res.status, res.raw)
		}
		if strings.Contains(msg, "127.0.0.1") && !strings.Contains(url, "127.0.0.1") {
			t.Errorf("sign-up with %s: the answer names the resolved address: %s", url, msg)
		}
		res = strict.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"webhook_url":"` + url + `"}`})
		if res.status != http.StatusBadRequest || res.code() != "validation_error" {
			t.Errorf("PATCH with %s: %d %.200s", url, res.status, res.raw)
		}
	}
	res := strict.do(t, req{method: "GET", path: "/v1/account", key: m.secret})
	if got := res.json(t)["webhook_url"]; got != "https://shop.example/ipn" {
		t.Fatalf("a refused URL was saved: %v", got)
	}
	for _, url := range accepted {
		if res := strict.do(t, req{method: "POST", path: "/v1/merchants", body: `{"name":"Shop","webhook_url":"` + url + `"}`}); res.status != http.StatusCreated {
			t.Errorf("sign-up with %s: %d %s", url, res.status, res.raw)
		}
		if res := strict.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"webhook_url":"` + url + `"}`}); res.status != http.StatusOK {
			t.Errorf("PATCH with %s: %d %s", url, res.status, res.raw)
		}
	}
	if res := strict.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"webhook_url":null}`}); res.status != http.StatusOK {
		t.Errorf("clearing the URL: %d %s", res.status, res.raw)
	}

	// PIC_WEBHOOK_ALLOW_PRIVATE=true (the bundle's own worker).
	open := b.signUp(t, "Local")
	for _, url := range refused[:3] {
		if res := b.do(t, req{method: "PATCH", path: "/v1/account", key: open.secret, body: `{"webhook_url":"` + url + `"}`}); res.status != http.StatusOK {
			t.Errorf("PATCH with %s, private allowed: %d %s", url, res.status, res.raw)
		}
	}
	if res := b.do(t, req{method: "POST", path: "/v1/merchants", body: `{"name":"Local","webhook_url":"http://127.0.0.1:3001/ipn"}`}); res.status != http.StatusCreated {
		t.Errorf("sign-up with loopback, private allowed: %d %s", res.status, res.raw)
	}
}
