package httpapi

import (
	"context"
	"net/http"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
)

// balanceJSON is one asset's balance. usd_value is the available amount at
// the oracle's current USD price, to the cent; null when no fresh price
// exists (never a guess).
type balanceJSON struct {
	Asset     string  `json:"asset"`
	Available string  `json:"available"`
	Pending   string  `json:"pending"`
	USDValue  *string `json:"usd_value"`
}

type listJSON[T any] struct {
	Data []T `json:"data"`
}

// getBalance is GET /v1/balance: one asset with ?asset=, else all of them.
func (s *server) getBalance(w http.ResponseWriter, r *http.Request) {
	code := r.URL.Query().Get("asset")
	if code != "" {
		if _, err := s.d.Assets.Lookup(code); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	balances, err := s.d.Reader.Balances(r.Context(), mustPrincipal(r).merchantID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	all := s.renderBalances(r.Context(), balances)
	if code == "" {
		writeJSON(w, http.StatusOK, listJSON[balanceJSON]{Data: all})
		return
	}
	for _, b := range all {
		if b.Asset == code {
			writeJSON(w, http.StatusOK, b)
			return
		}
	}
	writeJSON(w, http.StatusOK, balanceJSON{Asset: code, Available: "0", Pending: "0"}) // unreachable: every supported asset is listed
}

// renderBalances lists every supported asset, zero where the merchant has
// nothing yet (a dashboard shows the full list), then any asset the read
// model still holds that is no longer configured, so no money is hidden.
func (s *server) renderBalances(ctx context.Context, balances []readapi.Balance) []balanceJSON {
	byAsset := make(map[string]readapi.Balance, len(balances))
	for _, b := range balances {
		byAsset[b.Asset] = b
	}
	var out []balanceJSON
	for _, a := range s.d.Assets.List() {
		b := byAsset[a.Code]
		out = append(out, balanceJSON{Asset: a.Code, Available: b.Available.String(), Pending: b.Pending.String(),
			USDValue: s.usdValue(ctx, a.Code, b.Available)})
		delete(byAsset, a.Code)
	}
	for _, b := range balances {
		if _, left := byAsset[b.Asset]; left {
			out = append(out, balanceJSON{Asset: b.Asset, Available: b.Available.String(), Pending: b.Pending.String(),
				USDValue: s.usdValue(ctx, b.Asset, b.Available)})
		}
	}
	return out
}

// usdValue is amount at the oracle's USD price, rounded half-up to the
// cent; nil without a fresh price.
func (s *server) usdValue(ctx context.Context, asset string, amount domain.Amount) *string {
	if s.d.Prices == nil {
		return nil
	}
	q, err := s.d.Prices.Price(ctx, asset, "USD")
	if err != nil {
		return nil
	}
	v := amount.Decimal().Mul(q.Rate).Round(2).StringFixed(2)
	return &v
}

// totalUSD sums the balances' USD values; nil when one that holds money
// has no price (a total missing a part would mislead).
func totalUSD(balances []balanceJSON) *string {
	total := domain.Amount{}
	for _, b := range balances {
		if b.USDValue == nil {
			if b.Available != "0" {
				return nil
			}
			continue
		}
		total = total.Add(domain.MustAmount(*b.USDValue))
	}
	v := total.Decimal().StringFixed(2)
	return &v
}
