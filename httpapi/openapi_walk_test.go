package httpapi

import (
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
)

// TestEveryRouteAnswersItsErrors walks the router and drives each route
// into the errors its middleware gives: two different keys (400), a
// publishable key where the secret one is needed (403), a body that is not
// JSON (415) or too large (413), and, with the database closed, a
// dependency failure (500 or 503). Each answer is recorded, so TestMain
// then holds openapi.json to listing it for that operation.
func TestEveryRouteAnswersItsErrors(t *testing.T) {
	b := setup(t, func(c *Config) {
		c.MaxBodyBytes = 1 << 10
		c.SignupRatePerMinute, c.PublicRatePerMinute = 1000, 1000
	})
	m := b.signUp(t, "Walker")
	id := b.createInvoice(t, m.secret, btcBody)["id"].(string)
	public := map[string]bool{"GET /v1/openapi.json": true, "POST /v1/merchants": true, "GET /v1/public/invoices/{id}": true,
		"POST /v1/sessions": true, "DELETE /v1/sessions": true}
	anyKey := map[string]bool{"GET /v1/assets": true, "POST /v1/invoices": true, "GET /v1/invoices/{id}": true, "GET /v1/quote": true}
	type route struct{ op, method, path string }
	var routes []route
	err := chi.Walk(b.srv.Config.Handler.(chi.Router), func(method, pattern string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(pattern, id)
		routes = append(routes, route{method + " " + pattern, method, path})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(r route, rq req, status int, code string) {
		t.Helper()
		res := b.do(t, rq)
		if res.status != status || res.code() != code {
			t.Errorf("%s: %d %s, want %d %s", r.op, res.status, res.raw, status, code)
		}
	}
	withBody := func(method string) bool { return method == "POST" || method == "PUT" || method == "PATCH" }
	for _, r := range routes {
		if !public[r.op] {
			expect(r, req{method: r.method, path: r.path, key: m.secret, header: map[string]string{"x-api-key": m.pub}},
				http.StatusBadRequest, "ambiguous_credentials")
			if !anyKey[r.op] {
				expect(r, req{method: r.method, path: r.path, key: m.pub}, http.StatusForbidden, "forbidden")
			}
		}
		if withBody(r.method) {
			expect(r, req{method: r.method, path: r.path, key: m.secret, body: "name=x", header: map[string]string{"Content-Type": "text/plain"}},
				http.StatusUnsupportedMediaType, "unsupported_media_type")
			expect(r, req{method: r.method, path: r.path, key: m.secret, body: `{"name":"` + strings.Repeat("x", 2<<10) + `"}`},
				http.StatusRequestEntityTooLarge, "request_too_large")
		}
	}
	// A database that fails under every route: what reads it answers 500
	// (SQLite's closed handle; PostgreSQL unreachable is 503).
	b.store.Close()
	failed := 0
	for _, r := range routes {
		body := ""
		if withBody(r.method) {
			body = "{}"
		}
		hr, _ := http.NewRequest(r.method, b.srv.URL+r.path, strings.NewReader(body))
		hr.Header.Set("Authorization", "Bearer "+m.secret)
		hr.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(hr)
		if err != nil {
			continue // a CSV export aborts its stream rather than end it as if complete
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		res := response{status: resp.StatusCode, raw: raw}
		if res.status >= 500 {
			failed++
			if res.code() != "internal_error" && res.code() != "service_unavailable" {
				t.Errorf("%s with the database closed: %d %s", r.op, res.status, res.raw)
			}
		}
	}
	if failed < len(routes)/2 {
		t.Errorf("only %d of %d routes failed with the database closed", failed, len(routes))
	}
}
