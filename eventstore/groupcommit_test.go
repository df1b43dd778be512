package eventstore

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// After a batch of several appends the writer waits for more before it
// takes the next batch; after a lone append it does not.
func TestCommitterGathers(t *testing.T) {
	gate := make(chan struct{})
	var mu sync.Mutex
	var batches [][]string
	flush := func(reqs []Request) []Outcome {
		if len(batches) == 0 {
			<-gate // hold the first batch while others queue
		}
		mu.Lock()
		var names []string
		for _, r := range reqs {
			names = append(names, r.Stream)
		}
		batches = append(batches, names)
		mu.Unlock()
		return make([]Outcome, len(reqs))
	}
	c := NewCommitterGather(100, 300*time.Millisecond, flush)
	defer c.Close()
	ctx := context.Background()
	req := func(s string) Request { return Request{Stream: s, Events: []EventData{{ID: s, Type: "T"}}} }
	var wg sync.WaitGroup
	appendAsync := func(s string) {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = c.Append(ctx, req(s)) }()
	}

	appendAsync("first")
	time.Sleep(50 * time.Millisecond) // the writer holds "first" at the gate
	for i := 0; i < 3; i++ {
		appendAsync(fmt.Sprint("q", i))
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait() // "first" alone, then q0..q2 together
	appendAsync("r1")
	time.Sleep(30 * time.Millisecond) // well inside the 300 ms gather
	appendAsync("r2")
	wg.Wait()
	if _, err := c.Append(ctx, req("lone")); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	want := []int{1, 3, 2, 1}
	if len(batches) != len(want) {
		t.Fatalf("batches %v, want sizes %v", batches, want)
	}
	for i, n := range want {
		if len(batches[i]) != n {
			t.Fatalf("batches %v, want sizes %v", batches, want)
		}
	}
}
