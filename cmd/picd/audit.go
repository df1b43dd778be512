package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/projections"
)

// errAuditMismatch makes picd exit non-zero when the audit found problems.
var errAuditMismatch = errors.New("audit found problems")

// The audit's exit statuses: an operator's script must tell a ledger that
// is wrong from an audit that could not look.
const (
	exitProblems    = 1 // the audit ran and found a problem
	exitUsage       = 2 // bad flags
	exitUnreachable = 3 // a store, database or node could not be read (or its schema lags this build)
)

// unreachable makes err exit with status 3, unless it has a status already.
func unreachable(err error) error {
	var ee *exitError
	if errors.As(err, &ee) {
		return err
	}
	return &exitError{code: exitUnreachable, err: err}
}

// auditOutput says how the report is printed.
type auditOutput struct {
	json     bool
	progress bool // a progress bar on stderr
	// verifyChain: recompute the log's hash chain instead of the ledger.
	verifyChain bool
	// statement: a period statement of [from, to) instead of the audit.
	from, to, merchant string
	csv                bool
	// at: --verify-chain also prints the hash at this chain seq.
	at string
	// cpuProfile: write a CPU profile of the run to this file (--cpuprofile).
	cpuProfile string
	// window: events an invoice stays held after its last one (--window;
	// 0: projections.DefaultAuditWindow).
	window int
	// chain: compare the ledger's holdings with the nodes (--chain);
	// verbose lists every address that differs.
	chain, verbose bool
}

// auditCmd is "picd audit [--json] [--progress|--no-progress] [flags]".
// The progress bar is shown by default when stderr is a terminal.
func auditCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	out := auditOutput{progress: isTerminal(stderr)}
	var err error
	if out.cpuProfile, args, err = cutValueFlag(args, "cpuprofile"); err != nil {
		return err
	}
	var window string
	if window, args, err = cutValueFlag(args, "window"); err != nil {
		return err
	}
	if window != "" {
		if out.window, err = strconv.Atoi(window); err != nil || out.window <= 0 {
			return usageError(fmt.Errorf("audit: --window %q: want a number of events above 0", window))
		}
	}
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "="); strings.HasPrefix(a, "-") && (name == "from" || name == "to" || name == "merchant" || name == "at") {
			if !ok {
				if i+1 >= len(args) {
					return &exitError{code: exitUsage, err: fmt.Errorf("audit: --%s needs a value", name)}
				}
				i++
				value = args[i]
			}
			switch name {
			case "from":
				out.from = value
			case "to":
				out.to = value
			case "at":
				out.at = value
			default:
				out.merchant = value
			}
			continue
		}
		switch a {
		case "--csv", "-csv":
			out.csv = true
		case "--json", "-json":
			out.json = true
		case "--progress", "-progress":
			out.progress = true
		case "--no-progress", "-no-progress":
			out.progress = false
		case "--verify-chain", "-verify-chain":
			out.verifyChain = true
		case "--chain", "-chain":
			out.chain = true
		case "--verbose", "-verbose", "-v":
			out.verbose = true
		default:
			rest = append(rest, a)
		}
	}
	cfg, args, err := parseConfigFor(auditHelp, rest, stdout)
	if err != nil {
		return err // -h (exit 0) or a usage error (2)
	}
	if len(args) > 0 {
		return usageError(fmt.Errorf("unexpected arguments: %s", strings.Join(args, " ")))
	}
	stop, err := startCPUProfile(out.cpuProfile)
	if err != nil {
		return err
	}
	defer stop()
	return runAudit(ctx, cfg, out, stdout, stderr)
}

func runAudit(ctx context.Context, cfg Config, out auditOutput, stdout, stderr io.Writer) error {
	if cfg.Store == "sqlite" {
		// Opening would create an empty store, and an empty log audits as OK:
		// a mistyped data directory must not pass.
		path := filepath.Join(cfg.DataDir, "picd.db")
		if _, err := os.Stat(path); err != nil {
			return unreachable(fmt.Errorf("audit: no event log at %s (set --data or PIC_DATA_DIR): %w", path, err))
		}
	}
	log := newLogger(io.Discard)
	// Read-only: an audit never migrates the gateway it inspects; a schema
	// that lags this build stops it (exit 3) instead.
	b, err := openReadOnly(ctx, cfg, log)
	if err != nil {
		return unreachable(fmt.Errorf("audit: %w", err))
	}
	defer b.close()
	if out.verifyChain {
		return verifyChain(ctx, b, out, stdout, stderr)
	}
	if out.from != "" || out.to != "" {
		return statement(ctx, b, out, stdout)
	}
	if os.Getenv("GOGC") == "" {
		// The audit's live heap is small (about 40 MB at 10M events) and
		// its garbage is the decoded log: collecting at 200 % growth
		// instead of 100 % took 10M events on SQLite from 79.1, 60.8 s to
		// 58.5, 51.8 s, for a max RSS of 250 MB instead of 190 MB.
		debug.SetGCPercent(200)
	}
	runner := projections.NewRunner(b.store, b.db, log)
	// --chain compares every pay address with the nodes: only then are they kept.
	opt := projections.AuditOptions{Addresses: out.chain, Window: out.window}
	if out.progress {
		bar := newProgressBar(stderr)
		opt.Progress = bar.update
		defer bar.done()
	}
	// The read models must be at the log's end while the log is audited. If
	// events became readable meanwhile (appended by a running gateway, or
	// held back by Postgres until an older transaction ended), audit again.
	var rep projections.AuditReport
	for try := 0; try < 5; try++ {
		if err := runner.CatchUp(ctx); err != nil {
			return unreachable(err)
		}
		before := runner.Position()
		if rep, err = projections.AuditWith(ctx, b.store, b.db, opt); err != nil {
			return unreachable(err)
		}
		if err := runner.CatchUp(ctx); err != nil {
			return unreachable(err)
		}
		if runner.Position() == before {
			break
		}
	}
	if rep.Problems == nil {
		rep.Problems = []string{}
	}
	if out.chain {
		return chainAudit(ctx, cfg, b, rep, out, stdout, stderr)
	}
	if out.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			OK bool `json:"ok"`
			projections.AuditReport
		}{rep.OK(), rep}); err != nil {
			return err
		}
	} else {
		printAudit(stdout, rep)
	}
	if !rep.OK() {
		return &exitError{code: exitProblems, err: fmt.Errorf("%w: %d", errAuditMismatch, len(rep.Problems))}
	}
	return nil
}

func printAudit(w io.Writer, rep projections.AuditReport) {
	fmt.Fprintf(w, "audited %d events in %s: %d money events, %d fees recomputed, %d payouts (at most %d open at once), %d conversions; %d read-model rows compared; %d invoices read again from their streams\n\n",
		rep.Events, rep.Elapsed.Round(time.Millisecond), rep.MoneyEvents, rep.FeesChecked, rep.Payouts, rep.PayoutsHeldMost, rep.Conversions, rep.RowsCompared,
		rep.InvoicesRevived)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACCOUNT\tASSET\tBALANCE")
	for _, account := range rep.Accounts() {
		for _, asset := range sortedKeys(rep.Ledger[account]) {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", account, asset, rep.Ledger[account][asset])
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FEE TIER\tASSET\tREVENUE")
	for _, bps := range rep.Tiers() {
		for _, asset := range sortedKeys(rep.FeeRevenue[bps]) {
			tier := fmt.Sprintf("%d bps", bps)
			if bps == 0 {
				tier = "conversion rounding"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", tier, asset, rep.FeeRevenue[bps][asset])
		}
	}
	tw.Flush()
	fmt.Fprintln(w)
	if len(rep.NetworkCosts) > 0 {
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NETWORK COST\tASSET\tPAID BY THE GATEWAY")
		for _, kind := range sortedKeys(rep.NetworkCosts) {
			for _, asset := range sortedKeys(rep.NetworkCosts[kind]) {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", kind, asset, rep.NetworkCosts[kind][asset])
			}
		}
		tw.Flush()
		fmt.Fprintln(w)
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HELD ON CHAIN, BY THE LEDGER\tASSET")
	for _, asset := range sortedKeys(rep.Held) {
		fmt.Fprintf(tw, "%s\t%s\n", rep.Held[asset], asset)
	}
	tw.Flush()
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OPERATOR INCOME\tFEE REVENUE\tNETWORK COSTS\tINCOME")
	for _, asset := range sortedKeys(rep.OperatorIncome) {
		inc := rep.OperatorIncome[asset]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", asset, inc.FeeRevenue, inc.NetworkCosts, inc.Income)
	}
	tw.Flush()
	// Network fees charged in a token for the native coin burned: in the
	// income above, shown apart (they are not the tiers' fees).
	var charged []string
	for _, asset := range sortedKeys(rep.OperatorIncome) {
		if v := rep.OperatorIncome[asset].NetworkFeeRevenue; !v.IsZero() {
			charged = append(charged, fmt.Sprintf("%s %s", v, asset))
		}
	}
	if len(charged) > 0 {
		fmt.Fprintf(w, "  INCOME includes the network fees charged in a token for the coin the hot wallet burned (%s): %s\n",
			domain.NetworkFeeRevenueAccount, strings.Join(charged, ", "))
	}
	fmt.Fprintln(w)
	if len(rep.Debts) == 0 {
		fmt.Fprintln(w, "OPEN DEBTS: none")
	} else {
		fmt.Fprintln(w, "OPEN DEBTS (available below zero after a reversal of funds already paid out; repaid by later credits):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		for _, account := range sortedKeys(rep.Debts) {
			for _, asset := range sortedKeys(rep.Debts[account]) {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", account, asset, rep.Debts[account][asset])
			}
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	checks := []string{
		"postings of every event sum to zero per asset",
		"every fee recomputes from its inputs (amount, bps, rounding)",
		"every invoice is charged the fee of what it credited, no more (charges and refunds recomputed)",
		"every conversion recomputes from its rate, its remainder booked as revenue",
		"every payout sends amount − network fee",
		"no pending or reserved balance ever went negative (log order); negative available is listed as a debt",
		"the fee account equals the revenue per tier",
		"every network cost the gateway paid moves its amount from operator:network_costs to network:fees",
		"every payout's network fee goes to network:fees, or to operator:network_fee_revenue when it is a native coin burned, charged in the token",
		"balances and payouts read models equal the log to the smallest unit",
	}
	for _, c := range checks {
		fmt.Fprintf(w, "  %s\n", c)
	}
	fmt.Fprintln(w)
	if rep.OK() {
		fmt.Fprintln(w, "RESULT: OK, zero mismatches: the log and the read models agree")
		return
	}
	fmt.Fprintf(w, "RESULT: %d PROBLEMS\n", len(rep.Problems))
	for _, p := range rep.Problems {
		fmt.Fprintln(w, "  PROBLEM:", p)
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ { // small maps: insertion sort keeps imports down
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// auditProgress draws the projections' progress bar on one line, at most
// ten times a second.
type auditProgress struct {
	w     io.Writer
	start time.Time
	last  time.Time
	drawn bool
}

func newProgressBar(w io.Writer) *auditProgress { return &auditProgress{w: w, start: time.Now()} }

func (p *auditProgress) update(done int, total int64) {
	now := time.Now()
	if now.Sub(p.last) < 100*time.Millisecond && int64(done) != total {
		return
	}
	p.last, p.drawn = now, true
	fmt.Fprint(p.w, "\raudit "+progressBar(projections.RebuildProgress{Applied: done, Total: total, Elapsed: now.Sub(p.start)}))
}

func (p *auditProgress) done() {
	if p.drawn {
		fmt.Fprintln(p.w)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// verifyChain is "picd audit --verify-chain": every stored event's hash is
// recomputed from the first, and the first that differs is named.
func verifyChain(ctx context.Context, b *backend, out auditOutput, stdout, stderr io.Writer) error {
	var progress func(uint64)
	if out.progress {
		var total int64
		if c, ok := b.store.(interface {
			CountAfter(context.Context, eventstore.Position) (int64, error)
		}); ok {
			total, _ = c.CountAfter(ctx, eventstore.Start)
		}
		bar := newProgressBar(stderr)
		progress = func(done uint64) { bar.update(int(done), total) }
		defer bar.done()
	}
	var at uint64
	if out.at != "" {
		n, err := strconv.ParseUint(out.at, 10, 64)
		if err != nil || n == 0 {
			return &exitError{code: exitUsage, err: fmt.Errorf("audit: --at %q: want a chain seq (1, 2, ...)", out.at)}
		}
		at = n
	}
	rep, err := eventstore.VerifyChainAt(ctx, b.store, time.Now, progress, at)
	if errors.Is(err, eventstore.ErrNoChain) {
		return unreachable(fmt.Errorf("audit --verify-chain: %w (see docs/operations.md#the-hash-chain)", err))
	}
	if err != nil {
		return unreachable(fmt.Errorf("audit --verify-chain: %w", err))
	}
	if out.json {
		type brk struct {
			Seq      uint64 `json:"seq"`
			Position string `json:"position"`
			EventID  string `json:"event_id"`
			Stream   string `json:"stream"`
			Reason   string `json:"reason"`
		}
		j := struct {
			OK        bool   `json:"ok"`
			Events    uint64 `json:"events"`
			HeadSeq   uint64 `json:"head_seq"`
			HeadHash  string `json:"head_hash,omitempty"`
			AtSeq     uint64 `json:"at_seq,omitempty"`
			AtHash    string `json:"at_hash,omitempty"`
			ElapsedMs int64  `json:"elapsed_ms"`
			Break     *brk   `json:"break,omitempty"`
		}{OK: rep.Break == nil, Events: rep.Events, HeadSeq: rep.Head, HeadHash: rep.HeadHash, AtSeq: at, AtHash: rep.AtHash, ElapsedMs: rep.Elapsed.Milliseconds()}
		if rep.Break != nil {
			j.HeadHash = ""
			j.Break = &brk{rep.Break.Seq, rep.Break.Position.String(), rep.Break.EventID, rep.Break.Stream, rep.Break.Reason}
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(j); err != nil {
			return err
		}
	} else if rep.Break == nil {
		if at != 0 {
			fmt.Fprintf(stdout, "at seq %d: hash %s\n", at, rep.AtHash)
		}
		fmt.Fprintf(stdout, "hash chain verified: %d events in %s\nhead: seq %d, hash %s\nRESULT: OK\n", rep.Events, rep.Elapsed.Round(time.Millisecond), rep.Head, rep.HeadHash)
	} else {
		fmt.Fprintf(stdout, "hash chain: %d events verified before the break\nRESULT: PROBLEM: %s\n", rep.Events, rep.Break)
	}
	if rep.Break != nil {
		return &exitError{code: exitProblems, err: fmt.Errorf("%w: %s", errAuditMismatch, rep.Break)}
	}
	return nil
}
