package custody

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/ethereum/go-ethereum/crypto"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/acceptcryptohere/gateway/domain"
)

// TronTransfer is what a TRON transaction moves: TRX (Contract "") or a
// TRC-20 transfer(to, amount) through Contract; addresses in base58.
type TronTransfer struct {
	Owner, To, Contract string
	Amount              int64
}

// TronReader reads a TRON transaction's raw_data (Request.Unsigned);
// chain/tron supplies it (this package cannot import it). It errors on
// anything but one plain TRX transfer or one TRC-20 transfer call.
type TronReader func(raw []byte) (TronTransfer, error)

// signTron is a recoverable secp256k1 signature (r‖s‖v, 65 bytes) over
// txID = sha256(raw_data), as java-tron verifies it. Local returns the
// signature alone, and the sender puts it together with the raw data; a
// Policy returns and records the signed transaction (SignedTron), so that
// what it signed for a payout can be given again, whole, to a sender that
// built the payout again after a crash.
func signTron(key *btcec.PrivateKey, raw []byte) ([]byte, string, error) {
	id := sha256.Sum256(raw)
	ek := key.ToECDSA()
	sig, err := crypto.Sign(id[:], ek)
	ek.D.SetInt64(0)
	if err != nil {
		return nil, "", fmt.Errorf("custody: sign: %w", err)
	}
	return sig, hex.EncodeToString(id[:]), nil
}

// SignedTron is TRON's signed Transaction message: raw_data (field 1) and
// one signature (field 2), as chain/tron's MarshalTransaction writes it.
func SignedTron(raw, sig []byte) []byte {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendBytes(b, raw)
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	return protowire.AppendBytes(b, sig)
}

// tronBase58 writes a TRON address given in hex ("41…", 42 digits) in
// base58check, as TronReader does; other strings pass unchanged.
func tronBase58(s string) string {
	if b, err := hex.DecodeString(s); err == nil && len(b) == 21 && b[0] == 0x41 {
		return base58.CheckEncode(b[1:], 0x41)
	}
	return s
}

func (p *Policy) tronAddress(index int64) (string, error) {
	a, err := p.cfg.Wallet.Address(domain.ChainTron, index)
	if err != nil {
		return "", refused("index %d: %v", index, err)
	}
	return a, nil
}

func (p *Policy) signTron(ctx context.Context, req Request) ([]byte, error) {
	if p.cfg.TronRead == nil {
		return nil, refused("this signer reads no TRON transactions")
	}
	t, err := p.cfg.TronRead(req.Unsigned)
	if err != nil {
		return nil, refused("TRON transaction: %v", err)
	}
	hotIndex := p.cfg.TronHotIndex
	hot, err := p.tronAddress(hotIndex)
	if err != nil {
		return nil, err
	}
	from, err := p.tronAddress(req.FromIndex)
	if err != nil {
		return nil, err
	}
	if t.Owner != from {
		return nil, refused("the transaction is from %s, the request signs with index %d (%s)", t.Owner, req.FromIndex, from)
	}
	sign := func() ([]byte, string, error) {
		key, err := p.cfg.Wallet.PrivateKey(domain.ChainTron, req.FromIndex)
		if err != nil {
			return nil, "", err
		}
		defer key.Zero()
		sig, txid, err := signTron(key, req.Unsigned)
		if err != nil {
			return nil, "", err
		}
		return SignedTron(req.Unsigned, sig), txid, nil
	}
	switch req.Purpose {
	case PurposePayout:
		if req.FromIndex != hotIndex {
			return nil, refused("a payout is paid from the hot wallet (index %d), not index %d", hotIndex, req.FromIndex)
		}
		return p.payout(ctx, req, func(po domain.PayoutRequested, asset domain.Asset) error { return checkTronPayout(t, po, asset) }, sign)
	case PurposeSweep:
		if req.FromIndex == hotIndex || t.To != hot || (t.Contract != "" && !p.knownContract(domain.ChainTron, t.Contract)) {
			return nil, refused("a sweep moves TRX or a configured token from a deposit address to the hot wallet %s, not to %s", hot, t.To)
		}
	case PurposeTopUp:
		to, err := p.tronAddress(req.ToIndex)
		if err != nil {
			return nil, err
		}
		if req.FromIndex != hotIndex || req.ToIndex == hotIndex || t.Contract != "" || t.To != to {
			return nil, refused("a top-up sends TRX from the hot wallet to deposit address %d (%s), not to %s", req.ToIndex, to, t.To)
		}
	default:
		return nil, refused("unknown purpose %q", req.Purpose)
	}
	signed, txid, err := sign()
	if err != nil {
		return nil, err
	}
	return signed, p.cfg.Record.append(ctx, Signature{Chain: req.Chain, Purpose: req.Purpose, PayoutID: req.PayoutID, Asset: req.Asset,
		FromIndex: req.FromIndex, TxID: txid, Raw: signed, SignedAt: p.cfg.Now()})
}

// checkTronPayout holds a TRON payout to its request: to its address, in
// its asset (TRX, or a transfer through the asset's contract), a refund
// for exactly its amount, any other payout for its amount less a fee. The
// fee of a token payout is converted from TRX at a price the signer does
// not know, so it is held to at most the amount.
func checkTronPayout(t TronTransfer, po domain.PayoutRequested, asset domain.Asset) error {
	if t.To != po.ToAddress {
		return refused("payout %s goes to %s, the transaction to %s", po.PayoutID, po.ToAddress, t.To)
	}
	if t.Contract != tronBase58(asset.Contract) {
		return refused("payout %s is of %s, the transaction moves %q", po.PayoutID, asset.Code, t.Contract)
	}
	units, err := po.Amount.BaseUnits(asset.Decimals)
	if err != nil || !units.IsInt64() {
		return refused("payout %s amount %s", po.PayoutID, po.Amount)
	}
	amount := big.NewInt(t.Amount)
	if po.Kind == domain.PayoutKindRefund && amount.Cmp(units) != 0 || t.Amount <= 0 || amount.Cmp(units) > 0 {
		return refused("payout %s of %s base units: the transaction sends %d", po.PayoutID, units, t.Amount)
	}
	return nil
}
