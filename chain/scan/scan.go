// Package scan is the chain-scanning engine every watcher runs: it keeps
// the scan checkpoint and the recent block ids, detects a reorg by those
// ids and rewinds to the fork, reports the transfers a chain finds in new
// blocks to the ledger, confirms them by depth, makes them final (money
// rule 4) and reverts the ones a reorg removed for good. A chain supplies
// only what is particular to it through Chain: its head, the id of a
// height, its blocks, the matching of their transfers to our addresses,
// its final block and the identity of the node.
package scan

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
)

// ErrNotFound: the node has no block at that height. Chains wrap it.
var ErrNotFound = errors.New("scan: no block at that height")

// ErrChainMoved: a block, log or receipt does not belong to the chain the
// scan was reading (a reorg while reading). Chains wrap it.
var ErrChainMoved = errors.New("scan: chain changed during the scan")

// Block is a block by height, its id and its parent's id, with the chain's
// own decoded block for Match.
type Block[B any] struct {
	Height int64
	Hash   string
	Parent string
	Raw    B
}

// Chain is what the engine asks of a blockchain's node and of the code
// that knows its blocks. Errors are wrapped with the chain's name.
type Chain[B any] interface {
	// Head is the height of the node's best block.
	Head(ctx context.Context) (int64, error)
	// HashAt is the id of the block at height on the node's best chain.
	// Errors: ErrNotFound when the node has none there.
	HashAt(ctx context.Context, height int64) (string, error)
	// Block fetches the block at height on the node's best chain.
	Block(ctx context.Context, height int64) (Block[B], error)
	// Match returns the transfers to watched addresses in blocks, which
	// are consecutive and chain up, in block order; transfers that moved
	// nothing (a failed transaction) are left out. Errors: ErrChainMoved
	// when what it reads beside the blocks is of another chain.
	Match(ctx context.Context, blocks []Block[B]) ([]Transfer, error)
	// Watch adds invoice pay addresses to those Match looks for; an
	// address of another chain is ignored.
	Watch(addresses []string)
	// FinalBlock is the height of the newest block the node holds final
	// (Ethereum's finalized, TRON's solidified block); ok is false when
	// it has none now.
	FinalBlock(ctx context.Context) (height int64, ok bool, err error)
	// Identity names the chain the node follows (its genesis block), so
	// that a node of another network is told apart.
	Identity(ctx context.Context) (string, error)
}

// Pending is a Chain whose payments are also seen before they are in a
// block (Bitcoin's mempool), with its own rule for those that never make
// it into one. The Scanner calls ScanPending at the end of each scan, after
// the blocks.
type Pending interface {
	ScanPending(ctx context.Context) error
}

// State is what the Scanner keeps between scans. Store keeps it in the
// engine's tables; a chain whose tables predate the engine supplies its
// own over them (Bitcoin).
type State interface {
	// Checkpoint is the last block scanned completely. Errors:
	// ErrNoCheckpoint before the first scan.
	Checkpoint(ctx context.Context) (Point, error)
	// RecentBlocks returns the kept blocks at or below height, newest first.
	RecentBlocks(ctx context.Context, height int64, limit int) ([]Point, error)
	// Rewind moves the checkpoint back to fork and orphans the deposits
	// above it, in one transaction (see Store.Rewind).
	Rewind(ctx context.Context, fork Point, now time.Time) (orphaned, finals int64, err error)
	// CommitRange records scanned blocks, their deposits and the new
	// checkpoint in one transaction, keeping about keep block ids.
	CommitRange(ctx context.Context, blocks []Point, deps []Deposit, keep int, now time.Time) error
	// Deposits lists the deposits in a state in blocks at or below
	// through, oldest block first: a scan reads only those that can be
	// due, not every deposit still waiting.
	Deposits(ctx context.Context, state string, unconfirmedOnly bool, through int64) ([]Deposit, error)
	MarkConfirmed(ctx context.Context, depositIDs []string, now time.Time) error
	// MarkFinal records, in one transaction, that the ledger made the
	// deposits final (state final, confirmed).
	MarkFinal(ctx context.Context, depositIDs []string, now time.Time) error
	SetState(ctx context.Context, depositID, state string, confirmed bool, now time.Time) error
	// WatchedAfter returns the pay addresses of the asset's invoices
	// created after the cursor, in log order, at most limit, and the
	// cursor of the last one (see WatchedAfter).
	WatchedAfter(ctx context.Context, asset string, after WatchCursor, limit int) (addrs []string, next WatchCursor, err error)
	// RequiredConfirmations is the invoice's own threshold; 0 for none.
	RequiredConfirmations(ctx context.Context, invoiceID string) (int, error)
}

// Known is a State that looks deposits up by id, for Config.ReportOnce.
type Known interface {
	Known(ctx context.Context, depositIDs []string) (map[string]Deposit, error)
}

var _ State = Store{}
var _ RangeCommitter = Store{}

// Transfer is a payment to one of our addresses found in a block.
type Transfer struct {
	Asset     string
	Address   string // as stored on invoices
	TxID      string
	DepositID string
	Amount    domain.Amount
	Height    int64
	Block     string
}

// FinalRule says when a credited deposit of an asset is final.
type FinalRule int

const (
	// FinalByDepth: Asset.FinalDepth blocks deep (and no less than its
	// required confirmations).
	FinalByDepth FinalRule = iota
	// FinalByBlockElseDepth: at or below the node's final block; by depth
	// when the node has none.
	FinalByBlockElseDepth
	// FinalByBlockAndDepth: at or below the final block and that deep.
	FinalByBlockAndDepth
)

// Asset is how the engine treats the deposits of one asset.
type Asset struct {
	Confirmations int // credited at this depth, or the invoice's own when more
	FinalDepth    int
	Final         FinalRule
}

// Prefetcher is a Chain told which blocks a scan is about to fetch, before
// it fetches them (Ethereum asks a single block's logs beside the block).
type Prefetcher interface {
	Prefetch(from, to int64)
}

// Sink is what the engine asks of the ledger; chain.Sink does it.
type Sink interface {
	Observe(ctx context.Context, t chain.Transfer) (invoiceID string, err error)
	Confirm(ctx context.Context, invoiceID, depositID string, confirmations int) error
	Finalize(ctx context.Context, invoiceID, depositID string, depth int) error
	Revert(ctx context.Context, invoiceID, depositID, reason string) error
}

var _ Sink = chain.Sink{}

// Config tunes a Scanner.
type Config struct {
	// Name prefixes log messages ("eth").
	Name   string
	Assets map[string]Asset
	// StartBlock is where the first scan starts when no checkpoint is
	// stored; 0 means the chain's head at that moment.
	StartBlock int64
	// BatchBlocks is how many blocks one Match and one checkpoint
	// transaction cover; KeepBlocks how many recent block ids are kept to
	// find the fork point of a reorg.
	BatchBlocks int
	KeepBlocks  int
	// Reports bounds the ledger commands in flight; 1 sends them one after
	// another in block order.
	Reports int
	// ConfirmAtTip confirms older deposits while the range that reaches
	// the tip is reported (two independent sets of ledger commands).
	ConfirmAtTip bool
	// ConfirmFinalOnly confirms a deposit only once its block is also at
	// or below the node's final block.
	ConfirmFinalOnly bool
	// MaxBlocks bounds the blocks one scan covers (0: up to the head);
	// ScanMore tells when more remain. Deposits a reorg orphaned are
	// reverted only by a scan that reaches the head, once the rescan has
	// had its chance to find them again.
	MaxBlocks int
	// AnchorFirst makes the first scan store the block below StartBlock,
	// with its id, as the checkpoint, so that the first block scanned is
	// checked to follow it and a restart before any block is scanned
	// starts where the first scan meant to. Below the genesis block or
	// above the node's head it is stored without an id (not checked); the
	// State keeps no block without an id.
	AnchorFirst bool
	// RewindWhenBehind takes a node head below the checkpoint for a reorg
	// (the node went back: invalidateblock, a shorter best chain) and
	// rewinds to the fork, rather than waiting for the node to catch up
	// (a syncing node behind a load balancer).
	RewindWhenBehind bool
	// ReportOnce reports a deposit to the ledger only the first time it is
	// found (and again after a revert); found again in another block, only
	// its row moves. The State must be Known.
	ReportOnce bool
	// DepthFromHead counts the confirmations a deposit is reported with
	// from the node's head rather than from the end of its batch.
	DepthFromHead bool
	// OwnTransactions tells which of txids are the gateway's own
	// transactions (a sweep's gas top-up from the hot wallet to a deposit
	// address): they pay no invoice and are left out. nil: none.
	OwnTransactions func(ctx context.Context, txids []string) (map[string]bool, error)
	// Refused tells a deposit or command the ledger refuses for good
	// (logged, kept as unmatched or left as it is, never retried as an
	// operating error); nil keeps the engine's own list.
	Refused func(error) bool
	// IdentityMaxAge is how long a matching node identity holds before it
	// is asked again (0: at every scan). It is asked again anyway after a
	// failed scan (a reconnect), before a rewind and while the node is
	// behind the checkpoint: a node of another chain looks like either.
	IdentityMaxAge time.Duration
	// ForeignHistory refuses (ErrWrongNode) a node whose chain holds none
	// of the kept blocks above the genesis: another chain with the same
	// genesis (a fresh dev chain, a fork), rather than a reorg to rescan.
	// Off, such a reorg is followed (the simulator's, from its genesis).
	ForeignHistory bool
	// Depths, when set, is told the scanned height and the blocks of
	// deposits, for the API's live confirmation counts.
	Depths Depths
	Now    func() time.Time
}

// watchPage bounds the addresses one read of new invoices returns: a
// first read of a million invoices holds this many strings at a time.
const watchPage = 10_000

// maxChainMovedRetries bounds how often one scan starts over because the
// chain changed under it.
const maxChainMovedRetries = 3

// Scanner scans one chain for deposits to invoice addresses.
type Scanner[B any] struct {
	cfg    Config
	chain  Chain[B]
	sink   Sink
	st     State
	log    *slog.Logger
	assets []string

	mu       sync.Mutex             // one scan at a time
	watched  map[string]WatchCursor // by asset: the newest invoice handed to Watch
	identity identityCheck
	// refreshed waits for the scan's refresh of the watched addresses,
	// which runs while the node is asked for its head and blocks.
	refreshed func() error
}

// New builds a scanner of c over st. Errors: no asset, or a threshold
// below 1.
func New[B any](cfg Config, c Chain[B], sink Sink, st State, log *slog.Logger) (*Scanner[B], error) {
	if len(cfg.Assets) == 0 {
		return nil, fmt.Errorf("%s: no asset to scan", cfg.Name)
	}
	s := &Scanner[B]{cfg: cfg, chain: c, sink: sink, st: st, log: log, watched: map[string]WatchCursor{}}
	for code, a := range cfg.Assets {
		if a.Confirmations < 1 {
			return nil, fmt.Errorf("%s: %s: confirmations must be at least 1", cfg.Name, code)
		}
		s.assets = append(s.assets, code)
		s.watched[code] = WatchFromStart
	}
	if s.cfg.Reports < 1 {
		s.cfg.Reports = 1
	}
	if _, ok := st.(Known); cfg.ReportOnce && !ok {
		return nil, fmt.Errorf("%s: ReportOnce needs a State that looks deposits up", cfg.Name)
	}
	return s, nil
}

// Identity is the node's, as its Chain names it.
func (s *Scanner[B]) Identity(ctx context.Context) (string, error) { return s.chain.Identity(ctx) }

// ScanOnce brings the scanner up to the chain's current head: it checks
// the checkpoint block is still canonical (rewinding to the fork point when
// not), scans the new blocks in batches (reporting deposits, then storing
// block ids, deposits and checkpoint together), confirms deposits deep
// enough, reverts deposits whose blocks left the chain and did not come
// back, and finalizes credited deposits whose block is final. A failure
// leaves the checkpoint at the last batch fully recorded. With MaxBlocks
// it stops after that many blocks (see ScanMore).
func (s *Scanner[B]) ScanOnce(ctx context.Context) error {
	_, err := s.ScanMore(ctx)
	return err
}

// ScanMore is ScanOnce that also tells whether blocks up to the head were
// left for the next call (MaxBlocks); scan.PollMore calls it again at once.
func (s *Scanner[B]) ScanMore(ctx context.Context) (more bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer func() {
		s.identity.failed = err != nil
		if err == nil {
			err = s.scanSucceeded(ctx)
		}
	}()
	// Nothing is read from a node of another chain (see checkIdentity).
	if err := s.checkIdentity(ctx, s.identity.failed); err != nil {
		return false, err
	}
	// Only matching needs the new invoices' addresses: they are read
	// while the node is asked for its head, the checkpoint checked and the
	// blocks fetched, and waited for before the first Match (and before
	// the scan returns, whatever it returns).
	s.refreshed = sync.OnceValue(chain.Alongside(true, func() error { return s.refreshWatched(ctx) }))
	defer func() {
		if rErr := s.refreshed(); err == nil && rErr != nil {
			more, err = false, rErr
		}
	}()
	tip, err := s.chain.Head(ctx)
	if err != nil {
		return false, err
	}
	recordHead(s.cfg.Name, tip)
	cp, err := s.st.Checkpoint(ctx)
	switch {
	case errors.Is(err, ErrNoCheckpoint):
		if cp, err = s.firstCheckpoint(ctx, tip); err != nil {
			return false, err
		}
	case err != nil:
		return false, err
	case tip < cp.Height && !s.cfg.RewindWhenBehind:
		// A node still syncing, or another node behind a load balancer:
		// what it lacks is not a reorg. Wait until it has caught up.
		if err := s.checkIdentity(ctx, true); err != nil {
			return false, err
		}
		s.log.Warn(s.cfg.Name+": node is behind our checkpoint; waiting", "node_head", tip, "checkpoint", cp.Height)
		return false, nil
	default:
		if cp, err = s.checkReorg(ctx, cp); err != nil {
			return false, err
		}
	}
	for moved, scanned := 0, int64(0); cp.Height < tip && (s.cfg.MaxBlocks <= 0 || scanned < int64(s.cfg.MaxBlocks)); {
		to := min(tip, cp.Height+int64(s.cfg.BatchBlocks))
		if s.cfg.MaxBlocks > 0 {
			to = min(to, cp.Height+int64(s.cfg.MaxBlocks)-scanned)
		}
		next, err := s.scanRange(ctx, cp, to, tip)
		if errors.Is(err, ErrChainMoved) && moved < maxChainMovedRetries {
			moved++
			s.log.Warn(s.cfg.Name+": chain changed during the scan; checking for a reorg", "err", err)
			if cp, err = s.checkReorg(ctx, cp); err != nil {
				return false, err
			}
			continue
		}
		if err != nil {
			return false, err
		}
		scanned += next.Height - cp.Height
		cp = next
	}
	solid := cp.Height
	if s.cfg.ConfirmFinalOnly {
		f, ok, err := s.chain.FinalBlock(ctx)
		if err != nil {
			return false, err
		}
		if ok {
			solid = min(solid, f)
		}
	}
	if err := s.confirm(ctx, cp.Height, solid); err != nil {
		return false, err
	}
	if cp.Height >= tip {
		if err := s.revertOrphans(ctx); err != nil {
			return false, err
		}
	}
	if err := s.finalize(ctx, cp.Height, solid); err != nil {
		return false, err
	}
	if p, ok := s.chain.(Pending); ok {
		// The pool is matched too, against the new invoices' addresses
		// (without a block to scan nothing has waited for them yet).
		if err := s.refreshed(); err != nil {
			return false, err
		}
		if err := p.ScanPending(ctx); err != nil {
			return false, err
		}
	}
	return cp.Height < tip, nil
}

// firstCheckpoint is where the first scan starts: below StartBlock, or
// below the head when it is 0. With AnchorFirst that block's id is
// stored as the checkpoint; otherwise the parent of the first block
// scanned is not checked.
func (s *Scanner[B]) firstCheckpoint(ctx context.Context, tip int64) (Point, error) {
	start := s.cfg.StartBlock
	if start == 0 {
		start = tip
	}
	cp := Point{Height: start - 1}
	s.log.Info(s.cfg.Name+": first scan", "start_block", start)
	if !s.cfg.AnchorFirst {
		return cp, nil
	}
	if cp.Height >= 0 && cp.Height <= tip {
		var err error
		if cp.Block, err = s.chain.HashAt(ctx, cp.Height); err != nil {
			return cp, err
		}
	}
	return cp, s.st.CommitRange(ctx, []Point{cp}, nil, s.cfg.KeepBlocks, s.cfg.Now())
}

// refreshWatched hands the chain the pay addresses of the invoices
// created since it last read them, a page at a time: each invoice is read
// once (the first scan reads them all), so a scan's cost does not grow
// with the invoices of the past (see WatchedAfter for why none is missed).
func (s *Scanner[B]) refreshWatched(ctx context.Context) error {
	for _, asset := range s.assets {
		for {
			addrs, next, err := s.st.WatchedAfter(ctx, asset, s.watched[asset], watchPage)
			if err != nil {
				return err
			}
			s.chain.Watch(addrs)
			s.watched[asset] = next
			if len(addrs) < watchPage {
				break
			}
		}
	}
	return nil
}

// onChain reports whether block b is on the node's best chain.
func (s *Scanner[B]) onChain(ctx context.Context, b Point) (bool, error) {
	if b.Height < 0 || b.Block == "" { // an id not known is not checked
		return true, nil
	}
	h, err := s.chain.HashAt(ctx, b.Height)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return h == b.Block, nil
}

// checkReorg returns cp when its block is still canonical; otherwise it
// finds the newest stored block that is, rewinds to it and returns it.
// A node of another chain, or whose chain holds none of the stored blocks,
// is not rewound for: ErrWrongNode.
func (s *Scanner[B]) checkReorg(ctx context.Context, cp Point) (Point, error) {
	if same, err := s.onChain(ctx, cp); err != nil || same {
		return cp, err
	}
	// A node of another chain is no reorg: nothing is rewound for it.
	if err := s.checkIdentity(ctx, true); err != nil {
		return cp, err
	}
	recent, err := s.st.RecentBlocks(ctx, cp.Height-1, s.cfg.KeepBlocks)
	if err != nil {
		return cp, err
	}
	fork, found, err := ForkPoint(ctx, recent, s.onChain)
	if err != nil {
		return cp, err
	}
	if s.cfg.ForeignHistory && len(recent) > 0 && (!found || fork.Height == 0) {
		return cp, s.notOurHistory(ctx, cp, recent)
	}
	if !found {
		// Deeper than the ids we keep: rescan from below the oldest one,
		// taking the chain's word for that block.
		fork.Height = cp.Height - int64(s.cfg.KeepBlocks)
		if len(recent) > 0 {
			fork.Height = recent[len(recent)-1].Height - 1
		}
		fork.Height = max(fork.Height, -1)
		if fork.Height >= 0 {
			if fork.Block, err = s.chain.HashAt(ctx, fork.Height); err != nil {
				return cp, err
			}
		}
		s.log.Error(s.cfg.Name+": reorg deeper than the block ids kept; rescanning", "checkpoint", cp.Height, "from", fork.Height+1)
	}
	// Depths first: a crash before the rewind finds the reorg again.
	if s.cfg.Depths != nil {
		if err := s.cfg.Depths.Rewound(ctx, s.cfg.Name, fork.Height, s.cfg.Now()); err != nil {
			return cp, err
		}
	}
	orphaned, finals, err := s.st.Rewind(ctx, fork, s.cfg.Now())
	if err != nil {
		return cp, err
	}
	if finals > 0 {
		s.log.Error(s.cfg.Name+": reorg below final deposits", "fork_height", fork.Height, "final_deposits", finals)
	}
	s.log.Warn(s.cfg.Name+": reorg", "checkpoint", cp.Height, "old_block", cp.Block, "fork_height", fork.Height,
		"orphaned_deposits", orphaned+finals)
	return fork, nil
}

// ForkPoint returns the first of kept (newest first) that is still on
// the best chain; found is false when none is. Errors: onChain's.
func ForkPoint(ctx context.Context, kept []Point, onChain func(context.Context, Point) (bool, error)) (fork Point, found bool, err error) {
	for _, b := range kept {
		same, err := onChain(ctx, b)
		if err != nil {
			return Point{}, false, err
		}
		if same {
			return b, true, nil
		}
	}
	return Point{Height: -1}, false, nil
}

// scanRange scans blocks cp.Height+1..to and records them. It returns the
// new checkpoint. With ConfirmAtTip, when the range ends at the tip, once
// its blocks are fetched and chain up from cp, the deposits recorded
// earlier that are now deep enough are confirmed while this range's
// transfers are matched and reported: the two are independent ledger
// commands, and waiting for one before the other doubled the time a block
// takes. Ranges below the tip (catching up) leave confirming to
// ScanOnce's last confirm, which counts confirmations from the tip.
// Errors: ErrChainMoved when blocks do not chain up (a reorg while
// reading), node, ledger and database errors.
func (s *Scanner[B]) scanRange(ctx context.Context, cp Point, to, tip int64) (Point, error) {
	if p, ok := s.chain.(Prefetcher); ok {
		p.Prefetch(cp.Height+1, to)
	}
	blocks := make([]Block[B], 0, to-cp.Height)
	parent := cp.Block
	for h := cp.Height + 1; h <= to; h++ {
		b, err := s.chain.Block(ctx, h)
		if err != nil {
			return cp, err
		}
		if parent != "" && b.Parent != parent {
			return cp, fmt.Errorf("%w: block %d does not follow %s", ErrChainMoved, h, parent)
		}
		parent = b.Hash
		blocks = append(blocks, b)
	}
	confirmed := chain.Alongside(to == tip && s.cfg.ConfirmAtTip, func() error { return s.confirm(ctx, to, to) })
	depth := to
	if s.cfg.DepthFromHead {
		depth = tip
	}
	err := s.refreshed()
	var found []Transfer
	if err == nil {
		found, err = s.chain.Match(ctx, blocks)
	}
	if err == nil {
		found, err = s.dropOwn(ctx, found)
	}
	var rows []Deposit
	if err == nil {
		rows, err = s.reportAll(ctx, found, depth)
	}
	if cErr := confirmed(); err == nil {
		err = cErr
	}
	if err != nil {
		return cp, err
	}
	recs := make([]Point, len(blocks))
	for i, b := range blocks {
		recs[i] = Point{Height: b.Height, Block: b.Hash}
	}
	if err := s.commitRange(ctx, recs, rows, to); err != nil {
		return cp, err
	}
	return recs[len(recs)-1], nil
}

// commitRange records the range and its Depths: in one transaction when
// the State is a RangeCommitter, otherwise the Depths first (a crash
// before the checkpoint scans the range again).
func (s *Scanner[B]) commitRange(ctx context.Context, recs []Point, rows []Deposit, tip int64) error {
	now := s.cfg.Now()
	if s.cfg.Depths == nil {
		return s.st.CommitRange(ctx, recs, rows, s.cfg.KeepBlocks, now)
	}
	if c, ok := s.st.(RangeCommitter); ok {
		return c.CommitRangeWith(ctx, recs, rows, s.cfg.KeepBlocks, now, func(tx *sql.Tx) error {
			return s.cfg.Depths.ScannedIn(ctx, tx, s.cfg.Name, tip, rows, now)
		})
	}
	if err := s.cfg.Depths.Scanned(ctx, s.cfg.Name, tip, rows, now); err != nil {
		return err
	}
	return s.st.CommitRange(ctx, recs, rows, s.cfg.KeepBlocks, now)
}

// each calls f for i in [0, n): one after another when Reports is 1,
// otherwise concurrently across keys and in order within one key
// (chain.ForEachGroup). It stops at the first error and returns it.
func (s *Scanner[B]) each(n int, key func(i int) string, f func(i int) error) error {
	if s.cfg.Reports <= 1 {
		for i := 0; i < n; i++ {
			if err := f(i); err != nil {
				return err
			}
		}
		return nil
	}
	return chain.ForEachGroup(n, s.cfg.Reports, key, f)
}

// reportAll hands the transfers to the ledger, in block order for each
// address, and returns the rows to record, in the order of found.
// With ReportOnce, deposits already reported (and not reverted since)
// are not reported again: their rows only move to where they are now.
func (s *Scanner[B]) reportAll(ctx context.Context, found []Transfer, tip int64) ([]Deposit, error) {
	var known map[string]Deposit
	if s.cfg.ReportOnce && len(found) > 0 {
		ids := make([]string, len(found))
		for i, f := range found {
			ids[i] = f.DepositID
		}
		var err error
		if known, err = s.st.(Known).Known(ctx, ids); err != nil {
			return nil, err
		}
	}
	rows := make([]Deposit, len(found))
	err := s.each(len(found), func(i int) string { return found[i].Address }, func(i int) error {
		if d, ok := known[found[i].DepositID]; ok && d.State != chain.ScanReverted {
			d.BlockHeight, d.Block = found[i].Height, found[i].Block
			rows[i] = d
			return nil
		}
		d, err := s.report(ctx, found[i], tip)
		rows[i] = d
		return err
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// report hands one deposit to the ledger and returns its row.
func (s *Scanner[B]) report(ctx context.Context, f Transfer, tip int64) (Deposit, error) {
	d := Deposit{DepositID: f.DepositID, Asset: f.Asset, Address: f.Address, TxID: f.TxID, Amount: f.Amount.String(),
		BlockHeight: f.Height, Block: f.Block, State: chain.ScanSeen}
	inv, err := s.sink.Observe(ctx, chain.Transfer{Asset: f.Asset, Address: f.Address, TxID: f.TxID, DepositID: f.DepositID,
		Amount: f.Amount, Confirmations: int(tip - f.Height + 1)})
	if s.unmatched(err) {
		inv, err = s.observeCredited(ctx, f, tip, err)
	}
	switch {
	case s.unmatched(err):
		// Kept in the deposits table as unmatched, never silently
		// dropped; an operator sees it there and in the log.
		s.log.Warn(s.cfg.Name+": deposit to our address matches no invoice", "deposit_id", f.DepositID, "asset", f.Asset,
			"address", f.Address, "amount", d.Amount, "err", err)
		d.State = chain.ScanUnmatched
		if err := s.recordUnmatched(ctx, f, err); err != nil {
			return Deposit{}, err
		}
		return d, nil
	case err != nil:
		return Deposit{}, fmt.Errorf("%s observe %s: %w", s.cfg.Name, f.DepositID, err)
	}
	required, err := s.st.RequiredConfirmations(ctx, inv)
	if err != nil {
		return Deposit{}, err
	}
	d.InvoiceID, d.RequiredConfirmations = inv, max(s.cfg.Assets[f.Asset].Confirmations, required)
	s.log.Info(s.cfg.Name+": deposit seen", "deposit_id", f.DepositID, "asset", f.Asset, "amount", d.Amount, "invoice_id", inv, "block", f.Height)
	return d, nil
}

// unmatched tells a deposit the ledger has no invoice for, or refuses,
// from an operating error.
func (s *Scanner[B]) unmatched(err error) bool {
	if err == nil {
		return false
	}
	if s.cfg.Refused != nil {
		return s.cfg.Refused(err)
	}
	return errors.Is(err, chain.ErrNotOurs) || errors.Is(err, domain.ErrNotFound) || errors.Is(err, domain.ErrValidation) ||
		errors.Is(err, domain.ErrInvalidAmount)
}

// refused tells a command the ledger refuses for good (our table disagrees
// with it: logged loudly, not retried forever) from an operating error.
func (s *Scanner[B]) refused(err error) bool {
	if s.cfg.Refused != nil {
		return s.cfg.Refused(err)
	}
	return errors.Is(err, domain.ErrInvalidState) || errors.Is(err, domain.ErrNotFound)
}

// confirm credits seen deposits that are deep enough below tip and at or
// below solid, then one transaction marks them all. A crash in between is
// harmless: confirming a confirmed deposit again is a no-op in the ledger.
func (s *Scanner[B]) confirm(ctx context.Context, tip, solid int64) error {
	// A deposit needs at least its asset's confirmations.
	minConf := 0
	for _, a := range s.cfg.Assets {
		if minConf == 0 || a.Confirmations < minConf {
			minConf = a.Confirmations
		}
	}
	deps, err := s.st.Deposits(ctx, chain.ScanSeen, true, min(solid, tip-int64(minConf)+1))
	if err != nil {
		return err
	}
	var due []Deposit
	for _, d := range deps {
		if d.InvoiceID != "" && int(tip-d.BlockHeight+1) >= d.RequiredConfirmations && d.BlockHeight <= solid {
			due = append(due, d)
		}
	}
	done := make([]bool, len(due))
	err = s.each(len(due), func(i int) string { return due[i].InvoiceID }, func(i int) error {
		d := due[i]
		conf := int(tip - d.BlockHeight + 1)
		if err := s.sink.Confirm(ctx, d.InvoiceID, d.DepositID, conf); err != nil {
			if s.refused(err) {
				s.log.Error(s.cfg.Name+": ledger refused a confirmation", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "err", err)
				return nil
			}
			return fmt.Errorf("%s confirm %s: %w", s.cfg.Name, d.DepositID, err)
		}
		done[i] = true
		s.log.Info(s.cfg.Name+": deposit confirmed", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "confirmations", conf)
		return nil
	})
	var ids []string
	for i, d := range due {
		if done[i] {
			ids = append(ids, d.DepositID)
		}
	}
	// What was confirmed is recorded even when another confirmation failed.
	if mErr := s.st.MarkConfirmed(ctx, ids, s.cfg.Now()); mErr != nil {
		return errors.Join(err, mErr)
	}
	return err
}

// revertOrphans reverts deposits whose block left the chain and that the
// rescan up to the head did not find again.
func (s *Scanner[B]) revertOrphans(ctx context.Context) error {
	deps, err := s.st.Deposits(ctx, chain.ScanOrphaned, false, math.MaxInt64)
	if err != nil {
		return err
	}
	for _, d := range deps {
		if d.InvoiceID != "" {
			reason := "reorg: the block with this payment left the best chain" // a State that forgets where it was
			if d.Block != "" {
				reason = fmt.Sprintf("reorg: block %d %s left the chain", d.BlockHeight, d.Block)
			}
			err := s.sink.Revert(ctx, d.InvoiceID, d.DepositID, reason)
			switch {
			case err == nil, s.cfg.Refused == nil && errors.Is(err, domain.ErrNotFound):
			case s.cfg.Refused != nil && s.cfg.Refused(err):
				s.log.Error(s.cfg.Name+": ledger refused a revert", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "err", err)
			default:
				return fmt.Errorf("%s revert %s: %w", s.cfg.Name, d.DepositID, err)
			}
			s.log.Warn(s.cfg.Name+": deposit reverted", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "reason", reason)
		} else if err := s.unmatchedGone(ctx, d.DepositID); err != nil {
			return err
		}
		if err := s.st.SetState(ctx, d.DepositID, chain.ScanReverted, false, s.cfg.Now()); err != nil {
			return err
		}
	}
	return nil
}

// finalize makes final the credited deposits that their asset's rule
// says are (money rule 4): their money moves from pending to available.
// solid is the final block as ScanOnce knows it (the checkpoint without
// ConfirmFinalOnly); FinalByBlockElseDepth asks the node at the first
// deposit that needs it. A crash between the ledger and the table is
// harmless: finalizing a final deposit again records nothing.
func (s *Scanner[B]) finalize(ctx context.Context, tip, solid int64) error {
	deps, err := s.st.Deposits(ctx, chain.ScanSeen, false, s.finalThrough(tip, solid))
	if err != nil {
		return err
	}
	var due []Deposit
	finalized, tagged, asked := int64(0), false, false
	for _, d := range deps {
		if !d.Confirmed || d.InvoiceID == "" {
			continue
		}
		a := s.cfg.Assets[d.Asset]
		deep := int(tip-d.BlockHeight+1) >= max(a.FinalDepth, d.RequiredConfirmations)
		switch a.Final {
		case FinalByBlockElseDepth:
			if !asked {
				if finalized, tagged, err = s.chain.FinalBlock(ctx); err != nil {
					return err
				}
				asked = true
			}
			if tagged {
				deep = d.BlockHeight <= finalized
			}
		case FinalByBlockAndDepth:
			deep = deep && d.BlockHeight <= solid
		}
		if deep {
			due = append(due, d)
		}
	}
	done := make([]bool, len(due))
	err = s.each(len(due), func(i int) string { return due[i].InvoiceID }, func(i int) error {
		d := due[i]
		depth := int(tip - d.BlockHeight + 1)
		if err := s.sink.Finalize(ctx, d.InvoiceID, d.DepositID, depth); err != nil {
			if s.refused(err) {
				s.log.Error(s.cfg.Name+": ledger refused a finality", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "err", err)
				return nil
			}
			return fmt.Errorf("%s finalize %s: %w", s.cfg.Name, d.DepositID, err)
		}
		done[i] = true
		s.log.Info(s.cfg.Name+": deposit final", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "depth", depth)
		return nil
	})
	if s.cfg.Depths != nil {
		var final []Deposit
		for i, d := range due {
			if done[i] {
				final = append(final, d)
			}
		}
		if dErr := s.cfg.Depths.Final(ctx, s.cfg.Name, final, tip, s.cfg.Now()); dErr != nil {
			return errors.Join(err, dErr)
		}
	}
	var ids []string
	for i, d := range due {
		if done[i] {
			ids = append(ids, d.DepositID)
		}
	}
	// One transaction for the block's deposits (one commit each was most
	// of a 3,000-transaction block's scan when its 30 deposits went final).
	if sErr := s.st.MarkFinal(ctx, ids, s.cfg.Now()); sErr != nil {
		return errors.Join(err, sErr)
	}
	return err
}

// finalThrough is the newest block a deposit that finalize makes final
// can be in, under the rules of the assets: younger ones are not read.
// A rule that asks the node for its final block has no bound here.
func (s *Scanner[B]) finalThrough(tip, solid int64) int64 {
	through := int64(math.MinInt64)
	for _, a := range s.cfg.Assets {
		byDepth := tip - int64(a.FinalDepth) + 1
		switch a.Final {
		case FinalByBlockElseDepth:
			return math.MaxInt64
		case FinalByBlockAndDepth:
			byDepth = min(byDepth, solid)
		}
		through = max(through, byDepth)
	}
	return through
}
