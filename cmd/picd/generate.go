package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/internal/history"
	"github.com/acceptcryptohere/gateway/webhooks"
)

var generateHelp = cmdHelp{name: "picd generate", usage: "picd generate --events N [--merchants M] [--seed S] [--keys FILE] [flags]",
	about: "Fill an EMPTY store with a realistic, reproducible history for measurements at scale (issue #23): merchants,\n" +
		"invoices (paid, partially paid, late, reverted, expired, open) and payouts, written as the gateway writes them.\n" +
		"Then run picd projections rebuild (or picd serve) and picd audit. Never run it against a gateway holding real money.",
	exits: "0 written, 1 failed, 2 bad usage, 3 a store unreachable or not empty"}

// generateCmd is "picd generate".
func generateCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c Config
	fs := flag.NewFlagSet(generateHelp.name, flag.ContinueOnError)
	c.storeFlags(fs)
	hc := history.Config{}
	fs.IntVar(&hc.Events, "events", 1_000_000, "events to write (each writer stops at its share, so a few more)")
	fs.IntVar(&hc.Merchants, "merchants", 200, "merchants to sign up and spread the invoices over")
	fs.Uint64Var(&hc.Seed, "seed", 1, "seed: the same flags write the same invoices, amounts, times and ids")
	fs.IntVar(&hc.Workers, "workers", 64, "concurrent writers (part of what the seed reproduces)")
	fs.IntVar(&hc.Pipeline, "pipeline", 8, "invoice appends each writer keeps in flight (the log's order only, not its contents)")
	fs.IntVar(&hc.Spread, "spread", 0, "append each invoice's events after its creation once its writer has created this many more (0: its whole life in one append)")
	fs.IntVar(&hc.PayoutEvery, "payout-every", 20, "a merchant withdraws its balance of an asset after this many credited invoices (0: no payouts)")
	fs.IntVar(&hc.FailEvery, "fail-every", 25, "one payout in this many fails (0: none)")
	start := fs.String("start", "2024-12-01T00:00:00Z", "time of the first invoice (RFC 3339)")
	end := fs.String("end", "2026-12-01T00:00:00Z", "end of the history: open invoices are created in its last hour and expire 7 days later")
	mix := fs.String("mix", "", "shares of invoice kinds, e.g. paid=0.82,partial=0.04,late=0.03,reverted=0.02,expired=0.08,open=0.01 (default those)")
	keys := fs.String("keys", "", "write the merchants' ids and secret keys to this file (JSON, mode 0600)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file (go tool pprof)")
	if err := parseFlags(fs, generateHelp, args, stdout); err != nil {
		return err
	}
	if err := c.validateStore(); err != nil {
		return usageError(err)
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " ")))
	}
	var err error
	if hc.Start, err = time.Parse(time.RFC3339, *start); err != nil {
		return usageError(fmt.Errorf("--start: %w", err))
	}
	if hc.End, err = time.Parse(time.RFC3339, *end); err != nil {
		return usageError(fmt.Errorf("--end: %w", err))
	}
	if hc.Mix, err = parseMix(*mix); err != nil {
		return usageError(err)
	}
	if err := privateDataDir(c.DataDir); err != nil {
		return err
	}
	b, err := openBackend(ctx, c, newLogger(stderr))
	if err != nil {
		return unreachable(err)
	}
	defer b.close()
	if first, err := b.store.ReadAll(ctx, eventstore.Start, 1); err != nil {
		return unreachable(err)
	} else if len(first) > 0 {
		return unreachable(fmt.Errorf("generate: the store already holds events; generate only into an empty one"))
	}
	box, err := webhookSecretBox(ctx, c, b.db, newLogger(stderr))
	if err != nil {
		return err
	}
	stop, err := startCPUProfile(*cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	rep, err := history.Generate(ctx, b.store, box, hc, func(n int64) {
		fmt.Fprintf(stderr, "\rwrote %d events", n)
	})
	fmt.Fprintln(stderr)
	if err != nil {
		return err
	}
	// The history's payouts, settlements and webhooks are behind it: a
	// gateway that lived it would not replay them at its first start.
	if err := chain.StartSubscribersAt(ctx, b.db, rep.Head); err != nil {
		return err
	}
	if err := webhooks.StartAt(ctx, b.db, rep.Head); err != nil {
		return err
	}
	if *keys != "" {
		out, _ := json.MarshalIndent(rep.Merchants, "", "  ")
		if err := os.WriteFile(*keys, append(out, '\n'), 0o600); err != nil {
			return err
		}
	}
	var invoices int64
	for _, n := range rep.Invoices {
		invoices += n
	}
	fmt.Fprintf(stdout, "wrote %d events in %s (%.0f events/s): %d merchants, %d invoices %v, %d payouts confirmed, %d failed\n",
		rep.Events, rep.Elapsed.Round(time.Millisecond), float64(rep.Events)/rep.Elapsed.Seconds(), len(rep.Merchants), invoices,
		rep.Invoices, rep.Payouts, rep.FailedPayouts)
	fmt.Fprintln(stdout, "next: picd projections rebuild, then picd audit (same flags)")
	return nil
}

// parseMix reads "kind=share,...": the kinds not named keep no share.
func parseMix(s string) (map[history.Kind]float64, error) {
	if s == "" {
		return nil, nil
	}
	mix := map[history.Kind]float64{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(part, "=")
		var share float64
		if _, err := fmt.Sscan(v, &share); !ok || err != nil {
			return nil, fmt.Errorf("--mix: %q: want kind=share", part)
		}
		mix[history.Kind(strings.TrimSpace(k))] = share
	}
	return mix, nil
}

// startCPUProfile writes a CPU profile to path (none when empty) until
// stop is called: where a long run of generate or audit spends its time.
func startCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
