package main

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The hand-written client against net/http's server: a chunked answer, an
// error on the same connection, a server that closes the connection, and
// the reconnect after it.
func TestCreatorAgainstNetHTTP(t *testing.T) {
	var conns, reqs atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := reqs.Add(1)
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/invoices" || r.Header.Get("Authorization") != "Bearer sk_b" ||
			r.Header.Get("Content-Type") != "application/json" || string(body) != `{"asset":"BTC"}` {
			http.Error(w, "bad request: "+r.Header.Get("Authorization"), http.StatusBadRequest)
			return
		}
		switch n {
		case 1:
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"inv_1",`)
			w.(http.Flusher).Flush() // forces chunked encoding
			_, _ = io.WriteString(w, `"pay_amount":"0.1"}`)
		case 3:
			w.Header().Set("Connection", "close")
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"inv_3","pay_amount":"0.3"}`)
		default:
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"id":"inv_4","pay_amount":"0.4"}`)
		}
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c, err := newCreator(srv.URL, []string{"sk_a", "sk_b"}, []byte(`{"asset":"BTC"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var inv invoiceRef
	if code, err := c.createInvoice(1, &inv, true); err != nil || code != 201 || inv.ID != "inv_1" || inv.PayAmount != "0.1" {
		t.Fatalf("chunked answer: %d %v %+v", code, err, inv)
	}
	if code, err := c.createInvoice(0, &inv, true); code != 400 || err == nil || !strings.Contains(err.Error(), "bad request: Bearer sk_a") {
		t.Fatalf("error answer: %d %v", code, err)
	}
	if code, err := c.createInvoice(1, &inv, true); err != nil || code != 201 || inv.ID != "inv_3" {
		t.Fatalf("closing answer: %d %v %+v", code, err, inv)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections after three requests, want 1 (kept alive)", n)
	}
	if code, err := c.createInvoice(1, &inv, true); err != nil || code != 201 || inv.ID != "inv_4" {
		t.Fatalf("after the close: %d %v %+v", code, err, inv)
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (a new one after Connection: close)", n)
	}
	if _, err := newCreator("https://example.com", nil, nil, time.Second); err == nil {
		t.Fatal("https accepted by the plain-http client")
	}
}
