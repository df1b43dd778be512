package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/backoff"
)

// A loop that fails is logged and restarted until it runs; one that
// finishes its work is not restarted.
func TestSuperviseRestartsAFailedLoop(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	log := newLogger(&syncWriter{w: &logs, mu: &mu})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	runs := 0
	running := make(chan struct{})
	l := loop{name: "flaky", restarts: &atomic.Int64{}, run: func(ctx context.Context) error {
		runs++
		if runs <= 2 {
			return errors.New("cannot load checkpoints")
		}
		close(running)
		<-ctx.Done()
		return ctx.Err()
	}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		supervise(ctx, l, backoff.Policy{Base: time.Millisecond, Max: 5 * time.Millisecond}, log, time.Now)
	}()
	select {
	case <-running:
	case <-ctx.Done():
		t.Fatal("the failed loop was not restarted")
	}
	cancel()
	<-done
	if runs != 3 || l.restarts.Load() != 2 {
		t.Fatalf("runs = %d, restarts = %d; want 3 and 2", runs, l.restarts.Load())
	}
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if strings.Count(out, "background loop failed; restarting") != 2 || !strings.Contains(out, "cannot load checkpoints") || !strings.Contains(out, `"loop":"flaky"`) {
		t.Fatalf("the failures are not logged with the loop's name and error:\n%s", out)
	}

	once := 0
	supervise(context.Background(), loop{name: "one-shot", run: func(context.Context) error { once++; return nil }},
		backoff.Policy{Base: time.Millisecond}, log, time.Now)
	if once != 1 {
		t.Fatalf("a finished loop ran %d times", once)
	}
}

type syncWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
