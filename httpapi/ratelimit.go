package httpapi

import (
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// maxLimiterEntries bounds each limiter's memory: a flood from many
// addresses evicts buckets instead of growing the map without end.
const maxLimiterEntries = 10000

// limiter is a set of token buckets (golang.org/x/time/rate), one per key
// (an IP or a credential). Each bucket holds up to a minute's allowance
// and refills continuously. It lives in memory: limits are per process,
// which is what protects this process; a cluster behind a balancer gets N
// times the rate.
type limiter struct {
	every   rate.Limit
	burst   int
	max     int
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
}

// rateLimited carries how long the client should wait.
type rateLimited struct{ retryAfter time.Duration }

func (e rateLimited) Error() string { return "rate limited" }

func newLimiter(perMinute, maxEntries int) *limiter {
	return &limiter{every: rate.Limit(float64(perMinute) / 60), burst: perMinute, max: maxEntries, buckets: map[string]*rate.Limiter{}}
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
		b = rate.NewLimiter(l.every, l.burst)
		l.buckets[key] = b
	}
	r := b.ReserveN(now, 1)
	if wait := r.DelayFrom(now); wait > 0 {
		r.CancelAt(now)
		return rateLimited{retryAfter: wait}
	}
	return nil
}

// evict drops buckets that have refilled (forgetting them changes nothing);
// if the map is still full, it drops arbitrary ones. Dropping only ever
// loosens a limit, and only under a flood of distinct keys.
func (l *limiter) evict(now time.Time) {
	for k, b := range l.buckets {
		if b.TokensAt(now) >= float64(l.burst) {
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

// IPLimiter is the per-client-IP limit of the public /v1 routes, for the
// unauthenticated routes outside /v1: the hosted checkout and the
// dashboard's page (web.Config.Limiter) and cmd/picd's /readyz. It finds
// the client IP as the API does (Config.ClientIPHeader) and, like the API,
// keeps one bucket per namespace and IP, in memory (limits are per process).
type IPLimiter struct {
	l   *limiter
	ip  func(*http.Request) string
	now func() time.Time
}

// NewIPLimiter allows perMinute requests per client IP and namespace
// (perMinute <= 0: DefaultPublicRatePerMinute, the API's). clientIPHeader is
// Config.ClientIPHeader; now is the clock (nil: time.Now).
func NewIPLimiter(perMinute int, clientIPHeader string, now func() time.Time) *IPLimiter {
	if perMinute <= 0 {
		perMinute = DefaultPublicRatePerMinute
	}
	if now == nil {
		now = time.Now
	}
	// The API's own client-IP rule, so that a page and an API call of one
	// client count for the same IP.
	ip := (&server{cfg: Config{ClientIPHeader: clientIPHeader}}).clientIP
	return &IPLimiter{l: newLimiter(perMinute, maxLimiterEntries), ip: ip, now: now}
}

// Allow takes a token from the bucket of r's client IP in namespace. When
// none is left it returns false and how long the client should wait.
func (l *IPLimiter) Allow(r *http.Request, namespace string) (retryAfter time.Duration, ok bool) {
	if err := l.l.allow(namespace+"|"+l.ip(r), l.now()); err != nil {
		rl, _ := err.(rateLimited)
		return rl.retryAfter, false
	}
	return 0, true
}

// Limit puts next behind the limit of namespace; a refused request gets
// the API's JSON 429 with Retry-After.
func (l *IPLimiter) Limit(namespace string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if wait, ok := l.Allow(r, namespace); !ok {
			secs := retryAfterSeconds(wait)
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeJSON(w, http.StatusTooManyRequests, errorBody{"rate_limited", "too many requests; retry after " + strconv.Itoa(secs) + " seconds"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// retryAfterSeconds rounds a wait up to whole seconds, at least one.
func retryAfterSeconds(wait time.Duration) int {
	return max(int(math.Ceil(wait.Seconds())), 1)
}

func (s *server) writeRateLimited(w http.ResponseWriter, r *http.Request, err error) {
	rl, _ := err.(rateLimited)
	secs := retryAfterSeconds(rl.retryAfter)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	s.writeError(w, r, errorf(http.StatusTooManyRequests, "rate_limited", "too many requests; retry after "+strconv.Itoa(secs)+" seconds"))
}
