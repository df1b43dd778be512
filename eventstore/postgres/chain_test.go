package postgres_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/storetest"
)

// TestChainMigrationTwoProcessesAndTamper: two stores on one schema (two
// processes) appending in turn keep one unbroken chain; a log whose chain
// is cleared (as migration 0002 finds an old one) gets the same hashes
// back from Migrate; altering one stored event fails VerifyChain naming
// its position.
func TestChainMigrationTwoProcessesAndTamper(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	schema := freshSchema(t)
	a := open(t, schema)
	b := open(t, schema)
	for i := 0; i < 30; i++ {
		s := a
		if i%2 == 1 {
			s = b
		}
		evs := []eventstore.EventData{{ID: storetest.NewEventID(), Type: "T", Data: []byte(fmt.Sprintf(`{"i":%d}`, i))}}
		if i%3 == 0 {
			evs[0].Metadata = []byte(`{"m":1}`)
		}
		if _, err := s.Append(ctx, fmt.Sprintf("s-%d", i%4), eventstore.Any, evs); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := eventstore.VerifyChain(ctx, a, time.Now, nil)
	if err != nil || rep.Break != nil || rep.Events != 30 {
		t.Fatalf("two writers: %+v %v", rep, err)
	}

	conn, err := pgx.Connect(ctx, dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	events := pgx.Identifier{schema, "events"}.Sanitize()
	hashes := func() [][]byte {
		rows, err := conn.Query(ctx, `SELECT chain_hash FROM `+events+` ORDER BY transaction_id, global_position`)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
		if err != nil {
			t.Fatal(err)
		}
		return hs
	}
	before := hashes()
	if _, err := conn.Exec(ctx, `UPDATE `+events+` SET chain_seq = NULL, chain_hash = NULL`); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `UPDATE `+pgx.Identifier{schema, "chain_head"}.Sanitize()+` SET seq = 0, hash = decode(repeat('00', 32), 'hex')`); err != nil {
		t.Fatal(err)
	}
	if rep, err := eventstore.VerifyChain(ctx, a, time.Now, nil); err != nil || rep.Break == nil {
		t.Fatalf("a log without its chain verified: %+v %v", rep, err)
	}
	if err := a.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	after := hashes()
	for i := range before {
		if !bytes.Equal(before[i], after[i]) {
			t.Fatalf("event %d: migrated hash %x, appended %x", i, after[i], before[i])
		}
	}
	// Both writers' cached heads are stale now only if the migration moved
	// it; it put back the same head, so appends go on.
	c, err := postgres.Open(ctx, dsn(), postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Append(ctx, "after", eventstore.NoStream, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "T"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(ctx, "after", 0, []eventstore.EventData{{ID: storetest.NewEventID(), Type: "T"}}); err != nil {
		t.Fatal(err)
	}
	rep, err = eventstore.VerifyChain(ctx, a, time.Now, nil)
	if err != nil || rep.Break != nil || rep.Events != 32 {
		t.Fatalf("after migration and appends: %+v %v", rep, err)
	}

	var pos eventstore.Position
	if err := conn.QueryRow(ctx, `UPDATE `+events+` SET data = '{"i":999}' WHERE chain_seq = 17 RETURNING transaction_id, global_position`).Scan(&pos.Commit, &pos.Prepare); err != nil {
		t.Fatal(err)
	}
	rep, err = eventstore.VerifyChain(ctx, a, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Break == nil || rep.Break.Seq != 17 || rep.Break.Position != pos || !strings.Contains(rep.Break.String(), "position "+pos.String()) {
		t.Fatalf("altered event 17 at %v: %+v", pos, rep.Break)
	}
}
