package httpapi

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/webhooks"
)

// Key kinds of the table: whose key a request carries.
const (
	noKey    = ""
	secretA  = "secretA"
	pubA     = "pubA"
	secretB  = "secretB"
	pubB     = "pubB"
	secretC  = "secretC" // a merchant without a webhook_url
	secretD  = "secretD" // a merchant whose consolidate_to (TRX) has no price
	pubD     = "pubD"
	badKey   = "pic_live_000000000000000000000000000000000000000000000000"
	badPub   = "pic_pub_000000000000000000000000000000000000000000000000"
	junkKey  = "sk_test_123"
	invA     = "{invA}" // placeholders in paths
	invB     = "{invB}"
	delA     = "{delA}"
	delB     = "{delB}"
	noDel    = "whd_000000000000000000000000"
	missing  = "inv_00000000000000000000000000"
	btcBody  = `{"asset":"BTC","amount":"0.01"}`
	usdtBody = `{"asset":"USDT.ETH","amount":"49.99","order_id":"order-123"}`
)

// TestEndpoints runs every endpoint through the table: authentication,
// the publishable-key matrix, cross-merchant isolation and input errors.
func TestEndpoints(t *testing.T) {
	// The table signs up more merchants than the default per-IP limit allows.
	b := setup(t, func(c *Config) { c.SignupRatePerMinute = 100 })
	a, other := b.signUp(t, "Shop A"), b.signUp(t, "Shop B")
	c := b.do(t, req{method: "POST", path: "/v1/merchants", body: `{"name":"Shop C"}`}).json(t)
	d := b.signUp(t, "Shop D")
	if res := b.do(t, req{method: "PATCH", path: "/v1/account", key: d.secret, body: `{"consolidate_to":"TRX"}`}); res.status != http.StatusOK {
		t.Fatalf("consolidate_to: %d %s", res.status, res.raw)
	}
	keys := map[string]string{secretA: a.secret, pubA: a.pub, secretB: other.secret, pubB: other.pub, secretC: c["secret_key"].(string),
		secretD: d.secret, pubD: d.pub}
	// Dashboard sessions, sent as cookies in the header column: A's live
	// one; one A signed out of; E's after E rotated its keys through one of
	// them (the rotating one, another device's, and the one the rotation
	// handed back); F's after F signed out everywhere.
	const (
		sessA           = "sessA"
		sessSignedOut   = "sessSignedOut"
		sessRotated     = "sessRotated"
		sessOtherDevice = "sessOtherDevice"
		sessRenewed     = "sessRenewed"
		sessEverywhere  = "sessEverywhere"
	)
	e, f := b.signUp(t, "Shop E"), b.signUp(t, "Shop F")
	cookies := map[string]*http.Cookie{sessA: b.login(t, a.secret), sessSignedOut: b.login(t, a.secret),
		sessRotated: b.login(t, e.secret), sessOtherDevice: b.login(t, e.secret), sessEverywhere: b.login(t, f.secret)}
	if res := b.do(t, req{method: "DELETE", path: "/v1/sessions", header: withCookie(cookies[sessSignedOut])}); res.status != http.StatusNoContent {
		t.Fatalf("sign-out: %d %s", res.status, res.raw)
	}
	rotated := b.do(t, req{method: "POST", path: "/v1/account/keys/rotate", header: withCookie(cookies[sessRotated], "X-Requested-With", "fetch")})
	if rotated.status != http.StatusOK {
		t.Fatalf("rotate by session: %d %s", rotated.status, rotated.raw)
	}
	cookies[sessRenewed] = sessionFrom(t, rotated)
	if res := b.do(t, req{method: "DELETE", path: "/v1/sessions?all=true", header: withCookie(b.login(t, f.secret), "X-Requested-With", "fetch")}); res.status != http.StatusNoContent {
		t.Fatalf("sign out everywhere: %d %s", res.status, res.raw)
	}
	for name, c := range cookies {
		keys[name] = c.Name + "=" + c.Value
	}
	session := func(name string, csrf bool) map[string]string {
		h := map[string]string{"Cookie": "{" + name + "}"}
		if csrf {
			h["X-Requested-With"] = "fetch"
		}
		return h
	}
	ia := b.createInvoice(t, a.secret, usdtBody)["id"].(string)
	ib := b.createInvoice(t, other.secret, btcBody)["id"].(string)
	// One pending webhook delivery each: partially_paid for A, confirming for B.
	b.payDeposit(t, ia, "10")
	b.payDeposit(t, ib, "0.01")
	b.syncWebhooks(t)
	da, db := b.onlyDelivery(t, a.id), b.onlyDelivery(t, other.id)

	big := `{"asset":"BTC","amount":"1","order_id":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name         string
		method, path string
		key          string
		body         string
		header       map[string]string
		wantStatus   int
		wantCode     string
	}{
		// Sign-up.
		{"signup", "POST", "/v1/merchants", noKey, `{"name":"New shop"}`, nil, 201, ""},
		{"signup blank name", "POST", "/v1/merchants", noKey, `{"name":" "}`, nil, 400, "validation_error"},
		{"signup bad webhook", "POST", "/v1/merchants", noKey, `{"name":"x","webhook_url":"ftp://x"}`, nil, 400, "validation_error"},
		{"signup unknown field", "POST", "/v1/merchants", noKey, `{"name":"x","plan":"gold"}`, nil, 400, "validation_error"},
		{"signup name as number", "POST", "/v1/merchants", noKey, `{"name":5}`, nil, 400, "validation_error"},
		{"signup name null", "POST", "/v1/merchants", noKey, `{"name":null}`, nil, 400, "validation_error"},
		{"signup webhook null", "POST", "/v1/merchants", noKey, `{"name":"x","webhook_url":null}`, nil, 400, "validation_error"},
		{"signup duplicate key", "POST", "/v1/merchants", noKey, `{"name":"x","name":"y"}`, nil, 400, "invalid_json"},
		// Sign-up never replays (its secrets are shown once, to one
		// caller): the same Idempotency-Key and body sign up twice, and a
		// key is not even looked at.
		{"signup idempotency key", "POST", "/v1/merchants", noKey, `{"name":"Twice"}`, map[string]string{"Idempotency-Key": "signup-twice"}, 201, ""},
		{"signup idempotency key again", "POST", "/v1/merchants", noKey, `{"name":"Twice"}`, map[string]string{"Idempotency-Key": "signup-twice"}, 201, ""},
		{"signup idempotency key other body", "POST", "/v1/merchants", noKey, `{"name":"Other"}`, map[string]string{"Idempotency-Key": "signup-twice"}, 201, ""},
		{"signup bad idempotency key ignored", "POST", "/v1/merchants", noKey, `{"name":"x"}`, map[string]string{"Idempotency-Key": "bad\tkey"}, 201, ""},

		// Account.
		{"account", "GET", "/v1/account", secretA, "", nil, 200, ""},
		{"account publishable", "GET", "/v1/account", pubA, "", nil, 403, "forbidden"},
		{"account no key", "GET", "/v1/account", noKey, "", nil, 401, "unauthorized"},
		{"account unknown secret", "GET", "/v1/account", badKey, "", nil, 401, "unauthorized"},
		{"account unknown publishable", "GET", "/v1/account", badPub, "", nil, 401, "unauthorized"},
		{"account junk key", "GET", "/v1/account", junkKey, "", nil, 401, "unauthorized"},
		{"account basic auth", "GET", "/v1/account", noKey, "", map[string]string{"Authorization": "Basic dXNlcjpwdw=="}, 401, "unauthorized"},
		// Two different keys in one request: 400, whichever they are.
		{"account two merchants' keys", "GET", "/v1/account", secretA, "", map[string]string{"x-api-key": "{secretB}"}, 400, "ambiguous_credentials"},
		{"account secret and publishable", "GET", "/v1/account", secretA, "", map[string]string{"x-api-key": "{pubA}"}, 400, "ambiguous_credentials"},
		{"account publishable and secret", "GET", "/v1/account", pubA, "", map[string]string{"x-api-key": "{secretA}"}, 400, "ambiguous_credentials"},
		{"account key and unknown key", "GET", "/v1/account", secretA, "", map[string]string{"x-api-key": badKey}, 400, "ambiguous_credentials"},
		{"account basic auth and key", "GET", "/v1/account", noKey, "", map[string]string{"Authorization": "Basic dXNlcjpwdw==", "x-api-key": "{secretA}"}, 400, "ambiguous_credentials"},
		{"account same key twice", "GET", "/v1/account", secretA, "", map[string]string{"x-api-key": "{secretA}"}, 200, ""},
		{"account x-api-key", "GET", "/v1/account", noKey, "", map[string]string{"x-api-key": "{secretA}"}, 200, ""},
		{"patch account", "PATCH", "/v1/account", secretA, `{"webhook_url":"https://a.example/hook"}`, nil, 200, ""},
		{"patch account clear", "PATCH", "/v1/account", secretA, `{"consolidate_to":null}`, nil, 200, ""},
		{"patch account bad coin", "PATCH", "/v1/account", secretA, `{"consolidate_to":"DOGE"}`, nil, 400, "unsupported_asset"},
		{"patch account bad url", "PATCH", "/v1/account", secretA, `{"webhook_url":"javascript:alert(1)"}`, nil, 400, "validation_error"},
		{"patch account number", "PATCH", "/v1/account", secretA, `{"webhook_url":5}`, nil, 400, "validation_error"},
		{"patch account clear both", "PATCH", "/v1/account", secretA, `{"webhook_url":null,"consolidate_to":null}`, nil, 200, ""},
		{"patch account clear other case", "PATCH", "/v1/account", secretA, `{"Consolidate_To":null}`, nil, 200, ""},
		{"patch account duplicate key", "PATCH", "/v1/account", secretA, `{"consolidate_to":"BTC","consolidate_to":null}`, nil, 400, "invalid_json"},
		{"patch account publishable", "PATCH", "/v1/account", pubA, `{"webhook_url":null}`, nil, 403, "forbidden"},
		{"rotate keys publishable", "POST", "/v1/account/keys/rotate", pubA, "", nil, 403, "forbidden"},
		{"rotate keys no key", "POST", "/v1/account/keys/rotate", noKey, "", nil, 401, "unauthorized"},
		{"rotate keys two keys", "POST", "/v1/account/keys/rotate", secretA, "", map[string]string{"x-api-key": "{secretB}"}, 400, "ambiguous_credentials"},
		{"rotate keys two keys of one merchant", "POST", "/v1/account/keys/rotate", secretA, "", map[string]string{"x-api-key": "{pubA}"}, 400, "ambiguous_credentials"},
		{"rotate webhook secret", "POST", "/v1/account/webhook-secret/rotate", secretA, "", nil, 200, ""},
		{"rotate webhook secret publishable", "POST", "/v1/account/webhook-secret/rotate", pubA, "", nil, 403, "forbidden"},

		// Assets: any key.
		{"assets secret", "GET", "/v1/assets", secretA, "", nil, 200, ""},
		{"assets publishable", "GET", "/v1/assets", pubA, "", nil, 200, ""},
		{"assets no key", "GET", "/v1/assets", noKey, "", nil, 401, "unauthorized"},

		// Creating invoices.
		{"create secret", "POST", "/v1/invoices", secretA, usdtBody, nil, 201, ""},
		{"create publishable", "POST", "/v1/invoices", pubA, btcBody, nil, 201, ""},
		{"create x-api-key", "POST", "/v1/invoices", noKey, btcBody, map[string]string{"x-api-key": "{pubA}"}, 201, ""},
		{"create settle_as", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","settle_as":"USDT.TRON","expires_in":600}`, nil, 201, ""},
		// Money rule 3: an invoice that will be converted needs a fresh
		// price of its pair when it is created (the harness has none for TRX).
		{"create settle_as without a price", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","settle_as":"TRX"}`, nil, 503, "price_unavailable"},
		{"create settle_as without a price publishable", "POST", "/v1/invoices", pubA, `{"asset":"TRX","amount":"5","settle_as":"BTC"}`, nil, 503, "price_unavailable"},
		{"create consolidate_to without a price", "POST", "/v1/invoices", secretD, btcBody, nil, 503, "price_unavailable"},
		{"create consolidate_to without a price publishable", "POST", "/v1/invoices", pubD, btcBody, nil, 503, "price_unavailable"},
		{"create consolidate_to in that coin", "POST", "/v1/invoices", secretD, `{"asset":"TRX","amount":"5"}`, nil, 201, ""},
		{"create consolidate_to overridden by settle_as", "POST", "/v1/invoices", secretD, `{"asset":"BTC","amount":"0.01","settle_as":"USDT.ETH"}`, nil, 201, ""},
		{"create no key", "POST", "/v1/invoices", noKey, btcBody, nil, 401, "unauthorized"},
		{"create unsupported", "POST", "/v1/invoices", secretA, `{"asset":"DOGE","amount":"1"}`, nil, 400, "unsupported_asset"},
		{"create bad settle_as", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"1","settle_as":"XYZ"}`, nil, 400, "unsupported_asset"},
		{"create no asset", "POST", "/v1/invoices", secretA, `{"amount":"1"}`, nil, 400, "validation_error"},
		{"create no amount", "POST", "/v1/invoices", secretA, `{"asset":"BTC"}`, nil, 400, "invalid_amount"},
		{"create amount number", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":0.01}`, nil, 400, "invalid_amount"},
		{"create amount exponent", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"1e3"}`, nil, 400, "invalid_amount"},
		{"create amount negative", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"-1"}`, nil, 400, "invalid_amount"},
		{"create amount zero", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0"}`, nil, 400, "invalid_amount"},
		{"create amount too precise", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.000000001"}`, nil, 400, "invalid_amount"},
		{"create expires too soon", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"1","expires_in":10}`, nil, 400, "validation_error"},
		{"create expires negative", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"1","expires_in":-5}`, nil, 400, "validation_error"},
		{"create expires huge", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"1","expires_in":9223372036854775807}`, nil, 400, "validation_error"},
		{"create expires string", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"1","expires_in":"600"}`, nil, 400, "validation_error"},
		{"create expires fraction", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"1","expires_in":60.5}`, nil, 400, "validation_error"},
		{"create unknown field", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"1","currency":"USD"}`, nil, 400, "validation_error"},
		{"create settle_as same asset", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","settle_as":"BTC"}`, nil, 400, "validation_error"},
		{"create settle_as empty", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","settle_as":""}`, nil, 400, "validation_error"},
		{"create settle_as unknown same", "POST", "/v1/invoices", secretA, `{"asset":"DOGE","amount":"1","settle_as":"DOGE"}`, nil, 400, "unsupported_asset"},
		{"create asset null", "POST", "/v1/invoices", secretA, `{"asset":null,"amount":"1"}`, nil, 400, "validation_error"},
		{"create amount null", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":null}`, nil, 400, "validation_error"},
		{"create order_id null", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","order_id":null}`, nil, 400, "validation_error"},
		{"create settle_as null", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","settle_as":null}`, nil, 400, "validation_error"},
		{"create expires null", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","expires_in":null}`, nil, 400, "validation_error"},
		{"create null other case", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","Order_ID":null}`, nil, 400, "validation_error"},
		{"create null body", "POST", "/v1/invoices", secretA, `null`, nil, 400, "invalid_json"},
		{"create duplicate key", "POST", "/v1/invoices", secretA, `{"asset":"BTC","asset":"ETH","amount":"0.01"}`, nil, 400, "invalid_json"},
		{"create duplicate key other case", "POST", "/v1/invoices", secretA, `{"asset":"BTC","ASSET":"ETH","amount":"0.01"}`, nil, 400, "invalid_json"},
		{"create duplicate key escaped", "POST", "/v1/invoices", secretA, `{"asset":"BTC","\u0061sset":"ETH","amount":"0.01"}`, nil, 400, "invalid_json"},
		{"create duplicate key nested", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","order_id":{"a":1,"a":2}}`, nil, 400, "invalid_json"},
		{"create duplicate key in array", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","order_id":[{"a":1},{"b":[{"c":1,"c":2}]}]}`, nil, 400, "invalid_json"},
		{"create same key in sibling objects", "POST", "/v1/invoices", secretA, `{"asset":"BTC","amount":"0.01","order_id":[{"a":1},{"a":2}]}`, nil, 400, "validation_error"},
		{"create malformed", "POST", "/v1/invoices", secretA, `{"asset":"BTC",`, nil, 400, "invalid_json"},
		{"create trailing garbage", "POST", "/v1/invoices", secretA, btcBody + ` {}`, nil, 400, "invalid_json"},
		{"create array", "POST", "/v1/invoices", secretA, `[1,2]`, nil, 400, "invalid_json"},
		{"create empty body", "POST", "/v1/invoices", secretA, "", nil, 400, "invalid_json"},
		{"create text/plain", "POST", "/v1/invoices", secretA, btcBody, map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"create form", "POST", "/v1/invoices", secretA, "asset=BTC", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"create json charset", "POST", "/v1/invoices", secretA, btcBody, map[string]string{"Content-Type": "application/json; charset=utf-8"}, 201, ""},
		{"create too large", "POST", "/v1/invoices", secretA, big, nil, 413, "request_too_large"},
		{"create bad idempotency key", "POST", "/v1/invoices", secretA, btcBody, map[string]string{"Idempotency-Key": "bad\tkey"}, 400, "validation_error"},
		{"create two keys", "POST", "/v1/invoices", pubA, btcBody, map[string]string{"x-api-key": "{pubB}"}, 400, "ambiguous_credentials"},
		{"create same publishable key twice", "POST", "/v1/invoices", pubA, btcBody, map[string]string{"x-api-key": "{pubA}"}, 201, ""},
		// The publishable key has its own Idempotency-Key space: it cannot
		// squat the key (here the order id) of the merchant's server, and
		// either key replays only its own answer.
		{"create publishable squats an order id", "POST", "/v1/invoices", pubA, btcBody, map[string]string{"Idempotency-Key": "order-squat"}, 201, ""},
		{"create secret with the squatted order id", "POST", "/v1/invoices", secretA, usdtBody, map[string]string{"Idempotency-Key": "order-squat"}, 201, ""},
		{"create secret replays its own", "POST", "/v1/invoices", secretA, usdtBody, map[string]string{"Idempotency-Key": "order-squat"}, 201, ""},
		{"create secret conflicts in its own space", "POST", "/v1/invoices", secretA, btcBody, map[string]string{"Idempotency-Key": "order-squat"}, 409, "idempotency_conflict"},
		{"create publishable conflicts in its own space", "POST", "/v1/invoices", pubA, usdtBody, map[string]string{"Idempotency-Key": "order-squat"}, 409, "idempotency_conflict"},
		{"create other merchant's publishable key", "POST", "/v1/invoices", pubB, usdtBody, map[string]string{"Idempotency-Key": "order-squat"}, 201, ""},

		// Reading invoices: the owner's keys see it, anyone else gets 404.
		{"get secret", "GET", "/v1/invoices/" + invA, secretA, "", nil, 200, ""},
		{"get publishable", "GET", "/v1/invoices/" + invA, pubA, "", nil, 200, ""},
		{"get other merchant secret", "GET", "/v1/invoices/" + invA, secretB, "", nil, 404, "not_found"},
		{"get other merchant publishable", "GET", "/v1/invoices/" + invA, pubB, "", nil, 404, "not_found"},
		{"get own from B", "GET", "/v1/invoices/" + invB, secretB, "", nil, 200, ""},
		{"get B from A", "GET", "/v1/invoices/" + invB, secretA, "", nil, 404, "not_found"},
		{"get missing", "GET", "/v1/invoices/" + missing, secretA, "", nil, 404, "not_found"},
		{"get no key", "GET", "/v1/invoices/" + invA, noKey, "", nil, 401, "unauthorized"},
		{"list", "GET", "/v1/invoices", secretA, "", nil, 200, ""},
		{"list filtered", "GET", "/v1/invoices?status=new&limit=2", secretA, "", nil, 200, ""},
		{"list publishable", "GET", "/v1/invoices", pubA, "", nil, 403, "forbidden"},
		{"list limit 0", "GET", "/v1/invoices?limit=0", secretA, "", nil, 400, "validation_error"},
		{"list limit 101", "GET", "/v1/invoices?limit=101", secretA, "", nil, 400, "validation_error"},
		{"list limit junk", "GET", "/v1/invoices?limit=ten", secretA, "", nil, 400, "validation_error"},
		{"list bad status", "GET", "/v1/invoices?status=refunded", secretA, "", nil, 400, "validation_error"},
		{"list cursor of other merchant", "GET", "/v1/invoices?starting_after=" + invB, secretA, "", nil, 404, "not_found"},
		{"public", "GET", "/v1/public/invoices/" + invA, noKey, "", nil, 200, ""},
		{"public missing", "GET", "/v1/public/invoices/" + missing, noKey, "", nil, 404, "not_found"},
		{"public with two keys", "GET", "/v1/public/invoices/" + invA, secretA, "", map[string]string{"x-api-key": "{secretB}"}, 200, ""},

		// Balance.
		{"balance all", "GET", "/v1/balance", secretA, "", nil, 200, ""},
		{"balance one", "GET", "/v1/balance?asset=BTC", secretA, "", nil, 200, ""},
		{"balance unsupported", "GET", "/v1/balance?asset=DOGE", secretA, "", nil, 400, "unsupported_asset"},
		{"balance publishable", "GET", "/v1/balance", pubA, "", nil, 403, "forbidden"},
		{"balance no key", "GET", "/v1/balance", noKey, "", nil, 401, "unauthorized"},

		// Payout settings.
		{"payout settings", "GET", "/v1/payout-settings", secretA, "", nil, 200, ""},
		{"payout settings publishable", "GET", "/v1/payout-settings", pubA, "", nil, 403, "forbidden"},
		{"put payout", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","payout_address":"bc1qexample","mode":"instant","instant_min_amount":"0.001"}`, nil, 200, ""},
		{"put payout manual", "PUT", "/v1/payout-settings", secretA, `{"asset":"USDT.TRON","mode":"manual"}`, nil, 200, ""},
		{"put payout bad mode", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","payout_address":"bc1q","mode":"weekly"}`, nil, 400, "validation_error"},
		{"put payout instant no address", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":"instant"}`, nil, 400, "validation_error"},
		{"put payout amount number", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":"manual","instant_min_amount":0.1}`, nil, 400, "invalid_amount"},
		{"put payout amount precise", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":"manual","instant_min_amount":"0.000000001"}`, nil, 400, "invalid_amount"},
		{"put payout unsupported", "PUT", "/v1/payout-settings", secretA, `{"asset":"DOGE","mode":"manual"}`, nil, 400, "unsupported_asset"},
		{"put payout publishable", "PUT", "/v1/payout-settings", pubA, `{"asset":"BTC","mode":"manual"}`, nil, 403, "forbidden"},
		{"put payout two keys", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":"manual"}`, map[string]string{"x-api-key": "{secretB}"}, 400, "ambiguous_credentials"},
		{"put payout address null", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":"manual","payout_address":null}`, nil, 200, ""},
		{"put payout instant address null", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":"instant","payout_address":null}`, nil, 400, "validation_error"},
		{"put payout address number", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":"manual","payout_address":5}`, nil, 400, "validation_error"},
		{"put payout amount null", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":"manual","instant_min_amount":null}`, nil, 400, "validation_error"},
		{"put payout mode null", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":null}`, nil, 400, "validation_error"},
		{"put payout duplicate key", "PUT", "/v1/payout-settings", secretA, `{"asset":"BTC","mode":"manual","mode":"instant"}`, nil, 400, "invalid_json"},

		// Webhook deliveries: secret key or session only; another
		// merchant's delivery is 404, also as a cursor.
		{"deliveries", "GET", "/v1/webhooks/deliveries", secretA, "", nil, 200, ""},
		{"deliveries filtered", "GET", "/v1/webhooks/deliveries?invoice_id=" + invA + "&status=pending&limit=5", secretA, "", nil, 200, ""},
		{"deliveries cursor", "GET", "/v1/webhooks/deliveries?starting_after=" + delA, secretA, "", nil, 200, ""},
		{"deliveries publishable", "GET", "/v1/webhooks/deliveries", pubA, "", nil, 403, "forbidden"},
		{"deliveries no key", "GET", "/v1/webhooks/deliveries", noKey, "", nil, 401, "unauthorized"},
		{"deliveries two keys", "GET", "/v1/webhooks/deliveries", secretA, "", map[string]string{"x-api-key": "{secretB}"}, 400, "ambiguous_credentials"},
		{"deliveries bad status", "GET", "/v1/webhooks/deliveries?status=sent", secretA, "", nil, 400, "validation_error"},
		{"deliveries invoice status", "GET", "/v1/webhooks/deliveries?status=paid", secretA, "", nil, 400, "validation_error"},
		{"deliveries limit 0", "GET", "/v1/webhooks/deliveries?limit=0", secretA, "", nil, 400, "validation_error"},
		{"deliveries limit 101", "GET", "/v1/webhooks/deliveries?limit=101", secretA, "", nil, 400, "validation_error"},
		{"deliveries limit junk", "GET", "/v1/webhooks/deliveries?limit=1.5", secretA, "", nil, 400, "validation_error"},
		{"deliveries cursor of other merchant", "GET", "/v1/webhooks/deliveries?starting_after=" + delB, secretA, "", nil, 404, "not_found"},
		{"deliveries unknown cursor", "GET", "/v1/webhooks/deliveries?starting_after=" + noDel, secretA, "", nil, 404, "not_found"},
		{"delivery", "GET", "/v1/webhooks/deliveries/" + delA, secretA, "", nil, 200, ""},
		{"delivery own from B", "GET", "/v1/webhooks/deliveries/" + delB, secretB, "", nil, 200, ""},
		{"delivery publishable", "GET", "/v1/webhooks/deliveries/" + delA, pubA, "", nil, 403, "forbidden"},
		{"delivery of other merchant", "GET", "/v1/webhooks/deliveries/" + delB, secretA, "", nil, 404, "not_found"},
		{"delivery missing", "GET", "/v1/webhooks/deliveries/" + noDel, secretA, "", nil, 404, "not_found"},
		{"delivery no key", "GET", "/v1/webhooks/deliveries/" + delA, noKey, "", nil, 401, "unauthorized"},
		{"retry", "POST", "/v1/webhooks/deliveries/" + delA + "/retry", secretA, "", nil, 200, ""},
		{"retry empty object", "POST", "/v1/webhooks/deliveries/" + delA + "/retry", secretA, "{}", nil, 200, ""},
		{"retry idempotent", "POST", "/v1/webhooks/deliveries/" + delA + "/retry", secretA, "", map[string]string{"Idempotency-Key": "retry-1"}, 200, ""},
		{"retry publishable", "POST", "/v1/webhooks/deliveries/" + delA + "/retry", pubA, "", nil, 403, "forbidden"},
		{"retry other merchant", "POST", "/v1/webhooks/deliveries/" + delB + "/retry", secretA, "", nil, 404, "not_found"},
		{"retry missing", "POST", "/v1/webhooks/deliveries/" + noDel + "/retry", secretA, "", nil, 404, "not_found"},
		{"retry no key", "POST", "/v1/webhooks/deliveries/" + delA + "/retry", noKey, "", nil, 401, "unauthorized"},
		{"retry unknown field", "POST", "/v1/webhooks/deliveries/" + delA + "/retry", secretA, `{"force":true}`, nil, 400, "validation_error"},
		{"retry null body", "POST", "/v1/webhooks/deliveries/" + delA + "/retry", secretA, `null`, nil, 400, "invalid_json"},
		{"retry duplicate key", "POST", "/v1/webhooks/deliveries/" + delA + "/retry", secretA, `{"force":true,"force":true}`, nil, 400, "invalid_json"},
		{"retry text/plain", "POST", "/v1/webhooks/deliveries/" + delA + "/retry", secretA, "{}", map[string]string{"Content-Type": "text/plain"}, 415, "unsupported_media_type"},
		{"retry GET", "GET", "/v1/webhooks/deliveries/" + delA + "/retry", secretA, "", nil, 405, "method_not_allowed"},
		{"webhook test publishable", "POST", "/v1/webhooks/test", pubA, "", nil, 403, "forbidden"},
		{"webhook test no key", "POST", "/v1/webhooks/test", noKey, "", nil, 401, "unauthorized"},
		{"webhook test without webhook_url", "POST", "/v1/webhooks/test", secretC, "", nil, 400, "validation_error"},
		{"webhook test unknown field", "POST", "/v1/webhooks/test", secretC, `{"event":"invoice.paid"}`, nil, 400, "validation_error"},
		{"webhook test GET", "GET", "/v1/webhooks/test", secretA, "", nil, 405, "method_not_allowed"},

		// The event feed: secret key or session only.
		{"events", "GET", "/v1/events", secretA, "", nil, 200, ""},
		{"events two keys", "GET", "/v1/events", secretB, "", map[string]string{"x-api-key": "{secretA}"}, 400, "ambiguous_credentials"},
		{"events page", "GET", "/v1/events?after=1&limit=1000", secretA, "", nil, 200, ""},
		{"events after the end", "GET", "/v1/events?after=9223372036854775807", secretA, "", nil, 200, ""},
		{"events publishable", "GET", "/v1/events", pubA, "", nil, 403, "forbidden"},
		{"events no key", "GET", "/v1/events", noKey, "", nil, 401, "unauthorized"},
		{"events unknown key", "GET", "/v1/events", badKey, "", nil, 401, "unauthorized"},
		{"events limit 0", "GET", "/v1/events?limit=0", secretA, "", nil, 400, "validation_error"},
		{"events limit 1001", "GET", "/v1/events?limit=1001", secretA, "", nil, 400, "validation_error"},
		{"events limit junk", "GET", "/v1/events?limit=all", secretA, "", nil, 400, "validation_error"},
		{"events after negative", "GET", "/v1/events?after=-1", secretA, "", nil, 400, "validation_error"},
		{"events after plus", "GET", "/v1/events?after=%2B1", secretA, "", nil, 400, "validation_error"},
		{"events after fraction", "GET", "/v1/events?after=1.5", secretA, "", nil, 400, "validation_error"},
		{"events after position", "GET", "/v1/events?after=12/12", secretA, "", nil, 400, "validation_error"},
		{"events after overflow", "GET", "/v1/events?after=9223372036854775808", secretA, "", nil, 400, "validation_error"},
		{"events POST", "POST", "/v1/events", secretA, "{}", nil, 405, "method_not_allowed"},
		{"stream publishable", "GET", "/v1/events/stream", pubA, "", nil, 403, "forbidden"},
		{"stream no key", "GET", "/v1/events/stream", noKey, "", nil, 401, "unauthorized"},
		{"stream bad after", "GET", "/v1/events/stream?after=x", secretA, "", nil, 400, "validation_error"},
		{"stream bad Last-Event-ID", "GET", "/v1/events/stream", secretA, "", map[string]string{"Last-Event-ID": "-3"}, 400, "validation_error"},
		{"stream Last-Event-ID wins", "GET", "/v1/events/stream?after=1", secretA, "", map[string]string{"Last-Event-ID": "evt_1"}, 400, "validation_error"},

		// Sessions and the document.
		{"login bad key", "POST", "/v1/sessions", noKey, `{"secret_key":"pic_live_nope"}`, nil, 401, "unauthorized"},
		{"login publishable", "POST", "/v1/sessions", noKey, `{"secret_key":"{pubA}"}`, nil, 401, "unauthorized"},
		{"login", "POST", "/v1/sessions", noKey, `{"secret_key":"{secretA}"}`, nil, 201, ""},
		{"login null", "POST", "/v1/sessions", noKey, `{"secret_key":null}`, nil, 400, "validation_error"},
		{"login duplicate key", "POST", "/v1/sessions", noKey, `{"secret_key":"pic_live_nope","secret_key":"{secretA}"}`, nil, 400, "invalid_json"},
		{"logout", "DELETE", "/v1/sessions", noKey, "", nil, 204, ""},
		{"account by session", "GET", "/v1/account", noKey, "", session(sessA, false), 200, ""},
		{"get by session", "GET", "/v1/invoices/" + invA, noKey, "", session(sessA, false), 200, ""},
		{"get other merchant by session", "GET", "/v1/invoices/" + invB, noKey, "", session(sessA, false), 404, "not_found"},
		{"account after sign-out", "GET", "/v1/account", noKey, "", session(sessSignedOut, false), 401, "unauthorized"},
		{"get after sign-out", "GET", "/v1/invoices/" + invA, noKey, "", session(sessSignedOut, false), 401, "unauthorized"},
		{"patch account after sign-out", "PATCH", "/v1/account", noKey, `{"webhook_url":null}`, session(sessSignedOut, true), 401, "unauthorized"},
		{"rotate keys after sign-out", "POST", "/v1/account/keys/rotate", noKey, "", session(sessSignedOut, true), 401, "unauthorized"},
		{"events after sign-out", "GET", "/v1/events", noKey, "", session(sessSignedOut, false), 401, "unauthorized"},
		{"account after rotation", "GET", "/v1/account", noKey, "", session(sessRotated, false), 401, "unauthorized"},
		{"account of another device after rotation", "GET", "/v1/account", noKey, "", session(sessOtherDevice, false), 401, "unauthorized"},
		{"withdraw of another device after rotation", "POST", "/v1/withdrawals", noKey, `{"asset":"BTC"}`, session(sessOtherDevice, true), 401, "unauthorized"},
		{"account by the session the rotation renewed", "GET", "/v1/account", noKey, "", session(sessRenewed, false), 200, ""},
		{"account after sign out everywhere", "GET", "/v1/account", noKey, "", session(sessEverywhere, false), 401, "unauthorized"},
		{"sign out everywhere no key", "DELETE", "/v1/sessions?all=true", noKey, "", nil, 401, "unauthorized"},
		{"sign out everywhere publishable", "DELETE", "/v1/sessions?all=true", pubA, "", nil, 403, "forbidden"},
		{"sign out everywhere bad value", "DELETE", "/v1/sessions?all=1", secretA, "", nil, 400, "validation_error"},
		{"sign out everywhere session without CSRF header", "DELETE", "/v1/sessions?all=true", noKey, "", session(sessA, false), 403, "csrf_header_required"},
		{"sign out everywhere ended session", "DELETE", "/v1/sessions?all=true", noKey, "", session(sessEverywhere, true), 401, "unauthorized"},
		{"sign out everywhere", "DELETE", "/v1/sessions?all=true", secretB, "", nil, 204, ""},
		{"logout ended session", "DELETE", "/v1/sessions", noKey, "", session(sessSignedOut, false), 204, ""},
		{"openapi", "GET", "/v1/openapi.json", noKey, "", nil, 200, ""},

		// Routing.
		{"unknown route", "GET", "/v1/nope", secretA, "", nil, 404, "not_found"},
		{"outside v1", "GET", "/admin", noKey, "", nil, 404, "not_found"},
		{"wrong method", "DELETE", "/v1/invoices", secretA, "", nil, 405, "method_not_allowed"},
		{"wrong method unauthenticated", "PUT", "/v1/account", noKey, "", nil, 405, "method_not_allowed"},
		{"wrong method public", "POST", "/v1/public/invoices/" + invA, noKey, "", nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fill := func(s string) string {
				s = strings.ReplaceAll(s, invA, ia)
				s = strings.ReplaceAll(s, invB, ib)
				s = strings.ReplaceAll(s, delA, da)
				s = strings.ReplaceAll(s, delB, db)
				for k, v := range keys {
					s = strings.ReplaceAll(s, "{"+k+"}", v)
				}
				return s
			}
			key := tt.key
			if k, ok := keys[key]; ok {
				key = k
			}
			header := map[string]string{}
			for k, v := range tt.header {
				header[k] = fill(v)
			}
			res := b.do(t, req{method: tt.method, path: fill(tt.path), key: key, body: fill(tt.body), header: header})
			if res.status != tt.wantStatus || res.code() != tt.wantCode {
				t.Fatalf("got %d %q, want %d %q: %s", res.status, res.code(), tt.wantStatus, tt.wantCode, res.raw)
			}
			if ct := res.header.Get("Content-Type"); res.status != http.StatusNoContent && !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("Cache-Control") != "no-store" {
				t.Errorf("security headers missing: %v", res.header)
			}
			if res.status >= 400 && res.json(t)["message"] == "" {
				t.Errorf("error without message: %s", res.raw)
			}
		})
	}
}

// TestStrictJSONMessages: a null names its field, a duplicate its key,
// and neither echoes the values sent.
func TestStrictJSONMessages(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	tests := []struct {
		body, want string
	}{
		{`{"asset":"BTC","amount":"1","order_id":null}`, "order_id"},
		{`{"asset":"BTC","amount":"1","ORDER_ID":null}`, "order_id"},
		{`{"asset":"BTC","amount":"1","order_id":"v-secret-1","order_id":"v-secret-2"}`, `"order_id"`},
		{`{"asset":"BTC","amount":"1","order_id":{"deep":"v-secret-1","deep":"v-secret-2"}}`, `"deep"`},
	}
	for _, tt := range tests {
		res := b.do(t, req{method: "POST", path: "/v1/invoices", key: m.secret, body: tt.body})
		msg, _ := res.json(t)["message"].(string)
		if res.status != http.StatusBadRequest || !strings.Contains(msg, tt.want) || strings.Contains(msg, "v-secret") {
			t.Errorf("%s: %d %s, want a 400 naming %s", tt.body, res.status, res.raw, tt.want)
		}
	}
}

func TestRegistrationClosed(t *testing.T) {
	b := setup(t, func(c *Config) { c.RegistrationOpen = false })
	res := b.do(t, req{method: "POST", path: "/v1/merchants", body: `{"name":"x"}`})
	if res.status != http.StatusForbidden || res.code() != "registration_closed" {
		t.Fatalf("%d %s", res.status, res.raw)
	}
}

func TestMethodNotAllowedListsAllow(t *testing.T) {
	b := setup(t)
	res := b.do(t, req{method: "DELETE", path: "/v1/payout-settings"})
	if got := res.header.Get("Allow"); got != "GET, PUT" {
		t.Fatalf("Allow = %q", got)
	}
}

// onlyDelivery returns the id of the merchant's one webhook delivery.
func (b *bundle) onlyDelivery(t *testing.T, merchantID string) string {
	t.Helper()
	page, _, err := b.webhooks.ListDeliveries(context.Background(), merchantID, webhooks.DeliveryFilter{Limit: 10})
	if err != nil || len(page) != 1 {
		t.Fatalf("deliveries of %s: %v %v", merchantID, page, err)
	}
	return page[0].ID
}
