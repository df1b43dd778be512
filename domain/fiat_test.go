package domain

import (
	"errors"
	"testing"

	"github.com/shopspring/decimal"
)

func TestFiatLookup(t *testing.T) {
	f := DefaultFiats()
	for _, code := range []string{"USD", "EUR"} {
		c, err := f.Lookup(code)
		if err != nil || c.Code != code || c.Decimals != 2 {
			t.Errorf("%s: %+v %v", code, c, err)
		}
	}
	for _, code := range []string{"usd", "GBP", "", "BTC"} {
		if _, err := f.Lookup(code); !errors.Is(err, ErrValidation) {
			t.Errorf("%q: %v, want ErrValidation", code, err)
		}
	}
}

// TestFiatToAsset: the asset amount is the price at the rate, rounded up
// to the asset's smallest unit, exactly (no float, no rounding of the
// quotient before the ceiling).
func TestFiatToAsset(t *testing.T) {
	tests := []struct {
		price, rate string
		decimals    int32
		want        string
	}{
		{"49.99", "60000", 8, "0.00083317"}, // 0.000833166… up
		{"60000", "60000", 8, "1"},          // exact
		{"0.01", "60000", 8, "0.00000017"},  // 0.000000166… up
		{"49.99", "3000", 18, "0.016663333333333334"},
		{"49.99", "1", 6, "49.99"},
		{"10", "0.3", 6, "33.333334"},
		{"10", "1.000000000000000001", 6, "10"}, // 9.99999999999999999… up
		{"100", "1.08", 6, "92.592593"},
	}
	for _, tt := range tests {
		got, err := FiatToAsset(MustAmount(tt.price), decimal.RequireFromString(tt.rate), tt.decimals)
		if err != nil || got.String() != tt.want {
			t.Errorf("%s at %s (%d): %v %v, want %s", tt.price, tt.rate, tt.decimals, got, err, tt.want)
		}
		// Never less than the price: amount × rate >= price.
		if got.Decimal().Mul(decimal.RequireFromString(tt.rate)).LessThan(decimal.RequireFromString(tt.price)) {
			t.Errorf("%s at %s: %s is worth less than the price", tt.price, tt.rate, got)
		}
	}
	for _, rate := range []string{"0", "-1"} {
		if _, err := FiatToAsset(MustAmount("1"), decimal.RequireFromString(rate), 8); !errors.Is(err, ErrPriceUnavailable) {
			t.Errorf("rate %s: %v, want ErrPriceUnavailable", rate, err)
		}
	}
}
