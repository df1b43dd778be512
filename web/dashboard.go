package web

import (
	"net/http"
	"sort"
)

// dashboardPage is the data of dashboard.html: only the shell and the
// strings. Everything the dashboard shows or changes is a /v1 call that
// dashboard.js makes with the session cookie, visible in the browser's
// developer tools; the server adds no private endpoint.
type dashboardPage struct {
	Lang    string
	T       catalog
	I18N    map[string]string
	Version string
	Static  string // where the page's CSS and scripts are
	Langs   []langLink
	// Explorers are the block explorer URLs by chain (with {txid}), so the
	// dashboard links transactions as the checkout does.
	Explorers map[string]string
	// Fiats are the currencies an invoice may be priced in (price_currency).
	Fiats []string
	// NowMs is the server's clock: the chart's days are the server's UTC
	// days, whatever the browser's clock says.
	NowMs int64
}

// fiatCodes are the codes of the fiat currencies the gateway prices in, sorted.
var fiatCodes = func() []string {
	out := make([]string, 0, len(fiats))
	for code := range fiats {
		out = append(out, code)
	}
	sort.Strings(out)
	return out
}()

// dashboard is GET /dashboard (and /dashboard/). Views are chosen by the
// URL fragment (#/invoices, #/settings, ...), so one shell serves them all.
func (s *site) dashboard(w http.ResponseWriter, r *http.Request) {
	c := negotiate(r)
	explorers := map[string]string{}
	for chain, url := range s.cfg.Explorers {
		if url != "" {
			explorers[string(chain)] = url
		}
	}
	s.render(w, r, http.StatusOK, "dashboard.html", dashboardPage{Lang: c.lang, T: c, I18N: c.JSON(), Version: assetVersion, Static: "/dashboard/static/",
		Langs: c.links(), Explorers: explorers, Fiats: fiatCodes, NowMs: s.cfg.Now().UnixMilli()})
}
