package web

import (
	"encoding/json"
	"html/template"
	"net/http"
	"strings"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// checkoutPage is the data of checkout.html. The server renders the whole
// page in the invoice's current status (so it reads right without
// JavaScript, and the first paint needs no API call); checkout.js then
// polls the public status endpoint and switches screens in place.
type checkoutPage struct {
	Lang    string
	T       catalog
	I18N    map[string]string
	Version string
	Static  string // where the page's CSS and scripts are

	ID        string
	Asset     string // code, e.g. USDT.ETH
	AssetName string // e.g. Tether USD (ERC-20)
	Network   string // e.g. Ethereum (ERC-20)
	Contract  string // token contract; "" for a native coin
	Decimals  int32
	Status    domain.Status

	PayAmount      string
	PayAddress     string
	AmountReceived string
	AmountDue      string // max(0, pay_amount - amount_received)
	// Overpaid is what the customer sent beyond pay_amount, once the
	// invoice is confirming or paid; "" when nothing was.
	Overpaid      string
	SendAmount    string // what the pay screen asks for: see sendAmount
	Confirmations int
	Required      int

	ExpiresAtMs int64
	NowMs       int64 // server clock, so the countdown ignores a wrong client clock
	PollMs      int64
	MaxPollMs   int64

	// WalletURI is trusted: WalletURI builds it from checked parts, and
	// html/template would otherwise refuse its bitcoin:/ethereum:/tron: scheme.
	WalletURI template.URL
	QR        template.HTML

	// Description is the merchant's text for the customer (escaped as any
	// text). ReturnURL is the invoice's redirect_url, else the account's
	// default_redirect_url: https only (validated when set), rendered as a
	// plain attribute, so html/template still escapes it.
	Description string
	ReturnURL   string
	// Brand is the shop's display name, else the gateway's. LogoURL is
	// shown only when its origin is named in the page's CSP (LogoOrigin);
	// BrandColor (#rrggbb, validated when set) is applied by checkout.js
	// through the CSSOM, as the CSP refuses inline styles.
	Brand      string
	LogoURL    string
	LogoOrigin string
	BrandColor string
	// FiatPrice is the invoice's price ("49.99 USD") when it was priced in
	// fiat; the customer sees what the shop asked beside the crypto amount.
	FiatPrice string
	// Payments are the invoice's transactions, each with its explorer link
	// when the chain has one (ExplorerTx, the URL with {txid}, lets
	// checkout.js link the ones that arrive while the page is open).
	Payments   []paymentView
	ExplorerTx string
	// Langs is the language switch: every catalog, the current one marked.
	Langs []langLink
}

// paymentView is one transaction on the checkout.
type paymentView struct {
	TxID          string
	Short         string // the txid shortened for the eye; the link and title carry it whole
	URL           string
	Amount        string
	Confirmations int
	Status        string
}

// screen names which of the page's screens the status shows. A reverted
// invoice (money rule 5) asks for nothing: it is not the customer's to pay
// again, and its payment may yet be mined again.
func (p checkoutPage) Screen() string {
	switch p.Status {
	case domain.StatusConfirming, domain.StatusPaid, domain.StatusExpired, domain.StatusReverted:
		return string(p.Status)
	}
	return "pay" // new and partially_paid
}

// fiats format an invoice's fiat price with its currency's decimals.
var fiats = domain.DefaultFiats()

// checkout is GET /pay/{id}.
func (s *site) checkout(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validInvoiceID(id) {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	inv, err := s.cfg.Invoices.InvoiceByID(r.Context(), "", id)
	if isNotFound(err) {
		s.renderError(w, r, http.StatusNotFound)
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "web: checkout: read invoice", "invoice_id", id, "err", err)
		s.renderError(w, r, http.StatusServiceUnavailable)
		return
	}
	c := negotiate(r)
	p := s.checkoutPage(c, inv)
	s.brand(r, &p, inv)
	if p.LogoOrigin != "" {
		w.Header().Set("Content-Security-Policy", cspWithLogo(p.LogoOrigin))
	}
	s.render(w, r, http.StatusOK, "checkout.html", p)
}

// brand puts the shop's branding on the page. Without it (none set, no
// reader, or the read fails: the customer must still be able to pay) the
// page shows the gateway's name.
func (s *site) brand(r *http.Request, p *checkoutPage, inv readapi.Invoice) {
	if s.cfg.Branding == nil {
		return
	}
	b, err := s.cfg.Branding.Branding(r.Context(), inv.MerchantID)
	if err != nil {
		if !isNotFound(err) {
			s.log.WarnContext(r.Context(), "web: checkout without branding", "invoice_id", inv.ID, "err", err)
		}
		return
	}
	if b.DisplayName != "" {
		p.Brand = b.DisplayName
	}
	if origin := logoOrigin(b.LogoURL); origin != "" {
		p.LogoURL, p.LogoOrigin = b.LogoURL, origin
	}
	p.BrandColor = b.BrandColor
	if p.ReturnURL == "" {
		p.ReturnURL = b.DefaultRedirectURL
	}
}

// sendAmount is what the pay screen's words, QR code and wallet link ask
// for. After a partial payment that is the rest only: asking for
// pay_amount again made customers who followed the QR code overpay (issue
// #15). With nothing due the pay screen is hidden; it keeps pay_amount.
func sendAmount(inv readapi.Invoice) domain.Amount {
	if due := inv.AmountDue(); due.IsPositive() {
		return due
	}
	return inv.PayAmount
}

func (s *site) checkoutPage(c catalog, inv readapi.Invoice) checkoutPage {
	p := checkoutPage{
		Lang: c.lang, T: c, I18N: c.JSON(), Version: assetVersion, Static: "/pay/static/",
		ID: inv.ID, Asset: inv.Asset, AssetName: inv.Asset, Network: inv.Asset, Status: inv.Status,
		PayAmount: inv.PayAmount.String(), PayAddress: inv.PayAddress, AmountReceived: inv.AmountReceived.String(),
		AmountDue: inv.AmountDue().String(), SendAmount: sendAmount(inv).String(),
		Confirmations: shownConfirmations(inv.Confirmations(), inv.RequiredConfirmations), Required: inv.RequiredConfirmations,
		ExpiresAtMs: inv.ExpiresAt.UnixMilli(), NowMs: s.cfg.Now().UnixMilli(),
		PollMs: s.cfg.PollInterval.Milliseconds(), MaxPollMs: s.cfg.MaxPollInterval.Milliseconds(),
		Description: inv.Description, ReturnURL: inv.RedirectURL, Brand: c.text("brand"), Langs: c.links(),
	}
	if inv.Status == domain.StatusConfirming || inv.Status == domain.StatusPaid {
		if extra := inv.AmountReceived.Sub(inv.PayAmount); extra.IsPositive() {
			p.Overpaid = extra.String()
		}
	}
	for _, pay := range inv.Payments {
		p.Payments = append(p.Payments, paymentView{TxID: pay.TxID, Short: shorten(pay.TxID), Amount: pay.Amount.String(),
			Confirmations: shownConfirmations(pay.Confirmations, inv.RequiredConfirmations), Status: pay.Status})
	}
	if inv.Price != nil {
		amount := inv.Price.Amount.String()
		if f, err := fiats.Lookup(inv.Price.Currency); err == nil {
			amount = inv.Price.Amount.Decimal().StringFixed(f.Decimals) // 19.90, not 19.9
		}
		p.FiatPrice = amount + " " + inv.Price.Currency
	}
	// An asset no longer configured still gets its page, only without the
	// network name and QR code: the amount and address are what matter.
	a, err := s.cfg.Assets.Lookup(inv.Asset)
	if err != nil {
		s.log.Warn("web: checkout for an asset that is not configured", "invoice_id", inv.ID, "asset", inv.Asset)
		return p
	}
	p.AssetName, p.Contract, p.Decimals = a.Name, a.Contract, a.Decimals
	p.ExplorerTx = s.cfg.Explorers[a.Chain]
	for i := range p.Payments {
		p.Payments[i].URL = s.cfg.Explorers.TxURL(a.Chain, p.Payments[i].TxID)
	}
	p.Network = c.text("network." + string(a.Chain))
	if !a.Native() {
		p.Network += " (" + c.text("token_standard."+string(a.Chain)) + ")"
	}
	uri, err := WalletURI(a, inv.PayAddress, sendAmount(inv), s.cfg.EthereumChainID)
	if err != nil {
		s.log.Warn("web: checkout without a QR code", "invoice_id", inv.ID, "err", err)
		return p
	}
	qr, err := qrSVG(uri, c.text("checkout.qr_title"))
	if err != nil {
		s.log.Warn("web: checkout without a QR code", "invoice_id", inv.ID, "err", err)
		return p
	}
	p.WalletURI, p.QR = template.URL(uri), qr
	return p
}

// shorten keeps the head and tail of a long id or address, which is what
// people compare: 0x5c1e0f…4b3c2d1e.
func shorten(s string) string {
	if len(s) <= 20 {
		return s
	}
	return s[:10] + "…" + s[len(s)-8:]
}

// payRequestJSON is the pay screen's request for the current amount due.
type payRequestJSON struct {
	AmountDue  string  `json:"amount_due"`
	SendAmount string  `json:"send_amount"`
	WalletURI  *string `json:"wallet_uri"` // null: the asset is not configured
	QR         *qrJSON `json:"qr"`
}

type qrJSON struct {
	Size int    `json:"size"` // modules per side, quiet zone included
	Path string `json:"path"` // the dark runs, an SVG path's d
}

// paymentRequest is GET /pay/request/{id}: the amount to send with its
// wallet URI and QR code, which checkout.js fetches to redraw them in place
// when a payment changes the amount due. Building them here keeps one
// implementation of the URI and QR code, in Go.
func (s *site) paymentRequest(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !validInvoiceID(id) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
		return
	}
	inv, err := s.cfg.Invoices.InvoiceByID(r.Context(), "", id)
	if isNotFound(err) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not_found"})
		return
	}
	if err != nil {
		s.log.ErrorContext(r.Context(), "web: payment request: read invoice", "invoice_id", id, "err", err)
		w.Header().Set("Retry-After", "5")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "unavailable"})
		return
	}
	amount := sendAmount(inv)
	out := payRequestJSON{AmountDue: inv.AmountDue().String(), SendAmount: amount.String()}
	if a, err := s.cfg.Assets.Lookup(inv.Asset); err == nil {
		if uri, err := WalletURI(a, inv.PayAddress, amount, s.cfg.EthereumChainID); err == nil {
			out.WalletURI = &uri
			if size, d, err := qrPath(uri); err == nil {
				out.QR = &qrJSON{Size: size, Path: d}
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// validInvoiceID accepts what commands.NewIDGenerator makes (inv_ and
// Crockford base32), loosely: the store decides whether it exists. Junk is
// answered 404 without a query.
func validInvoiceID(id string) bool {
	rest, ok := strings.CutPrefix(id, "inv_")
	if !ok || rest == "" || len(rest) > 64 {
		return false
	}
	for _, c := range rest {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}

// shownConfirmations is a count as the checkout shows it, "N of M": the
// API counts on past M until the payment is final, the customer needs no
// more than M.
func shownConfirmations(n, required int) int {
	if required > 0 {
		return min(n, required)
	}
	return n
}
