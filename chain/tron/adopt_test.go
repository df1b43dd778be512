package tron_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/domain"
)

// recordingSigner signs as a separate signer answers (the signed
// transaction), once per payout: asked again for a payout, it gives the
// transaction it signed first, whatever is asked, as custody.Policy does.
// Its first answer for a payout is lost (the connection breaks after the
// signature, or picd serve dies before recording it). earlier, when set,
// replaces what it signs for a payout.
type recordingSigner struct {
	local   custody.Local
	mu      sync.Mutex
	signed  map[string][]byte
	earlier func(req custody.Request) custody.Request
}

var errLost = errors.New("signer: the answer was lost")

func (r *recordingSigner) Sign(ctx context.Context, req custody.Request) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Purpose == custody.PurposePayout {
		if prior, ok := r.signed[req.PayoutID]; ok {
			return prior, nil
		}
		if r.earlier != nil {
			req = r.earlier(req)
		}
	}
	sig, err := r.local.Sign(ctx, req)
	if err != nil || req.Purpose != custody.PurposePayout {
		return custody.SignedTron(req.Unsigned, sig), err
	}
	r.signed[req.PayoutID] = custody.SignedTron(req.Unsigned, sig)
	return nil, errLost
}

// A TRON payout whose signature was lost is built again (another
// reference block and expiration); the signer answers with the
// transaction it signed first, which the sender checks (from the hot
// wallet, to the payout's address, the amount less its fee) and takes as
// the payout's: that transaction id is recorded and broadcast. One the
// signer signed to another address is not taken.
func TestBuildAdoptsTheSignersEarlierPayout(t *testing.T) {
	for _, asset := range []string{"TRX", "USDT.TRON"} {
		t.Run(asset, func(t *testing.T) {
			e := setup(t, tron.Config{})
			signer := &recordingSigner{local: custody.Local{Keys: e.wallet}, signed: map[string][]byte{}}
			s, err := tron.NewSender(tron.SenderConfig{Prices: fixedPrices{}, Logger: quiet, Signer: signer}, e.client, e.wallet, e.db, e.assets)
			if err != nil {
				t.Fatal(err)
			}
			e.node.fund(mustAddr(t, s.HotWalletAddress()), 500_000_000, 100_000_000)
			a, _ := e.assets.Lookup(asset)
			payee, _ := crypto.GenerateKey()
			to := tron.EncodeAddress(keyAddress(payee))
			e.node.fund(keyAddress(payee), 1, 0)
			po := chain.PayoutToSend{PayoutID: "po_" + a.Code, MerchantID: "m", Asset: a, ToAddress: to, Amount: domain.MustAmount("10")}
			if _, err := s.Build(e.ctx, po); !errors.Is(err, errLost) {
				t.Fatalf("first build: %v, want the lost answer", err)
			}
			raw, _, err := tron.UnmarshalTransaction(signer.signed[po.PayoutID])
			if err != nil {
				t.Fatal(err)
			}
			first := tron.TxID(raw)
			e.node.mine(2) // another reference block
			tx, err := s.Build(e.ctx, po)
			if err != nil {
				t.Fatalf("build again: %v", err)
			}
			if tx.TxID != first {
				t.Fatalf("built %s, the signer signed %s", tx.TxID, first)
			}
			var recorded string
			if err := e.db.Read.QueryRow(e.db.Q(`SELECT txid FROM tron_payout_txs WHERE payout_id = ?`), po.PayoutID).Scan(&recorded); err != nil || recorded != first {
				t.Fatalf("tron_payout_txs: %s %v, want %s", recorded, err, first)
			}
			if err := s.Broadcast(e.ctx, tx); err != nil || !e.node.verifiedTx(first) {
				t.Fatalf("broadcast: %v (verified %v)", err, e.node.verifiedTx(first))
			}

			// Signed, before, to another address: not the payout's.
			thief, _ := crypto.GenerateKey()
			signer.earlier = func(req custody.Request) custody.Request {
				r, err := tron.UnmarshalRawTx(req.Unsigned)
				if err != nil {
					t.Fatal(err)
				}
				c := r.Contracts[0]
				if a.Native() {
					tr, _ := tron.UnmarshalTransfer(c.Value)
					tr.To = keyAddress(thief)
					c.Value = tr.Marshal()
				} else {
					call, _ := tron.UnmarshalTrigger(c.Value)
					copy(call.Data[4+12:4+32], keyAddress(thief)[1:])
					c.Value = call.Marshal()
				}
				r.Contracts[0] = c
				req.Unsigned = r.Marshal()
				return req
			}
			other := po
			other.PayoutID += "_2"
			if _, err := s.Build(e.ctx, other); !errors.Is(err, errLost) {
				t.Fatalf("first build: %v", err)
			}
			if _, err := s.Build(e.ctx, other); err == nil || !strings.Contains(err.Error(), "an operator must look") || errors.Is(err, chain.ErrPermanent) {
				t.Fatalf("an earlier transaction to another address: %v, want it left to an operator", err)
			}
			var n int
			if err := e.db.Read.QueryRow(e.db.Q(`SELECT count(*) FROM tron_payout_txs WHERE payout_id = ?`), other.PayoutID).Scan(&n); err != nil || n != 0 {
				t.Fatalf("recorded %d %v", n, err)
			}
		})
	}
}
