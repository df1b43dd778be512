package tron

// matchChain is a tronChain that only matches (its node is set by the test).
func matchChain() *tronChain {
	return &tronChain{log: benchLog, tokens: map[string]token{}, watched: newWatchSet()}
}
