// Package web serves the hosted checkout page (/pay/{invoice_id}) and the
// merchant dashboard (/dashboard). Both are server-rendered page shells with
// embedded CSS and JavaScript: no framework, no CDN, a strict
// Content-Security-Policy without inline scripts or styles.
//
// The pages read and change nothing themselves: the checkout polls the
// public GET /v1/public/invoices/{id}, and every dashboard action is a call
// to the public /v1 API with the session cookie, so a merchant can watch
// live examples of the API in the browser's developer tools. The
// server-side reads, through InvoiceReader, are the checkout's first render
// (so that an unknown invoice gets a proper HTML 404) and its payment
// request (GET /pay/request/{id}: the QR code and wallet link for the
// amount due, redrawn when a payment arrives).
package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// InvoiceReader is the one query the checkout page makes on the server.
// readapi.SQL implements it. merchantID "" skips the ownership check, as
// the public status endpoint does. Errors: domain.ErrNotFound.
type InvoiceReader interface {
	InvoiceByID(ctx context.Context, merchantID, invoiceID string) (readapi.Invoice, error)
}

var _ InvoiceReader = (*readapi.SQL)(nil)

// Config is the web pages' part of the service configuration.
type Config struct {
	// Invoices reads an invoice for the checkout's first render (required).
	Invoices InvoiceReader
	// Assets names the networks and token contracts (default: domain.DefaultAssets()).
	Assets domain.Assets
	// PollInterval is the checkout's first delay between status polls
	// (default 2 s). Without news it backs off to MaxPollInterval.
	PollInterval time.Duration
	// MaxPollInterval bounds the backoff (default 15 s).
	MaxPollInterval time.Duration
	// EthereumChainID goes into EIP-681 URIs (default 1, mainnet).
	EthereumChainID int64
	// Now is the server clock the countdown is synchronised to (default time.Now).
	Now func() time.Time
	// Limiter limits the pages per client (nil: no limit). cmd/picd passes
	// httpapi's per-IP limiter, so that these unauthenticated pages are
	// limited as the public /v1 routes are. Static files are not limited:
	// they are embedded bytes, cost no query, are cached by browsers and
	// proxies (a year with ?v=), and every page load fetches several.
	Limiter Limiter
	Logger  *slog.Logger
	// Branding reads the shop's display name, logo, colour and default
	// return link for its checkout (nil: every checkout shows the gateway's).
	Branding BrandingReader
	// Explorers links the checkout's transactions to a block explorer per
	// chain (nil or a chain left out: no link). cmd/picd sets none for a
	// simulated chain.
	Explorers Explorers
}

// BrandingReader is the read model of a merchant's checkout branding.
// Errors: domain.ErrNotFound.
type BrandingReader interface {
	Branding(ctx context.Context, merchantID string) (readapi.Branding, error)
}

// Limiter admits a request of a client, or says how long it must wait.
// Each namespace is a bucket of its own. httpapi.IPLimiter implements it.
type Limiter interface {
	Allow(r *http.Request, namespace string) (retryAfter time.Duration, ok bool)
}

// site serves both pages.
type site struct {
	cfg Config
	log *slog.Logger
	mux *http.ServeMux
}

// New returns the handler of the checkout and the dashboard. It answers
// the paths under /pay/ and /dashboard; cmd/picd mounts it beside the /v1
// API:
//
//	site := web.New(web.Config{Invoices: reader, Assets: assets, Now: now, Logger: log})
//	mux.Handle("/pay/", site)
//	mux.Handle("/dashboard", site)
//	mux.Handle("/dashboard/", site)
func New(cfg Config) http.Handler {
	if cfg.Invoices == nil {
		panic("web: Config.Invoices is required")
	}
	if len(cfg.Assets.List()) == 0 {
		cfg.Assets = domain.DefaultAssets()
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 2 * time.Second
	}
	if cfg.MaxPollInterval < cfg.PollInterval {
		cfg.MaxPollInterval = max(15*time.Second, cfg.PollInterval)
	}
	if cfg.EthereumChainID <= 0 {
		cfg.EthereumChainID = 1
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &site{cfg: cfg, log: cfg.Logger, mux: http.NewServeMux()}
	// A checkout's page and its payment requests share one bucket per
	// client: each reads the invoice (the request also draws a QR code).
	s.mux.HandleFunc("GET /pay/static/{file}", serveStatic)
	s.mux.Handle("GET /pay/{id}", s.limit("checkout", false, s.checkout))
	s.mux.Handle("GET /pay/request/{id}", s.limit("checkout", true, s.paymentRequest))
	s.mux.Handle("GET /dashboard", s.limit("dashboard", false, s.dashboard))
	s.mux.Handle("GET /dashboard/{$}", s.limit("dashboard", false, s.dashboard))
	s.mux.HandleFunc("GET /dashboard/static/{file}", serveStatic)
	return s
}

// limit puts next behind the Limiter's bucket namespace. A refused request
// gets 429 with Retry-After: the HTML error page, or JSON for the
// checkout script's calls (asJSON), which simply try again later.
func (s *site) limit(namespace string, asJSON bool, next http.HandlerFunc) http.Handler {
	if s.cfg.Limiter == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait, ok := s.cfg.Limiter.Allow(r, namespace)
		if ok {
			next(w, r)
			return
		}
		w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(wait.Seconds())), 1)))
		if asJSON {
			w.Header().Set("Cache-Control", "no-store")
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"error": "rate_limited"})
			return
		}
		s.renderError(w, r, http.StatusTooManyRequests)
	})
}

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	// Handler only finds the route; ServeHTTP below also sets PathValue.
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// Unknown path or method: our own HTML answer instead of the mux's
		// plain text, and without the mux's redirects.
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			s.renderError(w, r, http.StatusMethodNotAllowed)
			return
		}
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// contentSecurityPolicy allows only our own scripts, styles and API calls.
// Trusted Types make assigning HTML strings to the DOM throw: the scripts
// build every element with createElement and textContent.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; " +
	"require-trusted-types-for 'script'; trusted-types 'none'"

// logoOriginRE is what a logo's origin may look like to be named in the
// CSP: https, a host name or address and a port, nothing that could end
// the directive (";", ",", spaces) or widen it ("*").
var logoOriginRE = regexp.MustCompile(`^https://[A-Za-z0-9.\-]+(:[0-9]{1,5})?$`)

// logoOrigin is the origin of an https logo URL for img-src, or "" when
// it cannot be named safely (then the logo is not shown).
func logoOrigin(logoURL string) string {
	u, err := url.Parse(logoURL)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return ""
	}
	origin := "https://" + u.Host
	if !logoOriginRE.MatchString(origin) {
		return ""
	}
	return origin
}

// cspWithLogo is the page's policy with images also from origin: only the
// shop's logo's own origin, never https: at large, so the strict policy
// stays strict (no inline code, no other hosts).
func cspWithLogo(origin string) string {
	return strings.Replace(contentSecurityPolicy, "img-src 'self' data:;", "img-src 'self' data: "+origin+";", 1)
}

func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// The invoice id in the checkout's URL must not leak to other sites.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
}

//go:embed static templates i18n
var files embed.FS

var (
	staticFS = mustSub(files, "static")
	// assetVersion is a hash of every embedded static file: page shells
	// link ?v=assetVersion, which may be cached for good.
	assetVersion = hashFS(staticFS)
	templates    = template.Must(template.New("").Funcs(template.FuncMap{
		"t": func(c catalog, key string) string { return c.text(key) },
		// tf fills {name} placeholders: {{tf .T "key" "name" value ...}}.
		"tf": func(c catalog, key string, pairs ...string) string { return c.format(key, pairs...) },
	}).ParseFS(files, "templates/*.html"))
)

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic("web: " + err.Error())
	}
	return sub
}

func hashFS(f fs.FS) string {
	h := sha256.New()
	err := fs.WalkDir(f, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(f, p)
		h.Write([]byte(p))
		h.Write(data)
		return err
	})
	if err != nil {
		panic("web: " + err.Error())
	}
	return hex.EncodeToString(h.Sum(nil))[:12]
}

var staticTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
	".svg": "image/svg+xml",
}

// serveStatic serves an embedded file. With the current ?v= it may be
// cached for a year; otherwise (module imports, old links) the browser
// revalidates with the ETag.
func serveStatic(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	ctype, ok := staticTypes[path.Ext(name)]
	if !ok || strings.Contains(name, "/") {
		http.NotFound(w, r)
		return
	}
	data, err := fs.ReadFile(staticFS, name)
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("not found\n"))
		return
	}
	sum := sha256.Sum256(data)
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("ETag", `"`+hex.EncodeToString(sum[:8])+`"`)
	if r.URL.Query().Get("v") == assetVersion {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	http.ServeContent(w, r, name, time.Time{}, strings.NewReader(string(data)))
}

// errorPage is the data of the HTML error page.
type errorPage struct {
	Lang    string
	T       catalog
	Version string
	Static  string
	Title   string
	Message string
	Status  int
	Langs   []langLink
}

// renderError answers an HTML page for 404, 405, 429 and 503.
func (s *site) renderError(w http.ResponseWriter, r *http.Request, status int) {
	c := negotiate(r)
	p := errorPage{Lang: c.lang, T: c, Version: assetVersion, Static: "/pay/static/", Status: status, Langs: c.links()}
	switch status {
	case http.StatusNotFound:
		p.Title, p.Message = c.text("error.not_found.title"), c.text("error.not_found.message")
	case http.StatusServiceUnavailable:
		p.Title, p.Message = c.text("error.unavailable.title"), c.text("error.unavailable.message")
		w.Header().Set("Retry-After", "5")
	case http.StatusTooManyRequests:
		// "Try again in a moment" is the advice for both; the caller set
		// Retry-After.
		p.Title, p.Message = c.text("error.unavailable.title"), c.text("error.unavailable.message")
	default:
		p.Title, p.Message = c.text("error.method.title"), c.text("error.method.message")
	}
	s.render(w, r, status, "error.html", p)
}

func (s *site) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var b strings.Builder
	if err := templates.ExecuteTemplate(&b, name, data); err != nil {
		// A template bug, not the client's: log it, answer a bare 500.
		s.log.ErrorContext(r.Context(), "web: render", "template", name, "err", err)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("internal error\n"))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Pages show live state and, on the dashboard, account data.
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(b.String()))
	}
}

// isNotFound tells a missing invoice from a failing store.
func isNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
