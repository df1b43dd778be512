package custody

import (
	"context"
	"errors"
	"testing"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// countingLog counts the events a policy reads from the real log.
type countingLog struct {
	StreamReader
	read int
}

func (c *countingLog) ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error) {
	evs, err := c.StreamReader.ReadStream(ctx, stream, from, max)
	c.read += len(evs)
	return evs, err
}

// TestFindPayoutAtItsVersion: a request naming where its payout's request
// is in the funds stream is checked against that one event; a version
// that holds anything else is no shortcut: the stream is read, and a
// payout the log does not hold is refused as before.
func TestFindPayoutAtItsVersion(t *testing.T) {
	f := newFixture(t, nil)
	for _, id := range []string{"pay_0", "pay_1", "pay_2", "pay_3"} {
		f.request(id, "0.5", domain.PayoutKindWithdrawal)
	}
	log := &countingLog{StreamReader: f.store}
	f.policy.cfg.Log = log
	find := func(id string, version *int64) (domain.PayoutRequested, error) {
		log.read = 0
		return f.policy.findPayout(context.Background(), Request{PayoutID: id, MerchantID: merchant, Asset: "ETH", FundsVersion: version})
	}

	po, err := find("pay_2", At(2))
	if err != nil || po.PayoutID != "pay_2" || log.read != 1 {
		t.Fatalf("at its version: %+v, %v; read %d events of the funds stream, want 1", po, err, log.read)
	}
	po, err = find("pay_2", nil)
	if err != nil || po.PayoutID != "pay_2" || log.read < 3 {
		t.Fatalf("without a version: %+v, %v; read %d events, want at least the stream up to it (3)", po, err, log.read)
	}
	// Another payout's request, or past the end: the stream decides.
	for _, v := range []int64{1, 9} {
		if po, err = find("pay_2", At(v)); err != nil || po.PayoutID != "pay_2" {
			t.Fatalf("version %d: %+v, %v", v, po, err)
		}
	}
	if _, err = find("pay_9", At(3)); !errors.Is(err, ErrRefused) {
		t.Fatalf("a payout the log does not hold, named at another's version: %v, want refused", err)
	}
}
