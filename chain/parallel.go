package chain

import "sync"

// ForEachGroup calls f(i) for every i in [0, n): the indexes sharing a
// key one after another in increasing order, different keys concurrently
// on at most workers goroutines. Appends to one invoice stream thus never
// race each other into version conflicts. After the first error no new
// call starts; it returns that error once the calls in flight are done.
func ForEachGroup(n, workers int, key func(i int) string, f func(i int) error) error {
	var order []string
	groups := map[string][]int{}
	for i := 0; i < n; i++ {
		k := key(i)
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	if len(order) == 0 {
		return nil
	}
	next := make(chan []int, len(order))
	for _, k := range order {
		next <- groups[k]
	}
	close(next)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	failed := func() bool { mu.Lock(); defer mu.Unlock(); return firstErr != nil }
	for w := 0; w < min(workers, len(order)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for idx := range next {
				for _, i := range idx {
					if failed() {
						return
					}
					if err := f(i); err != nil {
						mu.Lock()
						if firstErr == nil {
							firstErr = err
						}
						mu.Unlock()
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// Alongside runs f in a goroutine of its own when run is true, and returns
// a function that waits for it and returns its error (nil at once when f
// did not run). A watcher confirms older deposits this way while it
// reports a new block's.
func Alongside(run bool, f func() error) (wait func() error) {
	if !run {
		return func() error { return nil }
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	return func() error { return <-done }
}
