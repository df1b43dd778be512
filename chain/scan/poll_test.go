package scan

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

// Poll keeps scanning through failures and returns when ctx ends.
func TestPollRetriesUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		Poll(ctx, time.Millisecond, 4*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)), func(context.Context) error {
			calls++
			if calls == 6 {
				cancel()
				return nil
			}
			return errors.New("node down")
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Poll did not return after its context ended")
	}
	if calls != 6 {
		t.Fatalf("%d scans, want 6", calls)
	}
}
