package btc

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
)

type checkpoint struct {
	height int64
	hash   string // "" when unknown (before the first block, or after a reorg deeper than we keep)
}

// output is one transaction output paying a watched address.
type output struct {
	txid    chainhash.Hash
	vout    uint32
	address string
	sat     int64
}

func (o output) depositID() string { return fmt.Sprintf("%s:%d", o.txid, o.vout) }

// refreshAddresses loads the BTC invoice addresses from the read model:
// everything every ten minutes, and in between only invoices created in
// the last ten minutes (ids and created_at are not strictly ordered across
// processes, so the window overlaps).
func (w *Watcher) refreshAddresses(ctx context.Context) error {
	now := w.now()
	full := w.watchedFullAt.IsZero() || now.Sub(w.watchedFullAt) > fullAddressReload
	q, args := `SELECT pay_address, created_at FROM invoices WHERE asset = ?`, []any{w.asset.Code}
	if !full {
		q += ` AND created_at >= ?`
		args = append(args, w.watchedSince-addressRefreshOverlap.Milliseconds())
	}
	rows, err := w.db.Read.QueryContext(ctx, w.db.Q(q), args...)
	if err != nil {
		return fmt.Errorf("btc: watched addresses: %w", err)
	}
	defer rows.Close()
	watched := w.watched
	if full {
		watched = make(map[string]string, len(w.watched))
	}
	since := w.watchedSince
	for rows.Next() {
		var addr string
		var created int64
		if err := rows.Scan(&addr, &created); err != nil {
			return fmt.Errorf("btc: watched addresses: %w", err)
		}
		since = max(since, created)
		script, err := addressScript(addr, w)
		if err != nil {
			continue // not an address of this network (e.g. a simulator address)
		}
		watched[string(script)] = addr
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("btc: watched addresses: %w", err)
	}
	w.watched, w.watchedSince = watched, since
	if full {
		w.watchedFullAt = now
	}
	return nil
}

func addressScript(addr string, w *Watcher) ([]byte, error) {
	a, err := btcutil.DecodeAddress(addr, w.cfg.Params)
	if err != nil {
		return nil, err
	}
	if !a.IsForNet(w.cfg.Params) {
		return nil, fmt.Errorf("btc: %s is for another network", addr)
	}
	return txscript.PayToAddrScript(a)
}

// match finds the outputs of tx that pay watched addresses. The txid is
// hashed only for transactions that match.
func (w *Watcher) match(tx *wire.MsgTx, txid *chainhash.Hash, out []output) []output {
	var id chainhash.Hash
	hashed := false
	for i, o := range tx.TxOut {
		addr, ok := w.watched[string(o.PkScript)]
		if !ok {
			continue
		}
		if !hashed {
			if txid != nil {
				id = *txid
			} else {
				id = tx.TxHash()
			}
			hashed = true
		}
		out = append(out, output{txid: id, vout: uint32(i), address: addr, sat: o.Value})
	}
	return out
}

// checkpoint loads the scan position, or sets the first one from StartHeight.
func (w *Watcher) checkpoint(ctx context.Context, tip int64) (checkpoint, error) {
	var cp checkpoint
	err := w.db.Read.QueryRowContext(ctx, `SELECT height, hash FROM chain_btc_checkpoint WHERE id = 1`).Scan(&cp.height, &cp.hash)
	if err == nil {
		return cp, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return cp, fmt.Errorf("btc: checkpoint: %w", err)
	}
	start := w.cfg.StartHeight
	if start == 0 {
		start = tip
	}
	cp = checkpoint{height: start - 1}
	if cp.height >= 0 && cp.height <= tip {
		h, err := call(ctx, w, func() (*chainhash.Hash, error) { return w.node.GetBlockHash(cp.height) })
		if err != nil {
			return cp, fmt.Errorf("btc: getblockhash %d: %w", cp.height, err)
		}
		cp.hash = h.String()
	}
	w.log.Info("bitcoin watcher starts", "first_block", start, "node_tip", tip)
	return cp, w.saveBlock(ctx, cp, nil)
}

// saveBlock records a scanned block, the deposits reported from it and the
// checkpoint moved to it, in one transaction, and forgets hashes older
// than the reorg window.
func (w *Watcher) saveBlock(ctx context.Context, cp checkpoint, rows []depositRow) error {
	tx, err := w.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("btc: save block: %w", err)
	}
	defer tx.Rollback()
	if err := w.writeDeposits(ctx, tx, rows); err != nil {
		return err
	}
	if cp.hash != "" {
		if _, err := tx.ExecContext(ctx, w.db.Q(`INSERT INTO chain_btc_blocks (height, hash) VALUES (?, ?)
			ON CONFLICT (height) DO UPDATE SET hash = excluded.hash`), cp.height, cp.hash); err != nil {
			return fmt.Errorf("btc: save block: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, w.db.Q(`DELETE FROM chain_btc_blocks WHERE height <= ?`), cp.height-int64(w.cfg.ReorgDepth)); err != nil {
		return fmt.Errorf("btc: save block: %w", err)
	}
	if _, err := tx.ExecContext(ctx, w.db.Q(`INSERT INTO chain_btc_checkpoint (id, height, hash, updated_at) VALUES (1, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET height = excluded.height, hash = excluded.hash, updated_at = excluded.updated_at`),
		cp.height, cp.hash, w.now().UnixMilli()); err != nil {
		return fmt.Errorf("btc: save checkpoint: %w", err)
	}
	return tx.Commit()
}

// checkFork verifies that the checkpoint's block is still on the node's
// best chain, and rewinds to the fork point when it is not.
func (w *Watcher) checkFork(ctx context.Context, cp checkpoint, tip int64) (checkpoint, error) {
	if cp.hash == "" || cp.height < 0 {
		return cp, nil
	}
	if cp.height <= tip {
		h, err := call(ctx, w, func() (*chainhash.Hash, error) { return w.node.GetBlockHash(cp.height) })
		if err != nil {
			return cp, fmt.Errorf("btc: getblockhash %d: %w", cp.height, err)
		}
		if h.String() == cp.hash {
			return cp, nil
		}
	}
	return w.rewind(ctx, cp, tip)
}

// rewind finds the highest kept block that is still on the best chain,
// detaches the deposits of the blocks above it (they are in no block
// until a rescan finds them again) and moves the checkpoint back to it.
func (w *Watcher) rewind(ctx context.Context, cp checkpoint, tip int64) (checkpoint, error) {
	rows, err := w.db.Read.QueryContext(ctx, w.db.Q(`SELECT height, hash FROM chain_btc_blocks ORDER BY height DESC LIMIT ?`), w.cfg.ReorgDepth+1)
	if err != nil {
		return cp, fmt.Errorf("btc: rewind: %w", err)
	}
	var kept []scan.Point
	for rows.Next() {
		var b scan.Point
		if err := rows.Scan(&b.Height, &b.Block); err != nil {
			rows.Close()
			return cp, fmt.Errorf("btc: rewind: %w", err)
		}
		kept = append(kept, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return cp, fmt.Errorf("btc: rewind: %w", err)
	}
	found, ok, err := scan.ForkPoint(ctx, kept, func(ctx context.Context, b scan.Point) (bool, error) {
		if b.Height > tip {
			return false, nil
		}
		h, err := call(ctx, w, func() (*chainhash.Hash, error) { return w.node.GetBlockHash(b.Height) })
		if err != nil {
			return false, fmt.Errorf("btc: getblockhash %d: %w", b.Height, err)
		}
		return h.String() == b.Block, nil
	})
	if err != nil {
		return cp, err
	}
	fork := checkpoint{height: found.Height, hash: found.Block}
	if !ok {
		fork = checkpoint{height: cp.height - int64(w.cfg.ReorgDepth)}
		if len(kept) > 0 {
			fork.height = kept[len(kept)-1].Height - 1
		}
		fork.height = max(fork.height, -1)
		w.log.Error("bitcoin reorg deeper than the kept block hashes; rescanning", "from_height", fork.height+1)
	}
	w.log.Warn("bitcoin reorg", "old_tip", cp.height, "old_hash", cp.hash, "fork_height", fork.height, "node_tip", tip)
	tx, err := w.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return cp, fmt.Errorf("btc: rewind: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, w.db.Q(`UPDATE chain_btc_deposits SET block_hash = '', block_height = 0, missing_polls = 0, updated_at = ?
		WHERE block_height > ?`), w.now().UnixMilli(), fork.height); err != nil {
		return cp, fmt.Errorf("btc: rewind: %w", err)
	}
	if _, err := tx.ExecContext(ctx, w.db.Q(`DELETE FROM chain_btc_blocks WHERE height > ?`), fork.height); err != nil {
		return cp, fmt.Errorf("btc: rewind: %w", err)
	}
	if _, err := tx.ExecContext(ctx, w.db.Q(`UPDATE chain_btc_checkpoint SET height = ?, hash = ?, updated_at = ? WHERE id = 1`),
		fork.height, fork.hash, w.now().UnixMilli()); err != nil {
		return cp, fmt.Errorf("btc: rewind: %w", err)
	}
	return fork, tx.Commit()
}

// scanBlock scans the block after cp. reorg reports that it does not
// build on cp: the caller rewinds.
func (w *Watcher) scanBlock(ctx context.Context, cp checkpoint, tip int64) (next checkpoint, reorg bool, err error) {
	height := cp.height + 1
	hash, err := call(ctx, w, func() (*chainhash.Hash, error) { return w.node.GetBlockHash(height) })
	if err != nil {
		return cp, false, fmt.Errorf("btc: getblockhash %d: %w", height, err)
	}
	blk, err := call(ctx, w, func() (*wire.MsgBlock, error) { return w.node.GetBlock(hash) })
	if err != nil {
		return cp, false, fmt.Errorf("btc: getblock %s: %w", hash, err)
	}
	if cp.hash != "" && blk.Header.PrevBlock.String() != cp.hash {
		return cp, true, nil
	}
	next = checkpoint{height: height, hash: hash.String()}
	var outs []output
	for _, tx := range blk.Transactions {
		outs = w.match(tx, nil, outs)
	}
	// At the tip, the deposits of earlier blocks that this one makes deep
	// enough are confirmed while its own payments are reported: they are
	// independent ledger commands. Blocks below the tip (catching up) leave
	// confirming to the scan's last confirm, which counts confirmations
	// from the tip.
	confirmed := chain.Alongside(height == tip, func() error { return w.confirm(ctx, height) })
	rows, err := w.observeAll(ctx, outs, &next, int(tip-height+1))
	if cErr := confirmed(); err == nil {
		err = cErr
	}
	if err != nil {
		return cp, false, err
	}
	return next, false, w.saveBlock(ctx, next, rows)
}

// depositRow is what a scan writes to chain_btc_deposits for one output:
// a new deposit reported to the ledger (invoiceID set), or a known one
// found in a block (only where it is changes).
type depositRow struct {
	o         output
	invoiceID string
	known     bool
	blk       checkpoint // height 0: in no block (mempool)
}

// observeAll reports the outputs to the ledger unless we already did (and
// they were not reverted since): concurrently across addresses, one after
// another for each address, each an append to its invoice's stream that
// the event store commits together with the others. It returns the rows
// that record them and, for outputs in block blk (nil: the mempool), where
// they are; the caller writes them in one transaction after every observe,
// so a crash before that only repeats observes, which the ledger ignores.
func (w *Watcher) observeAll(ctx context.Context, outs []output, blk *checkpoint, confirmations int) ([]depositRow, error) {
	if len(outs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(outs))
	for i, o := range outs {
		ids[i] = o.depositID()
	}
	states, err := w.depositStates(ctx, ids)
	if err != nil {
		return nil, err
	}
	var at checkpoint
	if blk != nil {
		at = *blk
	}
	var rows []depositRow
	var fresh []output
	for i, o := range outs {
		if state, ok := states[ids[i]]; ok && state != stateReverted {
			if blk != nil {
				rows = append(rows, depositRow{o: o, known: true, blk: at})
			}
			continue
		}
		if o.sat > 0 { // a zero-value output carries no money
			fresh = append(fresh, o)
		}
	}
	invoices := make([]string, len(fresh))
	err = chain.ForEachGroup(len(fresh), maxConcurrentReports, func(i int) string { return fresh[i].address }, func(i int) error {
		o := fresh[i]
		id, amount := o.depositID(), w.sats(o.sat)
		invoiceID, err := w.sink.Observe(ctx, chain.Transfer{Asset: w.asset.Code, Address: o.address, TxID: o.txid.String(),
			DepositID: id, Amount: amount, Confirmations: confirmations})
		if err != nil {
			if isDataError(err) {
				w.log.Error("bitcoin payment refused by the ledger", "deposit", id, "address", o.address, "amount", amount.String(), "err", err)
				return nil
			}
			return fmt.Errorf("btc: observe %s: %w", id, err)
		}
		invoices[i] = invoiceID
		w.log.Info("bitcoin payment seen", "invoice", invoiceID, "deposit", id, "amount", amount.String(), "confirmations", confirmations)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i, o := range fresh {
		if invoices[i] != "" {
			rows = append(rows, depositRow{o: o, invoiceID: invoices[i], blk: at})
		}
	}
	return rows, nil
}

// statesPerQuery bounds the deposit ids of one query.
const statesPerQuery = 500

// depositStates returns the states of the deposits among ids that we track.
func (w *Watcher) depositStates(ctx context.Context, ids []string) (map[string]string, error) {
	states := make(map[string]string)
	for len(ids) > 0 {
		n := min(len(ids), statesPerQuery)
		args := make([]any, n)
		for i, id := range ids[:n] {
			args[i] = id
		}
		ids = ids[n:]
		rows, err := w.db.Read.QueryContext(ctx, w.db.Q(`SELECT deposit_id, state FROM chain_btc_deposits WHERE deposit_id IN (?`+
			strings.Repeat(", ?", n-1)+`)`), args...)
		if err != nil {
			return nil, fmt.Errorf("btc: deposits: %w", err)
		}
		for rows.Next() {
			var id, state string
			if err := rows.Scan(&id, &state); err != nil {
				rows.Close()
				return nil, fmt.Errorf("btc: deposits: %w", err)
			}
			states[id] = state
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("btc: deposits: %w", err)
		}
	}
	return states, nil
}

// writeDeposits records rows in tx.
func (w *Watcher) writeDeposits(ctx context.Context, tx *sql.Tx, rows []depositRow) error {
	now := w.now().UnixMilli()
	for _, r := range rows {
		id := r.o.depositID()
		var err error
		if r.known {
			_, err = tx.ExecContext(ctx, w.db.Q(`UPDATE chain_btc_deposits SET block_hash = ?, block_height = ?, missing_polls = 0, updated_at = ?
				WHERE deposit_id = ?`), r.blk.hash, r.blk.height, now, id)
		} else {
			_, err = tx.ExecContext(ctx, w.db.Q(`INSERT INTO chain_btc_deposits
				(deposit_id, txid, invoice_id, address, amount_sat, block_hash, block_height, state, missing_polls, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)
				ON CONFLICT (deposit_id) DO UPDATE SET invoice_id = excluded.invoice_id, block_hash = excluded.block_hash,
					block_height = excluded.block_height, state = excluded.state, missing_polls = 0, updated_at = excluded.updated_at`),
				id, r.o.txid.String(), r.invoiceID, r.o.address, r.o.sat, r.blk.hash, r.blk.height, statePending, now)
		}
		if err != nil {
			return fmt.Errorf("btc: deposit %s: %w", id, err)
		}
	}
	return nil
}

// saveDeposits records rows in a transaction of their own.
func (w *Watcher) saveDeposits(ctx context.Context, rows []depositRow) error {
	if len(rows) == 0 {
		return nil
	}
	tx, err := w.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("btc: deposits: %w", err)
	}
	defer tx.Rollback()
	if err := w.writeDeposits(ctx, tx, rows); err != nil {
		return err
	}
	return tx.Commit()
}

type trackedDeposit struct {
	id, txid, invoiceID string
	height              int64
	missing             int
}

func (w *Watcher) tracked(ctx context.Context, where string, args ...any) ([]trackedDeposit, error) {
	rows, err := w.db.Read.QueryContext(ctx, w.db.Q(`SELECT deposit_id, txid, invoice_id, block_height, missing_polls FROM chain_btc_deposits WHERE `+where+` LIMIT 1000`), args...)
	if err != nil {
		return nil, fmt.Errorf("btc: deposits: %w", err)
	}
	defer rows.Close()
	var out []trackedDeposit
	for rows.Next() {
		var d trackedDeposit
		if err := rows.Scan(&d.id, &d.txid, &d.invoiceID, &d.height, &d.missing); err != nil {
			return nil, fmt.Errorf("btc: deposits: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (w *Watcher) setState(ctx context.Context, id, state string) error {
	if _, err := w.db.Write.ExecContext(ctx, w.db.Q(`UPDATE chain_btc_deposits SET state = ?, missing_polls = 0, updated_at = ? WHERE deposit_id = ?`),
		state, w.now().UnixMilli(), id); err != nil {
		return fmt.Errorf("btc: deposit %s: %w", id, err)
	}
	return nil
}

// setStates sets the state of the deposits in one transaction.
func (w *Watcher) setStates(ctx context.Context, ids []string, state string) error {
	if len(ids) == 0 {
		return nil
	}
	tx, err := w.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("btc: deposits: %w", err)
	}
	defer tx.Rollback()
	now := w.now().UnixMilli()
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, w.db.Q(`UPDATE chain_btc_deposits SET state = ?, missing_polls = 0, updated_at = ? WHERE deposit_id = ?`),
			state, now, id); err != nil {
			return fmt.Errorf("btc: deposit %s: %w", id, err)
		}
	}
	return tx.Commit()
}

func (w *Watcher) revert(ctx context.Context, d trackedDeposit, reason string) error {
	if err := w.sink.Revert(ctx, d.invoiceID, d.id, reason); err != nil && !isDataError(err) {
		return fmt.Errorf("btc: revert %s: %w", d.id, err)
	} else if err != nil {
		w.log.Error("bitcoin deposit revert refused by the ledger", "invoice", d.invoiceID, "deposit", d.id, "err", err)
	}
	w.log.Warn("bitcoin deposit reverted", "invoice", d.invoiceID, "deposit", d.id, "reason", reason)
	if h, err := chainhash.NewHashFromStr(d.txid); err == nil {
		delete(w.mempoolSeen, *h) // back in the mempool, it is seen again
	}
	return w.setState(ctx, d.id, stateReverted)
}

// revertOrphanedCredits undoes credited deposits, final or not, whose
// block a reorg orphaned and that the rescan up to the tip did not find in
// the new best chain. Seen again later (mempool or block), they are
// reported again.
func (w *Watcher) revertOrphanedCredits(ctx context.Context) error {
	ds, err := w.tracked(ctx, `state IN (?, ?) AND block_height = 0`, stateConfirmed, stateFinal)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if err := w.revert(ctx, d, "reorg: the block with this payment left the best chain"); err != nil {
			return err
		}
	}
	return nil
}

// confirm credits pending deposits with enough confirmations at height:
// concurrently across invoices, then one transaction marks them all. A
// crash in between is harmless: confirming a confirmed deposit again is a
// no-op in the ledger.
func (w *Watcher) confirm(ctx context.Context, height int64) error {
	need := int64(w.asset.Confirmations)
	ds, err := w.tracked(ctx, `state = ? AND block_height > 0 AND block_height <= ?`, statePending, height-need+1)
	if err != nil {
		return err
	}
	done := make([]bool, len(ds))
	err = chain.ForEachGroup(len(ds), maxConcurrentReports, func(i int) string { return ds[i].invoiceID }, func(i int) error {
		d := ds[i]
		conf := int(height - d.height + 1)
		if err := w.sink.Confirm(ctx, d.invoiceID, d.id, conf); err != nil {
			if isDataError(err) {
				// e.g. an invoice created when the asset needed more confirmations: retried next block.
				w.log.Warn("bitcoin deposit not confirmed yet", "invoice", d.invoiceID, "deposit", d.id, "confirmations", conf, "err", err)
				return nil
			}
			return fmt.Errorf("btc: confirm %s: %w", d.id, err)
		}
		done[i] = true
		w.log.Info("bitcoin deposit confirmed", "invoice", d.invoiceID, "deposit", d.id, "confirmations", conf)
		return nil
	})
	var ids []string
	for i, d := range ds {
		if done[i] {
			ids = append(ids, d.id)
		}
	}
	// What was confirmed is recorded even when another confirmation failed.
	if sErr := w.setStates(ctx, ids, stateConfirmed); sErr != nil {
		return errors.Join(err, sErr)
	}
	return err
}

// finalize makes final the credited deposits at least w.finality blocks
// deep at height (money rule 4): their money moves from pending to
// available. As in confirm, a crash between the ledger and the state is
// harmless: finalizing a final deposit again records nothing.
func (w *Watcher) finalize(ctx context.Context, height int64) error {
	ds, err := w.tracked(ctx, `state = ? AND block_height > 0 AND block_height <= ?`, stateConfirmed, height-int64(w.finality)+1)
	if err != nil {
		return err
	}
	done := make([]bool, len(ds))
	err = chain.ForEachGroup(len(ds), maxConcurrentReports, func(i int) string { return ds[i].invoiceID }, func(i int) error {
		d := ds[i]
		depth := int(height - d.height + 1)
		if err := w.sink.Finalize(ctx, d.invoiceID, d.id, depth); err != nil {
			if isDataError(err) {
				w.log.Error("bitcoin deposit finality refused by the ledger", "invoice", d.invoiceID, "deposit", d.id, "depth", depth, "err", err)
				return nil
			}
			return fmt.Errorf("btc: finalize %s: %w", d.id, err)
		}
		done[i] = true
		w.log.Info("bitcoin deposit final", "invoice", d.invoiceID, "deposit", d.id, "depth", depth)
		return nil
	})
	var ids []string
	for i, d := range ds {
		if done[i] {
			ids = append(ids, d.id)
		}
	}
	if sErr := w.setStates(ctx, ids, stateFinal); sErr != nil {
		return errors.Join(err, sErr)
	}
	return err
}

// scanMempool reports new mempool transactions paying us (0
// confirmations), and reverts tracked deposits that are in no block and
// have left the mempool (replaced or dropped) for two scans in a row; the
// block scan runs first in each round, so a transaction that was just
// mined is found there before it is missed here twice.
func (w *Watcher) scanMempool(ctx context.Context) error {
	ids, err := call(ctx, w, w.node.GetRawMempool)
	if err != nil {
		return fmt.Errorf("btc: getrawmempool: %w", err)
	}
	inPool := make(map[chainhash.Hash]struct{}, len(ids))
	fetched := 0
	var outs []output
	var got []chainhash.Hash
	for _, id := range ids {
		inPool[*id] = struct{}{}
		if _, seen := w.mempoolSeen[*id]; seen || fetched >= maxMempoolFetches {
			continue
		}
		fetched++
		tx, err := call(ctx, w, func() (*btcutil.Tx, error) { return w.node.GetRawTransaction(id) })
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Mined or evicted since getrawmempool: a block scan finds it if mined.
			w.log.Debug("bitcoin mempool transaction gone", "txid", id, "err", err)
			w.mempoolSeen[*id] = struct{}{}
			continue
		}
		outs = w.match(tx.MsgTx(), id, outs)
		got = append(got, *id)
	}
	// Marked seen only once reported and recorded: after a failure they
	// are fetched again next round.
	rows, err := w.observeAll(ctx, outs, nil, 0)
	if err != nil {
		return err
	}
	if err := w.saveDeposits(ctx, rows); err != nil {
		return err
	}
	for _, id := range got {
		w.mempoolSeen[id] = struct{}{}
	}
	for id := range w.mempoolSeen {
		if _, ok := inPool[id]; !ok {
			delete(w.mempoolSeen, id)
		}
	}
	ds, err := w.tracked(ctx, `state = ? AND block_height = 0`, statePending)
	if err != nil {
		return err
	}
	for _, d := range ds {
		h, err := chainhash.NewHashFromStr(d.txid)
		if err != nil {
			return fmt.Errorf("btc: deposit %s: %w", d.id, err)
		}
		missing := 0
		if _, ok := inPool[*h]; !ok {
			missing = d.missing + 1
		}
		if missing >= missingPollsToRevert {
			if err := w.revert(ctx, d, "the transaction left the mempool without being mined (replaced or dropped)"); err != nil {
				return err
			}
			continue
		}
		if missing != d.missing {
			if _, err := w.db.Write.ExecContext(ctx, w.db.Q(`UPDATE chain_btc_deposits SET missing_polls = ? WHERE deposit_id = ?`), missing, d.id); err != nil {
				return fmt.Errorf("btc: deposit %s: %w", d.id, err)
			}
		}
	}
	return nil
}
