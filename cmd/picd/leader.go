package main

import (
	"context"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acceptcryptohere/gateway/backoff"
)

// leaderKey is the Postgres advisory lock that one picd of a cluster holds
// while it runs the projectors, webhook workers, expiry and chain watchers.
func leaderKey() int64 {
	h := fnv.New64a()
	h.Write([]byte("acceptcryptohere/picd/leader"))
	return int64(h.Sum64())
}

// lead runs loops while this process holds the cluster's leader lock, and
// only then. The lock lives on a dedicated connection: if this process dies
// or loses Postgres, the lock goes with the session and another process
// takes over at its next try (every retry). Each loop's own fencing (the
// checkpoint rows) covers the moment when an old leader is still finishing.
func lead(ctx context.Context, dsn string, retry time.Duration, log *slog.Logger, loops []func(context.Context)) {
	for ctx.Err() == nil {
		held, lost, release := acquire(ctx, dsn, retry, log)
		if !held {
			backoff.Sleep(ctx, retry)
			continue
		}
		log.Info("leader: this process runs the background work")
		lctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, loop := range loops {
			wg.Add(1)
			go func() { defer wg.Done(); loop(lctx) }()
		}
		select {
		case <-ctx.Done():
		case <-lost:
			log.Warn("leader: lost the leader lock; stopping background work")
		}
		cancel()
		wg.Wait()
		release()
	}
}

// acquire tries the lock once. While held, a watcher pings the session and
// closes lost when it fails.
func acquire(ctx context.Context, dsn string, every time.Duration, log *slog.Logger) (held bool, lost <-chan struct{}, release func()) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		log.Warn("leader: cannot reach Postgres", "err", err)
		return false, nil, nil
	}
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, leaderKey()).Scan(&ok); err != nil || !ok {
		conn.Close(context.Background())
		return false, nil, nil
	}
	lostc := make(chan struct{})
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			pctx, cancel := context.WithTimeout(ctx, every)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				close(lostc)
				return
			}
		}
	}()
	return true, lostc, func() {
		close(stop)
		<-done
		// Closing the session releases the advisory lock.
		conn.Close(context.Background())
	}
}
