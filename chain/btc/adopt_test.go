package btc

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// lossySigner signs once per payout, as custody.Policy does (asked again,
// it gives the transaction it signed first, whatever is asked), and its
// first answer for a payout is lost: the connection broke after the
// signature, or picd serve died before recording it. tamper, when set,
// changes what it signs for a payout the first time.
type lossySigner struct {
	local  custody.Local
	mu     sync.Mutex
	signed map[string][]byte
	tamper func(*wire.MsgTx)
}

var errLost = errors.New("signer: the answer was lost")

func (l *lossySigner) Sign(ctx context.Context, req custody.Request) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if prior, ok := l.signed[req.PayoutID]; ok {
		return prior, nil
	}
	if l.tamper != nil {
		var tx wire.MsgTx
		if err := tx.DeserializeNoWitness(bytes.NewReader(req.Unsigned)); err != nil {
			return nil, err
		}
		l.tamper(&tx)
		var err error
		if req.Unsigned, err = custody.UnsignedBitcoin(&tx); err != nil {
			return nil, err
		}
	}
	raw, err := l.local.Sign(ctx, req)
	if err != nil {
		return nil, err
	}
	l.signed[req.PayoutID] = raw
	return nil, errLost
}

func (g *walletGateway) lossySender(signer custody.Signer) *Sender {
	g.t.Helper()
	s, err := NewSender(SenderConfig{Config: Config{RPCHost: g.node.rpcHost, RPCUser: "test", RPCPass: "test", Params: g.node.params}},
		SenderDeps{DB: g.db, Keys: g.wallet, Invoices: g.store, Change: commands.NewIndexAllocator(g.deps, g.wallet.Deriver()),
			Assets: domain.DefaultAssets(), Log: testLog(), Signer: signer})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(s.Close)
	return s
}

// A Bitcoin payout whose signature was lost is built again by a new
// process after a larger deposit became final: largest first, it would
// spend that deposit, but the signer answers with the transaction it
// signed first. The sender checks it (our outputs, valid signatures, the
// payout's address paid the amount less the fee, the payout's own change
// address) and takes it: those inputs are locked, its change pending, and
// that transaction id is broadcast and confirms, once; the larger deposit
// stays available. An earlier transaction paying someone else is not
// taken, and locks nothing.
func TestBuildAdoptsTheSignersEarlierPayout(t *testing.T) {
	g := newWalletGateway(t)
	g.fund("0.01", "0.02")
	signer := &lossySigner{local: custody.Local{Keys: g.wallet}, signed: map[string][]byte{}}
	p := btcPayout(t, "po_lost", outsider(t), "0.015")
	if _, err := g.lossySender(signer).Build(g.ctx, p); !errors.Is(err, errLost) {
		t.Fatalf("first build: %v, want the lost answer", err)
	}
	var first wire.MsgTx
	if err := first.Deserialize(bytes.NewReader(signer.signed[p.PayoutID])); err != nil {
		t.Fatal(err)
	}
	g.fund("0.05")
	s := g.lossySender(signer) // a restarted process
	signed, err := s.Build(g.ctx, p)
	if err != nil {
		t.Fatalf("build again: %v", err)
	}
	if signed.TxID != first.TxHash().String() || len(signed.Inputs) != 1 || signed.Inputs[0] != first.TxIn[0].PreviousOutPoint.String() {
		t.Fatalf("built %+v, the signer signed %s", signed, first.TxHash())
	}
	if pay := paidTo(t, &first, p.ToAddress); pay+sat(t, signed.NetworkFee.String()) != sat(t, "0.015") {
		t.Fatalf("pays %d sat with a fee of %s", pay, signed.NetworkFee)
	}
	locked, err := s.utxos(g.ctx, `payout_id = ? AND state = ?`, p.PayoutID, utxoLocked)
	if err != nil || len(locked) != 1 || locked[0].sat != sat(t, "0.02") {
		t.Fatalf("locked for the payout: %+v %v", locked, err)
	}
	if change, err := s.utxos(g.ctx, `payout_id = ? AND source = 'change' AND state = ?`, p.PayoutID, utxoPending); err != nil || len(change) != 1 {
		t.Fatalf("pending change: %+v %v", change, err)
	}
	if again, err := s.Build(g.ctx, p); err != nil || again.TxID != signed.TxID {
		t.Fatalf("built a third time: %+v %v", again, err)
	}
	if err := s.Broadcast(g.ctx, signed); err != nil {
		t.Fatal(err)
	}
	g.node.mine(t, 1)
	if n, err := s.Confirmations(g.ctx, signed.TxID); err != nil || n != 1 {
		t.Fatalf("confirmations %d %v", n, err)
	}
	avail, err := s.available(g.ctx)
	if err != nil || len(avail) == 0 || avail[0].sat != sat(t, "0.05") {
		t.Fatalf("available after the payout: %+v %v", avail, err)
	}
	for _, u := range avail {
		if u.op == first.TxIn[0].PreviousOutPoint {
			t.Fatalf("the spent %s is available again", u.op)
		}
	}

	// Signed before, but paying someone else: not the payout's.
	thief := outsider(t)
	signer.tamper = func(tx *wire.MsgTx) {
		a, _ := btcutil.DecodeAddress(thief, g.node.params)
		tx.TxOut[0].PkScript, _ = txscript.PayToAddrScript(a)
	}
	other := btcPayout(t, "po_lost_2", outsider(t), "0.01")
	if _, err := s.Build(g.ctx, other); !errors.Is(err, errLost) {
		t.Fatalf("first build: %v", err)
	}
	_, err = g.lossySender(signer).Build(g.ctx, other)
	if err == nil || !strings.Contains(err.Error(), "an operator must look") || errors.Is(err, chain.ErrPermanent) {
		t.Fatalf("an earlier transaction to another address: %v, want it left to an operator", err)
	}
	if held, err := s.utxos(g.ctx, `payout_id = ?`, other.PayoutID); err != nil || len(held) != 0 {
		t.Fatalf("outputs held for the refused transaction: %+v %v", held, err)
	}
}
