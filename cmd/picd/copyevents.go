package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/esdb"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// openStoreURL opens an event store named "sqlite:<path>",
// "postgres:<url>" or "esdb:<connection string>".
func openStoreURL(ctx context.Context, spec string) (eventstore.Store, error) {
	kind, target, ok := strings.Cut(spec, ":")
	if !ok || target == "" {
		return nil, fmt.Errorf("store %q: want sqlite:<path>, postgres:<url> or esdb:<url>", spec)
	}
	switch kind {
	case "sqlite":
		return sqlite.Open(target)
	case "postgres":
		s, err := postgres.Open(ctx, target)
		if err != nil {
			return nil, err
		}
		if err := s.Migrate(ctx); err != nil {
			s.Close()
			return nil, err
		}
		return s, nil
	case "esdb":
		return esdb.Open(target)
	}
	return nil, fmt.Errorf("store %q: unknown kind %q", spec, kind)
}

// copyEvents moves a whole log between stores and proves it by checksum.
func copyEvents(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("picd copy-events", flag.ContinueOnError)
	from := fs.String("from", "", "source store: sqlite:<path>, postgres:<url> or esdb:<url>")
	to := fs.String("to", "", "target store, same forms")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *from == "" || *to == "" {
		return fmt.Errorf("usage: picd copy-events --from <store> --to <store>")
	}
	src, err := openStoreURL(ctx, *from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openStoreURL(ctx, *to)
	if err != nil {
		return err
	}
	defer dst.Close()
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
	fmt.Fprintf(stdout, "copied %d events; the logs are identical\n", n)
	return nil
}
