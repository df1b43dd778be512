package httpapi

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/readapi"
)

// lostAnswerStore is the real store whose next append commits and then
// fails, as a write whose answer is lost on the way back (a dropped
// connection after the commit).
type lostAnswerStore struct {
	*sqlite.Store
	armed  atomic.Bool
	prefix string // only appends to streams named so
}

func (s *lostAnswerStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	res, err := s.Store.Append(ctx, stream, expected, events)
	if err == nil && s.armed.Load() && strings.HasPrefix(stream, s.prefix) && s.armed.CompareAndSwap(true, false) {
		return eventstore.AppendResult{}, errors.New("connection reset after the commit")
	}
	return res, err
}

// A keyed create whose write committed but whose answer was lost is a 5xx;
// the key is released and the client retries later with the same key and
// body. The retry must be recognised as the same command: the same
// invoice (and the same payout), not a second one. The retry comes
// milliseconds later, so ids must not depend on the retry's clock.
func TestKeyedRetryAfterLostAnswerCreatesNothingTwice(t *testing.T) {
	b := setupMoney(t)
	m := b.signUp(t, "Shop")
	b.credit(t, m.secret, "USDT.ETH", "100")

	lost := &lostAnswerStore{Store: b.store}
	cd := commands.Deps{Store: lost, Assets: domain.DefaultAssets(), Now: b.clock.Now, NewID: commands.NewIDGenerator(b.clock.Now),
		Credits: readapi.Credits{SQL: b.reader, Wait: b.runner}, Prices: b.prices}
	deps := b.deps
	deps.Commands = commands.New(cd, commands.NewIndexAllocator(cd, testDerive), func(domain.Chain, string) error { return nil })
	srv := httptest.NewServer(recordAnswers(New(b.cfg, deps)))
	defer srv.Close()
	flaky := *b
	flaky.srv = srv

	for _, tc := range []struct{ name, stream, path, body, list string }{
		{"invoice", "invoice-", "/v1/invoices", `{"asset":"BTC","amount":"0.01","order_id":"o-1"}`, "/v1/invoices"},
		{"withdrawal", "payouts-", "/v1/withdrawals", `{"asset":"USDT.ETH","amount":"10","to_address":"0x1111111111111111111111111111111111111111"}`, "/v1/payouts"},
	} {
		before := len(b.do(t, req{method: "GET", path: tc.list, key: m.secret}).json(t)["data"].([]any))
		lost.prefix = tc.stream
		lost.armed.Store(true)
		hdr := map[string]string{"Idempotency-Key": "retry-" + tc.name}
		first := flaky.do(t, req{method: "POST", path: tc.path, key: m.secret, body: tc.body, header: hdr})
		if first.status < 500 {
			t.Fatalf("%s: first attempt: %d %s, want a 5xx", tc.name, first.status, first.raw)
		}
		b.clock.Advance(1500 * time.Millisecond)
		retry := flaky.do(t, req{method: "POST", path: tc.path, key: m.secret, body: tc.body, header: hdr})
		if retry.status != http.StatusCreated {
			t.Fatalf("%s: retry: %d %s", tc.name, retry.status, retry.raw)
		}
		again := flaky.do(t, req{method: "POST", path: tc.path, key: m.secret, body: tc.body, header: hdr})
		if again.json(t)["id"] != retry.json(t)["id"] {
			t.Fatalf("%s: replay answered another id: %s then %s", tc.name, retry.raw, again.raw)
		}
		if after := len(b.do(t, req{method: "GET", path: tc.list, key: m.secret}).json(t)["data"].([]any)); after != before+1 {
			t.Fatalf("%s: %d created by one keyed request and its retry, want 1", tc.name, after-before)
		}
	}
}
