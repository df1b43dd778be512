package btc

import (
	"context"

	"github.com/acceptcryptohere/gateway/chain"
)

// BuildFeeOnTop implements chain.FeeOnTopSender (refunds): the recipient
// gets exactly p.Amount; the coins are selected for p.Amount + the fee of
// that selection, found by a few rounds of selection.
func (s *Sender) BuildFeeOnTop(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, true)
}

var _ chain.FeeOnTopSender = (*Sender)(nil)
