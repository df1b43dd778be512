package btc

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/sqldb"
)

const feeSat = 10_000

func TestExactPayment(t *testing.T) {
	g := newGateway(t)
	inv := g.newInvoice("0.01")
	tx := g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})

	g.scan() // mempool
	got := g.wantInvoice(inv.ID, domain.StatusConfirming, "0.01")
	if len(got.Payments) != 1 || got.Payments[0].TxID != txid(tx) || got.Payments[0].DepositID != txid(tx)+":0" || got.Payments[0].Confirmations != 0 {
		t.Fatalf("payments %+v", got.Payments)
	}
	g.wantBalance("0", "0.01")

	g.node.mine(t, 1)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusConfirming, "0.01") // 1 of 2 confirmations

	g.node.mine(t, 1)
	g.scan()
	got = g.wantInvoice(inv.ID, domain.StatusPaid, "0.01")
	if got.Payments[0].Status != "confirmed" || got.Payments[0].Confirmations != 2 {
		t.Fatalf("payment %+v", got.Payments[0])
	}
	g.wantBalance("0", "0.009975") // 0.01 - 0.25 %, pending until final

	g.node.mine(t, 3)
	g.scan()
	g.wantBalance("0", "0.009975") // 5 of 6 blocks
	g.node.mine(t, 1)
	g.scan()
	g.wantBalance("0.009975", "0") // final: available

	g.node.mine(t, 1)
	g.scan() // nothing new: no duplicate events
	want := []string{domain.TypeDepositDetected, domain.TypeInvoiceConfirming, domain.TypeDepositConfirmed, domain.TypeInvoicePaid,
		domain.TypeDepositFinalized}
	if ev := g.events(inv.ID); !slices.Equal(ev, want) {
		t.Fatalf("events %v, want %v", ev, want)
	}
	g.audit()
	if g.w.peer.blocksFetched() < 7 { // the gateway's watcher takes its blocks from the node's P2P port
		t.Fatalf("%d blocks came over the peer, want the 7 mined", g.w.peer.blocksFetched())
	}
}

func TestPartialThenTopUp(t *testing.T) {
	g := newGateway(t)
	inv := g.newInvoice("0.02")
	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.005")})
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPartiallyPaid, "0.005")
	g.node.mine(t, 2)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPartiallyPaid, "0.005")
	g.wantBalance("0", "0.0049875") // the confirmed part is credited already, pending until final

	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.015")})
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusConfirming, "0.02")
	g.wantBalance("0", "0.0199875")
	g.node.mine(t, 2)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPaid, "0.02")
	g.wantBalance("0", "0.01995")
	g.node.mine(t, 2) // the first payment is 6 deep, the second 4
	g.scan()
	g.wantBalance("0.0049875", "0.0149625")
	g.node.mine(t, 2)
	g.scan()
	g.wantBalance("0.01995", "0")
	g.audit()
}

func TestOverpaymentAndTwoPaymentsInOneBlock(t *testing.T) {
	g := newGateway(t)
	over := g.newInvoice("0.01")
	other := g.newInvoice("0.002")
	// One transaction pays both invoices; it is mined before the watcher
	// saw it in the mempool, so the block scan finds both outputs.
	g.node.pay(t, feeSat, payment{over.PayAddress, sat(t, "0.015")}, payment{other.PayAddress, sat(t, "0.002")})
	g.node.mine(t, 1)
	g.scan()
	g.wantInvoice(over.ID, domain.StatusConfirming, "0.015")
	g.wantInvoice(other.ID, domain.StatusConfirming, "0.002")
	g.node.mine(t, 1)
	g.scan()
	g.wantInvoice(over.ID, domain.StatusPaid, "0.015") // the excess is credited and shown
	g.wantInvoice(other.ID, domain.StatusPaid, "0.002")
	g.wantBalance("0", "0.0169575") // 0.017 - 0.0000425
	g.node.mine(t, 4)
	g.scan()
	g.wantBalance("0.0169575", "0")
	g.audit()
}

func TestPaymentAfterExpiry(t *testing.T) {
	g := newGateway(t)
	inv := g.newInvoice("0.01")
	g.clock = g.clock.Add(domain.DefaultExpiresIn + time.Minute)
	if _, err := g.h.ExpireInvoice.Handle(g.ctx, commands.ExpireInvoice{CommandID: "exp", InvoiceID: inv.ID}); err != nil {
		t.Fatal(err)
	}
	g.catchUp()
	g.wantInvoice(inv.ID, domain.StatusExpired, "0")

	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	g.scan()
	got := g.wantInvoice(inv.ID, domain.StatusExpired, "0.01")
	if !got.Payments[0].Late {
		t.Fatalf("payment not marked late: %+v", got.Payments[0])
	}
	g.node.mine(t, 2)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusExpired, "0.01")
	g.wantBalance("0", "0.009975") // credited all the same
	g.node.mine(t, 4)
	g.scan()
	g.wantBalance("0.009975", "0")
	g.audit()
}

// A reorg removes the block of a deposit that was already credited (paid):
// the credit is reverted, the transaction is back in the mempool and seen
// again, and once mined again it is credited again, once.
func TestReorgAfterPaid(t *testing.T) { testReorgAfterPaid(t, newGateway(t)) }

// The same with the read models and the watcher's tables on Postgres.
func TestReorgAfterPaidPostgres(t *testing.T) {
	testReorgAfterPaid(t, newGatewayOn(t, func(*sqlite.Store) sqldb.DB { return postgresDB(t) }))
}

func testReorgAfterPaid(t *testing.T, g *gateway) {
	inv := g.newInvoice("0.01")
	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	g.scan()
	first := g.node.mine(t, 1)[0]
	g.node.mine(t, 1)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPaid, "0.01")
	g.wantBalance("0", "0.009975") // confirmed, not final

	if err := g.node.client.InvalidateBlock(first); err != nil {
		t.Fatal(err)
	}
	g.scan()
	if n := g.count(inv.ID, domain.TypeDepositReverted); n != 1 {
		t.Fatalf("%d DepositReverted; events %v", n, g.events(inv.ID))
	}
	// The invoice no longer holds its amount (money rule 5) until the
	// payment, back in the mempool and seen again, confirms again.
	g.wantInvoice(inv.ID, domain.StatusReverted, "0.01")
	g.wantBalance("0", "0.01")

	g.node.mine(t, 2)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPaid, "0.01")
	g.wantBalance("0", "0.009975")
	if n := g.count(inv.ID, domain.TypeDepositConfirmed); n != 2 {
		t.Fatalf("%d DepositConfirmed; events %v", n, g.events(inv.ID))
	}
	g.node.mine(t, 4)
	g.scan()
	g.wantBalance("0.009975", "0")
	if n := g.count(inv.ID, domain.TypeDepositFinalized); n != 1 {
		t.Fatalf("%d DepositFinalized; events %v", n, g.events(inv.ID))
	}
	g.audit()
}

// A reorg before paid: the block with the payment goes, and the payment is
// double-spent (replace-by-fee) in the new chain. The watcher waits while
// the transaction is still in the mempool, then reverts it; the invoice
// goes back to new.
func TestReorgDoubleSpendBeforePaid(t *testing.T) {
	g := newGateway(t)
	inv := g.newInvoice("0.01")
	tx := g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	g.scan()
	block := g.node.mine(t, 1)[0]
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusConfirming, "0.01")

	if err := g.node.client.InvalidateBlock(block); err != nil {
		t.Fatal(err)
	}
	g.scan() // the transaction is back in the mempool: still a live payment
	g.wantInvoice(inv.ID, domain.StatusConfirming, "0.01")
	if n := g.count(inv.ID, domain.TypeDepositReverted); n != 0 {
		t.Fatalf("reverted a payment still in the mempool: %v", g.events(inv.ID))
	}

	g.node.replace(t, tx)
	g.node.mine(t, 1)
	g.scan()
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusNew, "0")
	g.wantBalance("0", "0")
	if n := g.count(inv.ID, domain.TypeDepositReverted); n != 1 {
		t.Fatalf("%d DepositReverted; events %v", n, g.events(inv.ID))
	}

	// The merchant's customer pays again; it counts.
	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	g.node.mine(t, 2)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPaid, "0.01")
	g.wantBalance("0", "0.009975")
	g.node.mine(t, 4)
	g.scan()
	g.wantBalance("0.009975", "0")
	g.audit()
}

// The gateway is down while blocks are mined: a new watcher resumes from
// the stored checkpoint, finds the payment it never saw and confirms the
// one it had seen in the mempool.
func TestRestartCatchesUp(t *testing.T) {
	g := newGateway(t)
	seen := g.newInvoice("0.01")
	missed := g.newInvoice("0.03")
	g.node.pay(t, feeSat, payment{seen.PayAddress, sat(t, "0.01")})
	g.scan()
	g.wantInvoice(seen.ID, domain.StatusConfirming, "0.01")
	g.w.Close()

	// Down: a payment and five blocks go by.
	g.node.pay(t, feeSat, payment{missed.PayAddress, sat(t, "0.03")})
	g.node.mine(t, 5)

	g.w = g.watcher(1) // StartHeight is ignored once there is a checkpoint
	g.scan()
	g.wantInvoice(seen.ID, domain.StatusPaid, "0.01")
	got := g.wantInvoice(missed.ID, domain.StatusPaid, "0.03")
	if got.Payments[0].Confirmations != 5 {
		t.Fatalf("missed payment recorded with %d confirmations", got.Payments[0].Confirmations)
	}
	g.wantBalance("0", "0.0399") // 5 blocks: confirmed, not final
	g.node.mine(t, 1)
	g.scan()
	g.wantBalance("0.0399", "0")
	g.audit()
}

// failingFinality is a ledger that refuses to finalize (down, say).
type failingFinality struct{ deposits }

func (failingFinality) Finalize(context.Context, string, string, int) error {
	return errors.New("ledger unavailable")
}

// Finality survives failures and restarts: a ledger that fails the
// finality fails the scan, and the next scan does it; a watcher stopped
// between the confirmation and finality, restarted after the deposit is
// final, finalizes it; a finality recorded in the ledger but not in the
// watcher's table (a crash in between) is done again without a second
// event.
func TestFinalityAcrossFailuresAndRestarts(t *testing.T) {
	g := newGateway(t)
	inv := g.newInvoice("0.01")
	tx := g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	g.scan()
	g.node.mine(t, 2)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPaid, "0.01")
	g.wantBalance("0", "0.009975")

	g.w.Close() // down between the confirmation and finality
	g.node.mine(t, 4)
	g.w = g.watcher(1)
	g.w.sink = failingFinality{g.sink}
	g.catchUp()
	if err := g.w.ScanOnce(g.ctx); err == nil {
		t.Fatal("a scan whose finality failed reported success")
	}
	g.catchUp()
	g.wantBalance("0", "0.009975")
	g.w.sink = g.sink
	g.scan()
	g.wantBalance("0.009975", "0")

	id := txid(tx) + ":0"
	if _, err := g.db.Write.Exec(g.db.Q(`UPDATE chain_btc_deposits SET state = ? WHERE deposit_id = ?`), stateConfirmed, id); err != nil {
		t.Fatal(err)
	}
	g.scan()
	if n := g.count(inv.ID, domain.TypeDepositFinalized); n != 1 {
		t.Fatalf("%d DepositFinalized; events %v", n, g.events(inv.ID))
	}
	var state string
	if err := g.db.Read.QueryRow(g.db.Q(`SELECT state FROM chain_btc_deposits WHERE deposit_id = ?`), id).Scan(&state); err != nil || state != stateFinal {
		t.Fatalf("deposit state %q %v, want final", state, err)
	}
	g.wantBalance("0.009975", "0")
	g.audit()
}

// Config.Finality overrides the asset's 6 blocks.
func TestFinalityOverride(t *testing.T) {
	g := newGateway(t)
	g.finality = map[string]int{"BTC": 3}
	g.w = g.watcher(g.node.tip(t) + 1)
	inv := g.newInvoice("0.01")
	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	g.node.mine(t, 2)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPaid, "0.01")
	g.wantBalance("0", "0.009975")
	g.node.mine(t, 1)
	g.scan()
	g.wantBalance("0.009975", "0")
	g.audit()
}

// A reorg deeper than finality removes a final deposit: it is reverted
// all the same, out of the available balance; back in the mempool, the
// payment is seen again, and mined again it is credited and final again.
func TestReorgAfterFinal(t *testing.T) {
	g := newGateway(t)
	inv := g.newInvoice("0.01")
	g.node.pay(t, feeSat, payment{inv.PayAddress, sat(t, "0.01")})
	g.scan()
	first := g.node.mine(t, 1)[0]
	g.node.mine(t, 5)
	g.scan()
	g.wantBalance("0.009975", "0")

	if err := g.node.client.InvalidateBlock(first); err != nil {
		t.Fatal(err)
	}
	g.scan()
	if n := g.count(inv.ID, domain.TypeDepositReverted); n != 1 {
		t.Fatalf("%d DepositReverted; events %v", n, g.events(inv.ID))
	}
	g.wantInvoice(inv.ID, domain.StatusReverted, "0.01")
	g.wantBalance("0", "0.01")

	g.node.mine(t, 6)
	g.scan()
	g.wantInvoice(inv.ID, domain.StatusPaid, "0.01")
	g.wantBalance("0.009975", "0")
	if n := g.count(inv.ID, domain.TypeDepositFinalized); n != 2 {
		t.Fatalf("%d DepositFinalized; events %v", n, g.events(inv.ID))
	}
	g.audit()
}
