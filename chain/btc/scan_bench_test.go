package btc

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"

	"github.com/acceptcryptohere/gateway/domain"
)

// BenchmarkScanBlockEndToEnd scans full blocks of the real btcd end to
// end: 3,000 transactions per block, 30 of them paying 30 new invoices,
// against 100,000 and 1,000,000 watched addresses. One ScanOnce per block asks for the
// tip, fetches the block (getblockhash, then the block: fetch=p2p asks
// the node's P2P port for it, as the gateway does when PIC_BTC_P2P_HOST is
// set; fetch=rpc calls getblock verbosity 0, hex over HTTP), decodes it, matches it, reports each payment to the
// ledger (an event append each), records the block, its deposits and the
// checkpoint, confirms the 30 deposits of the block below (2
// confirmations: another append each), and polls the mempool: the
// steady state of a busy gateway. Between blocks btcd is left to finish
// its own work on the new block (indexes, mempool), which a real node
// does on its own machine (quiet).
//
// Metrics: ms/block (mean) and p50-ms/block (median) end to end; blocks/s
// and deposits/s (new payments reported per second of scanning);
// fetch-ms/block the time inside getblockhash and the block's fetch
// (btcd reads the ~700 KB block and, over RPC, hex-encodes it, on this
// machine's CPUs; the watcher decodes it, and over P2P checks its merkle
// root); rest-ms/block everything else (matching, ledger appends,
// bookkeeping, the other RPCs).
func BenchmarkScanBlockEndToEnd(b *testing.B) {
	for _, watched := range []int{100_000, 1_000_000} {
		for _, fetch := range []string{"p2p", "rpc"} {
			b.Run(fmt.Sprintf("watched=%dk/fetch=%s", watched/1000, fetch), func(b *testing.B) { benchEndToEnd(b, watched, fetch == "p2p") })
		}
	}
}

func benchEndToEnd(b *testing.B, watched int, p2p bool) {
	const txsPerBlock, paidPerBlock, paySat, feeSat = 3000, 30, 10_000, 2_000
	g := newGateway(b)
	n := g.node
	if !p2p {
		g.w.node = hexBlocks{g.w.client}
	}
	// Addresses of invoices that are never paid, straight into the read
	// model: only the watched set's size matters here.
	fakeInvoices(b, g, watched-paidPerBlock)
	var paid []string // invoice ids, in the order their blocks were mined
	timed := &timedNode{node: g.w.node}
	g.w.node = timed

	// txsPerBlock coins of the miner's, from two mature coinbases.
	var coins []coin
	for f := 0; f < 2; f++ {
		if len(n.coins) == 0 {
			b.Fatal("test node out of mature coins")
		}
		c := n.coins[0]
		n.coins = n.coins[1:]
		tx := wire.NewMsgTx(wire.TxVersion)
		tx.AddTxIn(wire.NewTxIn(&c.op, nil, nil))
		each := (c.value - 100_000) / (txsPerBlock / 2)
		for i := 0; i < txsPerBlock/2; i++ {
			tx.AddTxOut(wire.NewTxOut(each, n.minerScript))
		}
		signLegacy(b, n, tx)
		n.send(b, tx)
		for i := range tx.TxOut {
			coins = append(coins, coin{op: wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)}, value: each})
		}
	}
	n.mine(b, 1)
	g.scan()
	// block mines txsPerBlock transactions, each spending a coin to one
	// payment (every 100th to an invoice) and change, which is the coin
	// of the next block.
	block := func() {
		var ours [][]byte
		for i := 0; i < paidPerBlock; i++ {
			inv := g.newInvoice("0.0001")
			script, err := addressScript(inv.PayAddress, g.w)
			if err != nil {
				b.Fatal(err)
			}
			ours, paid = append(ours, script), append(paid, inv.ID)
		}
		for i := range coins {
			script := randomP2WPKH(b, n)
			if i%(txsPerBlock/paidPerBlock) == 0 {
				script = ours[i/(txsPerBlock/paidPerBlock)]
			}
			tx := wire.NewMsgTx(wire.TxVersion)
			tx.AddTxIn(wire.NewTxIn(&coins[i].op, nil, nil))
			tx.AddTxOut(wire.NewTxOut(paySat, script))
			tx.AddTxOut(wire.NewTxOut(coins[i].value-paySat-feeSat, n.minerScript))
			signLegacy(b, n, tx)
			n.send(b, tx)
			coins[i] = coin{op: wire.OutPoint{Hash: tx.TxHash(), Index: 1}, value: tx.TxOut[1].Value}
		}
		hashes := n.mine(b, 1)
		blk, err := n.client.GetBlock(hashes[0])
		if err != nil {
			b.Fatal(err)
		}
		if len(blk.Transactions) != txsPerBlock+1 {
			b.Fatalf("block has %d transactions, want %d and the coinbase", len(blk.Transactions), txsPerBlock)
		}
		g.catchUp()
		n.quiet(b)
	}
	// One block before timing, so that every timed scan also confirms the
	// deposits of the block below it.
	block()
	g.scan()
	perBlock := make([]time.Duration, 0, b.N)
	timed.reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		block()
		start := time.Now()
		b.StartTimer()
		if err := g.w.ScanOnce(g.ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		perBlock = append(perBlock, time.Since(start))
	}
	var scanTime time.Duration
	for _, d := range perBlock {
		scanTime += d
	}
	slices.Sort(perBlock)
	fetch := timed.total()
	perBlockMs := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(perBlockMs(scanTime), "ms/block")
	b.ReportMetric(float64(perBlock[len(perBlock)/2].Microseconds())/1000, "p50-ms/block")
	b.ReportMetric(float64(b.N)/scanTime.Seconds(), "blocks/s")
	b.ReportMetric(float64(paidPerBlock*b.N)/scanTime.Seconds(), "deposits/s")
	b.ReportMetric(perBlockMs(fetch), "fetch-ms/block")
	b.ReportMetric(perBlockMs(scanTime-fetch), "rest-ms/block")
	if p2p && g.w.peer.blocksFetched() < b.N {
		b.Fatalf("%d blocks came over the peer, want at least %d", g.w.peer.blocksFetched(), b.N)
	}
	// Every invoice of a block at least 2 deep is paid.
	g.catchUp()
	for _, id := range paid[:len(paid)-paidPerBlock] {
		if inv := g.invoice(id); inv.Status != domain.StatusPaid {
			b.Fatalf("invoice %s is %s, payments %+v", id, inv.Status, inv.Payments)
		}
	}
}

// quiet waits until btcd has finished the work a new block starts in the
// background (indexing, mempool upkeep): quiet means its process used
// under 10 % of one core for 50 ms.
func (n *btcdNode) quiet(tb testing.TB) {
	tb.Helper()
	stat := fmt.Sprintf("/proc/%d/stat", n.cmd.Process.Pid)
	cpu := func() time.Duration {
		raw, err := os.ReadFile(stat)
		if err != nil {
			tb.Fatal(err)
		}
		// Fields after the command name (which is in parentheses): utime
		// and stime are the 12th and 13th, in clock ticks (100 per second).
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		utime, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		return time.Duration(utime+stime) * 10 * time.Millisecond
	}
	const window = 50 * time.Millisecond
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		before := cpu()
		time.Sleep(window)
		if cpu()-before < window/10 {
			return
		}
	}
	tb.Fatal("btcd did not settle in 10 s")
}

// fakeInvoices adds n open BTC invoices at fresh addresses to the read
// model, 100 a statement.
func fakeInvoices(tb testing.TB, g *gateway, n int) {
	tx, err := g.db.Write.BeginTx(g.ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	defer tx.Rollback()
	const per = 100
	q := `INSERT INTO invoices (invoice_id, merchant_id, asset, status, amount, pay_amount,
		pay_address, fee, fee_bps, required_confirmations, created_at, expires_at, updated_at) VALUES ` +
		strings.TrimSuffix(strings.Repeat(`(?, 'mer_fake', 'BTC', 'new', '1', '1', ?, '0', 25, 2, 0, 0, 0), `, per), ", ")
	stmt, err := tx.PrepareContext(g.ctx, g.db.Q(q))
	if err != nil {
		tb.Fatal(err)
	}
	args := make([]any, 0, 2*per)
	for i := 0; i < n; i++ {
		var h [20]byte
		rand.Read(h[:])
		a, err := btcutil.NewAddressWitnessPubKeyHash(h[:], g.node.params)
		if err != nil {
			tb.Fatal(err)
		}
		args = append(args, "inv_fake"+itoa(i), a.EncodeAddress())
		if len(args) == 2*per {
			if _, err := stmt.ExecContext(g.ctx, args...); err != nil {
				tb.Fatal(err)
			}
			args = args[:0]
		}
	}
	for i := 0; i < len(args); i += 2 {
		if _, err := tx.ExecContext(g.ctx, g.db.Q(`INSERT INTO invoices (invoice_id, merchant_id, asset, status, amount, pay_amount,
			pay_address, fee, fee_bps, required_confirmations, created_at, expires_at, updated_at)
			VALUES (?, 'mer_fake', 'BTC', 'new', '1', '1', ?, '0', 25, 2, 0, 0, 0)`), args[i], args[i+1]); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

func randomP2WPKH(tb testing.TB, n *btcdNode) []byte {
	var h [20]byte
	rand.Read(h[:])
	a, err := btcutil.NewAddressWitnessPubKeyHash(h[:], n.params)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := txscript.PayToAddrScript(a)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// signLegacy signs the single input of tx, a coin of the miner's.
func signLegacy(tb testing.TB, n *btcdNode, tx *wire.MsgTx) {
	sig, err := txscript.SignatureScript(tx, 0, n.minerScript, txscript.SigHashAll, n.minerKey, true)
	if err != nil {
		tb.Fatal(err)
	}
	tx.TxIn[0].SignatureScript = sig
}

// timedNode measures the time spent fetching blocks.
type timedNode struct {
	node
	mu    sync.Mutex
	fetch time.Duration
}

func (t *timedNode) reset()               { t.mu.Lock(); t.fetch = 0; t.mu.Unlock() }
func (t *timedNode) total() time.Duration { t.mu.Lock(); defer t.mu.Unlock(); return t.fetch }

func (t *timedNode) add(start time.Time) {
	t.mu.Lock()
	t.fetch += time.Since(start)
	t.mu.Unlock()
}

func (t *timedNode) GetBlockHash(height int64) (*chainhash.Hash, error) {
	defer t.add(time.Now())
	return t.node.GetBlockHash(height)
}

func (t *timedNode) GetBlock(hash *chainhash.Hash) (*wire.MsgBlock, error) {
	defer t.add(time.Now())
	return t.node.GetBlock(hash)
}
