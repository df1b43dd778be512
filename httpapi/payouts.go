package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// payoutJSON is a payout: an instant one, a withdrawal or a refund. txid is null
// until the transaction is broadcast; network_fee and sent_amount once it
// is signed. Amounts are before the network fee (net_of_network_fee: false).
type payoutJSON struct {
	ID              string            `json:"id"`
	Object          string            `json:"object"`
	Asset           string            `json:"asset"`
	Kind            domain.PayoutKind `json:"kind"`
	Status          string            `json:"status"`
	Amount          string            `json:"amount"`
	NetworkFee      *string           `json:"network_fee"`
	SentAmount      *string           `json:"sent_amount"`
	NetOfNetworkFee bool              `json:"net_of_network_fee"`
	ToAddress       string            `json:"to_address"`
	TxID            *string           `json:"txid"`
	SourceInvoiceID *string           `json:"source_invoice_id"`
	// InvoiceID is the refunded invoice (kind refund only).
	InvoiceID     *string `json:"invoice_id,omitempty"`
	FailureReason *string `json:"failure_reason"`
	CreatedAt     int64   `json:"created_at"`
	SentAt        *int64  `json:"sent_at"`
	ConfirmedAt   *int64  `json:"confirmed_at"`
	FailedAt      *int64  `json:"failed_at"`
	// Conversion is set on a withdrawal that converted first (consolidate_to).
	Conversion *conversionJSON `json:"conversion,omitempty"`
}

type payoutListJSON struct {
	Data    []payoutJSON `json:"data"`
	HasMore bool         `json:"has_more"`
}

func renderPayout(p readapi.Payout) payoutJSON {
	status := p.Status
	if status == domain.PayoutSignedStatus {
		status = domain.PayoutRequestedStatus // signed is internal: not yet on any node
	}
	out := payoutJSON{ID: p.ID, Object: "payout", Asset: p.Asset, Kind: p.Kind, Status: string(status), Amount: p.Amount.String(),
		ToAddress: p.ToAddress, SourceInvoiceID: nullable(p.SourceInvoiceID), FailureReason: nullable(p.FailureReason),
		CreatedAt: p.CreatedAt.UnixMilli(), SentAt: msPtr(p.SentAt), ConfirmedAt: msPtr(p.ConfirmedAt), FailedAt: msPtr(p.FailedAt)}
	if p.Kind == domain.PayoutKindRefund {
		// The customer receives exactly amount; the network fee is the
		// merchant's, on top.
		out.InvoiceID, out.NetOfNetworkFee = nullable(p.SourceInvoiceID), true
	}
	if p.NetworkFee != nil {
		f, s := p.NetworkFee.String(), p.Sent.String()
		out.NetworkFee, out.SentAmount = &f, &s
	}
	if status == domain.PayoutSentStatus || status == domain.PayoutConfirmedStatus {
		out.TxID = nullable(p.TxID)
	}
	return out
}

// payoutFromEvent renders a payout just requested.
func payoutFromEvent(e domain.PayoutRequested, ref commands.PayoutRef) readapi.Payout {
	return readapi.Payout{ID: e.PayoutID, MerchantID: e.MerchantID, Asset: e.Asset, Kind: e.Kind, Amount: e.Amount, ToAddress: e.ToAddress,
		Status: domain.PayoutRequestedStatus, SourceInvoiceID: e.SourceInvoiceID, RequestVersion: ref.RequestVersion,
		CreatedAt: e.RequestedAt, UpdatedAt: e.RequestedAt}
}

type createWithdrawalRequest struct {
	Asset     string        `json:"asset"`
	Amount    *amountString `json:"amount"`
	ToAddress string        `json:"to_address"`
	// ConsolidateTo is nil when left out; "" is refused, not taken for absent.
	ConsolidateTo *string `json:"consolidate_to"`
}

// createWithdrawal is POST /v1/withdrawals: pays out amount (or the whole
// available balance) of asset to to_address (or the configured
// payout_address). With consolidate_to, the amount is first converted
// into that coin at the oracle's price (the other 25 bps, money rule 2) and the conversion's net
// is paid out in it. The balance is reserved at once: a second withdrawal
// of the same funds is 409 insufficient_funds.
func (s *server) createWithdrawal(w http.ResponseWriter, r *http.Request) {
	var req createWithdrawalRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.Asset == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "asset is required"))
		return
	}
	if _, err := s.d.Assets.Lookup(req.Asset); err != nil {
		s.writeError(w, r, err)
		return
	}
	consolidateTo, err := s.otherAsset("consolidate_to", req.ConsolidateTo, req.Asset)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	amount := ""
	if req.Amount != nil {
		amount = string(*req.Amount)
		if amount == "" {
			s.writeError(w, r, errorf(http.StatusBadRequest, "invalid_amount", "amount must be a decimal string, or left out for the whole balance"))
			return
		}
	}
	merchantID, cmd := mustPrincipal(r).merchantID, s.commandID(r)
	asset := req.Asset
	var conv *conversionJSON
	pay := commands.RequestPayout{CommandID: cmd + "/payout", MerchantID: merchantID, Asset: asset, Amount: amount,
		ToAddress: req.ToAddress, Kind: domain.PayoutKindWithdrawal}
	if consolidateTo != "" {
		// Refuse before converting: a conversion without a payout to follow
		// would leave the merchant holding a coin it did not ask for.
		if req.ToAddress == "" {
			acc, err := s.d.Reader.Account(r.Context(), merchantID)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			configured := false
			for _, ps := range acc.PayoutSettings {
				configured = configured || (ps.Asset == consolidateTo && ps.PayoutAddress != "")
			}
			if !configured {
				s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error",
					"no to_address given and no payout_address configured for "+consolidateTo))
				return
			}
		}
		c, err := s.d.Commands.Convert.Handle(r.Context(), commands.Convert{CommandID: cmd + "/convert", MerchantID: merchantID,
			From: asset, To: consolidateTo, Amount: amount, Reason: domain.ConversionWithdrawal})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		cj := renderConversion(c.Conversion)
		conv = &cj
		pay.Asset, pay.Amount, pay.AtLeast = consolidateTo, c.Conversion.Net.String(), c.Position
	}
	res, err := s.d.Commands.RequestPayout.Handle(r.Context(), pay)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.readable(w, r, res.Position) {
		return
	}
	out := renderPayout(payoutFromEvent(res.Payout, res.Ref))
	out.Conversion = conv
	writeJSON(w, http.StatusCreated, out)
}

// listPayouts is GET /v1/payouts: newest first, paged like invoices.
func (s *server) listPayouts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := readapi.PayoutFilter{Limit: defaultListLimit, StartingAfter: q.Get("starting_after")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "limit must be an integer between 1 and 100"))
			return
		}
		f.Limit = n
	}
	switch st := domain.PayoutStatus(q.Get("status")); st {
	case "", domain.PayoutRequestedStatus, domain.PayoutSentStatus, domain.PayoutConfirmedStatus, domain.PayoutFailedStatus, domain.PayoutCanceledStatus:
		f.Status = st
	default:
		s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "status must be requested, sent, confirmed, failed or canceled"))
		return
	}
	page, more, err := s.d.Reader.ListPayouts(r.Context(), mustPrincipal(r).merchantID, f)
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

// getPayout is GET /v1/payouts/{id}; another merchant's payout is 404.
func (s *server) getPayout(w http.ResponseWriter, r *http.Request) {
	p, err := s.d.Reader.PayoutByID(r.Context(), mustPrincipal(r).merchantID, chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, renderPayout(p))
}

// cancelPayout is POST /v1/payouts/{id}/cancel: a payout nothing was
// signed for yet (it shows requested) is canceled and its funds released;
// it answers the payout, now canceled. Canceling it again answers the same.
// Once signed (it may be on its way) it is 409 invalid_state; another
// merchant's payout is 404.
func (s *server) cancelPayout(w http.ResponseWriter, r *http.Request) {
	if err := decodeJSON(r, &struct{}{}, true); err != nil {
		s.writeError(w, r, err)
		return
	}
	merchantID := mustPrincipal(r).merchantID
	p, err := s.d.Reader.PayoutByID(r.Context(), merchantID, chi.URLParam(r, "id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	// The command decides on the payout's log, not on this read: a payout
	// the processor signed a moment ago is refused.
	res, err := s.d.Commands.CancelPayout.Handle(r.Context(), commands.CancelPayout{CommandID: "cancel/" + p.ID,
		Ref: commands.PayoutRef{MerchantID: merchantID, Asset: p.Asset, PayoutID: p.ID, RequestVersion: p.RequestVersion}})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.readable(w, r, res.Position) {
		return
	}
	if p, err = s.d.Reader.PayoutByID(r.Context(), merchantID, p.ID); err != nil {
		s.writeError(w, r, err)
		return
	}
	p.Status = domain.PayoutCanceledStatus // what the log says, whether or not the read model has caught up
	writeJSON(w, http.StatusOK, renderPayout(p))
}

func msPtr(t *time.Time) *int64 {
	if t == nil {
		return nil
	}
	ms := t.UnixMilli()
	return &ms
}
