package chain

import (
	"context"
	"log/slog"
	"time"
)

// Poll runs scan every interval until ctx ends. A failed scan is logged
// and run again after a pause that doubles per failure in a row, up to
// maxBackoff: scanners resume from their stored checkpoint, so retrying
// skips nothing, and a node that is down is not hammered.
func Poll(ctx context.Context, interval, maxBackoff time.Duration, log *slog.Logger, scan func(context.Context) error) {
	failures := 0
	for {
		wait := interval
		if err := scan(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			wait = doubled(interval, maxBackoff, failures)
			log.Error("scan failed; retrying from the checkpoint", "err", err, "failures", failures, "retry_in", wait.String())
		} else {
			failures = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// doubled is base doubled per failure after the first, up to limit.
func doubled(base, limit time.Duration, failures int) time.Duration {
	d := base
	for i := 1; i < failures && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}
