package main

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/acceptcryptohere/gateway/backoff"
)

// loop is a named background loop. run returns ctx's error (or nil) when
// ctx ends, nil when its work is done (a one-shot such as the re-keying
// of legacy secrets), or an error when it failed.
type loop struct {
	name string
	run  func(ctx context.Context) error
	// restarts counts the times the supervisor restarted it.
	restarts *atomic.Int64
}

// restartPolicy paces the restarts of a failed loop.
var restartPolicy = backoff.Policy{Base: time.Second, Max: 30 * time.Second}

// supervise runs l until ctx ends. A failed run is logged and started
// again after policy's pause; the failures in a row count again from one
// after a run that lasted longer than policy.Max. A run that returns nil
// before ctx ends has finished its work and is not restarted.
func supervise(ctx context.Context, l loop, policy backoff.Policy, log *slog.Logger, now func() time.Time) {
	failures := 0
	for {
		start := now()
		err := l.run(ctx)
		if ctx.Err() != nil {
			return
		}
		if err == nil {
			log.Info("background loop finished", "loop", l.name)
			return
		}
		if now().Sub(start) > policy.Max {
			failures = 0
		}
		failures++
		wait := policy.Delay(failures)
		log.Error("background loop failed; restarting", "loop", l.name, "err", err, "failures", failures, "restart_in", wait.String())
		if !backoff.Sleep(ctx, wait) {
			return
		}
		if l.restarts != nil {
			l.restarts.Add(1)
		}
	}
}

// supervised turns loops into the plain functions serve and lead start:
// each runs its loop under supervise.
func supervised(loops []loop, log *slog.Logger, now func() time.Time) []func(context.Context) {
	out := make([]func(context.Context), len(loops))
	for i, l := range loops {
		out[i] = func(ctx context.Context) { supervise(ctx, l, restartPolicy, log, now) }
	}
	return out
}
