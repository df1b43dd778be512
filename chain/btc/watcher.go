// Package btc watches a Bitcoin node (btcd or Bitcoin Core) over JSON-RPC
// and reports payments to our invoice addresses through chain.Sink:
// mempool transactions at once (0 confirmations), blocks from a stored
// checkpoint, confirmations up to the asset's threshold, finality at the
// asset's finality depth (money rule 4), and reorgs detected by block
// hash. The blocks are scanned by the engine (chain/scan) with Bitcoin's
// options; this package supplies the node, block decoding, output
// matching, the mempool rule and the engine's State over its own tables
// (chain_btc_*, state.go), so a restart, even hours later, rescans from
// where it stopped and misses nothing.
package btc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Config of a watcher. RPCHost is host:port of the node's RPC server.
type Config struct {
	RPCHost string
	RPCUser string
	RPCPass string
	// RPCCookiePath, when set, authenticates with Bitcoin Core's cookie file
	// instead of RPCUser/RPCPass.
	RPCCookiePath string
	// TLSCert is the PEM certificate of a btcd RPC server using TLS; without
	// it the watcher speaks plain HTTP (Bitcoin Core's RPC, btcd --notls).
	TLSCert []byte
	// P2PHost, when set, is host:port of the node's peer-to-peer port:
	// blocks are fetched there in their wire format (checked against the
	// RPC's hash and their merkle root), everything else over RPC. The
	// RPC serves blocks while the peer is unreachable.
	P2PHost string
	Params  *chaincfg.Params
	// PollInterval between scans of the mempool and the chain (default 5 s).
	PollInterval time.Duration
	// StartHeight is the first block scanned when there is no checkpoint
	// yet; 0 starts at the node's current tip.
	StartHeight int64
	// ReorgDepth is how many recent block hashes are kept to find a fork
	// point (default 144, a day of blocks).
	ReorgDepth int
	// RPCTimeout bounds one call to the node (default 30 s).
	RPCTimeout time.Duration
	// Finality overrides, by asset code, the depth at which a credited
	// deposit becomes final and its money available (money rule 4); the
	// asset's finality (6 blocks) otherwise. Tests use small depths.
	Finality map[string]int
	// Now is the clock for bookkeeping times (default time.Now).
	Now func() time.Time
}

// Limits that keep one scan bounded.
const (
	maxBlocksPerScan     = 500
	maxMempoolFetches    = 2000
	missingPollsToRevert = 2
	maxBackoff           = 2 * time.Minute
)

// Deposit states in chain_btc_deposits: pending (reported), confirmed
// (credited, its money pending), final (deep enough: its money available),
// reverted.
const (
	statePending   = "pending"
	stateConfirmed = "confirmed"
	stateFinal     = "final"
	stateReverted  = "reverted"
)

// node is the part of the RPC client the watcher uses; *rpcclient.Client has it.
type node interface {
	GetBlockCount() (int64, error)
	GetBlockHash(height int64) (*chainhash.Hash, error)
	GetBlock(hash *chainhash.Hash) (*wire.MsgBlock, error)
	GetRawMempool() ([]*chainhash.Hash, error)
	GetRawTransaction(hash *chainhash.Hash) (*btcutil.Tx, error)
}

// deposits is what the watcher asks of the ledger; chain.Sink does it.
type deposits interface {
	Observe(ctx context.Context, t chain.Transfer) (invoiceID string, err error)
	Confirm(ctx context.Context, invoiceID, depositID string, confirmations int) error
	Finalize(ctx context.Context, invoiceID, depositID string, depth int) error
	Revert(ctx context.Context, invoiceID, depositID, reason string) error
}

var (
	_ node     = (*rpcclient.Client)(nil)
	_ deposits = chain.Sink{}
)

// Watcher scans one Bitcoin node for payments to our addresses. ScanOnce is
// not safe for concurrent use; Run calls it in a loop.
type Watcher struct {
	cfg    Config
	client *rpcclient.Client // nil when a test supplies node
	peer   *peer             // nil without Config.P2PHost
	node   node
	sink   deposits
	db     sqldb.DB
	asset  domain.Asset
	// finality is the depth at which a credited deposit is final.
	finality int
	log      *slog.Logger
	now      func() time.Time

	engine *scan.Scanner[*wire.MsgBlock]
	tip    int64 // the node's height at the start of the current scan
	// started: a checkpoint exists (it is logged when the first is made).
	started bool

	// watched maps an output script to the invoice address it pays.
	watched     watchSet
	mempoolSeen map[chainhash.Hash]struct{}
}

// New connects lazily to the node (nothing is sent before the first scan).
// The watcher reports the chain's native asset of assets (BTC) through
// sink and keeps its state in db, whose tables Migrate creates.
func New(cfg Config, sink chain.Sink, db sqldb.DB, assets domain.Assets, log *slog.Logger) (*Watcher, error) {
	if cfg.RPCHost == "" {
		return nil, errors.New("btc: no RPC host")
	}
	client, err := rpcclient.New(&rpcclient.ConnConfig{
		Host: cfg.RPCHost, User: cfg.RPCUser, Pass: cfg.RPCPass, CookiePath: cfg.RPCCookiePath,
		HTTPPostMode: true, DisableTLS: len(cfg.TLSCert) == 0, Certificates: cfg.TLSCert,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("btc: rpc client: %w", err)
	}
	var n node = hexBlocks{client}
	var p *peer
	if cfg.P2PHost != "" {
		if log == nil {
			log = slog.Default()
		}
		p = newPeer(cfg.P2PHost, cfg.Params, log.With("chain", "bitcoin"))
		n = p2pBlocks{node: n, peer: p}
	}
	w, err := newWatcher(cfg, n, sink, db, assets, log)
	if err != nil {
		client.Shutdown()
		return nil, err
	}
	w.client, w.peer = client, p
	return w, nil
}

func newWatcher(cfg Config, n node, sink deposits, db sqldb.DB, assets domain.Assets, log *slog.Logger) (*Watcher, error) {
	if cfg.Params == nil {
		return nil, errors.New("btc: no network parameters")
	}
	if db.Read == nil || db.Write == nil {
		return nil, errors.New("btc: no database")
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = 5 * time.Second
	}
	if cfg.ReorgDepth <= 0 {
		cfg.ReorgDepth = 144
	}
	if cfg.RPCTimeout <= 0 {
		cfg.RPCTimeout = 30 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.StartHeight < 0 {
		return nil, fmt.Errorf("btc: negative start height %d", cfg.StartHeight)
	}
	var asset domain.Asset
	for _, a := range assets.List() {
		if a.Chain == domain.ChainBitcoin && a.Native() {
			asset = a
		}
	}
	if asset.Code == "" {
		return nil, errors.New("btc: no native Bitcoin asset configured")
	}
	if asset.Decimals != 8 {
		return nil, fmt.Errorf("btc: asset %s has %d decimals; satoshis need 8", asset.Code, asset.Decimals)
	}
	finality, err := finalityDepth(cfg, asset)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	w := &Watcher{cfg: cfg, node: n, sink: sink, db: db, asset: asset, finality: finality, log: log.With("chain", "bitcoin"), now: cfg.Now,
		watched: newWatchSet(cfg.Params), mempoolSeen: map[chainhash.Hash]struct{}{}}
	// Bitcoin's rules on the engine: a block per commit and at most
	// maxBlocksPerScan a scan; the block below the first one scanned is
	// stored with its hash; a node whose tip went back (invalidateblock)
	// is a reorg; a deposit is reported once, with its depth from the tip;
	// deposits the ledger refuses are logged and skipped. Mempool payments
	// are ScanPending's.
	w.engine, err = scan.New(scan.Config{Name: "btc",
		Assets:     map[string]scan.Asset{asset.Code: {Confirmations: asset.Confirmations, FinalDepth: finality, Final: scan.FinalByDepth}},
		StartBlock: cfg.StartHeight, BatchBlocks: 1, KeepBlocks: cfg.ReorgDepth, MaxBlocks: maxBlocksPerScan, Reports: maxConcurrentReports,
		ConfirmAtTip: true, AnchorFirst: true, RewindWhenBehind: true, ReportOnce: true, DepthFromHead: true, Refused: isDataError, ForeignHistory: true,
		Depths: scan.NewDepthTable(db), Now: cfg.Now}, scan.Chain[*wire.MsgBlock](w), scan.Sink(watcherSink{w}), scan.State(state{w}), w.log)
	if err != nil {
		return nil, fmt.Errorf("btc: %w", err)
	}
	return w, nil
}

// finalityDepth is the depth at which a deposit of asset is final: the
// asset's, or cfg.Finality's override.
func finalityDepth(cfg Config, asset domain.Asset) (int, error) {
	finality := asset.FinalityDepth()
	for code, depth := range cfg.Finality {
		if code != asset.Code {
			return 0, fmt.Errorf("btc: finality for %q: not the Bitcoin asset", code)
		}
		if depth < asset.Confirmations {
			return 0, fmt.Errorf("btc: %s: finality %d below its %d confirmations", code, depth, asset.Confirmations)
		}
		finality = depth
	}
	return finality, nil
}

// Close releases the RPC client.
func (w *Watcher) Close() {
	if w.client != nil {
		w.client.Shutdown()
	}
	if w.peer != nil {
		w.peer.close()
	}
}

// Run scans until ctx ends, then returns nil. Node and database errors are
// logged and retried with exponential backoff (up to two minutes); the
// checkpoint only moves past work that is done, so nothing is skipped. A
// long catch-up continues at once.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.Close()
	w.log.Info("bitcoin watcher: network", "network", w.cfg.Params.Name, "genesis", w.cfg.Params.GenesisHash.String(), "node", w.cfg.RPCHost)
	p := scan.Poller{Interval: w.cfg.PollInterval, MaxBackoff: maxBackoff, Log: w.log, Now: w.cfg.Now}
	p.Run(ctx, w.scan)
	return nil
}

// Identity is the hash of the node's genesis block, which names its
// network. A node of another network than the configured one (a simnet
// node under a mainnet gateway) is a scan.MismatchError naming both, with
// the chain the node says it follows (getblockchaininfo) when it answers.
func (w *Watcher) Identity(ctx context.Context) (string, error) {
	h, err := call(ctx, w, func() (*chainhash.Hash, error) { return w.node.GetBlockHash(0) })
	if err != nil {
		return "", fmt.Errorf("btc: getblockhash 0: %w", err)
	}
	found := "genesis " + h.String()
	if !h.IsEqual(w.cfg.Params.GenesisHash) {
		if name := w.nodeChain(ctx); name != "" {
			found += fmt.Sprintf(" (the node says chain %q)", name)
		}
		return "", &scan.MismatchError{Chain: "btc", Found: found,
			Expected: fmt.Sprintf("bitcoin %s (genesis %s, configured)", w.cfg.Params.Name, w.cfg.Params.GenesisHash)}
	}
	return found, nil
}

// nodeChain is the chain the node names in getblockchaininfo ("main",
// "test", "regtest" from Bitcoin Core; "mainnet", "simnet"… from btcd);
// "" when it does not say.
func (w *Watcher) nodeChain(ctx context.Context) string {
	raw, ok := w.node.(interface {
		RawRequest(method string, params []json.RawMessage) (json.RawMessage, error)
	})
	if !ok {
		return ""
	}
	res, err := call(ctx, w, func() (json.RawMessage, error) { return raw.RawRequest("getblockchaininfo", nil) })
	var info struct {
		Chain string `json:"chain"`
	}
	if err != nil || json.Unmarshal(res, &info) != nil {
		return ""
	}
	return info.Chain
}

// ScanOnce refreshes the watched addresses, scans new blocks from the
// checkpoint (undoing what a reorg orphaned), confirms deposits that
// reached the asset's confirmations, finalizes credited deposits that
// reached its finality, then scans the mempool. It scans at
// most 500 blocks; call it again while catching up.
func (w *Watcher) ScanOnce(ctx context.Context) error {
	_, err := w.scan(ctx)
	return err
}

func (w *Watcher) scan(ctx context.Context) (more bool, err error) {
	if !w.started {
		// The first checkpoint is logged once it is stored.
		_, err := (state{w}).Checkpoint(ctx)
		if err != nil && !errors.Is(err, scan.ErrNoCheckpoint) {
			return false, err
		}
		w.started = err == nil
	}
	if w.started {
		return w.engine.ScanMore(ctx)
	}
	more, err = w.engine.ScanMore(ctx)
	if _, cpErr := (state{w}).Checkpoint(ctx); cpErr == nil {
		w.started = true
		w.log.Info("bitcoin watcher starts", "start_height", w.cfg.StartHeight, "node_tip", w.tip)
	}
	return more, err
}

// Head, HashAt, Block, Match, Watch, FinalBlock and Identity make the
// watcher the scan engine's Chain, and ScanPending its Pending.
var (
	_ scan.Chain[*wire.MsgBlock] = (*Watcher)(nil)
	_ scan.Pending               = (*Watcher)(nil)
)

// Head is the node's height; HashAt answers scan.ErrNotFound above it.
func (w *Watcher) Head(ctx context.Context) (int64, error) {
	tip, err := call(ctx, w, w.node.GetBlockCount)
	if err != nil {
		return 0, fmt.Errorf("btc: getblockcount: %w", err)
	}
	w.tip = tip
	return tip, nil
}

func (w *Watcher) HashAt(ctx context.Context, height int64) (string, error) {
	if height > w.tip {
		return "", fmt.Errorf("btc: block %d above the node's tip %d: %w", height, w.tip, scan.ErrNotFound)
	}
	h, err := call(ctx, w, func() (*chainhash.Hash, error) { return w.node.GetBlockHash(height) })
	if err != nil {
		return "", fmt.Errorf("btc: getblockhash %d: %w", height, err)
	}
	return h.String(), nil
}

func (w *Watcher) Block(ctx context.Context, height int64) (scan.Block[*wire.MsgBlock], error) {
	hash, err := call(ctx, w, func() (*chainhash.Hash, error) { return w.node.GetBlockHash(height) })
	if err != nil {
		return scan.Block[*wire.MsgBlock]{}, fmt.Errorf("btc: getblockhash %d: %w", height, err)
	}
	blk, err := call(ctx, w, func() (*wire.MsgBlock, error) { return w.node.GetBlock(hash) })
	if err != nil {
		return scan.Block[*wire.MsgBlock]{}, fmt.Errorf("btc: getblock %s: %w", hash, err)
	}
	return scan.Block[*wire.MsgBlock]{Height: height, Hash: hash.String(), Parent: blk.Header.PrevBlock.String(), Raw: blk}, nil
}

// Match returns the outputs of the blocks that pay watched addresses; a
// zero-value output carries no money and is left out.
func (w *Watcher) Match(_ context.Context, blocks []scan.Block[*wire.MsgBlock]) ([]scan.Transfer, error) {
	var found []scan.Transfer
	var outs []output
	for _, b := range blocks {
		outs = outs[:0]
		for _, tx := range b.Raw.Transactions {
			outs = w.match(tx, nil, outs)
		}
		for _, o := range outs {
			if o.sat > 0 {
				found = append(found, scan.Transfer{Asset: w.asset.Code, Address: o.address, TxID: o.txid.String(), DepositID: o.depositID(),
					Amount: w.sats(o.sat), Height: b.Height, Block: b.Hash})
			}
		}
	}
	return found, nil
}

// Watch adds the output scripts of invoice addresses of this network.
func (w *Watcher) Watch(addresses []string) {
	for _, addr := range addresses {
		script, err := addressScript(addr, w)
		if err != nil {
			continue // not an address of this network (e.g. a simulator address)
		}
		w.watched.add(script, addr)
	}
}

// FinalBlock: Bitcoin has no final block; depth decides.
func (w *Watcher) FinalBlock(context.Context) (int64, bool, error) { return 0, false, nil }

// ScanPending scans the mempool (see scanMempool).
func (w *Watcher) ScanPending(ctx context.Context) error { return w.scanMempool(ctx) }

// watcherSink hands the engine's ledger commands to the watcher's sink of
// the moment (tests swap it).
type watcherSink struct{ w *Watcher }

func (s watcherSink) Observe(ctx context.Context, t chain.Transfer) (string, error) {
	return s.w.sink.Observe(ctx, t)
}

func (s watcherSink) Confirm(ctx context.Context, invoiceID, depositID string, confirmations int) error {
	return s.w.sink.Confirm(ctx, invoiceID, depositID, confirmations)
}

func (s watcherSink) Finalize(ctx context.Context, invoiceID, depositID string, depth int) error {
	return s.w.sink.Finalize(ctx, invoiceID, depositID, depth)
}

func (s watcherSink) Revert(ctx context.Context, invoiceID, depositID, reason string) error {
	return s.w.sink.Revert(ctx, invoiceID, depositID, reason)
}

// call runs one RPC with the per-call timeout.
func call[T any](ctx context.Context, w *Watcher, f func() (T, error)) (T, error) {
	return withTimeout(ctx, w.cfg.RPCTimeout, f)
}

func (w *Watcher) sats(v int64) domain.Amount {
	return domain.FromBaseUnits(big.NewInt(v), w.asset.Decimals)
}

// isDataError tells a payment the ledger refuses (skipped and logged, so
// the scanner never stalls on it) from an operating error (retried).
func isDataError(err error) bool {
	return errors.Is(err, chain.ErrNotOurs) || errors.Is(err, domain.ErrValidation) ||
		errors.Is(err, domain.ErrInvalidAmount) || errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrInvalidState)
}
