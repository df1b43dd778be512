//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// markServing says, for as long as picd serves, that a gateway serves the
// SQLite file at dbPath: a shared flock on a file beside it, which the
// kernel drops with the process. Commands that would fight the gateway for
// the one writer (a rebuild in a second process) look for it.
func markServing(dbPath string) (release func(), err error) {
	f, err := os.OpenFile(dbPath+"-serving.lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("serving lock: %w", err)
	}
	// Blocking: gatewayServes holds the lock exclusively for an instant.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return nil, fmt.Errorf("serving lock %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil
}

// gatewayServes reports whether a process holds markServing's lock on the
// SQLite file at dbPath.
func gatewayServes(dbPath string) (bool, error) {
	f, err := os.OpenFile(dbPath+"-serving.lock", os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err // closing the file drops the lock just taken
}
