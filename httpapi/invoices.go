package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// publicInvoiceJSON is what the unauthenticated checkout page may see:
// nothing about the merchant, its order or its fee.
type publicInvoiceJSON struct {
	ID                    string        `json:"id"`
	Asset                 string        `json:"asset"`
	Status                domain.Status `json:"status"`
	PayAddress            string        `json:"pay_address"`
	PayAmount             string        `json:"pay_amount"`
	AmountReceived        string        `json:"amount_received"`
	AmountDue             string        `json:"amount_due"`
	ExpiresAt             int64         `json:"expires_at"`
	Confirmations         int           `json:"confirmations"`
	RequiredConfirmations int           `json:"required_confirmations"`
	// Payments carry what the checkout shows of each transaction: its id
	// (public on chain anyway) for the explorer link, and its confirmations,
	// which move block by block.
	Payments []publicPaymentJSON `json:"payments"`
}

type publicPaymentJSON struct {
	TxID          string `json:"txid"`
	Amount        string `json:"amount"`
	Confirmations int    `json:"confirmations"`
	Status        string `json:"status"`
}

type invoiceListJSON struct {
	Data    []readapi.InvoiceJSON `json:"data"`
	HasMore bool                  `json:"has_more"`
}

type createInvoiceRequest struct {
	Asset   string       `json:"asset"`
	Amount  amountString `json:"amount"`
	OrderID string       `json:"order_id"`
	// SettleAs is nil when left out; "" is refused, not taken for absent.
	SettleAs *string `json:"settle_as"`
	// ExpiresInSec is optional; the domain applies the default and the bounds.
	ExpiresInSec *int64 `json:"expires_in"`
	// PriceAmount and PriceCurrency price the invoice in fiat instead of
	// Amount (issue #19).
	PriceAmount   amountString `json:"price_amount"`
	PriceCurrency string       `json:"price_currency"`
	// The merchant's details (issue #19). Metadata is nil when left out;
	// the publishable key may set neither it nor RedirectURL.
	Description string            `json:"description"`
	Metadata    map[string]string `json:"metadata"`
	RedirectURL string            `json:"redirect_url"`
}

// Invoice list page sizes.
const (
	defaultListLimit = 10
	maxListLimit     = 100
)

// createInvoice is POST /v1/invoices (secret or publishable key). It answers
// from the command's event, and still waits for the projection so that the
// client's next GET finds the invoice.
func (s *server) createInvoice(w http.ResponseWriter, r *http.Request) {
	var req createInvoiceRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Asset == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "asset is required"))
		return
	}
	if mustPrincipal(r).kind != readapi.SecretKey && (req.Metadata != nil || req.RedirectURL != "") {
		// The publishable key is public: anyone could send a customer to
		// their own site from the shop's checkout, or forge the merchant's
		// own data (API.md, additions of 2026-12-03).
		s.writeError(w, r, errorf(http.StatusForbidden, "forbidden",
			"metadata and redirect_url may only be set with the secret key; the publishable key may set description"))
		return
	}
	settleAs, err := s.otherAsset("settle_as", req.SettleAs, req.Asset)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	res, err := s.d.Commands.CreateInvoice.Handle(r.Context(), commands.CreateInvoice{
		CommandID: s.commandID(r), MerchantID: mustPrincipal(r).merchantID,
		Asset: req.Asset, Amount: string(req.Amount), OrderID: req.OrderID, SettleAs: settleAs,
		ExpiresIn: expiresIn(req.ExpiresInSec), CreatedBy: createdBy(mustPrincipal(r)),
		Description: req.Description, Metadata: req.Metadata, RedirectURL: req.RedirectURL,
		PriceAmount: string(req.PriceAmount), PriceCurrency: req.PriceCurrency,
	})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.readable(w, r, res.Position) {
		return
	}
	inv, err := readapi.InvoiceFromEvents([]domain.Event{res.Invoice})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, s.renderInvoice(inv, nil)) // new: no refunds yet
}

// createdBy is the kind of key an invoice is marked with: the secret key's
// (a dashboard session signs in with it) only when the request proved the
// secret key; anything else is the publishable key's.
func createdBy(p principal) domain.CreatedBy {
	if p.kind == readapi.SecretKey {
		return domain.CreatedBySecretKey
	}
	return domain.CreatedByPublishableKey
}

// otherAsset checks a field naming the coin to convert into (settle_as,
// consolidate_to): left out (nil) is no conversion, otherwise it must be a
// supported asset other than asset. The same coin or "" would be a
// conversion that silently does not happen.
func (s *server) otherAsset(field string, to *string, asset string) (string, error) {
	if to == nil {
		return "", nil
	}
	if *to == "" {
		return "", errorf(http.StatusBadRequest, "validation_error", field+" must name a supported asset; leave it out for no conversion")
	}
	if _, err := s.d.Assets.Lookup(*to); err != nil {
		return "", err
	}
	if *to == asset {
		return "", errorf(http.StatusBadRequest, "validation_error", field+" must differ from asset; leave it out for no conversion")
	}
	return *to, nil
}

// expiresIn converts the request's seconds. Values out of range are clamped
// just outside the domain's bounds, so the domain's own message answers
// them, and a huge number cannot overflow a Duration.
func expiresIn(sec *int64) time.Duration {
	if sec == nil {
		return 0 // the default
	}
	maxSec := int64(domain.MaxExpiresIn / time.Second)
	switch {
	case *sec < 1:
		return time.Second
	case *sec > maxSec:
		return time.Duration(maxSec+1) * time.Second
	}
	return time.Duration(*sec) * time.Second
}

// getInvoice is GET /v1/invoices/{id}; another merchant's invoice is 404.
func (s *server) getInvoice(w http.ResponseWriter, r *http.Request) {
	merchantID, id := mustPrincipal(r).merchantID, chi.URLParam(r, "id")
	// The refunds are read beside the invoice, by the merchant and the id
	// asked for (they are the merchant's own payouts whatever the id): the
	// request waits for one round trip to the database instead of two.
	type refundsOf struct {
		byInvoice map[string][]readapi.Payout
		err       error
	}
	refundsRead := make(chan refundsOf, 1)
	go func() {
		m, err := s.d.Reader.RefundsOfInvoices(r.Context(), merchantID, []string{id})
		refundsRead <- refundsOf{m, err}
	}()
	inv, err := s.d.Reader.InvoiceByID(r.Context(), merchantID, id)
	refunds := <-refundsRead
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := refunds.err; err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.renderInvoice(inv, refunds.byInvoice[inv.ID]))
}

// listInvoices is GET /v1/invoices?status=&limit=&starting_after=, newest first.
func (s *server) listInvoices(w http.ResponseWriter, r *http.Request) {
	f, err := parseInvoiceFilter(r)
	if err == nil {
		err = s.parseInvoiceSearch(r.URL.Query(), &f)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	page, hasMore, err := s.d.Reader.ListInvoices(r.Context(), mustPrincipal(r).merchantID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ids := make([]string, 0, len(page))
	for _, inv := range page {
		ids = append(ids, inv.ID)
	}
	refunds, err := s.d.Reader.RefundsOfInvoices(r.Context(), mustPrincipal(r).merchantID, ids)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := invoiceListJSON{Data: make([]readapi.InvoiceJSON, 0, len(page)), HasMore: hasMore}
	for _, inv := range page {
		out.Data = append(out.Data, s.renderInvoice(inv, refunds[inv.ID]))
	}
	writeJSON(w, http.StatusOK, out)
}

func parseInvoiceFilter(r *http.Request) (readapi.InvoiceFilter, error) {
	q := r.URL.Query()
	f := readapi.InvoiceFilter{Limit: defaultListLimit, StartingAfter: q.Get("starting_after")}
	if v := q.Get("status"); v != "" {
		st, err := domain.ParseStatus(v)
		if err != nil {
			return f, err
		}
		f.Status = st
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return f, errorf(http.StatusBadRequest, "validation_error", "limit must be an integer from 1 to "+strconv.Itoa(maxListLimit))
		}
		f.Limit = n
	}
	return f, nil
}

// publicInvoice is GET /v1/public/invoices/{id}: what the hosted checkout
// polls, without a key. Invoice ids carry 80 random bits, so they cannot be
// enumerated; the per-IP rate limit keeps anyone from trying.
func (s *server) publicInvoice(w http.ResponseWriter, r *http.Request) {
	inv, err := s.d.Reader.InvoiceByID(r.Context(), "", chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := publicInvoiceJSON{
		ID: inv.ID, Asset: inv.Asset, Status: inv.Status, PayAddress: inv.PayAddress, PayAmount: inv.PayAmount.String(),
		AmountReceived: inv.AmountReceived.String(), AmountDue: inv.AmountDue().String(), ExpiresAt: inv.ExpiresAt.UnixMilli(),
		Confirmations: inv.Confirmations(), RequiredConfirmations: inv.RequiredConfirmations,
		Payments: make([]publicPaymentJSON, 0, len(inv.Payments)),
	}
	for _, p := range inv.Payments {
		out.Payments = append(out.Payments, publicPaymentJSON{TxID: p.TxID, Amount: p.Amount.String(), Confirmations: p.Confirmations, Status: p.Status})
	}
	writeJSON(w, http.StatusOK, out)
}

// renderInvoice uses readapi's rendering, which webhooks share, so an
// invoice reads the same in a GET and in a webhook's data; the API adds
// the invoice's refunds from the payouts read model (webhooks leave the
// key out: see readapi.InvoiceJSON.Refunds).
func (s *server) renderInvoice(inv readapi.Invoice, refunds []readapi.Payout) readapi.InvoiceJSON {
	return inv.JSON(strings.TrimRight(s.cfg.BaseURL, "/")).WithRefunds(refunds)
}
