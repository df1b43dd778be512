package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// TestEventCounters: each applied event is counted once, under its asset
// and outcome; batches another runner applied are not counted.
func TestEventCounters(t *testing.T) {
	c := newEventCounters()
	rec := func(typ, data string) eventstore.RecordedEvent {
		return eventstore.RecordedEvent{Type: typ, Data: []byte(data)}
	}
	c.Applied([]eventstore.RecordedEvent{
		rec(domain.TypeInvoiceCreated, `{"asset":"BTC"}`),
		rec(domain.TypeDepositDetected, `{"asset":"BTC"}`),
		rec(domain.TypeDepositDetected, `{"asset":"ETH"}`),
		rec(domain.TypeDepositConfirmed, `{"asset":"BTC"}`),
		rec(domain.TypeInvoicePaid, `{"to":"paid"}`),
		rec(domain.TypeDepositReverted, `{"asset":"BTC","reason":"reorg"}`),
		rec(domain.TypePayoutFailed, `{"asset":"ETH","reason":"eth: insufficient hot-wallet funds: 1 ETH"}`),
		rec(domain.TypePayoutFailed, `{"asset":"ETH","reason":"not sent after 5 attempts: dial tcp: refused"}`),
		rec(domain.TypePayoutCanceled, `{"asset":"BTC"}`),
		rec(domain.TypeMerchantRegistered, `{}`),
	})
	c.Applied(nil)
	for _, tc := range []struct {
		name string
		got  float64
		want float64
	}{
		{"seen BTC", value(t, c.deposits.WithLabelValues("BTC", "seen")), 1},
		{"seen ETH", value(t, c.deposits.WithLabelValues("ETH", "seen")), 1},
		{"confirmed BTC", value(t, c.deposits.WithLabelValues("BTC", "confirmed")), 1},
		{"reverted BTC", value(t, c.deposits.WithLabelValues("BTC", "reverted")), 1},
		{"final BTC", value(t, c.deposits.WithLabelValues("BTC", "final")), 0},
		{"new", value(t, c.transitions.WithLabelValues("new")), 1},
		{"paid", value(t, c.transitions.WithLabelValues("paid")), 1},
		{"funds", value(t, c.payouts.WithLabelValues("ETH", "insufficient_funds")), 1},
		{"retries", value(t, c.payouts.WithLabelValues("ETH", "not_sent_after_retries")), 1},
		{"canceled", value(t, c.payouts.WithLabelValues("BTC", "canceled")), 1},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %v, want %v", tc.name, tc.got, tc.want)
		}
	}
}

func TestPayoutFailureClass(t *testing.T) {
	for reason, want := range map[string]string{
		"cannot send: eth: insufficient hot-wallet funds: 0.1 ETH":       "insufficient_funds",
		"cannot send: btc: invalid address bc1xyz":                       "invalid_address",
		"eth: transaction reverted":                                      "reverted",
		"tron: payout transaction failed on chain":                       "reverted",
		"transaction abc expired before it reached a block":              "reverted",
		"not sent after 8 attempts: insufficient hot-wallet funds":       "not_sent_after_retries",
		"refunds are not supported on tron yet (its sender cannot send)": "other",
	} {
		if got := payoutFailureClass(reason); got != want {
			t.Errorf("%q: %s, want %s", reason, got, want)
		}
	}
}

func value(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// signerFunc answers signing requests with a fixed error (a stand-in for a
// signer; the e2e signer tests use the real one).
type signerFunc func() error

func (f signerFunc) Sign(context.Context, custody.Request) ([]byte, error) { return nil, f() }

func TestMeteredSignerResults(t *testing.T) {
	for want, err := range map[string]error{
		"signed":  nil,
		"refused": fmt.Errorf("%w: not in the log", custody.ErrRefused),
		"held":    custody.ErrHeld,
		"error":   errors.New("signer unreachable: connection refused"),
	} {
		s := newMeteredSigner(signerFunc(func() error { return err }))
		if _, got := s.Sign(context.Background(), custody.Request{Chain: domain.ChainTron, Purpose: custody.PurposeVoid}); !errors.Is(got, err) {
			t.Errorf("%s: the wrapper returned %v, want %v", want, got, err)
		}
		if n := value(t, s.requests.WithLabelValues("tron", custody.PurposeVoid, want)); n != 1 {
			t.Errorf("%s: counted %v, want 1", want, n)
		}
	}
}
