package oracle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/domain"
)

// CoinGeckoURL is the public API's origin.
const CoinGeckoURL = "https://api.coingecko.com"

// DefaultCoinGeckoIDs maps the built-in assets to CoinGecko coin ids.
func DefaultCoinGeckoIDs() map[string]string {
	return map[string]string{"BTC": "bitcoin", "ETH": "ethereum", "USDT.ETH": "tether", "USDT.TRON": "tether", "TRX": "tron"}
}

// CoinGeckoConfig configures the CoinGecko adapter. Zero values get the
// defaults noted.
type CoinGeckoConfig struct {
	BaseURL string            // default CoinGeckoURL
	IDs     map[string]string // asset code → coin id (default DefaultCoinGeckoIDs)
	APIKey  string            // sent as x-cg-demo-api-key when set
	// MaxAge refuses prices whose last_updated_at is older (default 10 min).
	MaxAge time.Duration
	// Refresh is how long one answer is reused (default 30 s): the public
	// API is rate-limited, and a price is not fresher for asking again.
	Refresh time.Duration
	Client  *http.Client // default: 5 s timeout
	Now     func() time.Time
}

// CoinGecko reads /api/v3/simple/price?ids=…&vs_currencies=usd,eur&include_last_updated_at=true,
// whose answer is {"bitcoin":{"usd":67187.33,"last_updated_at":1711356300},…}.
// Numbers are read as decimal text, never as floats.
type CoinGecko struct {
	cfg CoinGeckoConfig

	mu      sync.Mutex
	prices  map[string]usdPrice // by coin id
	fetched time.Time
	lastErr error
}

var _ Oracle = (*CoinGecko)(nil)

// NewCoinGecko returns the adapter; it fetches on first use.
func NewCoinGecko(cfg CoinGeckoConfig) *CoinGecko {
	if cfg.BaseURL == "" {
		cfg.BaseURL = CoinGeckoURL
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.IDs == nil {
		cfg.IDs = DefaultCoinGeckoIDs()
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 10 * time.Minute
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = 30 * time.Second
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 5 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &CoinGecko{cfg: cfg}
}

// Price implements Oracle. Errors: domain.ErrPriceUnavailable (unknown
// asset, source down with no fresh cached price, or a stale price).
func (c *CoinGecko) Price(ctx context.Context, base, quote string) (domain.PriceQuote, error) {
	prices, err := c.current(ctx)
	now := c.cfg.Now()
	if err != nil && prices == nil {
		return domain.PriceQuote{}, fmt.Errorf("%w: coingecko: %v", domain.ErrPriceUnavailable, err)
	}
	// On a failed refresh the cached prices still serve while they are
	// younger than MaxAge; cross refuses them after that.
	return cross(base, quote, func(code string) (usdPrice, bool) {
		id, ok := c.cfg.IDs[code]
		if code == eurCode {
			id, ok = eurKey, true
		}
		if !ok {
			return usdPrice{}, false
		}
		p, ok := prices[id]
		return p, ok
	}, "coingecko", now, c.cfg.MaxAge)
}

// current returns the cached prices, refreshing them when older than Refresh.
func (c *CoinGecko) current(ctx context.Context) (map[string]usdPrice, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if c.prices != nil && now.Sub(c.fetched) < c.cfg.Refresh {
		return c.prices, nil
	}
	if c.lastErr != nil && now.Sub(c.fetched) < time.Second {
		return c.prices, c.lastErr // do not hammer a failing source
	}
	prices, err := c.fetch(ctx)
	c.fetched = now
	c.lastErr = err
	if err != nil {
		return c.prices, err
	}
	c.prices = prices
	return prices, nil
}

// maxBody bounds the answer we read.
const maxBody = 1 << 20

func (c *CoinGecko) fetch(ctx context.Context) (map[string]usdPrice, error) {
	ids := map[string]bool{}
	for _, id := range c.cfg.IDs {
		ids[id] = true
	}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	sort.Strings(list)
	u := c.cfg.BaseURL + "/api/v3/simple/price?" + url.Values{
		"ids": {strings.Join(list, ",")}, "vs_currencies": {"usd,eur"}, "include_last_updated_at": {"true"},
	}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if c.cfg.APIKey != "" {
		req.Header.Set("x-cg-demo-api-key", c.cfg.APIKey)
	}
	resp, err := c.cfg.Client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("simple/price answered %s", resp.Status)
	}
	return parseSimplePrice(body)
}

// The euro, for invoices priced in EUR (issue #19): CoinGecko quotes every
// coin in usd and eur from one exchange rate, so the euro's USD price is
// a coin's usd ÷ eur (the freshest coin that has both), kept in the price
// map under eurKey, which no coin id can be (ids have no colon).
const (
	eurCode = "EUR"
	eurKey  = "fiat:eur"
)

// parseSimplePrice reads the simple/price answer with numbers as text.
func parseSimplePrice(body []byte) (map[string]usdPrice, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw map[string]map[string]json.Number
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("simple/price: %w", err)
	}
	out := make(map[string]usdPrice, len(raw))
	eurFrom := "" // the coin the euro's price came from: ties go to the smaller id, so every answer reads the same
	for id, fields := range raw {
		usd, ok := fields["usd"]
		if !ok {
			continue
		}
		rate, err := decimal.NewFromString(usd.String())
		if err != nil || !rate.IsPositive() {
			continue // a missing or nonsense price is no price
		}
		var at time.Time
		if ts, ok := fields["last_updated_at"]; ok {
			sec, err := ts.Int64()
			if err != nil {
				continue
			}
			at = time.Unix(sec, 0).UTC()
		}
		if at.IsZero() {
			continue // without a time we cannot tell a stale price
		}
		out[id] = usdPrice{rate: rate, at: at}
		if eur, ok := fields["eur"]; ok {
			perCoin, err := decimal.NewFromString(eur.String())
			prev := out[eurKey].at
			if err == nil && perCoin.IsPositive() && (prev.IsZero() || at.After(prev) || (at.Equal(prev) && id < eurFrom)) {
				out[eurKey], eurFrom = usdPrice{rate: rate.DivRound(perCoin, ratePrecision), at: at}, id
			}
		}
	}
	return out, nil
}
