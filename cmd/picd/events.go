package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/analytics"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// operatorToken is the operator feed's token: PIC_OPERATOR_TOKEN, or the
// content of PIC_OPERATOR_TOKEN_FILE (not both).
func operatorToken(cfg Config) (string, error) {
	if cfg.OperatorTokenFile == "" {
		return cfg.OperatorToken, nil
	}
	if cfg.OperatorToken != "" {
		return "", errors.New("set PIC_OPERATOR_TOKEN or PIC_OPERATOR_TOKEN_FILE, not both")
	}
	raw, err := os.ReadFile(cfg.OperatorTokenFile)
	if err != nil {
		return "", fmt.Errorf("operator token file: %w", err)
	}
	tok := strings.TrimSpace(string(raw))
	if len(tok) < 16 {
		return "", fmt.Errorf("operator token file %s: the token must be at least 16 characters", cfg.OperatorTokenFile)
	}
	return tok, nil
}

// eventsCmd is picd events export|tail: the whole log, every merchant and
// type, in global order, from a position, as JSON lines or CSV on stdout.
func eventsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || (args[0] != "export" && args[0] != "tail") {
		return fmt.Errorf("usage: picd events export|tail [--log <store>] [--from <position>] [--format jsonl|csv] [--page N]")
	}
	follow := args[0] == "tail"
	fs := flag.NewFlagSet("picd events "+args[0], flag.ContinueOnError)
	logSpec := fs.String("log", "", "the event store: sqlite:<path>, postgres:<url> or esdb:<url>; default: the gateway's (PIC_STORE, PIC_DATA_DIR, PIC_POSTGRES_URL, PIC_EVENTSTORE_URL)")
	from := fs.String("from", "0/0", "start after this position (a record's position; 0/0: the beginning)")
	format := fs.String("format", "jsonl", "jsonl or csv")
	page := fs.Int("page", analytics.MaxPage, fmt.Sprintf("events read at a time (1..%d): memory stays bounded by it", analytics.MaxPage))
	quiet := fs.Bool("quiet", false, "no summary on stderr")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	pos, err := eventstore.ParsePosition(*from)
	if err != nil {
		return err
	}
	spec := *logSpec
	if spec == "" {
		if spec, err = gatewayLogSpec(); err != nil {
			return err
		}
	}
	store, err := openStoreURL(ctx, spec, true) // an export writes nothing
	if err != nil {
		return err
	}
	defer store.Close()
	bw := bufio.NewWriterSize(stdout, 1<<16)
	w, err := analytics.NewWriter(bw, *format)
	if err != nil {
		return err
	}
	start := time.Now()
	last, n, err := analytics.Export(ctx, store, pos, *page, follow, w, nil)
	if ferr := w.Flush(); err == nil {
		err = ferr
	}
	if follow && errors.Is(err, context.Canceled) {
		err = nil // tail ends on a signal
	}
	if !*quiet {
		secs := time.Since(start).Seconds()
		fmt.Fprintf(stderr, "%d events in %.1f s (%.0f/s); last position %s (resume with --from %s)\n", n, secs, float64(n)/max(secs, 1e-9), last, last)
	}
	return err
}

// gatewayLogSpec names the configured gateway's event store.
func gatewayLogSpec() (string, error) {
	switch store := env("PIC_STORE", "sqlite"); store {
	case "sqlite":
		path := filepath.Join(env("PIC_DATA_DIR", "./data"), "picd.db")
		if _, err := os.Stat(path); err != nil {
			return "", fmt.Errorf("no event log at %s (set --log or PIC_DATA_DIR): %w", path, err)
		}
		return "sqlite:" + path, nil
	case "postgres":
		return "postgres:" + env("PIC_POSTGRES_URL", ""), nil
	case "esdb":
		return "esdb:" + env("PIC_EVENTSTORE_URL", ""), nil
	default:
		return "", fmt.Errorf("PIC_STORE %q: want sqlite, postgres or esdb", store)
	}
}
