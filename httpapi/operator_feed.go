package httpapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/analytics"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// OperatorFeedConfig configures the operator's feed of the whole log.
type OperatorFeedConfig struct {
	Store eventstore.Store
	// Token is the operator's bearer token (PIC_OPERATOR_TOKEN or its
	// file). Empty: the feed answers 404, as if it did not exist.
	Token string
	// MaxConcurrent bounds the requests served at once (default 4); more
	// are answered 429 with Retry-After, so a greedy consumer slows
	// itself instead of the gateway.
	MaxConcurrent int
	// MaxWait bounds a long poll (?wait=seconds, default cap 30 s).
	MaxWait time.Duration
	Logger  *slog.Logger
}

// Operator feed bounds.
const (
	defaultOperatorPage = 100
	defaultOperatorMax  = 4
	defaultOperatorWait = 30 * time.Second
)

var (
	errOperatorUnauthorized = errorf(http.StatusUnauthorized, "unauthorized", "the operator's endpoints need the operator token (Authorization: Bearer <PIC_OPERATOR_TOKEN>)")
	errOperatorMerchantKey  = errorf(http.StatusForbidden, "forbidden", "merchant keys cannot use the operator's endpoints; they serve every merchant's data")
	errOperatorBusy         = errorf(http.StatusTooManyRequests, "too_many_requests", "the operator feed is serving as many requests as it allows; retry after the Retry-After seconds")
)

// operatorAuth checks r's bearer token against the operator token's
// digest; a merchant's key is refused by name.
func operatorAuth(r *http.Request, want [sha256.Size]byte) error {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return errOperatorUnauthorized
	}
	if strings.HasPrefix(token, commands.SecretKeyPrefix) || strings.HasPrefix(token, commands.PublishableKeyPrefix) {
		return errOperatorMerchantKey
	}
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return errOperatorUnauthorized
	}
	return nil
}

// operatorPage is one answer of GET /v1/operator/events.
type operatorPage struct {
	Data []analytics.Record `json:"data"`
	// NextAfter is the after of the next request: the last record's
	// position, or the request's own when the page is empty.
	NextAfter string `json:"next_after"`
	HasMore   bool   `json:"has_more"`
}

// NewOperatorFeed serves GET /v1/operator/events?after=<position>&limit=&wait=:
// the whole log (every merchant, every type) in global order as
// analytics.Records, in pages of at most analytics.MaxPage. wait (seconds)
// makes a caught-up reader wait for the next event instead of polling. Only
// the operator token is accepted; a merchant's key is refused by name.
func NewOperatorFeed(cfg OperatorFeedConfig) http.Handler {
	if cfg.MaxConcurrent <= 0 {
		cfg.MaxConcurrent = defaultOperatorMax
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = defaultOperatorWait
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &server{log: cfg.Logger}
	slots := make(chan struct{}, cfg.MaxConcurrent)
	want := sha256.Sum256([]byte(cfg.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if cfg.Token == "" {
			s.writeError(w, r, errNotFoundRoute)
			return
		}
		if r.Method != http.MethodGet {
			s.writeError(w, r, errMethod)
			return
		}
		if err := operatorAuth(r, want); err != nil {
			s.writeError(w, r, err)
			return
		}
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		default:
			w.Header().Set("Retry-After", "1")
			s.writeError(w, r, errOperatorBusy)
			return
		}
		q := r.URL.Query()
		after := eventstore.Start
		if v := q.Get("after"); v != "" {
			p, err := eventstore.ParsePosition(v)
			if err != nil {
				s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "after must be a position commit/prepare, as next_after gives it"))
				return
			}
			after = p
		}
		limit := defaultOperatorPage
		if v := q.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > analytics.MaxPage {
				s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "limit must be an integer from 1 to "+strconv.Itoa(analytics.MaxPage)))
				return
			}
			limit = n
		}
		var wait time.Duration
		if v := q.Get("wait"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || time.Duration(n)*time.Second > cfg.MaxWait {
				s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "wait must be whole seconds from 0 to "+strconv.Itoa(int(cfg.MaxWait/time.Second))))
				return
			}
			wait = time.Duration(n) * time.Second
		}
		recs, err := cfg.Store.ReadAll(r.Context(), after, limit)
		if err == nil && len(recs) == 0 && wait > 0 {
			// Wait may return early: read again until an event comes or the wait is over.
			ctx, cancel := context.WithTimeout(r.Context(), wait)
			for err == nil && len(recs) == 0 && cfg.Store.Wait(ctx, after) == nil {
				recs, err = cfg.Store.ReadAll(r.Context(), after, limit)
			}
			cancel()
		}
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		page := operatorPage{Data: make([]analytics.Record, 0, len(recs)), NextAfter: after.String(), HasMore: len(recs) == limit}
		for _, rec := range recs {
			rc, err := analytics.NewRecord(rec)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			page.Data = append(page.Data, rc)
			page.NextAfter = rc.Position
		}
		writeJSON(w, http.StatusOK, page)
	})
}
