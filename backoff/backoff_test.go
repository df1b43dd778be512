package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelayDoublesUpToMax(t *testing.T) {
	p := Policy{Base: 100 * time.Millisecond, Max: 10 * time.Second}
	want := []time.Duration{100, 100, 200, 400, 800, 1600, 3200, 6400, 10000, 10000}
	for i, w := range want {
		if got := p.Delay(i); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %s, want %s", i, got, w*time.Millisecond)
		}
	}
	if got := p.Delay(1 << 20); got != 10*time.Second {
		t.Errorf("Delay(huge) = %s, want the cap", got)
	}
}

func TestDelayWithoutCapDoesNotOverflow(t *testing.T) {
	p := Policy{Base: time.Hour}
	for _, n := range []int{1, 10, 40, 63, 64, 1000} {
		if d := p.Delay(n); d <= 0 {
			t.Fatalf("Delay(%d) = %s, want positive", n, d)
		}
	}
	if (Policy{}).Delay(5) != 0 {
		t.Fatal("a zero policy waits")
	}
}

// Full jitter stays below the doubled pause and is not constant.
func TestJitterStaysInRange(t *testing.T) {
	p := Policy{Base: time.Millisecond, Max: time.Second, Jitter: 1}
	seen := map[time.Duration]bool{}
	for range 200 {
		d := p.Delay(5)
		if d <= 0 || d > 16*time.Millisecond {
			t.Fatalf("Delay(5) = %s, want in (0, 16ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatal("full jitter gave one value")
	}
	tenth := Policy{Base: time.Second, Jitter: 0.1}
	for range 200 {
		if d := tenth.Delay(1); d < 900*time.Millisecond || d > time.Second {
			t.Fatalf("Delay = %s with 10%% jitter of 1s", d)
		}
	}
	clamped := Policy{Base: time.Second, Jitter: 5}
	for range 200 {
		if d := clamped.Delay(1); d <= 0 || d > time.Second {
			t.Fatalf("Delay = %s with jitter clamped to 1", d)
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(10 * time.Millisecond); cancel() }()
	start := time.Now()
	if Sleep(ctx, time.Minute) {
		t.Fatal("Sleep reported a full pause after cancel")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("Sleep did not end with its context")
	}
	if Sleep(ctx, 0) {
		t.Fatal("Sleep(0) on an ended context reported live")
	}
	if !Sleep(context.Background(), time.Millisecond) || !Sleep(context.Background(), 0) {
		t.Fatal("Sleep on a live context reported ended")
	}
}

func TestWait(t *testing.T) {
	p := Policy{Base: time.Millisecond, Max: 2 * time.Millisecond}
	if !p.Wait(context.Background(), 3) {
		t.Fatal("Wait on a live context reported ended")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if (Policy{Base: time.Hour}).Wait(ctx, 1) {
		t.Fatal("Wait on an ended context reported a full pause")
	}
}
