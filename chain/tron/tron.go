// Package tron watches the TRON chain over a full node's HTTP API (the
// /wallet and /walletsolidity endpoints of java-tron, which TronGrid also
// serves) for payments to invoice addresses: TRX TransferContract
// transactions and TRC-20 Transfer events of the configured token
// contracts (USDT.TRON). It reports them to the ledger through a
// chain.Sink, confirms them by block depth once their block is also
// solidified, makes them final at once (money rule 4: a solidified block
// is irreversible), reverts the ones a reorg removed, and keeps its scan
// checkpoint, recent block ids and reported deposits in its own tables of
// the read-model database, so a restart at any block (or after hours down)
// misses nothing. Sender (sender.go) pays out TRX and TRC-20 tokens from the
// gateway's hot wallet, signing locally.
//
// Out of scope: TRX moved to our addresses by contracts (internal
// transactions) and TRC-10 tokens are not seen.
package tron

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Node is the part of a TRON node's HTTP API the watcher uses. *HTTPClient
// implements it.
type Node interface {
	NowBlock(ctx context.Context) (Block, error)
	SolidBlock(ctx context.Context) (Block, error)
	// BlockByNum errors: ErrNotFound.
	BlockByNum(ctx context.Context, n int64) (Block, error)
	TransactionInfoByBlockNum(ctx context.Context, n int64) ([]TransactionInfo, error)
}

var _ Node = (*HTTPClient)(nil)

// TransferTopic is topic 0 of a TRC-20 (ERC-20) Transfer(address,address,uint256)
// event: keccak256 of that signature, in hex as TRON's logs carry it.
const TransferTopic = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

// Config tunes the watcher. The zero value is usable.
type Config struct {
	// Confirmations overrides an asset's confirmation threshold by asset
	// code. A deposit is never confirmed below its invoice's
	// required_confirmations: the domain refuses that.
	Confirmations map[string]int
	// Finality overrides, by asset code, when a credited deposit becomes
	// final and its money available: at that depth (its block solidified
	// too, unless IgnoreSolidity). By default a deposit is final as soon
	// as it is confirmed, its block being solidified; with IgnoreSolidity,
	// at the asset's finality depth.
	Finality map[string]int
	// Contracts overrides token contract addresses (base58 "T…") by asset
	// code (a testnet such as Nile or Shasta has its own USDT).
	Contracts map[string]string
	// StartBlock is where the first scan starts when no checkpoint is
	// stored; 0 means the chain's head at that moment.
	StartBlock int64
	// BatchBlocks is how many blocks one checkpoint transaction covers (default 20).
	BatchBlocks int
	// KeepBlocks is how many recent block ids are kept to find the fork
	// point of a reorg (default 256).
	KeepBlocks int
	// IgnoreSolidity confirms by depth alone, for a node without the
	// /walletsolidity endpoints. By default a deposit is confirmed only
	// once its block is also solidified (irreversible).
	IgnoreSolidity bool
	// PollInterval is the pause between scans in Run (default 3 s, one
	// TRON block); MaxBackoff bounds the pause after failures (default 1 min).
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

// errChainMoved: a block or receipt does not belong to the chain we were reading.
var errChainMoved = errors.New("tron: chain changed during the scan")

// account is the 20 bytes of a TRON address without its 0x41 prefix (the
// EVM form logs use).
type account [20]byte

// token is a TRC-20 asset we watch.
type token struct {
	asset    string
	decimals int32
}

// Watcher scans the TRON chain for deposits to invoice addresses.
type Watcher struct {
	cfg  Config
	node Node
	sink chain.Sink
	st   store
	log  *slog.Logger

	native     *token           // nil when TRX is not an asset
	tokens     map[string]token // by contract, 20-byte lower-case hex
	assetCodes []string
	thresholds map[string]int
	finality   map[string]int // the depth at which deposits are final; 0: once solidified
	db         sqldb.DB

	mu             sync.Mutex // one scan at a time
	watched        map[account]string
	watchedSinceMs int64
}

// New builds a watcher for the TRON assets of assets. Run Migrate on db
// first. Errors: a bad contract address or threshold in cfg, or no TRON
// asset at all.
func New(cfg Config, node Node, sink chain.Sink, db sqldb.DB, assets domain.Assets, log *slog.Logger) (*Watcher, error) {
	if cfg.BatchBlocks <= 0 {
		cfg.BatchBlocks = 20
	}
	if cfg.KeepBlocks <= 0 {
		cfg.KeepBlocks = 256
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 3 * time.Second
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
	w := &Watcher{cfg: cfg, node: node, sink: sink, st: newStore(db), log: log.With("chain", "tron"),
		tokens: map[string]token{}, thresholds: map[string]int{}, finality: map[string]int{}, db: db, watched: map[account]string{}}
	for _, a := range assets.List() {
		if a.Chain != domain.ChainTron {
			continue
		}
		n := a.Confirmations
		if o, ok := cfg.Confirmations[a.Code]; ok {
			if o < 1 {
				return nil, fmt.Errorf("tron: %s: confirmations must be at least 1", a.Code)
			}
			n = o
		}
		w.thresholds[a.Code] = n
		if cfg.IgnoreSolidity {
			w.finality[a.Code] = max(a.FinalityDepth(), n)
		}
		if f, ok := cfg.Finality[a.Code]; ok {
			if f < n {
				return nil, fmt.Errorf("tron: %s: finality %d below its %d confirmations", a.Code, f, n)
			}
			w.finality[a.Code] = f
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
		addr, err := DecodeAddress(contract)
		if err != nil {
			return nil, fmt.Errorf("tron: %s: contract: %w", a.Code, err)
		}
		key := hex.EncodeToString(addr[1:])
		if _, dup := w.tokens[key]; dup {
			return nil, fmt.Errorf("tron: contract %s listed for two assets", contract)
		}
		w.tokens[key] = token{asset: a.Code, decimals: a.Decimals}
	}
	for code := range cfg.Confirmations {
		if _, ok := w.thresholds[code]; !ok {
			return nil, fmt.Errorf("tron: confirmations for %q: not a TRON asset", code)
		}
	}
	for code := range cfg.Finality {
		if _, ok := w.thresholds[code]; !ok {
			return nil, fmt.Errorf("tron: finality for %q: not a TRON asset", code)
		}
	}
	if len(w.assetCodes) == 0 {
		return nil, errors.New("tron: no TRON asset configured")
	}
	return w, nil
}

// Run scans until ctx ends. A failed scan (a node that times out or
// errors) is logged and retried with exponential backoff from the stored
// checkpoint, so no block is skipped. It returns nil when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	chain.Poll(ctx, w.cfg.PollInterval, w.cfg.MaxBackoff, w.log, w.ScanOnce)
	return nil
}

// ScanOnce brings the watcher up to the node's head: it checks the
// checkpoint block is still canonical (rewinding to the fork point when
// not), scans the new blocks in batches (reporting deposits, then storing
// block ids, deposits and checkpoint together), confirms deposits deep
// enough and solidified, reverts deposits whose blocks left the chain and
// did not come back, and finalizes the credited ones. A failure leaves the
// checkpoint at the last batch fully recorded.
func (w *Watcher) ScanOnce(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.refreshWatched(ctx); err != nil {
		return err
	}
	head, err := w.node.NowBlock(ctx)
	if err != nil {
		return fmt.Errorf("tron head: %w", err)
	}
	tip := head.Number()
	cp, err := w.st.Checkpoint(ctx)
	switch {
	case errors.Is(err, chain.ErrNoScanCheckpoint):
		start := w.cfg.StartBlock
		if start == 0 {
			start = tip
		}
		cp = checkpoint{Height: start - 1} // parent id unknown: not checked
		w.log.Info("tron: first scan", "start_block", start)
	case err != nil:
		return err
	case tip < cp.Height:
		// A node still syncing, or another node behind a load balancer:
		// what it lacks is not a reorg. Wait until it has caught up.
		w.log.Warn("tron: node is behind our checkpoint; waiting", "node_head", tip, "checkpoint", cp.Height)
		return nil
	default:
		if cp, err = w.checkReorg(ctx, cp); err != nil {
			return err
		}
	}
	for moved := 0; cp.Height < tip; {
		to := min(tip, cp.Height+int64(w.cfg.BatchBlocks))
		next, err := w.scanRange(ctx, cp, to)
		if errors.Is(err, errChainMoved) && moved < maxChainMovedRetries {
			moved++
			w.log.Warn("tron: chain changed during the scan; checking for a reorg", "err", err)
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
	solid := cp.Height
	if !w.cfg.IgnoreSolidity {
		b, err := w.node.SolidBlock(ctx)
		if err != nil {
			return fmt.Errorf("tron solidified block: %w", err)
		}
		solid = min(solid, b.Number())
	}
	if err := w.confirm(ctx, cp.Height, solid); err != nil {
		return err
	}
	if err := w.revertOrphans(ctx); err != nil {
		return err
	}
	return w.finalize(ctx, cp.Height, solid)
}

// refreshWatched adds the pay addresses of new TRON invoices.
func (w *Watcher) refreshWatched(ctx context.Context) error {
	addrs, newest, err := w.st.WatchedSince(ctx, w.assetCodes, w.watchedSinceMs-watchedMarginMs)
	if err != nil {
		return err
	}
	for _, a := range addrs {
		b, err := DecodeAddress(a)
		if err != nil {
			continue // not a TRON address: nothing on this chain can pay it
		}
		w.watched[account(b[1:])] = a
	}
	w.watchedSinceMs = max(w.watchedSinceMs, newest)
	return nil
}

// onChain reports whether block b (height and id) is on the canonical chain.
func (w *Watcher) onChain(ctx context.Context, b checkpoint) (bool, error) {
	if b.Height < 0 {
		return true, nil
	}
	blk, err := w.node.BlockByNum(ctx, b.Height)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("tron block %d: %w", b.Height, err)
	}
	return blk.BlockID == b.Block, nil
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
		// Deeper than the ids we keep: rescan from below the oldest one,
		// taking the chain's word for that block.
		fork.Height = cp.Height - int64(w.cfg.KeepBlocks)
		if len(recent) > 0 {
			fork.Height = recent[len(recent)-1].Height - 1
		}
		fork.Height = max(fork.Height, -1)
		if fork.Height >= 0 {
			b, err := w.node.BlockByNum(ctx, fork.Height)
			if err != nil {
				return cp, fmt.Errorf("tron block %d: %w", fork.Height, err)
			}
			fork.Block = b.BlockID
		}
		w.log.Error("tron: reorg deeper than the block ids kept; rescanning", "checkpoint", cp.Height, "from", fork.Height+1)
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
		w.log.Error("tron: reorg below final deposits", "fork_height", fork.Height, "final_deposits", finals)
	}
	orphaned += finals
	w.log.Warn("tron: reorg", "checkpoint", cp.Height, "old_block_id", cp.Block, "fork_height", fork.Height, "orphaned_deposits", orphaned)
	return fork, nil
}

// found is a transfer to one of our addresses.
type found struct {
	asset     string
	decimals  int32
	address   string // as stored on invoices
	txID      string
	depositID string
	units     *big.Int
	height    int64
	blockID   string
}

// scanRange scans blocks cp.height+1..to and records them. It returns the
// new checkpoint. Errors: errChainMoved when blocks or receipts do not
// chain up (a reorg while reading), node and database errors.
func (w *Watcher) scanRange(ctx context.Context, cp checkpoint, to int64) (checkpoint, error) {
	from := cp.Height + 1
	recs := make([]checkpoint, 0, to-from+1)
	var hits []found
	parent := cp.Block
	for h := from; h <= to; h++ {
		b, err := w.node.BlockByNum(ctx, h)
		if err != nil {
			return cp, fmt.Errorf("tron block %d: %w", h, err)
		}
		if b.Number() != h {
			return cp, fmt.Errorf("tron block %d: the node answered block %d", h, b.Number())
		}
		if parent != "" && b.BlockHeader.RawData.ParentHash != parent {
			return cp, fmt.Errorf("%w: block %d does not follow %s", errChainMoved, h, parent)
		}
		parent = b.BlockID
		recs = append(recs, checkpoint{Height: h, Block: b.BlockID})
		fs, err := w.matchBlock(ctx, b)
		if err != nil {
			return cp, err
		}
		hits = append(hits, fs...)
	}
	var rows []deposit
	for _, f := range hits {
		d, err := w.report(ctx, f, to)
		if err != nil {
			return cp, err
		}
		rows = append(rows, d)
	}
	if err := w.st.CommitRange(ctx, recs, rows, w.cfg.KeepBlocks, w.cfg.Now()); err != nil {
		return cp, err
	}
	return recs[len(recs)-1], nil
}

// matchBlock returns the block's TRX transfers and token Transfer events
// to watched addresses. Failed transactions moved nothing and are skipped.
func (w *Watcher) matchBlock(ctx context.Context, b Block) ([]found, error) {
	if len(w.watched) == 0 {
		return nil, nil
	}
	var out []found
	calls := false
	for _, tx := range b.Transactions {
		if len(tx.RawData.Contract) != 1 {
			continue // a payment has exactly one contract
		}
		c := tx.RawData.Contract[0]
		switch c.Type {
		case "TriggerSmartContract":
			calls = true
		case "TransferContract":
			if w.native == nil {
				continue
			}
			to, err := DecodeAddress(c.Parameter.Value.ToAddress)
			if err != nil {
				continue
			}
			stored, ok := w.watched[account(to[1:])]
			if !ok || c.Parameter.Value.Amount <= 0 {
				continue
			}
			if !tx.Succeeded() {
				w.log.Info("tron: failed transaction to our address ignored", "txid", tx.TxID, "address", stored)
				continue
			}
			if err := checkTxID(tx); err != nil {
				return nil, err
			}
			out = append(out, found{asset: w.native.asset, decimals: w.native.decimals, address: stored, txID: tx.TxID, depositID: tx.TxID,
				units: big.NewInt(c.Parameter.Value.Amount), height: b.Number(), blockID: b.BlockID})
		}
	}
	// Token transfers show only in the receipts' logs, and a Transfer of
	// our token may come from a call to any contract (an exchange's batch
	// payout calls the token itself), so every block with a contract call
	// has its receipts read.
	if !calls || len(w.tokens) == 0 {
		return out, nil
	}
	infos, err := w.node.TransactionInfoByBlockNum(ctx, b.Number())
	if err != nil {
		return nil, fmt.Errorf("tron receipts of block %d: %w", b.Number(), err)
	}
	inBlock := make(map[string]bool, len(b.Transactions))
	for _, tx := range b.Transactions {
		inBlock[tx.TxID] = true
	}
	for _, info := range infos {
		if info.BlockNumber != b.Number() || !inBlock[info.ID] {
			return nil, fmt.Errorf("%w: receipt %s of block %d is not in block %s", errChainMoved, info.ID, info.BlockNumber, b.BlockID)
		}
		if info.Failed() {
			continue
		}
		for i, l := range info.Log {
			f, ok := w.matchLog(l)
			if !ok {
				continue
			}
			f.txID, f.depositID, f.height, f.blockID = info.ID, info.ID+":"+strconv.Itoa(i), b.Number(), b.BlockID
			out = append(out, f)
		}
	}
	return out, nil
}

// matchLog reads a Transfer event of a watched token to a watched address.
func (w *Watcher) matchLog(l Log) (found, bool) {
	addr := strings.ToLower(strings.TrimPrefix(l.Address, "0x"))
	if len(addr) == 42 && strings.HasPrefix(addr, "41") {
		addr = addr[2:] // the 21-byte form, should a node send it
	}
	tk, ok := w.tokens[addr]
	if !ok || len(l.Topics) != 3 || strings.ToLower(strings.TrimPrefix(l.Topics[0], "0x")) != TransferTopic {
		return found{}, false // other contracts, other events, ERC-721 style transfers (a fourth topic)
	}
	topic, err := hex.DecodeString(strings.TrimPrefix(l.Topics[2], "0x"))
	if err != nil || len(topic) != 32 {
		return found{}, false
	}
	stored, ok := w.watched[account(topic[12:])]
	if !ok {
		return found{}, false
	}
	data, err := hex.DecodeString(strings.TrimPrefix(l.Data, "0x"))
	if err != nil || len(data) != 32 {
		return found{}, false
	}
	units := new(big.Int).SetBytes(data)
	if units.Sign() <= 0 {
		return found{}, false
	}
	return found{asset: tk.asset, decimals: tk.decimals, address: stored, units: units}, true
}

// checkTxID checks that a transaction's id is the hash of its raw data, so
// a node cannot credit us with a transaction it made up the id of.
func checkTxID(tx Transaction) error {
	if tx.RawDataHex == "" {
		return nil // older nodes omit it; the id is then the node's word
	}
	raw, err := hex.DecodeString(tx.RawDataHex)
	if err != nil || TxID(raw) != strings.ToLower(tx.TxID) {
		return fmt.Errorf("tron: transaction %s: its id is not the hash of its raw data", tx.TxID)
	}
	return nil
}

// report hands a deposit to the ledger.
func (w *Watcher) report(ctx context.Context, f found, tip int64) (deposit, error) {
	amount := domain.FromBaseUnits(f.units, f.decimals)
	d := deposit{DepositID: f.depositID, Asset: f.asset, Address: f.address, TxID: f.txID, Amount: amount.String(),
		BlockHeight: f.height, Block: f.blockID, State: chain.ScanSeen}
	inv, err := w.sink.Observe(ctx, chain.Transfer{Asset: f.asset, Address: f.address, TxID: f.txID, DepositID: f.depositID,
		Amount: amount, Confirmations: int(tip - f.height + 1)})
	switch {
	case errors.Is(err, chain.ErrNotOurs), errors.Is(err, domain.ErrNotFound), errors.Is(err, domain.ErrValidation), errors.Is(err, domain.ErrInvalidAmount):
		// Kept in tron_deposits as unmatched, never silently dropped; an
		// operator sees it there and in the log.
		w.log.Warn("tron: deposit to our address matches no invoice", "deposit_id", f.depositID, "asset", f.asset,
			"address", f.address, "amount", amount.String(), "err", err)
		d.State = chain.ScanUnmatched
		return d, nil
	case err != nil:
		return deposit{}, fmt.Errorf("tron observe %s: %w", f.depositID, err)
	}
	required, err := w.st.RequiredConfirmations(ctx, inv)
	if err != nil {
		return deposit{}, err
	}
	d.InvoiceID, d.RequiredConfirmations = inv, max(w.thresholds[f.asset], required)
	w.log.Info("tron: deposit seen", "deposit_id", f.depositID, "asset", f.asset, "amount", d.Amount, "invoice_id", inv, "block", f.height)
	return d, nil
}

// confirm credits seen deposits that are deep enough below tip and at or
// below the solidified block.
func (w *Watcher) confirm(ctx context.Context, tip, solid int64) error {
	deps, err := w.st.Deposits(ctx, chain.ScanSeen, true)
	if err != nil {
		return err
	}
	for _, d := range deps {
		conf := int(tip - d.BlockHeight + 1)
		if d.InvoiceID == "" || conf < d.RequiredConfirmations || d.BlockHeight > solid {
			continue
		}
		if err := w.sink.Confirm(ctx, d.InvoiceID, d.DepositID, conf); err != nil {
			if errors.Is(err, domain.ErrInvalidState) || errors.Is(err, domain.ErrNotFound) {
				// The ledger disagrees with our table: say so loudly, do not retry forever.
				w.log.Error("tron: ledger refused a confirmation", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "err", err)
				continue
			}
			return fmt.Errorf("tron confirm %s: %w", d.DepositID, err)
		}
		if err := w.st.SetState(ctx, d.DepositID, chain.ScanSeen, true, w.cfg.Now()); err != nil {
			return err
		}
		w.log.Info("tron: deposit confirmed", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "confirmations", conf)
	}
	return nil
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
				return fmt.Errorf("tron revert %s: %w", d.DepositID, err)
			}
			w.log.Warn("tron: deposit reverted", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "reason", reason)
		}
		if err := w.st.SetState(ctx, d.DepositID, chain.ScanReverted, false, w.cfg.Now()); err != nil {
			return err
		}
	}
	return nil
}

// finalize makes final the credited deposits at or below the solidified
// block and, where a finality depth applies, that deep below tip (money
// rule 4): their money moves from pending to available. A crash between
// the ledger and the table is harmless: finalizing a final deposit again
// records nothing.
func (w *Watcher) finalize(ctx context.Context, tip, solid int64) error {
	deps, err := w.st.Deposits(ctx, chain.ScanSeen, false)
	if err != nil {
		return err
	}
	for _, d := range deps {
		depth := int(tip - d.BlockHeight + 1)
		if !d.Confirmed || d.InvoiceID == "" || d.BlockHeight > solid || depth < max(w.finality[d.Asset], d.RequiredConfirmations) {
			continue
		}
		if err := w.sink.Finalize(ctx, d.InvoiceID, d.DepositID, depth); err != nil {
			if errors.Is(err, domain.ErrInvalidState) || errors.Is(err, domain.ErrNotFound) {
				w.log.Error("tron: ledger refused a finality", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "err", err)
				continue
			}
			return fmt.Errorf("tron finalize %s: %w", d.DepositID, err)
		}
		if err := w.st.SetState(ctx, d.DepositID, scanFinal, true, w.cfg.Now()); err != nil {
			return err
		}
		w.log.Info("tron: deposit final", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "depth", depth)
	}
	return nil
}
