package eth

import (
	"context"

	"github.com/acceptcryptohere/gateway/chain"
)

// BuildFeeOnTop implements chain.FeeOnTopSender (refunds): the recipient
// gets exactly p.Amount; an ETH transfer's gas is paid on top of it (and
// is its NetworkFee), a token transfer's gas in ETH as always.
func (s *Sender) BuildFeeOnTop(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, true)
}

var _ chain.FeeOnTopSender = (*Sender)(nil)
