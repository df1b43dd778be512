package httpapi

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
)

func TestRateLimits(t *testing.T) {
	b := setup(t, func(c *Config) {
		c.SignupRatePerMinute = 2
		c.PublicRatePerMinute = 3
		c.KeyRatePerMinute = 5
	})
	signup := req{method: "POST", path: "/v1/merchants", body: `{"name":"Shop"}`}
	var m merchant
	for i := 0; i < 2; i++ {
		m = b.signUp(t, "Shop")
	}
	limited := b.do(t, signup)
	wantLimited(t, "sign-up", limited)
	b.clock.Advance(30 * time.Second) // one token back
	if res := b.do(t, signup); res.status != http.StatusCreated {
		t.Fatalf("sign-up after refill: %d %s", res.status, res.raw)
	}

	id := b.createInvoice(t, m.secret, btcBody)["id"].(string)
	public := req{method: "GET", path: "/v1/public/invoices/" + id}
	for i := 0; i < 3; i++ {
		if res := b.do(t, public); res.status != http.StatusOK {
			t.Fatalf("public %d: %d", i, res.status)
		}
	}
	wantLimited(t, "public", b.do(t, public))

	// Per key: the create above took one of 5.
	for i := 0; i < 4; i++ {
		if res := b.do(t, req{method: "GET", path: "/v1/assets", key: m.secret}); res.status != http.StatusOK {
			t.Fatalf("key request %d: %d", i, res.status)
		}
	}
	wantLimited(t, "per key", b.do(t, req{method: "GET", path: "/v1/assets", key: m.secret}))
	// The publishable key has its own bucket.
	if res := b.do(t, req{method: "GET", path: "/v1/assets", key: m.pub}); res.status != http.StatusOK {
		t.Fatalf("publishable key limited with the secret one: %d", res.status)
	}
}

func wantLimited(t *testing.T, what string, res response) {
	t.Helper()
	if res.status != http.StatusTooManyRequests || res.code() != "rate_limited" {
		t.Fatalf("%s: %d %s, want 429", what, res.status, res.raw)
	}
	if s, err := strconv.Atoi(res.header.Get("Retry-After")); err != nil || s < 1 {
		t.Fatalf("%s: Retry-After %q", what, res.header.Get("Retry-After"))
	}
}

func TestLimiterEvictsWhenFull(t *testing.T) {
	l := newLimiter(1, 100)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		l.allow(strconv.Itoa(i), now)
	}
	if len(l.buckets) > 100 {
		t.Fatalf("%d buckets, bound is 100", len(l.buckets))
	}
	if err := l.allow("999", now); err == nil {
		t.Fatal("a fresh bucket lost its limit")
	}
}

// TestEveryRouteNeedsAKeyOrIsLimited (issue #17, finding 6): walking the
// router, every route either refuses a request without credentials (401)
// or, once a client has used up its minute, answers 429. Nothing is open
// and unlimited.
func TestEveryRouteNeedsAKeyOrIsLimited(t *testing.T) {
	b := setup(t, func(c *Config) {
		c.SignupRatePerMinute = 2
		c.PublicRatePerMinute = 3
	})
	id := b.createInvoice(t, b.signUp(t, "Shop").secret, btcBody)["id"].(string)
	walked := 0
	err := chi.Walk(b.srv.Config.Handler.(chi.Router), func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		walked++
		path := regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(route, id)
		body := ""
		if route == "/v1/merchants" {
			body = `{"name":"Shop"}`
		}
		var last response
		for i := 0; i < 4; i++ {
			last = b.do(t, req{method: method, path: path, body: body})
		}
		if last.status != http.StatusUnauthorized && last.status != http.StatusTooManyRequests {
			t.Errorf("%s %s: the 4th request without a key got %d %s: neither authenticated nor limited", method, route, last.status, last.raw)
		}
		return nil
	})
	if err != nil || walked < 15 {
		t.Fatalf("walked %d routes: %v", walked, err)
	}
}

// TestIPLimiter: the limit offered to the routes outside /v1 counts per
// namespace and client IP (the configured proxy header's, as the API's).
func TestIPLimiter(t *testing.T) {
	clk := &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	l := NewIPLimiter(2, "X-Real-IP", clk.Now)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	h := http.NewServeMux()
	h.Handle("/a", l.Limit("a", ok))
	h.Handle("/b", l.Limit("b", ok))
	get := func(path, ip string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		r := httptest.NewRequest("GET", path, nil)
		r.Header.Set("X-Real-IP", ip)
		h.ServeHTTP(rec, r)
		return rec
	}
	for i := 0; i < 2; i++ {
		if got := get("/a", "203.0.113.1").Code; got != http.StatusOK {
			t.Fatalf("request %d: %d", i, got)
		}
	}
	limited := get("/a", "203.0.113.1")
	wantLimited(t, "third", response{status: limited.Code, header: limited.Header(), raw: limited.Body.Bytes()})
	if get("/b", "203.0.113.1").Code != http.StatusOK || get("/a", "203.0.113.2").Code != http.StatusOK {
		t.Fatal("another namespace or another client shares the bucket")
	}
	clk.Advance(30 * time.Second)
	if got := get("/a", "203.0.113.1").Code; got != http.StatusOK {
		t.Fatalf("after refill: %d", got)
	}
}
