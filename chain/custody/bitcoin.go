package custody

import (
	"bytes"
	"context"
	"fmt"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/domain"
)

// UnsignedBitcoin encodes a transaction to sign (Request.Unsigned).
func UnsignedBitcoin(tx *wire.MsgTx) ([]byte, error) {
	var buf bytes.Buffer
	if err := tx.SerializeNoWitness(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeBitcoin reads Request.Unsigned with one Input per transaction input.
func decodeBitcoin(req Request) (*wire.MsgTx, error) {
	var tx wire.MsgTx
	if err := tx.DeserializeNoWitness(bytes.NewReader(req.Unsigned)); err != nil {
		return nil, refused("unsigned Bitcoin transaction: %v", err)
	}
	if len(tx.TxIn) == 0 || len(tx.TxIn) != len(req.Inputs) || len(tx.TxOut) == 0 {
		return nil, refused("unsigned Bitcoin transaction: %d inputs, %d described, %d outputs", len(tx.TxIn), len(req.Inputs), len(tx.TxOut))
	}
	for i, in := range req.Inputs {
		if in.Sat <= 0 {
			return nil, refused("input %d: value %d sat", i, in.Sat)
		}
	}
	return &tx, nil
}

// walletScript is the P2WPKH output script of the wallet's address at
// index on the Bitcoin receive branch.
func walletScript(keys KeySource, index int64) ([]byte, error) {
	k, err := keys.PrivateKey(domain.ChainBitcoin, index)
	if err != nil {
		return nil, err
	}
	return txscript.NewScriptBuilder().AddOp(txscript.OP_0).AddData(btcutil.Hash160(k.PubKey().SerializeCompressed())).Script()
}

// signBitcoin signs every input (P2WPKH, SIGHASH_ALL) with the key of the
// index it names, checks each against its script, and returns the
// serialised transaction with its witnesses.
func signBitcoin(keys KeySource, tx *wire.MsgTx, inputs []Input) ([]byte, error) {
	tx = tx.Copy()
	prev := map[wire.OutPoint]*wire.TxOut{}
	scripts := make([][]byte, len(inputs))
	for i, in := range inputs {
		var err error
		if scripts[i], err = walletScript(keys, in.Index); err != nil {
			return nil, err
		}
		prev[tx.TxIn[i].PreviousOutPoint] = wire.NewTxOut(in.Sat, scripts[i])
	}
	fetcher := txscript.NewMultiPrevOutFetcher(prev)
	hashes := txscript.NewTxSigHashes(tx, fetcher)
	for i, in := range inputs {
		key, err := keys.PrivateKey(domain.ChainBitcoin, in.Index)
		if err != nil {
			return nil, err
		}
		w, err := txscript.WitnessSignature(tx, hashes, i, in.Sat, scripts[i], txscript.SigHashAll, key, true)
		if err != nil {
			return nil, fmt.Errorf("custody: sign input %d: %w", i, err)
		}
		tx.TxIn[i].Witness = w
	}
	for i, in := range inputs {
		vm, err := txscript.NewEngine(scripts[i], tx, i, txscript.StandardVerifyFlags, nil, hashes, in.Sat, fetcher)
		if err == nil {
			err = vm.Execute()
		}
		if err != nil {
			return nil, fmt.Errorf("custody: input %d does not verify: %w", i, err)
		}
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// bitcoinDust is the dust limit of a P2WPKH output (chain/btc.DustLimit):
// change below it is left to the miners.
const bitcoinDust = 546

// signBitcoin signs a payout: Bitcoin pays from deposit and change
// outputs directly, so there are no sweeps to sign.
func (p *Policy) signBitcoin(ctx context.Context, req Request) ([]byte, error) {
	if req.Purpose != PurposePayout {
		return nil, refused("a Bitcoin transaction is signed for a payout only, not a %s", req.Purpose)
	}
	tx, err := decodeBitcoin(req)
	if err != nil {
		return nil, err
	}
	sign := func() ([]byte, string, error) {
		raw, err := signBitcoin(p.cfg.Wallet, tx, req.Inputs)
		if err != nil {
			return nil, "", err
		}
		var signed wire.MsgTx
		if err := signed.Deserialize(bytes.NewReader(raw)); err != nil {
			return nil, "", err
		}
		return raw, signed.TxHash().String(), nil
	}
	return p.payout(ctx, req, func(po domain.PayoutRequested, _ domain.Asset) error { return p.checkBitcoinPayout(tx, req, po) }, sign)
}

// checkBitcoinPayout holds a payout's transaction to its request: one
// output to the requested address, any other to the wallet's change
// address at req.ToIndex. A refund sends exactly the amount (its fee on
// top); any other payout sends the amount less a fee the miners do take
// (inputs − outputs, which may exceed it by dropped change under the dust
// limit, never more).
func (p *Policy) checkBitcoinPayout(tx *wire.MsgTx, req Request, po domain.PayoutRequested) error {
	to, err := btcutil.DecodeAddress(po.ToAddress, p.cfg.BitcoinParams)
	if err != nil {
		return refused("payout %s address %s: %v", po.PayoutID, po.ToAddress, err)
	}
	toScript, err := txscript.PayToAddrScript(to)
	if err != nil {
		return refused("payout %s address %s: %v", po.PayoutID, po.ToAddress, err)
	}
	var change []byte
	if len(tx.TxOut) > 1 {
		if change, err = walletScript(p.cfg.Wallet, req.ToIndex); err != nil {
			return refused("change index %d: %v", req.ToIndex, err)
		}
	}
	var pay, out, in int64
	payees := 0
	for i, o := range tx.TxOut {
		switch {
		case bytes.Equal(o.PkScript, toScript):
			pay += o.Value
			payees++
		case change != nil && bytes.Equal(o.PkScript, change):
		default:
			return refused("payout %s: output %d pays neither %s nor the change address %d", po.PayoutID, i, po.ToAddress, req.ToIndex)
		}
		out += o.Value
	}
	for _, i := range req.Inputs {
		in += i.Sat
	}
	units, err := po.Amount.BaseUnits(8)
	if err != nil || !units.IsInt64() {
		return refused("payout %s amount %s", po.PayoutID, po.Amount)
	}
	amount, fee := units.Int64(), in-out
	switch {
	case payees != 1:
		return refused("payout %s: %d outputs pay %s, want 1", po.PayoutID, payees, po.ToAddress)
	case fee < 0:
		return refused("payout %s: outputs %d sat exceed inputs %d sat", po.PayoutID, out, in)
	case po.Kind == domain.PayoutKindRefund && pay != amount:
		return refused("refund %s sends %d sat, the transaction %d sat", po.PayoutID, amount, pay)
	case po.Kind != domain.PayoutKindRefund && (pay > amount || amount-pay > fee || fee-(amount-pay) >= bitcoinDust):
		return refused("payout %s of %d sat: the transaction sends %d sat with %d sat to the miners; want the amount less that fee", po.PayoutID, amount, pay, fee)
	}
	return nil
}
