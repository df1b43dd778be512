package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

func TestDeliveriesSQLite(t *testing.T)   { testDeliveries(t, embedded) }
func TestDeliveriesPostgres(t *testing.T) { testDeliveries(t, postgresDB) }

// testDeliveries drives real commands, turns the log into deliveries, sends
// them to a real receiver and checks bodies, signatures, statuses, the
// delivery log queries and the subscriber's restart behaviour.
func testDeliveries(t *testing.T, newDB func(*testing.T, *sqlite.Store) sqldb.DB) {
	e := setup(t, newDB)
	rcA, rcB := newReceiver(t), newReceiver(t)
	a := e.merchant("A", rcA.srv.URL+"/ipn")
	b := e.merchant("B", rcB.srv.URL+"/ipn")
	c := e.merchant("C", "") // no webhook_url
	inv1 := e.invoice(a.MerchantID)
	d1 := e.observe(inv1, "4") // partially_paid
	d2 := e.observe(inv1, "6") // confirming
	e.confirm(inv1, d1)        // still confirming: no event
	e.confirm(inv1, d2)        // paid
	inv2 := e.invoice(a.MerchantID)
	e.expire(inv2) // expired
	inv3 := e.invoice(c.MerchantID)
	e.payFully(inv3) // confirming, paid: no endpoint
	invB := e.invoice(b.MerchantID)
	e.payFully(invB)
	e.sync()

	w := e.worker(Config{AllowPrivate: true})
	if sent := e.drain(w, time.Millisecond, 20); sent != 8 {
		t.Fatalf("handled %d deliveries, want 8", sent)
	}

	gotA := rcA.requests()
	var types []string
	for _, r := range gotA {
		types = append(types, r.Type)
	}
	// inv1's three in order; inv2's expiry anywhere among them.
	var inv1Types []string
	for _, r := range gotA {
		if r.Type != EventInvoiceExpired {
			inv1Types = append(inv1Types, r.Type)
		}
	}
	if fmt.Sprint(inv1Types) != "[invoice.partially_paid invoice.confirming invoice.paid]" || len(gotA) != 4 {
		t.Fatalf("merchant A received %v", types)
	}
	ids := map[string]bool{}
	for _, r := range gotA {
		if err := Verify(r.Body, r.Header.Get(HeaderSignature), a.WebhookSecret); err != nil {
			t.Errorf("signature with the merchant's secret: %v", err)
		}
		if err := Verify(r.Body, r.Header.Get(HeaderSignature), b.WebhookSecret); !errors.Is(err, ErrBadSignature) {
			t.Errorf("signature verified with another merchant's secret")
		}
		if r.Header.Get(HeaderEvent) != r.Type || r.Header.Get("Content-Type") != "application/json" ||
			!strings.HasPrefix(r.Header.Get("User-Agent"), "AcceptCryptoHERE") || r.Path != "/ipn" {
			t.Errorf("headers %v for %s", r.Header, r.Type)
		}
		id := r.Header.Get(HeaderDelivery)
		if ids[id] || !strings.HasPrefix(id, "whd_") {
			t.Errorf("delivery id %q twice or malformed", id)
		}
		ids[id] = true
		d := e.delivery(w, a.MerchantID, id)
		if !bytes.Equal(d.Body, r.Body) || d.Status != StatusDelivered || len(d.Attempts) != 1 || d.Attempts[0].StatusCode != 200 {
			t.Errorf("delivery %s: %+v", id, d)
		}
	}
	if rcB.requests()[0].Type != EventInvoiceConfirming || len(rcB.requests()) != 2 {
		t.Fatalf("merchant B received %d", len(rcB.requests()))
	}

	// The body is {type, created_at, data} and data is the invoice as of
	// the event, the same document GET /v1/invoices/{id} would have shown.
	for _, r := range gotA {
		var got struct {
			Type      string              `json:"type"`
			CreatedAt int64               `json:"created_at"`
			Data      readapi.InvoiceJSON `json:"data"`
		}
		if err := json.Unmarshal(r.Body, &got); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(r.Body, []byte(`{"type":"`+got.Type+`","created_at":`)) || got.CreatedAt == 0 {
			t.Errorf("body %s", r.Body)
		}
		want := map[string]domain.Status{EventInvoicePartiallyPaid: domain.StatusPartiallyPaid, EventInvoiceConfirming: domain.StatusConfirming,
			EventInvoicePaid: domain.StatusPaid, EventInvoiceExpired: domain.StatusExpired}[got.Type]
		if got.Data.Status != want || got.Data.CheckoutURL != baseURL+"/pay/"+got.Data.ID {
			t.Errorf("%s carries an invoice in status %s", got.Type, got.Data.Status)
		}
		switch got.Type {
		case EventInvoicePartiallyPaid:
			if got.Data.AmountReceived.String() != "4" || len(got.Data.Payments) != 1 || got.Data.PaidAt != nil {
				t.Errorf("partially_paid data %+v", got.Data)
			}
		case EventInvoicePaid:
			fromModel, err := readapi.NewSQL(e.db).InvoiceByID(e.ctx, a.MerchantID, inv1)
			if err != nil {
				t.Fatal(err)
			}
			wantJSON, _ := json.Marshal(fromModel.JSON(baseURL))
			gotJSON, _ := json.Marshal(got.Data)
			if string(wantJSON) != string(gotJSON) {
				t.Errorf("paid data differs from the read model:\n%s\n%s", gotJSON, wantJSON)
			}
		}
	}

	// Merchant C has no endpoint: recorded, not dropped.
	dc := e.all(w, c.MerchantID)
	if len(dc) != 2 || dc[0].Status != StatusNoEndpoint || dc[1].Status != StatusNoEndpoint || len(dc[0].Attempts) != 0 {
		t.Fatalf("merchant without webhook_url: %+v", dc)
	}

	// The delivery log: newest first, pages, filters, isolation.
	page, more, err := w.ListDeliveries(e.ctx, a.MerchantID, DeliveryFilter{Limit: 3})
	if err != nil || len(page) != 3 || !more || page[0].EventType != EventInvoiceExpired || page[2].EventType != EventInvoiceConfirming {
		t.Fatalf("page 1: %+v %v %v", page, more, err)
	}
	page2, more, err := w.ListDeliveries(e.ctx, a.MerchantID, DeliveryFilter{Limit: 3, StartingAfter: page[2].ID})
	if err != nil || len(page2) != 1 || more || page2[0].EventType != EventInvoicePartiallyPaid {
		t.Fatalf("page 2: %+v %v %v", page2, more, err)
	}
	byInvoice, _, _ := w.ListDeliveries(e.ctx, a.MerchantID, DeliveryFilter{InvoiceID: inv2})
	if len(byInvoice) != 1 || byInvoice[0].InvoiceID != inv2 {
		t.Fatalf("invoice filter: %+v", byInvoice)
	}
	if l, _, _ := w.ListDeliveries(e.ctx, a.MerchantID, DeliveryFilter{Status: StatusPending}); len(l) != 0 {
		t.Fatalf("pending filter: %+v", l)
	}
	if _, _, err := w.ListDeliveries(e.ctx, a.MerchantID, DeliveryFilter{Status: "nope"}); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("bad status: %v", err)
	}
	if _, _, err := w.ListDeliveries(e.ctx, a.MerchantID, DeliveryFilter{Limit: 101}); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("bad limit: %v", err)
	}
	if _, _, err := w.ListDeliveries(e.ctx, b.MerchantID, DeliveryFilter{StartingAfter: page[0].ID}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another merchant's cursor: %v", err)
	}
	if _, err := w.DeliveryByID(e.ctx, b.MerchantID, page[0].ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("another merchant's delivery: %v", err)
	}
	if _, err := w.Retry(e.ctx, b.MerchantID, page[0].ID); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("retry of another merchant's delivery: %v", err)
	}
	rendered, _ := json.Marshal(page[0].JSON())
	var keys map[string]any
	json.Unmarshal(rendered, &keys)
	for _, k := range []string{"id", "event_type", "invoice_id", "status", "attempts", "next_attempt_at", "created_at"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("rendered delivery lacks %s: %s", k, rendered)
		}
	}
	att := keys["attempts"].([]any)[0].(map[string]any)
	for _, k := range []string{"at", "status_code", "error", "latency_ms", "response_body"} {
		if _, ok := att[k]; !ok {
			t.Errorf("rendered attempt lacks %s: %s", k, rendered)
		}
	}

	// A manual retry resends with the same delivery id.
	if d, err := w.Retry(e.ctx, a.MerchantID, page[0].ID); err != nil || d.Status != StatusPending {
		t.Fatalf("retry: %+v %v", d, err)
	}
	e.drain(w, time.Millisecond, 5)
	again := rcA.requests()
	if len(again) != 5 || again[4].Header.Get(HeaderDelivery) != page[0].ID || !bytes.Equal(again[4].Body, page[0].Body) {
		t.Fatalf("resend: %d requests", len(again))
	}
	if d := e.delivery(w, a.MerchantID, page[0].ID); d.Status != StatusDelivered || len(d.Attempts) != 2 || d.Attempts[1].N != 2 {
		t.Fatalf("after resend: %+v", d)
	}

	// Restarts: a new subscriber on the same database creates nothing new;
	// even from a lost checkpoint it creates no duplicate; new events after
	// a restart are not lost.
	count := func() (n int, distinct int) {
		rows, err := e.db.Read.QueryContext(e.ctx, `SELECT delivery_id FROM webhook_deliveries`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		seen := map[string]bool{}
		for rows.Next() {
			var id string
			rows.Scan(&id)
			seen[id] = true
			n++
		}
		return n, len(seen)
	}
	before, _ := count()
	if err := NewSubscriber(e.store, e.db, SubscriberConfig{BaseURL: baseURL}).CatchUp(e.ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Write.ExecContext(e.ctx, `UPDATE webhook_checkpoint SET position = '0/0'`); err != nil {
		t.Fatal(err)
	}
	if err := NewSubscriber(e.store, e.db, SubscriberConfig{BaseURL: baseURL}).CatchUp(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n, distinct := count(); n != before || distinct != before {
		t.Fatalf("after restarts: %d deliveries (%d distinct), want %d", n, distinct, before)
	}
	inv4 := e.invoice(b.MerchantID)
	e.payFully(inv4)
	restarted := NewSubscriber(e.store, e.db, SubscriberConfig{BaseURL: baseURL, Now: e.clock.Now})
	if err := restarted.CatchUp(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n, distinct := count(); n != before+2 || distinct != n || n != statusEvents(t, e) {
		t.Fatalf("after new events: %d deliveries (%d distinct), want %d = the log's status events %d", n, distinct, before+2, statusEvents(t, e))
	}
}

// statusEvents counts the log's events that announce a webhook.
func statusEvents(t *testing.T, e *env) int {
	n := 0
	for pos := eventstore.Start; ; {
		recs, err := e.store.ReadAll(e.ctx, pos, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return n
		}
		for _, r := range recs {
			if _, ok := webhookType(r.Type); ok {
				n++
			}
		}
		pos = recs[len(recs)-1].Position
	}
}

// The receiver is down (connection refused), then answers 503, then is
// back: every delivery arrives, each delivery id exactly once, and a
// restarted worker picks up what the first one left pending.
func TestReceiverDownThenUp(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	addr := rc.srv.Listener.Addr().String()
	m := e.merchant("Shop", rc.srv.URL)
	var invoices []string
	for i := 0; i < 10; i++ {
		inv := e.invoice(m.MerchantID)
		e.payFully(inv)
		invoices = append(invoices, inv)
	}
	e.sync()
	rc.srv.Close() // down: connection refused

	w := e.worker(Config{AllowPrivate: true, AttemptTimeout: 2 * time.Second, PerMerchant: 10})
	if n, err := w.Pass(e.ctx); err != nil || n != 10 {
		t.Fatalf("first pass: %d %v", n, err) // the first delivery of each invoice; the second waits
	}
	e.clock.Advance(6 * time.Second)
	// Up again on the same address, but answering 503 at first.
	up := newReceiverAt(t, addr)
	up.set(func(request, int) (int, http.Header, string) { return 503, nil, "maintenance" })
	if n, err := w.Pass(e.ctx); err != nil || n != 10 {
		t.Fatalf("second pass: %d %v", n, err)
	}
	up.set(nil)
	// A new worker (a restarted gateway) delivers everything.
	w2 := e.worker(Config{AllowPrivate: true, PerMerchant: 10})
	e.clock.Advance(6 * time.Minute)
	e.drain(w2, time.Millisecond, 10)

	got := map[string]int{}
	for _, r := range up.requests() {
		if r.Status == 200 {
			got[r.Header.Get(HeaderDelivery)]++
		}
	}
	all := e.all(w2, m.MerchantID)
	if len(all) != 20 {
		t.Fatalf("%d deliveries, want 20", len(all))
	}
	for _, d := range all {
		if d.Status != StatusDelivered || got[d.ID] != 1 {
			t.Errorf("delivery %s: status %s, received %d times with a 2xx", d.ID, d.Status, got[d.ID])
		}
		if d.EventType == EventInvoiceConfirming {
			if len(d.Attempts) != 3 || d.Attempts[0].StatusCode != 0 || d.Attempts[0].Error == "" ||
				d.Attempts[1].StatusCode != 503 || d.Attempts[1].ResponseBody != "maintenance" || d.Attempts[2].StatusCode != 200 {
				t.Errorf("attempts of %s: %+v", d.ID, d.Attempts)
			}
		}
	}
	// Each worker counts the attempts it recorded, once each.
	if c := w.Attempts(); c.Retry.Load() != 20 || c.Delivered.Load() != 0 || c.Failed.Load() != 0 {
		t.Errorf("first worker counted %d retry, %d delivered, %d failed; want 20, 0, 0", c.Retry.Load(), c.Delivered.Load(), c.Failed.Load())
	}
	if c := w2.Attempts(); c.Delivered.Load() != 20 || c.Retry.Load() != 0 || c.Failed.Load() != 0 {
		t.Errorf("second worker counted %d delivered, %d retry, %d failed; want 20, 0, 0", c.Delivered.Load(), c.Retry.Load(), c.Failed.Load())
	}
}

// The schedule, driven by the injected clock through Run's timer: a
// receiver that always answers 500 gets attempts at 0, 5 s, 5 min, 30 min,
// 2 h, 5 h, 10 h, then every 10 h (each pause plus at most 10 % jitter)
// until three days after creation; then the delivery is failed.
func TestScheduleOnFailingReceiver(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	rc.set(func(request, int) (int, http.Header, string) { return 500, nil, "boom" })
	m := e.merchant("Shop", rc.srv.URL)
	inv := e.invoice(m.MerchantID)
	e.observe(inv, "1")
	e.sync()

	w := e.worker(Config{AllowPrivate: true, After: e.clock.After, PollInterval: 1000 * time.Hour})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var d Delivery
	deadline := time.Now().Add(20 * time.Second)
	for {
		all := e.all(w, m.MerchantID)
		if len(all) == 1 && all[0].Status == StatusFailed {
			d = all[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not failed in time: %+v", all)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; !errors.Is(err, ctx.Err()) {
		t.Fatalf("run: %v", err)
	}
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour}
	if d.Attempts[0].At != d.CreatedAt {
		t.Errorf("first attempt at %s, created %s", d.Attempts[0].At, d.CreatedAt)
	}
	for i := 1; i < len(d.Attempts); i++ {
		gap := d.Attempts[i].At.Sub(d.Attempts[i-1].At)
		p := want[min(i, len(want))-1]
		if gap < p || gap > p+p/10+time.Millisecond {
			t.Errorf("pause before attempt %d: %s, want %s..+10%%", i+1, gap, p)
		}
	}
	last := d.Attempts[len(d.Attempts)-1].At
	if n := len(d.Attempts); n < 11 || n > 12 || last.After(d.CreatedAt.Add(72*time.Hour)) || last.Before(d.CreatedAt.Add(60*time.Hour)) {
		t.Errorf("%d attempts, last %s after creation", n, last.Sub(d.CreatedAt))
	}
	if d.NextAttemptAt != nil || len(rc.requests()) != len(d.Attempts) {
		t.Errorf("failed delivery: next %v, %d requests for %d attempts", d.NextAttemptAt, len(rc.requests()), len(d.Attempts))
	}
	t.Logf("%d attempts over %s of injected time", len(d.Attempts), last.Sub(d.CreatedAt))
}

func TestScheduleExact(t *testing.T) {
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	noJitter := func(time.Duration) time.Duration { return 0 }
	var offsets []string
	at := created
	for n := 1; ; n++ {
		offsets = append(offsets, at.Sub(created).String())
		next, ok := nextAttempt(n, created, at, 0, noJitter)
		if !ok {
			break
		}
		at = next
	}
	want := "[0s 5s 5m5s 35m5s 2h35m5s 7h35m5s 17h35m5s 27h35m5s 37h35m5s 47h35m5s 57h35m5s 67h35m5s]"
	if fmt.Sprint(offsets) != want {
		t.Fatalf("attempt offsets %v\nwant %s", offsets, want)
	}
	now := created.Add(time.Hour)
	for _, c := range []struct {
		header string
		want   time.Duration
	}{
		{"120", 2 * time.Minute}, {" 7 ", 7 * time.Second}, {"0", 0}, {"-5", 0}, {"soon", 0}, {"", 0},
		{"999999999", 24 * time.Hour},
		{now.Add(90 * time.Minute).Format(http.TimeFormat), 90 * time.Minute},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(c.header, now); got != c.want {
			t.Errorf("Retry-After %q: %s, want %s", c.header, got, c.want)
		}
	}
}

// 410 Gone stops at once.
func TestGoneStops(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	rc.set(func(request, int) (int, http.Header, string) { return http.StatusGone, nil, "no such hook" })
	m := e.merchant("Shop", rc.srv.URL)
	inv := e.invoice(m.MerchantID)
	e.observe(inv, "1")
	e.sync()
	w := e.worker(Config{AllowPrivate: true})
	e.drain(w, time.Hour, 5)
	e.clock.Advance(24 * time.Hour)
	e.drain(w, time.Hour, 5)
	all := e.all(w, m.MerchantID)
	if len(all) != 1 || all[0].Status != StatusGone || len(all[0].Attempts) != 1 || all[0].NextAttemptAt != nil || len(rc.requests()) != 1 {
		t.Fatalf("after 410: %+v, %d requests", all, len(rc.requests()))
	}
	if c := w.Attempts(); c.Failed.Load() != 1 || c.Delivered.Load()+c.Retry.Load() != 0 {
		t.Errorf("after 410 the worker counted %d failed, %d delivered, %d retry; want 1, 0, 0", c.Failed.Load(), c.Delivered.Load(), c.Retry.Load())
	}
}

// Retry-After wins when it asks for longer than the schedule (bounded by
// 24 h), in seconds or as an HTTP date, and is ignored when shorter.
func TestRetryAfter(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	m := e.merchant("Shop", rc.srv.URL)
	inv := e.invoice(m.MerchantID)
	e.observe(inv, "1")
	e.sync()
	answers := []string{"3600", "date+2h", "1", "99999999", ""}
	rc.set(func(_ request, n int) (int, http.Header, string) {
		if n >= len(answers)-1 {
			return 200, nil, ""
		}
		v := answers[n]
		if v == "date+2h" {
			v = e.clock.Now().Add(2 * time.Hour).UTC().Format(http.TimeFormat)
		}
		return 429, http.Header{"Retry-After": {v}}, ""
	})
	w := e.worker(Config{AllowPrivate: true})
	var gaps []time.Duration
	for i := 0; i < len(answers); i++ {
		if n, err := w.Pass(e.ctx); err != nil || n != 1 {
			t.Fatalf("pass %d: %d %v", i, n, err)
		}
		d := e.all(w, m.MerchantID)[0]
		if d.NextAttemptAt == nil {
			break
		}
		last := d.Attempts[len(d.Attempts)-1].At
		gaps = append(gaps, d.NextAttemptAt.Sub(last))
		e.clock.Set(*d.NextAttemptAt)
	}
	if len(gaps) != 4 || gaps[0] != time.Hour || gaps[1] <= 2*time.Hour-time.Second || gaps[1] > 2*time.Hour || // HTTP dates have whole seconds
		gaps[2] < 30*time.Minute || gaps[2] > 33*time.Minute || gaps[3] != 24*time.Hour {
		t.Fatalf("pauses after Retry-After 3600, +2h date, 1, huge: %v", gaps)
	}
	if d := e.all(w, m.MerchantID)[0]; d.Status != StatusDelivered || len(d.Attempts) != 5 {
		t.Fatalf("final: %+v", d)
	}
}

// Per invoice, a delivery goes only after the earlier ones are delivered
// or finally given up (410 here): paid never overtakes confirming.
func TestOrderPerInvoice(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	m := e.merchant("Shop", rc.srv.URL)
	inv := e.invoice(m.MerchantID)
	dep := e.observe(inv, "3")  // partially_paid
	dep2 := e.observe(inv, "7") // confirming
	e.confirm(inv, dep)
	e.confirm(inv, dep2) // paid
	goneInv := e.invoice(m.MerchantID)
	e.payFully(goneInv)
	e.sync()
	var mu sync.Mutex
	tries := map[string]int{}
	rc.set(func(r request, _ int) (int, http.Header, string) {
		id := r.Header.Get(HeaderDelivery)
		mu.Lock()
		defer mu.Unlock()
		tries[id]++
		var b struct{ Data struct{ ID string } }
		json.Unmarshal(r.Body, &b)
		if b.Data.ID == goneInv && r.Type == EventInvoiceConfirming {
			return http.StatusGone, nil, ""
		}
		if tries[id] < 3 { // every delivery fails twice first
			return 500, nil, ""
		}
		return 200, nil, ""
	})
	w := e.worker(Config{AllowPrivate: true, PerMerchant: 4})
	e.drain(w, 6*time.Minute, 50)
	var seq []string
	delivered := map[string]bool{}
	for _, r := range rc.requests() {
		var b struct{ Data struct{ ID string } }
		json.Unmarshal(r.Body, &b)
		if b.Data.ID != inv {
			continue
		}
		for _, earlier := range []string{EventInvoicePartiallyPaid, EventInvoiceConfirming, EventInvoicePaid} {
			if earlier == r.Type {
				break
			}
			if !delivered[earlier] {
				t.Fatalf("%s sent before %s was delivered", r.Type, earlier)
			}
		}
		if r.Status == 200 {
			delivered[r.Type] = true
		}
		seq = append(seq, r.Type)
	}
	if len(seq) != 9 || !delivered[EventInvoicePaid] {
		t.Fatalf("invoice requests %v", seq)
	}
	byInvoice, _, _ := w.ListDeliveries(e.ctx, m.MerchantID, DeliveryFilter{InvoiceID: goneInv})
	if len(byInvoice) != 2 || byInvoice[1].Status != StatusGone || byInvoice[0].Status != StatusDelivered {
		t.Fatalf("after a gone delivery the next one still goes: %+v", byInvoice)
	}
}

// A hanging endpoint holds at most PerMerchant senders; another merchant's
// deliveries go through meanwhile.
func TestHangingEndpointDoesNotDelayOthers(t *testing.T) {
	e := setup(t, embedded)
	release := make(chan struct{})
	var mu sync.Mutex
	var inFlight, maxInFlight int
	hang := newReceiver(t)
	hang.set(func(request, int) (int, http.Header, string) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		return 200, nil, ""
	})
	fast := newReceiver(t)
	a := e.merchant("A", hang.srv.URL)
	b := e.merchant("B", fast.srv.URL)
	for i := 0; i < 8; i++ {
		e.payFully(e.invoice(a.MerchantID))
	}
	for i := 0; i < 5; i++ {
		e.payFully(e.invoice(b.MerchantID))
	}
	e.sync()
	w := e.worker(Config{AllowPrivate: true, Workers: 4, PerMerchant: 2, AttemptTimeout: time.Minute})
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	start := time.Now()
	for len(fast.requests()) < 10 {
		if time.Since(start) > 10*time.Second {
			t.Fatalf("merchant B got %d of 10 while A hangs", len(fast.requests()))
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(start)
	if n := len(hang.requests()); n != 2 {
		t.Errorf("hanging merchant has %d requests open, want 2", n)
	}
	close(release)
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	if maxInFlight > 2 {
		t.Errorf("hanging merchant had %d requests at once", maxInFlight)
	}
	t.Logf("merchant B's 10 deliveries (5 invoices, in order) took %s while A's endpoint hung", took)
}

// The URL and the secret are read at send time: a retry after a secret
// rotation and a URL change is signed with the new secret and goes to the
// new URL.
func TestRotationAppliesToPendingRetries(t *testing.T) {
	e := setup(t, embedded)
	old, next := newReceiver(t), newReceiver(t)
	old.set(func(request, int) (int, http.Header, string) { return 500, nil, "" })
	m := e.merchant("Shop", old.srv.URL)
	inv := e.invoice(m.MerchantID)
	e.observe(inv, "1")
	e.sync()
	w := e.worker(Config{AllowPrivate: true})
	if n, _ := w.Pass(e.ctx); n != 1 {
		t.Fatal("no first attempt")
	}
	rot, err := e.h.RotateWebhookSecret.Handle(e.ctx, commands.RotateWebhookSecret{CommandID: "rot", MerchantID: m.MerchantID})
	if err != nil {
		t.Fatal(err)
	}
	e.setURL(m.MerchantID, next.srv.URL+"/new")
	e.sync()
	e.clock.Advance(10 * time.Second)
	e.drain(w, time.Second, 5)
	got := next.requests()
	if len(got) != 1 || Verify(got[0].Body, got[0].Header.Get(HeaderSignature), rot.WebhookSecret) != nil ||
		Verify(got[0].Body, got[0].Header.Get(HeaderSignature), m.WebhookSecret) == nil || !bytes.Equal(got[0].Body, old.requests()[0].Body) {
		t.Fatalf("retry after rotation: %d requests", len(got))
	}
}

func TestSendTest(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	m := e.merchant("Shop", rc.srv.URL)
	none := e.merchant("None", "")
	e.sync()
	w := e.worker(Config{AllowPrivate: true})
	a, err := w.SendTest(e.ctx, m.MerchantID)
	if err != nil || !a.OK() || a.StatusCode != 200 || a.ResponseBody != "ok" {
		t.Fatalf("test send: %+v %v", a, err)
	}
	r := rc.requests()[0]
	if r.Type != EventTest || r.Header.Get(HeaderEvent) != EventTest || Verify(r.Body, r.Header.Get(HeaderSignature), m.WebhookSecret) != nil ||
		!strings.HasPrefix(r.Header.Get(HeaderDelivery), "whd_test_") {
		t.Fatalf("test event %s %v", r.Body, r.Header)
	}
	if _, err := w.SendTest(e.ctx, none.MerchantID); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("no endpoint: %v", err)
	}
	if _, err := w.SendTest(e.ctx, "mer_nobody"); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown merchant: %v", err)
	}
	rc.set(func(request, int) (int, http.Header, string) { return 418, nil, strings.Repeat("x", 5000) })
	a, err = w.SendTest(e.ctx, m.MerchantID)
	if err != nil || a.OK() || a.StatusCode != 418 || len(a.ResponseBody) != 1024 || a.Error == "" {
		t.Fatalf("failing test send: code %d, %d body bytes, %q, %v", a.StatusCode, len(a.ResponseBody), a.Error, err)
	}
}

// A delivery whose merchant is not in the read model yet (projections lag
// the log) waits without using up an attempt.
func TestMerchantNotProjectedYet(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	m := e.merchant("Shop", rc.srv.URL)
	inv := e.invoice(m.MerchantID)
	e.observe(inv, "1")
	if err := e.sub.CatchUp(e.ctx); err != nil { // deliveries, but no merchants row yet
		t.Fatal(err)
	}
	w := e.worker(Config{AllowPrivate: true})
	if n, err := w.Pass(e.ctx); err != nil || n != 1 {
		t.Fatalf("pass: %d %v", n, err)
	}
	d := e.all(w, m.MerchantID)[0]
	if d.Status != StatusPending || d.AttemptCount != 0 || d.NextAttemptAt == nil || !d.NextAttemptAt.After(e.clock.Now()) {
		t.Fatalf("before projection: %+v", d)
	}
	e.sync()
	e.clock.Advance(time.Second)
	e.drain(w, time.Millisecond, 3)
	if d := e.all(w, m.MerchantID)[0]; d.Status != StatusDelivered || d.AttemptCount != 1 || len(rc.requests()) != 1 {
		t.Fatalf("after projection: %+v", d)
	}
}
