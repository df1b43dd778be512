package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acceptcryptohere/gateway/backoff"
)

// notifier LISTENs on the log's channel on a connection of its own and
// wakes every Wait when an append of any process commits. After a commit
// the appender pokes it; it then sends one NOTIFY for all the pokes that
// arrived meanwhile, outside the append transactions.
type notifier struct {
	connConfig *pgx.ConnConfig
	pool       *pgxpool.Pool
	channel    string
	pokes      chan struct{} // capacity 1: pokes coalesce

	mu sync.Mutex
	ch chan struct{} // closed and replaced on every notification

	cancel     context.CancelFunc
	done       chan struct{}
	senderDone chan struct{}
}

const notifyInterval = 5 * time.Millisecond

// reconnect paces the listener's reconnections.
var reconnect = backoff.Policy{Base: 100 * time.Millisecond, Max: 5 * time.Second}

func startNotifier(pool *pgxpool.Pool, channel string) *notifier {
	ctx, cancel := context.WithCancel(context.Background())
	n := &notifier{connConfig: pool.Config().ConnConfig, pool: pool, channel: channel, pokes: make(chan struct{}, 1),
		ch: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	n.senderDone = make(chan struct{})
	go n.run(ctx)
	go n.send(ctx)
	return n
}

// poke asks for a NOTIFY soon; it never blocks.
func (n *notifier) poke() {
	select {
	case n.pokes <- struct{}{}:
	default:
	}
}

// send turns pokes into NOTIFYs. A lost NOTIFY only delays other processes
// until their poll.
func (n *notifier) send(ctx context.Context) {
	defer close(n.senderDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-n.pokes:
		}
		_, _ = n.pool.Exec(ctx, `SELECT pg_notify($1, '')`, n.channel)
		// At most one NOTIFY per interval: under load the pokes of many
		// batches coalesce into one, and other processes' readers lose at
		// most this much (this process's own are woken directly).
		select {
		case <-ctx.Done():
			return
		case <-time.After(notifyInterval):
		}
	}
}

// changed returns a channel that is closed at the next notification.
func (n *notifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// run listens until stopped, reconnecting with a capped backoff. While it is
// disconnected, Wait falls back to polling.
func (n *notifier) run(ctx context.Context) {
	defer close(n.done)
	failures := 0
	for ctx.Err() == nil {
		listened := n.listen(ctx)
		if listened {
			failures = 0
		}
		// Notifications may have been missed: let waiters check again.
		n.broadcast()
		failures++
		if !reconnect.Wait(ctx, failures) {
			return
		}
	}
}

// listen holds one listening connection until it fails or ctx ends. It
// reports whether LISTEN succeeded.
func (n *notifier) listen(ctx context.Context) bool {
	conn, err := pgx.ConnectConfig(ctx, n.connConfig)
	if err != nil {
		return false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{n.channel}.Sanitize()); err != nil {
		return false
	}
	// Appends may have committed before LISTEN took effect.
	n.broadcast()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true
		}
		n.broadcast()
	}
}

func (n *notifier) stop() {
	n.cancel()
	<-n.done
	<-n.senderDone
}
