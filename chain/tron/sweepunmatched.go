package tron

import (
	"context"
	"fmt"

	"github.com/acceptcryptohere/gateway/chain"
)

// solidNode is a node that says which block is solidified (irreversible);
// *HTTPClient is one.
type solidNode interface {
	SolidBlock(ctx context.Context) (Block, error)
}

// unmatchedTargets are the addresses holding a deposit an operator
// decided to sweep (picd chain unmatched sweep), once its block is
// solidified and as deep as its asset's finality depth, as the watcher
// makes deposits final. The coins are the operator's: no invoice is
// credited.
func (s *Sender) unmatchedTargets(ctx context.Context) ([]chain.SweepTarget, error) {
	head, solid := int64(-1), int64(-1)
	final := func(asset string) (int64, error) {
		if head < 0 {
			b, err := s.node.NowBlock(ctx)
			if err != nil {
				return 0, fmt.Errorf("tron sweep: head: %w", err)
			}
			head, solid = b.Number(), b.Number()
			if sn, ok := s.node.(solidNode); ok {
				if b, err = sn.SolidBlock(ctx); err != nil {
					return 0, fmt.Errorf("tron sweep: solid block: %w", err)
				}
				solid = b.Number()
			}
		}
		depth := int64(1)
		if a, err := s.assets.Lookup(asset); err == nil {
			depth = int64(a.FinalityDepth())
		} else {
			return -1, nil // an asset no longer configured is not swept
		}
		return min(solid, head+1-depth), nil
	}
	return chain.Unmatched{DB: s.db}.UnmatchedToSweep(ctx, "tron", "tron_deposits", final)
}

// markUnmatchedSwept records the deposits decided "sweep" that a finished
// sweep has moved.
func (s *Sender) markUnmatchedSwept(ctx context.Context) error {
	n, err := chain.Unmatched{DB: s.db}.MarkSwept(ctx, "tron", "tron_sweeps", SweepDone, s.cfg.Now())
	if n > 0 {
		s.cfg.Logger.Info("tron: unmatched deposits swept to the hot wallet", "count", n)
	}
	return err
}
