package tron

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"testing"
)

const (
	benchTxs     = 3_000
	benchHitEach = 100 // one transaction in benchHitEach pays one of ours
)

// benchAccount is the i-th of our addresses; other is an address not ours.
func benchAccount(i int, other bool) []byte {
	b := make([]byte, 21)
	b[0], b[1] = addressVersion, 0x5a
	if other {
		b[1] = 0x6b
	}
	binary.BigEndian.PutUint64(b[13:], uint64(i)+1)
	return b
}

// receiptsNode answers the block's receipts; nothing else is asked.
type receiptsNode struct {
	Node
	infos []TransactionInfo
}

func (n receiptsNode) TransactionInfoByBlockNum(context.Context, int64) ([]TransactionInfo, error) {
	return n.infos, nil
}

// benchChain is a tronChain watching n addresses (base58, as picd issues
// them), handed to Watch 10,000 at a time.
func benchChain(n int) *tronChain {
	c := matchChain()
	chunk := make([]string, 0, 10_000)
	for i := 0; i < n; i++ {
		if chunk = append(chunk, EncodeAddress(benchAccount(i, false))); len(chunk) == cap(chunk) || i == n-1 {
			c.Watch(chunk)
			chunk = make([]string, 0, 10_000)
		}
	}
	return c
}

// benchTRONBlock is a full block: benchTxs transactions, half TRX
// transfers and half USDT.TRON transfer calls (with their receipts' Transfer
// logs), one in benchHitEach to one of the first `ours` watched addresses.
func benchTRONBlock(c *tronChain, ours int) Block {
	const usdt = "a614f803b6fd780986a42c78ec9c7f77e6ded13c" // USDT.TRON
	c.native = &token{asset: "TRX", decimals: 6}
	c.tokens[usdt] = token{asset: "USDT.TRON", decimals: 6}
	var b Block
	b.BlockID = strings.Repeat("0", 16) + strings.Repeat("ab", 24)
	b.BlockHeader.RawData.Number = 1
	var infos []TransactionInfo
	for j := 0; j < benchTxs; j++ {
		to := benchAccount(j, true)
		if j%benchHitEach == 0 {
			to = benchAccount(j*7%ours, false)
		}
		var tx Transaction
		tx.TxID = fmt.Sprintf("%064x", j+1)
		tx.Ret = []TxResult{{ContractRet: "SUCCESS"}}
		ct := ContractJSON{}
		native := j%2 == 0
		if j%benchHitEach == 0 {
			native = (j/benchHitEach)%2 == 0
		}
		if native {
			ct.Type = "TransferContract"
			ct.Parameter.Value = ContractValue{Amount: int64(j + 1), OwnerAddress: hex.EncodeToString(benchAccount(-2, true)), ToAddress: hex.EncodeToString(to)}
		} else {
			ct.Type = "TriggerSmartContract"
			amount := fmt.Sprintf("%064x", j+1)
			ct.Parameter.Value = ContractValue{OwnerAddress: hex.EncodeToString(benchAccount(-2, true)), ContractAddress: "41" + usdt,
				Data: transferSel + fmt.Sprintf("%064s", hex.EncodeToString(to[1:])) + amount}
			infos = append(infos, TransactionInfo{ID: tx.TxID, BlockNumber: 1, Log: []Log{{Address: usdt,
				Topics: []string{TransferTopic, fmt.Sprintf("%064s", hex.EncodeToString(benchAccount(-2, true)[1:])), fmt.Sprintf("%064s", hex.EncodeToString(to[1:]))},
				Data:   amount}}})
		}
		tx.RawData.Contract = []ContractJSON{ct}
		b.Transactions = append(b.Transactions, tx)
	}
	c.node = receiptsNode{infos: infos}
	return b
}

func TestMatchBenchBlock(t *testing.T) {
	c := benchChain(100_000)
	b := benchTRONBlock(c, 100_000)
	fs, err := c.matchBlock(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	trx, usdt := 0, 0
	for _, f := range fs {
		if f.asset == "TRX" {
			trx++
		} else {
			usdt++
		}
		if _, err := DecodeAddress(f.address); err != nil || f.units.Sign() <= 0 {
			t.Fatalf("found %+v", f)
		}
	}
	if want := benchTxs / benchHitEach / 2; trx != want || usdt != want {
		t.Fatalf("matched %d TRX and %d USDT.TRON transfers, want %d each", trx, usdt, want)
	}
}

// BenchmarkMatchBlock measures matching one full block (3,000
// transactions: 1,500 TRX transfers and 1,500 USDT.TRON transfers with their
// receipts, read from memory) against 100,000 and 1,000,000 watched
// addresses: the in-memory part of a block scan.
func BenchmarkMatchBlock(b *testing.B) {
	for _, n := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("watched=%d", n), func(b *testing.B) {
			c := benchChain(n)
			blk := benchTRONBlock(c, 100_000)
			b.ResetTimer()
			deposits := 0
			for i := 0; i < b.N; i++ {
				fs, err := c.matchBlock(context.Background(), blk)
				if err != nil {
					b.Fatal(err)
				}
				deposits += len(fs)
			}
			if want := b.N * benchTxs / benchHitEach; deposits != want {
				b.Fatalf("%d deposits, want %d", deposits, want)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
		})
	}
}

// BenchmarkWatchSet1M is the memory the watched set keeps for 1,000,000
// invoice addresses (base58, as picd issues them), handed to Watch 10,000
// at a time as the refresh reads them: the heap after a GC, before and
// after (the addresses' strings, read from the database, are garbage once
// Watch returns unless the set keeps them). B/address and watch-MB; ns/op
// is the time to fill the set (with base58 decoding).
func BenchmarkWatchSet1M(b *testing.B) {
	const n = 1_000_000
	var kept uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		before := heapAfterGC()
		b.StartTimer()
		c := benchChain(n)
		b.StopTimer()
		kept = heapAfterGC() - before
		blk := benchTRONBlock(c, n)
		if fs, err := c.matchBlock(context.Background(), blk); err != nil || len(fs) != benchTxs/benchHitEach {
			b.Fatalf("matched %d, %v", len(fs), err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(kept)/n, "B/address")
	b.ReportMetric(float64(kept)/1e6, "watch-MB")
}

// heapAfterGC is the live heap once the garbage is collected.
func heapAfterGC() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

var benchLog = slog.New(slog.NewTextHandler(io.Discard, nil))
