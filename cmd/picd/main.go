// Command picd is the Accept Crypto HERE gateway: one binary for the
// service and its operator tools. All wiring lives in this package.
package main

import (
	"context"
	"errors"
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
  picd projections rebuild [name...] [flags]
                         rebuild read models beside the live ones and swap them in (blue/green)
  picd projections status [flags]
                         each projection's position and lag
  picd chain rescan ASSET --from HEIGHT [--to HEIGHT] | picd chain unmatched [--json] [credit|sweep|ignore ID ...]
                         rescan blocks for missed payments; decide about payments no invoice takes
  picd health URL        exit 0 when URL answers 2xx (for container health checks)
  picd help              this text

Flags and their PIC_* variables: picd serve -h
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "picd:", err)
		os.Exit(exitCode(err))
	}
}

// exitError gives an error a process exit status of its own (picd audit:
// 1 a problem found, 3 a dependency unreachable); any other error exits 1.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitCode is the status picd exits with for err.
func exitCode(err error) int {
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
		cfg, err := parseConfig(args)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stderr)
	case "migrate":
		cfg, err := parseConfig(args)
		if err != nil {
			return err
		}
		b, err := openBackend(ctx, cfg, newLogger(stderr))
		if err != nil {
			return err
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
	case "copy-events":
		return copyEvents(ctx, args, stdout)
	case "health":
		if len(args) != 1 {
			return fmt.Errorf("usage: picd health URL")
		}
		return health(ctx, args[0])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n\n%s", cmd, usage)
}

func health(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s", url, resp.Status)
	}
	return nil
}

// simCLI runs `picd sim ...` against a running gateway's simulator.
func simCLI(ctx context.Context, args []string, stdout io.Writer) error {
	token := os.Getenv("PIC_SIM_TOKEN")
	if token == "" {
		dataDir := os.Getenv("PIC_DATA_DIR")
		if dataDir == "" {
			dataDir = "./data"
		}
		b, err := os.ReadFile(filepath.Join(dataDir, "sim.token"))
		if err != nil {
			return fmt.Errorf("no simulator token: set PIC_SIM_TOKEN or run where the gateway's data directory is (%v)", err)
		}
		token = strings.TrimSpace(string(b))
	}
	url := os.Getenv("PIC_SIM_URL")
	if url == "" {
		url = sim.DefaultBaseURL
	}
	return sim.CLI(ctx, args, url, token, stdout)
}
