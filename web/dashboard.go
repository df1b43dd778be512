package web

import "net/http"

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
}

// dashboard is GET /dashboard (and /dashboard/). Views are chosen by the
// URL fragment (#/invoices, #/settings, ...), so one shell serves them all.
func (s *site) dashboard(w http.ResponseWriter, r *http.Request) {
	c := negotiate(r)
	s.render(w, r, http.StatusOK, "dashboard.html", dashboardPage{Lang: c.lang, T: c, I18N: c.JSON(), Version: assetVersion, Static: "/dashboard/static/", Langs: c.links()})
}
