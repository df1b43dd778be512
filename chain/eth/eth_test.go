package eth_test

import (
	"context"
	"crypto/ecdsa"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"
	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

var _ eth.Client = (simulated.Client)(nil)

// quiet drops the logs; go test -v with PIC_TEST_LOG=1 shows them.
var quiet = func() *slog.Logger {
	if os.Getenv("PIC_TEST_LOG") != "" {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}()

// confirmations is the threshold of both Ethereum assets in these tests.
const confirmations = 3

// finality is the depth at which the tests' deposits are final (the
// watcher's Finality override; the simulated chain finalizes a block only
// every 32, as a dev node does).
const finality = 5

// testAssets are the built-in assets with Ethereum thresholds lowered, so
// invoices require what the tests mine.
func testAssets(t testing.TB) domain.Assets {
	var list []map[string]any
	raw, _ := json.Marshal(domain.DefaultAssets().List())
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a["chain"] == string(domain.ChainEthereum) {
			a["confirmations"] = confirmations
		}
	}
	raw, _ = json.Marshal(list)
	assets, err := domain.ParseAssets(raw)
	if err != nil {
		t.Fatal(err)
	}
	return assets
}

// deriveAddress gives plain 0x addresses, checksummed for even indexes and
// lower-case for odd ones: the watcher must match both.
func deriveAddress(c domain.Chain, index int64) (string, error) {
	a := common.BytesToAddress(crypto.Keccak256([]byte(fmt.Sprintf("%s/%d", c, index)))[12:])
	if index%2 == 0 {
		return a.Hex(), nil
	}
	return strings.ToLower(a.Hex()), nil
}

type env struct {
	t       testing.TB
	ctx     context.Context
	backend *simulated.Backend
	client  simulated.Client
	node    *eth.NodeClient // the watcher's client: blocks as RLP
	chainID *big.Int
	payer   *ecdsa.PrivateKey
	nonce   uint64 // the payer's next nonce: the pool learns of a sent transaction asynchronously
	token   common.Address

	store    *sqlite.Store
	db       sqldb.DB
	assets   domain.Assets
	h        commands.Handlers
	runner   *projections.Runner
	read     *readapi.SQL
	sink     chain.Sink
	cfg      eth.Config
	w        *eth.Watcher
	merchant string

	mu  sync.Mutex
	now time.Time
}

type option func(*setupOptions)

type setupOptions struct {
	readDB    func(t testing.TB, store *sqlite.Store) sqldb.DB
	addresses func(e *env, d commands.Deps) commands.AddressSource
	cfg       eth.Config
	backend   []func(*node.Config, *ethconfig.Config)
}

func withReadDB(f func(t testing.TB, store *sqlite.Store) sqldb.DB) option {
	return func(o *setupOptions) { o.readDB = f }
}

func withConfig(cfg eth.Config) option { return func(o *setupOptions) { o.cfg = cfg } }

// setup starts a simulated chain with a funded payer that has deployed the
// test token, a SQLite event store with its read models in the same file
// (the embedded mode), the commands, a merchant, and the watcher.
func setup(t testing.TB, opts ...option) *env {
	o := setupOptions{
		readDB: func(t testing.TB, store *sqlite.Store) sqldb.DB {
			return sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
		},
		addresses: func(e *env, d commands.Deps) commands.AddressSource {
			return commands.NewIndexAllocator(d, deriveAddress)
		},
	}
	for _, f := range opts {
		f(&o)
	}
	e := &env{t: t, ctx: context.Background(), now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	var err error
	e.payer, err = crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	funds := new(big.Int).Mul(big.NewInt(1000), big.NewInt(params.Ether))
	e.backend = simulated.NewBackend(types.GenesisAlloc{crypto.PubkeyToAddress(e.payer.PublicKey): {Balance: funds}}, o.backend...)
	t.Cleanup(func() { e.backend.Close() })
	e.client = e.backend.Client()
	e.node = eth.NewNodeClient(rpcOf(e.client))
	if e.chainID, err = e.client.ChainID(e.ctx); err != nil {
		t.Fatal(err)
	}
	deploy := e.signedTx(nil, big.NewInt(0), 300_000, tokenInitCode(t))
	e.commit()
	r, err := e.client.TransactionReceipt(e.ctx, deploy)
	if err != nil || r.Status != types.ReceiptStatusSuccessful {
		t.Fatalf("deploy token: %+v %v", r, err)
	}
	e.token = r.ContractAddress

	e.store, err = sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.db = o.readDB(t, e.store)
	if err := projections.Migrate(e.ctx, e.db); err != nil {
		t.Fatal(err)
	}
	if err := eth.Migrate(e.ctx, e.db); err != nil {
		t.Fatal(err)
	}
	if err := eth.Migrate(e.ctx, e.db); err != nil {
		t.Fatalf("second migrate: %v", err)
	}
	e.assets = testAssets(t)
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	d := commands.Deps{Store: e.store, Assets: e.assets, Now: clock, NewID: commands.NewIDGenerator(clock)}
	e.h = commands.New(d, o.addresses(e, d), func(domain.Chain, string) error { return nil })
	e.runner = projections.NewRunner(e.store, e.db, quiet)
	e.read = readapi.NewSQL(e.db)
	e.sink = chain.Sink{Commands: e.h, Addresses: e.read}
	m, err := e.h.RegisterMerchant.Handle(e.ctx, commands.RegisterMerchant{CommandID: "reg", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	e.merchant = m.MerchantID
	e.cfg = o.cfg
	if e.cfg.Contracts == nil {
		e.cfg.Contracts = map[string]string{"USDT.ETH": e.token.Hex()}
	}
	if e.cfg.Finality == nil { // an empty map: the node's finalized block
		e.cfg.Finality = map[string]int{"ETH": finality, "USDT.ETH": finality}
	}
	e.cfg.Now = clock
	e.w = e.newWatcher()
	e.scan() // the first scan starts at the head
	return e
}

func (e *env) newWatcher() *eth.Watcher {
	w, err := eth.New(e.cfg, e.node, e.sink, e.db, e.assets, quiet)
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// signedTx sends a transaction from the payer and returns its hash.
func (e *env) signedTx(to *common.Address, value *big.Int, gas uint64, data []byte) common.Hash {
	e.t.Helper()
	tx := e.buildTx(e.nonce, to, value, gas, data, 1)
	e.nonce++
	if err := e.client.SendTransaction(e.ctx, tx); err != nil {
		e.t.Fatalf("send: %v", err)
	}
	return tx.Hash()
}

// buildTx signs an EIP-1559 transaction; feeFactor raises the fees (a
// replacement must pay more than the transaction it replaces).
func (e *env) buildTx(nonce uint64, to *common.Address, value *big.Int, gas uint64, data []byte, feeFactor int64) *types.Transaction {
	e.t.Helper()
	head, err := e.client.HeaderByNumber(e.ctx, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	tip := new(big.Int).Mul(big.NewInt(params.GWei), big.NewInt(feeFactor))
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: e.chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap,
		Gas: gas, To: to, Value: value, Data: data}), types.LatestSignerForChainID(e.chainID), e.payer)
	if err != nil {
		e.t.Fatal(err)
	}
	return tx
}

func (e *env) payETH(to string, amount string) common.Hash {
	e.t.Helper()
	addr := common.HexToAddress(to)
	return e.signedTx(&addr, units(e.t, amount, 18), 21_000, nil)
}

func transferData(to common.Address, amount *big.Int) []byte {
	data := common.FromHex("0xa9059cbb")
	data = append(data, common.LeftPadBytes(to.Bytes(), 32)...)
	return append(data, common.LeftPadBytes(amount.Bytes(), 32)...)
}

func (e *env) payUSDT(to string, amount string) common.Hash {
	e.t.Helper()
	return e.signedTx(&e.token, big.NewInt(0), 300_000, transferData(common.HexToAddress(to), units(e.t, amount, 6)))
}

func units(t testing.TB, amount string, decimals int32) *big.Int {
	a, err := domain.ParseAmount(amount, decimals)
	if err != nil {
		t.Fatal(err)
	}
	u, err := a.BaseUnits(decimals)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (e *env) mine(n int) {
	for i := 0; i < n; i++ {
		e.commit()
	}
}

// commit mines one block with every transaction sent so far: the pool
// takes a sent transaction in asynchronously, so wait for it first.
func (e *env) commit() common.Hash {
	e.t.Helper()
	payer := crypto.PubkeyToAddress(e.payer.PublicKey)
	for i := 0; ; i++ {
		n, err := e.client.PendingNonceAt(e.ctx, payer)
		if err != nil {
			e.t.Fatal(err)
		}
		if n >= e.nonce {
			break
		}
		if i == 500 {
			e.t.Fatalf("the pool has the payer at nonce %d, want %d", n, e.nonce)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return e.backend.Commit()
}

// scan projects, lets the watcher scan, and projects what it reported.
func (e *env) scan() {
	e.t.Helper()
	e.catchUp()
	if err := e.w.ScanOnce(e.ctx); err != nil {
		e.t.Fatalf("scan: %v", err)
	}
	e.catchUp()
}

func (e *env) catchUp() {
	e.t.Helper()
	if err := e.runner.CatchUp(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) invoice(asset, amount string, expiresIn time.Duration) (id, address string) {
	e.t.Helper()
	inv, err := e.h.CreateInvoice.Handle(e.ctx, commands.CreateInvoice{CommandID: "create-" + asset + amount + e.now.String(),
		MerchantID: e.merchant, Asset: asset, Amount: amount, ExpiresIn: expiresIn})
	if err != nil {
		e.t.Fatal(err)
	}
	e.advance(time.Millisecond)
	e.catchUp()
	return inv.Invoice.InvoiceID, inv.Invoice.PayAddress
}

func (e *env) get(id string) readapi.Invoice {
	e.t.Helper()
	inv, err := e.read.InvoiceByID(e.ctx, e.merchant, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return inv
}

func (e *env) wantStatus(id string, want domain.Status) readapi.Invoice {
	e.t.Helper()
	inv := e.get(id)
	if inv.Status != want {
		e.t.Fatalf("invoice %s is %s, want %s (received %s, payments %+v)", id, inv.Status, want, inv.AmountReceived, inv.Payments)
	}
	return inv
}

// wantBalance checks the merchant's balance of asset.
func (e *env) wantBalance(asset, available, pending string) {
	e.t.Helper()
	bals, err := e.read.Balances(e.ctx, e.merchant)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, b := range bals {
		if b.Asset == asset {
			if b.Available.String() != available || b.Pending.String() != pending {
				e.t.Fatalf("%s balance available %s pending %s, want %s and %s", asset, b.Available, b.Pending, available, pending)
			}
			return
		}
	}
	if available != "0" || pending != "0" {
		e.t.Fatalf("no %s balance, want %s and %s", asset, available, pending)
	}
}

// trail is the invoice's stream as event types: what webhooks are made of.
func (e *env) trail(id string) string {
	e.t.Helper()
	recs, err := eventstore.ReadFullStream(e.ctx, e.store, commands.InvoiceStream(id))
	if err != nil {
		e.t.Fatal(err)
	}
	var types []string
	for _, r := range recs {
		types = append(types, r.Type)
	}
	return strings.Join(types, " ")
}

func (e *env) wantTrail(id, want string) {
	e.t.Helper()
	if got := e.trail(id); got != want {
		e.t.Fatalf("invoice %s events:\n got %s\nwant %s", id, got, want)
	}
}

// checkReplay audits the log (every fee recomputed, postings balanced,
// balances equal to the ledger) and rebuilds the read models from the log
// into a fresh database, which must agree with the live ones.
func (e *env) checkReplay(ids ...string) {
	e.t.Helper()
	rep, err := projections.Audit(e.ctx, e.store, e.db)
	if err != nil || !rep.OK() {
		e.t.Fatalf("audit: %+v %v", rep, err)
	}
	fresh := separateSQLite(e.t)
	if err := projections.Migrate(e.ctx, fresh); err != nil {
		e.t.Fatal(err)
	}
	if err := projections.NewRunner(e.store, fresh, slog.Default()).CatchUp(e.ctx); err != nil {
		e.t.Fatal(err)
	}
	// The live confirmation counts are the scan engine's, not the log's.
	if err := scan.NewDepthTable(e.db).CopyTo(e.ctx, fresh); err != nil {
		e.t.Fatal(err)
	}
	again := readapi.NewSQL(fresh)
	for _, id := range ids {
		a, _ := e.read.InvoiceByID(e.ctx, e.merchant, id)
		b, _ := again.InvoiceByID(e.ctx, e.merchant, id)
		ja, _ := json.Marshal(a.JSON("http://x"))
		jb, _ := json.Marshal(b.JSON("http://x"))
		if string(ja) != string(jb) {
			e.t.Fatalf("replay differs:\n%s\n%s", ja, jb)
		}
	}
	live, _ := e.read.Balances(e.ctx, e.merchant)
	rebuilt, _ := again.Balances(e.ctx, e.merchant)
	if fmt.Sprint(live) != fmt.Sprint(rebuilt) {
		e.t.Fatalf("replayed balances %v, live %v", rebuilt, live)
	}
}

func separateSQLite(t testing.TB) sqldb.DB {
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "rm.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return sqldb.DB{Read: db, Write: db, Dialect: sqldb.SQLite}
}

// postgresDB gives the test its own schema on the real Postgres.
func postgresDB(t testing.TB, _ *sqlite.Store) sqldb.DB {
	return sqldbtest.Postgres(t, "eth")
}

func TestTokenContract(t *testing.T) {
	e := setup(t)
	to := common.HexToAddress("0x00000000000000000000000000000000000000aa")
	h := e.signedTx(&e.token, big.NewInt(0), 300_000, transferData(to, big.NewInt(1234)))
	e.mine(1)
	r, err := e.client.TransactionReceipt(e.ctx, h)
	if err != nil || r.Status != types.ReceiptStatusSuccessful || len(r.Logs) != 1 {
		t.Fatalf("transfer receipt: %+v %v", r, err)
	}
	l := r.Logs[0]
	payer := crypto.PubkeyToAddress(e.payer.PublicKey)
	if l.Address != e.token || l.Topics[0] != eth.TransferTopic || common.BytesToAddress(l.Topics[1][12:]) != payer ||
		common.BytesToAddress(l.Topics[2][12:]) != to || new(big.Int).SetBytes(l.Data).Int64() != 1234 {
		t.Fatalf("transfer log: %+v", l)
	}
	balanceOf := func(a common.Address) *big.Int {
		out, err := e.client.CallContract(e.ctx, ethereum.CallMsg{To: &e.token, Data: append(common.FromHex("0x70a08231"), common.LeftPadBytes(a.Bytes(), 32)...)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return new(big.Int).SetBytes(out)
	}
	if got := balanceOf(to); got.Int64() != 1234 {
		t.Fatalf("balanceOf(to) = %s", got)
	}
	// Sending more than one holds reverts.
	poor := e.signedTx(&e.token, big.NewInt(0), 300_000, transferData(to, new(big.Int).Lsh(big.NewInt(1), 200)))
	e.mine(1)
	if r, _ := e.client.TransactionReceipt(e.ctx, poor); r.Status != types.ReceiptStatusFailed {
		t.Fatalf("overdraft succeeded: %+v", r)
	}
}

// An ETH invoice paid exactly: detected, confirming, then paid after the
// threshold, with the balance credited net of the 0.25 % fee.
func TestETHExactPayment(t *testing.T) { testETHExactPayment(t) }

// The same with the read models (and the watcher's tables) on Postgres.
func TestETHExactPaymentPostgres(t *testing.T) { testETHExactPayment(t, withReadDB(postgresDB)) }

func testETHExactPayment(t *testing.T, opts ...option) {
	e := setup(t, opts...)
	id, addr := e.invoice("ETH", "0.5", 0)
	tx := e.payETH(addr, "0.5")
	e.mine(1)
	e.scan()
	inv := e.wantStatus(id, domain.StatusConfirming)
	if len(inv.Payments) != 1 || inv.Payments[0].DepositID != tx.Hex() || inv.Payments[0].TxID != tx.Hex() ||
		inv.Payments[0].Amount.String() != "0.5" || inv.Payments[0].Status != readapi.PaymentPending {
		t.Fatalf("payments: %+v", inv.Payments)
	}
	e.wantBalance("ETH", "0", "0.5")
	e.mine(confirmations - 2)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming) // 2 of 3
	e.mine(1)
	e.scan()
	inv = e.wantStatus(id, domain.StatusPaid)
	if inv.Payments[0].Status != readapi.PaymentConfirmed || inv.Payments[0].Confirmations != confirmations {
		t.Fatalf("payment: %+v", inv.Payments[0])
	}
	e.wantBalance("ETH", "0", "0.49875") // credited, pending until final
	e.mine(finality - confirmations - 1)
	e.scan()
	e.wantBalance("ETH", "0", "0.49875")
	e.mine(1)
	e.scan()
	e.wantBalance("ETH", "0.49875", "0")
	e.mine(5)
	e.scan() // nothing more happens
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized")
	e.checkReplay(id)
}

// USDT.ETH by ERC-20 transfer: a partial payment, then the rest.
func TestUSDTPartialThenComplete(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("USDT.ETH", "10", 0)
	first := e.payUSDT(addr, "4")
	e.mine(1)
	e.scan()
	inv := e.wantStatus(id, domain.StatusPartiallyPaid)
	if len(inv.Payments) != 1 || !strings.HasPrefix(inv.Payments[0].DepositID, first.Hex()+":") || inv.Payments[0].Amount.String() != "4" {
		t.Fatalf("payments: %+v", inv.Payments)
	}
	e.payUSDT(addr, "6")
	e.mine(1)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	e.wantBalance("USDT.ETH", "0", "10")
	e.mine(confirmations - 1)
	e.scan()
	inv = e.wantStatus(id, domain.StatusPaid)
	if inv.AmountReceived.String() != "10" {
		t.Fatalf("received %s", inv.AmountReceived)
	}
	e.wantBalance("USDT.ETH", "0", "9.975")
	e.mine(finality - confirmations - 1) // the first payment is final, the second a block short
	e.scan()
	e.wantBalance("USDT.ETH", "3.99", "5.985")
	e.mine(1)
	e.scan()
	e.wantBalance("USDT.ETH", "9.975", "0")
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoicePartiallyPaid DepositDetected InvoiceConfirming DepositConfirmed DepositConfirmed InvoicePaid "+
		"DepositFinalized DepositFinalized")
	e.checkReplay(id)
}

// An overpayment is paid; the fee is charged on all that was credited.
func TestOverpayment(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("ETH", "1", 0)
	e.payETH(addr, "1.5")
	e.mine(confirmations)
	e.scan()
	inv := e.wantStatus(id, domain.StatusPaid)
	if inv.AmountReceived.String() != "1.5" {
		t.Fatalf("received %s", inv.AmountReceived)
	}
	e.wantBalance("ETH", "0", "1.49625")
	e.mine(finality - confirmations)
	e.scan()
	e.wantBalance("ETH", "1.49625", "0")
	e.checkReplay(id)
}

// A payment after expiry is credited and shown; the invoice stays expired.
func TestLatePayment(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("USDT.ETH", "25", time.Minute)
	e.advance(2 * time.Minute)
	if _, err := e.h.ExpireInvoice.Handle(e.ctx, commands.ExpireInvoice{CommandID: "x", InvoiceID: id}); err != nil {
		t.Fatal(err)
	}
	e.catchUp()
	e.payUSDT(addr, "25")
	e.mine(confirmations)
	e.scan()
	inv := e.wantStatus(id, domain.StatusExpired)
	if len(inv.Payments) != 1 || !inv.Payments[0].Late || inv.Payments[0].Status != readapi.PaymentConfirmed || inv.AmountReceived.String() != "25" {
		t.Fatalf("late payment: %+v received %s", inv.Payments, inv.AmountReceived)
	}
	e.wantBalance("USDT.ETH", "0", "24.9375")
	e.mine(finality - confirmations)
	e.scan()
	e.wantBalance("USDT.ETH", "24.9375", "0")
	e.checkReplay(id)
}

// Two invoices paid in one block (one in ETH, one in USDT), next to a
// payment to an address that is not ours, all found in one scan.
func TestTwoPaymentsInOneBlock(t *testing.T) {
	e := setup(t)
	a, addrA := e.invoice("ETH", "0.1", 0)
	b, addrB := e.invoice("USDT.ETH", "3", 0)
	c, addrC := e.invoice("ETH", "0.2", 0)
	e.payETH(addrA, "0.1")
	e.payUSDT(addrB, "3")
	e.payETH("0x000000000000000000000000000000000000dEaD", "7")
	e.payETH(addrC, "0.05")
	e.payETH(addrC, "0.15")
	block := e.commit()
	if n, _ := e.client.TransactionCount(e.ctx, block); n != 5 {
		t.Fatalf("block has %d transactions", n)
	}
	e.mine(confirmations - 1)
	e.scan()
	e.wantStatus(a, domain.StatusPaid)
	e.wantStatus(b, domain.StatusPaid)
	if inv := e.wantStatus(c, domain.StatusPaid); len(inv.Payments) != 2 {
		t.Fatalf("payments of c: %+v", inv.Payments)
	}
	e.wantBalance("ETH", "0", "0.29925")
	e.wantBalance("USDT.ETH", "0", "2.9925")
	e.mine(finality - confirmations)
	e.scan()
	e.wantBalance("ETH", "0.29925", "0")
	e.wantBalance("USDT.ETH", "2.9925", "0")
	e.checkReplay(a, b, c)
}

// A failed transaction to our address (here a contract that reverts) moved
// no value and is not a deposit.
func TestFailedTransactionIsNoDeposit(t *testing.T) {
	e := setup(t, func(o *setupOptions) {
		o.addresses = func(e *env, d commands.Deps) commands.AddressSource {
			return staticToToken{e}
		}
	})
	token := e.token
	id, addr := e.invoice("ETH", "1", 0)
	if !strings.EqualFold(addr, token.Hex()) {
		t.Fatalf("pay address %s, want the token contract", addr)
	}
	h := e.signedTx(&token, units(t, "1", 18), 100_000, nil) // no selector: reverts
	e.mine(confirmations)
	if r, _ := e.client.TransactionReceipt(e.ctx, h); r.Status != types.ReceiptStatusFailed {
		t.Fatalf("the payment did not fail: %+v", r)
	}
	e.scan()
	if inv := e.wantStatus(id, domain.StatusNew); len(inv.Payments) != 0 {
		t.Fatalf("payments: %+v", inv.Payments)
	}
}

// staticToToken pays every invoice to the token contract's address.
type staticToToken struct{ e *env }

func (s staticToToken) Allocate(ctx context.Context, asset domain.Asset, m string) (commands.Allocation, error) {
	return commands.StaticAddresses{domain.ChainEthereum: strings.ToLower(s.e.token.Hex())}.Allocate(ctx, asset, m)
}

// doubleSpend forks the chain below the block holding tx and mines, in its
// place, a transaction with the same nonce paying someone else, so tx can
// never come back; then it mines until the new chain is longer.
func (e *env) doubleSpend(tx common.Hash, extraBlocks int) {
	e.t.Helper()
	r, err := e.client.TransactionReceipt(e.ctx, tx)
	if err != nil {
		e.t.Fatal(err)
	}
	orig, _, err := e.client.TransactionByHash(e.ctx, tx)
	if err != nil {
		e.t.Fatal(err)
	}
	oldHead, _ := e.client.BlockNumber(e.ctx)
	parent, err := e.client.HeaderByNumber(e.ctx, new(big.Int).Sub(r.BlockNumber, big.NewInt(1)))
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.backend.Fork(parent.Hash()); err != nil {
		e.t.Fatal(err)
	}
	elsewhere := common.HexToAddress("0x000000000000000000000000000000000000bEEF")
	replacement := e.buildTx(orig.Nonce(), &elsewhere, big.NewInt(1), 21_000, nil, 3)
	// The pool learns of the fork asynchronously: until then it calls the
	// nonce too low.
	for i := 0; ; i++ {
		err := e.client.SendTransaction(e.ctx, replacement)
		if err == nil {
			break
		}
		if i == 200 {
			e.t.Fatalf("replacement: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		e.commit()
		if n, _ := e.client.BlockNumber(e.ctx); n > oldHead+uint64(extraBlocks) {
			break
		}
	}
	if _, err := e.client.TransactionReceipt(e.ctx, tx); !errors.Is(err, ethereum.NotFound) {
		e.t.Fatalf("the double-spent payment is still on the chain: %v", err)
	}
	if r, err := e.client.TransactionReceipt(e.ctx, replacement.Hash()); err != nil || r.Status != types.ReceiptStatusSuccessful {
		e.t.Fatalf("replacement: %+v %v", r, err)
	}
}

// A reorg removes a deposit before it was confirmed: DepositReverted, and
// the invoice goes back to new with nothing pending.
func TestReorgBeforePaid(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("ETH", "0.3", 0)
	tx := e.payETH(addr, "0.3")
	e.mine(1)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	e.wantBalance("ETH", "0", "0.3")
	e.doubleSpend(tx, 1)
	e.scan()
	e.wantStatus(id, domain.StatusNew)
	e.wantBalance("ETH", "0", "0")
	if inv := e.get(id); inv.Payments[0].Status != readapi.PaymentReverted {
		t.Fatalf("payments: %+v", inv.Payments)
	}
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositReverted InvoiceAwaitingPayment")
	// Mining on does not confirm what is gone.
	e.mine(confirmations + 1)
	e.scan()
	e.wantStatus(id, domain.StatusNew)
	// Paying again works as usual.
	e.payETH(addr, "0.3")
	e.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("ETH", "0", "0.29925")
	e.mine(finality - confirmations)
	e.scan()
	e.wantBalance("ETH", "0.29925", "0")
	e.checkReplay(id)
}

// A reorg removes a deposit after the invoice was paid, before the
// deposit was final: the credit is undone out of pending and the invoice
// is reverted (money rule 5).
func TestReorgAfterPaid(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("ETH", "2", 0)
	tx := e.payETH(addr, "2")
	e.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("ETH", "0", "1.995")
	e.doubleSpend(tx, 1)
	e.scan()
	inv := e.wantStatus(id, domain.StatusReverted)
	if inv.Payments[0].Status != readapi.PaymentReverted || inv.AmountReceived.String() != "0" {
		t.Fatalf("after reorg: %+v received %s", inv.Payments, inv.AmountReceived)
	}
	e.wantBalance("ETH", "0", "0")
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositReverted InvoiceReverted")
	e.mine(finality)
	e.scan() // nothing is final
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositReverted InvoiceReverted")
	e.checkReplay(id)
}

// A reorg deeper than finality (counted in blocks) removes a final
// deposit: it is reverted all the same, out of the available balance.
func TestReorgAfterFinal(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("ETH", "2", 0)
	tx := e.payETH(addr, "2")
	e.mine(finality)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("ETH", "1.995", "0")
	e.doubleSpend(tx, 1)
	e.scan()
	e.wantStatus(id, domain.StatusReverted)
	e.wantBalance("ETH", "0", "0")
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized DepositReverted InvoiceReverted")
	e.checkReplay(id)
}

// A reorg removes a confirmed partial payment: its credit is undone and
// the invoice, not yet paid, goes back to new.
func TestReorgConfirmedPartial(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("USDT.ETH", "10", 0)
	tx := e.payUSDT(addr, "4")
	e.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPartiallyPaid)
	e.wantBalance("USDT.ETH", "0", "3.99")
	e.doubleSpend(tx, 2)
	e.scan()
	e.wantStatus(id, domain.StatusNew)
	e.wantBalance("USDT.ETH", "0", "0")
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoicePartiallyPaid DepositConfirmed DepositReverted InvoiceAwaitingPayment")
	e.checkReplay(id)
}

// A reorg whose new chain carries the payment again (in another block):
// nothing is reverted, and confirmations count from the new block.
func TestReorgReincluded(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("ETH", "0.7", 0)
	tx := e.payETH(addr, "0.7")
	e.mine(1)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	r, _ := e.client.TransactionReceipt(e.ctx, tx)
	orig, _, err := e.client.TransactionByHash(e.ctx, tx)
	if err != nil {
		t.Fatal(err)
	}
	oldBlock := r.BlockHash
	parent, _ := e.client.HeaderByNumber(e.ctx, new(big.Int).Sub(r.BlockNumber, big.NewInt(1)))
	if err := e.backend.Fork(parent.Hash()); err != nil {
		t.Fatal(err)
	}
	_ = e.client.SendTransaction(e.ctx, orig) // the pool puts it back itself, too
	e.mine(1)
	r, err = e.client.TransactionReceipt(e.ctx, tx)
	if err != nil || r.BlockHash == oldBlock {
		t.Fatalf("payment not re-included elsewhere: %+v %v", r, err)
	}
	e.scan()
	inv := e.wantStatus(id, domain.StatusConfirming)
	if inv.Payments[0].Status != readapi.PaymentPending {
		t.Fatalf("payment: %+v", inv.Payments[0])
	}
	e.mine(confirmations - 1)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid")
	e.checkReplay(id)
}

// The watcher is stopped while blocks with payments are mined, more than a
// batch of them; a new watcher on the same database resumes from the
// checkpoint and catches every payment.
func TestRestartAfterDowntime(t *testing.T) {
	e := setup(t, withConfig(eth.Config{BatchBlocks: 4, KeepBlocks: 8}))
	a, addrA := e.invoice("ETH", "0.01", 0)
	b, addrB := e.invoice("USDT.ETH", "12.5", 0)
	e.mine(3)
	e.scan()
	e.w = nil // stopped
	e.payETH(addrA, "0.01")
	e.mine(7)
	e.payUSDT(addrB, "12.5")
	e.mine(9)
	e.w = e.newWatcher()
	e.scan()
	e.wantStatus(a, domain.StatusPaid)
	e.wantStatus(b, domain.StatusPaid)
	e.wantBalance("ETH", "0.009975", "0")
	e.wantBalance("USDT.ETH", "12.46875", "0")
	e.checkReplay(a, b)
}

// Run scans on its own, and keeps its place across a failing node.
func TestRun(t *testing.T) {
	e := setup(t, withConfig(eth.Config{PollInterval: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond}))
	id, addr := e.invoice("ETH", "0.25", 0)
	flaky := &flakyClient{Client: e.node}
	w, err := eth.New(e.cfg, flaky, e.sink, e.db, e.assets, quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	e.payETH(addr, "0.25")
	e.mine(1)
	flaky.failNext(5)
	e.mine(confirmations)
	deadline := time.Now().Add(10 * time.Second)
	for e.get(id).Status != domain.StatusPaid {
		if time.Now().After(deadline) {
			t.Fatalf("not paid in time: %+v", e.get(id))
		}
		time.Sleep(20 * time.Millisecond)
		e.catchUp()
	}
	e.wantBalance("ETH", "0", "0.249375")
	e.mine(finality - confirmations - 1)
	for !e.final("ETH", "0.249375") {
		if time.Now().After(deadline) {
			t.Fatal("not final in time")
		}
		time.Sleep(20 * time.Millisecond)
		e.catchUp()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if flaky.failures() == 0 {
		t.Fatal("the node never failed")
	}
}

// final reports whether the merchant's balance of asset is available, all of it.
func (e *env) final(asset, available string) bool {
	e.t.Helper()
	bals, err := e.read.Balances(e.ctx, e.merchant)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, b := range bals {
		if b.Asset == asset {
			return b.Available.String() == available && b.Pending.IsZero()
		}
	}
	return false
}

// flakyClient fails the next n calls of BlockByNumber.
type flakyClient struct {
	eth.Client
	mu     sync.Mutex
	fail   int
	failed int
}

func (f *flakyClient) failNext(n int) { f.mu.Lock(); f.fail = n; f.mu.Unlock() }
func (f *flakyClient) failures() int  { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }

func (f *flakyClient) BlockByNumber(ctx context.Context, n *big.Int) (*types.Block, error) {
	f.mu.Lock()
	if f.fail > 0 {
		f.fail--
		f.failed++
		f.mu.Unlock()
		return nil, errors.New("node unavailable")
	}
	f.mu.Unlock()
	return f.Client.BlockByNumber(ctx, n)
}

// A node that is behind our checkpoint (syncing, or another node behind a
// load balancer) lacks blocks: that is no reorg, and nothing is reverted.
func TestNodeBehind(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("ETH", "1", 0)
	e.payETH(addr, "1")
	e.mine(2)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	head, _ := e.client.BlockNumber(e.ctx)
	behind, err := eth.New(e.cfg, laggingClient{Client: e.node, head: int64(head) - 2}, e.sink, e.db, e.assets, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := behind.ScanOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.catchUp()
	e.wantStatus(id, domain.StatusConfirming)
	e.mine(1)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid")
}

// laggingClient is a node whose head is at height head.
type laggingClient struct {
	eth.Client
	head int64
}

func (c laggingClient) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	if n == nil {
		n = big.NewInt(c.head)
	}
	if n.Int64() > c.head {
		return nil, ethereum.NotFound
	}
	return c.Client.HeaderByNumber(ctx, n)
}

func (c laggingClient) BlockByNumber(ctx context.Context, n *big.Int) (*types.Block, error) {
	if n == nil || n.Int64() > c.head {
		return nil, ethereum.NotFound
	}
	return c.Client.BlockByNumber(ctx, n)
}

func TestNewRejectsBadConfig(t *testing.T) {
	assets := testAssets(t)
	for _, cfg := range []eth.Config{
		{Contracts: map[string]string{"USDT.ETH": "not-an-address"}},
		{Confirmations: map[string]int{"ETH": 0}},
		{Confirmations: map[string]int{"BTC": 2}},
		{Finality: map[string]int{"ETH": confirmations - 1}},
		{Finality: map[string]int{"BTC": 6}},
	} {
		if _, err := eth.New(cfg, nil, chain.Sink{}, sqldb.DB{}, assets, nil); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}

// rpcOf reaches the RPC connection inside the simulated backend's client,
// which wraps an *ethclient.Client in a struct field named Client that
// hides the client's own Client method.
func rpcOf(c simulated.Client) *rpc.Client {
	return reflect.ValueOf(c).FieldByName("Client").Interface().(*ethclient.Client).Client()
}

// Without a Finality override a deposit is final once the node's
// finalized block covers it: the simulated chain, as a dev node, finalizes
// every 32nd block when it is mined, and the genesis block until then.
func TestFinalityFollowsTheFinalizedBlock(t *testing.T) {
	e := setup(t, withConfig(eth.Config{Finality: map[string]int{}}))
	id, addr := e.invoice("USDT.ETH", "10", 0)
	e.payUSDT(addr, "10")
	e.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("USDT.ETH", "0", "9.975")
	head, err := e.client.BlockNumber(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.mine(31 - int(head)) // the finalized block is still the genesis block
	e.scan()
	e.wantBalance("USDT.ETH", "0", "9.975")
	e.mine(1) // block 32, finalized as it is mined
	e.scan()
	e.wantBalance("USDT.ETH", "9.975", "0")
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized")
	e.checkReplay(id)
}

// noFinalizedBlock is a node without the "finalized" tag (an error for
// any block tag), as before the merge.
type noFinalizedBlock struct{ eth.Client }

func (c noFinalizedBlock) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	if n != nil && n.Sign() < 0 {
		return nil, errors.New("invalid argument 0: block tag not supported")
	}
	return c.Client.HeaderByNumber(ctx, n)
}

// A node without a finalized block: deposits are final at the asset's
// finality depth (64 blocks).
func TestFinalityWithoutFinalizedBlock(t *testing.T) {
	e := setup(t, withConfig(eth.Config{Finality: map[string]int{}}))
	w, err := eth.New(e.cfg, noFinalizedBlock{e.node}, e.sink, e.db, e.assets, quiet)
	if err != nil {
		t.Fatal(err)
	}
	e.w = w
	asset, _ := e.assets.Lookup("ETH")
	if asset.FinalityDepth() != 64 {
		t.Fatalf("ETH finality %d, want 64", asset.FinalityDepth())
	}
	id, addr := e.invoice("ETH", "0.5", 0)
	e.payETH(addr, "0.5")
	e.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("ETH", "0", "0.49875")
	e.mine(63 - confirmations)
	e.scan()
	e.wantBalance("ETH", "0", "0.49875") // 63 blocks: past block 32, which the node does not call finalized
	e.mine(1)
	e.scan()
	e.wantBalance("ETH", "0.49875", "0")
	e.checkReplay(id)
}

// A watcher stopped between a deposit's confirmation and its finality
// makes it final once restarted; a finality recorded in the ledger but not
// in eth_deposits (a crash in between) is done again without a second
// DepositFinalized.
func TestFinalityAcrossRestarts(t *testing.T) {
	e := setup(t)
	id, addr := e.invoice("ETH", "1", 0)
	tx := e.payETH(addr, "1")
	e.mine(confirmations)
	e.scan()
	e.wantBalance("ETH", "0", "0.9975")
	e.w = nil // stopped
	e.mine(finality - confirmations)
	e.w = e.newWatcher()
	e.scan()
	e.wantBalance("ETH", "0.9975", "0")
	if _, err := e.db.Write.Exec(e.db.Q(`UPDATE eth_deposits SET state = 'seen' WHERE deposit_id = ?`), tx.Hex()); err != nil {
		t.Fatal(err)
	}
	e.scan()
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized")
	var state string
	if err := e.db.Read.QueryRow(e.db.Q(`SELECT state FROM eth_deposits WHERE deposit_id = ?`), tx.Hex()).Scan(&state); err != nil || state != "final" {
		t.Fatalf("deposit state %q %v, want final", state, err)
	}
	e.wantBalance("ETH", "0.9975", "0")
	e.checkReplay(id)
}

// recordingClient records the FilterLogs queries, and can give a header of
// another hash than the block's once (the branch changing between the
// header and the block).
type recordingClient struct {
	eth.Client
	mu      sync.Mutex
	queries []ethereum.FilterQuery
	lieAt   int64
}

func (c *recordingClient) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	c.mu.Lock()
	c.queries = append(c.queries, q)
	c.mu.Unlock()
	return c.Client.FilterLogs(ctx, q)
}

func (c *recordingClient) HeaderByNumber(ctx context.Context, n *big.Int) (*types.Header, error) {
	h, err := c.Client.HeaderByNumber(ctx, n)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil && n != nil && c.lieAt > 0 && n.Int64() == c.lieAt {
		c.lieAt = 0
		h = types.CopyHeader(h)
		h.Extra = []byte("another branch")
	}
	return h, err
}

// At the head a block's Transfer logs are asked by the block's hash while
// the block is fetched (one query, no range); a header whose hash the
// block does not have (the branch moved in between) makes the scan check
// for a reorg and read the block again, and the payment is still found.
func TestOneBlockLogsAskedByHash(t *testing.T) {
	for _, moved := range []bool{false, true} {
		t.Run(fmt.Sprintf("moved=%v", moved), func(t *testing.T) {
			e := setup(t)
			e.scan()
			rec := &recordingClient{Client: e.node}
			w, err := eth.New(e.cfg, rec, e.sink, e.db, e.assets, quiet)
			if err != nil {
				t.Fatal(err)
			}
			id, addr := e.invoice("USDT.ETH", "5", 0)
			e.payUSDT(addr, "5")
			e.mine(1)
			head, err := e.client.BlockNumber(e.ctx)
			if err != nil {
				t.Fatal(err)
			}
			if moved {
				rec.lieAt = int64(head)
			}
			e.catchUp()
			if err := w.ScanOnce(e.ctx); err != nil {
				t.Fatal(err)
			}
			e.catchUp()
			e.wantStatus(id, domain.StatusConfirming)
			block, err := e.client.BlockByNumber(e.ctx, new(big.Int).SetUint64(head))
			if err != nil {
				t.Fatal(err)
			}
			rec.mu.Lock()
			defer rec.mu.Unlock()
			last := rec.queries[len(rec.queries)-1]
			if last.BlockHash == nil || *last.BlockHash != block.Hash() || last.FromBlock != nil || last.ToBlock != nil {
				t.Fatalf("the block's logs were asked as %+v, want by its hash %s", last, block.Hash().Hex())
			}
			if want := map[bool]int{false: 1, true: 2}[moved]; len(rec.queries) != want {
				t.Fatalf("%d log queries, want %d", len(rec.queries), want)
			}
		})
	}
}
