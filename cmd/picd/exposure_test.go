package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

// The tests of what picd shows to whom (issue #17): metrics only on their
// own address, HSTS behind HTTPS, a per-IP limit on every unauthenticated
// route, and dashboard sessions that end on every process at once.

// TestMetricsListenConfig: PIC_METRICS_LISTEN defaults to loopback, and
// empty turns the metrics off.
func TestMetricsListenConfig(t *testing.T) {
	c, err := parseConfig(nil)
	if err != nil || c.MetricsListen != "127.0.0.1:9464" {
		t.Fatalf("default: %q %v", c.MetricsListen, err)
	}
	t.Setenv("PIC_METRICS_LISTEN", "")
	if c, err := parseConfig(nil); err != nil || c.MetricsListen != "" {
		t.Fatalf("empty: %q %v", c.MetricsListen, err)
	}
	if c, err := parseConfig([]string{"-metrics-listen", "10.0.0.5:9100"}); err != nil || c.MetricsListen != "10.0.0.5:9100" {
		t.Fatalf("flag: %q %v", c.MetricsListen, err)
	}
	if _, err := parseConfig([]string{"-metrics-listen", "9464"}); err == nil {
		t.Fatal("an address without a port was accepted")
	}
}

// get answers status, headers and body of a GET (or method) without a key.
func get(t *testing.T, method, url string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(raw)
}

// TestHSTS: with an https base URL every response of the public port
// carries Strict-Transport-Security (the TLS proxy in front passes it on);
// with http, none does (browsers ignore it there, and a local quick start
// must not pin localhost to HTTPS).
func TestHSTS(t *testing.T) {
	const want = "max-age=31536000; includeSubDomains"
	paths := []string{"/healthz", "/readyz", "/v1/openapi.json", "/v1/account", "/v1/nope", "/pay/inv_01jfz3k8m2x4v7q9c0b5n6t8w1r3",
		"/pay/static/base.css", "/dashboard", "/nowhere"}
	for base, wantHeader := range map[string]string{"https://pay.example.com": want, "http://pay.example.com": ""} {
		g := startGateway(t, []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_BASE_URL=" + base})
		for _, p := range paths {
			status, h, _ := get(t, "GET", g.url+p)
			if got := h.Get("Strict-Transport-Security"); got != wantHeader {
				t.Errorf("%s, GET %s (%d): Strict-Transport-Security %q, want %q", base, p, status, got, wantHeader)
			}
		}
	}
}

// TestPublicRoutesLimited (finding 6): with PIC_PUBLIC_RATE_PER_MINUTE=3,
// the 4th request of one client to each unauthenticated route is a 429;
// static files and /healthz (constant answers, no query) are not limited.
func TestPublicRoutesLimited(t *testing.T) {
	g := startGateway(t, []string{"PIC_DATA_DIR=" + t.TempDir(), "PIC_PUBLIC_RATE_PER_MINUTE=3"})
	const inv = "inv_01jfz3k8m2x4v7q9c0b5n6t8w1r3"
	for _, group := range [][]string{
		// The checkout page and its payment request share a bucket.
		{"GET /pay/" + inv, "GET /pay/request/" + inv, "GET /pay/" + inv},
		{"GET /dashboard", "GET /dashboard/", "GET /dashboard"},
		{"GET /v1/public/invoices/" + inv},
		{"GET /v1/openapi.json"},
		{"DELETE /v1/sessions"},
		{"GET /readyz"},
	} {
		for i := 0; i < 3; i++ {
			method, path, _ := strings.Cut(group[i%len(group)], " ")
			if status, _, body := get(t, method, g.url+path); status == http.StatusTooManyRequests {
				t.Fatalf("%s %s: limited at request %d: %s", method, path, i+1, body)
			}
		}
		method, path, _ := strings.Cut(group[0], " ")
		status, h, body := get(t, method, g.url+path)
		if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
			t.Errorf("%s %s: the 4th request got %d (Retry-After %q): %.200s", method, path, status, h.Get("Retry-After"), body)
		}
	}
	for i := 0; i < 10; i++ {
		for _, p := range []string{"/pay/static/checkout.js", "/dashboard/static/dashboard.js", "/healthz"} {
			if status, _, _ := get(t, "GET", g.url+p); status != http.StatusOK {
				t.Fatalf("GET %s: %d", p, status)
			}
		}
	}
}

// TestSessionsEndAcrossProcesses (finding 4): two picd on one Postgres. A
// dashboard session made on one works on the other; signing out on the
// other ends it on the first at once, and so does signing out everywhere.
func TestSessionsEndAcrossProcesses(t *testing.T) {
	env := append(postgresEnv(t), "PIC_DATA_DIR="+t.TempDir()) // one session.key for both
	a := startGateway(t, env)
	b := startGateway(t, env)
	_, m := a.do("POST", "/v1/merchants", "", map[string]any{"name": "Shop"})
	secret := m["secret_key"].(string)
	login := func(g *gateway) string {
		t.Helper()
		req, _ := http.NewRequest("POST", g.url+"/v1/sessions", bytes.NewReader([]byte(`{"secret_key":"`+secret+`"}`)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		for _, c := range resp.Cookies() {
			if c.Name == "pic_session" && resp.StatusCode == http.StatusCreated {
				return c.Name + "=" + c.Value
			}
		}
		t.Fatalf("login: %d, no cookie", resp.StatusCode)
		return ""
	}
	call := func(g *gateway, method, path, cookie string) int {
		t.Helper()
		req, _ := http.NewRequest(method, g.url+path, nil)
		req.Header.Set("Cookie", cookie)
		req.Header.Set("X-Requested-With", "fetch")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	c := login(a)
	if got := call(b, "GET", "/v1/account", c); got != http.StatusOK {
		t.Fatalf("a's session on b: %d", got)
	}
	if got := call(b, "DELETE", "/v1/sessions", c); got != http.StatusNoContent {
		t.Fatalf("sign-out on b: %d", got)
	}
	if got := call(a, "GET", "/v1/account", c); got != http.StatusUnauthorized {
		t.Fatalf("signed out on b, the session still works on a: %d", got)
	}
	onA, onB := login(a), login(b)
	if got := call(b, "DELETE", "/v1/sessions?all=true", onB); got != http.StatusNoContent {
		t.Fatalf("sign out everywhere on b: %d", got)
	}
	for _, g := range []*gateway{a, b} {
		if x, y := call(g, "GET", "/v1/account", onA), call(g, "GET", "/v1/account", onB); x != http.StatusUnauthorized || y != http.StatusUnauthorized {
			t.Fatalf("after sign out everywhere: %d %d", x, y)
		}
	}
}
