package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/btc"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/chain/sim"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/reserves"
)

// reservesReport is picd audit --chain's answer.
type reservesReport struct {
	OK     bool             `json:"ok"`
	Assets []reserves.Asset `json:"assets"`
	Chains []reservesChain  `json:"chains"`
	// InFlight lists transactions whose coins may be on their way:
	// payouts signed or sent, sweeps not ended.
	InFlight []string `json:"in_flight"`
	// Problems are costs the chain's records show and the log does not
	// book as they were paid.
	Problems []string `json:"problems"`
	// Skipped names the assets not compared, and why.
	Skipped        []string `json:"skipped"`
	LedgerProblems int      `json:"ledger_problems"`
	ElapsedMs      int64    `json:"elapsed_ms"`
}

// reservesChain is where a chain was read: the block pinned and how far
// the gateway's watcher had scanned.
type reservesChain struct {
	Chain     string `json:"chain"`
	Height    uint64 `json:"height"`
	Hash      string `json:"hash"`
	Head      uint64 `json:"head"`
	Scanned   int64  `json:"scanned"` // the watcher's checkpoint; -1: none
	Addresses int    `json:"addresses"`
}

// maxDiffers bounds the per-address lines printed without --verbose.
const maxDiffers = 20

// chainAudit is picd audit --chain: the ledger's holdings per asset
// against the balances of the gateway's addresses on each configured
// node, at one block per chain.
func chainAudit(ctx context.Context, cfg Config, b *backend, rep projections.AuditReport, out auditOutput, stdout, stderr io.Writer) error {
	start := time.Now()
	res := reservesReport{LedgerProblems: len(rep.Problems), Assets: []reserves.Asset{}, InFlight: []string{}, Skipped: []string{},
		Problems: []string{}}
	for _, p := range rep.InFlightPayouts() {
		res.InFlight = append(res.InFlight, fmt.Sprintf("payout %s %s %s %s, tx %s", p.PayoutID, p.Amount, p.Asset, p.Status, p.TxID))
	}
	assets, err := quickStartAssets(cfg, domain.DefaultAssets())
	if err != nil {
		return unreachable(err)
	}
	if cfg.ETHRPCURL != "" {
		if err := ethReserves(ctx, cfg, b, rep, assets, out, stderr, &res); err != nil {
			return err
		}
	}
	if cfg.BTCRPCHost != "" {
		if err := btcReserves(ctx, cfg, b, rep, assets, out, stderr, &res); err != nil {
			return err
		}
	}
	if cfg.TronAPIURL != "" {
		if err := tronReserves(ctx, cfg, b, rep, assets, out, stderr, &res); err != nil {
			return err
		}
	}
	simulated := map[domain.Chain]bool{}
	// As serve decides it: the quick start (no node, PIC_SIMULATOR unset)
	// simulated every chain, so its data directory is audited the same.
	quickStart := !cfg.simulatorSet && cfg.BTCRPCHost == "" && cfg.ETHRPCURL == "" && cfg.TronAPIURL == ""
	if cfg.Simulator || quickStart {
		for _, c := range simulatedChains(cfg) {
			simulated[c] = true
			if err := simReserves(ctx, b, rep, assets, c, &res); err != nil {
				return err
			}
		}
	}
	for _, a := range assets.List() {
		if a.Chain == domain.ChainEthereum && cfg.ETHRPCURL != "" || a.Chain == domain.ChainBitcoin && cfg.BTCRPCHost != "" ||
			a.Chain == domain.ChainTron && cfg.TronAPIURL != "" || simulated[a.Chain] {
			continue
		}
		if held := rep.Held[a.Code]; !held.IsZero() {
			res.Skipped = append(res.Skipped, fmt.Sprintf("%s (ledger holds %s): not compared by this build", a.Code, held))
		}
	}
	res.OK = res.LedgerProblems == 0 && len(res.Problems) == 0
	for _, a := range res.Assets {
		res.OK = res.OK && a.OK
	}
	res.ElapsedMs = time.Since(start).Milliseconds()
	if out.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			return err
		}
	} else {
		printReserves(stdout, res, out.verbose)
	}
	if !res.OK {
		return &exitError{code: exitProblems, err: fmt.Errorf("%w: the chain does not hold what the ledger says", errAuditMismatch)}
	}
	return nil
}

// auditWallet derives the gateway's keys without ever creating a seed:
// an audit of a data directory without one must not make one up.
func auditWallet(cfg Config) (*hd.Wallet, error) {
	if cfg.Mnemonic == "" {
		if _, err := os.Stat(cfg.MnemonicFile); err != nil {
			return nil, fmt.Errorf("audit --chain: the hot wallet's address needs the master seed (PIC_MNEMONIC or %s): %w", cfg.MnemonicFile, err)
		}
	}
	return keys(cfg, newLogger(io.Discard))
}

// hotWallets are the chain's hot wallet (at index in the current seed
// generation) and the older generations' (retired), as key writes them.
func hotWallets(wallet *hd.Wallet, c domain.Chain, index int64, key func(string) string) (hot string, retired []string, err error) {
	a, err := wallet.Address(c, wallet.Current(index))
	if err != nil {
		return "", nil, err
	}
	for _, n := range wallet.Retired(index) {
		r, err := wallet.Address(c, n)
		if err != nil {
			return "", nil, err
		}
		retired = append(retired, key(r))
	}
	return key(a), retired, nil
}

// poolHotWallets counts what the retired hot wallets hold as the hot
// wallet's: the gateway's own funds, which the sender moves from them
// into it (a move within the pool; its gas is a booked network cost).
// Their sweeps' flows are that move, so no address is expected of them.
func poolHotWallets(hot string, retired []string, onChain, expected map[string]*big.Int) {
	if onChain[hot] == nil {
		onChain[hot] = new(big.Int)
	}
	for _, r := range retired {
		if v := onChain[r]; v != nil {
			onChain[hot] = new(big.Int).Add(onChain[hot], v)
		}
		delete(onChain, r)
		delete(expected, r)
	}
}

// ethReserves compares ETH and the ERC-20 assets: every pay address of an
// Ethereum invoice and the hot wallet, read at one block.
func ethReserves(ctx context.Context, cfg Config, b *backend, rep projections.AuditReport, assets domain.Assets,
	out auditOutput, stderr io.Writer, res *reservesReport) error {
	wallet, err := auditWallet(cfg)
	if err != nil {
		return unreachable(err)
	}
	hot, retired, err := hotWallets(wallet, domain.ChainEthereum, eth.DefaultHotWalletIndex, strings.ToLower)
	if err != nil {
		return unreachable(err)
	}
	client, err := eth.Dial(ctx, cfg.ETHRPCURL)
	if err != nil {
		return unreachable(err)
	}
	defer client.Close()
	head, err := client.PinHead(ctx)
	if err != nil {
		return unreachable(fmt.Errorf("audit --chain: Ethereum node %s: %w", cfg.ETHRPCURL, err))
	}
	scanned, err := checkpoint(ctx, b, "eth_scan_checkpoint")
	if err != nil {
		return unreachable(err)
	}
	// Pin where the watcher has scanned: a payment above it is on chain
	// and not yet in the ledger.
	at := head
	if scanned >= 0 && uint64(scanned) < head.Height {
		if at, err = client.PinAt(ctx, uint64(scanned)); err != nil {
			return unreachable(err)
		}
	}
	var ethAssets []domain.Asset
	addrSet := map[string]bool{hot: true}
	for _, r := range retired {
		addrSet[r] = true
	}
	for _, a := range assets.List() {
		if a.Chain != domain.ChainEthereum {
			continue
		}
		if c := ethContracts(cfg)[a.Code]; c != "" {
			a.Contract = c
		}
		ethAssets = append(ethAssets, a)
		for addr := range rep.PayAddresses[a.Code] {
			addrSet[strings.ToLower(addr)] = true
		}
	}
	addrs := make([]common.Address, 0, len(addrSet))
	for a := range addrSet {
		addrs = append(addrs, common.HexToAddress(a))
	}
	sort.Slice(addrs, func(i, j int) bool { return strings.ToLower(addrs[i].Hex()) < strings.ToLower(addrs[j].Hex()) })
	res.Chains = append(res.Chains, reservesChain{Chain: string(domain.ChainEthereum), Height: at.Height, Hash: at.Hash, Head: head.Height,
		Scanned: scanned, Addresses: len(addrs)})
	native := ""
	for _, a := range ethAssets {
		if a.Native() {
			native = a.Code
		}
	}
	decimals := int32(18)
	for _, a := range ethAssets {
		if a.Native() {
			decimals = a.Decimals
		}
	}
	flows, err := eth.SweepFlows(ctx, b.db, native, costUnits(rep, decimals))
	if err != nil {
		return unreachable(err)
	}
	res.InFlight = append(res.InFlight, flows.InFlight...)
	res.Problems = append(res.Problems, flows.Problems...)
	costs, err := eth.CostProblems(ctx, b.db, native, costUnits(rep, decimals))
	if err != nil {
		return unreachable(err)
	}
	res.Problems = append(res.Problems, costs...)
	notes, err := addressNotes(ctx, b, flows.Addresses)
	if err != nil {
		return unreachable(err)
	}
	for _, a := range ethAssets {
		var progress func(int)
		if out.progress {
			bar := newProgressBar(stderr)
			progress = func(done int) { bar.update(done, int64(len(addrs))) }
			defer bar.done()
		}
		balances, err := client.BalancesAt(ctx, at, a.Contract, addrs, progress)
		if err != nil {
			return unreachable(fmt.Errorf("audit --chain: %s: %w", a.Code, err))
		}
		onChain := make(map[string]*big.Int, len(addrs))
		for i, addr := range addrs {
			onChain[strings.ToLower(addr.Hex())] = balances[i]
		}
		expected, err := expectedAt(ctx, b, "eth", a, rep.Deposits[a.Code], flows.Delta[a.Code], strings.ToLower)
		if err != nil {
			return err
		}
		poolHotWallets(hot, retired, onChain, expected)
		r := reserves.Compare(reserves.Input{Asset: a.Code, Decimals: a.Decimals, Held: rep.Held[a.Code], Expected: expected,
			Role: reserves.RoleDeposit, Hot: hot, Chain: onChain, Notes: notes})
		r.Height, r.BlockHash = at.Height, at.Hash
		res.Assets = append(res.Assets, r)
	}
	return nil
}

// tronReserves compares TRX and the TRC-20 assets: every pay address of
// a TRON invoice and the hot wallet, at the node's newest block (the API
// reads no older state: the block is read before and after).
func tronReserves(ctx context.Context, cfg Config, b *backend, rep projections.AuditReport, assets domain.Assets,
	out auditOutput, stderr io.Writer, res *reservesReport) error {
	wallet, err := auditWallet(cfg)
	if err != nil {
		return unreachable(err)
	}
	hot, retired, err := hotWallets(wallet, domain.ChainTron, tron.DefaultHotWalletIndex, func(addr string) string { return addr })
	if err != nil {
		return unreachable(err)
	}
	client := tronClient(cfg)
	var list []domain.Asset
	addrSet := map[string]bool{hot: true}
	for _, r := range retired {
		addrSet[r] = true
	}
	native := ""
	for _, a := range assets.List() {
		if a.Chain != domain.ChainTron {
			continue
		}
		if c := tronContracts(cfg)[a.Code]; c != "" {
			a.Contract = c
		}
		if a.Native() {
			native = a.Code
		}
		list = append(list, a)
		for addr := range rep.PayAddresses[a.Code] {
			addrSet[addr] = true
		}
	}
	addrs := sortedKeys(addrSet)
	decimalsOf := map[string]int32{}
	for _, a := range list {
		decimalsOf[a.Code] = a.Decimals
	}
	flows, err := tron.SweepFlows(ctx, b.db, native, costUnits(rep, decimalsOf[native]))
	if err != nil {
		return unreachable(err)
	}
	res.InFlight = append(res.InFlight, flows.InFlight...)
	costs, err := tron.PayoutCostProblems(ctx, b.db, native, costUnits(rep, decimalsOf[native]))
	if err != nil {
		return unreachable(err)
	}
	res.Problems = append(res.Problems, costs...)
	notes, err := addressNotes(ctx, b, flows.Addresses)
	if err != nil {
		return unreachable(err)
	}
	before, err := client.NowBlock(ctx)
	if err != nil {
		return unreachable(fmt.Errorf("audit --chain: TRON API %s: %w", cfg.TronAPIURL, err))
	}
	scanned, err := checkpoint(ctx, b, "tron_scan_checkpoint")
	if err != nil {
		return unreachable(err)
	}
	for _, a := range list {
		var progress func(int)
		if out.progress {
			bar := newProgressBar(stderr)
			progress = func(done int) { bar.update(done, int64(len(addrs))) }
			defer bar.done()
		}
		balances, err := tron.BalancesAt(ctx, client, a.Contract, addrs, progress)
		if err != nil {
			return unreachable(fmt.Errorf("audit --chain: %s: %w", a.Code, err))
		}
		onChain := make(map[string]*big.Int, len(addrs))
		for i, addr := range addrs {
			onChain[addr] = balances[i]
		}
		// Base58 addresses are case-sensitive: kept as they are.
		expected, err := expectedAt(ctx, b, "tron", a, rep.Deposits[a.Code], flows.Delta[a.Code], func(addr string) string { return addr })
		if err != nil {
			return err
		}
		poolHotWallets(hot, retired, onChain, expected)
		r := reserves.Compare(reserves.Input{Asset: a.Code, Decimals: a.Decimals, Held: rep.Held[a.Code], Expected: expected,
			Role: reserves.RoleDeposit, Hot: hot, Chain: onChain, Notes: notes})
		r.Height, r.BlockHash = uint64(before.Number()), before.BlockID
		res.Assets = append(res.Assets, r)
	}
	after, err := client.NowBlock(ctx)
	if err != nil {
		return unreachable(fmt.Errorf("audit --chain: TRON API %s: %w", cfg.TronAPIURL, err))
	}
	if after.Number() != before.Number() {
		res.InFlight = append(res.InFlight, fmt.Sprintf("TRON: blocks %d to %d were made while the balances were read", before.Number()+1, after.Number()))
	}
	res.Chains = append(res.Chains, reservesChain{Chain: string(domain.ChainTron), Height: uint64(before.Number()), Hash: before.BlockID,
		Head: uint64(after.Number()), Scanned: scanned, Addresses: len(addrs)})
	return nil
}

// btcReserves compares BTC: the outputs the gateway's tables hold
// (wallet and deposits not yet taken in) against gettxout, per address.
func btcReserves(ctx context.Context, cfg Config, b *backend, rep projections.AuditReport, assets domain.Assets,
	out auditOutput, stderr io.Writer, res *reservesReport) error {
	asset, err := assets.Lookup("BTC")
	if err != nil {
		return nil // no Bitcoin asset configured
	}
	wallet, err := auditWallet(cfg)
	if err != nil {
		return unreachable(err)
	}
	bc, err := btcConfig(cfg, wallet)
	if err != nil {
		return unreachable(err)
	}
	outs, err := btc.ExpectedOutputs(ctx, b.db, rep.PayoutStatus)
	if err != nil {
		return unreachable(err)
	}
	var progress func(int)
	if out.progress {
		bar := newProgressBar(stderr)
		progress = func(done int) { bar.update(done, int64(len(outs))) }
		defer bar.done()
	}
	tip, sats, err := btc.ReadOutputs(ctx, bc, outs, progress)
	if err != nil {
		return unreachable(fmt.Errorf("audit --chain: Bitcoin node %s: %w", cfg.BTCRPCHost, err))
	}
	scanned, err := checkpoint(ctx, b, "chain_btc_checkpoint")
	if err != nil {
		return unreachable(err)
	}
	expected, onChain, notes := map[string]*big.Int{}, map[string]*big.Int{}, map[string]string{}
	for i, o := range outs {
		if expected[o.Address] == nil {
			expected[o.Address], onChain[o.Address] = new(big.Int), new(big.Int)
		}
		expected[o.Address].Add(expected[o.Address], big.NewInt(o.Sat))
		if sats[i] >= 0 {
			onChain[o.Address].Add(onChain[o.Address], big.NewInt(sats[i]))
		} else {
			o.Note = strings.TrimSpace(o.Note + " " + o.OutPoint + " spent or unknown to the node")
		}
		if o.Note != "" {
			notes[o.Address] = strings.TrimPrefix(notes[o.Address]+"; "+o.Note, "; ")
		}
	}
	res.Chains = append(res.Chains, reservesChain{Chain: string(domain.ChainBitcoin), Height: uint64(tip.Height), Hash: tip.Hash,
		Head: uint64(tip.Height), Scanned: scanned, Addresses: len(expected)})
	// The unmatched deposits an operator had swept are outputs of the
	// wallet that no merchant is owed: the operator float.
	float, err := btc.OperatorFloat(ctx, b.db)
	if err != nil {
		return unreachable(err)
	}
	r := reserves.Compare(reserves.Input{Asset: asset.Code, Decimals: asset.Decimals, Held: rep.Held[asset.Code], Expected: expected,
		Role: reserves.RoleOutput, Chain: onChain, Notes: notes, Float: big.NewInt(float)})
	r.Height, r.BlockHash = uint64(tip.Height), tip.Hash
	res.Assets = append(res.Assets, r)
	return nil
}

// simPayouts stands for where a simulated chain's payouts come from: it
// has no hot wallet, so what they took is one pool.
const simPayouts = "(payouts)"

// simReserves compares the assets of a simulated chain with its state.
func simReserves(ctx context.Context, b *backend, rep projections.AuditReport, assets domain.Assets, c domain.Chain, res *reservesReport) error {
	h, err := sim.HoldingsOf(ctx, b.db, c)
	if err != nil {
		return unreachable(err)
	}
	res.InFlight = append(res.InFlight, h.Mempool...)
	addrs := map[string]bool{}
	var list []domain.Asset
	for _, a := range assets.List() {
		if a.Chain != c {
			continue
		}
		list = append(list, a)
		for addr := range rep.PayAddresses[a.Code] {
			addrs[addr] = true
		}
		for addr := range h.Addresses[a.Code] {
			addrs[addr] = true
		}
	}
	held := false
	for _, a := range list {
		held = held || !rep.Held[a.Code].IsZero()
	}
	if len(addrs) == 0 && !held {
		return nil // nothing paid on it, nothing held: nothing to compare
	}
	res.Chains = append(res.Chains, reservesChain{Chain: string(c) + " (simulated)", Height: uint64(h.Height), Head: uint64(h.Height),
		Scanned: h.Height, Addresses: len(addrs)})
	for _, a := range list {
		units := func(v domain.Amount) (*big.Int, error) { return v.BaseUnits(a.Decimals) }
		onChain, expected := map[string]*big.Int{}, map[string]*big.Int{}
		rest := rep.Held[a.Code]
		for addr := range addrs {
			var err error
			if onChain[addr], err = units(h.Addresses[a.Code][addr]); err != nil {
				return err
			}
			v := rep.Deposits[a.Code][addr]
			rest = rest.Sub(v)
			if expected[addr], err = units(v); err != nil {
				return err
			}
		}
		var err1, err2 error
		onChain[simPayouts], err1 = units(h.Spent[a.Code].Neg())
		expected[simPayouts], err2 = units(rest)
		if err := errors.Join(err1, err2); err != nil {
			return fmt.Errorf("audit --chain: %s: %w", a.Code, err)
		}
		r := reserves.Compare(reserves.Input{Asset: a.Code, Decimals: a.Decimals, Held: rep.Held[a.Code], Expected: expected,
			Role: reserves.RoleDeposit, Chain: onChain})
		r.Height = uint64(h.Height)
		r.Addresses = len(addrs)
		res.Assets = append(res.Assets, r)
	}
	return nil
}

// checkpoint is the block a watcher has scanned to (-1: never scanned).
func checkpoint(ctx context.Context, b *backend, table string) (int64, error) {
	var h int64
	err := b.db.Read.QueryRowContext(ctx, `SELECT height FROM `+table+` WHERE id = 1`).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return -1, nil
	}
	if err != nil {
		return 0, fmt.Errorf("audit --chain: %s: %w", table, err)
	}
	return h, nil
}

// expectedAt is what each pay address should hold of asset a by the log:
// the deposits that arrived there, the unmatched deposits a sweep took from
// it, and what the gateway's own sweeps moved (delta). key writes an
// address as the chain's balances are keyed.
func expectedAt(ctx context.Context, b *backend, chainName string, a domain.Asset, deposits map[string]domain.Amount,
	delta map[string]*big.Int, key func(string) string) (map[string]*big.Int, error) {
	expected := map[string]*big.Int{}
	for addr, v := range deposits {
		u, err := v.BaseUnits(a.Decimals)
		if err != nil {
			return nil, fmt.Errorf("audit --chain: %s deposits of %s: %w", a.Code, addr, err)
		}
		expected[key(addr)] = u
	}
	if err := addUnmatchedSwept(ctx, b, chainName, a, expected, key); err != nil {
		return nil, unreachable(err)
	}
	for addr, d := range delta {
		if expected[addr] == nil {
			expected[addr] = new(big.Int)
		}
		expected[addr] = new(big.Int).Add(expected[addr], d)
	}
	return expected, nil
}

// addUnmatchedSwept adds to expected the unmatched deposits of asset a
// that a sweep moved to the hot wallet (status swept): they arrived at the
// address, and the sweep that took them is in the sweep flows. No event
// holds them, so in the hot wallet they read as operator float.
func addUnmatchedSwept(ctx context.Context, b *backend, chainName string, a domain.Asset, expected map[string]*big.Int, key func(string) string) error {
	rows, err := b.db.Read.QueryContext(ctx, b.db.Q(`SELECT address, amount FROM chain_unmatched_deposits WHERE chain = ? AND asset = ? AND status = ?`),
		chainName, a.Code, chain.UnmatchedSwept)
	if err != nil {
		return fmt.Errorf("audit --chain: unmatched deposits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var addr, amount string
		if err := rows.Scan(&addr, &amount); err != nil {
			return err
		}
		v, err := domain.ParseAmount(amount, a.Decimals)
		if err != nil {
			return fmt.Errorf("audit --chain: unmatched deposit of %s: %w", addr, err)
		}
		u, err := v.BaseUnits(a.Decimals)
		if err != nil {
			return err
		}
		addr = key(addr)
		if expected[addr] == nil {
			expected[addr] = new(big.Int)
		}
		expected[addr] = new(big.Int).Add(expected[addr], u)
	}
	return rows.Err()
}

// costUnits is the network cost the log booked for a transaction, in base
// units of decimals (0 when it booked none).
func costUnits(rep projections.AuditReport, decimals int32) func(txid string) *big.Int {
	return func(txid string) *big.Int {
		u, err := rep.CostOf(txid).BaseUnits(decimals)
		if err != nil {
			return new(big.Int)
		}
		return u
	}
}

// addressNotes is what the report says beside an address that differs:
// a sweep of it not ended (sweeping, lower-case addresses), an unmatched
// deposit on it.
func addressNotes(ctx context.Context, b *backend, sweeping map[string]bool) (map[string]string, error) {
	notes := map[string]string{}
	for addr := range sweeping {
		notes[addr] = "a sweep of this address has not ended"
	}
	return notes, unmatchedNotes(ctx, b, notes)
}

// unmatchedNotes marks the addresses holding a deposit no invoice took.
func unmatchedNotes(ctx context.Context, b *backend, notes map[string]string) error {
	rows, err := b.db.Read.QueryContext(ctx, `SELECT id, address, asset, amount, status FROM chain_unmatched_deposits`)
	if err != nil {
		return fmt.Errorf("audit --chain: unmatched deposits: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var addr, asset, amount, status string
		if err := rows.Scan(&id, &addr, &asset, &amount, &status); err != nil {
			return err
		}
		if status == chain.UnmatchedCredited || status == chain.UnmatchedSwept {
			continue
		}
		addr = strings.ToLower(addr)
		note := fmt.Sprintf("unmatched deposit %d: %s %s (%s)", id, amount, asset, status)
		if notes[addr] != "" {
			note = notes[addr] + "; " + note
		}
		notes[addr] = note
	}
	return rows.Err()
}

func printReserves(w io.Writer, res reservesReport, verbose bool) {
	for _, c := range res.Chains {
		fmt.Fprintf(w, "%s: balances at block %d (%s); node head %d, watcher scanned to %d; %d addresses\n",
			c.Chain, c.Height, c.Hash, c.Head, c.Scanned, c.Addresses)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ASSET\tLEDGER\tCHAIN\tDIFFERENCE\tOPERATOR FLOAT\tADDRESSES\tRESULT")
	for _, a := range res.Assets {
		result := "OK"
		if !a.OK {
			result = fmt.Sprintf("%d DIFFER", len(a.Differ))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", a.Asset, a.Ledger, a.Chain, a.Diff, a.Float, a.Addresses, result)
	}
	tw.Flush()
	for _, a := range res.Assets {
		if a.OK {
			continue
		}
		fmt.Fprintf(w, "\n%s: addresses that differ (chain − ledger)\n", a.Asset)
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ADDRESS\tROLE\tLEDGER\tCHAIN\tDIFFERENCE\tNOTE")
		for i, d := range a.Differ {
			if i == maxDiffers && !verbose {
				fmt.Fprintf(tw, "… %d more (--verbose or --json lists all)\n", len(a.Differ)-maxDiffers)
				break
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", d.Address, d.Role, d.Ledger, d.Chain, d.Diff, d.Note)
		}
		tw.Flush()
	}
	fmt.Fprintln(w)
	if len(res.InFlight) > 0 {
		fmt.Fprintln(w, "IN FLIGHT (may explain a difference; audit again once they end):")
		for _, f := range res.InFlight {
			fmt.Fprintln(w, "  "+f)
		}
	}
	for _, s := range res.Skipped {
		fmt.Fprintln(w, "NOT COMPARED: "+s)
	}
	for _, p := range res.Problems {
		fmt.Fprintln(w, "PROBLEM: "+p)
	}
	if res.LedgerProblems > 0 {
		fmt.Fprintf(w, "LEDGER: %d problems (picd audit lists them)\n", res.LedgerProblems)
	}
	if res.OK {
		fmt.Fprintln(w, "RESULT: OK, the chain holds what the ledger says")
		return
	}
	fmt.Fprintln(w, "RESULT: MISMATCH")
}
