package httpapi

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

// SessionStore keeps the dashboard's sessions where every process serving
// the API sees them, so that ending one takes effect on the next request
// everywhere. It is operational state, not a read model: nothing in the
// event log rebuilds it (a lost table only signs everybody out).
type SessionStore interface {
	// Create stores a new session. now lets the store forget expired
	// sessions now and then.
	Create(ctx context.Context, s Session, now time.Time) error
	// Get returns the session with this id if it is live at now. Errors:
	// domain.ErrNotFound when it never existed, was ended or has expired.
	Get(ctx context.Context, id string, now time.Time) (Session, error)
	// End ends one session; ending an unknown or ended one is no error.
	End(ctx context.Context, id string) error
	// EndAll ends every session of the merchant.
	EndAll(ctx context.Context, merchantID string) error
}

// sessionSweepEvery: how often Create also deletes every expired session.
const sessionSweepEvery = time.Hour

// SQLSessions keeps sessions in the read-model database (table
// dashboard_sessions, see MigrateSessions), beside idempotency_keys and
// apart from the projections' tables: a rebuild of the read models leaves
// it alone. On Postgres every picd process shares it.
type SQLSessions struct {
	db        sqldb.DB
	mu        sync.Mutex
	lastSweep time.Time
}

// NewSQLSessions returns the store over db; run MigrateSessions first.
func NewSQLSessions(db sqldb.DB) *SQLSessions { return &SQLSessions{db: db} }

var _ SessionStore = (*SQLSessions)(nil)

// MigrateSessions creates the dashboard_sessions table if it is missing.
func MigrateSessions(ctx context.Context, db sqldb.DB) error {
	integer := "INTEGER"
	if db.Dialect == sqldb.Postgres {
		integer = "BIGINT"
	}
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS dashboard_sessions (
			id          TEXT PRIMARY KEY,         -- hex SHA-256 of the cookie's session id
			merchant_id TEXT NOT NULL,
			key_hash    TEXT NOT NULL,            -- hash of the secret key it signed in with
			created_at  ` + integer + ` NOT NULL, -- Unix ms
			expires_at  ` + integer + ` NOT NULL  -- Unix ms
		)`,
		`CREATE INDEX IF NOT EXISTS dashboard_sessions_merchant ON dashboard_sessions (merchant_id)`,
		`CREATE INDEX IF NOT EXISTS dashboard_sessions_expires_at ON dashboard_sessions (expires_at)`,
	}
	for _, q := range stmts {
		if _, err := db.Write.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("migrate dashboard_sessions: %w", err)
		}
	}
	return nil
}

// Create implements SessionStore.
func (s *SQLSessions) Create(ctx context.Context, sess Session, now time.Time) error {
	s.sweep(ctx, now)
	_, err := s.db.Write.ExecContext(ctx, s.db.Q(
		`INSERT INTO dashboard_sessions (id, merchant_id, key_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`),
		sess.ID, sess.MerchantID, sess.KeyHash, sess.CreatedAt.UnixMilli(), sess.ExpiresAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("sessions: create: %w", err)
	}
	return nil
}

// Get implements SessionStore. Committed rows are visible to the read
// pool, so an ended session is refused on the very next request.
func (s *SQLSessions) Get(ctx context.Context, id string, now time.Time) (Session, error) {
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

// End implements SessionStore.
func (s *SQLSessions) End(ctx context.Context, id string) error {
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM dashboard_sessions WHERE id = ?`), id); err != nil {
		return fmt.Errorf("sessions: end: %w", err)
	}
	return nil
}

// EndAll implements SessionStore.
func (s *SQLSessions) EndAll(ctx context.Context, merchantID string) error {
	if _, err := s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM dashboard_sessions WHERE merchant_id = ?`), merchantID); err != nil {
		return fmt.Errorf("sessions: end all: %w", err)
	}
	return nil
}

// sweep deletes expired sessions, at most once per sessionSweepEvery; a
// failure only delays the cleanup (Get never returns an expired session).
func (s *SQLSessions) sweep(ctx context.Context, now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.lastSweep) >= sessionSweepEvery
	if due {
		s.lastSweep = now
	}
	s.mu.Unlock()
	if due {
		s.db.Write.ExecContext(ctx, s.db.Q(`DELETE FROM dashboard_sessions WHERE expires_at <= ?`), now.UnixMilli())
	}
}

// memorySessions is the store of a server built without one (Deps.Sessions
// nil): one process only, and every session ends when it restarts.
type memorySessions struct {
	mu        sync.Mutex
	byID      map[string]Session
	lastSweep time.Time
}

func newMemorySessions() *memorySessions { return &memorySessions{byID: map[string]Session{}} }

var _ SessionStore = (*memorySessions)(nil)

func (m *memorySessions) Create(_ context.Context, s Session, now time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.lastSweep) >= sessionSweepEvery {
		m.lastSweep = now
		for id, old := range m.byID {
			if !now.Before(old.ExpiresAt) {
				delete(m.byID, id)
			}
		}
	}
	m.byID[s.ID] = s
	return nil
}

func (m *memorySessions) Get(_ context.Context, id string, now time.Time) (Session, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.byID[id]
	if !ok || !now.Before(s.ExpiresAt) {
		return Session{}, fmt.Errorf("session: %w", domain.ErrNotFound)
	}
	return s, nil
}

func (m *memorySessions) End(_ context.Context, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.byID, id)
	return nil
}

func (m *memorySessions) EndAll(_ context.Context, merchantID string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for id, s := range m.byID {
		if s.MerchantID == merchantID {
			delete(m.byID, id)
		}
	}
	return nil
}
