package eth_test

import (
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
)

// BenchmarkScanBlock scans full blocks end to end over JSON-RPC (an
// in-process simulated node): 3,000 ETH transfers per block, 30 of them to
// invoices, against 100,000 watched addresses. A scan fetches and decodes
// the block, matches it, reads the receipts of the matches, reports each
// deposit to the ledger (an event append each) and records the checkpoint.
func BenchmarkScanBlock(b *testing.B) {
	const txsPerBlock, paidPerBlock, watched = 3000, 30, 100_000
	e := setup(b, func(o *setupOptions) {
		o.backend = append(o.backend, simulated.WithBlockGasLimit(200_000_000))
	})
	// Addresses of invoices that are never paid, straight into the read
	// model: only the watched set's size matters here.
	_, err := e.db.Write.ExecContext(e.ctx, `WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
		INSERT INTO invoices (invoice_id, merchant_id, asset, status, amount, pay_amount, pay_address, fee, fee_bps,
			required_confirmations, created_at, expires_at, updated_at)
		SELECT 'inv_fake' || i, 'mer_fake', 'ETH', 'new', '1', '1', printf('0x%040x', i), '0', 25, 3, 0, 0, 0 FROM n`, watched-paidPerBlock)
	if err != nil {
		b.Fatal(err)
	}
	var addrs []string
	for i := 0; i < paidPerBlock; i++ {
		_, a := e.invoice("ETH", "1000", 0)
		addrs = append(addrs, a)
	}
	e.scan()
	var scanTime time.Duration
	deposits := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := 0; j < txsPerBlock; j++ {
			to := common.BigToAddress(big.NewInt(int64(1_000_000 + i*txsPerBlock + j))) // not ours
			if j%(txsPerBlock/paidPerBlock) == 0 {
				to = common.HexToAddress(addrs[j/(txsPerBlock/paidPerBlock)])
			}
			e.signedTx(&to, big.NewInt(int64(j+1)), 21_000, nil)
		}
		hash := e.commit()
		if n, _ := e.client.TransactionCount(e.ctx, hash); n != txsPerBlock {
			b.Fatalf("block has %d transactions, want %d", n, txsPerBlock)
		}
		e.catchUp()
		start := time.Now()
		b.StartTimer()
		if err := e.w.ScanOnce(e.ctx); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		scanTime += time.Since(start)
		deposits += paidPerBlock
	}
	b.ReportMetric(float64(b.N)/scanTime.Seconds(), "blocks/s")
	b.ReportMetric(float64(deposits)/scanTime.Seconds(), "deposits/s")
	b.ReportMetric(float64(txsPerBlock*b.N)/scanTime.Seconds(), "txs/s")
	e.catchUp()
	if inv := e.get(fmt.Sprint(e.mustInvoiceAt(addrs[0]))); len(inv.Payments) != b.N {
		b.Fatalf("first invoice has %d payments after %d blocks", len(inv.Payments), b.N)
	}
}

func (e *env) mustInvoiceAt(address string) string {
	invs, err := e.read.InvoicesByAddress(e.ctx, address)
	if err != nil || len(invs) != 1 {
		e.t.Fatalf("invoices at %s: %v %v", address, invs, err)
	}
	return invs[0].ID
}
