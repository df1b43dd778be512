package httpapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestSignUpNeverReplaysSecrets: two clients behind one IP (a reverse
// proxy: the same connection address, or the same client IP in the
// configured header) sign up with the same Idempotency-Key and body. Each
// gets its own merchant; the second never receives the first's secrets,
// and nothing of a sign-up is kept to be replayed.
func TestSignUpNeverReplaysSecrets(t *testing.T) {
	for _, tt := range []struct {
		name     string
		ipHeader string            // Config.ClientIPHeader
		header   map[string]string // what the proxy adds to both requests
	}{
		{"proxy address", "", nil},
		{"X-Forwarded-For", "X-Forwarded-For", map[string]string{"X-Forwarded-For": "203.0.113.7"}},
		{"X-Real-IP", "X-Real-IP", map[string]string{"X-Real-IP": "203.0.113.7"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := setup(t, func(c *Config) { c.ClientIPHeader = tt.ipHeader })
			header := map[string]string{"Idempotency-Key": "signup-1"}
			for k, v := range tt.header {
				header[k] = v
			}
			body := `{"name":"Shop","webhook_url":"https://shop.example/ipn"}`
			first := b.do(t, req{method: "POST", path: "/v1/merchants", body: body, header: header})
			second := b.do(t, req{method: "POST", path: "/v1/merchants", body: body, header: header})
			for i, res := range []response{first, second} {
				if res.status != http.StatusCreated || res.header.Get("Idempotent-Replayed") != "" {
					t.Fatalf("client %d: %d %v %s", i+1, res.status, res.header, res.raw)
				}
			}
			one, two := first.json(t), second.json(t)
			for _, field := range []string{"merchant_id", "secret_key", "publishable_key", "webhook_secret"} {
				v, _ := one[field].(string)
				if v == "" || bytes.Contains(second.raw, []byte(v)) {
					t.Fatalf("the second client received the first's %s: %s", field, second.raw)
				}
			}
			// Both accounts are real and separate.
			for _, m := range []map[string]any{one, two} {
				acc := b.do(t, req{method: "GET", path: "/v1/account", key: m["secret_key"].(string)})
				if acc.status != http.StatusOK || acc.json(t)["merchant_id"] != m["merchant_id"] {
					t.Fatalf("account of %v: %d %s", m["merchant_id"], acc.status, acc.raw)
				}
			}
			var rows int
			if err := b.db.Read.QueryRow(`SELECT COUNT(*) FROM idempotency_keys`).Scan(&rows); err != nil {
				t.Fatal(err)
			}
			if rows != 0 {
				t.Fatalf("%d idempotency rows kept for sign-ups, want none", rows)
			}
		})
	}
}

// TestPublishableKeyOwnIdempotencySpace: the publishable key is public, so
// an Idempotency-Key it uses must not squat the same key of the merchant's
// secret key (the README's example uses the order id as the key), nor the
// other way round; each key still replays its own requests.
func TestPublishableKeyOwnIdempotencySpace(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	post := func(key, idem, body string) response {
		t.Helper()
		return b.do(t, req{method: "POST", path: "/v1/invoices", key: key, body: body, header: map[string]string{"Idempotency-Key": idem}})
	}
	fresh := func(what string, res response, not ...response) string {
		t.Helper()
		if res.status != http.StatusCreated || res.header.Get("Idempotent-Replayed") != "" {
			t.Fatalf("%s: %d %v %s", what, res.status, res.header, res.raw)
		}
		id := res.json(t)["id"].(string)
		for _, o := range not {
			if o.json(t)["id"] == id {
				t.Fatalf("%s: got the other key's invoice %s", what, id)
			}
		}
		return id
	}

	// The publishable key squats the order id with another body: the
	// server's real order must still be created.
	squat := post(m.pub, "order-123", btcBody)
	fresh("publishable first", squat)
	real := post(m.secret, "order-123", usdtBody)
	fresh("secret after a publishable squat", real, squat)

	// The same body under the same key: still two spaces, two invoices.
	pubSame := post(m.pub, "order-456", usdtBody)
	fresh("publishable same body", pubSame)
	secretSame := post(m.secret, "order-456", usdtBody)
	fresh("secret same body", secretSame, pubSame)

	// The secret key first: the publishable key gets no replay of it.
	secretFirst := post(m.secret, "order-789", usdtBody)
	fresh("secret first", secretFirst)
	fresh("publishable after the secret key", post(m.pub, "order-789", usdtBody), secretFirst)

	// Each key replays its own, and a different body in its own space is
	// still a conflict.
	for _, tt := range []struct {
		key, idem, body string
		want            response
	}{
		{m.secret, "order-123", usdtBody, real},
		{m.pub, "order-123", btcBody, squat},
		{m.secret, "order-456", usdtBody, secretSame},
		{m.pub, "order-456", usdtBody, pubSame},
	} {
		again := post(tt.key, tt.idem, tt.body)
		if again.status != http.StatusCreated || again.header.Get("Idempotent-Replayed") != "true" || !bytes.Equal(again.raw, tt.want.raw) {
			t.Fatalf("replay of %s: %d %v %s", tt.idem, again.status, again.header, again.raw)
		}
	}
	if c := post(m.pub, "order-123", usdtBody); c.status != http.StatusConflict || c.code() != "idempotency_conflict" {
		t.Fatalf("publishable key, its own key with another body: %d %s", c.status, c.raw)
	}
	if n := b.countInvoices(t, m.secret); n != 6 {
		t.Fatalf("%d invoices, want 6", n)
	}
}

// TestTwoCredentials: a request that carries two different keys (Bearer
// and x-api-key, or one header twice) is a 400 whatever the keys are:
// which one acts must never be a guess. The same key in both is fine.
func TestTwoCredentials(t *testing.T) {
	b := setup(t)
	a, other := b.signUp(t, "Shop A"), b.signUp(t, "Shop B")
	const bad = "pic_live_000000000000000000000000000000000000000000000000"
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		header     http.Header
		wantStatus int
		wantCode   string
	}{
		{"two merchants", "GET", "/v1/account", "", http.Header{"Authorization": {"Bearer " + a.secret}, "X-Api-Key": {other.secret}}, 400, "ambiguous_credentials"},
		{"two merchants reversed", "GET", "/v1/account", "", http.Header{"Authorization": {"Bearer " + other.secret}, "X-Api-Key": {a.secret}}, 400, "ambiguous_credentials"},
		{"secret and publishable of one merchant", "GET", "/v1/account", "", http.Header{"Authorization": {"Bearer " + a.secret}, "X-Api-Key": {a.pub}}, 400, "ambiguous_credentials"},
		{"publishable and secret of one merchant", "GET", "/v1/account", "", http.Header{"Authorization": {"Bearer " + a.pub}, "X-Api-Key": {a.secret}}, 400, "ambiguous_credentials"},
		{"publishable keys of two merchants", "POST", "/v1/invoices", btcBody, http.Header{"Authorization": {"Bearer " + a.pub}, "X-Api-Key": {other.pub}}, 400, "ambiguous_credentials"},
		{"valid and unknown", "GET", "/v1/assets", "", http.Header{"Authorization": {"Bearer " + a.secret}, "X-Api-Key": {bad}}, 400, "ambiguous_credentials"},
		{"unknown and valid", "GET", "/v1/assets", "", http.Header{"Authorization": {"Bearer " + bad}, "X-Api-Key": {a.secret}}, 400, "ambiguous_credentials"},
		{"basic auth and a key", "GET", "/v1/assets", "", http.Header{"Authorization": {"Basic dXNlcjpwdw=="}, "X-Api-Key": {a.secret}}, 400, "ambiguous_credentials"},
		{"two Authorization headers", "GET", "/v1/assets", "", http.Header{"Authorization": {"Bearer " + a.secret, "Bearer " + other.secret}}, 400, "ambiguous_credentials"},
		{"two x-api-key headers", "GET", "/v1/assets", "", http.Header{"X-Api-Key": {a.secret, other.secret}}, 400, "ambiguous_credentials"},
		{"withdrawal with two keys", "POST", "/v1/withdrawals", `{"asset":"BTC"}`, http.Header{"Authorization": {"Bearer " + a.secret}, "X-Api-Key": {other.secret}}, 400, "ambiguous_credentials"},

		{"the same key twice", "GET", "/v1/account", "", http.Header{"Authorization": {"Bearer " + a.secret}, "X-Api-Key": {a.secret}}, 200, ""},
		{"the same key, other spacing", "GET", "/v1/account", "", http.Header{"Authorization": {"bearer  " + a.secret + " "}, "X-Api-Key": {" " + a.secret}}, 200, ""},
		{"the same publishable key twice", "POST", "/v1/invoices", btcBody, http.Header{"Authorization": {"Bearer " + a.pub}, "X-Api-Key": {a.pub}}, 201, ""},
		{"one x-api-key header twice", "GET", "/v1/assets", "", http.Header{"X-Api-Key": {a.pub, a.pub}}, 200, ""},
		{"the same unknown key twice", "GET", "/v1/assets", "", http.Header{"Authorization": {"Bearer " + bad}, "X-Api-Key": {bad}}, 401, "unauthorized"},
		{"Bearer alone", "GET", "/v1/account", "", http.Header{"Authorization": {"Bearer " + a.secret}}, 200, ""},
		{"x-api-key alone", "GET", "/v1/account", "", http.Header{"X-Api-Key": {a.secret}}, 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hr, err := http.NewRequest(tt.method, b.srv.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.body != "" {
				hr.Header.Set("Content-Type", "application/json")
			}
			for k, vs := range tt.header {
				for _, v := range vs {
					hr.Header.Add(k, v)
				}
			}
			res := b.send(t, hr)
			if res.status != tt.wantStatus || res.code() != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q: %s", res.status, res.code(), tt.wantStatus, tt.wantCode, res.raw)
			}
			if res.status >= 400 {
				if m := res.json(t); m["message"] == "" || len(m) != 2 {
					t.Fatalf("not the {error, message} shape: %s", res.raw)
				}
			}
		})
	}
	// Nothing was created by the refused requests.
	if n := b.countInvoices(t, a.secret); n != 1 {
		t.Fatalf("%d invoices of A, want 1 (the same-key request)", n)
	}
}

// send sends a request built by the test (for headers that req cannot
// express, such as one header twice).
func (b *bundle) send(t *testing.T, hr *http.Request) response {
	t.Helper()
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, raw: raw}
}

// TestOpenAPISignUpOffersNoReplay: the document does not offer
// Idempotency-Key (or its 409) on the sign-up, and says why.
func TestOpenAPISignUpOffersNoReplay(t *testing.T) {
	var doc struct {
		Paths map[string]map[string]struct {
			Description string            `json:"description"`
			Parameters  []json.RawMessage `json:"parameters"`
			Responses   map[string]any    `json:"responses"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	op := doc.Paths["/v1/merchants"]["post"]
	for _, p := range op.Parameters {
		if bytes.Contains(p, []byte("IdempotencyKey")) {
			t.Fatal("POST /v1/merchants documents Idempotency-Key")
		}
	}
	if _, ok := op.Responses["409"]; ok {
		t.Fatal("POST /v1/merchants documents a 409")
	}
	if !strings.Contains(op.Description, "Idempotency-Key is ignored") {
		t.Fatalf("POST /v1/merchants does not say that it never replays: %q", op.Description)
	}
}
