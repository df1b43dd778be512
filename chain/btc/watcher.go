// Package btc watches a Bitcoin node (btcd or Bitcoin Core) over JSON-RPC
// and reports payments to our invoice addresses through chain.Sink:
// mempool transactions at once (0 confirmations), blocks from a stored
// checkpoint, confirmations up to the asset's threshold, finality at the
// asset's finality depth (money rule 4), and reorgs detected by block hash. Its state lives in its own tables
// (chain_btc_*), so a restart, even hours later, rescans from where it
// stopped and misses nothing.
package btc

import (
	"context"
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
	maxBlocksPerScan      = 500
	maxMempoolFetches     = 2000
	missingPollsToRevert  = 2
	addressRefreshOverlap = 10 * time.Minute
	fullAddressReload     = 10 * time.Minute
	maxBackoff            = 2 * time.Minute
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
	node   node
	sink   deposits
	db     sqldb.DB
	asset  domain.Asset
	// finality is the depth at which a credited deposit is final.
	finality int
	log      *slog.Logger
	now      func() time.Time

	// watched maps an output script to the invoice address it pays.
	watched       map[string]string
	watchedSince  int64 // newest invoice created_at loaded (Unix ms)
	watchedFullAt time.Time
	mempoolSeen   map[chainhash.Hash]struct{}
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
	w, err := newWatcher(cfg, hexBlocks{client}, sink, db, assets, log)
	if err != nil {
		client.Shutdown()
		return nil, err
	}
	w.client = client
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
	finality := asset.FinalityDepth()
	for code, depth := range cfg.Finality {
		if code != asset.Code {
			return nil, fmt.Errorf("btc: finality for %q: not the Bitcoin asset", code)
		}
		if depth < asset.Confirmations {
			return nil, fmt.Errorf("btc: %s: finality %d below its %d confirmations", code, depth, asset.Confirmations)
		}
		finality = depth
	}
	if log == nil {
		log = slog.Default()
	}
	return &Watcher{cfg: cfg, node: n, sink: sink, db: db, asset: asset, finality: finality, log: log.With("chain", "bitcoin"), now: cfg.Now,
		watched: map[string]string{}, mempoolSeen: map[chainhash.Hash]struct{}{}}, nil
}

// Close releases the RPC client.
func (w *Watcher) Close() {
	if w.client != nil {
		w.client.Shutdown()
	}
}

// Run scans until ctx ends, then returns nil. Node and database errors are
// logged and retried with exponential backoff (up to two minutes); the
// checkpoint only moves past work that is done, so nothing is skipped. A
// long catch-up continues at once.
func (w *Watcher) Run(ctx context.Context) error {
	defer w.Close()
	scan.PollMore(ctx, w.cfg.PollInterval, maxBackoff, w.log, w.scan)
	return nil
}

// Identity is the hash of the node's genesis block, which names its
// network.
func (w *Watcher) Identity(ctx context.Context) (string, error) {
	h, err := call(ctx, w, func() (*chainhash.Hash, error) { return w.node.GetBlockHash(0) })
	if err != nil {
		return "", fmt.Errorf("btc: getblockhash 0: %w", err)
	}
	return h.String(), nil
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
	if err := w.refreshAddresses(ctx); err != nil {
		return false, err
	}
	tip, err := call(ctx, w, w.node.GetBlockCount)
	if err != nil {
		return false, fmt.Errorf("btc: getblockcount: %w", err)
	}
	cp, err := w.checkpoint(ctx, tip)
	if err != nil {
		return false, err
	}
	// The checkpoint's block may have left the best chain while we were
	// away, or the node's tip went back (invalidateblock, a shorter chain).
	if cp, err = w.checkFork(ctx, cp, tip); err != nil {
		return false, err
	}
	for scanned, rounds := 0, 0; cp.height < tip && scanned < maxBlocksPerScan; rounds++ {
		if rounds > 2*maxBlocksPerScan {
			return false, errors.New("btc: chain keeps reorganizing under the scan")
		}
		next, reorg, err := w.scanBlock(ctx, cp, tip)
		if err != nil {
			return false, err
		}
		if reorg {
			if cp, err = w.rewind(ctx, cp, tip); err != nil {
				return false, err
			}
			continue
		}
		cp = next
		scanned++
	}
	if cp.height >= tip {
		if err := w.revertOrphanedCredits(ctx); err != nil {
			return false, err
		}
	}
	if err := w.confirm(ctx, cp.height); err != nil {
		return false, err
	}
	if err := w.finalize(ctx, cp.height); err != nil {
		return false, err
	}
	if err := w.scanMempool(ctx); err != nil {
		return false, err
	}
	return cp.height < tip, nil
}

// call runs one RPC with the per-call timeout; rpcclient takes no context,
// so an abandoned call finishes in the background.
func call[T any](ctx context.Context, w *Watcher, f func() (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.RPCTimeout)
	defer cancel()
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
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
