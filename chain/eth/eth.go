// Package eth watches Ethereum over JSON-RPC (go-ethereum's ethclient) for
// payments to invoice addresses: native ETH transfers and ERC-20 Transfer
// logs of the configured token contracts (USDT.ETH). It reports them to the
// ledger through a chain.Sink, confirms them by block depth, makes them
// final once the node's finalized block covers them (money rule 4),
// reverts the ones a reorg removed, and keeps its scan checkpoint, recent
// block hashes and reported deposits in its own tables of the read-model
// database, so a restart at any block (or after hours down) misses nothing.
//
// Out of scope: ETH moved to our addresses by contracts (internal
// transactions) is not seen; it needs call tracing, which public nodes
// rarely offer.
package eth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Client is the part of go-ethereum's JSON-RPC client the watcher uses.
// *ethclient.Client implements it, and so does the client of
// ethclient/simulated's Backend.
type Client interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
	BlockByNumber(ctx context.Context, number *big.Int) (*types.Block, error)
	TransactionReceipt(ctx context.Context, txHash common.Hash) (*types.Receipt, error)
	CodeAt(ctx context.Context, account common.Address, blockNumber *big.Int) ([]byte, error)
	FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error)
}

var _ Client = (*ethclient.Client)(nil)

// Dial connects to an Ethereum node's JSON-RPC endpoint (http(s)://, ws(s)://
// or an IPC path). Close the client when done.
func Dial(ctx context.Context, rawURL string) (*NodeClient, error) {
	c, err := rpc.DialContext(ctx, rawURL)
	if err != nil {
		return nil, fmt.Errorf("eth: dial: %w", err)
	}
	return NewNodeClient(c), nil
}

// Config tunes the watcher. The zero value is usable.
type Config struct {
	// Confirmations overrides an asset's confirmation threshold by asset
	// code (tests, private chains). A deposit is never confirmed below its
	// invoice's required_confirmations: the domain refuses that.
	Confirmations map[string]int
	// Finality overrides, by asset code, when a credited deposit becomes
	// final and its money available: at that depth, instead of once the
	// node's finalized block covers it (tests, private chains). A node
	// without a finalized block falls back to the asset's finality depth.
	Finality map[string]int
	// Contracts overrides token contract addresses by asset code (a test
	// deploys its own token; a testnet has other addresses).
	Contracts map[string]string
	// StartBlock is where the first scan starts when no checkpoint is
	// stored; 0 means the chain's head at that moment.
	StartBlock uint64
	// BatchBlocks is how many blocks one FilterLogs call and one checkpoint
	// transaction cover (default 50).
	BatchBlocks int
	// KeepBlocks is how many recent block hashes are kept to find the fork
	// point of a reorg (default 256).
	KeepBlocks int
	// PollInterval is the pause between scans in Run (default 5 s);
	// MaxBackoff bounds the pause after failures (default 1 min).
	PollInterval time.Duration
	MaxBackoff   time.Duration
	// Now is the clock for bookkeeping times (default time.Now).
	Now func() time.Time
}

// watchedMarginMs re-reads invoices created this long before the newest
// one seen, so an invoice that reaches the read model late still gets watched.
const watchedMarginMs = 10 * 60 * 1000

// maxChainMovedRetries bounds how often one scan starts over because the
// chain changed under it.
const maxChainMovedRetries = 3

// errChainMoved: a block or log does not belong to the chain we were reading.
var errChainMoved = errors.New("eth: chain changed during the scan")

// Watcher scans an Ethereum chain for deposits to invoice addresses.
type Watcher struct {
	cfg    Config
	client Client
	sink   chain.Sink
	st     store
	log    *slog.Logger

	native     *token // nil when ETH is not an asset
	tokens     map[common.Address]token
	tokenAddrs []common.Address
	assetCodes []string
	thresholds map[string]int
	// finality is the depth at which an asset's deposits are final: an
	// override, else the fallback for a node without a finalized block.
	finality   map[string]int
	overridden map[string]bool
	db         sqldb.DB

	mu             sync.Mutex // one scan at a time
	watched        watchSet
	watchedSinceMs int64
	noFinalized    bool // the node had no finalized block last time: logged once
}

// New builds a watcher for the Ethereum assets of assets. Run Migrate on db
// first. Errors: a bad contract address or threshold in cfg, or no
// Ethereum asset at all.
func New(cfg Config, client Client, sink chain.Sink, db sqldb.DB, assets domain.Assets, log *slog.Logger) (*Watcher, error) {
	if cfg.BatchBlocks <= 0 {
		cfg.BatchBlocks = 50
	}
	if cfg.KeepBlocks <= 0 {
		cfg.KeepBlocks = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.MaxBackoff < cfg.PollInterval {
		cfg.MaxBackoff = max(time.Minute, cfg.PollInterval)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Watcher{cfg: cfg, client: client, sink: sink, st: newStore(db), log: log.With("chain", "ethereum"),
		tokens: map[common.Address]token{}, thresholds: map[string]int{}, finality: map[string]int{}, overridden: map[string]bool{},
		db: db, watched: watchSet{}}
	for _, a := range assets.List() {
		if a.Chain != domain.ChainEthereum {
			continue
		}
		n := a.Confirmations
		if o, ok := cfg.Confirmations[a.Code]; ok {
			if o < 1 {
				return nil, fmt.Errorf("eth: %s: confirmations must be at least 1", a.Code)
			}
			n = o
		}
		w.thresholds[a.Code] = n
		w.finality[a.Code] = max(a.FinalityDepth(), n)
		if f, ok := cfg.Finality[a.Code]; ok {
			if f < n {
				return nil, fmt.Errorf("eth: %s: finality %d below its %d confirmations", a.Code, f, n)
			}
			w.finality[a.Code], w.overridden[a.Code] = f, true
		}
		w.assetCodes = append(w.assetCodes, a.Code)
		contract := a.Contract
		if c, ok := cfg.Contracts[a.Code]; ok {
			contract = c
		}
		if contract == "" {
			w.native = &token{asset: a.Code, decimals: a.Decimals}
			continue
		}
		if !common.IsHexAddress(contract) {
			return nil, fmt.Errorf("eth: %s: contract %q is not an address", a.Code, contract)
		}
		addr := common.HexToAddress(contract)
		if _, dup := w.tokens[addr]; dup {
			return nil, fmt.Errorf("eth: contract %s listed for two assets", addr.Hex())
		}
		w.tokens[addr] = token{asset: a.Code, decimals: a.Decimals}
		w.tokenAddrs = append(w.tokenAddrs, addr)
	}
	for code := range cfg.Confirmations {
		if _, ok := w.thresholds[code]; !ok {
			return nil, fmt.Errorf("eth: confirmations for %q: not an Ethereum asset", code)
		}
	}
	for code := range cfg.Finality {
		if _, ok := w.thresholds[code]; !ok {
			return nil, fmt.Errorf("eth: finality for %q: not an Ethereum asset", code)
		}
	}
	if len(w.assetCodes) == 0 {
		return nil, errors.New("eth: no Ethereum asset configured")
	}
	return w, nil
}

// Run scans until ctx ends. A failed scan is logged and retried with
// exponential backoff from the stored checkpoint, so no block is skipped.
// It returns nil when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	chain.Poll(ctx, w.cfg.PollInterval, w.cfg.MaxBackoff, w.log, w.ScanOnce)
	return nil
}

// ScanOnce brings the watcher up to the chain's current head: it checks
// the checkpoint block is still canonical (rewinding to the fork point when
// not), scans the new blocks in batches (reporting deposits, then storing
// hashes, deposits and checkpoint together), confirms deposits deep enough
// (those of earlier scans while the range reaching the tip is reported,
// the rest after it), reverts deposits whose blocks left the chain and did
// not come back, and finalizes credited deposits whose block is final.
// A failure leaves the checkpoint at the last batch fully recorded.
func (w *Watcher) ScanOnce(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.refreshWatched(ctx); err != nil {
		return err
	}
	head, err := w.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return fmt.Errorf("eth head: %w", err)
	}
	tip := head.Number.Int64()
	cp, err := w.st.Checkpoint(ctx)
	switch {
	case errors.Is(err, chain.ErrNoScanCheckpoint):
		start := int64(w.cfg.StartBlock)
		if start == 0 {
			start = tip
		}
		cp = checkpoint{Height: start - 1} // parent hash unknown: not checked
		w.log.Info("eth: first scan", "start_block", start)
	case err != nil:
		return err
	case tip < cp.Height:
		// A node still syncing, or another node behind a load balancer:
		// what it lacks is not a reorg. Wait until it has caught up.
		w.log.Warn("eth: node is behind our checkpoint; waiting", "node_head", tip, "checkpoint", cp.Height)
		return nil
	default:
		if cp, err = w.checkReorg(ctx, cp); err != nil {
			return err
		}
	}
	for moved := 0; cp.Height < tip; {
		to := min(tip, cp.Height+int64(w.cfg.BatchBlocks))
		next, err := w.scanRange(ctx, cp, to, to == tip)
		if errors.Is(err, errChainMoved) && moved < maxChainMovedRetries {
			moved++
			w.log.Warn("eth: chain changed during the scan; checking for a reorg", "err", err)
			if cp, err = w.checkReorg(ctx, cp); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		cp = next
	}
	if err := w.confirm(ctx, cp.Height); err != nil {
		return err
	}
	if err := w.revertOrphans(ctx); err != nil {
		return err
	}
	return w.finalize(ctx, cp.Height)
}

// refreshWatched adds the pay addresses of new Ethereum invoices.
func (w *Watcher) refreshWatched(ctx context.Context) error {
	addrs, newest, err := w.st.WatchedSince(ctx, w.assetCodes, w.watchedSinceMs-watchedMarginMs)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if !common.IsHexAddress(a) {
			continue // not an Ethereum address: nothing on this chain can pay it
		}
		w.watched[common.HexToAddress(a)] = a
	}
	w.watchedSinceMs = max(w.watchedSinceMs, newest)
	return nil
}

// onChain reports whether block b (height and hash) is on the canonical chain.
func (w *Watcher) onChain(ctx context.Context, b checkpoint) (bool, error) {
	if b.Height < 0 {
		return true, nil
	}
	h, err := w.client.HeaderByNumber(ctx, big.NewInt(b.Height))
	if errors.Is(err, ethereum.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("eth header %d: %w", b.Height, err)
	}
	return h.Hash().Hex() == b.Block, nil
}

// checkReorg returns cp when its block is still canonical; otherwise it
// finds the newest stored block that is, rewinds to it and returns it.
func (w *Watcher) checkReorg(ctx context.Context, cp checkpoint) (checkpoint, error) {
	if same, err := w.onChain(ctx, cp); err != nil || same {
		return cp, err
	}
	recent, err := w.st.RecentBlocks(ctx, cp.Height-1, w.cfg.KeepBlocks)
	if err != nil {
		return cp, err
	}
	fork, found := checkpoint{Height: -1}, false
	for _, b := range recent {
		same, err := w.onChain(ctx, b)
		if err != nil {
			return cp, err
		}
		if same {
			fork, found = b, true
			break
		}
	}
	if !found {
		// Deeper than the hashes we keep: rescan from below the oldest one,
		// taking the chain's word for that block.
		fork.Height = cp.Height - int64(w.cfg.KeepBlocks)
		if len(recent) > 0 {
			fork.Height = recent[len(recent)-1].Height - 1
		}
		fork.Height = max(fork.Height, -1)
		if fork.Height >= 0 {
			h, err := w.client.HeaderByNumber(ctx, big.NewInt(fork.Height))
			if err != nil {
				return cp, fmt.Errorf("eth header %d: %w", fork.Height, err)
			}
			fork.Block = h.Hash().Hex()
		}
		w.log.Error("eth: reorg deeper than the block hashes kept; rescanning", "checkpoint", cp.Height, "from", fork.Height+1)
	}
	orphaned, err := w.st.Rewind(ctx, fork, w.cfg.Now())
	if err != nil {
		return cp, err
	}
	finals, err := orphanFinal(ctx, w.db, fork.Height, w.cfg.Now())
	if err != nil {
		return cp, err
	}
	if finals > 0 {
		w.log.Error("eth: reorg below final deposits", "fork_height", fork.Height, "final_deposits", finals)
	}
	orphaned += finals
	w.log.Warn("eth: reorg", "checkpoint", cp.Height, "old_hash", cp.Block, "fork_height", fork.Height, "orphaned_deposits", orphaned)
	return fork, nil
}

// scanRange scans blocks cp.height+1..to and records them. It returns the
// new checkpoint. When the range ends at the tip, once its blocks are
// fetched and chain up from cp, the deposits recorded earlier that are now
// deep enough are confirmed while this range's transfers are matched and
// reported: the two are independent ledger commands, and waiting for one
// before the other doubled the time a block takes. Ranges below the tip
// (catching up) leave confirming to ScanOnce's last confirm, which counts
// confirmations from the tip. Errors: errChainMoved when blocks or logs do
// not chain up (a reorg while reading), RPC and database errors.
func (w *Watcher) scanRange(ctx context.Context, cp checkpoint, to int64, atTip bool) (checkpoint, error) {
	from := cp.Height + 1
	blocks := make([]*types.Block, 0, to-from+1)
	parent := cp.Block
	for h := from; h <= to; h++ {
		b, err := w.client.BlockByNumber(ctx, big.NewInt(h))
		if err != nil {
			return cp, fmt.Errorf("eth block %d: %w", h, err)
		}
		if parent != "" && b.ParentHash().Hex() != parent {
			return cp, fmt.Errorf("%w: block %d does not follow %s", errChainMoved, h, parent)
		}
		parent = b.Hash().Hex()
		blocks = append(blocks, b)
	}
	confirmed := chain.Alongside(atTip, func() error { return w.confirm(ctx, to) })
	rows, err := w.matchAndReport(ctx, blocks, from, to)
	if cErr := confirmed(); err == nil {
		err = cErr
	}
	if err != nil {
		return cp, err
	}
	recs := make([]checkpoint, len(blocks))
	for i, b := range blocks {
		recs[i] = checkpoint{Height: b.Number().Int64(), Block: b.Hash().Hex()}
	}
	if err := w.st.CommitRange(ctx, recs, rows, w.cfg.KeepBlocks, w.cfg.Now()); err != nil {
		return cp, err
	}
	return recs[len(recs)-1], nil
}

// matchAndReport finds the transfers to watched addresses in blocks (the
// range from..to) and in the token logs of that range, and reports them.
func (w *Watcher) matchAndReport(ctx context.Context, blocks []*types.Block, from, to int64) ([]deposit, error) {
	var hits []found
	if w.native != nil {
		for _, b := range blocks {
			hits = append(hits, matchNative(b, w.watched, w.native.asset, w.native.decimals)...)
		}
	}
	if len(w.tokenAddrs) > 0 && len(w.watched) > 0 {
		logs, err := w.client.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(from), ToBlock: big.NewInt(to),
			Addresses: w.tokenAddrs, Topics: [][]common.Hash{{TransferTopic}}})
		if err != nil {
			return nil, fmt.Errorf("eth logs %d-%d: %w", from, to, err)
		}
		for _, l := range logs {
			i := int64(l.BlockNumber) - from
			if i < 0 || i >= int64(len(blocks)) || blocks[i].Hash() != l.BlockHash {
				return nil, fmt.Errorf("%w: log of block %d %s", errChainMoved, l.BlockNumber, l.BlockHash.Hex())
			}
		}
		hits = append(hits, matchLogs(logs, w.watched, w.tokens)...)
	}
	return w.reportAll(ctx, hits, to)
}

// reportAll checks the receipts of the native transfers among hits (a
// failed transaction moved no value), then hands the deposits to the
// ledger: concurrently across addresses, in block order for each address.
// It returns the rows to record, in the order of hits. Errors:
// errChainMoved when a receipt is of another block, RPC and ledger errors.
func (w *Watcher) reportAll(ctx context.Context, hits []found, tip int64) ([]deposit, error) {
	failed, err := w.failedTxs(ctx, hits)
	if err != nil {
		return nil, err
	}
	rows := make([]deposit, len(hits))
	err = chain.ForEachGroup(len(hits), maxConcurrentReports, func(i int) string { return hits[i].address }, func(i int) error {
		f := hits[i]
		if f.native && failed[f.txHash] {
			w.log.Info("eth: failed transaction to our address ignored", "tx", f.txHash.Hex(), "address", f.address)
			return nil
		}
		d, err := w.report(ctx, f, tip)
		rows[i] = d
		return err
	})
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, d := range rows {
		if d.DepositID != "" {
			out = append(out, d)
		}
	}
	return out, nil
}

// failedTxs returns the transactions among the native transfers in hits
// that failed. A plain transfer to an address without code cannot fail
// (nothing runs, and a sender short of funds makes it invalid, not
// failed), so receipts are read only for transfers to addresses holding
// code at the head: contracts, or accounts delegating under EIP-7702. An
// address that had code at the transfer's block but not at the head would
// have to have shed its delegation since; deposit addresses derived from
// our seed never delegate. Calls run at most maxReceiptFetches at a time.
// Errors: errChainMoved when a receipt is of another block, RPC errors.
func (w *Watcher) failedTxs(ctx context.Context, hits []found) (map[common.Hash]bool, error) {
	withCode := map[common.Address]bool{} // every paid address; true once its code is seen
	var addrs []common.Address
	for _, f := range hits {
		if a := common.HexToAddress(f.address); f.native {
			if _, ok := withCode[a]; !ok {
				withCode[a] = false
				addrs = append(addrs, a)
			}
		}
	}
	hasCode := make([]bool, len(addrs))
	err := chain.ForEachGroup(len(addrs), maxReceiptFetches, strconv.Itoa, func(i int) error {
		code, err := w.client.CodeAt(ctx, addrs[i], nil)
		if err != nil {
			return fmt.Errorf("eth code of %s: %w", addrs[i].Hex(), err)
		}
		hasCode[i] = len(code) > 0
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, a := range addrs {
		withCode[a] = hasCode[i]
	}
	var natives []found
	for _, f := range hits {
		if f.native && withCode[common.HexToAddress(f.address)] {
			natives = append(natives, f)
		}
	}
	status := make([]uint64, len(natives))
	err = chain.ForEachGroup(len(natives), maxReceiptFetches, strconv.Itoa, func(i int) error {
		f := natives[i]
		r, err := w.client.TransactionReceipt(ctx, f.txHash)
		if err != nil {
			return fmt.Errorf("eth receipt %s: %w", f.txHash.Hex(), err)
		}
		if r.BlockHash != f.blockHash {
			return fmt.Errorf("%w: receipt of %s is in block %s", errChainMoved, f.txHash.Hex(), r.BlockHash.Hex())
		}
		status[i] = r.Status
		return nil
	})
	if err != nil {
		return nil, err
	}
	failed := map[common.Hash]bool{}
	for i, f := range natives {
		if status[i] != types.ReceiptStatusSuccessful {
			failed[f.txHash] = true
		}
	}
	return failed, nil
}

// report hands one deposit to the ledger and returns its row.
func (w *Watcher) report(ctx context.Context, f found, tip int64) (deposit, error) {
	amount := domain.FromBaseUnits(f.units, f.decimals)
	d := deposit{DepositID: f.depositID, Asset: f.asset, Address: f.address, TxID: f.txHash.Hex(), Amount: amount.String(),
		BlockHeight: f.height, Block: f.blockHash.Hex(), State: chain.ScanSeen}
	inv, err := w.sink.Observe(ctx, chain.Transfer{Asset: f.asset, Address: f.address, TxID: d.TxID, DepositID: f.depositID,
		Amount: amount, Confirmations: int(tip - f.height + 1)})
	switch {
	case errors.Is(err, chain.ErrNotOurs), errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrValidation), errors.Is(err, domain.ErrInvalidAmount):
		// Kept in eth_deposits as unmatched, never silently dropped; an
		// operator sees it there and in the log.
		w.log.Warn("eth: deposit to our address matches no invoice", "deposit_id", f.depositID, "asset", f.asset,
			"address", f.address, "amount", amount.String(), "err", err)
		d.State = chain.ScanUnmatched
		return d, nil
	case err != nil:
		return deposit{}, fmt.Errorf("eth observe %s: %w", f.depositID, err)
	}
	required, err := w.st.RequiredConfirmations(ctx, inv)
	if err != nil {
		return deposit{}, err
	}
	d.InvoiceID, d.RequiredConfirmations = inv, max(w.thresholds[f.asset], required)
	w.log.Info("eth: deposit seen", "deposit_id", f.depositID, "asset", f.asset, "amount", d.Amount, "invoice_id", inv, "block", f.height)
	return d, nil
}

// confirm credits seen deposits that are deep enough below tip:
// concurrently across invoices, then one transaction marks them all. A
// crash in between is harmless: confirming a confirmed deposit again is a
// no-op in the ledger.
func (w *Watcher) confirm(ctx context.Context, tip int64) error {
	deps, err := w.st.Deposits(ctx, chain.ScanSeen, true)
	if err != nil {
		return err
	}
	var due []deposit
	for _, d := range deps {
		if d.InvoiceID != "" && int(tip-d.BlockHeight+1) >= d.RequiredConfirmations {
			due = append(due, d)
		}
	}
	done := make([]bool, len(due))
	err = chain.ForEachGroup(len(due), maxConcurrentReports, func(i int) string { return due[i].InvoiceID }, func(i int) error {
		d := due[i]
		conf := int(tip - d.BlockHeight + 1)
		if err := w.sink.Confirm(ctx, d.InvoiceID, d.DepositID, conf); err != nil {
			if errors.Is(err, domain.ErrInvalidState) || errors.Is(err, domain.ErrNotFound) {
				// The ledger disagrees with our table: say so loudly, do not retry forever.
				w.log.Error("eth: ledger refused a confirmation", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "err", err)
				return nil
			}
			return fmt.Errorf("eth confirm %s: %w", d.DepositID, err)
		}
		done[i] = true
		w.log.Info("eth: deposit confirmed", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "confirmations", conf)
		return nil
	})
	var ids []string
	for i, d := range due {
		if done[i] {
			ids = append(ids, d.DepositID)
		}
	}
	// What was confirmed is recorded even when another confirmation failed.
	if mErr := w.st.MarkConfirmed(ctx, ids, w.cfg.Now()); mErr != nil {
		return errors.Join(err, mErr)
	}
	return err
}

// revertOrphans reverts deposits whose block left the chain and that the
// rescan up to the head did not find again.
func (w *Watcher) revertOrphans(ctx context.Context) error {
	deps, err := w.st.Deposits(ctx, chain.ScanOrphaned, false)
	if err != nil {
		return err
	}
	for _, d := range deps {
		if d.InvoiceID != "" {
			reason := fmt.Sprintf("reorg: block %d %s left the chain", d.BlockHeight, d.Block)
			if err := w.sink.Revert(ctx, d.InvoiceID, d.DepositID, reason); err != nil && !errors.Is(err, domain.ErrNotFound) {
				return fmt.Errorf("eth revert %s: %w", d.DepositID, err)
			}
			w.log.Warn("eth: deposit reverted", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "reason", reason)
		}
		if err := w.st.SetState(ctx, d.DepositID, chain.ScanReverted, false, w.cfg.Now()); err != nil {
			return err
		}
	}
	return nil
}

// finalize makes final the credited deposits whose block the node's
// finalized block covers (money rule 4), or, for an asset with a Finality
// override or when the node has no finalized block, that are that many
// blocks deep at tip: their money moves from pending to available. A crash
// between the ledger and the table is harmless: finalizing a final
// deposit again records nothing.
func (w *Watcher) finalize(ctx context.Context, tip int64) error {
	deps, err := w.st.Deposits(ctx, chain.ScanSeen, false)
	if err != nil {
		return err
	}
	var due []deposit
	finalized, tagged, asked := int64(0), false, false
	for _, d := range deps {
		if !d.Confirmed || d.InvoiceID == "" {
			continue
		}
		if !w.overridden[d.Asset] && !asked {
			if finalized, tagged, err = w.finalizedBlock(ctx); err != nil {
				return err
			}
			asked = true
		}
		if !w.overridden[d.Asset] && tagged {
			if d.BlockHeight <= finalized {
				due = append(due, d)
			}
			continue
		}
		if int(tip-d.BlockHeight+1) >= max(w.finality[d.Asset], d.RequiredConfirmations) {
			due = append(due, d)
		}
	}
	done := make([]bool, len(due))
	err = chain.ForEachGroup(len(due), maxConcurrentReports, func(i int) string { return due[i].InvoiceID }, func(i int) error {
		d := due[i]
		depth := int(tip - d.BlockHeight + 1)
		if err := w.sink.Finalize(ctx, d.InvoiceID, d.DepositID, depth); err != nil {
			if errors.Is(err, domain.ErrInvalidState) || errors.Is(err, domain.ErrNotFound) {
				w.log.Error("eth: ledger refused a finality", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "err", err)
				return nil
			}
			return fmt.Errorf("eth finalize %s: %w", d.DepositID, err)
		}
		done[i] = true
		w.log.Info("eth: deposit final", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "depth", depth)
		return nil
	})
	for i, d := range due {
		if !done[i] {
			continue
		}
		if sErr := w.st.SetState(ctx, d.DepositID, scanFinal, true, w.cfg.Now()); sErr != nil {
			return errors.Join(err, sErr)
		}
	}
	return err
}

// finalizedBlock is the height of the node's finalized block; tagged is
// false when the node has none (a node before the merge, a chain without
// finality, an error): deposits then count blocks.
func (w *Watcher) finalizedBlock(ctx context.Context) (height int64, tagged bool, err error) {
	h, err := w.client.HeaderByNumber(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
	if ctx.Err() != nil {
		return 0, false, ctx.Err()
	}
	if err != nil || h == nil {
		if !w.noFinalized {
			w.log.Warn("eth: the node has no finalized block; deposits are final by depth", "err", err)
		}
		w.noFinalized = true
		return 0, false, nil
	}
	if w.noFinalized {
		w.log.Info("eth: the node has a finalized block again", "height", h.Number)
	}
	w.noFinalized = false
	return h.Number.Int64(), true, nil
}
