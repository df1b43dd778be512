package tron

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"

	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
)

// estimate is what Build worked out for one payout.
type estimate struct {
	sentUnits, feeTRXSun, energy, bandwidth, feeLimitSun int64
	fee                                                  domain.Amount // in the payout's asset
}

// Build implements chain.Sender. It estimates the network cost, checks the
// hot wallet can pay it, builds the transaction through the node, verifies
// it and signs it. Errors: chain.ErrPermanent (wrapped) for an invalid
// address, a fee not below the amount, a cost above MaxFeeLimitSun, and
// ErrHotWalletFunds; others are temporary.
func (s *Sender) Build(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, false)
}

func (s *Sender) build(ctx context.Context, p chain.PayoutToSend, feeOnTop bool) (chain.Signed, error) {
	if p.Asset.Chain != domain.ChainTron {
		return chain.Signed{}, fmt.Errorf("%w: %s is not a TRON asset", chain.ErrPermanent, p.Asset.Code)
	}
	if err := hd.ValidateAddress(domain.ChainTron, p.ToAddress, nil); err != nil {
		return chain.Signed{}, fmt.Errorf("%w: %v", chain.ErrPermanent, err)
	}
	to, _ := DecodeAddress(p.ToAddress)
	if bytes.Equal(to, s.hotBytes) {
		return chain.Signed{}, fmt.Errorf("%w: the payout address is the hot wallet itself", chain.ErrPermanent)
	}
	units, err := p.Amount.BaseUnits(p.Asset.Decimals)
	if err != nil || !units.IsInt64() || units.Sign() <= 0 {
		return chain.Signed{}, fmt.Errorf("%w: amount %s cannot be sent", chain.ErrPermanent, p.Amount)
	}
	f, err := s.fees(ctx)
	if err != nil {
		return chain.Signed{}, err
	}
	hotAcct, err := s.node.Account(ctx, s.hot)
	if err != nil {
		return chain.Signed{}, fmt.Errorf("tron hot wallet account: %w", err)
	}
	res, err := s.node.AccountResource(ctx, s.hot)
	if err != nil {
		return chain.Signed{}, fmt.Errorf("tron hot wallet resources: %w", err)
	}
	var raw RawTx
	var est estimate
	if p.Asset.Native() {
		raw, est, err = s.buildTRX(ctx, p, to, units.Int64(), hotAcct, res, f, feeOnTop)
	} else {
		raw, est, err = s.buildToken(ctx, p, to, units.Int64(), hotAcct, res, f, feeOnTop)
	}
	if err != nil {
		return chain.Signed{}, err
	}
	base := raw.Timestamp
	if base == 0 {
		base = s.cfg.Now().UnixMilli()
	}
	raw.Expiration = base + s.cfg.Expiration.Milliseconds()
	rawBytes := raw.Marshal()
	signed, txid, err := s.sign(ctx, custody.Request{Purpose: custody.PurposePayout, PayoutID: p.PayoutID, MerchantID: p.MerchantID,
		Asset: p.Asset.Code, FundsVersion: custody.At(p.RequestVersion)}, rawBytes, s.cfg.HotWalletIndex)
	var earlier *earlierTron
	if errors.As(err, &earlier) {
		// The signer signed this payout before (another reference block
		// and expiration), and a crash lost its answer or our record of
		// it: that transaction is the payout's, if it pays what we ask.
		if est, raw, err = s.adoptable(p, earlier.raw, units.Int64(), est, feeOnTop); err != nil {
			return chain.Signed{}, err
		}
		signed, txid = MarshalTransaction(earlier.raw, [][]byte{earlier.sig}), TxID(earlier.raw)
		s.cfg.Logger.Warn("tron: the transaction the signer signed before is the payout's", "payout_id", p.PayoutID, "txid", txid,
			"expiration_ms", raw.Expiration)
	} else if err != nil {
		return chain.Signed{}, err
	}
	if err := s.record(ctx, p, txid, est, raw.Expiration); err != nil {
		return chain.Signed{}, err
	}
	s.cfg.Logger.Info("tron: payout signed", "payout_id", p.PayoutID, "txid", txid, "asset", p.Asset.Code,
		"network_fee", est.fee.String(), "fee_trx", domain.FromBaseUnits(big.NewInt(est.feeTRXSun), 6).String(),
		"energy", est.energy, "bandwidth_bytes", est.bandwidth)
	// A token payout's fee is the TRX it burns, converted into the token:
	// the network takes none of the token, so it is the operator's
	// revenue once confirmed, and the TRX burned its cost (notePayoutBurn).
	return chain.Signed{TxID: txid, Raw: hex.EncodeToString(signed), NetworkFee: est.fee,
		FeeConverted: !p.Asset.Native() && !est.fee.IsZero()}, nil
}

// adoptable checks the transaction the signer signed for payout p before
// is the payout's: one transfer from the hot wallet to the payout's
// address, of the payout's asset (TRX, or through its contract), a refund
// of exactly its amount, any other payout of its amount less the fee it
// deducted (kept as its network fee; the TRX side of est, estimated for
// the build it replaces, stands). Anything else waits for an operator (a
// temporary error): the signer signs no other transaction for the payout.
func (s *Sender) adoptable(p chain.PayoutToSend, raw []byte, units int64, est estimate, feeOnTop bool) (estimate, RawTx, error) {
	txid := TxID(raw)
	operator := func(format string, args ...any) error {
		return fmt.Errorf("tron: payout %s: the signer signed transaction %s for it before, which %s; an operator must look",
			p.PayoutID, txid, fmt.Sprintf(format, args...))
	}
	r, err := UnmarshalRawTx(raw)
	if err != nil {
		return estimate{}, RawTx{}, operator("does not decode: %v", err)
	}
	t, err := ReadTransfer(raw)
	if err != nil {
		return estimate{}, RawTx{}, operator("is no plain transfer: %v", err)
	}
	contract := ""
	if !p.Asset.Native() {
		c, ok := s.tokens[p.Asset.Code]
		if !ok {
			return estimate{}, RawTx{}, fmt.Errorf("%w: no contract for %s", chain.ErrPermanent, p.Asset.Code)
		}
		contract = EncodeAddress(c)
	}
	switch {
	case t.Owner != s.hot:
		return estimate{}, RawTx{}, operator("is from %s, not the hot wallet %s", t.Owner, s.hot)
	case t.To != p.ToAddress:
		return estimate{}, RawTx{}, operator("pays %s, not %s", t.To, p.ToAddress)
	case t.Contract != contract:
		return estimate{}, RawTx{}, operator("moves %q, not %s", t.Contract, p.Asset.Code)
	case feeOnTop && t.Amount != units:
		return estimate{}, RawTx{}, operator("refunds %d base units, not %d", t.Amount, units)
	case t.Amount <= 0 || t.Amount > units:
		return estimate{}, RawTx{}, operator("sends %d base units of a payout of %d", t.Amount, units)
	}
	est.sentUnits = t.Amount
	if !feeOnTop {
		est.fee = domain.FromBaseUnits(big.NewInt(units-t.Amount), p.Asset.Decimals)
		if p.Asset.Native() {
			est.feeTRXSun = units - t.Amount
		}
	}
	if !p.Asset.Native() {
		est.feeLimitSun = r.FeeLimit
	}
	return est, r, nil
}

// PaidFee implements chain.PaidFeeSender: a TRX payout's network fee is
// what its transaction's info says it burned, when that is less than the
// fee it was signed with (the payee was activated by another transaction
// in between, or bandwidth was staked); the rest goes back to the
// merchant. More than signed is the operator's cost (notePayoutBurn). A
// token payout's fee stands (ok false): it is charged in the token for the
// TRX burned.
func (s *Sender) PaidFee(ctx context.Context, txid string, asset domain.Asset) (domain.Amount, bool, error) {
	if !asset.Native() {
		return domain.Amount{}, false, nil
	}
	info, err := s.node.TransactionInfoByID(ctx, txid)
	if err != nil {
		return domain.Amount{}, false, fmt.Errorf("tron: transaction info %s: %w", txid, err)
	}
	return domain.FromBaseUnits(big.NewInt(max(0, info.Fee)), asset.Decimals), true, nil
}

var _ chain.PaidFeeSender = (*Sender)(nil)

// buildTRX estimates and builds a TRX transfer of units − fee, or of
// units with the fee burned on top when feeOnTop.
func (s *Sender) buildTRX(ctx context.Context, p chain.PayoutToSend, to []byte, units int64, hot Account, res AccountResource, f fees, feeOnTop bool) (RawTx, estimate, error) {
	toAcct, err := s.node.Account(ctx, p.ToAddress)
	if err != nil {
		return RawTx{}, estimate{}, fmt.Errorf("tron account %s: %w", p.ToAddress, err)
	}
	if hot.Balance < units {
		return RawTx{}, estimate{}, fmt.Errorf("%w: hot wallet %s holds %s TRX, the payout needs %s TRX", ErrHotWalletFunds, s.hot,
			sunString(hot.Balance), sunString(units))
	}
	// The size does not depend on the amount's last digits but for a
	// varint byte: a first build of the whole amount sizes it.
	first, err := s.node.CreateTransaction(ctx, s.hot, p.ToAddress, units)
	if err != nil {
		return RawTx{}, estimate{}, fmt.Errorf("tron createtransaction: %w", err)
	}
	r, err := s.verifyTransfer(first, s.hotBytes, to, units)
	if err != nil {
		return RawTx{}, estimate{}, err
	}
	size := bandwidthBytes(r.Marshal())
	feeSun := bandwidthFeeSun(size, res, f, !toAcct.Exists())
	if feeOnTop {
		// The first build is the transaction: exactly units, its size
		// measured, the fee burned on top from the hot wallet's TRX.
		if hot.Balance < units+feeSun {
			return RawTx{}, estimate{}, fmt.Errorf("%w: hot wallet %s holds %s TRX, the refund needs %s TRX and %s TRX of network fee on top",
				ErrHotWalletFunds, s.hot, sunString(hot.Balance), sunString(units), sunString(feeSun))
		}
		return r, estimate{sentUnits: units, feeTRXSun: feeSun, bandwidth: size, fee: domain.FromBaseUnits(big.NewInt(feeSun), p.Asset.Decimals)}, nil
	}
	if feeSun >= units {
		return RawTx{}, estimate{}, fmt.Errorf("%w: network fee %s TRX is not below the payout's %s TRX", chain.ErrPermanent, sunString(feeSun), p.Amount)
	}
	sent := units - feeSun
	tx, err := s.node.CreateTransaction(ctx, s.hot, p.ToAddress, sent)
	if err != nil {
		return RawTx{}, estimate{}, fmt.Errorf("tron createtransaction: %w", err)
	}
	if r, err = s.verifyTransfer(tx, s.hotBytes, to, sent); err != nil {
		return RawTx{}, estimate{}, err
	}
	return r, estimate{sentUnits: sent, feeTRXSun: feeSun, bandwidth: size, fee: domain.FromBaseUnits(big.NewInt(feeSun), p.Asset.Decimals)}, nil
}

// buildToken estimates and builds a TRC-20 transfer(to, units − fee), or
// transfer(to, units) with the fee (in the token) debited on top when
// feeOnTop.
func (s *Sender) buildToken(ctx context.Context, p chain.PayoutToSend, to []byte, units int64, hot Account, res AccountResource, f fees, feeOnTop bool) (RawTx, estimate, error) {
	contract, ok := s.tokens[p.Asset.Code]
	if !ok {
		return RawTx{}, estimate{}, fmt.Errorf("%w: no contract for %s", chain.ErrPermanent, p.Asset.Code)
	}
	contractB58 := EncodeAddress(contract)
	bal, err := s.tokenBalance(ctx, contractB58)
	if err != nil {
		return RawTx{}, estimate{}, err
	}
	if bal.Cmp(big.NewInt(units)) < 0 {
		return RawTx{}, estimate{}, fmt.Errorf("%w: hot wallet %s holds %s %s, the payout needs %s", ErrHotWalletFunds, s.hot,
			domain.FromBaseUnits(bal, p.Asset.Decimals), p.Asset.Code, p.Amount)
	}
	// Energy: what the node's dry run of the transfer uses, less the hot
	// wallet's staked energy, burned at getEnergyFee.
	sim, err := s.node.TriggerConstantContract(ctx, TriggerRequest{OwnerAddress: s.hot, ContractAddress: contractB58,
		FunctionSelector: "transfer(address,uint256)", Parameter: hex.EncodeToString(transferParameter(to, units))})
	if err != nil {
		return RawTx{}, estimate{}, fmt.Errorf("tron energy estimate: %w", err)
	}
	energy, err := transferEnergy(sim)
	if err != nil {
		return RawTx{}, estimate{}, fmt.Errorf("tron energy estimate: %w", err)
	}
	burn := max(0, energy-max(0, res.EnergyLimit-res.EnergyUsed))
	energySun := burn * f.energySun
	feeLimit := ceilDiv(energy*f.energySun*(10_000+s.cfg.EnergyMarginBps), 10_000)
	if feeLimit > s.cfg.MaxFeeLimitSun {
		return RawTx{}, estimate{}, fmt.Errorf("%w: the transfer needs about %d energy, up to %s TRX, above the fee limit of %s TRX",
			chain.ErrPermanent, energy, sunString(feeLimit), sunString(s.cfg.MaxFeeLimitSun))
	}
	call := func(amount int64) (RawTx, error) {
		param := transferParameter(to, amount)
		ext, err := s.node.TriggerSmartContract(ctx, TriggerRequest{OwnerAddress: s.hot, ContractAddress: contractB58,
			FunctionSelector: "transfer(address,uint256)", Parameter: hex.EncodeToString(param), FeeLimit: feeLimit})
		if err != nil {
			return RawTx{}, fmt.Errorf("tron triggersmartcontract: %w", err)
		}
		if !ext.Result.Result || ext.Transaction == nil {
			return RawTx{}, fmt.Errorf("tron triggersmartcontract: %s %s", ext.Result.Code, nodeMessage(ext.Result.Message))
		}
		return s.verifyTrigger(*ext.Transaction, s.hotBytes, contract, append(append([]byte{}, transferSelector...), param...), feeLimit)
	}
	first, err := call(units)
	if err != nil {
		return RawTx{}, estimate{}, err
	}
	size := bandwidthBytes(first.Marshal())
	bwSun := bandwidthFeeSun(size, res, f, false)
	// The hot wallet must hold the TRX the transfer may burn: without it
	// the transfer would run out of energy on chain (TRX burned, nothing
	// paid). Fail now, clearly, instead.
	needSun := ceilDiv(energySun*(10_000+s.cfg.EnergyMarginBps), 10_000) + bwSun
	if hot.Balance < needSun {
		return RawTx{}, estimate{}, fmt.Errorf("%w: hot wallet %s holds %s TRX, a %s payout needs about %s TRX for energy (%d at %d sun) and bandwidth (%d bytes): top it up with TRX",
			ErrHotWalletFunds, s.hot, sunString(hot.Balance), p.Asset.Code, sunString(needSun), burn, f.energySun, size)
	}
	est := estimate{feeTRXSun: energySun + bwSun, energy: energy, bandwidth: size, feeLimitSun: feeLimit}
	if s.cfg.Prices != nil && est.feeTRXSun > 0 {
		q, err := s.cfg.Prices.Price(ctx, "TRX", p.Asset.Code)
		if err != nil {
			return RawTx{}, estimate{}, fmt.Errorf("tron: network fee in %s: %w", p.Asset.Code, err)
		}
		trx := decimal.New(est.feeTRXSun, -6)
		est.fee = domain.AmountFromDecimal(trx.Mul(q.Rate).RoundUp(p.Asset.Decimals))
	}
	feeUnits, err := est.fee.BaseUnits(p.Asset.Decimals)
	if err != nil {
		return RawTx{}, estimate{}, err
	}
	if feeOnTop {
		est.sentUnits = units
		return first, est, nil
	}
	if feeUnits.Int64() >= units {
		return RawTx{}, estimate{}, fmt.Errorf("%w: network fee %s %s is not below the payout's %s", chain.ErrPermanent, est.fee, p.Asset.Code, p.Amount)
	}
	est.sentUnits = units - feeUnits.Int64()
	if est.sentUnits == units {
		return first, est, nil
	}
	r, err := call(est.sentUnits)
	return r, est, err
}

// tokenBalance reads the hot wallet's balanceOf on contract.
func (s *Sender) tokenBalance(ctx context.Context, contract string) (*big.Int, error) {
	param := make([]byte, 32)
	copy(param[12:], s.hotBytes[1:])
	ext, err := s.node.TriggerConstantContract(ctx, TriggerRequest{OwnerAddress: s.hot, ContractAddress: contract,
		FunctionSelector: "balanceOf(address)", Parameter: hex.EncodeToString(param)})
	if err != nil {
		return nil, fmt.Errorf("tron token balance: %w", err)
	}
	if !ext.Result.Result || len(ext.ConstantResult) != 1 {
		return nil, fmt.Errorf("tron token balance: %s %s", ext.Result.Code, nodeMessage(ext.Result.Message))
	}
	b, err := hex.DecodeString(ext.ConstantResult[0])
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("tron token balance: unexpected result %q", ext.ConstantResult[0])
	}
	return new(big.Int).SetBytes(b), nil
}

// record keeps the latest build of a payout in tron_payout_txs.
func (s *Sender) record(ctx context.Context, p chain.PayoutToSend, txid string, est estimate, expirationMs int64) error {
	tx, err := s.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, s.db.Q(`DELETE FROM tron_payout_txs WHERE payout_id = ?`), p.PayoutID); err != nil {
		return fmt.Errorf("tron payout record: %w", err)
	}
	if _, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO tron_payout_txs (payout_id, txid, asset, to_address, amount, network_fee, fee_trx,
		energy, bandwidth_bytes, fee_limit_sun, expiration_ms, built_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		p.PayoutID, txid, p.Asset.Code, p.ToAddress, p.Amount.String(), est.fee.String(), sunString(est.feeTRXSun),
		est.energy, est.bandwidth, est.feeLimitSun, expirationMs, s.cfg.Now().UnixMilli()); err != nil {
		return fmt.Errorf("tron payout record: %w", err)
	}
	return tx.Commit()
}
