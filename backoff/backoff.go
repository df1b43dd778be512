// Package backoff is the one way the gateway waits before trying again: a
// Policy that doubles a pause per failure in a row up to a cap, with
// optional jitter, and Sleep, a pause that ends early when its context does.
// It imports only the standard library, so every package may use it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy is an exponential backoff: the pause after the n-th failure in a
// row is Base·2^(n-1), at most Max.
type Policy struct {
	Base time.Duration
	// Max caps the pause; zero means no cap beyond what fits a Duration.
	Max time.Duration
	// Jitter is the fraction of each pause drawn at random, taken off the
	// doubled pause: 0 waits exactly the doubled pause (a retry against
	// our own database or a node); 1 waits a uniform random time below it
	// ("full jitter"), so writers that collided do not collide again in
	// lockstep. Values outside 0..1 are clamped.
	Jitter float64
}

// Delay is the pause after failure number attempt (1-based; below 1 counts
// as 1).
func (p Policy) Delay(attempt int) time.Duration {
	d := p.ceiling(attempt)
	if j := min(max(p.Jitter, 0), 1); j > 0 && d > 0 {
		if span := time.Duration(float64(d) * j); span > 0 {
			d -= rand.N(span)
		}
	}
	return d
}

// ceiling is the doubled pause before jitter.
func (p Policy) ceiling(attempt int) time.Duration {
	if p.Base <= 0 {
		return 0
	}
	limit := p.Max
	if limit <= 0 {
		limit = time.Duration(1<<63 - 1)
	}
	d := p.Base
	for i := 1; i < attempt && d < limit; i++ {
		if d > limit/2 {
			d = limit
			break
		}
		d *= 2
	}
	return min(d, limit)
}

// Wait pauses for Delay(attempt). It reports false when ctx ended first.
func (p Policy) Wait(ctx context.Context, attempt int) bool {
	return Sleep(ctx, p.Delay(attempt))
}

// Sleep pauses for d, or until ctx ends. It reports whether the whole pause
// passed (false: ctx ended). A pause of zero or less returns at once,
// reporting whether ctx is still live.
func Sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
