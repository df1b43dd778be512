package chain_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
)

// nodeDown stands for a sender whose node never answers a build: a
// temporary error, every time.
type nodeDown struct{ chain.Sender }

func (nodeDown) Build(context.Context, chain.PayoutToSend) (chain.Signed, error) {
	return chain.Signed{}, errors.New("connection refused")
}

// Issue 16 item 3: a temporary error before anything is signed is retried
// with a bound; past it the payout fails with the reason, and its funds
// are released, instead of staying requested for good.
func TestTemporaryBuildErrorsFailThePayoutAfterTheBound(t *testing.T) {
	s := setup(t)
	s.proc = s.processor(nodeDown{s.eth})
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutInstant})
	s.paid(t, m, "USDT.ETH", "10", "")
	s.sync(t)
	if p := s.payouts(t, m)[0]; p.Status != domain.PayoutRequestedStatus {
		t.Fatalf("after the first failed build: %+v", p)
	}
	for i := 0; i < 40; i++ { // the backoff grows to RetryMax (10 min)
		s.clock.Advance(11 * time.Minute)
		s.sync(t)
	}
	p := s.payouts(t, m)[0]
	if p.Status != domain.PayoutFailedStatus || !strings.Contains(p.FailureReason, "connection refused") {
		t.Fatalf("after retrying past the bound: %+v", p)
	}
	b := s.balance(t, m, "USDT.ETH")
	want(t, "available after the release", b.Available, "9.975")
	want(t, "reserved", b.Reserved, "0")
	if rep := s.audit(t); !rep.OK() {
		t.Fatalf("audit: %v", rep.Problems)
	}
}

// A signed payout is never failed for a temporary error: its transaction
// may still reach a block, and releasing its funds would pay twice.
func TestTemporaryBroadcastErrorsNeverFailASignedPayout(t *testing.T) {
	s := setup(t)
	m := s.merchant(t, domain.PayoutSettings{Asset: "USDT.ETH", PayoutAddress: ethAddr, Mode: domain.PayoutInstant})
	s.paid(t, m, "USDT.ETH", "10", "")
	s.eth.FailBroadcasts(1000)
	for i := 0; i < 40; i++ {
		s.clock.Advance(11 * time.Minute)
		s.sync(t)
	}
	if p := s.payouts(t, m)[0]; p.Status != domain.PayoutSignedStatus {
		t.Fatalf("a signed payout whose broadcast keeps failing: %+v", p)
	}
	want(t, "reserved", s.balance(t, m, "USDT.ETH").Reserved, "9.975")
}
