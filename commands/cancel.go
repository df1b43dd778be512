package commands

import (
	"context"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// CancelPayout cancels a payout that nothing was signed for yet
// (POST /v1/payouts/{id}/cancel): PayoutCanceled releases its funds, and
// the payout processor, which reads the payout's state from the log
// before every step, never builds it.
type CancelPayout struct {
	CommandID string
	Ref       PayoutRef
}

type CancelPayoutHandler struct{ d Deps }

// Handle appends PayoutCanceled; a canceled payout canceled again records
// nothing. Errors: domain.ErrNotFound, domain.ErrInvalidState (signed,
// sent, confirmed or failed).
func (h CancelPayoutHandler) Handle(ctx context.Context, c CancelPayout) (eventstore.AppendResult, error) {
	w, err := payoutCommand(ctx, h.d, c.CommandID, c.Ref, func(p *domain.Payout) ([]domain.Event, error) {
		return p.Cancel(h.d.Now())
	})
	return w.res, err
}
