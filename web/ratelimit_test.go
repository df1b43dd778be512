package web

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// countingLimiter allows max requests per namespace and records them.
type countingLimiter struct {
	max  int
	seen map[string]int
}

func (l *countingLimiter) Allow(_ *http.Request, namespace string) (time.Duration, bool) {
	l.seen[namespace]++
	if l.seen[namespace] > l.max {
		return 1500 * time.Millisecond, false
	}
	return 0, true
}

// TestPagesRateLimited (issue #17, finding 6): the checkout page, its
// payment request and the dashboard's page are behind the per-IP limit;
// a refused page is an HTML 429 with Retry-After. Static files are not
// limited: they are embedded bytes, cached by browsers and proxies for a
// year, and every page load fetches several.
func TestPagesRateLimited(t *testing.T) {
	l := &countingLimiter{max: 2, seen: map[string]int{}}
	h := New(Config{Invoices: fakeInvoices{byID: map[string]readapi.Invoice{"inv_a": testInvoice("inv_a", domain.StatusNew, "0")}},
		Limiter: l, Now: func() time.Time { return testNow }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for _, tc := range []struct {
		namespace string
		targets   []string
	}{
		{"checkout", []string{"/pay/inv_a", "/pay/request/inv_a", "/pay/inv_unknown"}},
		{"dashboard", []string{"/dashboard", "/dashboard/", "/dashboard"}},
	} {
		for i, target := range tc.targets {
			p := get(t, h, "GET", target)
			if i < 2 && p.status == http.StatusTooManyRequests {
				t.Fatalf("%s limited too early", target)
			}
			if i == 2 {
				if p.status != http.StatusTooManyRequests || p.header.Get("Retry-After") != "2" ||
					!strings.HasPrefix(p.header.Get("Content-Type"), "text/html") || p.header.Get("Content-Security-Policy") == "" {
					t.Fatalf("%s past the limit: %d %v", target, p.status, p.header)
				}
			}
		}
	}
	for i := 0; i < 10; i++ {
		for _, target := range []string{"/pay/static/checkout.js", "/dashboard/static/dashboard.js", "/pay/static/base.css"} {
			if p := get(t, h, "GET", target); p.status != http.StatusOK {
				t.Fatalf("%s: %d", target, p.status)
			}
		}
	}
	if len(l.seen) != 2 {
		t.Fatalf("namespaces limited: %v", l.seen)
	}
}
