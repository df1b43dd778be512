package btc

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// sourceUnmatched is the chain_btc_utxos source of an unmatched deposit an
// operator decided to sweep: the operator's coins, not a merchant's.
const sourceUnmatched = "unmatched"

// TakeInUnmatched makes spendable the unmatched deposits an operator
// decided to sweep (picd chain unmatched sweep) once they are final, and
// returns how many it took in. picd runs it at start and every minute;
// every payout's Build runs it too.
func (s *Sender) TakeInUnmatched(ctx context.Context) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeInUnmatched(ctx)
}

// takeInUnmatched: on Bitcoin "sweeping" an output to the hot wallet needs
// no transaction. The wallet is every output of our HD addresses, and a
// payout spends deposits straight from their invoice addresses; so the
// output joins chain_btc_utxos (source unmatched, available) and the
// deposit becomes swept, both in one database transaction (a re-run or a
// second process finds it swept and adds nothing). A consolidation
// transaction would cost a fee no event books, and one more transaction to
// follow to its confirmation, for nothing the wallet cannot do already.
//
// Final is asked of the node, not taken from the row (a reorg does not
// update a Bitcoin unmatched row): the output must be unspent in the best
// chain (gettxout without the mempool) at least finality blocks deep, pay
// the deposit's address exactly its amount, and that address must be
// ours at a known HD index (an invoice's). Until then it waits; a deposit
// a reorg took away waits until it is back in a final block.
func (s *Sender) takeInUnmatched(ctx context.Context) (int, error) {
	u := chain.Unmatched{DB: s.deps.DB}
	list, err := u.List(ctx, chain.UnmatchedSweep)
	if err != nil {
		return 0, err
	}
	taken := 0
	for _, d := range list {
		if d.Chain != "btc" || d.Asset != s.asset.Code {
			continue
		}
		ok, err := s.takeIn(ctx, u, d)
		if err != nil {
			return taken, err
		}
		if ok {
			taken++
		}
	}
	return taken, nil
}

// takeIn takes one unmatched deposit in when it is final and ours.
func (s *Sender) takeIn(ctx context.Context, u chain.Unmatched, d chain.UnmatchedDeposit) (bool, error) {
	log := s.log.With("unmatched_id", d.ID, "deposit", d.DepositID, "address", d.Address, "amount", d.Amount)
	op, err := parseOutpoint(d.DepositID)
	if err != nil {
		return false, err
	}
	want, err := (state{}).sats(d.Amount)
	if err != nil {
		return false, fmt.Errorf("btc sender: unmatched deposit %d: %w", d.ID, err)
	}
	out, err := s.txOut(ctx, op)
	if err != nil {
		return false, err
	}
	if out == nil || out.confirmations < int64(s.finality) {
		conf := int64(0)
		if out != nil {
			conf = out.confirmations
		}
		log.Info("bitcoin unmatched deposit decided sweep waits for finality", "confirmations", conf, "finality", s.finality,
			"in_best_chain", out != nil)
		return false, nil
	}
	script, err := s.addressScript(d.Address)
	if err != nil || out.sat != want || out.script != hex.EncodeToString(script) {
		log.Error("bitcoin unmatched deposit decided sweep: the node's output is not the deposit recorded; not taken in",
			"node_sat", out.sat, "node_script", out.script, "err", err)
		return false, nil
	}
	index, err := s.indexOf(ctx, d.Address)
	if err != nil {
		return false, err
	}
	if index < 0 {
		log.Error("bitcoin unmatched deposit decided sweep: no HD index of ours derives its address; not taken in")
		return false, nil
	}
	db := s.deps.DB
	tx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("btc sender: take in %s: %w", d.DepositID, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_utxos (outpoint, address, hd_index, amount_sat, source, state, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (outpoint) DO NOTHING`), op.String(), d.Address, index, want, sourceUnmatched, utxoAvailable,
		s.cfg.Now().UnixMilli())
	if err != nil {
		return false, fmt.Errorf("btc sender: take in %s: %w", d.DepositID, err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		// Only a credited deposit could have put it there, and a deposit
		// is credited or swept, never both.
		return false, fmt.Errorf("btc sender: unmatched deposit %d: output %s is already in the wallet", d.ID, op)
	}
	marked, err := u.MarkSweptTx(ctx, tx, d.ID, "swept to the hot wallet as output "+op.String()+" (spendable by payouts; no transaction)")
	if err != nil || !marked {
		return false, err // no longer decided "sweep": another process took it in
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("btc sender: take in %s: %w", d.DepositID, err)
	}
	log.Info("bitcoin unmatched deposit swept: its output joins the hot wallet", "outpoint", op.String(), "hd_index", index)
	return true, nil
}

// nodeOutput is an unspent output of the best chain as gettxout tells it.
type nodeOutput struct {
	confirmations int64
	sat           int64
	script        string // scriptPubKey, hex
}

// txOut asks the node for a mined, unspent output; nil when it has none
// (spent, in no block of the best chain, or never was). The value is read
// as a decimal, never a float.
func (s *Sender) txOut(ctx context.Context, op wire.OutPoint) (*nodeOutput, error) {
	params := []json.RawMessage{json.RawMessage(strconv.Quote(op.Hash.String())), json.RawMessage(strconv.FormatUint(uint64(op.Index), 10)),
		json.RawMessage("false")}
	raw, err := rpc(ctx, s, func() (json.RawMessage, error) { return s.node.RawRequest("gettxout", params) })
	if err != nil {
		return nil, fmt.Errorf("btc sender: gettxout %s: %w", op, err)
	}
	sat, err := outputValue(raw)
	if err != nil {
		return nil, fmt.Errorf("btc sender: gettxout %s: %w", op, err)
	}
	if sat < 0 {
		return nil, nil
	}
	var r struct {
		Confirmations int64 `json:"confirmations"`
		ScriptPubKey  struct {
			Hex string `json:"hex"`
		} `json:"scriptPubKey"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("btc sender: gettxout %s: %w", op, err)
	}
	return &nodeOutput{confirmations: r.Confirmations, sat: sat, script: r.ScriptPubKey.Hex}, nil
}

func (s *Sender) addressScript(addr string) ([]byte, error) {
	a, err := btcutil.DecodeAddress(addr, s.cfg.Params)
	if err != nil {
		return nil, err
	}
	if !a.IsForNet(s.cfg.Params) {
		return nil, fmt.Errorf("btc sender: %s is for another network", addr)
	}
	return txscript.PayToAddrScript(a)
}

// indexOf is the HD index that derives addr, from the invoices given it
// (the watcher only sees payments to invoice addresses); -1 when none does.
func (s *Sender) indexOf(ctx context.Context, addr string) (int64, error) {
	db := s.deps.DB
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT invoice_id FROM invoices WHERE pay_address = ? ORDER BY invoice_id LIMIT 100`), addr)
	if err != nil {
		return 0, fmt.Errorf("btc sender: invoices of %s: %w", addr, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("btc sender: invoices of %s: %w", addr, err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("btc sender: invoices of %s: %w", addr, err)
	}
	for _, id := range ids {
		index, err := s.indexes.Of(ctx, id)
		if err != nil {
			return 0, err
		}
		if index < 0 {
			continue // a reused address, not derived for this invoice
		}
		if a, err := s.deps.Keys.Address(domain.ChainBitcoin, index); err == nil && a == addr {
			return index, nil
		}
	}
	return -1, nil
}

// OperatorFloat is what the wallet's outputs hold beyond the ledger: the
// unmatched deposits taken in (TakeInUnmatched), which no event records.
// A payout that spends one leaves its value in the wallet (its change) or
// paid out of the merchant's money the ledger moved, so the float stays
// until an output of it is lost (missing: spent elsewhere or reorged
// away).
func OperatorFloat(ctx context.Context, db sqldb.DB) (int64, error) {
	var sat int64
	if err := db.Read.QueryRowContext(ctx, db.Q(`SELECT COALESCE(SUM(amount_sat), 0) FROM chain_btc_utxos WHERE source = ? AND state <> ?`),
		sourceUnmatched, utxoMissing).Scan(&sat); err != nil {
		return 0, fmt.Errorf("btc: operator float: %w", err)
	}
	return sat, nil
}
