package main

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acceptcryptohere/gateway/backoff"
	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// leaseName is the lease of picd's background work.
const leaseName = "picd"

// leadership runs the background loops while this process holds the
// cluster's lease (follow.Lease), and only then. The lease replaces the
// advisory lock held by a session: a paused leader keeps its session
// (and so a lock) for as long as it is paused, and the fleet stopped with
// it. Now the leader renews the lease every renew; a candidate takes it
// over when it was not renewed within bound, or at once when the leader's
// lease session is gone (a killed process, a cut connection), which is
// what the advisory lock gave and the lease row keeps (holder_pid). Every
// transaction of the loops carries the token (sqldb.WithFence) and the
// store rejects it once another process took over.
type leadership struct {
	lease follow.Lease
	db    *sql.DB // one connection: the lease session (nil on SQLite)
	read  *sql.DB // reads the lease for /readyz
	renew time.Duration
	log   *slog.Logger

	leading atomic.Bool // for the picd_leader gauge
	// heldUntil is, on the monotonic clock since epoch, until when this
	// process may trust its lease: the last renewal it sent that
	// succeeded, plus the bound less one renewal.
	epoch     time.Time
	heldUntil atomic.Int64
}

// Held reports whether this process leads and may trust its lease now
// (always on SQLite): the fence's own view, and the in-memory caches'.
func (l *leadership) Held() bool {
	if l.db == nil {
		return true
	}
	return l.leading.Load() && time.Since(l.epoch) < time.Duration(l.heldUntil.Load())
}

// newLeadership prepares the lease of cfg's cluster; on SQLite (one
// process, which always leads) it only answers Leading and readiness.
func newLeadership(cfg Config, b *backend, log *slog.Logger) (*leadership, error) {
	l := &leadership{lease: follow.Lease{Name: leaseName, Holder: cfg.InstanceID, Bound: cfg.LeaderLease},
		renew: cfg.LeaderRenew, log: log, read: b.db.Read, epoch: time.Now()}
	if cfg.Store == "sqlite" {
		l.leading.Store(true)
		return l, nil
	}
	db, err := openPostgres(cfg, "lease")
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	l.db = db
	b.closers = append(b.closers, db.Close)
	return l, nil
}

// Leading reports whether this process runs the background work now.
func (l *leadership) Leading() bool { return l != nil && l.leading.Load() }

// readiness reads the lease for /readyz: who leads, since when, how long
// ago it renewed. Not ready when no process renewed it within the bound:
// nothing projects, so a write here could not be read back.
func (l *leadership) readiness(ctx context.Context) (map[string]any, bool) {
	if l == nil || l.db == nil {
		return map[string]any{"holder": "this process (embedded store)", "live": true, "this_instance": true}, true
	}
	st, ok, err := follow.ReadLease(ctx, l.read, leaseName, l.lease.Bound)
	switch {
	case err != nil:
		return map[string]any{"error": "unreadable"}, false
	case !ok:
		return map[string]any{"holder": nil, "live": false}, false
	}
	return map[string]any{"holder": st.Holder, "token": st.Token, "live": st.Live, "this_instance": st.Holder == l.lease.Holder && l.Leading(),
		"renewed_ms_ago": st.Renewed.Milliseconds(), "leading_for_s": int64(st.Held.Seconds())}, st.Live
}

// run tries for the lease every renew until ctx ends, and leads while it
// holds it.
func (l *leadership) run(ctx context.Context, loops []func(context.Context)) {
	for ctx.Err() == nil {
		tctx, cancel := context.WithTimeout(ctx, l.renew+time.Second)
		sent := time.Now()
		token, ok, err := l.lease.TryAcquire(tctx, l.db)
		cancel()
		if err != nil && ctx.Err() == nil {
			l.log.Warn("leader: cannot try the lease", "err", err)
		}
		if !ok {
			backoff.Sleep(ctx, l.renew)
			continue
		}
		l.lead(ctx, token, sent, loops)
	}
}

// lead runs the loops under token until the lease is lost, lapses in this
// process's own view, or ctx ends (then it releases the lease, so another
// process takes over at once).
func (l *leadership) lead(ctx context.Context, token int64, renewedAt time.Time, loops []func(context.Context)) {
	// Trusted until the bound less one renewal after the last renewal
	// sent that succeeded, on the monotonic clock (which runs on while the
	// process is paused): this process stops trusting its lease before any
	// other may take it (the store's check is the guarantee; this keeps
	// the loops from trying at all).
	valid := l.lease.Bound - l.renew
	renewed := func(sent time.Time) { l.heldUntil.Store(int64(sent.Sub(l.epoch) + valid)) }
	renewed(renewedAt)
	held := l.Held
	l.leading.Store(true)
	lctx, cancel := context.WithCancel(sqldb.WithFence(ctx, l.lease.Fence(token, held)))
	var wg sync.WaitGroup
	for _, loop := range loops {
		wg.Add(1)
		go func() { defer wg.Done(); loop(lctx) }()
	}
	l.log.Info("leader: this process runs the background work", "instance", l.lease.Holder, "token", token)
	t := time.NewTicker(l.renew)
	defer t.Stop()
	stopping := false
	for !stopping {
		select {
		case <-ctx.Done():
			stopping = true
			continue
		case <-t.C:
		}
		if !held() {
			l.log.Warn("leader: lease not renewed within its bound (paused or cut off?); stopping background work", "token", token)
			break
		}
		sent := time.Now()
		rctx, rcancel := context.WithTimeout(ctx, l.renew)
		err := l.lease.Renew(rctx, l.db, token)
		rcancel()
		if errors.Is(err, follow.ErrLeaseLost) {
			l.log.Warn("leader: another process took the lease over; stopping background work", "token", token)
			break
		}
		if err != nil {
			if ctx.Err() == nil {
				l.log.Warn("leader: cannot renew the lease", "err", err)
			}
			continue
		}
		renewed(sent)
	}
	l.leading.Store(false)
	cancel()
	wg.Wait()
	l.log.Info("leader: background work stopped", "token", token)
	if ctx.Err() != nil {
		rctx, rcancel := context.WithTimeout(context.Background(), l.renew)
		defer rcancel()
		if err := l.lease.Release(rctx, l.db, token); err != nil {
			l.log.Warn("leader: cannot release the lease; another process takes over when it lapses", "err", err)
		}
	}
}
