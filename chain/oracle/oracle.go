// Package oracle is the price oracle: the port commands.Prices and the
// HTTP layer use, and its adapters. Static serves configured prices (for
// offline use and tests); CoinGecko reads the public simple/price API.
// Every adapter refuses a price older than its age limit: a missing or
// stale price is domain.ErrPriceUnavailable (a 503), never a guess.
//
// Prices are kept per asset in a reference currency (USD); a pair's rate
// is base/reference ÷ quote/reference, exact to 18 decimal places.
package oracle

import (
	"context"
	"fmt"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/domain"
)

// USD is the reference currency; Price(ctx, "BTC", USD) is the USD price.
const USD = "USD"

// Oracle is the port: the price of one base in quote.
// Errors: domain.ErrPriceUnavailable.
type Oracle interface {
	Price(ctx context.Context, base, quote string) (domain.PriceQuote, error)
}

// ratePrecision is the decimals a cross rate keeps (a rate is multiplied by
// an amount of at most 18 decimals and then rounded to the target's).
const ratePrecision = 18

// usdPrice is one asset's price in USD and when its source last saw it.
type usdPrice struct {
	rate decimal.Decimal
	at   time.Time
}

// cross builds base/quote from USD prices, checking the age of both.
func cross(base, quote string, lookup func(code string) (usdPrice, bool), source string, now time.Time, maxAge time.Duration) (domain.PriceQuote, error) {
	get := func(code string) (usdPrice, error) {
		if code == USD {
			return usdPrice{rate: decimal.NewFromInt(1), at: now}, nil
		}
		p, ok := lookup(code)
		if !ok || !p.rate.IsPositive() {
			return usdPrice{}, fmt.Errorf("%w: no %s price from %s", domain.ErrPriceUnavailable, code, source)
		}
		if age := now.Sub(p.at); maxAge > 0 && age > maxAge {
			return usdPrice{}, fmt.Errorf("%w: the %s price from %s is %s old (limit %s)", domain.ErrPriceUnavailable, code, source,
				age.Round(time.Second), maxAge)
		}
		return p, nil
	}
	b, err := get(base)
	if err != nil {
		return domain.PriceQuote{}, err
	}
	q, err := get(quote)
	if err != nil {
		return domain.PriceQuote{}, err
	}
	at := b.at
	if q.at.Before(at) {
		at = q.at // a pair is as old as its older side
	}
	rate := b.rate
	if quote != USD {
		rate = b.rate.DivRound(q.rate, ratePrecision)
	}
	if base == quote {
		rate = decimal.NewFromInt(1)
	}
	return domain.PriceQuote{Base: base, Quote: quote, Rate: rate, Source: source, At: at.UTC()}, nil
}

// Static serves fixed USD prices, as of At (by default the time of each
// call, so they never go stale). For offline use, demos and tests.
type Static struct {
	// USD maps an asset code to its price in USD.
	USD map[string]decimal.Decimal
	// At, when set, is when the prices were taken; with MaxAge they go stale.
	At     time.Time
	MaxAge time.Duration
	Now    func() time.Time
}

var _ Oracle = Static{}

// ParseStatic reads prices such as {"BTC":"67000.12","ETH":"3500"}
// (decimal strings, never JSON numbers).
func ParseStatic(prices map[string]string) (Static, error) {
	s := Static{USD: map[string]decimal.Decimal{}}
	for code, v := range prices {
		d, err := decimal.NewFromString(v)
		if err != nil || !d.IsPositive() {
			return Static{}, fmt.Errorf("oracle: static price of %s: %q is not a positive decimal", code, v)
		}
		s.USD[code] = d
	}
	return s, nil
}

// Price implements Oracle. Errors: domain.ErrPriceUnavailable.
func (s Static) Price(_ context.Context, base, quote string) (domain.PriceQuote, error) {
	clock := s.Now
	if clock == nil {
		clock = time.Now
	}
	now := clock()
	at := s.At
	if at.IsZero() {
		at = now
	}
	return cross(base, quote, func(code string) (usdPrice, bool) {
		r, ok := s.USD[code]
		return usdPrice{rate: r, at: at}, ok
	}, "static", now, s.MaxAge)
}
