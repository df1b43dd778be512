package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxLimiterEntries bounds each limiter's memory: a flood from many
// addresses evicts buckets instead of growing the map without end.
const maxLimiterEntries = 10000

// limiter is a set of token buckets, one per key (an IP or a credential).
// Each bucket holds up to a minute's allowance and refills continuously.
// It lives in memory: limits are per process, which is what protects this
// process; a cluster behind a balancer gets N times the rate.
type limiter struct {
	perMinute float64
	max       int
	mu        sync.Mutex
	buckets   map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// rateLimited carries how long the client should wait.
type rateLimited struct{ retryAfter time.Duration }

func (e rateLimited) Error() string { return "rate limited" }

func newLimiter(perMinute, maxEntries int) *limiter {
	return &limiter{perMinute: float64(perMinute), max: maxEntries, buckets: map[string]*bucket{}}
}

// allow takes a token from key's bucket, or returns rateLimited.
func (l *limiter) allow(key string, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[key]
	if !ok {
		if len(l.buckets) >= l.max {
			l.evict(now)
		}
		b = &bucket{tokens: l.perMinute, last: now}
		l.buckets[key] = b
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(l.perMinute, b.tokens+elapsed.Minutes()*l.perMinute)
		b.last = now
	}
	if b.tokens < 1 {
		wait := time.Duration((1 - b.tokens) / l.perMinute * float64(time.Minute))
		return rateLimited{retryAfter: wait}
	}
	b.tokens--
	return nil
}

// evict drops buckets that have refilled (forgetting them changes nothing);
// if the map is still full, it drops arbitrary ones. Dropping only ever
// loosens a limit, and only under a flood of distinct keys.
func (l *limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Minutes()*l.perMinute >= l.perMinute {
			delete(l.buckets, k)
		}
	}
	for k := range l.buckets {
		if len(l.buckets) < l.max*9/10 {
			break
		}
		delete(l.buckets, k)
	}
}

// limitIP applies l per client IP, with a namespace so one limiter's
// buckets are separate per endpoint group.
func (s *server) limitIP(l *limiter, namespace string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if err := l.allow(namespace+"|"+s.clientIP(r), s.now()); err != nil {
				s.writeRateLimited(w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (s *server) writeRateLimited(w http.ResponseWriter, r *http.Request, err error) {
	rl, _ := err.(rateLimited)
	secs := int(math.Ceil(rl.retryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.writeError(w, r, errorf(http.StatusTooManyRequests, "rate_limited", "too many requests; retry after "+strconv.Itoa(secs)+" seconds"))
}
