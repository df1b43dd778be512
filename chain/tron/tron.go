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
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
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
	// BlocksByLimitNext returns blocks start..end-1 (at most
	// MaxBlockRange), as many as the node has.
	BlocksByLimitNext(ctx context.Context, start, end int64) ([]Block, error)
	TransactionInfoByBlockNum(ctx context.Context, n int64) ([]TransactionInfo, error)
}

var _ Node = (*HTTPClient)(nil)

// TransferTopic is topic 0 of a TRC-20 (ERC-20) Transfer(address,address,uint256)
// event: keccak256 of that signature, in hex as TRON's logs carry it.
const TransferTopic = "ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"

// identityMaxAge is how long a matching genesis block id holds between
// scans (one request; see scan.Config.IdentityMaxAge).
const identityMaxAge = 5 * time.Minute

// DefaultSolidEveryBlocks is Config.SolidEveryBlocks against a quota
// (picd's): the solidified block asked at most every 15 s of chain.
const DefaultSolidEveryBlocks = 5

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
	// PollInterval is the pause between scans in Run while a TRON invoice
	// is open or a deposit not yet final (default 5 s: one request per
	// scan, two blocks, keeps TronGrid's free quota; see docs/operations.md).
	// IdlePollInterval is the pause while none is (default 25 s, under
	// picd's 45 s readiness bound); Run looks at the read model every
	// PollInterval, so an invoice opened meanwhile is scanned for at once.
	// MaxBackoff bounds the pause after failures (default 1 min).
	PollInterval     time.Duration
	IdlePollInterval time.Duration
	MaxBackoff       time.Duration
	// SolidEveryBlocks: while a deposit waits for its block to be
	// solidified, the solidified block is asked at most once per that many
	// new blocks (default 1); it is not asked while none waits.
	SolidEveryBlocks int64
	// AllCallReceipts reads the receipts of every block with a contract
	// call, so that token transfers made by other contracts (an exchange's
	// batch payout) are seen too: about one request more per block, for a
	// node without a request quota. By default only blocks with a direct
	// transfer or transferFrom of a watched token to a watched address
	// have their receipts read.
	AllCallReceipts bool
	// Now is the clock for bookkeeping times (default time.Now).
	Now func() time.Time
}

// account is the 20 bytes of a TRON address without its 0x41 prefix (the
// EVM form logs use).
type account [20]byte

// token is a TRC-20 asset we watch.
type token struct {
	asset    string
	decimals int32
}

// Watcher scans the TRON chain for deposits to invoice addresses: the
// engine of chain/scan over tronChain.
type Watcher struct {
	cfg      Config
	scan     *scan.Scanner[Block]
	chain    *tronChain
	db       sqldb.DB
	busyQ    string
	busyArgs []any
	log      *slog.Logger
	poll     scan.Poller
}

// tronChain is what is particular to TRON: the node's calls, TRX
// transfers in blocks and TRC-20 Transfer events in their receipts.
type tronChain struct {
	node            Node
	log             *slog.Logger
	ignoreSolidity  bool
	allCallReceipts bool
	solidEvery      int64
	pending         func(ctx context.Context) (int64, error)
	// solidOK: the solidity endpoint answered the last time it was asked.
	// Until it has, Head asks it first, so a node without it fails the
	// scan before any block is recorded: the error names the endpoint and
	// the checkpoint stands still (picd's /readyz fails), rather than
	// deposits being seen and never confirmed.
	solidOK bool
	// solid is the solidified block last asked, when the head was at
	// solidAskedAt.
	solid, solidAskedAt int64

	// The blocks this scan fetched (since its Head), by height, and the
	// newest block handed to the engine, kept across scans: the next scan
	// fetches from the block after it in one request, and HashAt answers
	// from a block fetched in this scan (or the parent id of the next one),
	// never from an older answer.
	head   int64
	blocks map[int64]Block
	last   *Block

	native *token           // nil when TRX is not an asset
	tokens map[string]token // by contract, 20-byte lower-case hex
	// watched holds our addresses by their 20 bytes and answers with the
	// form stored on invoices: base58 (as picd issues them) or hex are
	// rendered again from the bytes, any other form is kept as text.
	watched *chain.WatchSet[account]
}

func newWatchSet() *chain.WatchSet[account] {
	return chain.NewWatchSet(func(a account) string { return EncodeAddress(a[:]) },
		func(a account) string { return "41" + hex.EncodeToString(a[:]) })
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
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.IdlePollInterval < cfg.PollInterval {
		cfg.IdlePollInterval = max(25*time.Second, cfg.PollInterval)
	}
	if cfg.SolidEveryBlocks <= 0 {
		cfg.SolidEveryBlocks = 1
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
	log = log.With("chain", "tron")
	c := &tronChain{node: node, log: log, ignoreSolidity: cfg.IgnoreSolidity, allCallReceipts: cfg.AllCallReceipts, solidEvery: cfg.SolidEveryBlocks,
		tokens: map[string]token{}, watched: newWatchSet(), blocks: map[int64]Block{}}
	pendingQ := db.Q(`SELECT COALESCE(MAX(block_height), 0) FROM tron_deposits WHERE state = ?`)
	c.pending = func(ctx context.Context) (int64, error) {
		var h int64
		if err := db.Read.QueryRowContext(ctx, pendingQ, chain.ScanSeen).Scan(&h); err != nil {
			return 0, fmt.Errorf("tron pending deposits: %w", err)
		}
		return h, nil
	}
	rules := map[string]scan.Asset{}
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
		// Final once confirmed (its block solidified, hence irreversible);
		// without solidity, at the asset's finality depth; or at the
		// overriding depth, solidified too.
		rule := scan.Asset{Confirmations: n, Final: scan.FinalByBlockAndDepth}
		if cfg.IgnoreSolidity {
			rule.FinalDepth = max(a.FinalityDepth(), n)
		}
		if f, ok := cfg.Finality[a.Code]; ok {
			if f < n {
				return nil, fmt.Errorf("tron: %s: finality %d below its %d confirmations", a.Code, f, n)
			}
			rule.FinalDepth = f
		}
		rules[a.Code] = rule
		contract := a.Contract
		if ct, ok := cfg.Contracts[a.Code]; ok {
			contract = ct
		}
		if contract == "" {
			c.native = &token{asset: a.Code, decimals: a.Decimals}
			continue
		}
		addr, err := DecodeAddress(contract)
		if err != nil {
			return nil, fmt.Errorf("tron: %s: contract: %w", a.Code, err)
		}
		key := hex.EncodeToString(addr[1:])
		if _, dup := c.tokens[key]; dup {
			return nil, fmt.Errorf("tron: contract %s listed for two assets", contract)
		}
		c.tokens[key] = token{asset: a.Code, decimals: a.Decimals}
	}
	for code := range cfg.Confirmations {
		if _, ok := rules[code]; !ok {
			return nil, fmt.Errorf("tron: confirmations for %q: not a TRON asset", code)
		}
	}
	for code := range cfg.Finality {
		if _, ok := rules[code]; !ok {
			return nil, fmt.Errorf("tron: finality for %q: not a TRON asset", code)
		}
	}
	if len(rules) == 0 {
		return nil, errors.New("tron: no TRON asset configured")
	}
	// Reports one after another: the ledger sees a scan's deposits in
	// block order.
	sc, err := scan.New[Block](scan.Config{Name: "tron", Assets: rules, StartBlock: cfg.StartBlock, BatchBlocks: cfg.BatchBlocks,
		KeepBlocks: cfg.KeepBlocks, Reports: 1, ConfirmFinalOnly: !cfg.IgnoreSolidity, IdentityMaxAge: identityMaxAge, ForeignHistory: true, Now: cfg.Now,
		OwnTransactions: ownTransactions(db), Depths: scan.NewDepthTable(db)}, c, sink, newStore(db), log)
	if err != nil {
		return nil, err
	}
	w := &Watcher{cfg: cfg, scan: sc, chain: c, db: db, log: log}
	// Busy: an open invoice of a TRON asset, or a deposit not final yet.
	var codes []any
	for code := range rules {
		codes = append(codes, code)
	}
	w.busyQ = db.Q(`SELECT (SELECT COUNT(*) FROM invoices WHERE status IN (?, ?, ?) AND asset IN (?` + strings.Repeat(`, ?`, len(codes)-1) + `))
		+ (SELECT COUNT(*) FROM tron_deposits WHERE state = ?)`)
	w.busyArgs = append(append([]any{string(domain.StatusNew), string(domain.StatusPartiallyPaid), string(domain.StatusConfirming)}, codes...), chain.ScanSeen)
	w.poll = scan.Poller{Interval: cfg.PollInterval, MaxBackoff: cfg.MaxBackoff, Idle: w.idle, IdleInterval: cfg.IdlePollInterval,
		Explain: explain, Log: log, Now: cfg.Now}
	return w, nil
}

// Run scans until ctx ends. A failed scan (a node that times out or
// errors) is logged and retried with exponential backoff from the stored
// checkpoint, so no block is skipped. It returns nil when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	w.poll.Run(ctx, scan.Once(w.ScanOnce))
	return nil
}

// Step scans when it is time to and returns the pause before the next
// Step: PollInterval; after a failure, a pause that doubles per failure in
// a row up to MaxBackoff (a throttled request, HTTP 429 or 403, included).
// While no TRON invoice is open and no deposit waits, it scans only once
// per IdlePollInterval, so an idle gateway spends little of the API's quota.
func (w *Watcher) Step(ctx context.Context) time.Duration {
	return w.poll.Step(ctx, scan.Once(w.ScanOnce))
}

// idle reports that no TRON invoice is open and no deposit waits.
func (w *Watcher) idle(ctx context.Context) (bool, error) {
	busy, err := w.busy(ctx)
	return !busy, err
}

// explain names a throttled scan in the log.
func explain(err error) string {
	if errors.Is(err, ErrThrottled) {
		return "tron: the API throttles us (rate or daily quota); backing off"
	}
	return "tron: scan failed; retrying from the checkpoint"
}

// busy reports whether a TRON invoice is open or a deposit not final.
func (w *Watcher) busy(ctx context.Context) (bool, error) {
	var n int64
	if err := w.db.Read.QueryRowContext(ctx, w.busyQ, w.busyArgs...).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

// ScanOnce brings the watcher up to the node's head (see
// scan.Scanner.ScanOnce). A deposit is confirmed once deep enough and its
// block solidified (unless IgnoreSolidity), and final then.
func (w *Watcher) ScanOnce(ctx context.Context) error { return w.scan.ScanOnce(ctx) }

// Identity is the node's genesis block id.
func (w *Watcher) Identity(ctx context.Context) (string, error) { return w.scan.Identity(ctx) }

// Watch adds the pay addresses of new TRON invoices.
func (c *tronChain) Watch(addrs []string) {
	for _, a := range addrs {
		b, err := DecodeAddress(a)
		if err != nil {
			continue // not a TRON address: nothing on this chain can pay it
		}
		c.watched.Add(account(b[1:]), a)
	}
}

// Head is the node's head. After a first scan it fetches every block past
// the last one handed to the engine in one request (getblockbylimitnext),
// the newest of which is the head; the head block itself is asked
// (getnowblock) only when that range is empty or full, or there is no
// last block.
func (c *tronChain) Head(ctx context.Context) (int64, error) {
	if !c.ignoreSolidity && !c.solidOK {
		if _, err := c.askSolid(ctx); err != nil {
			return 0, err
		}
	}
	clear(c.blocks)
	if c.last != nil {
		from := c.last.Number() + 1
		bs, err := c.node.BlocksByLimitNext(ctx, from, from+MaxBlockRange)
		if err != nil {
			return 0, fmt.Errorf("tron blocks from %d: %w", from, err)
		}
		for _, b := range bs {
			c.blocks[b.Number()] = b
		}
		if len(bs) > 0 && len(bs) < MaxBlockRange {
			c.head = bs[len(bs)-1].Number()
			return c.head, nil
		}
		// None: the node may be behind our last block (a node that is
		// still syncing is no reorg); full: it may be further ahead.
	}
	head, err := c.node.NowBlock(ctx)
	if err != nil {
		return 0, fmt.Errorf("tron head: %w", err)
	}
	c.blocks[head.Number()] = head
	c.head = head.Number()
	return c.head, nil
}

// HashAt is the id of the block at height: from a block this scan
// fetched, or the parent id of the one above it; else asked.
func (c *tronChain) HashAt(ctx context.Context, height int64) (string, error) {
	if b, ok := c.blocks[height]; ok {
		return b.BlockID, nil
	}
	if next, ok := c.blocks[height+1]; ok && c.last != nil && c.last.Number() == height && next.BlockHeader.RawData.ParentHash == c.last.BlockID {
		return c.last.BlockID, nil
	}
	b, err := c.node.BlockByNum(ctx, height)
	if errors.Is(err, ErrNotFound) {
		return "", fmt.Errorf("tron block %d: %w", height, scan.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("tron block %d: %w", height, err)
	}
	return b.BlockID, nil
}

// Block is the block at height: fetched in this scan, or with the blocks
// after it up to the head (one request per MaxBlockRange blocks).
func (c *tronChain) Block(ctx context.Context, height int64) (scan.Block[Block], error) {
	b, ok := c.blocks[height]
	if !ok {
		if height < c.head {
			bs, err := c.node.BlocksByLimitNext(ctx, height, min(height+MaxBlockRange, c.head+1))
			if err != nil {
				return scan.Block[Block]{}, fmt.Errorf("tron blocks from %d: %w", height, err)
			}
			for _, b := range bs {
				c.blocks[b.Number()] = b
			}
			b, ok = c.blocks[height]
		}
		if !ok {
			var err error
			if b, err = c.node.BlockByNum(ctx, height); err != nil {
				return scan.Block[Block]{}, fmt.Errorf("tron block %d: %w", height, err)
			}
		}
	}
	if b.Number() != height {
		return scan.Block[Block]{}, fmt.Errorf("tron block %d: the node answered block %d", height, b.Number())
	}
	if c.last == nil || height >= c.last.Number() {
		c.last = &b
	}
	return scan.Block[Block]{Height: height, Hash: b.BlockID, Parent: b.BlockHeader.RawData.ParentHash, Raw: b}, nil
}

// FinalBlock is the solidified block; with IgnoreSolidity, none. It is
// asked only while a deposit above the last answer waits for it, at most
// once per SolidEveryBlocks new blocks: a solidified block only moves up,
// so an older answer is a safe lower bound meanwhile.
func (c *tronChain) FinalBlock(ctx context.Context) (int64, bool, error) {
	if c.ignoreSolidity {
		return 0, false, nil
	}
	need, err := c.pending(ctx)
	if err != nil {
		return 0, false, err
	}
	if c.solidOK && (need <= c.solid || c.head-c.solidAskedAt < c.solidEvery) {
		return c.solid, true, nil
	}
	n, err := c.askSolid(ctx)
	if err != nil {
		return 0, false, err
	}
	return n, true, nil
}

func (c *tronChain) askSolid(ctx context.Context) (int64, error) {
	b, err := c.node.SolidBlock(ctx)
	c.solidOK = err == nil
	if err != nil {
		return 0, fmt.Errorf("tron solidified block: %w", err)
	}
	c.solid, c.solidAskedAt = max(c.solid, b.Number()), c.head
	return c.solid, nil
}

// Identity is the id of the genesis block: mainnet, Nile and Shasta
// each have their own.
func (c *tronChain) Identity(ctx context.Context) (string, error) {
	id, err := c.HashAt(ctx, 0)
	if err != nil {
		return "", err
	}
	return "genesis " + id, nil
}

// Match returns the TRX transfers and token Transfer events to watched
// addresses in blocks, block by block.
func (c *tronChain) Match(ctx context.Context, blocks []scan.Block[Block]) ([]scan.Transfer, error) {
	var out []scan.Transfer
	for _, b := range blocks {
		fs, err := c.matchBlock(ctx, b.Raw)
		if err != nil {
			return nil, err
		}
		for _, f := range fs {
			out = append(out, scan.Transfer{Asset: f.asset, Address: f.address, TxID: f.txID, DepositID: f.depositID,
				Amount: domain.FromBaseUnits(f.units, f.decimals), Height: f.height, Block: f.blockID})
		}
	}
	return out, nil
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

// matchBlock returns the block's TRX transfers and token Transfer events
// to watched addresses. Failed transactions moved nothing and are skipped.
func (c *tronChain) matchBlock(ctx context.Context, b Block) ([]found, error) {
	if c.watched.Len() == 0 {
		return nil, nil
	}
	var out []found
	calls := false
	for _, tx := range b.Transactions {
		if len(tx.RawData.Contract) != 1 {
			continue // a payment has exactly one contract
		}
		ct := tx.RawData.Contract[0]
		switch ct.Type {
		case "TriggerSmartContract":
			calls = calls || c.allCallReceipts || c.directTransfer(ct.Parameter.Value)
		case "TransferContract":
			if c.native == nil {
				continue
			}
			to, err := DecodeAddress(ct.Parameter.Value.ToAddress)
			if err != nil {
				continue
			}
			stored, ok := c.watched.Lookup(account(to[1:]))
			if !ok || ct.Parameter.Value.Amount <= 0 {
				continue
			}
			if !tx.Succeeded() {
				c.log.Info("tron: failed transaction to our address ignored", "txid", tx.TxID, "address", stored)
				continue
			}
			if err := checkTxID(tx); err != nil {
				return nil, err
			}
			out = append(out, found{asset: c.native.asset, decimals: c.native.decimals, address: stored, txID: tx.TxID, depositID: tx.TxID,
				units: big.NewInt(ct.Parameter.Value.Amount), height: b.Number(), blockID: b.BlockID})
		}
	}
	// Token transfers show only in the receipts' logs. A block's receipts
	// are read when it calls a watched token's transfer or transferFrom to
	// a watched address (one request per such block, not per block), or,
	// with AllCallReceipts, when it has any contract call (a Transfer of
	// our token made by another contract, an exchange's batch payout).
	if !calls || len(c.tokens) == 0 {
		return out, nil
	}
	infos, err := c.node.TransactionInfoByBlockNum(ctx, b.Number())
	if err != nil {
		return nil, fmt.Errorf("tron receipts of block %d: %w", b.Number(), err)
	}
	inBlock := make(map[string]bool, len(b.Transactions))
	for _, tx := range b.Transactions {
		inBlock[tx.TxID] = true
	}
	for _, info := range infos {
		if info.BlockNumber != b.Number() || !inBlock[info.ID] {
			return nil, fmt.Errorf("%w: receipt %s of block %d is not in block %s", scan.ErrChainMoved, info.ID, info.BlockNumber, b.BlockID)
		}
		if info.Failed() {
			continue
		}
		for i, l := range info.Log {
			f, ok := c.matchLog(l)
			if !ok {
				continue
			}
			f.txID, f.depositID, f.height, f.blockID = info.ID, info.ID+":"+strconv.Itoa(i), b.Number(), b.BlockID
			out = append(out, f)
		}
	}
	return out, nil
}

// Selectors of transfer(address,uint256) and transferFrom(address,address,uint256).
const (
	transferSel     = "a9059cbb"
	transferFromSel = "23b872dd"
)

// directTransfer reports whether a contract call is a watched token's
// transfer or transferFrom to a watched address.
func (c *tronChain) directTransfer(v ContractValue) bool {
	addr := strings.ToLower(v.ContractAddress)
	if len(addr) == 42 && strings.HasPrefix(addr, "41") {
		addr = addr[2:]
	}
	if _, ok := c.tokens[addr]; !ok {
		return false
	}
	data := strings.ToLower(strings.TrimPrefix(v.Data, "0x"))
	var to string
	switch {
	case strings.HasPrefix(data, transferSel) && len(data) >= 8+64:
		to = data[8 : 8+64]
	case strings.HasPrefix(data, transferFromSel) && len(data) >= 8+128:
		to = data[8+64 : 8+128]
	default:
		return false
	}
	b, err := hex.DecodeString(to)
	if err != nil {
		return false
	}
	return c.watched.Has(account(b[12:]))
}

// matchLog reads a Transfer event of a watched token to a watched address.
func (c *tronChain) matchLog(l Log) (found, bool) {
	addr := strings.ToLower(strings.TrimPrefix(l.Address, "0x"))
	if len(addr) == 42 && strings.HasPrefix(addr, "41") {
		addr = addr[2:] // the 21-byte form, should a node send it
	}
	tk, ok := c.tokens[addr]
	if !ok || len(l.Topics) != 3 || strings.ToLower(strings.TrimPrefix(l.Topics[0], "0x")) != TransferTopic {
		return found{}, false // other contracts, other events, ERC-721 style transfers (a fourth topic)
	}
	topic, err := hex.DecodeString(strings.TrimPrefix(l.Topics[2], "0x"))
	if err != nil || len(topic) != 32 {
		return found{}, false
	}
	stored, ok := c.watched.Lookup(account(topic[12:]))
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
