package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/acceptcryptohere/gateway/projections"
)

// audit catches the read models up with the log, then recomputes every
// balance and fee from the log alone and reports any difference.
func audit(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	log := newLogger(stderr)
	b, err := openBackend(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer b.close()
	if err := projections.NewRunner(b.store, b.db, log).CatchUp(ctx); err != nil {
		return err
	}
	rep, err := projections.Audit(ctx, b.store, b.db)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "events: %d, money events: %d, fees recomputed: %d\n", rep.Events, rep.MoneyEvents, rep.FeesChecked)
	for _, account := range rep.Accounts() {
		for asset, sum := range rep.Ledger[account] {
			fmt.Fprintf(stdout, "  %-60s %-10s %s\n", account, asset, sum)
		}
	}
	if !rep.OK() {
		for _, p := range rep.Problems {
			fmt.Fprintln(stdout, "PROBLEM:", p)
		}
		return errors.New("audit found problems")
	}
	fmt.Fprintln(stdout, "audit: the log and the read models agree")
	return nil
}
