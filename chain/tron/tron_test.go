package tron_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/ethereum/go-ethereum/crypto"
	_ "github.com/jackc/pgx/v5/stdlib"
	"github.com/shopspring/decimal"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// quiet drops the logs; go test -v with PIC_TEST_LOG=1 shows them.
var quiet = func() *slog.Logger {
	if os.Getenv("PIC_TEST_LOG") != "" {
		return slog.Default()
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}()

// confirmations is the threshold of both TRON assets in these tests.
const confirmations = 3

// testMnemonic is BIP-39's all-zero-entropy phrase: a test key, never funds.
const testMnemonic = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"

// testAssets are the built-in assets with the TRON thresholds lowered and
// USDT.TRON at the fake node's contract.
func testAssets(t testing.TB, contract string) domain.Assets {
	var list []map[string]any
	raw, _ := json.Marshal(domain.DefaultAssets().List())
	if err := json.Unmarshal(raw, &list); err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a["chain"] == string(domain.ChainTron) {
			a["confirmations"] = confirmations
			if a["code"] == "USDT.TRON" {
				a["contract"] = contract
			}
		}
	}
	raw, _ = json.Marshal(list)
	assets, err := domain.ParseAssets(raw)
	if err != nil {
		t.Fatal(err)
	}
	return assets
}

type env struct {
	t      testing.TB
	ctx    context.Context
	node   *fakeNode
	client *tron.HTTPClient
	payer  *ecdsa.PrivateKey
	wallet *hd.Wallet

	store    *sqlite.Store
	db       sqldb.DB
	assets   domain.Assets
	h        commands.Handlers
	runner   *projections.Runner
	read     *readapi.SQL
	sink     chain.Sink
	cfg      tron.Config
	w        *tron.Watcher
	merchant string

	mu  sync.Mutex
	now time.Time
}

// setup starts a fake TRON node with a funded payer, a SQLite event store
// with its read models in the same file (the embedded mode), the commands
// (invoice addresses from a real HD wallet), a merchant, and the watcher.
func setup(t testing.TB, cfg tron.Config) *env { return setupWith(t, cfg, nil) }

// setupWith puts the read models (and the watcher's tables) in readDB's
// database; nil: the event store's SQLite file.
func setupWith(t testing.TB, cfg tron.Config, readDB func(testing.TB) sqldb.DB) *env {
	e := &env{t: t, ctx: context.Background(), now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	e.node = newFakeNode(t)
	e.client = tron.NewClient(e.node.url(), "test-key", 2*time.Second)
	var err error
	if e.payer, err = crypto.GenerateKey(); err != nil {
		t.Fatal(err)
	}
	e.node.fund(keyAddress(e.payer), 10_000_000_000, 1_000_000_000) // 10,000 TRX, 1,000 USDT
	if e.wallet, err = hd.NewWallet(testMnemonic, "", &chaincfg.RegressionNetParams); err != nil {
		t.Fatal(err)
	}
	e.store, err = sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.db = sqldb.DB{Read: e.store.DB(), Write: e.store.WriteDB(), Dialect: sqldb.SQLite}
	if readDB != nil {
		e.db = readDB(t)
	}
	for _, m := range []func(context.Context, sqldb.DB) error{projections.Migrate, chain.Migrate, tron.Migrate, tron.Migrate} {
		if err := m(e.ctx, e.db); err != nil {
			t.Fatal(err)
		}
	}
	e.assets = testAssets(t, e.node.tokenAddress())
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	e.read = readapi.NewSQL(e.db)
	d := commands.Deps{Store: e.store, Assets: e.assets, Now: clock, NewID: commands.NewIDGenerator(clock),
		Credits: readapi.Credits{SQL: e.read}}
	e.h = commands.New(d, commands.NewIndexAllocator(d, e.wallet.Deriver()), hd.AddressCheck(&chaincfg.RegressionNetParams))
	e.runner = projections.NewRunner(e.store, e.db, quiet)
	e.sink = chain.Sink{Commands: e.h, Addresses: e.read}
	m, err := e.h.RegisterMerchant.Handle(e.ctx, commands.RegisterMerchant{CommandID: "reg", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	e.merchant = m.MerchantID
	e.cfg = cfg
	e.cfg.Now = clock
	e.node.mine(2)
	e.w = e.newWatcher(e.client)
	e.scan() // the first scan starts at the head
	return e
}

func (e *env) newWatcher(node tron.Node) *tron.Watcher {
	w, err := tron.New(e.cfg, node, e.sink, e.db, e.assets, quiet)
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

func (e *env) payTRX(to, amount string) string {
	e.t.Helper()
	return e.node.payTRX(e.payer, to, units(e.t, amount))
}

func (e *env) payUSDT(to, amount string) string {
	e.t.Helper()
	return e.node.payUSDT(e.payer, to, units(e.t, amount))
}

// units is an amount of a 6-decimal asset (TRX, USDT) in base units.
func units(t testing.TB, amount string) int64 {
	a, err := domain.ParseAmount(amount, 6)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := a.BaseUnits(6)
	return u.Int64()
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
	if !strings.HasPrefix(inv.Invoice.PayAddress, "T") {
		e.t.Fatalf("pay address %q", inv.Invoice.PayAddress)
	}
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

// final reports whether n deposits of the invoice are final in its stream.
func (e *env) final(invoiceID string, n int) bool {
	e.t.Helper()
	recs, err := eventstore.ReadFullStream(e.ctx, e.store, commands.InvoiceStream(invoiceID))
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range recs {
		if r.Type == domain.TypeDepositFinalized {
			n--
		}
	}
	return n <= 0
}

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

// trail is a stream as event types: what webhooks are made of.
func (e *env) trail(stream string) string {
	e.t.Helper()
	recs, err := eventstore.ReadFullStream(e.ctx, e.store, stream)
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
	if got := e.trail(commands.InvoiceStream(id)); got != want {
		e.t.Fatalf("invoice %s events:\n got %s\nwant %s", id, got, want)
	}
}

// checkReplay audits the log and rebuilds the read models from it into a
// fresh database, which must agree with the live ones.
func (e *env) checkReplay(ids ...string) {
	e.t.Helper()
	rep, err := projections.Audit(e.ctx, e.store, e.db)
	if err != nil || !rep.OK() {
		e.t.Fatalf("audit: %+v %v", rep, err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(e.t.TempDir(), "rm.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)")
	if err != nil {
		e.t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	e.t.Cleanup(func() { db.Close() })
	fresh := sqldb.DB{Read: db, Write: db, Dialect: sqldb.SQLite}
	if err := projections.Migrate(e.ctx, fresh); err != nil {
		e.t.Fatal(err)
	}
	if err := projections.NewRunner(e.store, fresh, quiet).CatchUp(e.ctx); err != nil {
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

// A TRX invoice paid exactly: detected, confirming, then paid after the
// threshold, credited net of the 0.25 % fee, and final at once (its block
// is solidified).
func TestTRXExactPayment(t *testing.T) { testTRXExactPayment(t, setup(t, tron.Config{})) }

// The same with the read models and the watcher's tables on Postgres.
func TestTRXExactPaymentPostgres(t *testing.T) {
	testTRXExactPayment(t, setupWith(t, tron.Config{}, postgresDB))
}

func testTRXExactPayment(t *testing.T, e *env) {
	id, addr := e.invoice("TRX", "150", 0)
	tx := e.payTRX(addr, "150")
	e.node.mine(1)
	e.scan()
	inv := e.wantStatus(id, domain.StatusConfirming)
	if len(inv.Payments) != 1 || inv.Payments[0].DepositID != tx || inv.Payments[0].TxID != tx ||
		inv.Payments[0].Amount.String() != "150" || inv.Payments[0].Status != readapi.PaymentPending {
		t.Fatalf("payments: %+v", inv.Payments)
	}
	e.wantBalance("TRX", "0", "150")
	e.node.mine(confirmations - 2)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming) // 2 of 3
	e.node.mine(1)
	e.scan()
	inv = e.wantStatus(id, domain.StatusPaid)
	if inv.Payments[0].Status != readapi.PaymentConfirmed || inv.Payments[0].Confirmations != confirmations {
		t.Fatalf("payment: %+v", inv.Payments[0])
	}
	e.wantBalance("TRX", "149.625", "0")
	e.node.mine(4)
	e.scan() // nothing more happens
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized")
	e.checkReplay(id)
}

// USDT.TRON by TRC-20 transfer: a partial payment, then the rest; the
// deposit ids are "<txid>:<log index>".
func TestUSDTPartialThenComplete(t *testing.T) {
	e := setup(t, tron.Config{})
	id, addr := e.invoice("USDT.TRON", "10", 0)
	first := e.payUSDT(addr, "4")
	e.node.mine(1)
	e.scan()
	inv := e.wantStatus(id, domain.StatusPartiallyPaid)
	if len(inv.Payments) != 1 || inv.Payments[0].DepositID != first+":0" || inv.Payments[0].TxID != first || inv.Payments[0].Amount.String() != "4" {
		t.Fatalf("payments: %+v", inv.Payments)
	}
	e.payUSDT(addr, "6")
	e.node.mine(1)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	e.wantBalance("USDT.TRON", "0", "10")
	e.node.mine(confirmations - 1)
	e.scan()
	inv = e.wantStatus(id, domain.StatusPaid)
	if inv.AmountReceived.String() != "10" {
		t.Fatalf("received %s", inv.AmountReceived)
	}
	e.wantBalance("USDT.TRON", "9.975", "0")
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoicePartiallyPaid DepositDetected InvoiceConfirming DepositConfirmed DepositConfirmed InvoicePaid "+
		"DepositFinalized DepositFinalized")
	e.checkReplay(id)
}

// An overpayment is paid; the fee is charged on all that was credited.
func TestOverpayment(t *testing.T) {
	e := setup(t, tron.Config{})
	id, addr := e.invoice("USDT.TRON", "20", 0)
	e.payUSDT(addr, "25.5")
	e.node.mine(confirmations)
	e.scan()
	inv := e.wantStatus(id, domain.StatusPaid)
	if inv.AmountReceived.String() != "25.5" {
		t.Fatalf("received %s", inv.AmountReceived)
	}
	e.wantBalance("USDT.TRON", "25.43625", "0")
	e.checkReplay(id)
}

// An invoice expires without payment; a payment after expiry is credited
// and shown, and the invoice stays expired.
func TestExpiryThenLatePayment(t *testing.T) {
	e := setup(t, tron.Config{})
	id, addr := e.invoice("USDT.TRON", "25", time.Minute)
	e.advance(2 * time.Minute)
	if _, err := e.h.ExpireInvoice.Handle(e.ctx, commands.ExpireInvoice{CommandID: "x", InvoiceID: id}); err != nil {
		t.Fatal(err)
	}
	e.catchUp()
	e.wantStatus(id, domain.StatusExpired)
	e.payUSDT(addr, "25")
	e.node.mine(confirmations)
	e.scan()
	inv := e.wantStatus(id, domain.StatusExpired)
	if len(inv.Payments) != 1 || !inv.Payments[0].Late || inv.Payments[0].Status != readapi.PaymentConfirmed || inv.AmountReceived.String() != "25" {
		t.Fatalf("late payment: %+v received %s", inv.Payments, inv.AmountReceived)
	}
	e.wantBalance("USDT.TRON", "24.9375", "0")
	e.checkReplay(id)
}

// Two invoices paid in one block (TRX and USDT), next to payments to an
// address that is not ours and a USDT transfer that reverts (the payer
// lacks the tokens): only the real payments count.
func TestTwoPaymentsInOneBlockAndAFailedOne(t *testing.T) {
	e := setup(t, tron.Config{})
	a, addrA := e.invoice("TRX", "1", 0)
	b, addrB := e.invoice("USDT.TRON", "3", 0)
	c, addrC := e.invoice("USDT.TRON", "5", 0)
	poor, _ := crypto.GenerateKey()
	e.node.fund(keyAddress(poor), 50_000_000, 0) // TRX for fees, no USDT
	e.payTRX(addrA, "1")
	e.payUSDT(addrB, "3")
	e.payTRX(tron.EncodeAddress(keyAddress(poor)), "7")
	failed := e.node.payUSDT(poor, addrC, units(t, "5"))
	e.node.mine(confirmations)
	if h := e.node.blockOf(failed); h < 0 {
		t.Fatal("the failing transfer was not mined")
	}
	e.scan()
	e.wantStatus(a, domain.StatusPaid)
	e.wantStatus(b, domain.StatusPaid)
	if inv := e.wantStatus(c, domain.StatusNew); len(inv.Payments) != 0 {
		t.Fatalf("a reverted transfer was credited: %+v", inv.Payments)
	}
	e.wantBalance("TRX", "0.9975", "0")
	e.wantBalance("USDT.TRON", "2.9925", "0")
	e.checkReplay(a, b, c)
}

// Confirmation needs depth and solidity: with the node's solidified block
// lagging four blocks, a deposit three deep is not yet confirmed.
func TestConfirmationWaitsForSolidity(t *testing.T) {
	e := setup(t, tron.Config{})
	e.node.SetSolidLag(4)
	id, addr := e.invoice("TRX", "2", 0)
	e.payTRX(addr, "2")
	e.node.mine(confirmations) // 3 deep, solidified 2 blocks below it
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	e.node.mine(1)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	e.node.mine(1) // now solidified
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
}

// A reorg removes a deposit before it was confirmed: DepositReverted, and
// the invoice goes back to new with nothing pending.
func TestReorgBeforePaid(t *testing.T) {
	e := setup(t, tron.Config{})
	id, addr := e.invoice("TRX", "30", 0)
	e.payTRX(addr, "30")
	e.node.mine(1)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	e.wantBalance("TRX", "0", "30")
	e.node.reorg(1, nil) // the payment is gone
	e.scan()
	e.wantStatus(id, domain.StatusNew)
	e.wantBalance("TRX", "0", "0")
	if inv := e.get(id); inv.Payments[0].Status != readapi.PaymentReverted {
		t.Fatalf("payments: %+v", inv.Payments)
	}
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositReverted InvoiceAwaitingPayment")
	e.node.mine(confirmations + 1)
	e.scan()
	e.wantStatus(id, domain.StatusNew)
	e.payTRX(addr, "30")
	e.node.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("TRX", "29.925", "0")
	e.checkReplay(id)
}

// A reorg removes a USDT deposit after the invoice was paid, its block
// solidified (which a TRON node never undoes, but the fake one does): the
// final credit is undone out of the available balance and the invoice is
// reverted (money rule 5).
func TestReorgAfterPaid(t *testing.T) {
	e := setup(t, tron.Config{})
	id, addr := e.invoice("USDT.TRON", "40", 0)
	e.payUSDT(addr, "40")
	e.node.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("USDT.TRON", "39.9", "0")
	e.node.reorg(confirmations, nil)
	e.scan()
	inv := e.wantStatus(id, domain.StatusReverted)
	if inv.Payments[0].Status != readapi.PaymentReverted || inv.AmountReceived.String() != "0" {
		t.Fatalf("after reorg: %+v received %s", inv.Payments, inv.AmountReceived)
	}
	e.wantBalance("USDT.TRON", "0", "0")
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized DepositReverted InvoiceReverted")
	e.checkReplay(id)
}

// With a finality depth (Config.Finality) a confirmed deposit's money is
// pending until that depth, then available; a reorg before then reverts
// the credit out of pending.
func TestFinalityOverride(t *testing.T) {
	e := setup(t, tron.Config{Finality: map[string]int{"TRX": 5, "USDT.TRON": 5}})
	id, addr := e.invoice("TRX", "10", 0)
	e.payTRX(addr, "10")
	e.node.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("TRX", "0", "9.975")
	e.node.mine(1)
	e.scan()
	e.wantBalance("TRX", "0", "9.975")
	e.node.mine(1)
	e.scan()
	e.wantBalance("TRX", "9.975", "0")
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized")

	usdt, addr := e.invoice("USDT.TRON", "40", 0)
	e.payUSDT(addr, "40")
	e.node.mine(confirmations)
	e.scan()
	e.wantStatus(usdt, domain.StatusPaid)
	e.wantBalance("USDT.TRON", "0", "39.9")
	e.node.reorg(confirmations, nil)
	e.scan()
	e.wantStatus(usdt, domain.StatusReverted)
	e.wantBalance("USDT.TRON", "0", "0")
	e.node.mine(5)
	e.scan()
	e.wantTrail(usdt, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositReverted InvoiceReverted")
	e.checkReplay(id, usdt)
}

// Without the solidified block (IgnoreSolidity) a deposit is confirmed by
// depth and final at the asset's finality depth (19 blocks).
func TestFinalityWithoutSolidity(t *testing.T) {
	e := setup(t, tron.Config{IgnoreSolidity: true})
	e.node.SetSolidLag(100) // not asked
	asset, _ := e.assets.Lookup("TRX")
	if asset.FinalityDepth() != 19 {
		t.Fatalf("TRX finality %d, want 19", asset.FinalityDepth())
	}
	id, addr := e.invoice("TRX", "3", 0)
	e.payTRX(addr, "3")
	e.node.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantBalance("TRX", "0", "2.9925")
	e.node.mine(18 - confirmations)
	e.scan()
	e.wantBalance("TRX", "0", "2.9925")
	e.node.mine(1)
	e.scan()
	e.wantBalance("TRX", "2.9925", "0")
	e.checkReplay(id)
}

// A watcher stopped between a deposit's confirmation and its finality
// makes it final once restarted; a finality recorded in the ledger but not
// in tron_deposits (a crash in between) is done again without a second
// DepositFinalized.
func TestFinalityAcrossRestarts(t *testing.T) {
	e := setup(t, tron.Config{Finality: map[string]int{"TRX": 5}})
	id, addr := e.invoice("TRX", "4", 0)
	tx := e.payTRX(addr, "4")
	e.node.mine(confirmations)
	e.scan()
	e.wantBalance("TRX", "0", "3.99")
	e.w = nil // stopped
	e.node.mine(2)
	e.w = e.newWatcher(e.client)
	e.scan()
	e.wantBalance("TRX", "3.99", "0")
	if _, err := e.db.Write.Exec(e.db.Q(`UPDATE tron_deposits SET state = 'seen' WHERE deposit_id = ?`), tx); err != nil {
		t.Fatal(err)
	}
	e.scan()
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized")
	var state string
	if err := e.db.Read.QueryRow(e.db.Q(`SELECT state FROM tron_deposits WHERE deposit_id = ?`), tx).Scan(&state); err != nil || state != "final" {
		t.Fatalf("deposit state %q %v, want final", state, err)
	}
	e.wantBalance("TRX", "3.99", "0")
	e.checkReplay(id)
}

// A reorg whose new chain carries the payment again (in another block):
// nothing is reverted, and confirmations count from the new block.
func TestReorgReincluded(t *testing.T) {
	e := setup(t, tron.Config{})
	id, addr := e.invoice("USDT.TRON", "7", 0)
	tx := e.payUSDT(addr, "7")
	e.node.mine(1)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	e.node.reorg(1, func(string) bool { return true }) // the same height, a block with another id
	if e.node.blockOf(tx) < 0 {
		t.Fatal("payment not re-included")
	}
	e.scan()
	inv := e.wantStatus(id, domain.StatusConfirming)
	if inv.Payments[0].Status != readapi.PaymentPending {
		t.Fatalf("payment: %+v", inv.Payments[0])
	}
	e.node.mine(confirmations - 2)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized")
	e.checkReplay(id)
}

// The watcher is stopped while blocks with payments are mined, more than a
// batch of them; a new watcher on the same database resumes from the
// checkpoint and catches every payment.
func TestRestartAfterDowntime(t *testing.T) {
	e := setup(t, tron.Config{BatchBlocks: 4, KeepBlocks: 8})
	a, addrA := e.invoice("TRX", "0.5", 0)
	b, addrB := e.invoice("USDT.TRON", "12.5", 0)
	e.node.mine(3)
	e.scan()
	e.w = nil // stopped
	e.payTRX(addrA, "0.5")
	e.node.mine(7)
	e.payUSDT(addrB, "12.5")
	e.node.mine(9)
	e.w = e.newWatcher(e.client)
	e.scan()
	e.wantStatus(a, domain.StatusPaid)
	e.wantStatus(b, domain.StatusPaid)
	e.wantBalance("TRX", "0.49875", "0")
	e.wantBalance("USDT.TRON", "12.46875", "0")
	e.checkReplay(a, b)
}

// Run scans on its own through a node that answers 503 and one that stalls
// past the client's timeout: it retries with backoff from its checkpoint,
// never loses its place, and reports each deposit once.
func TestRunThroughFailingNode(t *testing.T) {
	e := setup(t, tron.Config{PollInterval: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	e.node.SetStall(500 * time.Millisecond)
	id, addr := e.invoice("USDT.TRON", "9", 0)
	flaky := tron.NewClient(e.node.url(), "", 100*time.Millisecond)
	w := e.newWatcher(flaky)
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error)
	go func() { done <- w.Run(ctx) }()
	e.payUSDT(addr, "4")
	e.node.mine(1)
	e.node.failNext(4)
	e.node.mine(1)
	e.payUSDT(addr, "5")
	e.node.mine(1)
	e.node.stallNext(3)
	e.node.mine(confirmations)
	// Paid, and final: on TRON both come in one scan, but as two commands,
	// so stopping at paid could stop between them.
	deadline := time.Now().Add(15 * time.Second)
	for e.get(id).Status != domain.StatusPaid || !e.final(id, 2) {
		if time.Now().After(deadline) {
			t.Fatalf("not paid and final in time: %+v", e.get(id))
		}
		time.Sleep(20 * time.Millisecond)
		e.catchUp()
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := e.node.faults(); n < 7 {
		t.Fatalf("the node failed %d times, want 7", n)
	}
	e.catchUp()
	e.wantBalance("USDT.TRON", "8.9775", "0")
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoicePartiallyPaid DepositDetected InvoiceConfirming DepositConfirmed DepositConfirmed InvoicePaid "+
		"DepositFinalized DepositFinalized")
	e.checkReplay(id)
}

// A node behind our checkpoint (syncing, or another node behind a load
// balancer) lacks blocks: that is no reorg, and nothing is reverted.
func TestNodeBehind(t *testing.T) {
	e := setup(t, tron.Config{})
	id, addr := e.invoice("TRX", "1", 0)
	e.payTRX(addr, "1")
	e.node.mine(2)
	e.scan()
	e.wantStatus(id, domain.StatusConfirming)
	behind := e.newWatcher(lagging{HTTPClient: e.client, head: e.node.height() - 2})
	if err := behind.ScanOnce(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.catchUp()
	e.wantStatus(id, domain.StatusConfirming)
	e.node.mine(1)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	e.wantTrail(id, "InvoiceCreated DepositDetected InvoiceConfirming DepositConfirmed InvoicePaid DepositFinalized")
}

// lagging is a node whose head is at height head.
type lagging struct {
	*tron.HTTPClient
	head int64
}

func (l lagging) NowBlock(ctx context.Context) (tron.Block, error) { return l.BlockByNum(ctx, l.head) }
func (l lagging) BlockByNum(ctx context.Context, n int64) (tron.Block, error) {
	if n > l.head {
		return tron.Block{}, tron.ErrNotFound
	}
	return l.HTTPClient.BlockByNum(ctx, n)
}

func TestNewRejectsBadConfig(t *testing.T) {
	assets := testAssets(t, "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t")
	for _, cfg := range []tron.Config{
		{Contracts: map[string]string{"USDT.TRON": "not-an-address"}},
		{Confirmations: map[string]int{"TRX": 0}},
		{Confirmations: map[string]int{"ETH": 2}},
		{Finality: map[string]int{"TRX": confirmations - 1}},
		{Finality: map[string]int{"ETH": 5}},
	} {
		if _, err := tron.New(cfg, nil, chain.Sink{}, sqldb.DB{}, assets, nil); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}

// ---- payouts ----

// fixedPrices prices TRX at 0.25 USDT.
type fixedPrices struct{}

func (fixedPrices) Price(_ context.Context, base, quote string) (domain.PriceQuote, error) {
	if base != "TRX" || quote != "USDT.TRON" {
		return domain.PriceQuote{}, domain.ErrPriceUnavailable
	}
	return domain.PriceQuote{Base: base, Quote: quote, Rate: decimal.RequireFromString("0.25"), Source: "test"}, nil
}

type payouts struct {
	*env
	sender *tron.Sender
	proc   *chain.Processor
}

// withPayouts adds a sender on the fake node, its hot wallet funded with
// hotSun TRX and hotUSDT tokens, and the payout processor.
func withPayouts(e *env, hotSun, hotUSDT int64) *payouts {
	s, err := tron.NewSender(tron.SenderConfig{Prices: fixedPrices{}, Now: func() time.Time { return time.UnixMilli(fakeGenesisMs) }, Logger: quiet},
		e.client, e.wallet, e.db, e.assets)
	if err != nil {
		e.t.Fatal(err)
	}
	hot := mustAddr(e.t, s.HotWalletAddress())
	e.node.fund(hot, hotSun, hotUSDT)
	clock := func() time.Time { e.mu.Lock(); defer e.mu.Unlock(); return e.now }
	p := chain.NewProcessor(e.store, e.db, e.h, e.assets, []chain.Sender{s}, chain.ProcessorConfig{Now: clock, Logger: quiet})
	return &payouts{env: e, sender: s, proc: p}
}

// earn pays and confirms an invoice, so the merchant has funds.
func (p *payouts) earn(asset, amount string) {
	id, addr := p.invoice(asset, amount, 0)
	if asset == "TRX" {
		p.payTRX(addr, amount)
	} else {
		p.payUSDT(addr, amount)
	}
	p.node.mine(confirmations)
	p.scan()
	p.wantStatus(id, domain.StatusPaid)
}

func (p *payouts) request(asset, amount, to string) commands.PayoutRef {
	p.t.Helper()
	res, err := p.h.RequestPayout.Handle(p.ctx, commands.RequestPayout{CommandID: "po-" + asset + amount, MerchantID: p.merchant, Asset: asset,
		Amount: amount, ToAddress: to, Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		p.t.Fatal(err)
	}
	if err := p.proc.CatchUp(p.ctx); err != nil {
		p.t.Fatal(err)
	}
	return res.Ref
}

func (p *payouts) pass() {
	p.t.Helper()
	if _, err := p.proc.Pass(p.ctx); err != nil {
		p.t.Fatal(err)
	}
	p.catchUp()
}

func (p *payouts) payout(ref commands.PayoutRef) readapi.Payout {
	p.t.Helper()
	po, err := p.read.PayoutByID(p.ctx, p.merchant, ref.PayoutID)
	if err != nil {
		p.t.Fatal(err)
	}
	return po
}

// A TRX payout: built through createtransaction, signed locally, verified
// by the fake node (txID and signature), mined and confirmed; the
// bandwidth it burns is the network fee, deducted from what is sent.
func TestTRXPayout(t *testing.T) {
	p := withPayouts(setup(t, tron.Config{}), 500_000_000, 0)
	p.earn("TRX", "100")
	payee, _ := crypto.GenerateKey()
	to := tron.EncodeAddress(keyAddress(payee))
	p.node.fund(keyAddress(payee), 1, 0) // activated: no account-creation fee
	ref := p.request("TRX", "60", to)
	p.pass()
	po := p.payout(ref)
	if po.Status != domain.PayoutSentStatus || po.TxID == "" || !p.node.verifiedTx(po.TxID) {
		t.Fatalf("payout after a pass: %+v", po)
	}
	// Bandwidth: the signed transaction's bytes + 64, at 1000 sun per byte.
	if po.NetworkFee == nil || !po.NetworkFee.IsPositive() || po.NetworkFee.Cmp(domain.MustAmount("0.5")) > 0 {
		t.Fatalf("network fee %v", po.NetworkFee)
	}
	p.node.mine(confirmations)
	p.advance(time.Minute)
	p.pass()
	po = p.payout(ref)
	if po.Status != domain.PayoutConfirmedStatus {
		t.Fatalf("payout: %+v", po)
	}
	sun, _ := p.node.balances(to)
	if got, want := domain.FromBaseUnits(bigInt(sun-1), 6), domain.MustAmount("60").Sub(*po.NetworkFee); !got.Equal(want) {
		t.Fatalf("payee received %s TRX, want %s", got, want)
	}
	if got := p.trail(commands.PayoutStream(ref.PayoutID)); got != "PayoutSigned PayoutSent PayoutConfirmed" {
		t.Fatalf("payout events: %s", got)
	}
	p.wantBalance("TRX", "39.75", "0")
	p.checkReplay()
}

// A TRX payout's network fee is what its transaction's info says it
// burned, not what was estimated when it was signed (money rule 7: the
// ledger reconciles to the chain). Signed to an address not yet activated
// (1.1 TRX), mined after something else activated it: it burned its
// bandwidth only, which is its network fee, and the rest of the 1.1 goes
// back to the merchant. Signed while the hot wallet's bandwidth was free
// (fee 0), mined once it no longer was: the merchant keeps the fee it was
// signed with, and what the hot wallet burned beyond it is the operator's
// cost (payout_burn_excess), booked once.
func TestTRXPayoutFeeIsWhatItBurned(t *testing.T) {
	p := withPayouts(setup(t, tron.Config{}), 500_000_000, 0)
	s, err := tron.NewSender(tron.SenderConfig{Prices: fixedPrices{}, Now: func() time.Time { return time.UnixMilli(fakeGenesisMs) }, Logger: quiet,
		Costs: chain.RecordCostWith(p.h.RecordNetworkCost)}, p.client, p.wallet, p.db, p.assets)
	if err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { p.mu.Lock(); defer p.mu.Unlock(); return p.now }
	p.sender, p.proc = s, chain.NewProcessor(p.store, p.db, p.h, p.assets, []chain.Sender{s}, chain.ProcessorConfig{Now: clock, Logger: quiet})
	p.earn("TRX", "100")
	hot := s.HotWalletAddress()
	payee, _ := crypto.GenerateKey()
	to := tron.EncodeAddress(keyAddress(payee))
	confirm := func(ref commands.PayoutRef) (readapi.Payout, tron.TransactionInfo) {
		t.Helper()
		p.node.mine(confirmations)
		p.advance(time.Minute)
		p.pass()
		po := p.payout(ref)
		info, ok := p.node.Receipt(po.TxID)
		if po.Status != domain.PayoutConfirmedStatus || !ok {
			t.Fatalf("payout: %+v", po)
		}
		return po, info
	}

	hot0, _ := p.node.balances(hot)
	ref := p.request("TRX", "60", to)
	p.pass()
	if po := p.payout(ref); po.NetworkFee == nil || po.NetworkFee.String() != "1.1" {
		t.Fatalf("signed to an address not yet activated: %+v, want a network fee of 1.1", po)
	}
	p.node.fund(keyAddress(payee), 1, 0) // activated by someone else first
	po, info := confirm(ref)
	burned := domain.FromBaseUnits(big.NewInt(info.Fee), 6)
	if info.Fee <= 0 || info.Fee >= 1_100_000 || !po.NetworkFee.Equal(burned) {
		t.Fatalf("network fee %v, the transaction burned %s TRX", po.NetworkFee, burned)
	}
	// The hot wallet spent what was sent (60 less the 1.1 signed) and
	// what was burned: what the ledger says left it.
	hot1, _ := p.node.balances(hot)
	if po.Sent == nil || po.Sent.String() != "58.9" || !domain.FromBaseUnits(big.NewInt(hot0-hot1), 6).Equal(po.Sent.Add(burned)) {
		t.Fatalf("the hot wallet spent %d sun, the payout %+v", hot0-hot1, po)
	}
	// 99.75 − 60 + what the estimate took beyond the burn.
	p.wantBalance("TRX", domain.MustAmount("39.75").Add(domain.MustAmount("1.1").Sub(burned)).String(), "0")
	if costs := p.costs(); len(costs) != 0 {
		t.Fatalf("the merchant paid the burn: no cost is the operator's, got %+v", costs)
	}

	p.node.SetFreeNet(100_000)
	ref2 := p.request("TRX", "10", to)
	p.pass()
	if po := p.payout(ref2); po.NetworkFee == nil || !po.NetworkFee.IsZero() {
		t.Fatalf("signed on free bandwidth: %+v, want a network fee of 0", po)
	}
	p.node.SetFreeNet(0)
	po2, info2 := confirm(ref2)
	if info2.Fee <= 0 || !po2.NetworkFee.IsZero() {
		t.Fatalf("network fee %v (the merchant was charged 0), the transaction burned %d sun", po2.NetworkFee, info2.Fee)
	}
	p.pass()
	costs := p.costs()
	c, ok := costs[po2.TxID]
	if len(costs) != 1 || !ok || c.Kind != domain.CostPayoutBurnExcess || c.From != hot || c.Ref != ref2.PayoutID ||
		!c.Amount.Equal(domain.FromBaseUnits(big.NewInt(info2.Fee), 6)) {
		t.Fatalf("costs %+v; the payout burned %d sun beyond its fee of 0", costs, info2.Fee)
	}
	p.checkReplay()
}

// The TRC-20 payout with its tables on Postgres.
func TestUSDTPayoutPostgres(t *testing.T) {
	testUSDTPayout(t, setupWith(t, tron.Config{}, postgresDB))
}

// postgresDB gives the test its own schema on the real Postgres
// (PIC_TEST_POSTGRES_URL, default the local test database).
func postgresDB(t testing.TB) sqldb.DB {
	url := os.Getenv("PIC_TEST_POSTGRES_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	b := make([]byte, 6)
	rand.Read(b)
	schema := "tron_" + hex.EncodeToString(b)
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		t.Fatalf("postgres (set PIC_TEST_POSTGRES_URL): %v", err)
	}
	t.Cleanup(func() { admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`) })
	db, err := sql.Open("pgx", url+"&search_path="+schema)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return sqldb.DB{Read: db, Write: db, Dialect: sqldb.Postgres}
}

// A TRC-20 payout: the energy estimated by a dry run, the fee_limit set
// from it, built through triggersmartcontract, signed, verified by the
// fake node byte for byte, confirmed. The TRX it burns (energy and
// bandwidth) is converted into USDT and deducted from the payout.
func TestUSDTPayout(t *testing.T) { testUSDTPayout(t, setup(t, tron.Config{})) }

func testUSDTPayout(t *testing.T, e *env) {
	p := withPayouts(e, 50_000_000, 500_000_000)
	p.earn("USDT.TRON", "80")
	payee, _ := crypto.GenerateKey()
	to := tron.EncodeAddress(keyAddress(payee))
	ref := p.request("USDT.TRON", "50", to)
	p.pass()
	po := p.payout(ref)
	if po.Status != domain.PayoutSentStatus || !p.node.verifiedTx(po.TxID) {
		t.Fatalf("payout: %+v", po)
	}
	// Energy of a transfer to a fresh holder at 210 sun, plus bandwidth,
	// at 0.25 USDT per TRX.
	energyTRX := decimal.New(fakeEnergyNew*210, -6)
	if po.NetworkFee == nil || po.NetworkFee.Decimal().LessThan(energyTRX.Mul(decimal.RequireFromString("0.25"))) ||
		po.NetworkFee.Cmp(domain.MustAmount("2")) > 0 {
		t.Fatalf("network fee %v", po.NetworkFee)
	}
	p.node.mine(confirmations)
	p.advance(time.Minute)
	p.pass()
	po = p.payout(ref)
	if po.Status != domain.PayoutConfirmedStatus {
		t.Fatalf("payout: %+v", po)
	}
	_, got := p.node.balances(to)
	if want := domain.MustAmount("50").Sub(*po.NetworkFee); !domain.FromBaseUnits(got, 6).Equal(want) {
		t.Fatalf("payee received %s USDT, want %s", domain.FromBaseUnits(got, 6), want)
	}
	hotSun, _ := p.node.balances(p.sender.HotWalletAddress())
	if hotSun >= 50_000_000-fakeEnergyNew*210 {
		t.Fatalf("the hot wallet burned no TRX: %d sun left", hotSun)
	}
	p.wantBalance("USDT.TRON", "29.8", "0")
	p.checkReplay()
}

// A TRC-20 payout that the hot wallet cannot fund with TRX for energy
// fails at once with a clear error, and the merchant's funds come back.
func TestUSDTPayoutWithoutTRXForEnergy(t *testing.T) {
	p := withPayouts(setup(t, tron.Config{}), 500_000, 500_000_000) // 0.5 TRX
	p.earn("USDT.TRON", "30")
	payee, _ := crypto.GenerateKey()
	broadcasts := len(p.node.Verified())
	ref := p.request("USDT.TRON", "20", tron.EncodeAddress(keyAddress(payee)))
	p.pass()
	po := p.payout(ref)
	if po.Status != domain.PayoutFailedStatus || !strings.Contains(po.FailureReason, "insufficient hot-wallet funds") ||
		!strings.Contains(po.FailureReason, "TRX for energy") || !strings.Contains(po.FailureReason, p.sender.HotWalletAddress()) {
		t.Fatalf("payout: %+v", po)
	}
	if len(p.node.Verified()) != broadcasts { // nothing was broadcast
		t.Fatalf("broadcasts: %v", p.node.Verified())
	}
	p.wantBalance("USDT.TRON", "29.925", "0")
}

// The sender refuses what it did not ask for: a node that builds a
// transaction with another amount gets no signature (a temporary error,
// retried), and Build errors plainly.
func TestSenderRefusesATamperedBuild(t *testing.T) {
	e := setup(t, tron.Config{})
	p := withPayouts(e, 500_000_000, 0)
	asset, _ := e.assets.Lookup("TRX")
	payee, _ := crypto.GenerateKey()
	e.node.SetTamper(func(r *tron.RawTx) {
		c, _ := tron.UnmarshalTransfer(r.Contracts[0].Value)
		c.Amount++
		r.Contracts[0].Value = c.Marshal()
	})
	_, err := p.sender.Build(e.ctx, chain.PayoutToSend{PayoutID: "po_x", Asset: asset, ToAddress: tron.EncodeAddress(keyAddress(payee)),
		Amount: domain.MustAmount("5")})
	if err == nil || errors.Is(err, chain.ErrPermanent) || !strings.Contains(err.Error(), "unexpected transaction") {
		t.Fatalf("build from a tampering node: %v", err)
	}
}

// Broadcast is idempotent (a transaction the node has is success) and a
// signed transaction whose reference block left the chain can never
// confirm: a permanent error.
func TestBroadcastIdempotentAndTapos(t *testing.T) {
	e := setup(t, tron.Config{})
	p := withPayouts(e, 500_000_000, 0)
	asset, _ := e.assets.Lookup("TRX")
	payee, _ := crypto.GenerateKey()
	to := tron.EncodeAddress(keyAddress(payee))
	tx, err := p.sender.Build(e.ctx, chain.PayoutToSend{PayoutID: "po_a", Asset: asset, ToAddress: to, Amount: domain.MustAmount("5")})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := p.sender.Broadcast(e.ctx, tx); err != nil {
			t.Fatalf("broadcast %d: %v", i, err)
		}
	}
	e.node.mine(1)
	if err := p.sender.Broadcast(e.ctx, tx); err != nil {
		t.Fatalf("broadcast of a mined transaction: %v", err)
	}
	if n, err := p.sender.Confirmations(e.ctx, tx.TxID); err != nil || n != 1 {
		t.Fatalf("confirmations %d %v", n, err)
	}
	other, err := p.sender.Build(e.ctx, chain.PayoutToSend{PayoutID: "po_b", Asset: asset, ToAddress: to, Amount: domain.MustAmount("6")})
	if err != nil {
		t.Fatal(err)
	}
	e.node.reorg(3, func(string) bool { return true }) // its reference block is gone
	if err := p.sender.Broadcast(e.ctx, other); !errors.Is(err, chain.ErrPermanent) || !strings.Contains(err.Error(), "TAPOS_ERROR") {
		t.Fatalf("broadcast after its reference block left: %v", err)
	}
	if _, err := p.sender.Confirmations(e.ctx, other.TxID); !errors.Is(err, tron.ErrNotFound) {
		t.Fatalf("confirmations of an unknown transaction: %v", err)
	}
}

func bigInt(n int64) *big.Int { return big.NewInt(n) }

// Without a price source a TRC-20 payout records a network fee of 0 in the
// token (the contract's other choice) and books its TRX cost, energy and
// bandwidth in tron_payout_txs.
func TestUSDTPayoutFeeBookedInTRXWithoutPrices(t *testing.T) {
	e := setup(t, tron.Config{})
	s, err := tron.NewSender(tron.SenderConfig{Logger: quiet}, e.client, e.wallet, e.db, e.assets)
	if err != nil {
		t.Fatal(err)
	}
	e.node.fund(mustAddr(t, s.HotWalletAddress()), 50_000_000, 100_000_000)
	asset, _ := e.assets.Lookup("USDT.TRON")
	payee, _ := crypto.GenerateKey()
	tx, err := s.Build(e.ctx, chain.PayoutToSend{PayoutID: "po_np", Asset: asset, ToAddress: tron.EncodeAddress(keyAddress(payee)),
		Amount: domain.MustAmount("10")})
	if err != nil {
		t.Fatal(err)
	}
	if !tx.NetworkFee.IsZero() {
		t.Fatalf("network fee %s, want 0", tx.NetworkFee)
	}
	var feeTRX string
	var energy, size int64
	if err := e.db.Read.QueryRow(`SELECT fee_trx, energy, bandwidth_bytes FROM tron_payout_txs WHERE payout_id = 'po_np'`).Scan(&feeTRX, &energy, &size); err != nil {
		t.Fatal(err)
	}
	want := domain.FromBaseUnits(big.NewInt(fakeEnergyNew*210+size*1000), 6)
	if energy != fakeEnergyNew || feeTRX != want.String() {
		t.Fatalf("booked fee %s TRX for %d energy and %d bytes, want %s", feeTRX, energy, size, want)
	}
	if err := s.Broadcast(e.ctx, tx); err != nil {
		t.Fatal(err)
	}
	e.node.mine(1)
	if _, got := e.node.balances(tron.EncodeAddress(keyAddress(payee))); got.Int64() != 10_000_000 {
		t.Fatalf("payee got %s", got)
	}
}

// A token transfer whose dry run reverts (mainnet USDT's blacklist: a bare
// require, no reason string) answers as java-tron does, result true with
// transaction.ret FAILED: the payout fails at once with that reason,
// nothing is signed or broadcast and the merchant's funds come back.
func TestUSDTPayoutRevertedDryRun(t *testing.T) {
	p := withPayouts(setup(t, tron.Config{}), 50_000_000, 500_000_000)
	p.earn("USDT.TRON", "30")
	if err := p.node.Blacklist(p.sender.HotWalletAddress()); err != nil {
		t.Fatal(err)
	}
	payee, _ := crypto.GenerateKey()
	broadcasts := len(p.node.Verified())
	ref := p.request("USDT.TRON", "20", tron.EncodeAddress(keyAddress(payee)))
	p.pass()
	po := p.payout(ref)
	if po.Status != domain.PayoutFailedStatus || !strings.Contains(po.FailureReason, "dry run of the transfer reverted") ||
		!strings.Contains(po.FailureReason, "REVERT opcode executed") {
		t.Fatalf("payout: %+v", po)
	}
	if len(p.node.Verified()) != broadcasts {
		t.Fatalf("broadcasts: %v", p.node.Verified())
	}
	p.wantBalance("USDT.TRON", "29.925", "0")
}
