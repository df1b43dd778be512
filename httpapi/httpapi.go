// Package httpapi is the /v1 HTTP surface: routing, authentication, key
// scopes, error mapping, idempotency and rate limits. Handlers are thin:
// parse the request, call one command or one query, map errors, render.
//
// Every route is listed in routes.go; each endpoint group has its own file.
package httpapi

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/readapi"
)

// Config is the HTTP layer's part of the service configuration. Zero values
// get the defaults noted on each field.
type Config struct {
	// RegistrationOpen allows POST /v1/merchants; closed, it answers 403.
	RegistrationOpen bool
	// SessionSecret keys the dashboard session cookies' HMAC (at least 32
	// bytes). Empty: a random secret per process, so sessions end on restart.
	SessionSecret []byte
	// SessionTTL is how long a dashboard session lasts (default 12 h).
	SessionTTL time.Duration
	// MaxBodyBytes bounds request bodies (default 64 KiB).
	MaxBodyBytes int64
	// SignupRatePerMinute limits POST /v1/merchants per client IP (default
	// DefaultSignupRatePerMinute).
	SignupRatePerMinute int
	// PublicRatePerMinute limits each unauthenticated route but sign-up
	// (the public invoice status, log-in, sign-out, the OpenAPI document)
	// per client IP, each route in a bucket of its own (default 120: a
	// checkout page polls: DefaultPublicRatePerMinute). NewIPLimiter gives
	// the pages outside /v1 the same.
	PublicRatePerMinute int
	// KeyRatePerMinute limits all requests of one API key or session
	// (default DefaultKeyRatePerMinute).
	KeyRatePerMinute int
	// BaseURL is the public origin, for checkout_url = BaseURL + "/pay/" + id.
	BaseURL string
	// SecureCookies marks the session cookie Secure (set it behind HTTPS).
	SecureCookies bool
	// ClientIPHeader names a header set by a trusted reverse proxy that
	// carries the client's IP (X-Real-IP, or X-Forwarded-For whose last
	// entry is used). Empty: the connection's address. Never set it without
	// such a proxy, or clients choose their own rate-limit bucket.
	ClientIPHeader string
	// IdempotencyWait bounds how long a duplicate request waits for the
	// first one to finish before it gets 409 idempotency_in_progress (default 10 s).
	IdempotencyWait time.Duration
	// ReadYourWritesWait bounds how long a write waits for the projections to
	// show it before answering anyway (default 2 s).
	ReadYourWritesWait time.Duration
	// ReadYourWritesWaitBusy replaces it while Deps.WriterBusy says this
	// process's own maintenance holds the database writer (default 10 s).
	ReadYourWritesWaitBusy time.Duration
	// EventStreamKeepalive is how long an idle event stream waits before it
	// sends a ": keepalive" comment (default 15 s).
	EventStreamKeepalive time.Duration
	// EventStreamMaxDuration ends an event stream after this long (default
	// 1 h); EventSource clients reconnect with Last-Event-ID and miss nothing.
	EventStreamMaxDuration time.Duration
}

// Waiter lets a handler wait until the read models include a write, so the
// client's next GET sees what its POST did. projections.Runner implements it.
type Waiter interface {
	WaitFor(ctx context.Context, pos eventstore.Position) error
	// WaitRecordedBefore waits until the read models include every event
	// recorded before t: an API key signed up on another instance a
	// moment ago is found, not answered 401.
	WaitRecordedBefore(ctx context.Context, t time.Time) error
}

// Deps are the collaborators of the HTTP layer; cmd/picd builds them.
type Deps struct {
	Commands    commands.Handlers
	Reader      readapi.Reader
	Wait        Waiter
	Idempotency IdempotencyStore
	Assets      domain.Assets
	Webhooks    Webhooks   // nil: the /v1/webhooks routes answer 503
	Events      EventFeed  // nil: the /v1/events routes answer 503
	Prices      Prices     // nil: quotes are 503, usd_value and total_usd null
	Statements  Statements // nil: GET /v1/statements answers 503
	// Sessions keeps the dashboard sessions (nil: in memory, for one
	// process; sessions end when it restarts). Several processes on one
	// database need opstore.Sessions, or a sign-out on one misses the others.
	Sessions SessionStore
	// ShuttingDown is closed when the server starts to shut down, so open
	// event streams end and http.Server.Shutdown can drain (nil: streams
	// end with their client or after EventStreamMaxDuration).
	ShuttingDown <-chan struct{}
	// WriterBusy reports whether this process runs statements that hold
	// the database writer for seconds (a rebuild's index builds, swap and
	// drops, on SQLite): the projector then waits in line for them, it is
	// not gone, and a write waits ReadYourWritesWaitBusy to be readable
	// before it is answered 503 (nil: never).
	WriterBusy func() bool
	Now        func() time.Time
	Logger     *slog.Logger
}

// server holds the configured dependencies that every handler uses.
type server struct {
	cfg    Config
	d      Deps
	log    *slog.Logger
	now    func() time.Time
	signup *limiter
	public *limiter
	perKey *limiter
	// sessions is d.Sessions, or the in-memory store.
	sessions SessionStore
	// streams counts each merchant's open event streams.
	streams *streamSlots
}

// The rate limits' defaults: the one source for Config's zero values and
// picd's flags.
const (
	DefaultSignupRatePerMinute = 10
	DefaultPublicRatePerMinute = 120
	// DefaultKeyRatePerMinute is picd's (PIC_KEY_RATE_PER_MINUTE); a
	// Config left at zero used to get 600.
	DefaultKeyRatePerMinute = 60000
)

// New returns the /v1 handler. Paths outside /v1 answer 404 JSON, so
// cmd/picd mounts the web pages (/pay/{id}, the dashboard) beside it.
func New(cfg Config, d Deps) http.Handler {
	return newServer(cfg, d).routes()
}

func newServer(cfg Config, d Deps) *server {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.SignupRatePerMinute <= 0 {
		cfg.SignupRatePerMinute = DefaultSignupRatePerMinute
	}
	if cfg.PublicRatePerMinute <= 0 {
		cfg.PublicRatePerMinute = DefaultPublicRatePerMinute
	}
	if cfg.KeyRatePerMinute <= 0 {
		cfg.KeyRatePerMinute = DefaultKeyRatePerMinute
	}
	if cfg.IdempotencyWait <= 0 {
		cfg.IdempotencyWait = 10 * time.Second
	}
	if cfg.ReadYourWritesWait <= 0 {
		cfg.ReadYourWritesWait = 2 * time.Second
	}
	if cfg.ReadYourWritesWaitBusy <= 0 {
		cfg.ReadYourWritesWaitBusy = 10 * time.Second
	}
	if cfg.EventStreamKeepalive <= 0 {
		cfg.EventStreamKeepalive = 15 * time.Second
	}
	if cfg.EventStreamMaxDuration <= 0 {
		cfg.EventStreamMaxDuration = time.Hour
	}
	log := d.Logger
	if log == nil {
		log = slog.Default()
	}
	if len(cfg.SessionSecret) == 0 {
		cfg.SessionSecret = make([]byte, 32)
		if _, err := rand.Read(cfg.SessionSecret); err != nil {
			panic("httpapi: crypto/rand: " + err.Error()) // never fails on supported platforms
		}
		log.Warn("httpapi: no session secret configured; dashboard sessions end when the process restarts")
	} else if len(cfg.SessionSecret) < 32 {
		log.Warn("httpapi: the session secret is shorter than 32 bytes; session cookies are easier to forge")
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	sessions := d.Sessions
	if sessions == nil {
		sessions = newMemorySessions()
		log.Warn("httpapi: no session store configured; dashboard sessions are kept in memory, for this process only")
	}
	return &server{
		cfg: cfg, d: d, log: log, now: now, sessions: sessions,
		signup:  newLimiter(cfg.SignupRatePerMinute, maxLimiterEntries),
		public:  newLimiter(cfg.PublicRatePerMinute, maxLimiterEntries),
		perKey:  newLimiter(cfg.KeyRatePerMinute, maxLimiterEntries),
		streams: newStreamSlots(),
	}
}

// waitForRead waits, bounded, until the projections have applied pos. A
// timeout is not an error for the client: the write happened and is durable,
// only a GET sent right now might not show it yet. For answers that carry
// a secret shown once (sign-up, key rotation), which a 503 would lose.
func (s *server) waitForRead(ctx context.Context, pos eventstore.Position) {
	if err := s.awaitRead(ctx, pos); err != nil {
		s.log.WarnContext(ctx, "httpapi: projections did not catch up with a write in time", "position", pos.String(), "err", err)
	}
}

func (s *server) awaitRead(ctx context.Context, pos eventstore.Position) error {
	if s.d.Wait == nil || pos == eventstore.Start {
		return nil
	}
	wait, cancel := context.WithTimeout(ctx, s.cfg.ReadYourWritesWait)
	err := s.d.Wait.WaitFor(wait, pos)
	cancel()
	if err != nil && ctx.Err() == nil && s.d.WriterBusy != nil && s.d.WriterBusy() {
		wait, cancel := context.WithTimeout(ctx, s.cfg.ReadYourWritesWaitBusy-s.cfg.ReadYourWritesWait)
		defer cancel()
		err = s.d.Wait.WaitFor(wait, pos)
	}
	return err
}

// readable waits like waitForRead and answers 503 with Retry-After when the
// write is not readable in time (no process is projecting: a failover):
// a created resource is never answered before a GET of it on any
// instance finds it. The write is durable; a retry with the same
// Idempotency-Key answers it once readable, without writing it again.
func (s *server) readable(w http.ResponseWriter, r *http.Request, pos eventstore.Position) bool {
	err := s.awaitRead(r.Context(), pos)
	if err == nil {
		return true
	}
	if r.Context().Err() != nil {
		return false // the client left
	}
	s.log.WarnContext(r.Context(), "httpapi: write not readable in time; answered 503", "position", pos.String(), "err", err)
	w.Header().Set("Retry-After", "1")
	s.writeError(w, r, errNotYetReadable)
	return false
}
