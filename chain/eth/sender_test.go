package eth_test

import (
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/readapi"
)

// walletEnv is the watcher's test environment with invoice addresses from
// a real HD wallet, so the sender holds their keys.
type walletEnv struct {
	*env
	wallet *hd.Wallet
}

func setupWallet(t *testing.T, opts ...option) *walletEnv {
	t.Helper()
	mnemonic, err := hd.GenerateMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	wallet, err := hd.NewWallet(mnemonic, "", &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, append(opts, func(o *setupOptions) {
		o.addresses = func(_ *env, d commands.Deps) commands.AddressSource {
			return commands.NewIndexAllocator(d, wallet.Deriver())
		}
	})...)
	// The chain's shared tables (unmatched deposits the sweeper reads), as
	// picd migrates them.
	if err := chain.Migrate(e.ctx, e.db); err != nil {
		t.Fatal(err)
	}
	return &walletEnv{env: e, wallet: wallet}
}

// sender builds a sender on the environment's database; another one
// models another process or a restart.
func (e *walletEnv) sender() *eth.Sender {
	e.t.Helper()
	s, err := eth.NewSender(eth.SenderConfig{Contracts: e.cfg.Contracts, Now: time.Now}, e.client,
		eth.SenderDeps{DB: e.db, Keys: e.wallet, Invoices: e.store, Assets: e.assets, Log: quiet, Costs: chain.RecordCostWith(e.h.RecordNetworkCost)})
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// costs reads the NetworkCostPaid events of the log: kind → total wei,
// and how many events.
func (e *walletEnv) costs() (map[string]*big.Int, int) {
	e.t.Helper()
	out := map[string]*big.Int{}
	n := 0
	recs, err := e.store.ReadAll(e.ctx, eventstore.Start, 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range recs {
		if r.Type != domain.TypeNetworkCostPaid {
			continue
		}
		ev, err := domain.DecodeStored(r.Type, r.Data, r.Metadata)
		if err != nil {
			e.t.Fatal(err)
		}
		c := ev.(domain.NetworkCostPaid)
		if err := domain.CheckBalanced(c.Postings); err != nil || c.Asset != "ETH" {
			e.t.Fatalf("cost %+v: %v", c, err)
		}
		wei, err := c.Amount.BaseUnits(18)
		if err != nil {
			e.t.Fatal(err)
		}
		if out[c.Kind] == nil {
			out[c.Kind] = new(big.Int)
		}
		out[c.Kind].Add(out[c.Kind], wei)
		n++
	}
	return out, n
}

// fundHot sends the hot wallet ETH and tokens from the payer and mines them.
func (e *walletEnv) fundHot(s *eth.Sender, ethAmount, usdt string) {
	e.t.Helper()
	hot := s.HotWallet()
	if ethAmount != "" {
		e.signedTx(&hot, units(e.t, ethAmount, 18), 21_000, nil)
	}
	if usdt != "" {
		e.signedTx(&e.token, big.NewInt(0), 300_000, transferData(hot, units(e.t, usdt, 6)))
	}
	e.mine(1)
}

// commitTxs mines one block once the pool has every transaction.
func (e *walletEnv) commitTxs(txids ...string) {
	e.t.Helper()
	for _, id := range txids {
		for i := 0; ; i++ {
			_, pending, err := e.client.TransactionByHash(e.ctx, common.HexToHash(id))
			if err == nil && pending {
				break
			}
			if err == nil && !pending {
				break // already mined
			}
			if i == 500 {
				e.t.Fatalf("transaction %s never reached the pool: %v", id, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// A transaction the pool knows may still sit in its queue until the
	// pool promotes it (asynchronously): wait until they are all pending.
	for i := 0; i < 500; i++ {
		if n, err := e.client.PendingTransactionCount(e.ctx); err == nil && int(n) >= len(txids) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	e.backend.Commit()
}

func (e *walletEnv) tokenBalance(a common.Address) *big.Int {
	e.t.Helper()
	out, err := e.client.CallContract(e.ctx, ethereum.CallMsg{To: &e.token, Data: append(common.FromHex("0x70a08231"), common.LeftPadBytes(a.Bytes(), 32)...)}, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return new(big.Int).SetBytes(out)
}

func (e *walletEnv) balance(a common.Address) *big.Int {
	e.t.Helper()
	b, err := e.client.BalanceAt(e.ctx, a, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *walletEnv) payout(id, asset, to, amount string) chain.PayoutToSend {
	e.t.Helper()
	a, err := e.assets.Lookup(asset)
	if err != nil {
		e.t.Fatal(err)
	}
	return chain.PayoutToSend{PayoutID: id, Asset: a, ToAddress: to, Amount: domain.MustAmount(amount)}
}

func stranger(t *testing.T) common.Address {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return crypto.PubkeyToAddress(k.PublicKey)
}

func TestSenderETHPayout(t *testing.T) {
	e := setupWallet(t)
	s := e.sender()
	e.fundHot(s, "1", "")
	to := stranger(t)
	hotBefore := e.balance(s.HotWallet())

	signed, err := s.Build(e.ctx, e.payout("po_eth", "ETH", to.Hex(), "0.1"))
	if err != nil {
		t.Fatal(err)
	}
	if signed.Nonce == nil || *signed.Nonce != 0 || !signed.NetworkFee.IsPositive() {
		t.Fatalf("signed %+v", signed)
	}
	for i := 0; i < 2; i++ { // the second is "already known": success
		if err := s.Broadcast(e.ctx, signed); err != nil {
			t.Fatalf("broadcast %d: %v", i, err)
		}
	}
	if n, err := s.Confirmations(e.ctx, signed.TxID); err != nil || n != 0 {
		t.Fatalf("pending: %d, %v", n, err)
	}
	e.commitTxs(signed.TxID)
	if err := s.Broadcast(e.ctx, signed); err != nil { // mined: "nonce too low", same hash
		t.Fatalf("broadcast after mining: %v", err)
	}
	e.mine(2)
	if n, err := s.Confirmations(e.ctx, signed.TxID); err != nil || n != 3 {
		t.Fatalf("mined: %d, %v", n, err)
	}
	fee, _ := signed.NetworkFee.BaseUnits(18)
	want := new(big.Int).Sub(units(t, "0.1", 18), fee)
	if got := e.balance(to); got.Cmp(want) != 0 {
		t.Fatalf("recipient has %s wei, want 0.1 ETH − fee = %s", got, want)
	}
	// The hot wallet paid at most the amount: the fee recorded is the
	// most the network could take, and what the base fee left is ours.
	spent := new(big.Int).Sub(hotBefore, e.balance(s.HotWallet()))
	if spent.Cmp(units(t, "0.1", 18)) > 0 || spent.Cmp(want) <= 0 {
		t.Fatalf("hot wallet spent %s wei for a 0.1 ETH payout", spent)
	}
}

func TestSenderTokenPayout(t *testing.T) {
	e := setupWallet(t)
	s := e.sender()
	e.fundHot(s, "0.5", "100")
	to := stranger(t)
	signed, err := s.Build(e.ctx, e.payout("po_usdt", "USDT.ETH", to.Hex(), "25.5"))
	if err != nil {
		t.Fatal(err)
	}
	if !signed.NetworkFee.IsZero() || signed.Nonce == nil {
		t.Fatalf("token payout %+v: want a fee of 0 USDT (the gas is booked in ETH)", signed)
	}
	if err := s.Broadcast(e.ctx, signed); err != nil {
		t.Fatal(err)
	}
	e.commitTxs(signed.TxID)
	if n, err := s.Confirmations(e.ctx, signed.TxID); err != nil || n != 1 {
		t.Fatalf("%d, %v", n, err)
	}
	if got := e.tokenBalance(to); got.Cmp(units(t, "25.5", 6)) != 0 {
		t.Fatalf("recipient has %s USDT units", got)
	}
	if got := e.tokenBalance(s.HotWallet()); got.Cmp(units(t, "74.5", 6)) != 0 {
		t.Fatalf("hot wallet has %s USDT units", got)
	}
	var paid string
	if err := e.db.Read.QueryRow(e.db.Q(`SELECT fee_paid_wei FROM eth_txs WHERE txid = ?`), signed.TxID).Scan(&paid); err != nil || paid == "" || paid == "0" {
		t.Fatalf("gas of the token payout not booked: %q %v", paid, err)
	}
}

func TestSenderRefusesPermanently(t *testing.T) {
	e := setupWallet(t)
	s := e.sender()
	to := stranger(t).Hex()
	check := func(name string, p chain.PayoutToSend, contains string) {
		t.Helper()
		_, err := s.Build(e.ctx, p)
		if !errors.Is(err, chain.ErrPermanent) || !strings.Contains(err.Error(), contains) {
			t.Errorf("%s: %v, want ErrPermanent with %q", name, err, contains)
		}
	}
	check("empty hot wallet", e.payout("po_1", "ETH", to, "0.1"), "insufficient hot-wallet funds")
	check("no tokens", e.payout("po_2", "USDT.ETH", to, "1"), "insufficient hot-wallet funds")
	check("bad address", e.payout("po_3", "ETH", "0x1234", "0.1"), "address")
	check("zero address", e.payout("po_4", "ETH", "0x0000000000000000000000000000000000000000", "0.1"), "address")
	check("not ours", e.payout("po_5", "BTC", to, "0.1"), "cannot pay")

	// Tokens but no ETH for gas: a clear message.
	e.signedTx(&e.token, big.NewInt(0), 300_000, transferData(s.HotWallet(), units(t, "10", 6)))
	e.mine(1)
	check("no gas", e.payout("po_6", "USDT.ETH", to, "1"), "insufficient hot-wallet ETH for gas")

	e.fundHot(s, "1", "")
	check("fee above amount", e.payout("po_7", "ETH", to, "0.000000000000001"), "network fee")
	// None of the refusals took a nonce.
	signed, err := s.Build(e.ctx, e.payout("po_ok", "USDT.ETH", to, "1"))
	if err != nil || *signed.Nonce != 0 {
		t.Fatalf("first real payout: %+v %v", signed, err)
	}
}

// Two processes build payouts at once: every nonce is used once, with no
// gap, and every transaction confirms.
func TestSenderConcurrentBuildsShareNoNonce(t *testing.T) { testConcurrentBuilds(t, setupWallet(t)) }

// The same with the sender's tables on Postgres.
func TestSenderConcurrentBuildsShareNoNoncePostgres(t *testing.T) {
	testConcurrentBuilds(t, setupWallet(t, withReadDB(postgresDB)))
}

func testConcurrentBuilds(t *testing.T, e *walletEnv) {
	senders := []*eth.Sender{e.sender(), e.sender()}
	e.fundHot(senders[0], "2", "")
	const perSender = 3
	var mu sync.Mutex
	var all []chain.Signed
	var wg sync.WaitGroup
	errs := make(chan error, len(senders)*perSender)
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < perSender; j++ {
				signed, err := s.Build(e.ctx, e.payout(fmt.Sprintf("po_%d_%d", i, j), "ETH", stranger(t).Hex(), "0.1"))
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				all = append(all, signed)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Broadcast in nonce order: a future nonce waits in the pool's queue and
	// is promoted asynchronously, so it could miss the next block.
	sort.Slice(all, func(i, j int) bool { return *all[i].Nonce < *all[j].Nonce })
	nonces := map[uint64]bool{}
	var ids []string
	for _, s := range all {
		if nonces[*s.Nonce] {
			t.Fatalf("nonce %d used twice", *s.Nonce)
		}
		nonces[*s.Nonce] = true
		if err := senders[0].Broadcast(e.ctx, s); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.TxID)
	}
	for n := uint64(0); n < uint64(len(all)); n++ {
		if !nonces[n] {
			t.Fatalf("nonces %v have a gap at %d", nonces, n)
		}
	}
	e.commitTxs(ids...)
	for _, s := range all {
		if n, err := senders[1].Confirmations(e.ctx, s.TxID); err != nil || n != 1 {
			t.Fatalf("%s: %d %v", s.TxID, n, err)
		}
	}
}

// A crash after Build and before PayoutSigned: the rebuilt payout is the
// same transaction (same nonce, same bytes); the next payout takes the
// next nonce, never this one.
func TestSenderRebuildAfterCrash(t *testing.T) {
	e := setupWallet(t)
	first := e.sender()
	e.fundHot(first, "1", "")
	to := stranger(t).Hex()
	a, err := first.Build(e.ctx, e.payout("po_crash", "ETH", to, "0.2"))
	if err != nil {
		t.Fatal(err)
	}
	restarted := e.sender()
	b, err := restarted.Build(e.ctx, e.payout("po_crash", "ETH", to, "0.2"))
	if err != nil {
		t.Fatal(err)
	}
	if a.TxID != b.TxID || a.Raw != b.Raw || *a.Nonce != *b.Nonce || !a.NetworkFee.Equal(b.NetworkFee) {
		t.Fatalf("rebuilt %+v, first %+v", b, a)
	}
	c, err := restarted.Build(e.ctx, e.payout("po_next", "ETH", to, "0.2"))
	if err != nil {
		t.Fatal(err)
	}
	if *c.Nonce != *a.Nonce+1 {
		t.Fatalf("next payout nonce %d after %d", *c.Nonce, *a.Nonce)
	}
	// Broadcast in the wrong order: the later one waits in the pool for
	// the gap, and both confirm.
	for _, s := range []chain.Signed{c, b} {
		if err := restarted.Broadcast(e.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	e.commitTxs(b.TxID, c.TxID)
	for _, s := range []chain.Signed{b, c} {
		if n, err := restarted.Confirmations(e.ctx, s.TxID); err != nil || n != 1 {
			t.Fatalf("%s: %d %v", s.TxID, n, err)
		}
	}
	// The hot wallet's spendable balance accounts for both.
	if _, err := restarted.Build(e.ctx, e.payout("po_over", "ETH", to, "0.7")); !errors.Is(err, chain.ErrPermanent) {
		t.Fatalf("0.7 ETH after 0.4 of 1 ETH went out: %v", err)
	}
}

// A nonce used by another transaction (the hot wallet's key used
// elsewhere): the payout can never confirm, permanently.
func TestSenderBroadcastNonceTakenIsPermanent(t *testing.T) {
	e := setupWallet(t)
	s := e.sender()
	e.fundHot(s, "1", "")
	signed, err := s.Build(e.ctx, e.payout("po_x", "ETH", stranger(t).Hex(), "0.1"))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := e.wallet.PrivateKey(domain.ChainEthereum, eth.DefaultHotWalletIndex)
	key, _ := crypto.ToECDSA(k.Serialize())
	other := stranger(t)
	head, _ := e.client.HeaderByNumber(e.ctx, nil)
	tip := big.NewInt(1_000_000_000)
	tx, err := types.SignNewTx(key, types.LatestSignerForChainID(e.chainID), &types.DynamicFeeTx{ChainID: e.chainID, Nonce: *signed.Nonce,
		GasTipCap: tip, GasFeeCap: new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip), Gas: 21_000, To: &other, Value: big.NewInt(1)})
	if err != nil {
		t.Fatal(err)
	}
	// The pool takes the funding block in asynchronously: until it has, it
	// sees the hot wallet empty.
	for i := 0; ; i++ {
		err := e.client.SendTransaction(e.ctx, tx)
		if err == nil {
			break
		}
		if i == 200 || !strings.Contains(err.Error(), "insufficient funds") {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.commitTxs(tx.Hash().Hex())
	if err := s.Broadcast(e.ctx, signed); !errors.Is(err, chain.ErrPermanent) {
		t.Fatalf("broadcast: %v, want ErrPermanent", err)
	}
}

// A USDT deposit address has no ETH: its sweep tops up the gas from the
// hot wallet, then sends the tokens home, and records what that cost.
func TestSweepTokenWithGasTopUp(t *testing.T) { testSweepToken(t, setupWallet(t)) }

func TestSweepTokenWithGasTopUpPostgres(t *testing.T) {
	testSweepToken(t, setupWallet(t, withReadDB(postgresDB)))
}

func testSweepToken(t *testing.T, e *walletEnv) {
	s := e.sender()
	e.fundHot(s, "1", "")
	const index = 7
	addrHex, err := e.wallet.Address(domain.ChainEthereum, index)
	if err != nil {
		t.Fatal(err)
	}
	deposit := common.HexToAddress(addrHex)
	e.payUSDT(addrHex, "40")
	e.mine(1)
	if e.balance(deposit).Sign() != 0 {
		t.Fatal("the deposit address has ETH already")
	}
	hotBefore := e.balance(s.HotWallet())

	res, err := s.Sweep(e.ctx, "USDT.ETH", index)
	if err != nil {
		t.Fatal(err)
	}
	if res.State != eth.SweepTopUp || res.TopUpWei.Sign() <= 0 || len(res.TxIDs) != 1 {
		t.Fatalf("first step %+v", res)
	}
	again, err := s.Sweep(e.ctx, "USDT.ETH", index) // nothing mined yet: waits, sends nothing new
	if err != nil || again.State != eth.SweepTopUp || len(again.TxIDs) != 1 {
		t.Fatalf("waiting %+v %v", again, err)
	}
	e.commitTxs(res.TxIDs...)
	res, err = s.Sweep(e.ctx, "USDT.ETH", index)
	if err != nil || res.State != eth.SweepTransfer || len(res.TxIDs) != 2 {
		t.Fatalf("after the top-up %+v %v", res, err)
	}
	e.commitTxs(res.TxIDs[1])
	res, err = s.Sweep(e.ctx, "USDT.ETH", index)
	if err != nil || res.State != eth.SweepDone {
		t.Fatalf("after the transfer %+v %v", res, err)
	}
	if got := e.tokenBalance(s.HotWallet()); got.Cmp(units(t, "40", 6)) != 0 || e.tokenBalance(deposit).Sign() != 0 {
		t.Fatalf("hot wallet %s USDT units, deposit %s", got, e.tokenBalance(deposit))
	}
	if res.Amount.Cmp(units(t, "40", 6)) != 0 {
		t.Fatalf("swept %s", res.Amount)
	}
	// The recorded cost is exactly what the hot wallet lost.
	spent := new(big.Int).Sub(hotBefore, e.balance(s.HotWallet()))
	if res.GasCostWei == nil || res.GasCostWei.Cmp(spent) != 0 {
		t.Fatalf("gas cost recorded %v, the hot wallet spent %s", res.GasCostWei, spent)
	}
	var stored string
	if err := e.db.Read.QueryRow(e.db.Q(`SELECT gas_cost_wei FROM eth_sweeps WHERE sweep_id = ?`), res.SweepID).Scan(&stored); err != nil || stored != spent.String() {
		t.Fatalf("eth_sweeps gas_cost_wei %q %v", stored, err)
	}
	// Money rule 7: the ledger's costs are what left our addresses to the
	// network: the hot wallet's loss less the ETH the top-up left on the
	// deposit address (still ours), one event per transaction.
	costs, n := e.costs()
	left := e.balance(deposit)
	if n != 2 || costs[domain.CostGasTopUp] == nil || costs[domain.CostSweepGas] == nil {
		t.Fatalf("cost events %v (%d), want a top-up and a sweep", costs, n)
	}
	if sum := new(big.Int).Add(costs[domain.CostGasTopUp], costs[domain.CostSweepGas]); sum.Cmp(new(big.Int).Sub(spent, left)) != 0 {
		t.Fatalf("costs booked %s wei; the hot wallet spent %s and the deposit address kept %s", sum, spent, left)
	}
	// Swept: another call has nothing to do.
	if res, err := s.Sweep(e.ctx, "USDT.ETH", index); err != nil || res.State != eth.SweepNothing {
		t.Fatalf("after done %+v %v", res, err)
	}
}

// A hot wallet without ETH cannot top up a sweep's gas.
func TestSweepWithoutGasFails(t *testing.T) {
	e := setupWallet(t)
	s := e.sender()
	addrHex, _ := e.wallet.Address(domain.ChainEthereum, 3)
	e.payUSDT(addrHex, "5")
	e.mine(1)
	if _, err := s.Sweep(e.ctx, "USDT.ETH", 3); !errors.Is(err, eth.ErrInsufficientGas) {
		t.Fatalf("sweep: %v", err)
	}
}

// End to end on the simulated chain: a USDT invoice is paid and credited,
// SweepDeposits brings the tokens to the hot wallet (topping up gas), the
// merchant withdraws, and the payout processor drives the payout with the
// real sender from requested to confirmed.
func TestProcessorPaysOutOnSimulatedChain(t *testing.T) {
	e := setupWallet(t)
	s := e.sender()
	e.fundHot(s, "1", "")
	id, addr := e.invoice("USDT.ETH", "20", 0)
	e.payUSDT(addr, "20")
	e.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("USDT.ETH", "0", "19.95")
	// Not final: the deposit stays where it is.
	if res, err := s.SweepDeposits(e.ctx); err != nil || len(res) != 0 {
		t.Fatalf("sweeps of a deposit not final: %+v %v", res, err)
	}
	e.mine(finality - confirmations)
	e.scan()
	e.wantBalance("USDT.ETH", "19.95", "0")

	for i := 0; ; i++ {
		res, err := s.SweepDeposits(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) == 1 && res[0].State == eth.SweepDone {
			break
		}
		if i == 5 || len(res) != 1 {
			t.Fatalf("sweeps %+v", res)
		}
		e.commitTxs(res[0].TxIDs...)
	}

	clock := func() time.Time { return e.now }
	h := commands.New(commands.Deps{Store: e.store, Assets: e.assets, Now: clock, NewID: commands.NewIDGenerator(clock),
		Credits: readapi.Credits{SQL: e.read}}, nil, hd.AddressCheck(&chaincfg.RegressionNetParams))
	if err := chain.Migrate(e.ctx, e.db); err != nil {
		t.Fatal(err)
	}
	to := stranger(t)
	req, err := h.RequestPayout.Handle(e.ctx, commands.RequestPayout{CommandID: "wd", MerchantID: e.merchant, Asset: "USDT.ETH",
		ToAddress: to.Hex(), Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	proc := chain.NewProcessor(e.store, e.db, h, e.assets, []chain.Sender{s},
		chain.ProcessorConfig{Now: time.Now, PollInterval: time.Millisecond, RetryBase: time.Millisecond, Logger: quiet})
	if err := proc.CatchUp(e.ctx); err != nil {
		t.Fatal(err)
	}
	pass := func() readapi.Payout {
		t.Helper()
		time.Sleep(2 * time.Millisecond)
		if _, err := proc.Pass(e.ctx); err != nil {
			t.Fatal(err)
		}
		e.catchUp()
		po, err := e.read.PayoutByID(e.ctx, e.merchant, req.Payout.PayoutID)
		if err != nil {
			t.Fatal(err)
		}
		return po
	}
	po := pass()
	if po.Status != domain.PayoutSentStatus {
		t.Fatalf("after a pass %+v", po)
	}
	e.commitTxs(po.TxID)
	if po = pass(); po.Status != domain.PayoutSentStatus {
		t.Fatalf("1 of %d confirmations: %s", confirmations, po.Status)
	}
	e.mine(confirmations - 1)
	if po = pass(); po.Status != domain.PayoutConfirmedStatus {
		t.Fatalf("confirmed? %+v", po)
	}
	if got := e.tokenBalance(to); got.Cmp(units(t, "19.95", 6)) != 0 || po.Sent.String() != "19.95" || !po.NetworkFee.IsZero() {
		t.Fatalf("recipient has %s units; payout sent %s fee %s", got, po.Sent, po.NetworkFee)
	}
	e.wantBalance("USDT.ETH", "0", "0")
	e.checkReplay(id)
}

// An ETH deposit address pays its own gas: the hot wallet receives the
// balance less the transfer's fee, and the fee is the recorded cost.
func TestSweepETH(t *testing.T) {
	e := setupWallet(t)
	s := e.sender()
	addrHex, _ := e.wallet.Address(domain.ChainEthereum, 5)
	e.payETH(addrHex, "0.3")
	e.mine(1)
	hotBefore := e.balance(s.HotWallet())
	res, err := s.Sweep(e.ctx, "ETH", 5)
	if err != nil || res.State != eth.SweepTransfer || len(res.TxIDs) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	e.commitTxs(res.TxIDs...)
	if res, err = s.Sweep(e.ctx, "ETH", 5); err != nil || res.State != eth.SweepDone {
		t.Fatalf("%+v %v", res, err)
	}
	got := new(big.Int).Sub(e.balance(s.HotWallet()), hotBefore)
	if got.Cmp(res.Amount) != 0 {
		t.Fatalf("hot wallet received %s, sweep says %s", got, res.Amount)
	}
	left := e.balance(common.HexToAddress(addrHex))
	if sum := new(big.Int).Add(new(big.Int).Add(res.Amount, res.GasCostWei), left); sum.Cmp(units(t, "0.3", 18)) != 0 {
		t.Fatalf("swept %s + gas %s + left %s != 0.3 ETH", res.Amount, res.GasCostWei, left)
	}
	// The sweep's gas is in the ledger once, whatever the repeats.
	if _, err := s.Sweep(e.ctx, "ETH", 5); err != nil {
		t.Fatal(err)
	}
	if costs, n := e.costs(); n != 1 || costs[domain.CostSweepGas].Cmp(res.GasCostWei) != 0 {
		t.Fatalf("cost events %v (%d), want the sweep's gas %s once", costs, n, res.GasCostWei)
	}
}
