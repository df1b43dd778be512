package httpapi

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
)

// feedEvent is an event as a client decodes it.
type feedEvent struct {
	ID         string          `json:"id"`
	EventID    string          `json:"event_id"`
	Type       string          `json:"type"`
	Stream     string          `json:"stream"`
	Version    int64           `json:"version"`
	Position   string          `json:"position"`
	RecordedAt int64           `json:"recorded_at"`
	Metadata   json.RawMessage `json:"metadata"`
	Data       json.RawMessage `json:"data"`
}

type feedPage struct {
	Data      []feedEvent `json:"data"`
	HasMore   bool        `json:"has_more"`
	NextAfter string      `json:"next_after"`
}

func (b *bundle) events(t *testing.T, key, query string) feedPage {
	t.Helper()
	res := b.do(t, req{method: "GET", path: "/v1/events" + query, key: key})
	if res.status != http.StatusOK {
		t.Fatalf("GET /v1/events%s: %d %s", query, res.status, res.raw)
	}
	var p feedPage
	if err := json.Unmarshal(res.raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

// projected waits until the read models hold everything in the log, for
// writes made through commands rather than the API.
func (b *bundle) projected(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	head := eventstore.Start
	for {
		recs, err := b.store.ReadAll(ctx, head, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			break
		}
		head = recs[len(recs)-1].Position
	}
	if err := b.runner.WaitFor(ctx, head); err != nil {
		t.Fatal(err)
	}
}

// logOf is the merchant's events in the log: what the feed must show.
func (b *bundle) logOf(t *testing.T, merchantID string) []eventstore.RecordedEvent {
	t.Helper()
	var out []eventstore.RecordedEvent
	for pos := eventstore.Start; ; {
		recs, err := b.store.ReadAll(context.Background(), pos, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, r := range recs {
			var md struct {
				MerchantID string `json:"merchant_id"`
			}
			json.Unmarshal(r.Metadata, &md)
			if md.MerchantID == merchantID {
				out = append(out, r)
			}
		}
		pos = recs[len(recs)-1].Position
	}
}

func TestEventsPagination(t *testing.T) {
	b := setup(t)
	a, other := b.signUp(t, "Shop A"), b.signUp(t, "Shop B")
	var invoices []string
	for i := 0; i < 4; i++ {
		invoices = append(invoices, b.createInvoice(t, a.secret, usdtBody)["id"].(string))
	}
	b.createInvoice(t, other.secret, btcBody)
	b.payDeposit(t, invoices[0], "49.99")
	b.projected(t)

	all := b.events(t, a.secret, "?limit=1000")
	log := b.logOf(t, a.id)
	if len(all.Data) != len(log) || len(log) < 7 || all.HasMore || all.NextAfter != strconv.Itoa(len(log)) {
		t.Fatalf("feed: %d events, has_more %v, next_after %s; the log has %d", len(all.Data), all.HasMore, all.NextAfter, len(log))
	}
	for i, e := range all.Data {
		rec := log[i]
		if e.ID != strconv.Itoa(i+1) || e.EventID != rec.ID || e.Type != rec.Type || e.Stream != rec.Stream ||
			e.Version != rec.Version || e.Position != rec.Position.String() || e.RecordedAt != rec.RecordedAt.UnixMilli() {
			t.Fatalf("event %d = %+v, log %+v", i, e, rec)
		}
		var md map[string]any
		if err := json.Unmarshal(e.Metadata, &md); err != nil || md["merchant_id"] != a.id {
			t.Fatalf("metadata %s", e.Metadata)
		}
		if strings.Contains(string(e.Data), "webhook_secret") || strings.Contains(string(e.Data), a.whsec) {
			t.Fatalf("the feed shows a secret: %s", e.Data)
		}
	}
	if all.Data[0].Type != "MerchantRegistered" || all.Data[1].Type != "InvoiceCreated" {
		t.Fatalf("first events: %s, %s", all.Data[0].Type, all.Data[1].Type)
	}
	var created struct {
		InvoiceID string `json:"invoice_id"`
		Amount    any    `json:"amount"`
		PayAmount any    `json:"pay_amount"`
	}
	json.Unmarshal(all.Data[1].Data, &created)
	if created.InvoiceID != invoices[0] || created.Amount != "49.99" {
		t.Fatalf("InvoiceCreated data %s", all.Data[1].Data)
	}
	if _, ok := created.PayAmount.(string); !ok {
		t.Fatalf("pay_amount is not a decimal string: %s", all.Data[1].Data)
	}

	// Pages of 2 following next_after give the same events.
	var paged []feedEvent
	after := ""
	for i := 0; ; i++ {
		if i > len(log) {
			t.Fatal("pagination does not end")
		}
		p := b.events(t, a.secret, "?limit=2&after="+after)
		paged = append(paged, p.Data...)
		after = p.NextAfter
		if !p.HasMore {
			break
		}
		if len(p.Data) != 2 {
			t.Fatalf("a full page has %d events", len(p.Data))
		}
	}
	if fmt.Sprint(paged) != fmt.Sprint(all.Data) {
		t.Fatalf("paged:\n%v\nat once:\n%v", paged, all.Data)
	}
	// Polling at the end returns nothing and the same cursor; a new event
	// then appears as the only one.
	if p := b.events(t, a.secret, "?after="+after); len(p.Data) != 0 || p.HasMore || p.NextAfter != after {
		t.Fatalf("after the end: %+v", p)
	}
	id := b.createInvoice(t, a.secret, btcBody)["id"].(string)
	p := b.events(t, a.secret, "?after="+after)
	if len(p.Data) != 1 || p.Data[0].Type != "InvoiceCreated" || !strings.Contains(string(p.Data[0].Data), id) {
		t.Fatalf("new event: %+v", p)
	}

	// Another merchant sees none of A's events, with its own numbering.
	theirs := b.events(t, other.secret, "?limit=1000")
	if len(theirs.Data) != len(b.logOf(t, other.id)) || theirs.Data[0].ID != "1" {
		t.Fatalf("B's feed: %+v", theirs)
	}
	for _, e := range theirs.Data {
		if strings.Contains(string(e.Data), a.id) || strings.Contains(string(e.Metadata), a.id) {
			t.Fatalf("B sees A's event %+v", e)
		}
		for _, inv := range invoices {
			if strings.Contains(string(e.Data), inv) {
				t.Fatalf("B sees A's invoice in %+v", e)
			}
		}
	}
	// A dashboard session reads the feed like the secret key.
	login := b.do(t, req{method: "POST", path: "/v1/sessions", body: `{"secret_key":"` + a.secret + `"}`})
	cookie := strings.Split(login.header.Get("Set-Cookie"), ";")[0]
	res := b.do(t, req{method: "GET", path: "/v1/events?limit=1", header: map[string]string{"Cookie": cookie}})
	if res.status != http.StatusOK || !strings.Contains(string(res.raw), a.id) {
		t.Fatalf("session: %d %s", res.status, res.raw)
	}
}

func TestEventsUnavailable(t *testing.T) {
	b := setup(t)
	a := b.signUp(t, "Shop")
	d := b.deps
	d.Events = nil
	srv := httptest.NewServer(recordAnswers(New(b.cfg, d)))
	defer srv.Close()
	for _, path := range []string{"/v1/events", "/v1/events/stream"} {
		hr, _ := http.NewRequest("GET", srv.URL+path, nil)
		hr.Header.Set("Authorization", "Bearer "+a.secret)
		res, err := http.DefaultClient.Do(hr)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("%s without a feed: %d", path, res.StatusCode)
		}
	}
}

// sseMsg is one message of an event stream; comment is set for ": …" lines.
type sseMsg struct {
	id, event, data, comment string
}

type sseConn struct {
	res    *http.Response
	cancel context.CancelFunc
	msgs   chan sseMsg // closed when the stream ends
}

// openStream connects to url with key and optional headers and parses the
// stream in the background.
func openStream(t *testing.T, url, key string, header map[string]string) *sseConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	hr, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Authorization", "Bearer "+key)
	hr.Header.Set("Accept", "text/event-stream")
	for k, v := range header {
		hr.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(hr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &sseConn{res: res, cancel: cancel, msgs: make(chan sseMsg, 1000)}
	t.Cleanup(c.close)
	if res.StatusCode != http.StatusOK {
		close(c.msgs)
		return c
	}
	go func() {
		defer close(c.msgs)
		sc := bufio.NewScanner(res.Body)
		var m sseMsg
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if m != (sseMsg{}) {
					c.msgs <- m
				}
				m = sseMsg{}
			case strings.HasPrefix(line, ":"):
				m.comment = strings.TrimSpace(line[1:])
			case strings.HasPrefix(line, "id: "):
				m.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				m.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				m.data = line[6:]
			}
		}
	}()
	return c
}

func (c *sseConn) close() { c.cancel(); c.res.Body.Close() }

// next returns the next event, skipping comments; it fails after timeout.
func (c *sseConn) next(t *testing.T, timeout time.Duration) sseMsg {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case m, ok := <-c.msgs:
			if !ok {
				t.Fatal("the stream ended")
			}
			if m.id != "" {
				return m
			}
		case <-deadline:
			t.Fatal("no event in time")
		}
	}
}

// quiet fails if an event arrives within d.
func (c *sseConn) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case m, ok := <-c.msgs:
			if ok && m.id != "" {
				t.Fatalf("unexpected event %+v", m)
			}
			if !ok {
				return
			}
		case <-deadline:
			return
		}
	}
}

func TestEventStream(t *testing.T) {
	b := setup(t)
	a, other := b.signUp(t, "Shop A"), b.signUp(t, "Shop B")
	b.createInvoice(t, a.secret, usdtBody)
	b.createInvoice(t, other.secret, btcBody)
	existing := b.events(t, a.secret, "?limit=1000").Data

	s := openStream(t, b.srv.URL+"/v1/events/stream", a.secret, nil)
	if s.res.StatusCode != http.StatusOK || s.res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream: %d %q", s.res.StatusCode, s.res.Header.Get("Content-Type"))
	}
	for _, want := range existing {
		m := s.next(t, 5*time.Second)
		var got feedEvent
		if err := json.Unmarshal([]byte(m.data), &got); err != nil {
			t.Fatalf("data %q: %v", m.data, err)
		}
		if m.id != want.ID || m.event != want.Type || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("streamed %+v, the list has %+v", m, want)
		}
	}
	// Another merchant's invoice does not appear; A's new one does, live.
	b.createInvoice(t, other.secret, btcBody)
	s.quiet(t, 600*time.Millisecond)
	id := b.createInvoice(t, a.secret, btcBody)["id"].(string)
	m := s.next(t, 5*time.Second)
	lastSeen := len(existing) + 1
	if m.id != strconv.Itoa(lastSeen) || m.event != "InvoiceCreated" || !strings.Contains(m.data, id) {
		t.Fatalf("live event %+v, want InvoiceCreated of %s with id %d", m, id, lastSeen)
	}
	s.close()

	// Reconnecting with Last-Event-ID (which wins over ?after=) sends only
	// what came later.
	b.payDeposit(t, id, "0.004")
	b.projected(t)
	later := b.events(t, a.secret, "?after="+strconv.Itoa(lastSeen)).Data
	if len(later) == 0 {
		t.Fatal("the deposit made no events")
	}
	r := openStream(t, b.srv.URL+"/v1/events/stream?after=0", a.secret, map[string]string{"Last-Event-ID": strconv.Itoa(lastSeen)})
	for _, want := range later {
		if m := r.next(t, 5*time.Second); m.id != want.ID || m.event != want.Type {
			t.Fatalf("after reconnecting: %+v, want %s %s", m, want.ID, want.Type)
		}
	}
	r.quiet(t, 400*time.Millisecond)

	// ?after= alone starts there too.
	q := openStream(t, b.srv.URL+"/v1/events/stream?after="+later[0].ID, a.secret, nil)
	if len(later) > 1 {
		if m := q.next(t, 5*time.Second); m.id != later[1].ID {
			t.Fatalf("?after=%s starts at %s", later[0].ID, m.id)
		}
	} else {
		q.quiet(t, 400*time.Millisecond)
	}
}

func TestEventStreamKeepaliveAndLimits(t *testing.T) {
	stopping := make(chan struct{})
	b := setup(t, func(c *Config) { c.EventStreamKeepalive = 100 * time.Millisecond })
	a := b.signUp(t, "Shop")
	d := b.deps
	d.ShuttingDown = stopping
	// Behind a wrapper like cmd/picd's (Flush and Unwrap), on a server whose
	// read and write timeouts are far shorter than the stream.
	inner := New(b.cfg, d)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(&wrappedWriter{ResponseWriter: w}, r)
	}))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = 300*time.Millisecond, 300*time.Millisecond
	srv.Start()
	defer srv.Close()

	s := openStream(t, srv.URL+"/v1/events/stream", a.secret, nil)
	if m := s.next(t, 5*time.Second); m.event != "MerchantRegistered" || m.id != "1" {
		t.Fatalf("first event %+v", m)
	}
	keepalives := 0
	deadline := time.After(5 * time.Second)
	for keepalives < 3 {
		select {
		case m, ok := <-s.msgs:
			if !ok {
				t.Fatal("the stream ended")
			}
			if m.comment == "keepalive" {
				keepalives++
			}
		case <-deadline:
			t.Fatalf("%d keepalives in 5 s", keepalives)
		}
	}
	// Past both server timeouts the stream still delivers.
	time.Sleep(400 * time.Millisecond)
	id := b.createInvoice(t, a.secret, btcBody)["id"].(string)
	if m := s.next(t, 5*time.Second); m.event != "InvoiceCreated" || !strings.Contains(m.data, id) {
		t.Fatalf("after the timeouts: %+v", m)
	}

	// At most maxStreamsPerMerchant streams per merchant.
	for i := 1; i < maxStreamsPerMerchant; i++ {
		if c := openStream(t, srv.URL+"/v1/events/stream", a.secret, nil); c.res.StatusCode != http.StatusOK {
			t.Fatalf("stream %d: %d", i+1, c.res.StatusCode)
		}
	}
	if c := openStream(t, srv.URL+"/v1/events/stream", a.secret, nil); c.res.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("one stream too many: %d", c.res.StatusCode)
	}

	// Shutting down ends open streams.
	close(stopping)
	deadline = time.After(5 * time.Second)
	for {
		select {
		case _, ok := <-s.msgs:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the stream outlived the shutdown signal")
		}
	}
}

// wrappedWriter hides the ResponseWriter's own methods the way a metrics
// middleware does, exposing Flush and Unwrap only.
type wrappedWriter struct{ http.ResponseWriter }

func (w *wrappedWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *wrappedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
