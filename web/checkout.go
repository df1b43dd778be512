package web

import (
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
	Missing        string // pay_amount - amount_received, when partially paid
	Confirmations  int
	Required       int

	ExpiresAtMs int64
	NowMs       int64 // server clock, so the countdown ignores a wrong client clock
	PollMs      int64
	MaxPollMs   int64

	// WalletURI is trusted: WalletURI builds it from checked parts, and
	// html/template would otherwise refuse its bitcoin:/ethereum:/tron: scheme.
	WalletURI template.URL
	QR        template.HTML
}

// screen names which of the page's screens the status shows.
func (p checkoutPage) Screen() string {
	switch p.Status {
	case domain.StatusConfirming, domain.StatusPaid, domain.StatusExpired:
		return string(p.Status)
	}
	return "pay" // new and partially_paid
}

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
	s.render(w, r, http.StatusOK, "checkout.html", s.checkoutPage(c, inv))
}

func (s *site) checkoutPage(c catalog, inv readapi.Invoice) checkoutPage {
	p := checkoutPage{
		Lang: c.lang, T: c, I18N: c.JSON(), Version: assetVersion, Static: "/pay/static/",
		ID: inv.ID, Asset: inv.Asset, AssetName: inv.Asset, Network: inv.Asset, Status: inv.Status,
		PayAmount: inv.PayAmount.String(), PayAddress: inv.PayAddress, AmountReceived: inv.AmountReceived.String(),
		Confirmations: inv.Confirmations(), Required: inv.RequiredConfirmations,
		ExpiresAtMs: inv.ExpiresAt.UnixMilli(), NowMs: s.cfg.Now().UnixMilli(),
		PollMs: s.cfg.PollInterval.Milliseconds(), MaxPollMs: s.cfg.MaxPollInterval.Milliseconds(),
	}
	if missing := inv.PayAmount.Sub(inv.AmountReceived); missing.IsPositive() {
		p.Missing = missing.String()
	} else {
		p.Missing = "0"
	}
	// An asset no longer configured still gets its page, only without the
	// network name and QR code: the amount and address are what matter.
	a, err := s.cfg.Assets.Lookup(inv.Asset)
	if err != nil {
		s.log.Warn("web: checkout for an asset that is not configured", "invoice_id", inv.ID, "asset", inv.Asset)
		return p
	}
	p.AssetName, p.Contract, p.Decimals = a.Name, a.Contract, a.Decimals
	p.Network = c.text("network." + string(a.Chain))
	if !a.Native() {
		p.Network += " (" + c.text("token_standard."+string(a.Chain)) + ")"
	}
	uri, err := WalletURI(a, inv.PayAddress, inv.PayAmount, s.cfg.EthereumChainID)
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
