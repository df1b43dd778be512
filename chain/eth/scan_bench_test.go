package eth_test

import (
	"context"
	"math/big"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/params"

	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/domain"
)

// BenchmarkScanBlock scans full blocks end to end over JSON-RPC (an
// in-process simulated node): 3,000 transactions per block, half ETH
// transfers and half ERC-20 (USDT.ETH) transfers, 30 of them paying 30 new
// invoices (15 ETH, 15 USDT.ETH), against 100,000 and 1,000,000 watched
// addresses. One ScanOnce per block fetches and decodes the block (as RLP:
// NodeClient), reads the token's Transfer logs of the block (1,500), matches
// both, checks the paid addresses hold no code (a plain transfer to such an
// address cannot fail, so no receipt is read), reports each deposit to the
// ledger (an event append each), records the block, its deposits and the
// checkpoint, and confirms the 30 deposits of the block that just reached
// 3 confirmations (another event append each): the steady state of a busy
// gateway. Between blocks the node is left to finish its own background
// work (nodeQuiet), which a real node does on its own machine.
//
// Metrics: ms/block (mean) and p50-ms/block (median) end to end; blocks/s
// and deposits/s (new deposits reported per second of scanning);
// fetch-ms/block the time inside the block call (node encoding and our
// decoding, both on this machine's CPUs, so on a remote node it is network
// time instead); logs-ms/block the time inside the FilterLogs call (the
// node's log search and encoding, and our decoding); receipts-ms/block the
// time inside receipt calls (wall time while any is in flight);
// rest-ms/block everything else (matching, code checks, ledger appends,
// watcher bookkeeping).
func BenchmarkScanBlock(b *testing.B) {
	b.Run("watched=100k", func(b *testing.B) { benchScanBlock(b, 100_000) })
	b.Run("watched=1M", func(b *testing.B) { benchScanBlock(b, 1_000_000) })
}

func benchScanBlock(b *testing.B, watched int) {
	const txsPerBlock, paidPerBlock = 3000, 30
	e := setup(b, func(o *setupOptions) {
		o.backend = append(o.backend, simulated.WithBlockGasLimit(800_000_000))
	})
	// Addresses of invoices that are never paid, straight into the read
	// model: only the watched set's size matters here.
	_, err := e.db.Write.ExecContext(e.ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO invoices (invoice_id, merchant_id, asset, status, amount, pay_amount, pay_address, fee, fee_bps,
			required_confirmations, created_at, expires_at, updated_at)
		SELECT 'inv_fake' || i, 'mer_fake', 'ETH', 'new', '1', '1', printf('0x%040x', i), '0', 25, 3, 0, 0, 0 FROM n`, watched)
	if err != nil {
		b.Fatal(err)
	}
	timed := &timingClient{Client: e.node}
	e.w, err = eth.New(e.cfg, timed, e.sink, e.db, e.assets, quiet)
	if err != nil {
		b.Fatal(err)
	}
	e.scan()
	var paid []string // invoice ids, in the order their blocks were mined
	block := func(i int) {
		var addrs []string
		for j := 0; j < paidPerBlock; j++ {
			asset := "ETH"
			if j%2 == 1 {
				asset = "USDT.ETH"
			}
			id, a := e.invoice(asset, "1", 0)
			paid, addrs = append(paid, id), append(addrs, a)
		}
		head, err := e.client.HeaderByNumber(e.ctx, nil)
		if err != nil {
			b.Fatal(err)
		}
		tip := big.NewInt(params.GWei)
		feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
		signer := types.LatestSignerForChainID(e.chainID)
		for j := 0; j < txsPerBlock; j++ {
			to := common.BigToAddress(big.NewInt(int64(10_000_000 + i*txsPerBlock + j))) // not ours
			value, token := big.NewInt(int64(j+1)), j%2 == 1
			if j%(txsPerBlock/paidPerBlock) == 0 {
				k := j / (txsPerBlock / paidPerBlock)
				to, token = common.HexToAddress(addrs[k]), k%2 == 1
				value = big.NewInt(params.Ether)
				if token {
					value = big.NewInt(1_000_000) // 1 USDT.ETH
				}
			}
			gas, data := uint64(21_000), []byte(nil)
			if token {
				gas, data = 300_000, transferData(to, value)
				to, value = e.token, new(big.Int)
			}
			tx, err := types.SignTx(types.NewTx(&types.DynamicFeeTx{ChainID: e.chainID, Nonce: e.nonce, GasTipCap: tip, GasFeeCap: feeCap,
				Gas: gas, To: &to, Value: value, Data: data}), signer, e.payer)
			if err != nil {
				b.Fatal(err)
			}
			if err := e.client.SendTransaction(e.ctx, tx); err != nil {
				b.Fatal(err)
			}
			e.nonce++
		}
		hash := e.commit()
		if n, _ := e.client.TransactionCount(e.ctx, hash); n != txsPerBlock {
			b.Fatalf("block has %d transactions, want %d", n, txsPerBlock)
		}
		e.catchUp()
		e.nodeQuiet()
	}
	// Two blocks before timing, so that every timed scan also confirms
	// the deposits of the block two below it.
	for i := 0; i < 2; i++ {
		block(i)
		e.scan()
	}
	perBlock := make([]time.Duration, 0, b.N)
	timed.reset()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		block(i + 2)
		start := time.Now()
		b.StartTimer()
		if err := e.w.ScanOnce(e.ctx); err != nil {
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
	blockCall, receipts, logs := timed.totals()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	perBlockMs := func(d time.Duration) float64 { return ms(d) / float64(b.N) }
	b.ReportMetric(perBlockMs(scanTime), "ms/block")
	b.ReportMetric(ms(perBlock[len(perBlock)/2]), "p50-ms/block")
	b.ReportMetric(float64(b.N)/scanTime.Seconds(), "blocks/s")
	b.ReportMetric(float64(paidPerBlock*b.N)/scanTime.Seconds(), "deposits/s")
	b.ReportMetric(perBlockMs(blockCall), "fetch-ms/block")
	b.ReportMetric(perBlockMs(logs), "logs-ms/block")
	b.ReportMetric(perBlockMs(receipts), "receipts-ms/block")
	b.ReportMetric(perBlockMs(scanTime-blockCall-receipts-logs), "rest-ms/block")
	// Every invoice of a block at least 3 deep is paid.
	e.catchUp()
	for _, id := range paid[:len(paid)-2*paidPerBlock] {
		e.wantStatus(id, domain.StatusPaid)
	}
}

// timingClient measures the time the watcher spends waiting for the node's
// block and receipt calls.
type timingClient struct {
	eth.Client
	mu        sync.Mutex
	blockCall time.Duration
	receipts  time.Duration
	logs      time.Duration
	inFlight  int       // receipt calls in flight
	since     time.Time // when the first of them started
}

func (c *timingClient) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blockCall, c.receipts, c.logs = 0, 0, 0
}

func (c *timingClient) totals() (blockCall, receipts, logs time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blockCall, c.receipts, c.logs
}

func (c *timingClient) FilterLogs(ctx context.Context, q ethereum.FilterQuery) ([]types.Log, error) {
	start := time.Now()
	logs, err := c.Client.FilterLogs(ctx, q)
	c.mu.Lock()
	c.logs += time.Since(start)
	c.mu.Unlock()
	return logs, err
}

func (c *timingClient) BlockByNumber(ctx context.Context, n *big.Int) (*types.Block, error) {
	start := time.Now()
	b, err := c.Client.BlockByNumber(ctx, n)
	c.mu.Lock()
	c.blockCall += time.Since(start)
	c.mu.Unlock()
	return b, err
}

// receipt counts wall time while at least one receipt call is in flight,
// so that concurrent calls are not counted twice.
func (c *timingClient) receipt(f func()) {
	c.mu.Lock()
	if c.inFlight == 0 {
		c.since = time.Now()
	}
	c.inFlight++
	c.mu.Unlock()
	f()
	c.mu.Lock()
	c.inFlight--
	if c.inFlight == 0 {
		c.receipts += time.Since(c.since)
	}
	c.mu.Unlock()
}

func (c *timingClient) TransactionReceipt(ctx context.Context, h common.Hash) (r *types.Receipt, err error) {
	c.receipt(func() { r, err = c.Client.TransactionReceipt(ctx, h) })
	return r, err
}

func (e *env) mustInvoiceAt(address string) string {
	invs, err := e.read.InvoicesByAddress(e.ctx, address)
	if err != nil || len(invs) != 1 {
		e.t.Fatalf("invoices at %s: %v %v", address, invs, err)
	}
	return invs[0].ID
}

// nodeQuiet waits until the in-process node has finished the work a new
// block starts in its background goroutines (the pool's reset, sender
// recovery): a real node does it on its own machine, and here it would
// take the two cores away from the watcher being measured. Quiet means
// the pool is empty and the process used under 10 % of one core for 50 ms.
func (e *env) nodeQuiet() {
	e.t.Helper()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			e.t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	const window = 50 * time.Millisecond
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		var status map[string]hexutil.Uint
		if err := rpcOf(e.client).CallContext(e.ctx, &status, "txpool_status"); err != nil {
			e.t.Fatal(err)
		}
		before := cpu()
		time.Sleep(window)
		if status["pending"] == 0 && status["queued"] == 0 && cpu()-before < window/10 {
			return
		}
	}
	e.t.Fatal("the simulated node did not settle in 10 s")
}
