package btc

import (
	"context"
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain"
)

// output is one transaction output paying a watched address.
type output struct {
	txid    chainhash.Hash
	vout    uint32
	address string
	sat     int64
}

func (o output) depositID() string { return fmt.Sprintf("%s:%d", o.txid, o.vout) }

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
		addr, ok := w.watched.lookup(o.PkScript)
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

// depositRow is a mempool payment reported to the ledger, to record in
// chain_btc_deposits in no block (block_height 0).
type depositRow struct {
	o         output
	invoiceID string
}

// observeMempool reports the mempool outputs to the ledger (0
// confirmations) unless we already did (and they were not reverted
// since): concurrently across addresses, one after another for each
// address. It returns the rows that record them; the caller writes them
// after every observe, so a crash before that only repeats observes, which
// the ledger ignores. The block scan reports outputs through scan.Scanner.
func (w *Watcher) observeMempool(ctx context.Context, outs []output) ([]depositRow, error) {
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
	var fresh []output
	for i, o := range outs {
		if state, ok := states[ids[i]]; ok && state != stateReverted {
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
			DepositID: id, Amount: amount, Confirmations: 0})
		if err != nil {
			if isDataError(err) {
				w.log.Error("bitcoin payment refused by the ledger", "deposit", id, "address", o.address, "amount", amount.String(), "err", err)
				return nil
			}
			return fmt.Errorf("btc: observe %s: %w", id, err)
		}
		invoices[i] = invoiceID
		w.log.Info("bitcoin payment seen", "invoice", invoiceID, "deposit", id, "amount", amount.String(), "confirmations", 0)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var rows []depositRow
	for i, o := range fresh {
		if invoices[i] != "" {
			rows = append(rows, depositRow{o: o, invoiceID: invoices[i]})
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

// saveDeposits records mempool rows in one transaction.
func (w *Watcher) saveDeposits(ctx context.Context, rows []depositRow) error {
	if len(rows) == 0 {
		return nil
	}
	tx, err := w.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("btc: deposits: %w", err)
	}
	defer tx.Rollback()
	now := w.now().UnixMilli()
	for _, r := range rows {
		id := r.o.depositID()
		if _, err := tx.ExecContext(ctx, w.db.Q(insertDeposit), id, r.o.txid.String(), r.invoiceID, r.o.address, r.o.sat, "", 0,
			statePending, now); err != nil {
			return fmt.Errorf("btc: deposit %s: %w", id, err)
		}
	}
	return tx.Commit()
}

// insertDeposit records a deposit reported to the ledger (again, after a
// revert) or found again somewhere else.
const insertDeposit = `INSERT INTO chain_btc_deposits
	(deposit_id, txid, invoice_id, address, amount_sat, block_hash, block_height, state, missing_polls, updated_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?)
	ON CONFLICT (deposit_id) DO UPDATE SET invoice_id = excluded.invoice_id, block_hash = excluded.block_hash,
		block_height = excluded.block_height, state = excluded.state, missing_polls = 0, updated_at = excluded.updated_at`

type trackedDeposit struct {
	id, txid, invoiceID string
	missing             int
}

func (w *Watcher) tracked(ctx context.Context, where string, args ...any) ([]trackedDeposit, error) {
	rows, err := w.db.Read.QueryContext(ctx, w.db.Q(`SELECT deposit_id, txid, invoice_id, missing_polls FROM chain_btc_deposits WHERE `+where+` LIMIT 1000`), args...)
	if err != nil {
		return nil, fmt.Errorf("btc: deposits: %w", err)
	}
	defer rows.Close()
	var out []trackedDeposit
	for rows.Next() {
		var d trackedDeposit
		if err := rows.Scan(&d.id, &d.txid, &d.invoiceID, &d.missing); err != nil {
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
	rows, err := w.observeMempool(ctx, outs)
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

// scriptKey is an output script of at most maxKeyScript bytes (every
// address type picd issues, and P2SH, P2WSH, P2TR) with its length first,
// so that no shorter script padded with zeros is taken for a longer one.
type scriptKey [1 + maxKeyScript]byte

const maxKeyScript = 34

// watchSet holds the output scripts of our addresses and answers with the
// address as stored on the invoice, rendered again from the script (the
// address it pays, encoded) unless stored in another form (kept as text).
// A longer script (a bare public key) is kept apart as text.
type watchSet struct {
	set  *chain.WatchSet[scriptKey]
	long map[string]string
}

func newWatchSet(params *chaincfg.Params) watchSet {
	return watchSet{long: map[string]string{}, set: chain.NewWatchSet(func(k scriptKey) string {
		_, addrs, _, err := txscript.ExtractPkScriptAddrs(k[1:1+k[0]], params)
		if err != nil || len(addrs) != 1 {
			return ""
		}
		return addrs[0].EncodeAddress()
	})}
}

func (s watchSet) add(script []byte, addr string) {
	if len(script) > maxKeyScript {
		s.long[string(script)] = addr
		return
	}
	var k scriptKey
	k[0] = byte(len(script))
	copy(k[1:], script)
	s.set.Add(k, addr)
}

func (s watchSet) lookup(script []byte) (string, bool) {
	if len(script) > maxKeyScript {
		a, ok := s.long[string(script)]
		return a, ok
	}
	var k scriptKey
	k[0] = byte(len(script))
	copy(k[1:], script)
	return s.set.Lookup(k)
}
