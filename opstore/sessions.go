package opstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Session is one dashboard sign-in as the store keeps it.
type Session struct {
	// ID is the hash of the cookie's session id (sessionKey), never the id.
	ID         string
	MerchantID string
	// KeyHash is the hash of the secret key the session signed in with: the
	// session ends when that key is rotated.
	KeyHash   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// SessionSweepEvery: how often Create also deletes every expired session.
const SessionSweepEvery = time.Hour

// Sessions keeps the dashboard's sessions (table dashboard_sessions) where
// every process serving the API sees them, so that ending one takes effect
// on the next request everywhere; on Postgres every picd process shares
// it. Nothing in the event log rebuilds it: a lost table only signs
// everybody out.
type Sessions struct {
	db        sqldb.DB
	mu        sync.Mutex
	lastSweep time.Time
}

// NewSessions returns the store over db; run Migrate first.
func NewSessions(db sqldb.DB) *Sessions { return &Sessions{db: db} }

// Create stores a new session, and now and then forgets expired ones.
func (s *Sessions) Create(ctx context.Context, sess Session, now time.Time) error {
	s.sweep(ctx, now)
	_, err := s.db.Write.ExecContext(ctx, s.db.Q(
		`INSERT INTO dashboard_sessions (id, merchant_id, key_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
		sess.ID, sess.MerchantID, sess.KeyHash, sess.CreatedAt.UnixMilli(), sess.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("sessions: create: %w", err)
	}
	return nil
}

// Get returns the session with this id if it is live at now. Errors:
// domain.ErrNotFound when it never existed, was ended or has expired.
// Committed rows are visible to the read
// pool, so an ended session is refused on the very next request.
func (s *Sessions) Get(ctx context.Context, id string, now time.Time) (Session, error) {
	sess := Session{ID: id}
	var createdMs, expiresMs int64
	err := s.db.Read.QueryRowContext(ctx, s.db.Q(
		`SELECT merchant_id, key_hash, created_at, expires_at FROM dashboard_sessions WHERE id = ? AND expires_at > ?`),
		id, now.UnixMilli()).Scan(&sess.MerchantID, &sess.KeyHash, &createdMs, &expiresMs)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, fmt.Errorf("session: %w", domain.ErrNotFound)
	}
	if err != nil {
		return Session{}, fmt.Errorf("sessions: get: %w", err)
	}
	sess.CreatedAt, sess.ExpiresAt = time.UnixMilli(createdMs).UTC(), time.UnixMilli(expiresMs).UTC()
	return sess, nil
}

// End ends one session; ending an unknown or ended one is no error.
func (s *Sessions) End(ctx context.Context, id string) error {
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM dashboard_sessions WHERE id = ?`), id); err != nil {
		return fmt.Errorf("sessions: end: %w", err)
	}
	return nil
}

// EndAll ends every session of the merchant.
func (s *Sessions) EndAll(ctx context.Context, merchantID string) error {
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM dashboard_sessions WHERE merchant_id = ?`), merchantID); err != nil {
		return fmt.Errorf("sessions: end all: %w", err)
	}
	return nil
}

// sweep deletes expired sessions, at most once per SessionSweepEvery; a
// failure only delays the cleanup (Get never returns an expired session).
func (s *Sessions) sweep(ctx context.Context, now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.lastSweep) >= SessionSweepEvery
	if due {
		s.lastSweep = now
	}
	s.mu.Unlock()
	if due {
		s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM dashboard_sessions WHERE expires_at <= ?`), now.UnixMilli())
	}
}
