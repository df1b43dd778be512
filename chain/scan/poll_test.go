package scan

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// Run keeps scanning through failures and returns when ctx ends.
func TestPollerRetriesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		p := Poller{Interval: time.Millisecond, MaxBackoff: 4 * time.Millisecond, Log: quietLog}
		p.Run(ctx, Once(func(context.Context) error {
			calls++
			if calls == 6 {
				cancel()
				return nil
			}
			return errors.New("node down")
		}))
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if calls != 6 {
		t.Fatalf("%d scans, want 6", calls)
	}
}

// Step's pauses: the interval after a scan to the head, none when more
// remains (idle or not), a doubling pause after failures in a row (bounded), and, while
// idle, no scan until IdleInterval has passed since the last one.
func TestPollerStep(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)
	idle := true
	p := Poller{Interval: time.Second, MaxBackoff: 5 * time.Second, IdleInterval: time.Minute, Log: quietLog,
		Now: func() time.Time { return now }, Idle: func(context.Context) (bool, error) { return idle, nil }}
	scans := 0
	var fail error
	more := false
	scan := func(context.Context) (bool, error) { scans++; return more, fail }

	if d := p.Step(ctx, scan); d != time.Second || scans != 1 {
		t.Fatalf("first step: %s after %d scans, want 1s after 1 (the first scan always runs)", d, scans)
	}
	now = now.Add(30 * time.Second)
	if d := p.Step(ctx, scan); d != time.Second || scans != 1 {
		t.Fatalf("idle: %s after %d scans, want no scan", d, scans)
	}
	idle = false
	if p.Step(ctx, scan); scans != 2 {
		t.Fatalf("busy: %d scans, want a scan", scans)
	}
	idle = true
	now = now.Add(time.Minute)
	if p.Step(ctx, scan); scans != 3 {
		t.Fatalf("idle past IdleInterval: %d scans, want a scan", scans)
	}
	more, idle = true, false
	if d := p.Step(ctx, scan); d != 0 || scans != 4 {
		t.Fatalf("more to do: %s after %d scans, want no pause after 4", d, scans)
	}
	idle = true
	if p.Step(ctx, scan); scans != 5 {
		t.Fatalf("idle, but more to do: %d scans, want a scan", scans)
	}
	more, fail = false, errors.New("node down")
	var waits []time.Duration
	for i := 0; i < 5; i++ {
		waits = append(waits, p.Step(ctx, scan))
	}
	for i := 1; i < len(waits); i++ {
		if waits[i] < waits[i-1] || waits[i] > 5*time.Second {
			t.Fatalf("pauses after failures: %v, want non-decreasing up to 5s", waits)
		}
	}
	if waits[len(waits)-1] != 5*time.Second {
		t.Fatalf("pauses after failures: %v, want to reach MaxBackoff", waits)
	}
	fail = nil
	if d := p.Step(ctx, scan); d != time.Second {
		t.Fatalf("after recovery: %s, want the interval", d)
	}
}
