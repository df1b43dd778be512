package httpapi

import (
	"context"
	"net/http"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// Prices is the price oracle as the HTTP layer uses it (chain/oracle
// implements it). Errors: domain.ErrPriceUnavailable.
type Prices interface {
	Price(ctx context.Context, base, quote string) (domain.PriceQuote, error)
}

// quoteJSON is GET /v1/quote. to_amount is what the merchant would
// receive: the converted amount after the 50 bps conversion fee.
type quoteJSON struct {
	From       string `json:"from"`
	To         string `json:"to"`
	FromAmount string `json:"from_amount"`
	ToAmount   string `json:"to_amount"`
	Rate       string `json:"rate"`
	Fee        string `json:"fee"`
	FeeBps     int64  `json:"fee_bps"`
	Source     string `json:"source"`
	QuotedAt   int64  `json:"quoted_at"` // Unix ms: when the oracle's price was taken
}

// errNoPrices: the server runs without a price oracle.
var errNoPrices = errorf(http.StatusServiceUnavailable, "price_unavailable", "no price oracle is configured")

// getQuote is GET /v1/quote?from=&to=&amount= (secret or publishable key).
func (s *server) getQuote(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, err := s.d.Assets.Lookup(q.Get("from"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	to, err := s.d.Assets.Lookup(q.Get("to"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if from.Code == to.Code {
		s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "from and to must differ"))
		return
	}
	amount, err := domain.ParseAmount(q.Get("amount"), from.Decimals)
	if err == nil && !amount.IsPositive() {
		err = errorf(http.StatusBadRequest, "invalid_amount", "amount must be greater than 0")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if s.d.Prices == nil {
		s.writeError(w, r, errNoPrices)
		return
	}
	price, err := s.d.Prices.Price(r.Context(), from.Code, to.Code)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	calc, err := domain.QuoteConversion(amount, price.Rate, to, domain.ConversionFeeBps)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, quoteJSON{From: from.Code, To: to.Code, FromAmount: amount.String(), ToAmount: calc.Net.String(),
		Rate: price.Rate.String(), Fee: calc.Fee.Fee.String(), FeeBps: calc.Fee.Bps, Source: "price-oracle", QuotedAt: price.At.UnixMilli()})
}

// conversionJSON is one conversion (POST /v1/consolidate, withdrawals
// with consolidate_to).
type conversionJSON struct {
	ID         string `json:"id"`
	Object     string `json:"object"`
	From       string `json:"from"`
	FromAmount string `json:"from_amount"`
	To         string `json:"to"`
	ToAmount   string `json:"to_amount"` // received, after the fee
	Fee        string `json:"fee"`
	FeeBps     int64  `json:"fee_bps"`
	Rate       string `json:"rate"`
	Source     string `json:"source"`
	QuotedAt   int64  `json:"quoted_at"`
	CreatedAt  int64  `json:"created_at"`
}

func renderConversion(c domain.ConversionExecuted) conversionJSON {
	return conversionJSON{ID: c.ConversionID, Object: "conversion", From: c.From, FromAmount: c.FromAmount.String(), To: c.To,
		ToAmount: c.Net.String(), Fee: c.Fee.Fee.String(), FeeBps: c.Fee.Bps, Rate: c.Rate.String(), Source: "price-oracle",
		QuotedAt: c.QuotedAt.UnixMilli(), CreatedAt: c.ExecutedAt.UnixMilli()}
}

type consolidateRequest struct {
	To string `json:"to"`
}

type consolidatedJSON struct {
	To          string           `json:"to"`
	Conversions []conversionJSON `json:"conversions"`
	Balance     balanceJSON      `json:"balance"`
}

// consolidate is POST /v1/consolidate {to}: converts every other available
// balance into one coin at the oracle's price (50 bps each).
func (s *server) consolidate(w http.ResponseWriter, r *http.Request) {
	var req consolidateRequest
	if err := decodeJSON(r, &req, false); err != nil {
		s.writeError(w, r, err)
		return
	}
	if req.To == "" {
		s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "to is required"))
		return
	}
	merchantID := mustPrincipal(r).merchantID
	res, err := s.d.Commands.Consolidate.Handle(r.Context(), commands.Consolidate{CommandID: s.commandID(r), MerchantID: merchantID, To: req.To})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !s.readable(w, r, res.Position) {
		return
	}
	out := consolidatedJSON{To: req.To, Conversions: make([]conversionJSON, 0, len(res.Conversions))}
	for _, c := range res.Conversions {
		out.Conversions = append(out.Conversions, renderConversion(c))
	}
	balances, err := s.d.Reader.Balances(r.Context(), merchantID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	for _, b := range s.renderBalances(r.Context(), balances) {
		if b.Asset == req.To {
			out.Balance = b
		}
	}
	writeJSON(w, http.StatusOK, out)
}
