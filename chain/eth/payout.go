package eth

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/domain"
)

// Release implements chain.Releaser: a payout that ended before its
// transaction was recorded (canceled, or failed, after its build) leaves
// that transaction stored and unsent, and its nonce would hold back every
// later transaction of the hot wallet. The nonce goes to a zero-value
// transfer from the hot wallet to itself (purpose void), sent at once and
// again on every call until it is mined. Errors: node and database errors.
func (s *Sender) Release(ctx context.Context, payoutID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	db := s.deps.DB
	var from, purpose, txid string
	var nonce int64
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT from_address, nonce, purpose, txid FROM eth_txs WHERE ref = ? AND purpose IN ('payout', 'void')`),
		payoutID).Scan(&from, &nonce, &purpose, &txid)
	if errors.Is(err, sql.ErrNoRows) {
		return nil // nothing was built
	}
	if err != nil {
		return fmt.Errorf("eth sender: release payout %s: %w", payoutID, err)
	}
	if purpose == "payout" {
		if _, _, err := s.client.TransactionByHash(ctx, common.HexToHash(txid)); err == nil {
			// The node has it: someone broadcast what the log never
			// recorded. Leave it to an operator rather than race it.
			return fmt.Errorf("eth sender: payout %s ended unsigned, but the node has its transaction %s", payoutID, txid)
		}
		tip, feeCap, err := s.fees(ctx)
		if err != nil {
			return err
		}
		signer, err := s.signer(ctx)
		if err != nil {
			return err
		}
		void, err := s.sign(ctx, signer, custody.Request{Chain: domain.ChainEthereum, Purpose: custody.PurposeVoid, PayoutID: payoutID,
			Asset: s.nativeCode(), FromIndex: s.hotIndex}, &types.DynamicFeeTx{ChainID: s.chainID, Nonce: uint64(nonce), GasTipCap: tip,
			GasFeeCap: feeCap, Gas: transferGas, To: &s.hot, Value: new(big.Int)}, s.hot)
		if err != nil {
			return fmt.Errorf("eth sender: sign void: %w", err)
		}
		raw, err := void.MarshalBinary()
		if err != nil {
			return err
		}
		maxFee := new(big.Int).Mul(big.NewInt(transferGas), feeCap)
		if _, err := db.Write.ExecContext(ctx, db.Q(`UPDATE eth_txs SET txid = ?, raw = ?, purpose = 'void', asset = ?, value_units = '0', max_fee_wei = ?
			WHERE from_address = ? AND nonce = ? AND purpose = 'payout' AND ref = ?`),
			void.Hash().Hex(), hex.EncodeToString(raw), s.nativeCode(), maxFee.String(), from, nonce, payoutID); err != nil {
			return fmt.Errorf("eth sender: release payout %s: %w", payoutID, err)
		}
		s.log.Warn("ethereum payout ended before it was sent; its nonce goes to a void transaction", "payout_id", payoutID,
			"unsent_txid", txid, "void_txid", void.Hash().Hex(), "nonce", nonce)
		txid = void.Hash().Hex()
	}
	_, err = s.waitTx(ctx, txid)
	return err
}

var _ chain.Releaser = (*Sender)(nil)

// PaidFee implements chain.PaidFeeSender: an ETH payout's fee is what its
// receipt says was paid (gas used × effective gas price), at most the fee
// cap it recorded when signed. A token payout's fee stays 0 in the token
// (ok false): its gas is the hot wallet's, booked in eth_txs.
func (s *Sender) PaidFee(ctx context.Context, txid string, asset domain.Asset) (domain.Amount, bool, error) {
	if s.native == nil || asset.Code != s.native.Code {
		return domain.Amount{}, false, nil
	}
	r, err := s.client.TransactionReceipt(ctx, common.HexToHash(txid))
	if err != nil {
		return domain.Amount{}, false, fmt.Errorf("eth sender: receipt %s: %w", txid, err)
	}
	return domain.FromBaseUnits(s.recordFeePaid(ctx, r), 18), true, nil
}

var _ chain.PaidFeeSender = (*Sender)(nil)

// ErrReverted: a transaction was mined but failed (a token transfer that
// reverted): it moved nothing and never will, so the payout fails
// (chain.ErrPermanent). Confirmations returns it.
var ErrReverted = fmt.Errorf("%w: eth: transaction reverted", chain.ErrPermanent)

// storedPayout returns the transaction already built for a payout.
func (s *Sender) storedPayout(ctx context.Context, payoutID string) (ethTx, bool, error) {
	db := s.deps.DB
	var t ethTx
	var from, maxFee, value string
	var nonce int64
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT from_address, nonce, txid, raw, max_fee_wei, value_units FROM eth_txs
		WHERE purpose = 'payout' AND ref = ?`), payoutID).Scan(&from, &nonce, &t.txid, &t.raw, &maxFee, &value)
	if errors.Is(err, sql.ErrNoRows) {
		return ethTx{}, false, nil
	}
	if err != nil {
		return ethTx{}, false, fmt.Errorf("eth sender: payout %s: %w", payoutID, err)
	}
	t.from, t.nonce = common.HexToAddress(from), uint64(nonce)
	t.maxFee, _ = new(big.Int).SetString(maxFee, 10)
	t.value, _ = new(big.Int).SetString(value, 10)
	return t, true, nil
}

// Build implements chain.Sender. Errors: chain.ErrPermanent for an asset
// this sender does not pay, an invalid address or amount, an ETH fee not
// below the amount, a hot wallet short of the amount, and a hot wallet
// short of ETH for a token payout's gas; others are temporary.
func (s *Sender) Build(ctx context.Context, p chain.PayoutToSend) (chain.Signed, error) {
	return s.build(ctx, p, false)
}

func (s *Sender) build(ctx context.Context, p chain.PayoutToSend, feeOnTop bool) (chain.Signed, error) {
	var token *tokenAsset
	if t, ok := s.tokens[p.Asset.Code]; ok {
		token = &t
	} else if s.native == nil || p.Asset.Code != s.native.Code {
		return chain.Signed{}, fmt.Errorf("%w: eth sender cannot pay %s", chain.ErrPermanent, p.Asset.Code)
	}
	if err := hd.ValidateAddress(domain.ChainEthereum, p.ToAddress, nil); err != nil {
		return chain.Signed{}, fmt.Errorf("%w: %v", chain.ErrPermanent, err)
	}
	to := common.HexToAddress(p.ToAddress)
	units, err := p.Amount.BaseUnits(p.Asset.Decimals)
	if err != nil || units.Sign() <= 0 {
		return chain.Signed{}, fmt.Errorf("%w: amount %s", chain.ErrPermanent, p.Amount)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok, err := s.storedPayout(ctx, p.PayoutID); err != nil {
		return chain.Signed{}, err
	} else if ok {
		return s.signedOf(t, token == nil), nil
	}
	tip, feeCap, err := s.fees(ctx)
	if err != nil {
		return chain.Signed{}, err
	}
	haveETH, haveTok, err := s.spendable(ctx, s.hot, token)
	if err != nil {
		return chain.Signed{}, err
	}
	txdata := types.DynamicFeeTx{GasTipCap: tip, GasFeeCap: feeCap}
	var value *big.Int
	if token == nil {
		if haveETH.Cmp(units) < 0 {
			return chain.Signed{}, s.shortOf(ctx, p.Asset.Code, fmt.Sprintf("%s holds %s wei spendable, %s wei needed", s.hot.Hex(), haveETH, units))
		}
		// A contract recipient may need more than a plain transfer's gas.
		gas, err := s.client.EstimateGas(ctx, ethereum.CallMsg{From: s.hot, To: &to, Value: big.NewInt(1)})
		if err != nil {
			return chain.Signed{}, estimateError(fmt.Sprintf("estimate gas of a transfer to %s", to.Hex()), err)
		}
		gas = max(gas, transferGas)
		fee := new(big.Int).Mul(new(big.Int).SetUint64(gas), feeCap)
		if feeOnTop {
			// A refund: exactly units to the recipient, the fee on top.
			if need := new(big.Int).Add(units, fee); haveETH.Cmp(need) < 0 {
				return chain.Signed{}, s.shortOf(ctx, p.Asset.Code, fmt.Sprintf("%s holds %s wei spendable, %s wei needed", s.hot.Hex(), haveETH, need))
			}
			value = units
		} else {
			if fee.Cmp(units) >= 0 {
				return chain.Signed{}, fmt.Errorf("%w: network fee %s wei (%d gas at %s wei) is not below the payout's %s wei",
					chain.ErrPermanent, fee, gas, feeCap, units)
			}
			value = new(big.Int).Sub(units, fee)
		}
		txdata.Gas, txdata.To, txdata.Value = gas, &to, value
	} else {
		if haveTok.Cmp(units) < 0 {
			return chain.Signed{}, s.shortOf(ctx, p.Asset.Code, fmt.Sprintf("%s holds %s %s base units spendable, %s needed", s.hot.Hex(), haveTok, p.Asset.Code, units))
		}
		data := transferData(to, units)
		gas, err := s.client.EstimateGas(ctx, ethereum.CallMsg{From: s.hot, To: &token.contract, Data: data})
		if err != nil {
			return chain.Signed{}, estimateError(fmt.Sprintf("estimate gas of %s transfer to %s", p.Asset.Code, to.Hex()), err)
		}
		gas += gas * tokenGasMarginPct / 100
		need := new(big.Int).Mul(new(big.Int).SetUint64(gas), feeCap)
		if haveETH.Cmp(need) < 0 {
			return chain.Signed{}, fmt.Errorf("%w: insufficient hot-wallet ETH for gas: %s holds %s wei spendable, the %s transfer needs up to %s wei",
				chain.ErrPermanent, s.hot.Hex(), haveETH, p.Asset.Code, need)
		}
		value = units
		txdata.Gas, txdata.To, txdata.Value, txdata.Data = gas, &token.contract, new(big.Int), data
	}
	t, err := s.signAndStore(ctx, custody.Request{Purpose: custody.PurposePayout, PayoutID: p.PayoutID, MerchantID: p.MerchantID,
		Asset: p.Asset.Code, FromIndex: s.hotIndex, FundsVersion: custody.At(p.RequestVersion)}, txdata, value)
	if err != nil {
		return chain.Signed{}, err
	}
	s.log.Info("ethereum payout built", "payout_id", p.PayoutID, "asset", p.Asset.Code, "txid", t.txid, "nonce", t.nonce,
		"gas", txdata.Gas, "max_fee_wei", t.maxFee.String())
	return s.signedOf(t, token == nil), nil
}

// signedOf is the chain.Signed of a stored payout transaction.
func (s *Sender) signedOf(t ethTx, native bool) chain.Signed {
	nonce := t.nonce
	fee := domain.Amount{}
	if native {
		fee = domain.FromBaseUnits(t.maxFee, 18)
	}
	return chain.Signed{TxID: t.txid, Raw: t.raw, Nonce: &nonce, NetworkFee: fee}
}

// Confirmations implements chain.Sender: the depth of the transaction's
// block, 0 while it is pending. Errors: an unknown transaction, and
// ErrReverted for a mined transaction that failed (it moved nothing; an
// operator must look: the payout stays sent).
func (s *Sender) Confirmations(ctx context.Context, txid string) (int, error) {
	h := common.HexToHash(txid)
	r, err := s.client.TransactionReceipt(ctx, h)
	if errors.Is(err, ethereum.NotFound) || (err == nil && r == nil) {
		if _, pending, err := s.client.TransactionByHash(ctx, h); err == nil && pending {
			return 0, nil
		}
		return 0, fmt.Errorf("eth sender: transaction %s is unknown to the node", txid)
	}
	if err != nil {
		return 0, fmt.Errorf("eth sender: receipt %s: %w", txid, err)
	}
	s.recordFeePaid(ctx, r)
	if r.Status != types.ReceiptStatusSuccessful {
		return 0, fmt.Errorf("%w: %s in block %d", ErrReverted, txid, r.BlockNumber)
	}
	head, err := s.client.HeaderByNumber(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("eth sender: head: %w", err)
	}
	return int(new(big.Int).Sub(head.Number, r.BlockNumber).Int64()) + 1, nil
}

// shortOf is the error of a payout the hot wallet cannot fund: temporary
// while credited deposits of the asset (final, or not yet) still wait to
// be swept into the hot wallet (the processor retries; sweeps run every
// minute), permanent otherwise, so the payout fails and the merchant's
// funds are released.
func (s *Sender) shortOf(ctx context.Context, asset, detail string) error {
	db := s.deps.DB
	var waiting int
	err := db.Read.QueryRowContext(ctx, db.Q(`SELECT count(*) FROM eth_deposits d WHERE d.asset = ? AND d.confirmed = 1 AND d.state IN (?, ?)
		AND NOT EXISTS (SELECT 1 FROM eth_sweeps w WHERE w.asset = d.asset AND lower(w.address) = lower(d.address)
			AND w.state = ? AND w.created_at >= d.updated_at)`), asset, chain.ScanSeen, scanFinal, SweepDone).Scan(&waiting)
	if err != nil {
		return fmt.Errorf("eth sender: deposits awaiting a sweep: %w", err)
	}
	if waiting > 0 {
		return fmt.Errorf("eth sender: hot wallet short (%s); %d %s deposits are still to be swept into it", detail, waiting, asset)
	}
	return fmt.Errorf("%w: insufficient hot-wallet funds: %s", chain.ErrPermanent, detail)
}

// estimateError classifies a failed gas estimate of a payout: the call
// reverted (a contract recipient that rejects ETH, a token that refuses
// the transfer while the hot wallet holds the amount) is permanent, since
// the same call reverts again; anything else (node down) is temporary.
func estimateError(what string, err error) error {
	if strings.Contains(err.Error(), "execution reverted") {
		return fmt.Errorf("%w: eth: %s: %v", chain.ErrPermanent, what, err)
	}
	return fmt.Errorf("eth sender: %s: %w", what, err)
}
