package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/acceptcryptohere/gateway/webhooks"
)

// The worker is what cmd/picd passes as Deps.Webhooks.
var _ Webhooks = (*webhooks.Worker)(nil)

// hookReceiver is a merchant's webhook endpoint on loopback: it records
// each request and answers with status (200 unless changed).
type hookReceiver struct {
	srv    *httptest.Server
	status atomic.Int32
	mu     sync.Mutex
	got    []hookRequest
}

type hookRequest struct {
	header http.Header
	body   []byte
}

func newHookReceiver(t *testing.T) *hookReceiver {
	rc := &hookReceiver{}
	rc.status.Store(http.StatusOK)
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, hookRequest{header: r.Header.Clone(), body: raw})
		rc.mu.Unlock()
		w.WriteHeader(int(rc.status.Load()))
		io.WriteString(w, "thanks")
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *hookReceiver) requests() []hookRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]hookRequest(nil), rc.got...)
}

// verified checks a received request the way a merchant would, and that
// another secret does not verify it; it returns the body's type.
func verified(t *testing.T, r hookRequest, secret string) string {
	t.Helper()
	sig := r.header.Get(webhooks.HeaderSignature)
	if err := webhooks.Verify(r.body, sig, secret); err != nil {
		t.Fatalf("signature %q does not verify with the merchant's secret: %v", sig, err)
	}
	if webhooks.Verify(r.body, sig, "whsec_someone_else") == nil {
		t.Fatal("signature verifies with another secret")
	}
	var body struct {
		Type      string         `json:"type"`
		CreatedAt int64          `json:"created_at"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.CreatedAt == 0 || body.Data == nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if r.header.Get(webhooks.HeaderEvent) != body.Type {
		t.Fatalf("event header %q, body type %q", r.header.Get(webhooks.HeaderEvent), body.Type)
	}
	return body.Type
}

type deliveryPage struct {
	Data    []webhooks.DeliveryJSON `json:"data"`
	HasMore bool                    `json:"has_more"`
}

func (b *bundle) deliveries(t *testing.T, key, query string) deliveryPage {
	t.Helper()
	res := b.do(t, req{method: "GET", path: "/v1/webhooks/deliveries" + query, key: key})
	if res.status != http.StatusOK {
		t.Fatalf("list deliveries%s: %d %s", query, res.status, res.raw)
	}
	var p deliveryPage
	if err := json.Unmarshal(res.raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (b *bundle) delivery(t *testing.T, key, id string) webhooks.DeliveryJSON {
	t.Helper()
	res := b.do(t, req{method: "GET", path: "/v1/webhooks/deliveries/" + id, key: key})
	if res.status != http.StatusOK {
		t.Fatalf("delivery %s: %d %s", id, res.status, res.raw)
	}
	var d webhooks.DeliveryJSON
	if err := json.Unmarshal(res.raw, &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// passAll runs the worker until nothing is due (bounded).
func (b *bundle) passAll(t *testing.T) {
	t.Helper()
	for range 10 {
		n, err := b.webhooks.Pass(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("the worker still has deliveries due after 10 passes")
}

// TestWebhookEndpoints drives the real worker through the API: a signed
// test event, then real deliveries of status changes, listed, filtered,
// paged, delivered and retried.
func TestWebhookEndpoints(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	rc := newHookReceiver(t)
	if res := b.do(t, req{method: "PATCH", path: "/v1/account", key: m.secret, body: `{"webhook_url":"` + rc.srv.URL + `/ipn"}`}); res.status != http.StatusOK {
		t.Fatalf("set webhook_url: %d %s", res.status, res.raw)
	}

	// The test event arrives signed with the merchant's secret.
	res := b.do(t, req{method: "POST", path: "/v1/webhooks/test", key: m.secret})
	if res.status != http.StatusOK {
		t.Fatalf("test event: %d %s", res.status, res.raw)
	}
	wantKeys(t, "test result", res.json(t), "delivered", "attempt")
	wantKeys(t, "attempt", res.json(t)["attempt"].(map[string]any), "at", "status_code", "error", "latency_ms", "response_body")
	var sent struct {
		Delivered bool                 `json:"delivered"`
		Attempt   webhooks.AttemptJSON `json:"attempt"`
	}
	if err := json.Unmarshal(res.raw, &sent); err != nil {
		t.Fatal(err)
	}
	if !sent.Delivered || sent.Attempt.StatusCode == nil || *sent.Attempt.StatusCode != 200 || sent.Attempt.Error != nil || sent.Attempt.ResponseBody != "thanks" {
		t.Fatalf("test event result: %s", res.raw)
	}
	got := rc.requests()
	if len(got) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(got))
	}
	if typ := verified(t, got[0], m.whsec); typ != webhooks.EventTest {
		t.Fatalf("test event type %q", typ)
	}
	if id := got[0].header.Get(webhooks.HeaderDelivery); !strings.HasPrefix(id, "whd_") {
		t.Fatalf("delivery header %q", id)
	}

	// A failing endpoint is the answer's news, not an error of the request.
	rc.status.Store(http.StatusInternalServerError)
	res = b.do(t, req{method: "POST", path: "/v1/webhooks/test", key: m.secret})
	if res.status != http.StatusOK {
		t.Fatalf("test event to a failing endpoint: %d %s", res.status, res.raw)
	}
	if err := json.Unmarshal(res.raw, &sent); err != nil {
		t.Fatal(err)
	}
	if sent.Delivered || sent.Attempt.StatusCode == nil || *sent.Attempt.StatusCode != 500 || sent.Attempt.Error == nil {
		t.Fatalf("test event to a failing endpoint: %s", res.raw)
	}
	rc.status.Store(http.StatusOK)

	// Test events are not stored.
	if p := b.deliveries(t, m.secret, ""); len(p.Data) != 0 || p.HasMore {
		t.Fatalf("deliveries before any status change: %+v", p)
	}

	// Two status changes of one invoice: partially_paid, then confirming.
	inv := b.createInvoice(t, m.secret, `{"asset":"USDT.ETH","amount":"49.99"}`)["id"].(string)
	b.payDeposit(t, inv, "10")
	b.payDeposit(t, inv, "39.99")
	b.syncWebhooks(t)

	res = b.do(t, req{method: "GET", path: "/v1/webhooks/deliveries", key: m.secret})
	if res.status != http.StatusOK {
		t.Fatalf("list: %d %s", res.status, res.raw)
	}
	list := res.json(t)
	wantKeys(t, "delivery list", list, "data", "has_more")
	wantKeys(t, "delivery", list["data"].([]any)[0].(map[string]any),
		"id", "object", "event_type", "invoice_id", "status", "attempts", "next_attempt_at", "created_at")
	all := b.deliveries(t, m.secret, "")
	if len(all.Data) != 2 || all.HasMore {
		t.Fatalf("deliveries: %+v", all)
	}
	confirming, partial := all.Data[0], all.Data[1] // newest first
	if confirming.EventType != webhooks.EventInvoiceConfirming || partial.EventType != webhooks.EventInvoicePartiallyPaid {
		t.Fatalf("event types %q, %q", confirming.EventType, partial.EventType)
	}
	for _, d := range all.Data {
		if d.Object != "webhook_delivery" || d.InvoiceID != inv || d.Status != webhooks.StatusPending || len(d.Attempts) != 0 || d.NextAttemptAt == nil {
			t.Fatalf("pending delivery: %+v", d)
		}
	}

	// Paging and filters.
	first := b.deliveries(t, m.secret, "?limit=1")
	if len(first.Data) != 1 || !first.HasMore || first.Data[0].ID != confirming.ID {
		t.Fatalf("first page: %+v", first)
	}
	second := b.deliveries(t, m.secret, "?limit=1&starting_after="+first.Data[0].ID)
	if len(second.Data) != 1 || second.HasMore || second.Data[0].ID != partial.ID {
		t.Fatalf("second page: %+v", second)
	}
	if p := b.deliveries(t, m.secret, "?invoice_id="+inv+"&status=pending"); len(p.Data) != 2 {
		t.Fatalf("filter by invoice and pending: %d", len(p.Data))
	}
	if p := b.deliveries(t, m.secret, "?invoice_id=inv_other"); len(p.Data) != 0 {
		t.Fatalf("filter by another invoice: %d", len(p.Data))
	}
	if p := b.deliveries(t, m.secret, "?status=delivered"); len(p.Data) != 0 {
		t.Fatalf("delivered before the worker ran: %d", len(p.Data))
	}

	// The worker sends them in order, signed, with their delivery ids.
	b.passAll(t)
	got = rc.requests()[2:] // after the two test events
	if len(got) != 2 {
		t.Fatalf("receiver got %d deliveries, want 2", len(got))
	}
	for i, want := range []webhooks.DeliveryJSON{partial, confirming} {
		if typ := verified(t, got[i], m.whsec); typ != want.EventType {
			t.Fatalf("delivery %d is %q, want %q", i, typ, want.EventType)
		}
		if id := got[i].header.Get(webhooks.HeaderDelivery); id != want.ID {
			t.Fatalf("delivery %d id %q, want %q", i, id, want.ID)
		}
	}
	if p := b.deliveries(t, m.secret, "?status=delivered"); len(p.Data) != 2 {
		t.Fatalf("delivered: %d", len(p.Data))
	}
	d := b.delivery(t, m.secret, partial.ID)
	if d.Status != webhooks.StatusDelivered || d.NextAttemptAt != nil || len(d.Attempts) != 1 ||
		d.Attempts[0].StatusCode == nil || *d.Attempts[0].StatusCode != 200 || d.Attempts[0].ResponseBody != "thanks" {
		t.Fatalf("delivered delivery: %+v", d)
	}

	// Retry resends it: same id, same bytes; the key makes the POST safe to repeat.
	retry := req{method: "POST", path: "/v1/webhooks/deliveries/" + partial.ID + "/retry", key: m.secret, header: map[string]string{"Idempotency-Key": "resend-1"}}
	res = b.do(t, retry)
	if res.status != http.StatusOK {
		t.Fatalf("retry: %d %s", res.status, res.raw)
	}
	var retried webhooks.DeliveryJSON
	if err := json.Unmarshal(res.raw, &retried); err != nil {
		t.Fatal(err)
	}
	if retried.ID != partial.ID || retried.Status != webhooks.StatusPending || retried.NextAttemptAt == nil || len(retried.Attempts) != 1 {
		t.Fatalf("retried: %s", res.raw)
	}
	again := b.do(t, retry)
	if again.status != http.StatusOK || again.header.Get("Idempotent-Replayed") != "true" || string(again.raw) != string(res.raw) {
		t.Fatalf("retry replay: %d %v %s", again.status, again.header, again.raw)
	}
	b.passAll(t)
	got = rc.requests()
	if len(got) != 5 {
		t.Fatalf("receiver got %d requests, want 5 (the replayed retry must not queue a second resend)", len(got))
	}
	resent := got[4]
	verified(t, resent, m.whsec)
	if resent.header.Get(webhooks.HeaderDelivery) != partial.ID || string(resent.body) != string(got[2].body) {
		t.Fatalf("resend differs from the first send: %s vs %s", resent.body, got[2].body)
	}
	d = b.delivery(t, m.secret, partial.ID)
	if d.Status != webhooks.StatusDelivered || len(d.Attempts) != 2 {
		t.Fatalf("after the resend: %+v", d)
	}

	// Another merchant sees none of it.
	other := b.signUp(t, "Other")
	if p := b.deliveries(t, other.secret, ""); len(p.Data) != 0 {
		t.Fatalf("another merchant lists %d deliveries", len(p.Data))
	}
	if res := b.do(t, req{method: "GET", path: "/v1/webhooks/deliveries/" + partial.ID, key: other.secret}); res.status != http.StatusNotFound || res.code() != "not_found" {
		t.Fatalf("another merchant's delivery: %d %s", res.status, res.raw)
	}
}

// TestWebhooksUnavailable: a server built without a webhook worker answers
// the webhook routes 503, after authentication and key scopes.
func TestWebhooksUnavailable(t *testing.T) {
	b := setup(t)
	m := b.signUp(t, "Shop")
	deps := b.deps
	deps.Webhooks = nil
	srv := httptest.NewServer(recordAnswers(New(b.cfg, deps)))
	t.Cleanup(srv.Close)
	without := *b
	without.srv = srv

	for _, rq := range []req{
		{method: "GET", path: "/v1/webhooks/deliveries"},
		{method: "GET", path: "/v1/webhooks/deliveries/whd_000000000000000000000000"},
		{method: "POST", path: "/v1/webhooks/deliveries/whd_000000000000000000000000/retry", header: map[string]string{"Idempotency-Key": "k"}},
		{method: "POST", path: "/v1/webhooks/test"},
	} {
		rq.key = m.secret
		if res := without.do(t, rq); res.status != http.StatusServiceUnavailable || res.code() != "service_unavailable" {
			t.Errorf("%s %s: %d %s", rq.method, rq.path, res.status, res.raw)
		}
		rq.key = m.pub
		if res := without.do(t, rq); res.status != http.StatusForbidden {
			t.Errorf("%s %s publishable: %d %s", rq.method, rq.path, res.status, res.raw)
		}
		rq.key = ""
		if res := without.do(t, rq); res.status != http.StatusUnauthorized {
			t.Errorf("%s %s without a key: %d %s", rq.method, rq.path, res.status, res.raw)
		}
	}
}
