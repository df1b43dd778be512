// Command picd is the Accept Crypto HERE gateway: one binary for the
// service and its operator tools. All wiring lives in this package.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/acceptcryptohere/gateway/chain/sim"
)

const usage = `picd: a self-hosted crypto payment gateway

usage:
  picd serve [flags]     run the gateway (embedded SQLite on http://localhost:3000 by default)
  picd migrate [flags]   create or update the schemas of the configured stores, then exit
  picd sim pay <invoice_id> <amount> | picd sim mine [n] | picd sim reorg [--double-spend] [depth]
                         pay an invoice on the simulated chains of a running gateway
                         (PIC_SIM_URL, default http://localhost:3000; token from PIC_SIM_TOKEN or ./data/sim.token)
  picd audit [--json] [--progress|--no-progress] [flags]
                         rebuild every balance and fee from the log and compare with the read models;
                         exit 0 clean, 1 a problem found, 3 a store or node unreachable (or not migrated)
  picd copy-events --from <store> --to <store> [--from-db <db>] [--to-db <db>]
                         copy a whole log (ids, order, versions, recorded times), compare checksums,
                         and carry the webhook delivery state across (nothing is delivered twice);
                         stores are sqlite:<path>, postgres:<url>, esdb:<url>
  picd events export|tail [--log <store>] [--from <position>] [--format jsonl|csv]
                         the whole log (every merchant and type) in global order from a position,
                         each event with its type and schema version (docs/events); tail keeps following
  picd stream [--nats URL] [--stream NAME] [--checkpoint FILE] [--log <store>]
                         publish the log to NATS JetStream (event id as Nats-Msg-Id, subjects
                         <prefix>.<merchant>.<type>), the checkpoint moved only after the server's ack
  picd projections rebuild [name...] [flags]
                         rebuild read models beside the live ones and swap them in (blue/green)
  picd projections status [flags]
                         each projection's position and lag
  picd chain rescan ASSET --from HEIGHT [--to HEIGHT] | picd chain unmatched [--json] [credit|sweep|ignore ID ...]
                         rescan blocks for missed payments; decide about payments no invoice takes
  picd generate --events N [--merchants M] [--seed S] [--keys FILE] [flags]
                         fill an empty store with a reproducible history (merchants, invoices, payouts)
                         for measurements at scale; then projections rebuild and audit
  picd health [--timeout 5s] URL
                         exit 0 when URL answers 2xx (for container health checks)
  picd seed new          print a new master seed (24 BIP-39 words) for PIC_MNEMONIC_FILE
  picd seed rotate [WORDS_FILE]
                         add a seed generation: new addresses from it, the older ones still watched and swept
  picd signer [flags] | picd signer pending | picd signer approve PAYOUT_ID | picd signer rotate [WORDS_FILE]
                         run the signer, the only process with the seed (picd serve with PIC_SIGNER holds none);
                         list the payouts held at its limits; approve one; add a seed generation
  picd version           this build's version, commit and Go version
  picd help              this text

Each command's flags and their PIC_* variables: picd <command> -h

exit status: 0 ok, 1 a problem found (audit) or another failure, 2 bad usage,
3 a dependency (store, database, node) unreachable or unusable
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) { // the help is printed already
			fmt.Fprintln(os.Stderr, "picd:", err)
		}
		os.Exit(exitCode(err))
	}
}

// exitError gives an error a process exit status of its own: 1 a problem
// found (picd audit), 2 bad usage, 3 a dependency unreachable; any other
// error exits 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the status picd exits with for err.
func exitCode(err error) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, rest, err := parseConfigFor(serveHelp, args, stdout)
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usageError(fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " ")))
		}
		return serve(ctx, cfg, stderr)
	case "migrate":
		cfg, rest, err := parseConfigFor(migrateHelp, args, stdout)
		if err != nil {
			return err
		}
		if len(rest) > 0 {
			return usageError(fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " ")))
		}
		b, err := openBackend(ctx, cfg, newLogger(stderr))
		if err != nil {
			return unreachable(err)
		}
		b.close()
		fmt.Fprintln(stdout, "schemas are up to date")
		return nil
	case "sim":
		return simCLI(ctx, args, stdout)
	case "audit":
		return auditCmd(ctx, args, stdout, stderr)
	case "projections":
		return projectionsCmd(ctx, args, stdout, stderr)
	case "chain":
		return chainCmd(ctx, args, stdout, stderr)
	case "events":
		return eventsCmd(ctx, args, stdout, stderr)
	case "stream":
		return streamCmd(ctx, args, stdout, stderr)
	case "copy-events":
		return copyEvents(ctx, args, stdout)
	case "health":
		return healthCmd(ctx, args, stdout)
	case "seed":
		return seedCmd(args, stdout)
	case "signer":
		return signerCmd(ctx, args, stdout, stderr)
	case "generate":
		return generateCmd(ctx, args, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintln(stdout, versionString())
		return nil
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return usageError(fmt.Errorf("unknown command %q\n\n%s", cmd, usage))
}

var healthHelp = cmdHelp{name: "picd health", usage: "picd health [--timeout 5s] URL",
	about: "Exit 0 when URL answers 2xx: a container health check (the image has no shell or curl).",
	exits: "0 healthy, 1 answered but not 2xx, 2 bad usage, 3 unreachable"}

func healthCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet(healthHelp.name, flag.ContinueOnError)
	timeout := fs.Duration("timeout", 5*time.Second, "give up after this long")
	if err := parseFlags(fs, healthHelp, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError(fmt.Errorf("usage: %s", healthHelp.usage))
	}
	return health(ctx, fs.Arg(0), *timeout)
}

func health(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return usageError(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return unreachable(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// simCLI runs `picd sim ...` against a running gateway's simulator.
func simCLI(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || isHelp(args[0]) {
		printHelp(stdout, simHelp, nil)
		if len(args) == 0 {
			return usageError(errors.New("picd sim: want pay, mine or reorg"))
		}
		return nil
	}
	token := os.Getenv("PIC_SIM_TOKEN")
	if token == "" {
		dataDir := os.Getenv("PIC_DATA_DIR")
		if dataDir == "" {
			dataDir = "./data"
		}
		b, err := os.ReadFile(filepath.Join(dataDir, "sim.token"))
		if err != nil {
			return usageError(fmt.Errorf("no simulator token: set PIC_SIM_TOKEN or run where the gateway's data directory is (%v)", err))
		}
		token = strings.TrimSpace(string(b))
	}
	url := os.Getenv("PIC_SIM_URL")
	if url == "" {
		url = sim.DefaultBaseURL
	}
	err := sim.CLI(ctx, args, url, token, stdout)
	if errors.Is(err, sim.ErrUsage) {
		return usageError(err)
	}
	return err
}

var simHelp = cmdHelp{name: "picd sim", usage: "picd sim pay <invoice_id|address> <amount> | picd sim mine [n] | picd sim reorg [--double-spend] [depth]",
	about: "Pay an invoice, mine blocks or reorganise the simulated chains of a running gateway (started with simulated chains).\n" +
		"PIC_SIM_URL: the gateway (default http://localhost:3000); PIC_SIM_TOKEN: its operator token (default: <PIC_DATA_DIR or ./data>/sim.token).",
	exits: "0 done, 1 the gateway refused, 2 bad usage"}
