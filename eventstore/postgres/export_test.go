package postgres

// HorizonQueries is how many horizon queries the store has sent.
func (s *Store) HorizonQueries() int64 {
	s.horizons.mu.Lock()
	defer s.horizons.mu.Unlock()
	return s.horizons.queries
}

// HoldHorizon makes the store behave as if a horizon query were in flight
// until release is called; queued reports how many callers wait for the
// query after it.
func (s *Store) HoldHorizon() (queued func() int, release func()) {
	held := &horizonFlight{done: make(chan struct{})}
	s.horizons.mu.Lock()
	s.horizons.running = held
	s.horizons.mu.Unlock()
	queued = func() int {
		s.horizons.mu.Lock()
		defer s.horizons.mu.Unlock()
		if s.horizons.next == nil {
			return 0
		}
		return s.horizons.next.joined
	}
	return queued, func() { s.landed(held) }
}
