package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/esdb"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// openStoreURL opens an event store named "sqlite:<path>",
// "postgres:<url>" or "esdb:<connection string>". A read-only open (the
// source of a copy) migrates nothing and fails on a store that is missing
// or lags this build.
func openStoreURL(ctx context.Context, spec string, readOnly bool) (eventstore.Store, error) {
	kind, target, ok := strings.Cut(spec, ":")
	if !ok || target == "" {
		return nil, usageError(fmt.Errorf("store %q: want sqlite:<path>, postgres:<url> or esdb:<url>", spec))
	}
	switch kind {
	case "sqlite":
		if err := checkDBFile(target); err != nil {
			return nil, err
		}
		if readOnly {
			return sqlite.Open(target, sqlite.CheckOnly())
		}
		return sqlite.Open(target)
	case "postgres":
		s, err := postgres.Open(ctx, target)
		if err != nil {
			return nil, err
		}
		migrate := s.Migrate
		if readOnly {
			migrate = s.CheckMigrated
		}
		if err := migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	case "esdb":
		return esdb.Open(target)
	}
	return nil, usageError(fmt.Errorf("store %q: unknown kind %q", spec, kind))
}

var copyEventsHelp = cmdHelp{name: "picd copy-events", usage: "picd copy-events --from <store> --to <store> [--from-db <db>] [--to-db <db>]",
	about: "Copy a whole log (ids, order, versions, recorded times), compare checksums, and carry the webhook delivery state across\n" +
		"(nothing is delivered twice). Stores are sqlite:<path>, postgres:<url>, esdb:<url>. The source is only read (never migrated).",
	exits: "0 copied and checked, 1 failed, 2 bad usage, 3 a store unreachable or unusable"}

// copyEvents moves a whole log between stores and proves it by checksum,
// then carries the webhook delivery state across (money rule 8: a gateway
// started on the copy does not deliver again what was delivered).
func copyEvents(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("picd copy-events", flag.ContinueOnError)
	from := fs.String("from", "", "source store: sqlite:<path>, postgres:<url> or esdb:<url>")
	to := fs.String("to", "", "target store, same forms")
	fromDB := fs.String("from-db", "", "the source gateway's database holding webhook deliveries (sqlite:<path> or postgres:<url>); default: the source store's own (required with esdb)")
	toDB := fs.String("to-db", "", "the target gateway's database, same forms; default: the target store's own (required with esdb)")
	if err := parseFlags(fs, copyEventsHelp, args, stdout); err != nil {
		return err
	}
	if *from == "" || *to == "" || fs.NArg() > 0 {
		return usageError(fmt.Errorf("usage: %s", copyEventsHelp.usage))
	}
	src, err := openStoreURL(ctx, *from, true)
	if err != nil {
		return unreachable(fmt.Errorf("source: %w", err))
	}
	defer src.Close()
	dst, err := openStoreURL(ctx, *to, false)
	if err != nil {
		return unreachable(fmt.Errorf("target: %w", err))
	}
	defer dst.Close()
	srcDB, closeSrc, err := stateDB(ctx, *fromDB, *from, src)
	if err != nil {
		return fmt.Errorf("source database: %w", err)
	}
	defer closeSrc()
	dstDB, closeDst, err := stateDB(ctx, *toDB, *to, dst)
	if err != nil {
		return fmt.Errorf("target database: %w", err)
	}
	defer closeDst()

	n, err := eventstore.Copy(ctx, src, dst, func(copied int) { fmt.Fprintf(stdout, "\rcopied %d events", copied) })
	fmt.Fprintln(stdout)
	if err != nil {
		return err
	}
	srcSum, srcN, err := eventstore.Checksum(ctx, src)
	if err != nil {
		return err
	}
	// A store may hold back the newest events for a moment (Postgres, while
	// any older transaction of its cluster is still open): compare again
	// for a few seconds before calling the copies different.
	var dstSum string
	var dstN int
	for try := 0; try < 40; try++ {
		if dstSum, dstN, err = eventstore.Checksum(ctx, dst); err != nil {
			return err
		}
		if dstSum == srcSum || dstN > srcN {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	fmt.Fprintf(stdout, "source: %d events, sha256 %s\ntarget: %d events, sha256 %s\n", srcN, srcSum, dstN, dstSum)
	if srcSum != dstSum {
		return fmt.Errorf("checksums differ: the target holds other events too, or the copy is incomplete")
	}
	fmt.Fprintf(stdout, "copied %d events (recorded times kept); the logs are identical\n", n)

	has, err := webhooks.HasState(ctx, srcDB)
	if err != nil {
		return err
	}
	if !has {
		fmt.Fprintln(stdout, "webhooks: the source has no delivery state (no gateway ran on it); nothing to carry")
		return nil
	}
	st, err := webhooks.CopyState(ctx, srcDB, dstDB, func(ctx context.Context, p eventstore.Position) (eventstore.Position, error) {
		return translatePosition(ctx, src, dst, p)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "webhooks: carried %d deliveries and %d attempts; the target's subscriber resumes at %s (delivery %d next)\n",
		st.Deliveries, st.Attempts, st.Checkpoint, st.NextSeq)
	return nil
}

// stateDB opens the gateway database that holds the webhook state beside a
// store: spec when given, else the store's own (the SQLite file, or the
// Postgres database whose schema holds the log).
func stateDB(ctx context.Context, spec, storeSpec string, store eventstore.Store) (sqldb.DB, func(), error) {
	if spec == "" {
		if s, ok := store.(*sqlite.Store); ok {
			return sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite}, func() {}, nil
		}
		kind, _, _ := strings.Cut(storeSpec, ":")
		if kind != "postgres" {
			return sqldb.DB{}, nil, fmt.Errorf("an %s store keeps no webhook state: name the gateway's database with --from-db/--to-db", kind)
		}
		spec = storeSpec
	}
	kind, target, ok := strings.Cut(spec, ":")
	if !ok || target == "" {
		return sqldb.DB{}, nil, fmt.Errorf("database %q: want sqlite:<path> or postgres:<url>", spec)
	}
	switch kind {
	case "postgres":
		db, err := sql.Open("pgx", target)
		if err != nil {
			return sqldb.DB{}, nil, err
		}
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			return sqldb.DB{}, nil, err
		}
		return sqldb.DB{Read: db, Write: db, Dialect: sqldb.Postgres}, func() { db.Close() }, nil
	case "sqlite":
		s, err := sqlite.Open(target)
		if err != nil {
			return sqldb.DB{}, nil, err
		}
		return sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite}, func() { s.Close() }, nil
	}
	return sqldb.DB{}, nil, fmt.Errorf("database %q: unknown kind %q", spec, kind)
}

// translatePosition maps a position of the source log (an event's, as
// follower checkpoints are) to the same event's position in the target:
// the last source event at or before p, found again by stream and version.
func translatePosition(ctx context.Context, src, dst eventstore.Store, p eventstore.Position) (eventstore.Position, error) {
	if p == eventstore.Start {
		return eventstore.Start, nil
	}
	var last *eventstore.RecordedEvent
	for pos := eventstore.Start; ; {
		page, err := src.ReadAll(ctx, pos, 1000)
		if err != nil {
			return eventstore.Position{}, err
		}
		done := len(page) == 0
		for i := range page {
			if p.Less(page[i].Position) {
				done = true
				break
			}
			last = &page[i]
		}
		if done {
			break
		}
		pos = page[len(page)-1].Position
	}
	if last == nil {
		return eventstore.Start, nil
	}
	got, err := dst.ReadStream(ctx, last.Stream, last.Version, 1)
	if err != nil {
		return eventstore.Position{}, err
	}
	if len(got) != 1 || got[0].ID != last.ID {
		return eventstore.Position{}, fmt.Errorf("event %s (%s version %d) is not in the target", last.ID, last.Stream, last.Version)
	}
	return got[0].Position, nil
}
