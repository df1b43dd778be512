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
			a, err := s.payoutChange(ctx, p.PayoutID)
			if err != nil {
				return chain.Signed{}, err
			}
			change = &a
		}
		tx, err := s.sign(ctx, p, sel, toScript, target-sel.fee, change)
		var earlier *earlierTx
		if errors.As(err, &earlier) {
			// The signer signed this payout before, and a crash lost
			// its answer: that transaction is the payout's, if it is
			// ours and pays what the payout asks.
			return s.adopt(ctx, p, earlier.tx, toScript, amount, feeOnTop, rate)
		}
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
		Asset: p.Asset.Code, ToIndex: -1, FundsVersion: custody.At(p.RequestVersion)}
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
		// The signer signed this payout before, with other inputs or
		// change, and signs no second transaction for it.
		return nil, &earlierTx{tx: &signed}
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
	b := built{inputs: sel.inputs, fee: sel.fee, rate: rate, changeIndex: -1, changeVout: 1, changeSat: sel.change, dust: sel.dust}
	if sel.change > 0 {
		b.changeIndex, b.changeAddress = change.Index, change.Address
	}
	return s.store(ctx, p, tx, b)
}

// built is what store keeps of a payout's transaction besides its bytes.
type built struct {
	inputs []utxo
	// fee is the payout's network fee (what it deducted from the
	// recipient, or a refund's fee on top); dust is what the miners take
	// beyond it (change under the dust limit).
	fee, rate, dust int64
	// changeIndex is -1 without change; else its output is changeVout.
	changeIndex   int64
	changeAddress string
	changeVout    uint32
	changeSat     int64
}

// store locks b's inputs (available, or already this payout's), adds the
// change as a pending output and stores the payout, in one database
// transaction. locked is false (and nothing is written) when another
// payout took one of the inputs first.
func (s *Sender) store(ctx context.Context, p chain.PayoutToSend, tx *wire.MsgTx, b built) (chain.Signed, bool, error) {
	var total int64
	for _, u := range b.inputs {
		total += u.sat
	}
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
	for _, u := range b.inputs {
		res, err := dbtx.ExecContext(ctx, db.Q(`UPDATE chain_btc_utxos SET state = ?, payout_id = ?, updated_at = ?
			WHERE outpoint = ? AND (state = ? OR (state = ? AND payout_id = ?))`),
			utxoLocked, p.PayoutID, now, u.op.String(), utxoAvailable, utxoLocked, p.PayoutID)
		if err != nil {
			return chain.Signed{}, false, fmt.Errorf("btc sender: lock %s: %w", u.op, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return chain.Signed{}, false, err
		}
	}
	if b.changeIndex >= 0 {
		if _, err := dbtx.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_utxos (outpoint, address, hd_index, amount_sat, source, state, payout_id, updated_at)
			VALUES (?, ?, ?, ?, 'change', ?, ?, ?)`), fmt.Sprintf("%s:%d", txid, b.changeVout), b.changeAddress, b.changeIndex, b.changeSat,
			utxoPending, p.PayoutID, now); err != nil {
			return chain.Signed{}, false, fmt.Errorf("btc sender: change: %w", err)
		}
	}
	if _, err := dbtx.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_payouts (payout_id, txid, raw, to_address, amount_sat, fee_sat, fee_rate,
		change_index, change_sat, dust_sat, state, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'built', ?)`),
		p.PayoutID, txid, raw, p.ToAddress, total-b.changeSat-b.dust, b.fee, b.rate, b.changeIndex, b.changeSat, b.dust, now); err != nil {
		return chain.Signed{}, false, fmt.Errorf("btc sender: store payout: %w", err)
	}
	if err := dbtx.Commit(); err != nil {
		return chain.Signed{}, false, fmt.Errorf("btc sender: %w", err)
	}
	return chain.Signed{TxID: txid, Raw: raw, Inputs: outpoints(tx), NetworkFee: sats(b.fee)}, true, nil
}

// earlierTx: the signer answered with the transaction it signed for the
// payout before, not the one asked for.
type earlierTx struct{ tx *wire.MsgTx }

func (e *earlierTx) Error() string {
	return fmt.Sprintf("btc sender: the signer returned its earlier transaction %s", e.tx.TxHash())
}

// payoutChange is the payout's change address: the one kept for it in
// chain_btc_payout_change, else a fresh one, kept before anything is
// signed with it. A payout built again after a crash pays its change to
// the same address, and adopt knows a change output of the payout's.
func (s *Sender) payoutChange(ctx context.Context, payoutID string) (commands.Allocation, error) {
	a, ok, err := s.keptChange(ctx, payoutID)
	if err != nil || ok {
		return a, err
	}
	if a, err = s.changeAddress(ctx); err != nil {
		return commands.Allocation{}, err
	}
	db := s.deps.DB
	if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO chain_btc_payout_change (payout_id, hd_index, address, created_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (payout_id) DO NOTHING`), payoutID, a.Index, a.Address, s.cfg.Now().UnixMilli()); err != nil {
		return commands.Allocation{}, fmt.Errorf("btc sender: keep change address: %w", err)
	}
	if a, ok, err = s.keptChange(ctx, payoutID); err == nil && !ok {
		err = fmt.Errorf("btc sender: payout %s: change address not kept", payoutID)
	}
	return a, err
}

// keptChange reads the change address kept for a payout, checked against
// our keys.
func (s *Sender) keptChange(ctx context.Context, payoutID string) (commands.Allocation, bool, error) {
	db := s.deps.DB
	var a commands.Allocation
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT hd_index, address FROM chain_btc_payout_change WHERE payout_id = ?`), payoutID).Scan(&a.Index, &a.Address)
	if errors.Is(err, sql.ErrNoRows) {
		return commands.Allocation{}, false, nil
	}
	if err != nil {
		return commands.Allocation{}, false, fmt.Errorf("btc sender: change address of payout %s: %w", payoutID, err)
	}
	if addr, err := s.deps.Keys.Address(domain.ChainBitcoin, a.Index); err != nil || addr != a.Address {
		return commands.Allocation{}, false, fmt.Errorf("btc sender: payout %s's change index %d does not derive %s with our keys", payoutID, a.Index, a.Address)
	}
	return a, true, nil
}

// adopt makes the transaction the signer signed for payout p before (a
// crash of picd serve or of the signer lost its answer, and the payout
// built again differs: other inputs, fee or change) the payout's
// transaction, once it has checked it is: every input an output of this
// wallet that no other payout holds, every signature valid over them,
// one output paying the payout's address exactly what the payout sends
// (a refund its amount, any other payout its amount less a fee the miners
// take), any other output the payout's own change address. Its inputs are
// locked and its change added as store does. Anything else waits for an
// operator (a temporary error, logged at every attempt): the signer will
// sign no other transaction for the payout.
func (s *Sender) adopt(ctx context.Context, p chain.PayoutToSend, tx *wire.MsgTx, toScript []byte, amount int64, feeOnTop bool, rate int64) (chain.Signed, error) {
	txid := tx.TxHash().String()
	operator := func(format string, args ...any) error {
		return fmt.Errorf("btc sender: payout %s: the signer signed transaction %s for it before, which %s; an operator must look",
			p.PayoutID, txid, fmt.Sprintf(format, args...))
	}
	db := s.deps.DB
	b := built{inputs: make([]utxo, len(tx.TxIn)), changeIndex: -1}
	prev := map[wire.OutPoint]*wire.TxOut{}
	scripts := make([][]byte, len(tx.TxIn))
	var in int64
	for i, txIn := range tx.TxIn {
		u := utxo{op: txIn.PreviousOutPoint}
		var state, holder string
		err := db.Read.QueryRowContext(ctx, db.Q(`SELECT address, hd_index, amount_sat, state, payout_id FROM chain_btc_utxos WHERE outpoint = ?`),
			u.op.String()).Scan(&u.address, &u.index, &u.sat, &state, &holder)
		if errors.Is(err, sql.ErrNoRows) {
			return chain.Signed{}, operator("spends %s, not an output of this wallet", u.op)
		}
		if err != nil {
			return chain.Signed{}, fmt.Errorf("btc sender: %w", err)
		}
		if state != utxoAvailable && (state != utxoLocked || holder != p.PayoutID) {
			return chain.Signed{}, operator("spends %s, which is %s (payout %q)", u.op, state, holder)
		}
		a, err := btcutil.DecodeAddress(u.address, s.cfg.Params)
		if err == nil {
			scripts[i], err = txscript.PayToAddrScript(a)
		}
		if err != nil {
			return chain.Signed{}, fmt.Errorf("btc sender: wallet address %s: %w", u.address, err)
		}
		prev[u.op] = wire.NewTxOut(u.sat, scripts[i])
		b.inputs[i] = u
		in += u.sat
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prev)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, u := range b.inputs {
		vm, err := txscript.NewEngine(scripts[i], tx, i, txscript.StandardVerifyFlags, nil, hashes, u.sat, fetcher)
		if err == nil {
			err = vm.Execute()
		}
		if err != nil {
			return chain.Signed{}, operator("does not verify at input %d: %v", i, err)
		}
	}
	change, hasChange, err := s.keptChange(ctx, p.PayoutID)
	if err != nil {
		return chain.Signed{}, err
	}
	var changeScript []byte
	if hasChange {
		a, err := btcutil.DecodeAddress(change.Address, s.cfg.Params)
		if err == nil {
			changeScript, err = txscript.PayToAddrScript(a)
		}
		if err != nil {
			return chain.Signed{}, fmt.Errorf("btc sender: change address: %w", err)
		}
	}
	var pay, out int64
	payees := 0
	for i, o := range tx.TxOut {
		switch {
		case bytes.Equal(o.PkScript, toScript):
			pay += o.Value
			payees++
		case changeScript != nil && b.changeIndex < 0 && bytes.Equal(o.PkScript, changeScript):
			b.changeIndex, b.changeAddress, b.changeVout, b.changeSat = change.Index, change.Address, uint32(i), o.Value
		default:
			return chain.Signed{}, operator("pays output %d to neither %s nor the payout's change address", i, p.ToAddress)
		}
		out += o.Value
	}
	spent := in - out // what the miners take
	switch {
	case payees != 1:
		return chain.Signed{}, operator("pays %s in %d outputs, not 1", p.ToAddress, payees)
	case spent < 0:
		return chain.Signed{}, operator("pays out %d sat from %d sat", out, in)
	case feeOnTop && pay != amount:
		return chain.Signed{}, operator("refunds %d sat, not the %d sat asked", pay, amount)
	case !feeOnTop && (pay > amount || amount-pay > spent || spent-(amount-pay) >= DustLimit):
		return chain.Signed{}, operator("pays %d sat with %d sat to the miners; the payout of %d sat pays its amount less that fee", pay, spent, amount)
	}
	b.fee = spent
	if !feeOnTop {
		b.fee, b.dust = amount-pay, spent-(amount-pay)
	}
	weight := int64(tx.SerializeSizeStripped())*3 + int64(tx.SerializeSize())
	if vsize := (weight + 3) / 4; vsize > 0 {
		b.rate = spent / vsize
	}
	signed, locked, err := s.store(ctx, p, tx, b)
	if err != nil {
		return chain.Signed{}, err
	}
	if !locked {
		return chain.Signed{}, operator("spends an output another payout took meanwhile")
	}
	s.log.Warn("bitcoin payout: the transaction the signer signed before is the payout's", "payout_id", p.PayoutID, "txid", signed.TxID,
		"inputs", len(b.inputs), "fee_sat", b.fee, "change_sat", b.changeSat, "dust_sat", b.dust)
	return signed, nil
}
