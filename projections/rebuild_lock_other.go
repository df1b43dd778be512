//go:build !unix

package projections

// lockFile: without flock, SQLite rebuilds are not guarded against each
// other here; the one process a gateway is guards its own.
func lockFile(string) (func(), error) { return func() {}, nil }
