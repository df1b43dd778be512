package httpapi

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/readapi"
)

type createRefundRequest struct {
	Amount    *amountString `json:"amount"`
	ToAddress string        `json:"to_address"`
}

// createRefund is POST /v1/invoices/{id}/refunds: sends exactly amount
// (default: what is left of the invoice's net) in the invoice's asset to
// to_address; the network fee is the merchant's, on top. Over what the
// invoice received is 409 invalid_state, nothing available 409
// insufficient_funds, a bad address 400.
func (s *server) createRefund(w http.ResponseWriter, r *http.Request) {
	var req createRefundRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.ToAddress == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "to_address is required"))
		return
	}
	amount := ""
	if req.Amount != nil {
		amount = string(*req.Amount)
		if amount == "" {
			s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_amount", "amount must be a decimal string, or left out for the whole net"))
			return
		}
	}
	res, err := s.d.Commands.RequestPayout.Refund(r.Context(), commands.RequestRefund{CommandID: s.commandID(r) + "/refund",
		MerchantID: mustPrincipal(r).merchantID, InvoiceID: chi.URLParam(r, "id"), Amount: amount, ToAddress: req.ToAddress})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.readable(w, r, res.Position) {
		return
	}
	writeJSON(w, http.StatusCreated, renderPayout(payoutFromEvent(res.Payout, res.Ref)))
}

// listRefunds is GET /v1/invoices/{id}/refunds: the invoice's refunds,
// newest first; another merchant's invoice is 404.
func (s *server) listRefunds(w http.ResponseWriter, r *http.Request) {
	merchantID, id := mustPrincipal(r).merchantID, chi.URLParam(r, "id")
	if _, err := s.d.Reader.InvoiceByID(r.Context(), merchantID, id); err != nil {
		s.writeError(w, r, err)
		return
	}
	f := readapi.PayoutFilter{Limit: maxListLimit, RefundsOf: id, StartingAfter: r.URL.Query().Get("starting_after")}
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "limit must be an integer between 1 and 100"))
			return
		}
		f.Limit = n
	}
	page, more, err := s.d.Reader.ListPayouts(r.Context(), merchantID, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := payoutListJSON{Data: make([]payoutJSON, 0, len(page)), HasMore: more}
	for _, p := range page {
		out.Data = append(out.Data, renderPayout(p))
	}
	writeJSON(w, http.StatusOK, out)
}
