package webhooks

import (
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/sqldb"
)

func TestPruneSQLite(t *testing.T)   { testPrune(t, embedded) }
func TestPrunePostgres(t *testing.T) { testPrune(t, postgresDB) }

// testPrune fills the delivery log with finished and pending deliveries,
// 91 days old and new, prunes what is older than 90 days in pages of two,
// and checks that only the old finished ones went, with their attempts.
func testPrune(t *testing.T, newDB func(*testing.T, *sqlite.Store) sqldb.DB) {
	e := setup(t, newDB)
	ok, down := newReceiver(t), newReceiver(t)
	down.respond = func(request, int) (int, http.Header, string) { return http.StatusServiceUnavailable, nil, "down" }
	a := e.merchant("A", ok.srv.URL+"/ipn")
	b := e.merchant("B", down.srv.URL+"/ipn")
	c := e.merchant("C", "") // no webhook_url: its deliveries end no_endpoint
	e.payFully(e.invoice(a.MerchantID))
	e.payFully(e.invoice(b.MerchantID))
	e.payFully(e.invoice(c.MerchantID))
	e.sync()
	w := e.worker(Config{AllowPrivate: true})
	pass := func() { // an invoice's deliveries go one after another
		for i := 0; i < 2; i++ {
			if _, err := w.Pass(e.ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	pass()
	old := map[string][]Delivery{}
	for _, m := range []string{a.MerchantID, b.MerchantID, c.MerchantID} {
		old[m] = e.all(w, m)
	}
	if got := statuses(old[a.MerchantID]); got != "[delivered delivered]" {
		t.Fatalf("A's deliveries %s", got)
	}
	if got := statuses(old[b.MerchantID]); got != "[pending pending]" {
		t.Fatalf("B's deliveries %s", got)
	}
	if got := statuses(old[c.MerchantID]); got != "[no_endpoint no_endpoint]" {
		t.Fatalf("C's deliveries %s", got)
	}

	e.clock.Advance(91 * 24 * time.Hour)
	fresh := e.invoice(a.MerchantID)
	e.payFully(fresh)
	e.sync()
	pass()
	defer func(n int) { prunePage = n }(prunePage)
	prunePage = 2 // several pages, one of them short
	n, err := w.Prune(e.ctx, e.clock.Now().Add(-90*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("pruned %d deliveries, want A's and C's 4 old ones", n)
	}
	left := e.all(w, a.MerchantID)
	if len(left) != 2 || left[0].InvoiceID != fresh || left[1].InvoiceID != fresh || statuses(left) != "[delivered delivered]" {
		t.Fatalf("A's deliveries after pruning: %+v", left)
	}
	if got := e.all(w, b.MerchantID); len(got) != 2 {
		t.Fatalf("B's pending deliveries were pruned: %d left", len(got))
	}
	if got := e.all(w, c.MerchantID); len(got) != 0 {
		t.Fatalf("C's old deliveries stayed: %d", len(got))
	}
	for _, d := range append(old[a.MerchantID], old[c.MerchantID]...) {
		var attempts int
		if err := e.db.Read.QueryRowContext(e.ctx, e.db.Q(`SELECT count(*) FROM webhook_attempts WHERE delivery_id = ?`), d.ID).Scan(&attempts); err != nil {
			t.Fatal(err)
		}
		if attempts != 0 {
			t.Errorf("delivery %s pruned, %d attempts left", d.ID, attempts)
		}
	}
	for _, d := range old[b.MerchantID] {
		if got := e.delivery(w, b.MerchantID, d.ID); len(got.Attempts) < len(d.Attempts) {
			t.Errorf("pending delivery %s had %d attempts, has %d after pruning", d.ID, len(d.Attempts), len(got.Attempts))
		}
	}
	if n, err := w.Prune(e.ctx, e.clock.Now().Add(-90*24*time.Hour)); err != nil || n != 0 {
		t.Fatalf("second prune: %d, %v", n, err)
	}
	// The subscriber does not make the pruned deliveries again.
	e.sync()
	if got := e.all(w, c.MerchantID); len(got) != 0 {
		t.Fatalf("pruned deliveries came back: %d", len(got))
	}
}

func statuses(ds []Delivery) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.Status)
	}
	sort.Strings(s)
	return "[" + strings.Join(s, " ") + "]"
}
