package postgres

import (
	"context"
	"crypto/rand"
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
	// self is the payload of this notifier's NOTIFYs: its own come back
	// to its LISTEN after its process's waiters were woken directly, and
	// are skipped rather than wake them all a second time.
	self string

	mu  sync.Mutex
	ch  chan struct{} // closed and replaced on every notification
	gen uint64        // notifications so far

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
		self: rand.Text(), ch: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
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
		_, _ = n.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, n.channel, n.self)
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

// generation is how many notifications there have been.
func (n *notifier) generation() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen
}

// changedSince returns changed() if no notification came after generation
// gen, else nil.
func (n *notifier) changedSince(gen uint64) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.gen != gen {
		return nil
	}
	return n.ch
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.gen++
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
		note, err := conn.WaitForNotification(ctx)
		if err != nil {
			return true
		}
		if note.Payload != n.self {
			n.broadcast()
		}
	}
}

func (n *notifier) stop() {
	n.cancel()
	<-n.done
	<-n.senderDone
}
