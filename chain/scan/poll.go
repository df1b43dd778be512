package scan

import (
	"context"
	"log/slog"
	"time"

	"github.com/acceptcryptohere/gateway/backoff"
)

// Poll runs scan every interval until ctx ends. A failed scan is logged
// and run again after a pause that doubles per failure in a row, up to
// maxBackoff: scanners resume from their stored checkpoint, so retrying
// skips nothing, and a node that is down is not hammered.
func Poll(ctx context.Context, interval, maxBackoff time.Duration, log *slog.Logger, scan func(context.Context) error) {
	PollMore(ctx, interval, maxBackoff, log, func(ctx context.Context) (bool, error) { return false, scan(ctx) })
}

// PollMore is Poll for a scan that does a bounded part of its work per
// call: when it reports more to do, the next call follows at once.
func PollMore(ctx context.Context, interval, maxBackoff time.Duration, log *slog.Logger, scan func(context.Context) (more bool, err error)) {
	retry := backoff.Policy{Base: interval, Max: maxBackoff}
	failures := 0
	for {
		wait := interval
		more, err := scan(ctx)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			failures++
			wait = retry.Delay(failures)
			log.Error("scan failed; retrying from the checkpoint", "err", err, "failures", failures, "retry_in", wait.String())
		case more:
			failures, wait = 0, 0
		default:
			failures = 0
		}
		if !backoff.Sleep(ctx, wait) {
			return
		}
	}
}
