package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
)

// login posts the secret key and returns the session cookie.
func (b *bundle) login(t *testing.T, secret string) *http.Cookie {
	t.Helper()
	res := b.do(t, req{method: "POST", path: "/v1/sessions", body: `{"secret_key":"` + secret + `"}`})
	if res.status != http.StatusCreated {
		t.Fatalf("login: %d %s", res.status, res.raw)
	}
	return sessionFrom(t, res)
}

func sessionFrom(t *testing.T, res response) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: res.header}).Cookies() {
		if c.Name == sessionCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", sessionCookie, res.header)
	return nil
}

func withCookie(c *http.Cookie, extra ...string) map[string]string {
	h := map[string]string{"Cookie": c.Name + "=" + c.Value}
	for i := 0; i+1 < len(extra); i += 2 {
		h[extra[i]] = extra[i+1]
	}
	return h
}

func TestSessions(t *testing.T) {
	b := setup(t, func(c *Config) { c.SecureCookies = true })
	m := b.signUp(t, "Shop")
	c := b.login(t, m.secret)
	if !c.HttpOnly || !c.Secure || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.MaxAge <= 0 {
		t.Fatalf("cookie attributes: %+v", c)
	}
	if strings.Contains(c.Value, m.secret) {
		t.Fatal("the cookie holds the secret key")
	}

	// The cookie acts as the secret key.
	if res := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(c)}); res.status != http.StatusOK || res.json(t)["merchant_id"] != m.id {
		t.Fatalf("cookie auth: %d %s", res.status, res.raw)
	}
	if res := b.do(t, req{method: "GET", path: "/v1/invoices", header: withCookie(c)}); res.status != http.StatusOK {
		t.Fatalf("cookie list: %d", res.status)
	}
	// Changing state by cookie needs the CSRF header.
	patch := `{"webhook_url":"https://new.example/ipn"}`
	if res := b.do(t, req{method: "PATCH", path: "/v1/account", body: patch, header: withCookie(c)}); res.status != http.StatusForbidden || res.code() != "csrf_header_required" {
		t.Fatalf("cookie PATCH without header: %d %s", res.status, res.raw)
	}
	if res := b.do(t, req{method: "PATCH", path: "/v1/account", body: patch, header: withCookie(c, "X-Requested-With", "fetch")}); res.status != http.StatusOK {
		t.Fatalf("cookie PATCH: %d %s", res.status, res.raw)
	}
	// An API key needs no CSRF header: no browser sends it on its own.
	if res := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: patch}); res.status != http.StatusOK {
		t.Fatalf("key PATCH: %d", res.status)
	}

	// Tampering with the cookie ends it.
	tampered := *c
	tampered.Value = strings.Replace(c.Value, ".", "x.", 1)
	if res := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(&tampered)}); res.status != http.StatusUnauthorized {
		t.Fatalf("tampered cookie: %d", res.status)
	}

	// Rotating by cookie hands the dashboard a new session for the new key.
	res := b.do(t, req{method: "POST", path: "/v1/account/keys/rotate", header: withCookie(c, "X-Requested-With", "fetch")})
	if res.status != http.StatusOK {
		t.Fatalf("rotate by cookie: %d %s", res.status, res.raw)
	}
	renewed := sessionFrom(t, res)
	if got := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(renewed)}); got.status != http.StatusOK {
		t.Fatalf("renewed session: %d", got.status)
	}
	// The session of the old key ended with the rotation.
	if got := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(c)}); got.status != http.StatusUnauthorized {
		t.Fatalf("old session after rotation: %d", got.status)
	}
	newSecret := res.json(t)["secret_key"].(string)

	// A rotation by API key ends every session, the renewed one too.
	if got := b.do(t, req{method: "POST", path: "/v1/account/keys/rotate", key: newSecret}); got.status != http.StatusOK {
		t.Fatalf("rotate by key: %d", got.status)
	}
	if got := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(renewed)}); got.status != http.StatusUnauthorized {
		t.Fatalf("session after rotation by key: %d", got.status)
	}

	// Logging out clears the cookie.
	out := b.do(t, req{method: "DELETE", path: "/v1/sessions", header: withCookie(renewed)})
	if out.status != http.StatusNoContent {
		t.Fatalf("logout: %d", out.status)
	}
	if cleared := sessionFrom(t, out); cleared.MaxAge >= 0 || cleared.Value != "" {
		t.Fatalf("logout cookie: %+v", cleared)
	}
}

func TestSessionExpires(t *testing.T) {
	b := setup(t, func(c *Config) { c.SessionTTL = time.Hour })
	m := b.signUp(t, "Shop")
	c := b.login(t, m.secret)
	b.clock.Advance(59 * time.Minute)
	if res := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(c)}); res.status != http.StatusOK {
		t.Fatalf("before expiry: %d", res.status)
	}
	b.clock.Advance(2 * time.Minute)
	if res := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(c)}); res.status != http.StatusUnauthorized {
		t.Fatalf("after expiry: %d", res.status)
	}
}

// A cookie signed with another secret (another deployment) is refused,
// even when its session is live in the store.
func TestSessionOtherSecret(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	other := newServer(Config{SessionSecret: []byte("another-secret-another-secret-xx")}, b.deps)
	rec := &recorder{header: http.Header{}}
	if _, err := other.setSession(context.Background(), rec, m.id, commands.HashSecretKey(m.secret)); err != nil {
		t.Fatal(err)
	}
	forged := sessionFrom(t, response{header: rec.header})
	if res := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(forged)}); res.status != http.StatusUnauthorized {
		t.Fatalf("forged cookie: %d", res.status)
	}
}

// TestSignOutEndsTheSession (issue #17, finding 4): a copy of the cookie,
// as a thief would keep it, stops working once its owner signs out; the
// merchant's other sessions go on.
func TestSignOutEndsTheSession(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	laptop, phone := b.login(t, m.secret), b.login(t, m.secret)
	stolen := *laptop
	if res := b.do(t, req{method: "DELETE", path: "/v1/sessions", header: withCookie(laptop)}); res.status != http.StatusNoContent {
		t.Fatalf("sign-out: %d %s", res.status, res.raw)
	}
	if res := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(&stolen)}); res.status != http.StatusUnauthorized {
		t.Fatalf("the signed-out cookie still works: %d %s", res.status, res.raw)
	}
	if res := b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(phone)}); res.status != http.StatusOK {
		t.Fatalf("another session ended with it: %d", res.status)
	}
	// Signing out twice, or with a cookie that was never valid, is fine.
	for _, c := range []*http.Cookie{&stolen, {Name: sessionCookie, Value: "junk"}} {
		if res := b.do(t, req{method: "DELETE", path: "/v1/sessions", header: withCookie(c)}); res.status != http.StatusNoContent {
			t.Fatalf("sign-out with %q: %d", c.Value, res.status)
		}
	}
}

// TestSignOutEverywhere: DELETE /v1/sessions?all=true, by a session (with
// the CSRF header) or the secret key, ends every session of the merchant
// at once, and only the merchant's.
func TestSignOutEverywhere(t *testing.T) {
	b := setup(t)
	m, other := b.signUp(t, "Shop"), b.signUp(t, "Other")
	laptop, phone, theirs := b.login(t, m.secret), b.login(t, m.secret), b.login(t, other.secret)
	account := func(c *http.Cookie) int {
		return b.do(t, req{method: "GET", path: "/v1/account", header: withCookie(c)}).status
	}
	everywhere := req{method: "DELETE", path: "/v1/sessions?all=true"}

	// A cookie alone may not: another site could make the browser send it.
	everywhere.header = withCookie(laptop)
	if res := b.do(t, everywhere); res.status != http.StatusForbidden || res.code() != "csrf_header_required" {
		t.Fatalf("without the CSRF header: %d %s", res.status, res.raw)
	}
	if got := account(laptop); got != http.StatusOK {
		t.Fatalf("a refused sign-out ended the session: %d", got)
	}
	everywhere.header = withCookie(laptop, "X-Requested-With", "fetch")
	res := b.do(t, everywhere)
	if res.status != http.StatusNoContent {
		t.Fatalf("sign out everywhere: %d %s", res.status, res.raw)
	}
	if cleared := sessionFrom(t, res); cleared.MaxAge >= 0 || cleared.Value != "" {
		t.Fatalf("the caller's cookie is not cleared: %+v", cleared)
	}
	if a, p, o := account(laptop), account(phone), account(theirs); a != http.StatusUnauthorized || p != http.StatusUnauthorized || o != http.StatusOK {
		t.Fatalf("after sign out everywhere: laptop %d, phone %d, another merchant %d", a, p, o)
	}
	// An ended session cannot do it again.
	if res := b.do(t, everywhere); res.status != http.StatusUnauthorized {
		t.Fatalf("by an ended session: %d", res.status)
	}

	// By the secret key (a merchant who lost the laptop with the cookie).
	later := b.login(t, m.secret)
	if res := b.do(t, req{method: "DELETE", path: "/v1/sessions?all=true", key: m.secret}); res.status != http.StatusNoContent {
		t.Fatalf("by key: %d %s", res.status, res.raw)
	}
	if got := account(later); got != http.StatusUnauthorized {
		t.Fatalf("session after sign out everywhere by key: %d", got)
	}
	// A new login works again.
	if got := account(b.login(t, m.secret)); got != http.StatusOK {
		t.Fatalf("login after sign out everywhere: %d", got)
	}
	for _, tt := range []struct {
		name, path, key string
		wantStatus      int
		wantCode        string
	}{
		{"no key", "/v1/sessions?all=true", "", 401, "unauthorized"},
		{"publishable key", "/v1/sessions?all=true", m.pub, 403, "forbidden"},
		{"bad value", "/v1/sessions?all=yes", m.secret, 400, "validation_error"},
		{"twice", "/v1/sessions?all=true&all=true", m.secret, 400, "validation_error"},
	} {
		if res := b.do(t, req{method: "DELETE", path: tt.path, key: tt.key}); res.status != tt.wantStatus || res.code() != tt.wantCode {
			t.Errorf("%s: %d %s, want %d %s", tt.name, res.status, res.raw, tt.wantStatus, tt.wantCode)
		}
	}
}
