//go:build unix

package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/storetest"
)

// The database, its -wal and -shm hold webhook secrets and key hashes: in
// a directory that already exists with a loose mode (a mounted volume), and
// under a umask that lets everything through, each file is 0600 from the
// first write, after a checkpoint, after a restart, and when an older
// version left them 0644.
func TestFilesArePrivate(t *testing.T) {
	old := syscall.Umask(0) // the worst umask: SQLite's default would give 0644
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "picd.db")
	check := func(when string, want ...string) {
		t.Helper()
		for _, suffix := range want {
			fi, err := os.Stat(path + suffix)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s is %v, want -rw-------", when, filepath.Base(path+suffix), fi.Mode().Perm())
			}
		}
	}
	appendOne := func(s *Store) {
		t.Helper()
		if _, err := s.Append(ctx, "s-"+storetest.NewEventID(), eventstore.NoStream,
			[]eventstore.EventData{{ID: storetest.NewEventID(), Type: "X", Data: []byte(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}

	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	appendOne(s)
	// A reader connection maps the -shm too.
	if _, err := s.ReadAll(ctx, eventstore.Start, 10); err != nil {
		t.Fatal(err)
	}
	check("first open", "", "-wal", "-shm")
	if _, err := s.WriteDB().ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	appendOne(s)
	check("after a checkpoint", "", "-wal", "-shm")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// An older picd left the files world-readable (and a -wal of a crash).
	for _, suffix := range []string{"", "-wal", "-shm"} {
		f, err := os.OpenFile(path+suffix, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		if err := os.Chmod(path+suffix, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(path + "-shm"); err != nil { // recreated by the next open
		t.Fatal(err)
	}
	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	appendOne(s)
	if _, err := s.ReadAll(ctx, eventstore.Start, 10); err != nil {
		t.Fatal(err)
	}
	check("reopened after an older version", "", "-wal", "-shm")

	// A fresh path in a directory that does not exist yet: 0700.
	nested := filepath.Join(dir, "new", "picd.db")
	s2, err := Open(nested)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if fi, err := os.Stat(filepath.Dir(nested)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("created directory: %v %v, want drwx------", fi.Mode().Perm(), err)
	}
}
