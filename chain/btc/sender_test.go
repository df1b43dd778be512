package btc

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// walletGateway is the gateway of gateway_test.go with its HD wallet kept,
// so payouts can be signed, and payouts configured (credits from the
// balances read model).
type walletGateway struct {
	*gateway
	wallet *hd.Wallet
	deps   commands.Deps
}

var segwitOnce sync.Once

// activateSegwit mines the shared node past segwit's activation (BIP-9 on
// regtest: three windows of 144 blocks), once; the mature coinbases of
// those blocks join the node's spendable coins.
func activateSegwit(t *testing.T, n *btcdNode) {
	t.Helper()
	segwitOnce.Do(func() {
		const height = 4*144 + 100
		tip := n.tip(t)
		if tip >= height {
			return
		}
		hashes := n.mine(t, uint32(height-tip))
		for _, h := range hashes[:len(hashes)-100] {
			blk, err := n.client.GetBlock(h)
			if err != nil {
				t.Fatal(err)
			}
			cb := blk.Transactions[0]
			n.coins = append(n.coins, coin{op: wire.OutPoint{Hash: cb.TxHash(), Index: 0}, value: cb.TxOut[0].Value})
		}
	})
	info, err := n.client.GetBlockChainInfo()
	if err != nil {
		t.Fatal(err)
	}
	if info.SoftForks != nil {
		if sf, ok := info.SoftForks.Bip9SoftForks["segwit"]; ok && sf.Status != "active" {
			t.Fatalf("segwit is %s at height %d", sf.Status, info.Blocks)
		}
	}
}

func newWalletGateway(t *testing.T) *walletGateway {
	t.Helper()
	return newWalletGatewayOn(t, func(store *sqlite.Store) sqldb.DB {
		return sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	})
}

func newWalletGatewayOn(t *testing.T, readDB func(*sqlite.Store) sqldb.DB) *walletGateway {
	t.Helper()
	n := testNode(t)
	activateSegwit(t, n)
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	g := &gateway{t: t, ctx: ctx, node: n, store: store, clock: time.Now().UTC()}
	g.db = readDB(store)
	for _, m := range []func(context.Context, sqldb.DB) error{projections.Migrate, Migrate, chain.Migrate} {
		if err := m(ctx, g.db); err != nil {
			t.Fatal(err)
		}
	}
	mnemonic, err := hd.GenerateMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wallet, err := hd.NewWallet(mnemonic, "", n.params)
	if err != nil {
		t.Fatal(err)
	}
	g.reader = readapi.NewSQL(g.db)
	now := func() time.Time { return g.clock }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: now, NewID: commands.NewIDGenerator(now),
		Credits: readapi.Credits{SQL: g.reader}}
	g.h = commands.New(d, commands.NewIndexAllocator(d, wallet.Deriver()), hd.AddressCheck(n.params))
	g.runner = projections.NewRunner(store, g.db, testLog())
	g.sink = chain.Sink{Commands: g.h, Addresses: g.reader}
	m, err := g.h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: "reg", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	g.merchant = m.MerchantID
	g.w = g.watcher(n.tip(t) + 1)
	return &walletGateway{gateway: g, wallet: wallet, deps: d}
}

// sender builds a payout sender on the gateway's database (a second one
// models a second process, or a restart). Its change allocator is its own,
// as another process's would be: both take index blocks from the log.
func (g *walletGateway) sender() *Sender {
	g.t.Helper()
	s, err := NewSender(SenderConfig{Config: Config{RPCHost: g.node.rpcHost, RPCUser: "test", RPCPass: "test", Params: g.node.params}},
		SenderDeps{DB: g.db, Keys: g.wallet, Invoices: g.store, Change: commands.NewIndexAllocator(g.deps, g.wallet.Deriver()),
			Assets: domain.DefaultAssets(), Log: testLog()})
	if err != nil {
		g.t.Fatal(err)
	}
	g.t.Cleanup(s.Close)
	return s
}

// fund pays one invoice per amount and mines until the watcher makes them
// final: the merchant's money is available and the hot wallet, which
// spends only final deposits, holds those outputs.
func (g *walletGateway) fund(amounts ...string) {
	g.t.Helper()
	var pays []payment
	for _, a := range amounts {
		inv := g.newInvoice(a)
		pays = append(pays, payment{inv.PayAddress, sat(g.t, a)})
	}
	g.node.pay(g.t, feeSat, pays...)
	g.scan()
	g.node.mine(g.t, uint32(g.w.finality))
	g.scan()
}

// outsider is a fresh address of nobody in this test (P2WPKH).
func outsider(t *testing.T) string {
	k, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	a, err := hd.BitcoinAddress(k.PubKey(), testNodeParams())
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func btcPayout(t *testing.T, id, to, amount string) chain.PayoutToSend {
	a, err := domain.DefaultAssets().Lookup("BTC")
	if err != nil {
		t.Fatal(err)
	}
	return chain.PayoutToSend{PayoutID: id, Asset: a, ToAddress: to, Amount: domain.MustAmount(amount)}
}

// onChain fetches a mined or mempool transaction from the node.
func (g *walletGateway) onChain(txid string) *wire.MsgTx {
	g.t.Helper()
	h, err := chainhash.NewHashFromStr(txid)
	if err != nil {
		g.t.Fatal(err)
	}
	tx, err := g.node.client.GetRawTransaction(h)
	if err != nil {
		g.t.Fatalf("getrawtransaction %s: %v", txid, err)
	}
	return tx.MsgTx()
}

// paidTo sums the outputs of tx to addr.
func paidTo(t *testing.T, tx *wire.MsgTx, addr string) int64 {
	a, err := btcutil.DecodeAddress(addr, testNodeParams())
	if err != nil {
		t.Fatal(err)
	}
	script, _ := txscript.PayToAddrScript(a)
	var v int64
	for _, o := range tx.TxOut {
		if string(o.PkScript) == string(script) {
			v += o.Value
		}
	}
	return v
}

// inputValue sums what tx spends, from the node.
func (g *walletGateway) inputValue(tx *wire.MsgTx) int64 {
	g.t.Helper()
	var v int64
	for _, in := range tx.TxIn {
		prev, err := g.node.client.GetRawTransaction(&in.PreviousOutPoint.Hash)
		if err != nil {
			g.t.Fatal(err)
		}
		v += prev.MsgTx().TxOut[in.PreviousOutPoint.Index].Value
	}
	return v
}

func TestSenderPayoutConfirms(t *testing.T) {
	g := newWalletGateway(t)
	g.fund("0.01", "0.02")
	s := g.sender()
	to := outsider(t)
	p := btcPayout(t, "po_1", to, "0.015")

	signed, err := s.Build(g.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(signed.Inputs) != 1 || !signed.NetworkFee.IsPositive() || signed.Nonce != nil {
		t.Fatalf("signed %+v: want the one 0.02 input (largest first) and a fee", signed)
	}
	// Broadcast is idempotent: twice is success, and so is after mining.
	for i := 0; i < 2; i++ {
		if err := s.Broadcast(g.ctx, signed); err != nil {
			t.Fatalf("broadcast %d: %v", i, err)
		}
	}
	if n, err := s.Confirmations(g.ctx, signed.TxID); err != nil || n != 0 {
		t.Fatalf("in the mempool: %d confirmations, %v", n, err)
	}
	g.node.mine(t, 1)
	if err := s.Broadcast(g.ctx, signed); err != nil {
		t.Fatalf("broadcast after mining: %v", err)
	}
	if n, err := s.Confirmations(g.ctx, signed.TxID); err != nil || n != 1 {
		t.Fatalf("mined: %d confirmations, %v", n, err)
	}

	// On chain: the recipient got amount − fee exactly, the fee is exactly
	// what the network took, and the change went to a fresh HD address.
	tx := g.onChain(signed.TxID)
	fee, _ := signed.NetworkFee.BaseUnits(8)
	if got, want := paidTo(t, tx, to), sat(t, "0.015")-fee.Int64(); got != want {
		t.Fatalf("recipient got %d sat, want %d", got, want)
	}
	var out int64
	for _, o := range tx.TxOut {
		out += o.Value
	}
	if taken := g.inputValue(tx) - out; taken != fee.Int64() {
		t.Fatalf("network took %d sat, recorded fee %d", taken, fee.Int64())
	}
	if len(tx.TxOut) != 2 || tx.TxOut[1].Value != sat(t, "0.02")-sat(t, "0.015") {
		t.Fatalf("outputs %+v: want the change 0.005 as output 1", tx.TxOut)
	}
	if _, err := txscript.ParsePkScript(tx.TxOut[1].PkScript); err != nil {
		t.Fatal(err)
	}

	// The change is spendable once mined: the next payout can use it.
	bal, err := s.WalletBalance(g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bal[utxoPending] != sat(t, "0.005") || bal[utxoAvailable] != sat(t, "0.01") {
		t.Fatalf("wallet before sync %v", bal)
	}
	second, err := s.Build(g.ctx, btcPayout(t, "po_2", to, "0.0149"))
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Inputs) != 2 || slices.Contains(second.Inputs, signed.Inputs[0]) {
		t.Fatalf("second payout inputs %v: want the 0.01 deposit and the 0.005 change", second.Inputs)
	}
	if err := s.Broadcast(g.ctx, second); err != nil {
		t.Fatal(err)
	}
	g.node.mine(t, 1)
	if n, err := s.Confirmations(g.ctx, second.TxID); err != nil || n != 1 {
		t.Fatalf("second: %d confirmations, %v", n, err)
	}
}

// The hot wallet spends only final deposits: a confirmed one that a reorg
// could still undo is counted as still confirming (a temporary refusal),
// and spent once final.
func TestSenderSpendsOnlyFinalDeposits(t *testing.T) {
	g := newWalletGateway(t)
	inv := g.newInvoice("0.01")
	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	g.node.mine(t, 2)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPaid, "0.01")
	s := g.sender()
	if _, err := s.Build(g.ctx, btcPayout(t, "po_early", outsider(t), "0.005")); err == nil || errors.Is(err, chain.ErrPermanent) {
		t.Fatalf("build from a confirmed, not final deposit: %v, want a temporary refusal", err)
	}
	g.node.mine(t, uint32(g.w.finality-2))
	g.scan()
	if _, err := s.Build(g.ctx, btcPayout(t, "po_final", outsider(t), "0.005")); err != nil {
		t.Fatalf("build from a final deposit: %v", err)
	}
}

func TestSenderRefusesPermanently(t *testing.T) {
	g := newWalletGateway(t)
	g.fund("0.01")
	s := g.sender()
	for name, p := range map[string]chain.PayoutToSend{
		"insufficient":      btcPayout(t, "po_big", outsider(t), "0.02"),
		"bad address":       btcPayout(t, "po_addr", "bcrt1qnotanaddress", "0.001"),
		"mainnet address":   btcPayout(t, "po_main", "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq", "0.001"),
		"fee above amount":  btcPayout(t, "po_tiny", outsider(t), "0.00001"),
		"too many decimals": btcPayout(t, "po_dec", outsider(t), "0.000000001"),
	} {
		if _, err := s.Build(g.ctx, p); !errors.Is(err, chain.ErrPermanent) {
			t.Errorf("%s: %v, want ErrPermanent", name, err)
		}
	}
	// Nothing was locked by the refusals: the whole deposit still pays.
	if _, err := s.Build(g.ctx, btcPayout(t, "po_all", outsider(t), "0.01")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Build(g.ctx, btcPayout(t, "po_more", outsider(t), "0.001")); !errors.Is(err, chain.ErrPermanent) {
		t.Fatalf("a second payout from an empty wallet: %v", err)
	}
}

// Two processes (two senders on one database) build payouts at the same
// time: no output is spent twice, and both transactions confirm.
func TestSenderConcurrentBuildsShareNoInput(t *testing.T) {
	testConcurrentBuilds(t, newWalletGateway(t))
}

// The same with the wallet's tables on Postgres, where the two senders'
// locking transactions really run at the same time.
func TestSenderConcurrentBuildsShareNoInputPostgres(t *testing.T) {
	testConcurrentBuilds(t, newWalletGatewayOn(t, func(*sqlite.Store) sqldb.DB { return postgresDB(t) }))
}

func testConcurrentBuilds(t *testing.T, g *walletGateway) {
	g.fund("0.01", "0.01", "0.01", "0.01")
	senders := []*Sender{g.sender(), g.sender()}
	const perSender = 2
	var wg sync.WaitGroup
	results := make([][]chain.Signed, len(senders))
	errs := make([]error, len(senders))
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perSender; j++ {
				signed, err := s.Build(g.ctx, btcPayout(t, fmt.Sprintf("po_%d_%d", i, j), outsider(t), "0.006"))
				if err != nil {
					errs[i] = err
					return
				}
				results[i] = append(results[i], signed)
			}
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for i, rs := range results {
		if errs[i] != nil {
			t.Fatalf("sender %d: %v", i, errs[i])
		}
		for _, r := range rs {
			for _, in := range r.Inputs {
				if other, dup := seen[in]; dup {
					t.Fatalf("input %s spent by %s and %s", in, other, r.TxID)
				}
				seen[in] = r.TxID
			}
			if err := senders[i].Broadcast(g.ctx, r); err != nil {
				t.Fatalf("broadcast %s: %v", r.TxID, err)
			}
		}
	}
	if len(seen) != 4 {
		t.Fatalf("%d inputs used, want the 4 deposits", len(seen))
	}
	g.node.mine(t, 1)
	for _, rs := range results {
		for _, r := range rs {
			if n, err := senders[0].Confirmations(g.ctx, r.TxID); err != nil || n != 1 {
				t.Fatalf("%s: %d confirmations, %v", r.TxID, n, err)
			}
		}
	}
}

// The process stops after Build and before PayoutSigned: the payout is
// built again after the restart. It gets the same transaction (same
// inputs), and another payout does not touch those inputs.
func TestSenderRebuildAfterCrash(t *testing.T) {
	g := newWalletGateway(t)
	g.fund("0.01", "0.01")
	to := outsider(t)
	first, err := g.sender().Build(g.ctx, btcPayout(t, "po_crash", to, "0.008"))
	if err != nil {
		t.Fatal(err)
	}
	restarted := g.sender()
	again, err := restarted.Build(g.ctx, btcPayout(t, "po_crash", to, "0.008"))
	if err != nil {
		t.Fatal(err)
	}
	if again.TxID != first.TxID || again.Raw != first.Raw || !slices.Equal(again.Inputs, first.Inputs) || !again.NetworkFee.Equal(first.NetworkFee) {
		t.Fatalf("rebuilt %+v, first %+v", again, first)
	}
	other, err := restarted.Build(g.ctx, btcPayout(t, "po_other", to, "0.008"))
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range other.Inputs {
		if slices.Contains(first.Inputs, in) {
			t.Fatalf("the other payout spends %s of the crashed one", in)
		}
	}
	// A third has nothing spendable: both deposits are taken, and their
	// change is not in a block yet, so it is told to retry later.
	if _, err := restarted.Build(g.ctx, btcPayout(t, "po_third", to, "0.001")); err == nil || errors.Is(err, chain.ErrPermanent) {
		t.Fatalf("third: %v, want a temporary error", err)
	}
	for _, s := range []chain.Signed{again, other} {
		if err := restarted.Broadcast(g.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

// A payout whose input was spent by another transaction can never
// confirm: Broadcast says so permanently and releases the other input.
func TestSenderBroadcastOfDoubleSpentInputsIsPermanent(t *testing.T) {
	g := newWalletGateway(t)
	g.fund("0.01", "0.004")
	s := g.sender()
	signed, err := s.Build(g.ctx, btcPayout(t, "po_ds", outsider(t), "0.012"))
	if err != nil {
		t.Fatal(err)
	}
	if len(signed.Inputs) != 2 {
		t.Fatalf("inputs %v", signed.Inputs)
	}
	// Someone with the key (a leaked key, another wallet on the seed)
	// spends the 0.01 deposit first.
	u, err := s.utxos(g.ctx, `outpoint = ?`, signed.Inputs[0])
	if err != nil || len(u) != 1 {
		t.Fatalf("utxo %v %v", u, err)
	}
	g.spendElsewhere(u[0])
	g.node.mine(t, 1)
	err = s.Broadcast(g.ctx, signed)
	if !errors.Is(err, chain.ErrPermanent) {
		t.Fatalf("broadcast: %v, want ErrPermanent", err)
	}
	bal, err := s.WalletBalance(g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bal[utxoAvailable] != sat(t, "0.004") || bal[utxoLocked] != 0 || bal[utxoMissing] != sat(t, "0.01") {
		t.Fatalf("wallet after the failed payout %v", bal)
	}
}

// spendElsewhere sends u to the miner with the wallet's key.
func (g *walletGateway) spendElsewhere(u utxo) {
	g.t.Helper()
	key, err := g.wallet.PrivateKey(domain.ChainBitcoin, u.index)
	if err != nil {
		g.t.Fatal(err)
	}
	a, _ := btcutil.DecodeAddress(u.address, g.node.params)
	script, _ := txscript.PayToAddrScript(a)
	tx := wire.NewMsgTx(2)
	tx.AddTxIn(wire.NewTxIn(&u.op, nil, nil))
	tx.AddTxOut(wire.NewTxOut(u.sat-feeSat, g.node.minerScript))
	fetch := txscript.NewCannedPrevOutputFetcher(script, u.sat)
	w, err := txscript.WitnessSignature(tx, txscript.NewTxSigHashes(tx, fetch), 0, u.sat, script, txscript.SigHashAll, key, true)
	if err != nil {
		g.t.Fatal(err)
	}
	tx.TxIn[0].Witness = w
	g.node.send(g.t, tx)
}

// End to end: an invoice paid on the node, a withdrawal requested, and the
// payout processor driving it with the real sender from requested to
// confirmed; the ledger then audits clean.
func TestProcessorPaysOutOnRegtest(t *testing.T) {
	g := newWalletGateway(t)
	g.fund("0.01")
	g.wantBalance("0.009975", "0")
	to := outsider(t)
	res, err := g.h.RequestPayout.Handle(g.ctx, commands.RequestPayout{CommandID: "wd-1", MerchantID: g.merchant, Asset: "BTC",
		ToAddress: to, Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	s := g.sender()
	proc := chain.NewProcessor(g.store, g.db, g.h, domain.DefaultAssets(), []chain.Sender{s},
		chain.ProcessorConfig{Now: time.Now, PollInterval: time.Millisecond, RetryBase: time.Millisecond, Logger: testLog()})
	if err := proc.CatchUp(g.ctx); err != nil {
		t.Fatal(err)
	}
	step := func() readapi.Payout {
		t.Helper()
		if _, err := proc.Pass(g.ctx); err != nil {
			t.Fatal(err)
		}
		g.catchUp()
		po, err := g.reader.PayoutByID(g.ctx, g.merchant, res.Payout.PayoutID)
		if err != nil {
			t.Fatal(err)
		}
		return po
	}
	po := step()
	if po.Status != domain.PayoutSentStatus || po.TxID == "" {
		t.Fatalf("after one pass: %+v", po)
	}
	g.node.mine(t, 1)
	time.Sleep(2 * time.Millisecond)
	if po = step(); po.Status != domain.PayoutSentStatus {
		t.Fatalf("one confirmation of two: %s", po.Status)
	}
	g.node.mine(t, 1)
	time.Sleep(2 * time.Millisecond)
	if po = step(); po.Status != domain.PayoutConfirmedStatus {
		t.Fatalf("two confirmations: %+v", po)
	}
	fee, _ := po.NetworkFee.BaseUnits(8)
	if got, want := paidTo(t, g.onChain(po.TxID), to), sat(t, "0.009975")-fee.Int64(); got != want || po.Sent.String() != sats(want).String() {
		t.Fatalf("recipient got %d sat, the payout says sent %s; want %d", got, po.Sent, want)
	}
	g.wantBalance("0", "0")
	g.audit()
}

// A payout that ended before its transaction was recorded (canceled or
// failed after its build) gives its inputs back: Release unlocks them and
// voids the change, and another payout can spend them.
func TestSenderReleaseOfAnUnrecordedBuild(t *testing.T) {
	g := newWalletGateway(t)
	g.fund("0.01")
	s := g.sender()
	if _, err := s.Build(g.ctx, btcPayout(t, "po_canceled", outsider(t), "0.004")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Build(g.ctx, btcPayout(t, "po_next", outsider(t), "0.01")); !errors.Is(err, chain.ErrPermanent) {
		t.Fatalf("the whole deposit while a build holds it: %v", err)
	}
	for i := 0; i < 2; i++ { // idempotent
		if err := s.Release(g.ctx, "po_canceled"); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Release(g.ctx, "po_never_built"); err != nil {
		t.Fatal(err)
	}
	bal, err := s.WalletBalance(g.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bal[utxoLocked] != 0 || bal[utxoPending] != 0 || bal[utxoAvailable] != sat(t, "0.01") {
		t.Fatalf("after the release: %v", bal)
	}
	if _, err := s.Build(g.ctx, btcPayout(t, "po_next", outsider(t), "0.01")); err != nil {
		t.Fatalf("the whole deposit once released: %v", err)
	}
}
