package scan

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/acceptcryptohere/gateway/backoff"
)

// Poller runs a watcher's scan over and over: every Interval; at once when
// the scan did a bounded part of its work and reports more; after a failure
// after a pause that doubles per failure in a row up to MaxBackoff (the
// scan resumes from its stored checkpoint, so retrying skips nothing, and a
// node that is down is not hammered). With Idle set, while it reports that
// nothing is being watched, a scan runs only once per IdleInterval, so an
// idle gateway spends little of a metered API's quota.
type Poller struct {
	Interval   time.Duration
	MaxBackoff time.Duration
	// Idle reports that no payment is awaited; an error counts as busy.
	Idle         func(ctx context.Context) (bool, error)
	IdleInterval time.Duration
	// Explain names a failure in the log ("the API throttles us");
	// nil or "" logs the default message.
	Explain func(error) string
	Log     *slog.Logger
	Now     func() time.Time

	failures int
	lastScan time.Time
	more     bool // the last scan left work for the next
}

// Run calls Step until ctx ends.
func (p *Poller) Run(ctx context.Context, scan func(context.Context) (more bool, err error)) {
	for backoff.Sleep(ctx, p.Step(ctx, scan)) {
	}
}

// Step scans when it is time to and returns the pause before the next Step.
func (p *Poller) Step(ctx context.Context, scan func(context.Context) (more bool, err error)) time.Duration {
	now := p.now()
	if p.Idle != nil && p.failures == 0 && !p.more && !p.lastScan.IsZero() && now.Sub(p.lastScan) < p.IdleInterval {
		idle, err := p.Idle(ctx)
		if err != nil {
			p.Log.Warn("cannot tell whether a payment is awaited; scanning", "err", err)
		} else if idle {
			return p.Interval
		}
	}
	more, err := scan(ctx)
	p.more = more && err == nil
	if errors.Is(err, ErrWrongNode) {
		// Logged once by the scanner; asked again every interval (at the
		// idle pace while nothing is awaited), so that scanning resumes
		// as soon as the right node answers.
		p.failures, p.lastScan = 0, now
		return p.Interval
	}
	if err == nil {
		p.failures, p.lastScan = 0, now
		if more {
			return 0
		}
		return p.Interval
	}
	if ctx.Err() != nil {
		return 0
	}
	p.failures++
	wait := backoff.Policy{Base: p.Interval, Max: p.MaxBackoff}.Delay(p.failures)
	msg := "scan failed; retrying from the checkpoint"
	if p.Explain != nil {
		if m := p.Explain(err); m != "" {
			msg = m
		}
	}
	p.Log.Error(msg, "err", err, "failures", p.failures, "retry_in", wait.String())
	return wait
}

func (p *Poller) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Once adapts a scan that always goes to the head for Run and Step.
func Once(scan func(context.Context) error) func(context.Context) (bool, error) {
	return func(ctx context.Context) (bool, error) { return false, scan(ctx) }
}
