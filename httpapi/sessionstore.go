package httpapi

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/opstore"
)

// Session is one dashboard sign-in as the store keeps it.
type Session = opstore.Session

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

var _ SessionStore = (*opstore.Sessions)(nil)

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
	if now.Sub(m.lastSweep) >= opstore.SessionSweepEvery {
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
