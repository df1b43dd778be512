package readapi

import (
	"sort"

	"github.com/acceptcryptohere/gateway/domain"
)

// InvoiceJSON is the invoice exactly as the API and webhooks show it. It is
// defined once here so that GET /v1/invoices/{id} and a webhook's data are
// the same document.
type InvoiceJSON struct {
	ID                    string          `json:"id"`
	Object                string          `json:"object"`
	Asset                 string          `json:"asset"`
	Status                domain.Status   `json:"status"`
	PayAddress            string          `json:"pay_address"`
	PayAmount             domain.Amount   `json:"pay_amount"`
	Amount                domain.Amount   `json:"amount"`
	Fee                   domain.Amount   `json:"fee"`
	FeeBps                int64           `json:"fee_bps"`
	SettleAsset           *string         `json:"settle_asset"`
	Settlement            *SettlementJSON `json:"settlement"`
	OrderID               *string         `json:"order_id"`
	AmountReceived        domain.Amount   `json:"amount_received"`
	AmountDue             domain.Amount   `json:"amount_due"`
	Confirmations         int             `json:"confirmations"`
	RequiredConfirmations int             `json:"required_confirmations"`
	Payments              []PaymentJSON   `json:"payments"`
	CreatedAt             int64           `json:"created_at"` // Unix ms
	ExpiresAt             int64           `json:"expires_at"` // Unix ms
	PaidAt                *int64          `json:"paid_at"`    // Unix ms
	CheckoutURL           string          `json:"checkout_url"`

	// CreatedBy is "secret_key" or "publishable_key": what the public
	// publishable key created is never taken for the merchant's own.
	CreatedBy domain.CreatedBy `json:"created_by"`

	// The merchant's details (issue #19): null, {} and null when not set.
	Description *string           `json:"description"`
	Metadata    map[string]string `json:"metadata"`
	RedirectURL *string           `json:"redirect_url"`
	// Price is the fiat price the invoice was created from; null when it
	// was created in its asset.
	Price *PriceJSON `json:"price"`
	// Refunds are the invoice's refunds, oldest first ([] when none). The
	// API fills them from the payouts read model (WithRefunds); a webhook's
	// data is the invoice as its own event stream stands and leaves the key
	// out (nil): invoice.refunded carries its refund, and GET
	// /v1/invoices/{id} or /v1/invoices/{id}/refunds the current list.
	Refunds *[]RefundJSON `json:"refunds,omitempty"`
}

// RefundJSON is one refund as the invoice lists it; the full payout is at
// /v1/invoices/{id}/refunds.
type RefundJSON struct {
	ID         string        `json:"id"`
	Amount     domain.Amount `json:"amount"`
	Status     string        `json:"status"`
	NetworkFee *string       `json:"network_fee"` // null until signed
	TxID       *string       `json:"txid"`        // null until sent
	CreatedAt  int64         `json:"created_at"`  // Unix ms
}

// WithRefunds sets the invoice's refunds (any order; listed oldest first,
// [] when none). A signed refund shows as requested, as in the payouts API.
func (out InvoiceJSON) WithRefunds(refunds []Payout) InvoiceJSON {
	list := make([]RefundJSON, 0, len(refunds))
	for _, p := range refunds {
		status := p.Status
		if status == domain.PayoutSignedStatus {
			status = domain.PayoutRequestedStatus // signed is internal: not yet on any node
		}
		r := RefundJSON{ID: p.ID, Amount: p.Amount, Status: string(status), CreatedAt: p.CreatedAt.UnixMilli()}
		if p.NetworkFee != nil {
			f := p.NetworkFee.String()
			r.NetworkFee = &f
		}
		if status == domain.PayoutSentStatus || status == domain.PayoutConfirmedStatus {
			r.TxID = optional(p.TxID)
		}
		list = append(list, r)
	}
	sort.SliceStable(list, func(i, j int) bool {
		if list[i].CreatedAt != list[j].CreatedAt {
			return list[i].CreatedAt < list[j].CreatedAt
		}
		return list[i].ID < list[j].ID
	})
	out.Refunds = &list
	return out
}

// PriceJSON is an invoice's fiat price: amount in currency, at rate
// (currency per one unit of the asset) from source, as of rate_at (Unix ms).
type PriceJSON struct {
	Currency string        `json:"currency"`
	Amount   domain.Amount `json:"amount"`
	Rate     string        `json:"rate"`
	Source   string        `json:"source"`
	RateAt   int64         `json:"rate_at"`
}

// SettlementJSON is money rule 3 on the invoice; null until a conversion
// waited, happened or was given up.
type SettlementJSON struct {
	Status string  `json:"status"`
	Since  *int64  `json:"since"`
	Reason *string `json:"reason"`
}

// PaymentJSON is one payment of an invoice.
type PaymentJSON struct {
	TxID          string        `json:"txid"`
	Amount        domain.Amount `json:"amount"`
	Confirmations int           `json:"confirmations"`
	Status        string        `json:"status"`
	Late          bool          `json:"late"`
	DetectedAt    int64         `json:"detected_at"` // Unix ms
}

// JSON renders the invoice; baseURL is the public origin for checkout_url.
func (inv Invoice) JSON(baseURL string) InvoiceJSON {
	out := InvoiceJSON{
		ID: inv.ID, Object: "invoice", Asset: inv.Asset, Status: inv.Status, PayAddress: inv.PayAddress,
		PayAmount: inv.PayAmount, Amount: inv.Amount, Fee: inv.Fee, FeeBps: inv.FeeBps,
		SettleAsset: optional(inv.SettleAsset), OrderID: optional(inv.OrderID), CreatedBy: inv.CreatedBy, AmountReceived: inv.AmountReceived,
		AmountDue: inv.AmountDue(), Confirmations: inv.Confirmations(), RequiredConfirmations: inv.RequiredConfirmations,
		Payments:  make([]PaymentJSON, 0, len(inv.Payments)),
		CreatedAt: inv.CreatedAt.UnixMilli(), ExpiresAt: inv.ExpiresAt.UnixMilli(),
		CheckoutURL: baseURL + "/pay/" + inv.ID,
	}
	for _, p := range inv.Payments {
		out.Payments = append(out.Payments, PaymentJSON{TxID: p.TxID, Amount: p.Amount, Confirmations: p.Confirmations,
			Status: p.Status, Late: p.Late, DetectedAt: p.DetectedAt.UnixMilli()})
	}
	out.Description, out.RedirectURL, out.Metadata = optional(inv.Description), optional(inv.RedirectURL), inv.Metadata
	if out.Metadata == nil {
		out.Metadata = map[string]string{}
	}
	if p := inv.Price; p != nil {
		out.Price = &PriceJSON{Currency: p.Currency, Amount: p.Amount, Rate: p.Rate.String(), Source: p.Source, RateAt: p.RateAt.UnixMilli()}
	}
	if out.CreatedBy == "" { // as an event from before created_by reads
		out.CreatedBy = domain.CreatedBySecretKey
	}
	if inv.PaidAt != nil {
		ms := inv.PaidAt.UnixMilli()
		out.PaidAt = &ms
	}
	if st := inv.Settlement; st.Status != "" {
		out.Settlement = &SettlementJSON{Status: st.Status, Reason: optional(st.Reason)}
		if st.Since != nil {
			ms := st.Since.UnixMilli()
			out.Settlement.Since = &ms
		}
	}
	return out
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// InvoiceFromEvents folds an invoice's stream (or a prefix of it) into the
// shape the read model has after the same events. Webhooks use it to show
// the invoice as it was at the status change they announce.
func InvoiceFromEvents(evs []domain.Event) (Invoice, error) {
	var inv Invoice
	index := map[string]int{}
	for _, ev := range evs {
		switch e := ev.(type) {
		case domain.InvoiceCreated:
			inv = Invoice{ID: e.InvoiceID, MerchantID: e.MerchantID, Asset: e.Asset, Status: domain.StatusNew, Amount: e.Amount,
				PayAmount: e.PayAmount, PayAddress: e.PayAddress, Fee: e.Fee.Fee, FeeBps: e.Fee.Bps, SettleAsset: e.SettleAsset,
				OrderID: e.OrderID, CreatedBy: e.Creator(), RequiredConfirmations: e.RequiredConfirmations, CreatedAt: e.CreatedAt,
				ExpiresAt: e.ExpiresAt, UpdatedAt: e.CreatedAt,
				Description: e.Description, Metadata: e.Metadata, RedirectURL: e.RedirectURL, Price: e.Price}
		case domain.DepositDetected:
			p := Payment{DepositID: e.DepositID, TxID: e.TxID, Amount: e.Amount,
				Confirmations: e.Confirmations, Status: PaymentPending, Late: e.Late, DetectedAt: e.DetectedAt}
			if i, again := index[e.DepositID]; again { // back in a block after a reorg
				p.DetectedAt = inv.Payments[i].DetectedAt
				inv.Payments[i] = p
			} else {
				index[e.DepositID] = len(inv.Payments)
				inv.Payments = append(inv.Payments, p)
			}
			inv.AmountReceived = inv.AmountReceived.Add(e.Amount)
			inv.UpdatedAt = e.DetectedAt
		case domain.DepositConfirmed:
			p := &inv.Payments[index[e.DepositID]]
			p.Status, p.Confirmations = PaymentConfirmed, e.Confirmations
			inv.Fee, inv.FeeBps = e.Fee.Fee, e.Fee.Bps
		case domain.DepositReverted:
			inv.Payments[index[e.DepositID]].Status = PaymentReverted
			inv.AmountReceived = inv.AmountReceived.Sub(e.Amount)
			inv.UpdatedAt = e.RevertedAt
			if e.Fee != nil {
				inv.Fee = e.Fee.Fee
			}
		case domain.ConversionWaiting:
			// As the projection: a later payment's wait follows a conversion.
			if inv.Settlement.Status == "" || inv.Settlement.Status == SettlementConverted {
				since := e.Since
				inv.Settlement = Settlement{Status: SettlementWaiting, Since: &since, Reason: e.Reason}
			}
		case domain.PaymentConverted:
			if inv.Settlement.Status != SettlementUnconverted {
				inv.Settlement = Settlement{Status: SettlementConverted}
			}
		case domain.ConversionAbandoned:
			inv.Settlement = Settlement{Status: SettlementUnconverted, Reason: e.Reason}
			inv.Fee, inv.FeeBps = e.Fee.Fee, e.Fee.Bps
		case domain.InvoiceStatusChanged:
			inv.Status, inv.UpdatedAt = e.To, e.At
			if e.To == domain.StatusPaid {
				at := e.At
				inv.PaidAt = &at
			}
		}
	}
	if inv.ID == "" {
		return Invoice{}, domain.ErrNotFound
	}
	return inv, nil
}
