package eth

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/acceptcryptohere/gateway/chain"
)

// unmatchedTargets are the addresses holding a deposit an operator
// decided to sweep (picd chain unmatched sweep), once its block is final
// as the watcher's rule has it: covered by the node's finalized block, or
// the asset's finality depth below the head when the node has none. The
// coins are the operator's: no invoice is credited.
func (s *Sender) unmatchedTargets(ctx context.Context) ([]chain.SweepTarget, error) {
	var head, finalized int64 = -1, -1
	final := func(asset string) (int64, error) {
		if finalized < 0 && head < 0 {
			h, err := s.client.HeaderByNumber(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
			if err == nil && h != nil {
				finalized = h.Number.Int64()
			} else if h, err = s.client.HeaderByNumber(ctx, nil); err != nil {
				return 0, fmt.Errorf("eth sender: head: %w", err)
			} else {
				head = h.Number.Int64()
			}
		}
		if finalized >= 0 {
			return finalized, nil
		}
		a, err := s.deps.Assets.Lookup(asset)
		if err != nil {
			return -1, nil // an asset no longer configured is not swept
		}
		return head + 1 - int64(a.FinalityDepth()), nil
	}
	return chain.Unmatched{DB: s.deps.DB}.UnmatchedToSweep(ctx, "eth", "eth_deposits", final)
}

// markUnmatchedSwept records the deposits decided "sweep" that a finished
// sweep has moved.
func (s *Sender) markUnmatchedSwept(ctx context.Context) error {
	n, err := chain.Unmatched{DB: s.deps.DB}.MarkSwept(ctx, "eth", "eth_sweeps", SweepDone, s.cfg.Now())
	if n > 0 {
		s.log.Info("eth: unmatched deposits swept to the hot wallet", "count", n)
	}
	return err
}
