package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/storetest"
)

// TestChainMigrationAndTamper: a log written before the chain (its hashes
// cleared, as migration 0002 finds it) gets, on open, the very hashes the
// writer computes at append; the chain continues across the reopen; and
// altering one stored event makes VerifyChain fail naming its position.
func TestChainMigrationAndTamper(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "events.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 30; i++ {
		evs := []eventstore.EventData{{ID: storetest.NewEventID(), Type: "T", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}}
		if i%3 == 0 {
			evs[0].Metadata = []byte(`{"m":1}`)
		}
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%4), eventstore.Any, evs); err != nil {
			t.Fatal(err)
		}
	}
	hashes := storedHashes(t, s)
	if _, err := s.WriteDB().Exec(`UPDATE events SET chain_hash = NULL`); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	again := storedHashes(t, s)
	for i := range hashes {
		if !bytes.Equal(hashes[i], again[i]) {
			t.Fatalf("event %d: migrated hash %x, appended %x", i+1, again[i], hashes[i])
		}
	}
	if _, err := s.Append(ctx, "after", eventstore.NoStream, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "T"}}); err != nil {
		t.Fatal(err)
	}
	rep, err := eventstore.VerifyChain(ctx, s, time.Now, nil)
	if err != nil || rep.Break != nil || rep.Events != 31 {
		t.Fatalf("after migration and an append: %+v %v", rep, err)
	}

	// One stored event altered behind the store's back.
	if _, err := s.WriteDB().Exec(`UPDATE events SET data = '{"i":999}' WHERE global_position = 17`); err != nil {
		t.Fatal(err)
	}
	rep, err = eventstore.VerifyChain(ctx, s, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Break == nil || rep.Break.Seq != 17 || rep.Break.Position.Commit != 17 || !strings.Contains(rep.Break.String(), "position 17/0") {
		t.Fatalf("altered event 17: %+v", rep.Break)
	}
	if rep.Events != 16 {
		t.Fatalf("checked %d events before the break, want 16", rep.Events)
	}
}

func storedHashes(t *testing.T, s *Store) [][]byte {
	t.Helper()
	rows, err := s.DB().Query(`SELECT chain_hash FROM events ORDER BY global_position`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		if len(h) != eventstore.HashSize {
			t.Fatalf("stored hash %x", h)
		}
		out = append(out, h)
	}
	return out
}
