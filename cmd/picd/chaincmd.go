package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/btc"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

const chainUsage = `usage:
  picd chain rescan ASSET --from HEIGHT [--to HEIGHT] [flags]
      scan blocks again for payments of ASSET the watcher missed, and credit them
  picd chain unmatched [--json] [--all] [flags]
      payments to our addresses that no invoice of their asset takes (open ones; --all: decided too)
  picd chain unmatched credit ID --invoice INVOICE_ID [flags]
  picd chain unmatched sweep ID [--note TEXT] [flags]
  picd chain unmatched ignore ID --reason TEXT [flags]
      decide about one: credit it to an invoice of its asset, give it to the operator (swept to the hot wallet; on Bitcoin taken into the wallet's outputs), or ignore it
flags: those of picd serve, as --name=value, or their PIC_* variables, so that it finds the same database and nodes`

// chainCmd runs `picd chain rescan` and `picd chain unmatched`. Both work
// whether picd serve runs or not: a rescan only adds deposits the
// watcher's tables do not have (fenced by deposit id, never moving its
// checkpoint) and sends the ledger the same commands the watcher would;
// the running watcher confirms and finalizes what it added.
func chainCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError(errors.New(chainUsage))
	}
	sub, args := args[0], args[1:]
	if slices.Contains(args, "-h") || slices.Contains(args, "--help") || slices.Contains([]string{"-h", "--help", "help"}, sub) {
		fmt.Fprintln(stdout, chainUsage)
		fmt.Fprintln(stdout, "exit status: 0 ok, 1 failed (a rescan stopped, a decision refused), 2 bad usage, 3 the store or node unreachable")
		return nil
	}
	switch sub {
	case "rescan":
		return rescanCmd(ctx, args, stdout, stderr)
	case "unmatched":
		return unmatchedCmd(ctx, args, stdout, stderr)
	}
	return usageError(fmt.Errorf("unknown chain command %q\n%s", sub, chainUsage))
}

// takeFlags splits args into the named flags' values (--name value,
// --name=value; bools take no value), the positional arguments, and the
// other flags (picd serve's, which must be given as --name=value here).
func takeFlags(args []string, valued, bools []string) (vals map[string]string, positional, other []string, err error) {
	vals = map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !strings.HasPrefix(a, "-") {
			positional = append(positional, a)
			continue
		}
		switch {
		case slices.Contains(bools, name):
			vals[name] = "true"
		case slices.Contains(valued, name):
			if !hasValue {
				if i+1 >= len(args) {
					return nil, nil, nil, fmt.Errorf("flag --%s needs a value", name)
				}
				i++
				value = args[i]
			}
			vals[name] = value
		default:
			other = append(other, a)
		}
	}
	return vals, positional, other, nil
}

// chainEnv is what the chain commands share with picd serve: the
// database, the asset list as serve has it, and the ledger's commands.
type chainEnv struct {
	cfg      Config
	b        *backend
	assets   domain.Assets
	reader   *readapi.SQL
	handlers commands.Handlers
	// btcParams is the configured Bitcoin network: the chain commands
	// never load (or create) the master seed.
	btcParams *chaincfg.Params
	log       *slog.Logger
}

// openChainEnv opens the database; with nodes, it asks the Ethereum node
// which tokens it serves, as picd serve does (a rescan needs the node; the
// unmatched deposits' list and decisions do not).
func openChainEnv(ctx context.Context, flags []string, nodes bool, stderr io.Writer) (*chainEnv, error) {
	cfg, err := parseConfig(flags)
	if err != nil {
		return nil, usageError(err)
	}
	log := newLogger(stderr)
	b, err := openBackend(ctx, cfg, log)
	if err != nil {
		return nil, unreachable(err)
	}
	e := &chainEnv{cfg: cfg, b: b, log: log, reader: readapi.NewSQL(b.db)}
	if e.btcParams, err = hd.NetworkParams(cfg.BTCNetwork); err != nil {
		b.close()
		return nil, usageError(err)
	}
	assets, err := quickStartAssets(cfg, domain.DefaultAssets())
	if err == nil {
		assets, err = withContracts(cfg, assets)
	}
	if err == nil && nodes {
		assets, _, err = ethereumAssets(ctx, cfg, assets, log)
	}
	if err != nil {
		b.close()
		return nil, unreachable(err)
	}
	e.assets = assets
	now := time.Now
	deps := commands.Deps{Store: b.store, Assets: assets, Now: now, NewID: commands.NewIDGenerator(now), Accounts: e.reader}
	e.handlers = commands.New(deps, nil, hd.AddressCheck(e.btcParams))
	return e, nil
}

// rescanner is a chain watcher's rescan, for one asset.
type rescanner func(ctx context.Context, from, to int64, progress func(scan.RescanProgress)) (scan.RescanProgress, error)

// watcherFor builds the watcher of asset's chain as picd serve does, for
// its rescan. Errors: the chain has no node configured (simulated).
func (e *chainEnv) watcherFor(ctx context.Context, a domain.Asset) (rescanner, func(), error) {
	sink := chain.Sink{Commands: e.handlers, Addresses: e.reader}
	switch a.Chain {
	case domain.ChainBitcoin:
		if e.cfg.BTCRPCHost == "" {
			break
		}
		bc, err := btcConfigOn(e.cfg, e.btcParams)
		if err != nil {
			return nil, nil, err
		}
		w, err := btc.New(bc, sink, e.b.db, e.assets, e.log)
		if err != nil {
			return nil, nil, fmt.Errorf("bitcoin watcher: %w", err)
		}
		return w.Rescan, w.Close, nil
	case domain.ChainEthereum:
		if e.cfg.ETHRPCURL == "" {
			break
		}
		w, err := ethWatcher(ctx, e.cfg, sink, e.b.db, e.assets, e.log)
		if err != nil {
			return nil, nil, err
		}
		return func(ctx context.Context, from, to int64, progress func(scan.RescanProgress)) (scan.RescanProgress, error) {
			return w.Rescan(ctx, from, to, []string{a.Code}, progress)
		}, func() {}, nil
	case domain.ChainTron:
		if e.cfg.TronAPIURL == "" {
			break
		}
		w, err := tronWatcher(e.cfg, sink, e.b.db, e.assets, e.log)
		if err != nil {
			return nil, nil, fmt.Errorf("tron watcher: %w", err)
		}
		return func(ctx context.Context, from, to int64, progress func(scan.RescanProgress)) (scan.RescanProgress, error) {
			return w.Rescan(ctx, from, to, []string{a.Code}, progress)
		}, func() {}, nil
	}
	return nil, nil, fmt.Errorf("%s is simulated here (no node configured for %s): there is nothing to rescan", a.Code, a.Chain)
}

func rescanCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	vals, rest, flags, err := takeFlags(args, []string{"from", "to"}, nil)
	if err != nil {
		return err
	}
	if len(rest) != 1 || vals["from"] == "" {
		return usageError(errors.New("usage: picd chain rescan ASSET --from HEIGHT [--to HEIGHT]"))
	}
	from, err := strconv.ParseInt(vals["from"], 10, 64)
	if err != nil || from < 0 {
		return usageError(fmt.Errorf("--from %q: want a block height", vals["from"]))
	}
	var to int64
	if v := vals["to"]; v != "" {
		if to, err = strconv.ParseInt(v, 10, 64); err != nil || to < from {
			return usageError(fmt.Errorf("--to %q: want a block height at or above --from", v))
		}
	}
	e, err := openChainEnv(ctx, flags, true, stderr)
	if err != nil {
		return err
	}
	defer e.b.close()
	a, err := e.assets.Lookup(rest[0])
	if err != nil {
		return usageError(fmt.Errorf("asset %q: %w", rest[0], err))
	}
	rescan, closeWatcher, err := e.watcherFor(ctx, a)
	if err != nil {
		return err
	}
	defer closeWatcher()
	start := time.Now()
	p, err := rescan(ctx, from, to, func(p scan.RescanProgress) {
		done := float64(p.Height-p.From+1) / float64(max(p.To-p.From+1, 1))
		fmt.Fprintf(stdout, "rescanning %s blocks %d-%d: at %d (%.0f%%), %d found, %d new, %d already known\n",
			a.Code, p.From, p.To, p.Height, done*100, p.Found, p.New, p.Known)
	})
	if err != nil {
		return fmt.Errorf("rescan of %s stopped at block %d (run it again from there; nothing is credited twice): %w", a.Code, p.Height+1, err)
	}
	fmt.Fprintf(stdout, "rescanned %s blocks %d-%d in %s: %d found, %d new (%d credited now, %d unmatched), %d already known\n",
		a.Code, p.From, p.To, time.Since(start).Round(time.Millisecond), p.Found, p.New, p.Confirmed, p.Unmatched, p.Known)
	if p.New > p.Confirmed+p.Unmatched {
		fmt.Fprintln(stdout, "deposits not yet deep enough are confirmed by the running watcher (picd serve)")
	}
	if p.Unmatched > 0 {
		fmt.Fprintln(stdout, "unmatched deposits wait for a decision: picd chain unmatched")
	}
	return nil
}

func unmatchedCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	vals, rest, flags, err := takeFlags(args, []string{"invoice", "reason", "note"}, []string{"json", "all"})
	if err != nil {
		return err
	}
	e, err := openChainEnv(ctx, flags, false, stderr)
	if err != nil {
		return err
	}
	defer e.b.close()
	u := chain.Unmatched{DB: e.b.db}
	if len(rest) == 0 {
		statuses := []string{chain.UnmatchedOpen, chain.UnmatchedCrediting}
		if vals["all"] == "true" {
			statuses = nil
		}
		list, err := u.List(ctx, statuses...)
		if err != nil {
			return err
		}
		if vals["json"] == "true" {
			if list == nil {
				list = []chain.UnmatchedDeposit{}
			}
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			return enc.Encode(list)
		}
		if len(list) == 0 {
			fmt.Fprintln(stdout, "no unmatched deposits")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tCHAIN\tASSET\tAMOUNT\tADDRESS\tTXID\tINDEX\tBLOCK\tSTATUS\tINVOICE/NOTE")
		for _, d := range list {
			index := strconv.FormatInt(d.OutputIndex, 10)
			if d.OutputIndex < 0 {
				index = "-"
			}
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Chain, d.Asset, d.Amount, d.Address, d.TxID, index,
				d.BlockHeight, d.Status, d.InvoiceID+d.Note)
		}
		return tw.Flush()
	}
	if len(rest) != 2 {
		return usageError(errors.New(chainUsage))
	}
	id, err := strconv.ParseInt(rest[1], 10, 64)
	if err != nil {
		return usageError(fmt.Errorf("unmatched deposit id %q: want the number picd chain unmatched shows", rest[1]))
	}
	switch rest[0] {
	case "credit":
		return e.creditUnmatched(ctx, u, id, vals["invoice"], stdout)
	case "sweep":
		if err := u.Decide(ctx, id, chain.UnmatchedSweep, "", vals["note"], time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "unmatched deposit %d marked to sweep to the hot wallet; no invoice is credited\n", id)
		return nil
	case "ignore":
		if strings.TrimSpace(vals["reason"]) == "" {
			return usageError(errors.New("picd chain unmatched ignore ID --reason TEXT: say why (kept with the deposit)"))
		}
		if err := u.Decide(ctx, id, chain.UnmatchedIgnored, "", vals["reason"], time.Now()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "unmatched deposit %d ignored: %s\n", id, vals["reason"])
		return nil
	}
	return usageError(fmt.Errorf("unknown unmatched command %q: want credit, sweep or ignore", rest[0]))
}

// creditUnmatched credits an unmatched deposit to an invoice of its asset
// through the ledger's ObserveDeposit, then hands it to the chain's
// watcher, which confirms it by depth and makes it final as any payment.
// The decision is taken first (crediting, fenced), so two operators
// cannot credit one deposit to two invoices; run again, it finishes.
func (e *chainEnv) creditUnmatched(ctx context.Context, u chain.Unmatched, id int64, invoiceID string, stdout io.Writer) error {
	if invoiceID == "" {
		return usageError(errors.New("picd chain unmatched credit ID --invoice INVOICE_ID"))
	}
	d, err := u.Get(ctx, id)
	if err != nil {
		return err
	}
	inv, err := e.reader.InvoiceByID(ctx, "", invoiceID)
	if err != nil {
		return err
	}
	if inv.Asset != d.Asset {
		return fmt.Errorf("invoice %s is for %s; deposit %d is %s %s: credit it to an invoice of %s", invoiceID, inv.Asset, id, d.Amount, d.Asset, d.Asset)
	}
	a, err := e.assets.Lookup(d.Asset)
	if err != nil {
		return err
	}
	amount, err := domain.ParseAmount(d.Amount, a.Decimals)
	if err != nil {
		return err
	}
	now := time.Now()
	if err := u.Decide(ctx, id, chain.UnmatchedCrediting, invoiceID, "", now); err != nil {
		return err
	}
	if _, err := e.handlers.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{InvoiceID: invoiceID,
		Deposit: domain.ObservedDeposit{DepositID: d.DepositID, TxID: d.TxID, Amount: amount}}); err != nil {
		return fmt.Errorf("credit deposit %d to %s: %w", id, invoiceID, err)
	}
	required := max(a.Confirmations, inv.RequiredConfirmations)
	switch d.Chain {
	case "btc":
		err = btc.CreditUnmatched(ctx, e.b.db, d, invoiceID, now)
	case "eth":
		err = eth.CreditUnmatched(ctx, e.b.db, d, invoiceID, required, now)
	case "tron":
		err = tron.CreditUnmatched(ctx, e.b.db, d, invoiceID, required, now)
	default:
		err = fmt.Errorf("deposit %d is on %q, which has no watcher", id, d.Chain)
	}
	if err != nil {
		return err
	}
	if err := u.Decide(ctx, id, chain.UnmatchedCredited, invoiceID, "", now); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "unmatched deposit %d (%s %s, tx %s) credited to invoice %s; the watcher confirms it at its next scan\n",
		id, d.Amount, d.Asset, d.TxID, invoiceID)
	return nil
}

// registerUnmatchedMetrics exposes picd_chain_unmatched_deposits{asset}:
// the deposits waiting for an operator's decision.
func registerUnmatchedMetrics(reg prometheus.Registerer, db sqldb.DB, assets domain.Assets) {
	reg.MustRegister(unmatchedCollector{u: chain.Unmatched{DB: db}, assets: assets,
		desc: prometheus.NewDesc("picd_chain_unmatched_deposits",
			"Payments to our addresses that no invoice of their asset takes, waiting for a decision (picd chain unmatched).",
			[]string{"asset"}, nil)})
}

type unmatchedCollector struct {
	u      chain.Unmatched
	assets domain.Assets
	desc   *prometheus.Desc
}

func (c unmatchedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

// Collect reports every asset, 0 included, so an alert sees the series
// before the first unmatched deposit; -1 when the table cannot be read.
func (c unmatchedCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	counts, err := c.u.OpenByAsset(ctx)
	for _, a := range c.assets.List() {
		n := float64(counts[a.Code])
		if err != nil {
			n = -1
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, a.Code)
	}
}
