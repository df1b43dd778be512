package domain

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/shopspring/decimal"
)

// Fiat is a currency an invoice may be priced in (price_currency). Fiat
// currencies are data (fiats.json), as assets are: the price oracle quotes
// each asset in them.
type Fiat struct {
	Code     string `json:"code"`
	Name     string `json:"name"`
	Decimals int32  `json:"decimals"` // of a price_amount: 2 for cents
}

// Fiats is the list of supported fiat currencies by code.
type Fiats map[string]Fiat

//go:embed fiats.json
var defaultFiatsJSON []byte

// DefaultFiats returns the built-in fiat currencies (USD, EUR).
func DefaultFiats() Fiats {
	var list []Fiat
	if err := json.Unmarshal(defaultFiatsJSON, &list); err != nil {
		panic("domain: built-in fiats.json: " + err.Error())
	}
	out := Fiats{}
	for _, f := range list {
		out[f.Code] = f
	}
	return out
}

// Lookup finds a fiat currency by its exact code. Errors: ErrValidation.
func (f Fiats) Lookup(code string) (Fiat, error) {
	if c, ok := f[code]; ok {
		return c, nil
	}
	codes := make([]string, 0, len(f))
	for c := range f {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	return Fiat{}, fmt.Errorf("%w: price_currency must be one of %s", ErrValidation, strings.Join(codes, ", "))
}

// FiatToAsset is the asset amount of price at rate (price currency per
// one unit of the asset): price ÷ rate rounded UP to the asset's smallest
// unit, computed exactly, so the amount is never worth less than the price.
// Errors: ErrPriceUnavailable (a rate that is not positive).
func FiatToAsset(price Amount, rate decimal.Decimal, decimals int32) (Amount, error) {
	if !rate.IsPositive() {
		return Amount{}, fmt.Errorf("%w: rate %s is not positive", ErrPriceUnavailable, rate)
	}
	// units = ceil(price × 10^decimals ÷ rate), in exact rationals.
	q := new(big.Rat).Quo(price.Decimal().Rat(), rate.Rat())
	q.Mul(q, new(big.Rat).SetInt(new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(decimals)), nil)))
	units, rem := new(big.Int).QuoRem(q.Num(), q.Denom(), new(big.Int))
	if rem.Sign() > 0 {
		units.Add(units, big.NewInt(1))
	}
	return FromBaseUnits(units, decimals), nil
}
