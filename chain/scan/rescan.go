package scan

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
)

// A rescan scans a range of blocks again for payments the watcher missed
// (a start block set past them, a node of another chain at the time) and
// reports those it does not know yet. It never moves the watcher's
// checkpoint and only adds deposit rows (a row already there is left as it
// is, unless it was reverted), so it may run beside the watcher, in
// another process too: a deposit reported twice is one deposit in the
// ledger (the invoice ignores a deposit id it has), and the watcher
// confirms and finalizes what the rescan added as it does its own.

// Rescanner is a State a rescan can write to.
type Rescanner interface {
	Known
	// AddDeposits records deposits a rescan found; a deposit already
	// recorded stays as it is, unless it had been reverted.
	AddDeposits(ctx context.Context, deps []Deposit, now time.Time) error
}

// UnmatchedRecorder is a State that keeps the deposits the ledger has no
// invoice for where an operator can decide about them.
type UnmatchedRecorder interface {
	RecordUnmatched(ctx context.Context, t Transfer, reason string, now time.Time) error
	// UnmatchedGone says a reorg took the deposit away before anyone
	// decided about it: there is nothing left to credit.
	UnmatchedGone(ctx context.Context, depositID string, now time.Time) error
	// CreditedTo is the invoice an operator credited the deposit to; ""
	// for none.
	CreditedTo(ctx context.Context, depositID string) (string, error)
}

// RescanProgress says how far a rescan is: blocks From..To, Height the
// last one done; Found transfers of the assets, New the ones reported now
// (Unmatched of them matching no invoice), Known those recorded before,
// Confirmed the new ones credited at once (deep enough already).
type RescanProgress struct {
	From, To, Height                        int64
	Found, New, Known, Unmatched, Confirmed int
}

// ErrNothingToRescan: the range is empty or above the blocks the watcher
// has scanned (those are its own to scan).
var ErrNothingToRescan = errors.New("scan: nothing to rescan")

// Rescan scans blocks from..to (to 0: up to the watcher's checkpoint, or
// the head before a first scan) for transfers of assets (none: every
// asset of the scanner), reports the deposits not recorded yet, records
// them and credits those already deep enough; progress is called after
// each batch. The range stops at the watcher's checkpoint: blocks above it
// are the watcher's own next scan. Errors: ErrNothingToRescan, node,
// ledger and database errors (the deposits recorded so far stay; run it
// again to finish).
func (s *Scanner[B]) Rescan(ctx context.Context, from, to int64, assets []string, progress func(RescanProgress)) (RescanProgress, error) {
	p := RescanProgress{From: from, To: to, Height: from - 1}
	st, ok := s.st.(Rescanner)
	if !ok {
		return p, fmt.Errorf("%s: this chain's state cannot be rescanned", s.cfg.Name)
	}
	for _, a := range assets {
		if _, ok := s.cfg.Assets[a]; !ok {
			return p, fmt.Errorf("%s: %s is not an asset of this chain", s.cfg.Name, a)
		}
	}
	if from < 0 || (to > 0 && to < from) {
		return p, fmt.Errorf("%w: blocks %d to %d", ErrNothingToRescan, from, to)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A node of another chain would credit its payments (#16 item 1).
	if err := s.checkIdentity(ctx, true); err != nil {
		return p, err
	}
	if err := s.refreshWatched(ctx); err != nil {
		return p, err
	}
	head, err := s.chain.Head(ctx)
	if err != nil {
		return p, err
	}
	last := head
	switch cp, err := s.st.Checkpoint(ctx); {
	case err == nil:
		if same, err := s.onChain(ctx, cp); err != nil || !same {
			return p, errors.Join(err, fmt.Errorf("%s: the node's chain does not hold the watcher's checkpoint, block %d %s: "+
				"a reorg the watcher has not followed yet, or a node of another chain; nothing is rescanned", s.cfg.Name, cp.Height, cp.Block))
		}
		last = min(last, cp.Height)
	case !errors.Is(err, ErrNoCheckpoint):
		return p, err
	}
	if to <= 0 || to > last {
		to = last
	}
	if to < from {
		return p, fmt.Errorf("%w: from %d, but the watcher has scanned to %d and the node's head is %d", ErrNothingToRescan, from, last, head)
	}
	p.To = to
	var found []Deposit
	for h := from; h <= to; {
		end := min(to, h+int64(max(s.cfg.BatchBlocks, 1))-1)
		rows, err := s.rescanRange(ctx, st, h, end, head, assets, &p)
		for moved := 0; errors.Is(err, ErrChainMoved) && moved < maxChainMovedRetries; moved++ {
			s.log.Warn(s.cfg.Name+": chain changed during the rescan; reading the range again", "from", h, "to", end, "err", err)
			rows, err = s.rescanRange(ctx, st, h, end, head, assets, &p)
		}
		if err != nil {
			return p, err
		}
		found = append(found, rows...)
		p.Height, h = end, end+1
		if progress != nil {
			progress(p)
		}
	}
	n, err := s.creditRescanned(ctx, found, head)
	p.Confirmed = n
	return p, err
}

// rescanRange reads blocks from..to, reports the transfers of assets not
// recorded yet and records them, and returns their rows. Errors:
// ErrChainMoved when the blocks do not chain up or left the best chain
// while being read (nothing is recorded then).
func (s *Scanner[B]) rescanRange(ctx context.Context, st Rescanner, from, to, head int64, assets []string, p *RescanProgress) ([]Deposit, error) {
	blocks := make([]Block[B], 0, to-from+1)
	for h := from; h <= to; h++ {
		b, err := s.chain.Block(ctx, h)
		if err != nil {
			return nil, err
		}
		if n := len(blocks); n > 0 && b.Parent != blocks[n-1].Hash {
			return nil, fmt.Errorf("%w: block %d does not follow %s", ErrChainMoved, h, blocks[n-1].Hash)
		}
		blocks = append(blocks, b)
	}
	transfers, err := s.chain.Match(ctx, blocks)
	if err != nil {
		return nil, err
	}
	if transfers, err = s.dropOwn(ctx, transfers); err != nil {
		return nil, err
	}
	transfers = slices.DeleteFunc(transfers, func(t Transfer) bool { return len(assets) > 0 && !slices.Contains(assets, t.Asset) })
	if len(transfers) == 0 {
		return nil, nil
	}
	ids := make([]string, len(transfers))
	for i, t := range transfers {
		ids[i] = t.DepositID
	}
	known, err := st.Known(ctx, ids)
	if err != nil {
		return nil, err
	}
	var rows []Deposit
	var newFound, unmatched int
	for _, t := range transfers {
		if d, ok := known[t.DepositID]; ok && d.State != chain.ScanReverted {
			continue
		}
		d, err := s.report(ctx, t, head)
		if err != nil {
			return nil, err
		}
		newFound++
		if d.State == chain.ScanUnmatched {
			unmatched++
		}
		rows = append(rows, d)
	}
	// The blocks are still the node's best chain as they are recorded: a
	// deposit of a block a reorg took away is never added (the watcher
	// would not look at it again).
	if len(rows) > 0 {
		end := blocks[len(blocks)-1]
		if h, err := s.chain.HashAt(ctx, end.Height); err != nil {
			return nil, err
		} else if h != end.Hash {
			return nil, fmt.Errorf("%w: block %d is now %s", ErrChainMoved, end.Height, h)
		}
		if err := st.AddDeposits(ctx, rows, s.cfg.Now()); err != nil {
			return nil, err
		}
		if s.cfg.Depths != nil { // below the checkpoint: the tip stays
			if err := s.cfg.Depths.Scanned(ctx, s.cfg.Name, -1, rows, s.cfg.Now()); err != nil {
				return nil, err
			}
		}
	}
	p.Found += len(transfers)
	p.Known += len(transfers) - newFound
	p.New += newFound
	p.Unmatched += unmatched
	for _, d := range rows {
		if d.State == chain.ScanUnmatched {
			continue
		}
		s.log.Info(s.cfg.Name+": rescan found a deposit", "deposit_id", d.DepositID, "asset", d.Asset, "amount", d.Amount,
			"invoice_id", d.InvoiceID, "block", d.BlockHeight)
	}
	return rows, nil
}

// creditRescanned confirms the deposits a rescan added that are already
// deep enough (at or below the node's final block when the chain confirms
// only those), as the watcher would at its next scan; the watcher makes
// them final. It returns how many it confirmed.
func (s *Scanner[B]) creditRescanned(ctx context.Context, rows []Deposit, head int64) (int, error) {
	solid := head
	if s.cfg.ConfirmFinalOnly && len(rows) > 0 {
		f, ok, err := s.chain.FinalBlock(ctx)
		if err != nil {
			return 0, err
		}
		if ok {
			solid = min(solid, f)
		}
	}
	var done []string
	var first error
	for _, d := range rows {
		conf := int(head - d.BlockHeight + 1)
		if d.InvoiceID == "" || d.State != chain.ScanSeen || conf < d.RequiredConfirmations || d.BlockHeight > solid {
			continue
		}
		if err := s.sink.Confirm(ctx, d.InvoiceID, d.DepositID, conf); err != nil {
			if s.refused(err) {
				s.log.Error(s.cfg.Name+": ledger refused a confirmation", "deposit_id", d.DepositID, "invoice_id", d.InvoiceID, "err", err)
				continue
			}
			first = errors.Join(first, fmt.Errorf("%s confirm %s: %w", s.cfg.Name, d.DepositID, err))
			continue
		}
		done = append(done, d.DepositID)
	}
	if err := s.st.MarkConfirmed(ctx, done, s.cfg.Now()); err != nil {
		return 0, errors.Join(first, err)
	}
	return len(done), first
}

// dropOwn leaves out the gateway's own transactions (Config.OwnTransactions).
func (s *Scanner[B]) dropOwn(ctx context.Context, found []Transfer) ([]Transfer, error) {
	if s.cfg.OwnTransactions == nil || len(found) == 0 {
		return found, nil
	}
	ids := make([]string, len(found))
	for i, t := range found {
		ids[i] = t.TxID
	}
	own, err := s.cfg.OwnTransactions(ctx, ids)
	if err != nil || len(own) == 0 {
		return found, err
	}
	return slices.DeleteFunc(found, func(t Transfer) bool {
		if own[t.TxID] {
			s.log.Info(s.cfg.Name+": our own transaction to our address (a sweep's gas top-up): not a payment", "txid", t.TxID,
				"asset", t.Asset, "address", t.Address, "amount", t.Amount.String())
		}
		return own[t.TxID]
	}), nil
}

// recordUnmatched keeps a deposit the ledger has no invoice for where an
// operator sees it, when the State can.
func (s *Scanner[B]) recordUnmatched(ctx context.Context, t Transfer, reason error) error {
	u, ok := s.st.(UnmatchedRecorder)
	if !ok {
		return nil
	}
	return u.RecordUnmatched(ctx, t, reason.Error(), s.cfg.Now())
}

// observeCredited reports a deposit the ledger matches to no invoice to
// the one an operator credited it to, if any: found again (a reorg
// rescanned its block), it stays that invoice's. Otherwise it returns
// notOurs, the ledger's answer.
func (s *Scanner[B]) observeCredited(ctx context.Context, f Transfer, tip int64, notOurs error) (string, error) {
	u, ok := s.st.(UnmatchedRecorder)
	if !ok {
		return "", notOurs
	}
	inv, err := u.CreditedTo(ctx, f.DepositID)
	if err != nil || inv == "" {
		return "", cmpOr(err, notOurs)
	}
	return s.sink.Observe(ctx, chain.Transfer{Asset: f.Asset, Address: f.Address, TxID: f.TxID, DepositID: f.DepositID,
		Amount: f.Amount, Confirmations: int(tip - f.Height + 1), InvoiceID: inv})
}

func cmpOr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// unmatchedGone withdraws an undecided unmatched deposit a reorg removed.
func (s *Scanner[B]) unmatchedGone(ctx context.Context, depositID string) error {
	u, ok := s.st.(UnmatchedRecorder)
	if !ok {
		return nil
	}
	return u.UnmatchedGone(ctx, depositID, s.cfg.Now())
}

// Store keeps rescanned deposits and unmatched ones too.
var (
	_ Rescanner         = Store{}
	_ UnmatchedRecorder = Store{}
)

// Known returns the recorded deposits among ids.
func (s Store) Known(ctx context.Context, ids []string) (map[string]Deposit, error) {
	known := map[string]Deposit{}
	for len(ids) > 0 {
		n := min(len(ids), 500)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		q := strings.Replace(s.q.deposits, `WHERE state = ?`, `WHERE deposit_id IN (?`+strings.Repeat(`, ?`, n-1)+`)`, 1)
		rows, err := s.db.Read.QueryContext(ctx, s.db.Q(q), args...)
		if err != nil {
			return nil, fmt.Errorf("%s deposits: %w", s.prefix, err)
		}
		for rows.Next() {
			var d Deposit
			if err := rows.Scan(&d.DepositID, &d.Asset, &d.Address, &d.TxID, &d.Amount, &d.InvoiceID, &d.RequiredConfirmations,
				&d.BlockHeight, &d.Block, &d.State, &d.Confirmed); err != nil {
				rows.Close()
				return nil, err
			}
			known[d.DepositID] = d
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	return known, nil
}

// AddDeposits records deposits a rescan found, in one transaction; a row
// already there is left as it is unless it was reverted.
func (s Store) AddDeposits(ctx context.Context, deps []Deposit, now time.Time) error {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, d := range deps {
		if _, err := tx.ExecContext(ctx, s.db.Q(s.q.insertDeposits+`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`+s.q.upsertDeposits+
			` WHERE `+s.prefix+`_deposits.state = '`+chain.ScanReverted+`'`), d.DepositID, d.Asset, d.Address, d.TxID, d.Amount, d.InvoiceID,
			d.RequiredConfirmations, d.BlockHeight, d.Block, d.State, boolInt(d.Confirmed), now.UnixMilli()); err != nil {
			return fmt.Errorf("%s deposits: %w", s.prefix, err)
		}
	}
	return tx.Commit()
}

// RecordUnmatched keeps the transfer in chain_unmatched_deposits under the
// store's prefix as its chain.
func (s Store) RecordUnmatched(ctx context.Context, t Transfer, reason string, now time.Time) error {
	return chain.Unmatched{DB: s.db}.Record(ctx, UnmatchedOf(s.prefix, t, reason), now)
}

// UnmatchedGone marks the deposit gone in chain_unmatched_deposits.
func (s Store) UnmatchedGone(ctx context.Context, depositID string, now time.Time) error {
	return chain.Unmatched{DB: s.db}.Gone(ctx, s.prefix, depositID, now)
}

// CreditedTo is the invoice an operator credited the deposit to.
func (s Store) CreditedTo(ctx context.Context, depositID string) (string, error) {
	return chain.Unmatched{DB: s.db}.CreditedTo(ctx, s.prefix, depositID)
}

// UnmatchedOf is the unmatched deposit t, found on chainName.
func UnmatchedOf(chainName string, t Transfer, reason string) chain.UnmatchedDeposit {
	return chain.UnmatchedDeposit{Chain: chainName, DepositID: t.DepositID, TxID: t.TxID, Address: t.Address, Asset: t.Asset,
		Amount: t.Amount.String(), BlockHeight: t.Height, Block: t.Block, Reason: reason}
}

// CreditUnmatched makes an unmatched deposit the invoice's: its row
// becomes seen under invoiceID (created from d when the table has none),
// so the watcher confirms it by depth and makes it final as any other.
// The ledger must have been told first (ObserveDeposit on the invoice).
// A row in another state than unmatched is left as it is.
func (s Store) CreditUnmatched(ctx context.Context, d chain.UnmatchedDeposit, invoiceID string, required int, now time.Time) error {
	_, err := s.db.Write.ExecContext(ctx, s.db.Q(s.q.insertDeposits+
		`(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) ON CONFLICT (deposit_id) DO UPDATE SET invoice_id = excluded.invoice_id,
		required_confirmations = excluded.required_confirmations, state = excluded.state, confirmed = 0, updated_at = excluded.updated_at
		WHERE `+s.prefix+`_deposits.state = '`+chain.ScanUnmatched+`'`),
		d.DepositID, d.Asset, d.Address, d.TxID, d.Amount, invoiceID, required, d.BlockHeight, d.Block, chain.ScanSeen, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("%s deposit %s: %w", s.prefix, d.DepositID, err)
	}
	return nil
}
