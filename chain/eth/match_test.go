package eth

import (
	"encoding/binary"
	"math/big"
	"runtime"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"
)

const (
	benchTxs     = 3_000
	benchHitEach = 100 // one transaction in benchHitEach pays one of ours
)

func benchAddress(i int) common.Address {
	var a common.Address
	binary.BigEndian.PutUint64(a[12:], uint64(i)+1)
	a[0] = 0x5a
	return a
}

// benchFixture is a full block: benchTxs transfers, and as many ERC-20
// Transfer logs of the watched token, against benchWatched addresses.
func benchFixture(tb testing.TB, benchWatched int) (*types.Block, []types.Log, watchSet, map[common.Address]token) {
	c := &ethChain{watched: newWatchSet()}
	chunk := make([]string, 0, 10_000)
	for i := 0; i < benchWatched; i++ {
		if chunk = append(chunk, benchAddress(i).Hex()); len(chunk) == cap(chunk) || i == benchWatched-1 {
			c.Watch(chunk)
			chunk = chunk[:0]
		}
	}
	watched := c.watched
	usdt := common.HexToAddress("0xdAC17F958D2ee523a2206206994597C13D831ec7")
	tokens := map[common.Address]token{usdt: {asset: "USDT.ETH", decimals: 6}}
	txs := make([]*types.Transaction, benchTxs)
	logs := make([]types.Log, benchTxs)
	for i := range txs {
		to := benchAddress(i)
		to[0] = 0x6b // not ours
		if i%benchHitEach == 0 {
			to = benchAddress(i * 7 % benchWatched)
		}
		txs[i] = types.NewTx(&types.DynamicFeeTx{Nonce: uint64(i), To: &to, Value: big.NewInt(int64(i + 1)), Gas: 21_000})
		logs[i] = types.Log{Address: usdt, Topics: []common.Hash{TransferTopic, common.BytesToHash(benchAddress(-2).Bytes()),
			common.BytesToHash(to.Bytes())}, Data: common.LeftPadBytes(big.NewInt(int64(i+1)).Bytes(), 32),
			BlockNumber: 1, TxHash: txs[i].Hash(), Index: uint(i)}
	}
	block := types.NewBlock(&types.Header{Number: big.NewInt(1)}, &types.Body{Transactions: txs}, nil, trie.NewStackTrie(nil))
	return block, logs, watched, tokens
}

func TestMatchFixture(t *testing.T) {
	block, logs, watched, tokens := benchFixture(t, 100_000)
	native := matchNative(block, watched, "ETH", 18)
	erc20 := matchLogs(logs, watched, tokens)
	if want := benchTxs / benchHitEach; len(native) != want || len(erc20) != want {
		t.Fatalf("matched %d native and %d token transfers, want %d each", len(native), len(erc20), want)
	}
	if native[1].units.Int64() != benchHitEach+1 || erc20[1].depositID != logs[benchHitEach].TxHash.Hex()+":100" {
		t.Fatalf("matches: %+v %+v", native[1], erc20[1])
	}
	// Removed logs, other contracts and ERC-721 transfers (4 topics) are not deposits.
	bad := []types.Log{logs[0], logs[0], logs[0]}
	bad[0].Removed = true
	bad[1].Address = common.Address{1}
	bad[2].Topics = append(bad[2].Topics, common.Hash{})
	if got := matchLogs(bad, watched, tokens); len(got) != 0 {
		t.Fatalf("matched %+v", got)
	}
}

// BenchmarkMatchBlock measures matching one full block (3,000
// transactions and 3,000 token transfer logs) against 100,000 watched
// addresses: the in-memory part of a block scan, without RPC round trips.
func BenchmarkMatchBlock(b *testing.B) { benchMatchBlock(b, 100_000) }

// BenchmarkMatchBlock1M is BenchmarkMatchBlock against 1,000,000 watched
// addresses (#23).
func BenchmarkMatchBlock1M(b *testing.B) { benchMatchBlock(b, 1_000_000) }

func benchMatchBlock(b *testing.B, watched int) {
	block, logs, set, tokens := benchFixture(b, watched)
	b.ResetTimer()
	deposits := 0
	for i := 0; i < b.N; i++ {
		deposits += len(matchNative(block, set, "ETH", 18))
		deposits += len(matchLogs(logs, set, tokens))
	}
	if want := 2 * b.N * benchTxs / benchHitEach; deposits != want {
		b.Fatalf("%d deposits, want %d", deposits, want)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
	b.ReportMetric(float64(deposits)/b.Elapsed().Seconds(), "deposits/s")
}

// BenchmarkWatchSet1M is the memory the watched set keeps for 1,000,000
// invoice addresses (checksummed hex, as picd issues them), handed to
// Watch 10,000 at a time as the refresh reads them: the heap after a GC,
// before and after (the addresses' strings, read from the database, are
// garbage once Watch returns unless the set keeps them). B/address and
// watch-MB; ns/op is the time to fill the set.
func BenchmarkWatchSet1M(b *testing.B) {
	const n = 1_000_000
	var kept uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		before := heapAfterGC()
		c := &ethChain{watched: newWatchSet()}
		b.StartTimer()
		chunk := make([]string, 0, 10_000)
		for j := 0; j < n; j++ {
			if chunk = append(chunk, benchAddress(j).Hex()); len(chunk) == cap(chunk) {
				c.Watch(chunk)
				chunk = make([]string, 0, 10_000) // a fresh read's strings
			}
		}
		b.StopTimer()
		chunk = nil
		kept = heapAfterGC() - before
		// The set still answers (and is kept alive up to here).
		block, logs, _, tokens := benchFixture(b, 100_000)
		if got := len(matchNative(block, c.watched, "ETH", 18)) + len(matchLogs(logs, c.watched, tokens)); got != 2*benchTxs/benchHitEach {
			b.Fatalf("%d deposits matched, want %d", got, 2*benchTxs/benchHitEach)
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
