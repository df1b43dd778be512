package commands

import (
	"context"

	"github.com/acceptcryptohere/gateway/domain"
)

// RecordNetworkCost records a network fee the gateway paid from its own
// coins (money rule 7), once the chain says what a transaction paid. The
// stream and the event id derive from the chain and txid, so recording
// the same transaction again (a sender that saw the receipt twice, a
// restart) adds nothing.
type RecordNetworkCost struct {
	Chain  domain.Chain
	TxID   string
	Kind   string // domain.Cost*
	Asset  string
	Amount domain.Amount
	From   string
	Ref    string
	Block  uint64
}

type RecordNetworkCostHandler struct{ d Deps }

// Handle returns the recorded event (the stored one for a repeat).
// Errors: domain.ErrValidation, domain.ErrInvalidAmount, an unknown asset,
// storage errors.
func (h RecordNetworkCostHandler) Handle(ctx context.Context, c RecordNetworkCost) (domain.NetworkCostPaid, error) {
	asset, err := h.d.Assets.Lookup(c.Asset)
	if err != nil {
		return domain.NetworkCostPaid{}, err
	}
	ev, err := domain.NewNetworkCost(c.Chain, c.TxID, c.Kind, asset, c.Amount, c.From, c.Ref, c.Block, h.d.Now())
	if err != nil {
		return domain.NetworkCostPaid{}, err
	}
	meta := Metadata{CommandID: "networkcost/" + ev.CostID, OccurredAt: h.d.Now().UTC()}
	var stored *domain.NetworkCostPaid
	_, err = write(ctx, h.d.Store, command{stream: domain.NetworkCostStream(c.Chain, c.TxID), meta: &meta,
		attempt: func() (*state, func() ([]domain.Event, error)) {
			return newState(func(e domain.Event) {
					if n, ok := e.(domain.NetworkCostPaid); ok {
						stored = &n
					}
				}), func() ([]domain.Event, error) {
					if stored != nil {
						return nil, nil // recorded before: the first figure stands
					}
					return []domain.Event{ev}, nil
				}
		}})
	if err != nil {
		return domain.NetworkCostPaid{}, err
	}
	if stored != nil {
		return *stored, nil
	}
	return ev, nil
}
