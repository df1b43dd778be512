package custody

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/domain"
)

func btcScript(t *testing.T, addr string) []byte {
	t.Helper()
	a, err := btcutil.DecodeAddress(addr, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPolicyBitcoinPayouts(t *testing.T) {
	f := newFixture(t, nil)
	f.policy.cfg.BitcoinParams = &chaincfg.RegressionNetParams
	payeeAddr, _ := f.wallet.Address(domain.ChainBitcoin, 900) // any regtest P2WPKH address
	change, _ := f.wallet.Address(domain.ChainBitcoin, 5)
	stranger := "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
	for _, id := range []string{"po_b1", "po_b2"} {
		f.append(domain.FundsStream(merchant, "BTC"), domain.PayoutRequested{PayoutID: id, MerchantID: merchant, Asset: "BTC", Chain: domain.ChainBitcoin,
			Decimals: 8, Amount: domain.MustAmount("0.1"), ToAddress: payeeAddr, Kind: domain.PayoutKindWithdrawal})
	}
	// Inputs: 0.3 BTC on index 2; 0.1 BTC pays 0.1 − 1000 sat fee, 0.2 change.
	build := func(outs map[string]int64) (Request, *wire.MsgTx) {
		tx := wire.NewMsgTx(2)
		tx.AddTxIn(wire.NewTxIn(&wire.OutPoint{Hash: chainhash.Hash{1}, Index: 0}, nil, nil))
		for _, addr := range []string{payeeAddr, change, stranger} {
			if v, ok := outs[addr]; ok {
				tx.AddTxOut(wire.NewTxOut(v, btcScript(t, addr)))
			}
		}
		u, _ := UnsignedBitcoin(tx)
		return Request{Chain: domain.ChainBitcoin, Purpose: PurposePayout, MerchantID: merchant, Asset: "BTC", ToIndex: 5,
			Inputs: []Input{{Index: 2, Sat: 30_000_000}}, Unsigned: u}, tx
	}
	for name, c := range map[string]struct {
		outs map[string]int64
		want string
	}{
		"change to a stranger":      {map[string]int64{payeeAddr: 9_999_000, stranger: 20_000_000}, "neither"},
		"more than the amount":      {map[string]int64{payeeAddr: 10_000_001, change: 19_990_000}, "want the amount less"},
		"a fee above the deduction": {map[string]int64{payeeAddr: 9_999_000, change: 19_000_000}, "want the amount less"},
		"no output to the payee":    {map[string]int64{change: 29_999_000}, "neither"},
	} {
		req, _ := build(c.outs)
		req.PayoutID = "po_b1"
		if _, err := f.policy.Sign(context.Background(), req); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want refused with %q", name, err, c.want)
		}
	}
	req, unsigned := build(map[string]int64{payeeAddr: 9_999_000, change: 20_000_000})
	req.PayoutID = "po_b1"
	raw, err := f.policy.Sign(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	var signed wire.MsgTx
	if err := signed.Deserialize(bytes.NewReader(raw)); err != nil || signed.TxHash() != unsigned.TxHash() || len(signed.TxIn[0].Witness) != 2 {
		t.Fatalf("signed %v: %s, want the asked transaction %s with a witness", err, signed.TxHash(), unsigned.TxHash())
	}
	// A payout of BTC is not swept, and a payout's change must be its own.
	req.Purpose, req.PayoutID = PurposeSweep, "po_b2"
	if _, err := f.policy.Sign(context.Background(), req); !errors.Is(err, ErrRefused) {
		t.Fatalf("a Bitcoin sweep: %v", err)
	}
}
