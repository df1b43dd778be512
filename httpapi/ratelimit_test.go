package httpapi

import (
	"net/http"
	"strconv"
	"testing"
	"time"
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
