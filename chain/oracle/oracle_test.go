package oracle

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/domain"
)

// fakeCoinGecko is a fake of the public API's simple/price endpoint,
// speaking its format: {"<id>":{"usd":<number>,"last_updated_at":<unix>}}.
type fakeCoinGecko struct {
	body  atomic.Value // string
	fail  atomic.Bool
	calls atomic.Int32
}

func (f *fakeCoinGecko) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if r.URL.Path != "/api/v3/simple/price" || r.URL.Query().Get("vs_currencies") != "usd,eur" ||
		r.URL.Query().Get("include_last_updated_at") != "true" || !strings.Contains(r.URL.Query().Get("ids"), "bitcoin") {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	if f.fail.Load() {
		http.Error(w, `{"status":{"error_code":429,"error_message":"rate limited"}}`, http.StatusTooManyRequests)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprint(w, f.body.Load().(string))
}

func TestCoinGeckoAgainstFake(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	fake := &fakeCoinGecko{}
	fake.body.Store(fmt.Sprintf(`{"bitcoin":{"usd":60281.123456789012345678,"last_updated_at":%d},"tether":{"usd":1.0002,"last_updated_at":%d},"ethereum":{"usd":3000,"last_updated_at":%d}}`,
		now.Add(-30*time.Second).Unix(), now.Add(-10*time.Second).Unix(), now.Add(-time.Hour).Unix()))
	srv := httptest.NewServer(fake)
	defer srv.Close()
	clock := now
	o := NewCoinGecko(CoinGeckoConfig{BaseURL: srv.URL, Now: func() time.Time { return clock }, MaxAge: 5 * time.Minute})
	ctx := context.Background()

	q, err := o.Price(ctx, "BTC", USD)
	if err != nil {
		t.Fatal(err)
	}
	// Exact: the JSON number is read as text, never through a float.
	if q.Rate.String() != "60281.123456789012345678" || q.Source != "coingecko" || !q.At.Equal(now.Add(-30*time.Second)) {
		t.Fatalf("BTC/USD = %+v", q)
	}
	q, err = o.Price(ctx, "BTC", "USDT.ETH")
	if err != nil {
		t.Fatal(err)
	}
	want := decimal.RequireFromString("60281.123456789012345678").DivRound(decimal.RequireFromString("1.0002"), 18)
	if !q.Rate.Equal(want) || !q.At.Equal(now.Add(-30*time.Second)) {
		t.Fatalf("BTC/USDT = %s at %s, want %s", q.Rate, q.At, want)
	}
	// ETH's price is an hour old: stale, refused.
	if _, err := o.Price(ctx, "ETH", USD); !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("stale ETH: %v", err)
	}
	// TRX is not in the answer: missing, refused.
	if _, err := o.Price(ctx, "TRX", USD); !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("missing TRX: %v", err)
	}
	if _, err := o.Price(ctx, "DOGE", USD); !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("unknown asset: %v", err)
	}
	calls := fake.calls.Load()
	if calls != 1 {
		t.Fatalf("%d calls within the refresh interval, want 1", calls)
	}
	// The source fails: cached prices serve while fresh, then are refused.
	fake.fail.Store(true)
	clock = now.Add(time.Minute)
	if _, err := o.Price(ctx, "BTC", USD); err != nil {
		t.Fatalf("cached price within its age: %v", err)
	}
	clock = now.Add(10 * time.Minute)
	if _, err := o.Price(ctx, "BTC", USD); !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("source down and the cache stale: %v", err)
	}
}

func TestCoinGeckoDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "oops", http.StatusInternalServerError)
	}))
	defer srv.Close()
	o := NewCoinGecko(CoinGeckoConfig{BaseURL: srv.URL})
	if _, err := o.Price(context.Background(), "BTC", USD); !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("down: %v", err)
	}
}

func TestStatic(t *testing.T) {
	s, err := ParseStatic(map[string]string{"BTC": "60000", "USDT.ETH": "1"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := s.Price(context.Background(), "BTC", "USDT.ETH")
	if err != nil || q.Rate.String() != "60000" || q.Source != "static" {
		t.Fatalf("%+v %v", q, err)
	}
	if _, err := s.Price(context.Background(), "ETH", USD); !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("missing: %v", err)
	}
	now := time.Now()
	s.At, s.MaxAge = now.Add(-time.Hour), time.Minute
	if _, err := s.Price(context.Background(), "BTC", USD); !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("stale: %v", err)
	}
	if _, err := ParseStatic(map[string]string{"BTC": "-1"}); err == nil {
		t.Fatal("negative price accepted")
	}
}

// TestCoinGeckoEUR (issue #19): invoices priced in EUR. CoinGecko quotes
// each coin in usd and eur at once; the euro's USD price is the freshest
// coin's usd ÷ eur, so a EUR price is the same cross as any other pair.
func TestCoinGeckoEUR(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	fake := &fakeCoinGecko{}
	fake.body.Store(fmt.Sprintf(`{"bitcoin":{"usd":60000,"eur":50000,"last_updated_at":%d},"tether":{"usd":1,"eur":0.9,"last_updated_at":%d},"ethereum":{"usd":3000,"last_updated_at":%d}}`,
		now.Add(-10*time.Second).Unix(), now.Add(-time.Minute).Unix(), now.Add(-20*time.Second).Unix()))
	srv := httptest.NewServer(fake)
	defer srv.Close()
	clock := now
	o := NewCoinGecko(CoinGeckoConfig{BaseURL: srv.URL, Now: func() time.Time { return clock }, MaxAge: 5 * time.Minute})
	// Bitcoin is the freshest coin with both: 1 EUR = 60000/50000 = 1.2 USD.
	q, err := o.Price(context.Background(), "BTC", "EUR")
	if err != nil || q.Rate.String() != "50000" || !q.At.Equal(now.Add(-10*time.Second)) {
		t.Fatalf("BTC/EUR %+v %v", q, err)
	}
	q, err = o.Price(context.Background(), "ETH", "EUR")
	if err != nil || q.Rate.String() != "2500" || !q.At.Equal(now.Add(-20*time.Second)) {
		t.Fatalf("ETH/EUR %+v %v", q, err)
	}
	// As old as its older side: stale once the euro's rate is.
	clock = now.Add(5 * time.Minute)
	if _, err := o.Price(context.Background(), "ETH", "EUR"); !errors.Is(err, domain.ErrPriceUnavailable) {
		t.Fatalf("stale EUR: %v", err)
	}
}
