package sim_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/sim"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

const token = "operator-secret"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type env struct {
	t        *testing.T
	ctx      context.Context
	store    *sqlite.Store
	db       sqldb.DB
	assets   domain.Assets
	h        commands.Handlers
	runner   *projections.Runner
	read     *readapi.SQL
	sink     chain.Sink
	sim      *sim.Simulator
	srv      *httptest.Server
	merchant string
	now      time.Time
}

// setup builds the embedded gateway's write and read sides, the simulator
// and its operator endpoints on an httptest server.
func setup(t *testing.T, assets domain.Assets, cfg sim.Config) *env {
	e := &env{t: t, ctx: context.Background(), assets: assets, now: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	var err error
	e.store, err = sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.store.Close() })
	e.db = sqldb.DB{Read: e.store.DB(), Write: e.store.WriteDB(), Dialect: sqldb.SQLite}
	if err := projections.Migrate(e.ctx, e.db); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := sim.Migrate(e.ctx, e.db); err != nil {
			t.Fatalf("migrate %d: %v", i, err)
		}
	}
	clock := func() time.Time { return e.now }
	d := commands.Deps{Store: e.store, Assets: assets, Now: clock, NewID: commands.NewIDGenerator(clock)}
	e.h = commands.New(d, commands.NewIndexAllocator(d, sim.Deriver([]byte("seed"))), func(domain.Chain, string) error { return nil })
	e.runner = projections.NewRunner(e.store, e.db, quiet)
	e.read = readapi.NewSQL(e.db)
	e.sink = chain.Sink{Commands: e.h, Addresses: e.read}
	cfg.Now = clock
	e.sim = e.newSim(cfg)
	m, err := e.h.RegisterMerchant.Handle(e.ctx, commands.RegisterMerchant{CommandID: "reg", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	e.merchant = m.MerchantID
	return e
}

func (e *env) newSim(cfg sim.Config) *sim.Simulator {
	s, err := sim.New(cfg, e.sink, e.db, e.assets, quiet)
	if err != nil {
		e.t.Fatal(err)
	}
	h, err := s.Routes(token)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.srv != nil {
		e.srv.Close()
	}
	e.srv = httptest.NewServer(h)
	e.t.Cleanup(e.srv.Close)
	return s
}

func (e *env) invoice(asset, amount string, expiresIn time.Duration) (id, address string) {
	e.t.Helper()
	e.now = e.now.Add(time.Millisecond)
	inv, err := e.h.CreateInvoice.Handle(e.ctx, commands.CreateInvoice{CommandID: "c" + e.now.String(), MerchantID: e.merchant,
		Asset: asset, Amount: amount, ExpiresIn: expiresIn})
	if err != nil {
		e.t.Fatal(err)
	}
	e.catchUp()
	return inv.Invoice.InvoiceID, inv.Invoice.PayAddress
}

func (e *env) catchUp() {
	e.t.Helper()
	if err := e.runner.CatchUp(e.ctx); err != nil {
		e.t.Fatal(err)
	}
}

// post sends an operator request and returns the status and decoded body.
func (e *env) post(path, auth, body string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		e.t.Fatalf("%s answered %d %q", path, resp.StatusCode, raw)
	}
	e.catchUp()
	return resp.StatusCode, out
}

func (e *env) ok(path, body string) map[string]any {
	e.t.Helper()
	status, out := e.post(path, "Bearer "+token, body)
	if status != http.StatusOK {
		e.t.Fatalf("%s %s: %d %v", path, body, status, out)
	}
	return out
}

func (e *env) wantStatus(id string, want domain.Status) readapi.Invoice {
	e.t.Helper()
	inv, err := e.read.InvoiceByID(e.ctx, e.merchant, id)
	if err != nil {
		e.t.Fatal(err)
	}
	if inv.Status != want {
		e.t.Fatalf("invoice %s is %s, want %s (received %s)", id, inv.Status, want, inv.AmountReceived)
	}
	return inv
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
	e.t.Fatalf("no %s balance", asset)
}

func (e *env) audit() {
	e.t.Helper()
	rep, err := projections.Audit(e.ctx, e.store, e.db)
	if err != nil || !rep.OK() {
		e.t.Fatalf("audit: %+v %v", rep, err)
	}
}

// With the built-in assets (BTC needs 2 confirmations): a partial payment,
// the rest, then blocks until paid, all over the operator endpoints.
func TestPayAndMineOverHTTP(t *testing.T) {
	e := setup(t, domain.DefaultAssets(), sim.Config{})
	id, addr := e.invoice("BTC", "0.01", 0)
	if !strings.HasPrefix(addr, "simbtc1q") {
		t.Fatalf("address %s", addr)
	}
	p := e.ok("/v1/sim/pay", `{"invoice_id":"`+id+`","amount":"0.004"}`)
	if p["invoice_id"] != id || p["asset"] != "BTC" || p["amount"] != "0.004" || p["confirmations"] != 0.0 ||
		p["required_confirmations"] != 2.0 || !strings.HasSuffix(p["deposit_id"].(string), ":0") {
		t.Fatalf("pay answer %v", p)
	}
	e.wantStatus(id, domain.StatusPartiallyPaid)
	e.ok("/v1/sim/pay", `{"address":"`+addr+`","amount":"0.006"}`)
	e.wantStatus(id, domain.StatusConfirming)
	e.wantBalance("BTC", "0", "0.01")
	m := e.ok("/v1/sim/mine", `{}`)
	if m["blocks"] != 1.0 || len(m["confirmed"].([]any)) != 0 || m["heights"].(map[string]any)["bitcoin"] != 1.0 {
		t.Fatalf("mine answer %v", m)
	}
	e.wantStatus(id, domain.StatusConfirming)
	m = e.ok("/v1/sim/mine", `{"blocks":1}`)
	if len(m["confirmed"].([]any)) != 2 {
		t.Fatalf("mine answer %v", m)
	}
	inv := e.wantStatus(id, domain.StatusPaid)
	if inv.AmountReceived.String() != "0.01" || len(inv.Payments) != 2 || inv.Payments[1].Confirmations != 2 {
		t.Fatalf("invoice %+v", inv)
	}
	// Money rule 4: paid is not yet spendable; the net stays in pending
	// until the simulator's finality, one block past the confirmations.
	e.wantBalance("BTC", "0", "0.009975")
	m = e.ok("/v1/sim/mine", `{"blocks":1}`)
	if len(m["confirmed"].([]any)) != 0 || len(m["final"].([]any)) != 2 {
		t.Fatalf("mine answer %v", m)
	}
	e.wantBalance("BTC", "0.009975", "0")
	m = e.ok("/v1/sim/mine", `{"blocks":5}`) // nothing left to confirm or finalize
	if len(m["confirmed"].([]any)) != 0 || len(m["final"].([]any)) != 0 {
		t.Fatalf("mine answer %v", m)
	}
	e.wantBalance("BTC", "0.009975", "0")
	e.audit()
}

// The quick start: every asset at one confirmation, ETH and a token.
func TestQuickStartOneConfirmation(t *testing.T) {
	assets, err := sim.WithConfirmations(domain.DefaultAssets(), 1)
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t, assets, sim.Config{})
	eth, _ := e.invoice("ETH", "0.5", 0)
	usdt, _ := e.invoice("USDT.ETH", "49.99", 0)
	over, _ := e.invoice("TRX", "10", 0)
	for _, p := range []struct{ id, amount string }{{eth, "0.5"}, {usdt, "49.99"}, {over, "12.5"}} {
		txid, err := e.sim.Pay(e.ctx, p.id, p.amount)
		if err != nil || txid == "" {
			t.Fatalf("pay %s: %q %v", p.id, txid, err)
		}
	}
	e.catchUp()
	e.wantStatus(eth, domain.StatusConfirming)
	res, err := e.sim.Mine(e.ctx, 1)
	if err != nil || len(res.Confirmed) != 3 {
		t.Fatalf("mine: %+v %v", res, err)
	}
	e.catchUp()
	e.wantStatus(eth, domain.StatusPaid)
	e.wantStatus(usdt, domain.StatusPaid)
	if inv := e.wantStatus(over, domain.StatusPaid); inv.AmountReceived.String() != "12.5" {
		t.Fatalf("overpaid invoice received %s", inv.AmountReceived)
	}
	// Paid, not yet final (money rule 4): the nets are pending.
	e.wantBalance("ETH", "0", "0.49875")
	e.wantBalance("USDT.ETH", "0", "49.865025")
	e.wantBalance("TRX", "0", "12.46875")
	// One more block: final, available.
	res, err = e.sim.Mine(e.ctx, 1)
	if err != nil || len(res.Confirmed) != 0 || len(res.Final) != 3 {
		t.Fatalf("mine: %+v %v", res, err)
	}
	e.catchUp()
	e.wantBalance("ETH", "0.49875", "0")
	e.wantBalance("USDT.ETH", "49.865025", "0")
	e.wantBalance("TRX", "12.46875", "0")
	e.audit()
}

// A threshold override above the asset's is honoured; one below an
// invoice's required confirmations is raised to it.
func TestConfirmationOverride(t *testing.T) {
	e := setup(t, domain.DefaultAssets(), sim.Config{Confirmations: map[string]int{"BTC": 3, "ETH": 1}})
	btc, _ := e.invoice("BTC", "1", 0)
	eth, _ := e.invoice("ETH", "1", 0)
	e.sim.Pay(e.ctx, btc, "1")
	e.sim.Pay(e.ctx, eth, "1")
	e.sim.Mine(e.ctx, 2)
	e.catchUp()
	e.wantStatus(btc, domain.StatusConfirming) // 2 of 3
	e.sim.Mine(e.ctx, 1)
	e.catchUp()
	e.wantStatus(btc, domain.StatusPaid)
	e.sim.Mine(e.ctx, 8)
	e.catchUp()
	e.wantStatus(eth, domain.StatusConfirming) // 11 of the invoice's 12
	e.sim.Mine(e.ctx, 1)
	e.catchUp()
	e.wantStatus(eth, domain.StatusPaid)
}

// A payment after expiry is credited; the invoice stays expired.
func TestLatePayment(t *testing.T) {
	assets, _ := sim.WithConfirmations(domain.DefaultAssets(), 1)
	e := setup(t, assets, sim.Config{})
	id, _ := e.invoice("USDT.TRON", "20", time.Minute)
	e.now = e.now.Add(2 * time.Minute)
	if _, err := e.h.ExpireInvoice.Handle(e.ctx, commands.ExpireInvoice{CommandID: "x", InvoiceID: id}); err != nil {
		t.Fatal(err)
	}
	e.catchUp()
	e.ok("/v1/sim/pay", `{"invoice_id":"`+id+`","amount":"20"}`)
	e.ok("/v1/sim/mine", `{"blocks":1}`)
	inv := e.wantStatus(id, domain.StatusExpired)
	if len(inv.Payments) != 1 || !inv.Payments[0].Late || inv.Payments[0].Status != readapi.PaymentConfirmed {
		t.Fatalf("payments %+v", inv.Payments)
	}
	e.wantBalance("USDT.TRON", "0", "19.95") // credited, not yet final (money rule 4)
	e.ok("/v1/sim/mine", `{"blocks":1}`)
	e.wantStatus(id, domain.StatusExpired)
	e.wantBalance("USDT.TRON", "19.95", "0")
}

// A simulated reorg reverts what the dropped blocks held, confirmed or not,
// final or not; a payment still waiting for its first block stays. Here
// the reverted transactions are not mined again (reinclude false: a double
// spend); TestReorgReincludes has them back in the mempool.
func TestReorg(t *testing.T) {
	e := setup(t, domain.DefaultAssets(), sim.Config{})
	a, _ := e.invoice("BTC", "1", 0)
	b, _ := e.invoice("BTC", "2", 0)
	c, _ := e.invoice("BTC", "3", 0)
	e.sim.Pay(e.ctx, a, "1")
	e.sim.Mine(e.ctx, 2) // a: paid
	e.sim.Pay(e.ctx, b, "2")
	e.sim.Mine(e.ctx, 1) // a: final (3 blocks); b: 1 confirmation
	e.sim.Pay(e.ctx, c, "3")
	e.catchUp()
	e.wantStatus(a, domain.StatusPaid)
	e.wantStatus(b, domain.StatusConfirming)
	e.wantBalance("BTC", "0.9975", "5")
	r := e.ok("/v1/sim/reorg", `{"depth":3,"reinclude":false}`)
	if len(r["reverted"].([]any)) != 2 {
		t.Fatalf("reorg answer %v", r)
	}
	// Money rule 5 (changed: a used to stay paid): a paid invoice that no
	// longer holds its amount is reverted; its credit is undone, out of
	// available since it was final.
	if inv := e.wantStatus(a, domain.StatusReverted); inv.AmountReceived.String() != "0" || inv.Fee.String() != "0" {
		t.Fatalf("reverted invoice received %s, fee %s", inv.AmountReceived, inv.Fee)
	}
	e.wantStatus(b, domain.StatusNew)
	e.wantStatus(c, domain.StatusConfirming)
	e.wantBalance("BTC", "0", "3")
	e.sim.Mine(e.ctx, 2)
	e.catchUp()
	e.wantStatus(c, domain.StatusPaid)
	e.wantStatus(a, domain.StatusReverted) // gone for good
	e.wantBalance("BTC", "0", "2.9925")
	e.sim.Mine(e.ctx, 1) // c: final
	e.catchUp()
	e.wantBalance("BTC", "2.9925", "0")
	e.audit()
}

// With reinclude (the operator endpoint's default), the reorganised
// payments are back in the mempool: seen again with 0 confirmations, and
// the next blocks mine them again. A reverted invoice whose payment is
// confirmed again is paid again (money rule 5).
func TestReorgReincludes(t *testing.T) {
	e := setup(t, domain.DefaultAssets(), sim.Config{})
	a, _ := e.invoice("BTC", "1", 0)
	b, _ := e.invoice("BTC", "2", 0)
	e.sim.Pay(e.ctx, a, "1")
	e.sim.Mine(e.ctx, 3) // a: paid (2), final (3)
	e.sim.Pay(e.ctx, b, "2")
	e.sim.Mine(e.ctx, 1) // b: 1 confirmation
	e.catchUp()
	e.wantStatus(a, domain.StatusPaid)
	e.wantStatus(b, domain.StatusConfirming)
	e.wantBalance("BTC", "0.9975", "2")
	r := e.ok("/v1/sim/reorg", `{"depth":4}`)
	if len(r["reverted"].([]any)) != 2 {
		t.Fatalf("reorg answer %v", r)
	}
	// Both back in the mempool: detected again, in pending, unconfirmed.
	inv := e.wantStatus(a, domain.StatusReverted)
	if inv.AmountReceived.String() != "1" || inv.Fee.String() != "0" {
		t.Fatalf("invoice a after the reorg: received %s, fee %s", inv.AmountReceived, inv.Fee)
	}
	e.wantStatus(b, domain.StatusConfirming)
	e.wantBalance("BTC", "0", "3")
	m := e.ok("/v1/sim/mine", `{"blocks":1}`)
	if len(m["confirmed"].([]any)) != 0 {
		t.Fatalf("confirmed at one block: %v", m)
	}
	e.wantStatus(a, domain.StatusReverted)
	m = e.ok("/v1/sim/mine", `{"blocks":1}`)
	if len(m["confirmed"].([]any)) != 2 {
		t.Fatalf("mine answer %v", m)
	}
	if inv := e.wantStatus(a, domain.StatusPaid); inv.Fee.String() != "0.0025" {
		t.Fatalf("invoice a paid again with fee %s", inv.Fee)
	}
	e.wantStatus(b, domain.StatusPaid)
	e.wantBalance("BTC", "0", "2.9925")
	m = e.ok("/v1/sim/mine", `{"blocks":1}`)
	if len(m["final"].([]any)) != 2 {
		t.Fatalf("mine answer %v", m)
	}
	e.wantBalance("BTC", "2.9925", "0")
	e.audit()
}

// The simulator's state is in the database: a restarted gateway confirms
// payments made before the restart.
func TestRestart(t *testing.T) {
	e := setup(t, domain.DefaultAssets(), sim.Config{})
	id, _ := e.invoice("BTC", "0.5", 0)
	e.ok("/v1/sim/pay", `{"invoice_id":"`+id+`","amount":"0.5"}`)
	e.ok("/v1/sim/mine", `{"blocks":1}`)
	e.sim = e.newSim(sim.Config{})
	m := e.ok("/v1/sim/mine", `{"blocks":1}`)
	if m["heights"].(map[string]any)["bitcoin"] != 2.0 {
		t.Fatalf("heights after restart: %v", m)
	}
	e.wantStatus(id, domain.StatusPaid)
}

func TestHTTPErrors(t *testing.T) {
	e := setup(t, domain.DefaultAssets(), sim.Config{})
	id, _ := e.invoice("ETH", "1", 0)
	bearer := "Bearer " + token
	for _, tc := range []struct {
		path, auth, body string
		status           int
		code             string
	}{
		{"/v1/sim/pay", "", `{"invoice_id":"` + id + `","amount":"1"}`, 401, "unauthorized"},
		{"/v1/sim/pay", "Bearer wrong", `{"invoice_id":"` + id + `","amount":"1"}`, 401, "unauthorized"},
		{"/v1/sim/pay", token, `{"invoice_id":"` + id + `","amount":"1"}`, 401, "unauthorized"},
		{"/v1/sim/mine", "", `{}`, 401, "unauthorized"},
		{"/v1/sim/pay", bearer, `{"invoice_id":`, 400, "invalid_json"},
		{"/v1/sim/pay", bearer, `{"invoice_id":"` + id + `","amount":1}`, 400, "invalid_json"},
		{"/v1/sim/pay", bearer, `{"invoice_id":"` + id + `","amount":"1","extra":1}`, 400, "invalid_json"},
		{"/v1/sim/pay", bearer, `{"amount":"1"}`, 400, "validation_error"},
		{"/v1/sim/pay", bearer, `{"invoice_id":"` + id + `"}`, 400, "validation_error"},
		{"/v1/sim/pay", bearer, `{"invoice_id":"` + id + `","address":"0x1","amount":"1"}`, 400, "validation_error"},
		{"/v1/sim/pay", bearer, `{"invoice_id":"` + id + `","amount":"1e3"}`, 400, "invalid_amount"},
		{"/v1/sim/pay", bearer, `{"invoice_id":"` + id + `","amount":"-1"}`, 400, "invalid_amount"},
		{"/v1/sim/pay", bearer, `{"invoice_id":"` + id + `","amount":"0"}`, 400, "invalid_amount"},
		{"/v1/sim/pay", bearer, `{"invoice_id":"` + id + `","amount":"0.0000000000000000001"}`, 400, "invalid_amount"},
		{"/v1/sim/pay", bearer, `{"invoice_id":"inv_nope","amount":"1"}`, 404, "not_found"},
		{"/v1/sim/pay", bearer, `{"address":"0xnope","amount":"1"}`, 404, "not_found"},
		{"/v1/sim/mine", bearer, `{"blocks":0}`, 400, "validation_error"},
		{"/v1/sim/mine", bearer, `{"blocks":-3}`, 400, "validation_error"},
		{"/v1/sim/mine", bearer, `{"blocks":100001}`, 400, "validation_error"},
		{"/v1/sim/mine", bearer, `{"blocks":"2"}`, 400, "invalid_json"},
		{"/v1/sim/reorg", bearer, `{}`, 400, "validation_error"},
		{"/v1/sim/nothing", bearer, `{}`, 404, "not_found"},
	} {
		status, out := e.post(tc.path, tc.auth, tc.body)
		if status != tc.status || out["error"] != tc.code || out["message"] == "" {
			t.Errorf("%s %s %s: %d %v, want %d %s", tc.path, tc.auth, tc.body, status, out, tc.status, tc.code)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/sim/mine", nil)
	req.Header.Set("Authorization", bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET mine: %d", resp.StatusCode)
	}
	if _, err := e.sim.Routes(""); !errors.Is(err, sim.ErrNoToken) {
		t.Fatalf("routes without a token: %v", err)
	}
	// Nothing was paid by the refused requests.
	e.wantStatus(id, domain.StatusNew)
}

// Only the configured chains are simulated.
func TestChainsLimit(t *testing.T) {
	e := setup(t, domain.DefaultAssets(), sim.Config{Chains: []domain.Chain{domain.ChainBitcoin}})
	id, _ := e.invoice("ETH", "1", 0)
	if _, err := e.sim.Pay(e.ctx, id, "1"); !errors.Is(err, sim.ErrNotSimulated) || !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("paid an ETH invoice with only bitcoin simulated: %v", err)
	}
	if _, err := sim.New(sim.Config{Confirmations: map[string]int{"NOPE": 1}}, e.sink, e.db, e.assets, nil); err == nil {
		t.Fatal("accepted an unknown asset")
	}
	if _, err := sim.New(sim.Config{Confirmations: map[string]int{"BTC": 0}}, e.sink, e.db, e.assets, nil); err == nil {
		t.Fatal("accepted 0 confirmations")
	}
}

// picd sim pay / mine against the running gateway's endpoints.
func TestCLI(t *testing.T) {
	assets, _ := sim.WithConfirmations(domain.DefaultAssets(), 1)
	e := setup(t, assets, sim.Config{})
	id, _ := e.invoice("BTC", "0.02", 0)
	var out bytes.Buffer
	if err := sim.CLI(e.ctx, []string{"pay", id, "0.02"}, e.srv.URL+"/", token, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "sent 0.02 BTC") || !strings.Contains(out.String(), id) {
		t.Fatalf("pay printed %q", out.String())
	}
	e.catchUp()
	e.wantStatus(id, domain.StatusConfirming)
	out.Reset()
	if err := sim.CLI(e.ctx, []string{"mine"}, e.srv.URL, token, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "mined 1 block(s)") || !strings.Contains(out.String(), "confirmed") {
		t.Fatalf("mine printed %q", out.String())
	}
	e.catchUp()
	e.wantStatus(id, domain.StatusPaid)
	out.Reset()
	if err := sim.CLI(e.ctx, []string{"mine", "3"}, e.srv.URL, token, &out); err != nil || !strings.Contains(out.String(), "bitcoin 4") ||
		!strings.Contains(out.String(), "final ") {
		t.Fatalf("mine 3: %q %v", out.String(), err)
	}
	out.Reset()
	if err := sim.CLI(e.ctx, []string{"reorg", "--double-spend", "4"}, e.srv.URL, token, &out); err != nil ||
		!strings.Contains(out.String(), "1 payment(s) reverted") || strings.Contains(out.String(), "mempool") {
		t.Fatalf("reorg --double-spend: %q %v", out.String(), err)
	}

	for _, args := range [][]string{nil, {"pay", id}, {"mine", "x"}, {"mine", "0"}, {"mine", "1", "2"}, {"fly"}} {
		if err := sim.CLI(e.ctx, args, e.srv.URL, token, io.Discard); !errors.Is(err, sim.ErrUsage) {
			t.Errorf("%v: %v", args, err)
		}
	}
	if err := sim.CLI(e.ctx, []string{"mine"}, e.srv.URL, "", io.Discard); !errors.Is(err, sim.ErrNoToken) {
		t.Errorf("no token: %v", err)
	}
	err := sim.CLI(e.ctx, []string{"pay", "inv_nope", "1"}, e.srv.URL, token, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "404 not_found") {
		t.Errorf("unknown invoice: %v", err)
	}
	if err := sim.CLI(e.ctx, []string{"mine"}, e.srv.URL, "wrong", io.Discard); err == nil || !strings.Contains(err.Error(), "401") {
		t.Errorf("wrong token: %v", err)
	}
}
