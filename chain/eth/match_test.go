package eth

import (
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/trie"
)

const (
	benchWatched = 100_000
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
func benchFixture(tb testing.TB) (*types.Block, []types.Log, watchSet, map[common.Address]token) {
	watched := make(watchSet, benchWatched)
	for i := 0; i < benchWatched; i++ {
		a := benchAddress(i)
		watched[a] = a.Hex()
	}
	usdt := common.HexToAddress("0xdAC17F958D2ee523a2206206994597C13D831ec7")
	tokens := map[common.Address]token{usdt: {asset: "USDT.ETH", decimals: 6}}
	txs := make([]*types.Transaction, benchTxs)
	logs := make([]types.Log, benchTxs)
	for i := range txs {
		to := benchAddress(benchWatched + i) // not ours
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
	block, logs, watched, tokens := benchFixture(t)
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
func BenchmarkMatchBlock(b *testing.B) {
	block, logs, watched, tokens := benchFixture(b)
	b.ResetTimer()
	deposits := 0
	for i := 0; i < b.N; i++ {
		deposits += len(matchNative(block, watched, "ETH", 18))
		deposits += len(matchLogs(logs, watched, tokens))
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "blocks/s")
	b.ReportMetric(float64(deposits)/b.Elapsed().Seconds(), "deposits/s")
}
