package btc

import "github.com/btcsuite/btcd/chaincfg"

// matchWatcher is a watcher that only matches (no node, no database).
func matchWatcher(params *chaincfg.Params) *Watcher {
	return &Watcher{cfg: Config{Params: params}, watched: newWatchSet(params)}
}

// watchedAddress is the invoice address a script pays, if watched.
func (w *Watcher) watchedAddress(script []byte) (string, bool) {
	return w.watched.lookup(script)
}
