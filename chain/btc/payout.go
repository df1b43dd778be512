package btc

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math"

	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// Build implements chain.Sender. Errors: chain.ErrPermanent for an asset
// that is not BTC, an invalid address or amount, a fee not below the
// amount, and a hot wallet that cannot cover the amount even with what is
// still confirming; other errors (node, database) are temporary.
func (s *Sender) Build(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, false)
}

// maxFeeRounds bounds the selections of a fee-on-top payout.
const maxFeeRounds = 8

func (s *Sender) build(ctx context.Context, p chain.PayoutToSend, feeOnTop bool) (chain.Signed, error) {
	if p.Asset.Code != s.asset.Code {
		return chain.Signed{}, fmt.Errorf("%w: btc sender cannot pay %s", chain.ErrPermanent, p.Asset.Code)
	}
	units, err := p.Amount.BaseUnits(8)
	if err != nil || !units.IsInt64() || units.Sign() <= 0 {
		return chain.Signed{}, fmt.Errorf("%w: amount %s", chain.ErrPermanent, p.Amount)
	}
	amount := units.Int64()
	if err := hd.ValidateAddress(domain.ChainBitcoin, p.ToAddress, s.cfg.Params); err != nil {
		return chain.Signed{}, fmt.Errorf("%w: %v", chain.ErrPermanent, err)
	}
	to, err := btcutil.DecodeAddress(p.ToAddress, s.cfg.Params)
	if err != nil {
		return chain.Signed{}, fmt.Errorf("%w: %v", chain.ErrPermanent, err)
	}
	toScript, err := txscript.PayToAddrScript(to)
	if err != nil {
		return chain.Signed{}, fmt.Errorf("%w: %v", chain.ErrPermanent, err)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if prev, ok, err := s.stored(ctx, p.PayoutID); err != nil || ok {
		return prev, err
	}
	if err := s.sync(ctx); err != nil {
		return chain.Signed{}, err
	}
	rate := s.feeRate(ctx)
	var change *commands.Allocation
	for attempt := 0; attempt < maxLockRetries; attempt++ {
		cands, err := s.available(ctx)
		if err != nil {
			return chain.Signed{}, err
		}
		// target is what the inputs pay: the amount, fee included; with
		// the fee on top, the amount + the fee of the selection.
		target := amount
		sel, ok := selectCoins(cands, target, rate, len(toScript))
		for round := 0; feeOnTop && ok && sel.fee != target-amount && round < maxFeeRounds; round++ {
			target = amount + sel.fee
			sel, ok = selectCoins(cands, target, rate, len(toScript))
		}
		if !ok {
			return chain.Signed{}, s.insufficient(ctx, target, cands)
		}
		if feeOnTop && sel.fee != target-amount {
			return chain.Signed{}, fmt.Errorf("btc sender: the fee of payout %s did not settle over %d selections; try again", p.PayoutID, maxFeeRounds)
		}
		if sel.fee >= target || target-sel.fee < DustLimit {
			return chain.Signed{}, fmt.Errorf("%w: network fee %d sat (%d sat/vB) leaves nothing worth sending of %d sat",
				chain.ErrPermanent, sel.fee, rate, target)
		}
		if gone, err := s.checkUnspent(ctx, sel.inputs); err != nil {
			return chain.Signed{}, err
		} else if gone {
			continue // marked missing: select again
		}
		if sel.change > 0 && change == nil {
			a, err := s.changeAddress(ctx)
			if err != nil {
				return chain.Signed{}, err
			}
			change = &a
		}
		tx, err := s.sign(ctx, p, sel, toScript, target-sel.fee, change)
		if err != nil {
			return chain.Signed{}, err
		}
		signed, locked, err := s.record(ctx, p, tx, sel, rate, change)
		if err != nil {
			return chain.Signed{}, err
		}
		if !locked {
			continue // another process took an input first
		}
		s.log.Info("bitcoin payout built", "payout_id", p.PayoutID, "txid", signed.TxID, "inputs", len(sel.inputs),
			"fee_sat", sel.fee, "fee_rate", rate, "change_sat", sel.change, "dust_sat", sel.dust)
		if sel.dust > 0 {
			s.log.Warn("bitcoin payout: change below the dust limit goes to the miners", "payout_id", p.PayoutID, "dust_sat", sel.dust)
		}
		return signed, nil
	}
	return chain.Signed{}, errors.New("btc sender: inputs kept being taken by other payouts; try again")
}

// selection is a set of inputs and what the transaction pays.
type selection struct {
	inputs       []utxo
	total, fee   int64
	change, dust int64
	vbytes       int64
}

// selectCoins takes the largest outputs first until they cover amount,
// which pays the fee too (the recipient gets amount − fee). Change below
// the dust limit is avoided with one more input when there is one, else
// dropped (dust). ok is false when everything does not cover amount.
func selectCoins(cands []utxo, amount, rate int64, toScriptLen int) (selection, bool) {
	outVB := func(scriptLen int) int64 { return int64(8 + 1 + scriptLen) }
	const changeVB = 8 + 1 + 22 // P2WPKH
	var sel selection
	for i, c := range cands {
		if i >= maxInputs {
			break
		}
		sel.inputs = append(sel.inputs, c)
		sel.total += c.sat
		if sel.total < amount {
			continue
		}
		left := sel.total - amount
		base := overheadVBytes + int64(len(sel.inputs))*inputVBytes + outVB(toScriptLen)
		switch {
		case left == 0:
			sel.vbytes, sel.change, sel.dust = base, 0, 0
		case left >= DustLimit:
			sel.vbytes, sel.change, sel.dust = base+changeVB, left, 0
		case i+1 < len(cands) && i+1 < maxInputs:
			continue // one more input turns the dust into real change
		default:
			sel.vbytes, sel.change, sel.dust = base, 0, left
		}
		sel.fee = sel.vbytes * rate
		return sel, true
	}
	return sel, false
}

// insufficient explains why the wallet cannot pay: permanently, unless
// what is still confirming (our change, deposits in the mempool or not
// yet final) would cover it.
func (s *Sender) insufficient(ctx context.Context, amount int64, cands []utxo) error {
	var have int64
	for _, c := range cands {
		have += c.sat
	}
	var incoming sql.NullInt64
	err := s.deps.DB.Read.QueryRowContext(ctx, s.deps.DB.Q(`SELECT
		(SELECT COALESCE(SUM(amount_sat), 0) FROM chain_btc_utxos WHERE state = ?) +
		(SELECT COALESCE(SUM(amount_sat), 0) FROM chain_btc_deposits WHERE state IN (?, ?))`), utxoPending, statePending, stateConfirmed).Scan(&incoming)
	if err != nil {
		return fmt.Errorf("btc sender: incoming funds: %w", err)
	}
	if have+incoming.Int64 >= amount {
		return fmt.Errorf("btc sender: hot wallet has %d sat spendable, %d sat still confirming; %d sat needed: retry later",
			have, incoming.Int64, amount)
	}
	return fmt.Errorf("%w: insufficient hot-wallet funds: %d sat spendable (%d confirming), %d sat needed",
		chain.ErrPermanent, have, incoming.Int64, amount)
}

// Release implements chain.Releaser: the inputs of a payout that ended
// before its transaction was recorded are available again, its change
// void. A payout without a built transaction here has nothing to free.
func (s *Sender) Release(ctx context.Context, payoutID string) error {
	db := s.deps.DB
	var txid string
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT txid FROM chain_btc_payouts WHERE payout_id = ? AND state = 'built'`), payoutID).Scan(&txid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("btc sender: release payout %s: %w", payoutID, err)
	}
	return s.release(ctx, txid, nil)
}

var _ chain.Releaser = (*Sender)(nil)

// stored returns the transaction already built for a payout.
func (s *Sender) stored(ctx context.Context, payoutID string) (chain.Signed, bool, error) {
	db := s.deps.DB
	var txid, raw, state string
	var fee int64
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT txid, raw, fee_sat, state FROM chain_btc_payouts WHERE payout_id = ?`), payoutID).
		Scan(&txid, &raw, &fee, &state)
	if errors.Is(err, sql.ErrNoRows) {
		return chain.Signed{}, false, nil
	}
	if err != nil {
		return chain.Signed{}, false, fmt.Errorf("btc sender: payout %s: %w", payoutID, err)
	}
	if state != "built" {
		return chain.Signed{}, false, fmt.Errorf("%w: payout %s's transaction %s is %s", chain.ErrPermanent, payoutID, txid, state)
	}
	tx, err := decodeTx(raw)
	if err != nil {
		return chain.Signed{}, false, err
	}
	return chain.Signed{TxID: txid, Raw: raw, Inputs: outpoints(tx), NetworkFee: sats(fee)}, true, nil
}

// feeRate is the node's estimate in sat/vB, clamped, or the fallback.
func (s *Sender) feeRate(ctx context.Context) int64 {
	perKvB := 0.0 // BTC per 1000 vB
	mode := btcjson.EstimateModeConservative
	if r, err := rpc(ctx, s, func() (*btcjson.EstimateSmartFeeResult, error) {
		return s.node.EstimateSmartFee(s.cfg.ConfTarget, &mode)
	}); err == nil &&
		r != nil && r.FeeRate != nil && *r.FeeRate > 0 {
		perKvB = *r.FeeRate
	} else if f, err := rpc(ctx, s, func() (float64, error) { return s.node.EstimateFee(s.cfg.ConfTarget) }); err == nil && f > 0 {
		perKvB = f
	}
	if perKvB <= 0 || math.IsNaN(perKvB) || math.IsInf(perKvB, 0) {
		return s.cfg.FallbackFeeRate
	}
	rate := int64(math.Ceil(perKvB * 1e8 / 1000))
	return min(max(rate, s.cfg.MinFeeRate), s.cfg.MaxFeeRate)
}

// changeAddress allocates a fresh HD address for a payout's change.
func (s *Sender) changeAddress(ctx context.Context) (commands.Allocation, error) {
	a, err := s.deps.Change.Allocate(ctx, s.asset, "")
	if err != nil {
		return commands.Allocation{}, fmt.Errorf("btc sender: change address: %w", err)
	}
	if a.Index < 0 {
		return commands.Allocation{}, errors.New("btc sender: the change allocator gave a reused address; it must allocate HD indexes")
	}
	if addr, err := s.deps.Keys.Address(domain.ChainBitcoin, a.Index); err != nil || addr != a.Address {
		return commands.Allocation{}, fmt.Errorf("btc sender: change index %d does not derive %s with our keys", a.Index, a.Address)
	}
	return a, nil
}

// sign builds the transaction of sel and has the signer sign every input
// (P2WPKH); what comes back is verified against the inputs' scripts.
func (s *Sender) sign(ctx context.Context, p chain.PayoutToSend, sel selection, toScript []byte, pay int64, change *commands.Allocation) (*wire.MsgTx, error) {
	tx := wire.NewMsgTx(2)
	prev := map[wire.OutPoint]*wire.TxOut{}
	scripts := make([][]byte, len(sel.inputs))
	req := custody.Request{Chain: domain.ChainBitcoin, Purpose: custody.PurposePayout, PayoutID: p.PayoutID, MerchantID: p.MerchantID,
		Asset: p.Asset.Code, ToIndex: -1}
	for i, u := range sel.inputs {
		a, err := btcutil.DecodeAddress(u.address, s.cfg.Params)
		if err != nil {
			return nil, fmt.Errorf("btc sender: wallet address %s: %w", u.address, err)
		}
		if scripts[i], err = txscript.PayToAddrScript(a); err != nil {
			return nil, fmt.Errorf("btc sender: wallet address %s: %w", u.address, err)
		}
		op := u.op
		tx.AddTxIn(wire.NewTxIn(&op, nil, nil))
		prev[op] = wire.NewTxOut(u.sat, scripts[i])
		req.Inputs = append(req.Inputs, custody.Input{Index: u.index, Sat: u.sat})
	}
	tx.AddTxOut(wire.NewTxOut(pay, toScript))
	if sel.change > 0 {
		a, err := btcutil.DecodeAddress(change.Address, s.cfg.Params)
		if err != nil {
			return nil, fmt.Errorf("btc sender: change address: %w", err)
		}
		script, err := txscript.PayToAddrScript(a)
		if err != nil {
			return nil, fmt.Errorf("btc sender: change address: %w", err)
		}
		tx.AddTxOut(wire.NewTxOut(sel.change, script))
		req.ToIndex = change.Index
	}
	unsigned, err := custody.UnsignedBitcoin(tx)
	if err != nil {
		return nil, err
	}
	req.Unsigned = unsigned
	raw, err := s.deps.Signer.Sign(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("btc sender: sign: %w", err)
	}
	var signed wire.MsgTx
	if err := signed.Deserialize(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("btc sender: the signer returned no transaction: %w", err)
	}
	if signed.TxHash() != tx.TxHash() {
		// The signer signed this payout before, with other inputs, and
		// signs no second transaction for it.
		return nil, fmt.Errorf("btc sender: payout %s: the signer returned its earlier transaction %s, not %s; an operator must look",
			p.PayoutID, signed.TxHash(), tx.TxHash())
	}
	// Check the signer's work before it is recorded: a transaction that
	// does not verify would be rejected only after the payout was signed.
	fetcher := txscript.NewMultiPrevOutFetcher(prev)
	hashes := txscript.NewTxSigHashes(&signed, fetcher)
	for i, u := range sel.inputs {
		vm, err := txscript.NewEngine(scripts[i], &signed, i, txscript.StandardVerifyFlags, nil, hashes, u.sat, fetcher)
		if err == nil {
			err = vm.Execute()
		}
		if err != nil {
			return nil, fmt.Errorf("btc sender: input %d does not verify: %w", i, err)
		}
	}
	return &signed, nil
}

// record locks the inputs, adds the change as a pending output and stores
// the payout, in one database transaction. locked is false (and nothing is
// written) when another payout took one of the inputs first.
func (s *Sender) record(ctx context.Context, p chain.PayoutToSend, tx *wire.MsgTx, sel selection, rate int64,
	change *commands.Allocation) (chain.Signed, bool, error) {
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return chain.Signed{}, false, err
	}
	raw, txid := hex.EncodeToString(buf.Bytes()), tx.TxHash().String()
	db := s.deps.DB
	now := s.cfg.Now().UnixMilli()
	dbtx, err := db.Write.BeginTx(ctx, nil)
	if err != nil {
		return chain.Signed{}, false, fmt.Errorf("btc sender: %w", err)
	}
	defer dbtx.Rollback()
	for _, u := range sel.inputs {
		res, err := dbtx.ExecContext(ctx, db.Q(`UPDATE chain_btc_utxos SET state = ?, payout_id = ?, updated_at = ? WHERE outpoint = ? AND state = ?`),
			utxoLocked, p.PayoutID, now, u.op.String(), utxoAvailable)
		if err != nil {
			return chain.Signed{}, false, fmt.Errorf("btc sender: lock %s: %w", u.op, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return chain.Signed{}, false, err
		}
	}
	changeIndex := int64(-1)
	if sel.change > 0 {
		changeIndex = change.Index
		if _, err := dbtx.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_utxos (outpoint, address, hd_index, amount_sat, source, state, payout_id, updated_at)
			VALUES (?, ?, ?, ?, 'change', ?, ?, ?)`), txid+":1", change.Address, change.Index, sel.change, utxoPending, p.PayoutID, now); err != nil {
			return chain.Signed{}, false, fmt.Errorf("btc sender: change: %w", err)
		}
	}
	if _, err := dbtx.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_payouts (payout_id, txid, raw, to_address, amount_sat, fee_sat, fee_rate,
		change_index, change_sat, dust_sat, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'built', ?)`),
		p.PayoutID, txid, raw, p.ToAddress, sel.total-sel.change-sel.dust, sel.fee, rate, changeIndex, sel.change, sel.dust, now); err != nil {
		return chain.Signed{}, false, fmt.Errorf("btc sender: store payout: %w", err)
	}
	if err := dbtx.Commit(); err != nil {
		return chain.Signed{}, false, fmt.Errorf("btc sender: %w", err)
	}
	return chain.Signed{TxID: txid, Raw: raw, Inputs: outpoints(tx), NetworkFee: sats(sel.fee)}, true, nil
}
