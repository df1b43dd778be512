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
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
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
	ChainID(ctx context.Context) (*big.Int, error)
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
	// ChainID is the chain id the node must have (0: any; the first node's
	// chain id and genesis block are recorded and every later node must
	// have the same).
	ChainID int64
	// Now is the clock for bookkeeping times (default time.Now).
	Now func() time.Time
}

// identityMaxAge is how long a matching node identity (chain id and
// genesis, two calls) holds between scans; see scan.Config.IdentityMaxAge.
const identityMaxAge = time.Minute

// Watcher scans an Ethereum chain for deposits to invoice addresses: the
// engine of chain/scan over ethChain.
type Watcher struct {
	cfg  Config
	scan *scan.Scanner[*types.Block]
	log  *slog.Logger
}

// ethChain is what is particular to Ethereum: the node's calls, native
// transfers in blocks and token Transfer logs of a range, and receipts.
type ethChain struct {
	client  Client
	log     *slog.Logger
	chainID int64 // configured; 0: any

	native     *token // nil when ETH is not an asset
	tokens     map[common.Address]token
	tokenAddrs []common.Address
	watched    watchSet

	noFinalized bool // the node had no finalized block last time: logged once

	// single is the height of a one-block range the scan is about to
	// fetch (Prefetch), 0 otherwise; blockLogs are its Transfer logs,
	// asked by its hash while the block was fetched, for Match.
	single    int64
	blockLogs *hashLogs
}

// hashLogs are the Transfer logs of the block with hash, or why not.
type hashLogs struct {
	hash common.Hash
	logs []types.Log
	err  error
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
	log = log.With("chain", "ethereum")
	c := &ethChain{client: client, log: log, chainID: cfg.ChainID, tokens: map[common.Address]token{}, watched: newWatchSet()}
	rules := map[string]scan.Asset{}
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
		// Final once the node's finalized block covers the deposit; at
		// the asset's finality depth when the node has none, or at the
		// overriding depth.
		rule := scan.Asset{Confirmations: n, FinalDepth: max(a.FinalityDepth(), n), Final: scan.FinalByBlockElseDepth}
		if f, ok := cfg.Finality[a.Code]; ok {
			if f < n {
				return nil, fmt.Errorf("eth: %s: finality %d below its %d confirmations", a.Code, f, n)
			}
			rule.FinalDepth, rule.Final = f, scan.FinalByDepth
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
		if !common.IsHexAddress(contract) {
			return nil, fmt.Errorf("eth: %s: contract %q is not an address", a.Code, contract)
		}
		addr := common.HexToAddress(contract)
		if _, dup := c.tokens[addr]; dup {
			return nil, fmt.Errorf("eth: contract %s listed for two assets", addr.Hex())
		}
		c.tokens[addr] = token{asset: a.Code, decimals: a.Decimals}
		c.tokenAddrs = append(c.tokenAddrs, addr)
	}
	for code := range cfg.Confirmations {
		if _, ok := rules[code]; !ok {
			return nil, fmt.Errorf("eth: confirmations for %q: not an Ethereum asset", code)
		}
	}
	for code := range cfg.Finality {
		if _, ok := rules[code]; !ok {
			return nil, fmt.Errorf("eth: finality for %q: not an Ethereum asset", code)
		}
	}
	if len(rules) == 0 {
		return nil, errors.New("eth: no Ethereum asset configured")
	}
	sc, err := scan.New[*types.Block](scan.Config{Name: "eth", Assets: rules, StartBlock: int64(cfg.StartBlock),
		BatchBlocks: cfg.BatchBlocks, KeepBlocks: cfg.KeepBlocks, Reports: maxConcurrentReports, ConfirmAtTip: true, IdentityMaxAge: identityMaxAge, ForeignHistory: true, Now: cfg.Now,
		OwnTransactions: ownTransactions(db), Depths: scan.NewDepthTable(db)}, c, sink, newStore(db), log)
	if err != nil {
		return nil, err
	}
	return &Watcher{cfg: cfg, scan: sc, log: log}, nil
}

// Run scans until ctx ends. A failed scan is logged and retried with
// exponential backoff from the stored checkpoint, so no block is skipped.
// It returns nil when ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	p := scan.Poller{Interval: w.cfg.PollInterval, MaxBackoff: w.cfg.MaxBackoff, Log: w.log, Now: w.cfg.Now}
	p.Run(ctx, scan.Once(w.ScanOnce))
	return nil
}

// ScanOnce brings the watcher up to the chain's current head (see
// scan.Scanner.ScanOnce). Native transfers come from the blocks, token
// transfers from the Transfer logs of each batch (one FilterLogs call);
// a deposit is final once the node's finalized block covers it.
func (w *Watcher) ScanOnce(ctx context.Context) error { return w.scan.ScanOnce(ctx) }

// Identity is the node's chain id and genesis block hash.
func (w *Watcher) Identity(ctx context.Context) (string, error) { return w.scan.Identity(ctx) }

// Watch adds the pay addresses of new Ethereum invoices.
func (c *ethChain) Watch(addrs []string) {
	for _, a := range addrs {
		if !common.IsHexAddress(a) {
			continue // not an Ethereum address: nothing on this chain can pay it
		}
		c.watched.Add(common.HexToAddress(a), a)
	}
}

func (c *ethChain) Head(ctx context.Context) (int64, error) {
	h, err := c.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("eth head: %w", err)
	}
	return h.Number.Int64(), nil
}

func (c *ethChain) HashAt(ctx context.Context, height int64) (string, error) {
	h, err := c.client.HeaderByNumber(ctx, big.NewInt(height))
	if errors.Is(err, ethereum.NotFound) {
		return "", fmt.Errorf("eth header %d: %w", height, scan.ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("eth header %d: %w", height, err)
	}
	return h.Hash().Hex(), nil
}

// Prefetch (scan.Prefetcher) notes a one-block range: the scan at the
// head, block by block. Its logs are then asked beside the block.
func (c *ethChain) Prefetch(from, to int64) {
	c.single, c.blockLogs = 0, nil
	if from == to && len(c.tokenAddrs) > 0 {
		c.single = from
	}
}

func (c *ethChain) Block(ctx context.Context, height int64) (scan.Block[*types.Block], error) {
	if height == c.single {
		c.single = 0
		return c.blockWithLogs(ctx, height)
	}
	b, err := c.client.BlockByNumber(ctx, big.NewInt(height))
	if err != nil {
		return scan.Block[*types.Block]{}, fmt.Errorf("eth block %d: %w", height, err)
	}
	return scan.Block[*types.Block]{Height: b.Number().Int64(), Hash: b.Hash().Hex(), Parent: b.ParentHash().Hex(), Raw: b}, nil
}

// blockWithLogs fetches the block at height and, at the same time, the
// token Transfer logs of the block with its header's hash (EIP-234), so the
// node's log search runs beside the block's fetch instead of after it.
// The logs are asked by hash, not by height: by height they could come
// from another branch than the block, and a branch without transfers at
// that height would hide the block's. A block whose hash is not the
// header's (the branch changed in between) is scan.ErrChainMoved.
func (c *ethChain) blockWithLogs(ctx context.Context, height int64) (scan.Block[*types.Block], error) {
	h, err := c.client.HeaderByNumber(ctx, big.NewInt(height))
	if err != nil {
		return scan.Block[*types.Block]{}, fmt.Errorf("eth header %d: %w", height, err)
	}
	hash := h.Hash()
	logs := make(chan hashLogs, 1)
	go func() {
		l, err := c.client.FilterLogs(ctx, ethereum.FilterQuery{BlockHash: &hash, Addresses: c.tokenAddrs, Topics: [][]common.Hash{{TransferTopic}}})
		logs <- hashLogs{hash: hash, logs: l, err: err}
	}()
	b, err := c.client.BlockByNumber(ctx, big.NewInt(height))
	got := <-logs
	if err != nil {
		return scan.Block[*types.Block]{}, fmt.Errorf("eth block %d: %w", height, err)
	}
	if b.Hash() != hash {
		return scan.Block[*types.Block]{}, fmt.Errorf("%w: block %d was %s, then %s", scan.ErrChainMoved, height, hash.Hex(), b.Hash().Hex())
	}
	c.blockLogs = &got
	return scan.Block[*types.Block]{Height: b.Number().Int64(), Hash: b.Hash().Hex(), Parent: b.ParentHash().Hex(), Raw: b}, nil
}

// Identity is the chain id and the hash of the genesis block: another
// chain with the same id (a fresh dev chain, a fork) has another genesis.
// A chain id other than the configured one is a scan.MismatchError.
func (c *ethChain) Identity(ctx context.Context) (string, error) {
	id, err := c.client.ChainID(ctx)
	if err != nil {
		return "", fmt.Errorf("eth chain id: %w", err)
	}
	genesis, err := c.HashAt(ctx, 0)
	if err != nil {
		return "", err
	}
	found := fmt.Sprintf("chain id %s, genesis %s", id, genesis)
	if c.chainID != 0 && (!id.IsInt64() || id.Int64() != c.chainID) {
		return "", &scan.MismatchError{Chain: "eth", Expected: fmt.Sprintf("chain id %d (configured)", c.chainID), Found: found}
	}
	return found, nil
}

// Match finds the native transfers to watched addresses in blocks and the
// token transfers in the Transfer logs of their range, and leaves out the
// native ones whose transaction failed. Errors: scan.ErrChainMoved when a
// log or receipt is of another block, RPC errors.
func (c *ethChain) Match(ctx context.Context, blocks []scan.Block[*types.Block]) ([]scan.Transfer, error) {
	from, to := blocks[0].Height, blocks[len(blocks)-1].Height
	var hits []found
	if c.native != nil {
		for _, b := range blocks {
			hits = append(hits, matchNative(b.Raw, c.watched, c.native.asset, c.native.decimals)...)
		}
	}
	if len(c.tokenAddrs) > 0 && c.watched.Len() > 0 {
		logs, err := c.transferLogs(ctx, blocks)
		if err != nil {
			return nil, fmt.Errorf("eth logs %d-%d: %w", from, to, err)
		}
		for _, l := range logs {
			i := int64(l.BlockNumber) - from
			if i < 0 || i >= int64(len(blocks)) || blocks[i].Raw.Hash() != l.BlockHash {
				return nil, fmt.Errorf("%w: log of block %d %s", scan.ErrChainMoved, l.BlockNumber, l.BlockHash.Hex())
			}
		}
		hits = append(hits, matchLogs(logs, c.watched, c.tokens)...)
	}
	failed, err := c.failedTxs(ctx, hits)
	if err != nil {
		return nil, err
	}
	out := make([]scan.Transfer, 0, len(hits))
	for _, f := range hits {
		if f.native && failed[f.txHash] {
			c.log.Info("eth: failed transaction to our address ignored", "tx", f.txHash.Hex(), "address", f.address)
			continue
		}
		out = append(out, scan.Transfer{Asset: f.asset, Address: f.address, TxID: f.txHash.Hex(), DepositID: f.depositID,
			Amount: domain.FromBaseUnits(f.units, f.decimals), Height: f.height, Block: f.blockHash.Hex()})
	}
	return out, nil
}

// transferLogs are the token Transfer logs of blocks: those asked beside a
// single block's fetch, else one query of their range (also when the
// query by hash failed, say on a node without EIP-234).
func (c *ethChain) transferLogs(ctx context.Context, blocks []scan.Block[*types.Block]) ([]types.Log, error) {
	pre := c.blockLogs
	c.blockLogs = nil
	if pre != nil && len(blocks) == 1 && pre.hash == blocks[0].Raw.Hash() {
		if pre.err == nil {
			return pre.logs, nil
		}
		c.log.Debug("eth: logs by block hash failed; asking by height", "block", pre.hash.Hex(), "err", pre.err)
	}
	from, to := blocks[0].Height, blocks[len(blocks)-1].Height
	return c.client.FilterLogs(ctx, ethereum.FilterQuery{FromBlock: big.NewInt(from), ToBlock: big.NewInt(to),
		Addresses: c.tokenAddrs, Topics: [][]common.Hash{{TransferTopic}}})
}

// failedTxs returns the transactions among the native transfers in hits
// that failed. A plain transfer to an address without code cannot fail
// (nothing runs, and a sender short of funds makes it invalid, not
// failed), so receipts are read only for transfers to addresses holding
// code at the head: contracts, or accounts delegating under EIP-7702. An
// address that had code at the transfer's block but not at the head would
// have to have shed its delegation since; deposit addresses derived from
// our seed never delegate. Calls run at most maxReceiptFetches at a time.
// Errors: scan.ErrChainMoved when a receipt is of another block, RPC errors.
func (c *ethChain) failedTxs(ctx context.Context, hits []found) (map[common.Hash]bool, error) {
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
		code, err := c.client.CodeAt(ctx, addrs[i], nil)
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
		r, err := c.client.TransactionReceipt(ctx, f.txHash)
		if err != nil {
			return fmt.Errorf("eth receipt %s: %w", f.txHash.Hex(), err)
		}
		if r.BlockHash != f.blockHash {
			return fmt.Errorf("%w: receipt of %s is in block %s", scan.ErrChainMoved, f.txHash.Hex(), r.BlockHash.Hex())
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

// FinalBlock is the height of the node's finalized block; tagged is
// false when the node has none (a node before the merge, a chain without
// finality, an error): deposits then count blocks.
func (c *ethChain) FinalBlock(ctx context.Context) (height int64, tagged bool, err error) {
	h, err := c.client.HeaderByNumber(ctx, big.NewInt(int64(rpc.FinalizedBlockNumber)))
	if ctx.Err() != nil {
		return 0, false, ctx.Err()
	}
	if err != nil || h == nil {
		if !c.noFinalized {
			c.log.Warn("eth: the node has no finalized block; deposits are final by depth", "err", err)
		}
		c.noFinalized = true
		return 0, false, nil
	}
	if c.noFinalized {
		c.log.Info("eth: the node has a finalized block again", "height", h.Number)
	}
	c.noFinalized = false
	return h.Number.Int64(), true, nil
}
