package tron

import (
	"context"

	"github.com/acceptcryptohere/gateway/chain"
)

// BuildFeeOnTop implements chain.FeeOnTopSender (refunds): the recipient
// gets exactly p.Amount and the network fee is paid on top of it, booked
// as for Build. A TRX transfer sends the whole amount and burns its
// bandwidth (or the account-creation fee) from the hot wallet's TRX on
// top: that TRX is its NetworkFee, and the hot wallet must hold amount +
// fee. A TRC-20 transfer sends the whole amount; the TRX it burns for
// energy and bandwidth is converted into the token with
// SenderConfig.Prices (without them the NetworkFee is 0), as for any token
// payout, but debited on top instead of deducted: the operator's revenue,
// and the TRX burned its cost. Same errors as Build, without the fee having to
// be below the amount.
func (s *Sender) BuildFeeOnTop(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, true)
}

var _ chain.FeeOnTopSender = (*Sender)(nil)
