package webhooks

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retrySchedule is the pause after the n-th failed attempt (the first
// attempt is immediate); after the last entry the pause stays at 10 h until
// the delivery is retryWindow old.
var retrySchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour}

const (
	// retryWindow: no attempt is scheduled later than this after the
	// delivery was created; the delivery is then failed.
	retryWindow = 72 * time.Hour
	// maxRetryAfter bounds how long a receiver's Retry-After may push the
	// next attempt.
	maxRetryAfter = 24 * time.Hour
	// notReadyDelay: the merchant is not in the read model yet (projections
	// lag the log); look again soon without counting an attempt.
	notReadyDelay = time.Second
)

// scheduledPause is the scheduled pause after failed attempt number n (1-based).
func scheduledPause(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	return retrySchedule[min(n, len(retrySchedule))-1]
}

// defaultJitter adds up to 10 % to a pause, so receivers that come back up
// are not hit by every delivery at the same instant; it never shortens the
// promised schedule.
func defaultJitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d/10 + 1)
}

// nextAttempt decides what follows failed attempt n made at now: the time
// of the next attempt, or ok=false when the delivery has run out of its
// window. retryAfter (0 when absent) wins over the schedule when longer.
func nextAttempt(n int, createdAt, now time.Time, retryAfter time.Duration, jitter func(time.Duration) time.Duration) (time.Time, bool) {
	pause := scheduledPause(n)
	pause += jitter(pause)
	if retryAfter > pause {
		pause = min(retryAfter, maxRetryAfter)
	}
	next := now.Add(pause)
	if next.After(createdAt.Add(retryWindow)) {
		return time.Time{}, false
	}
	return next, true
}

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. It returns 0 when absent, malformed or in the past.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil && at.After(now) {
		return at.Sub(now)
	}
	return 0
}
