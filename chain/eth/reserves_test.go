package eth_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// addressesFrom makes n distinct addresses, the first k of the given ones.
func addressesFrom(n int, first ...common.Address) []common.Address {
	out := append([]common.Address(nil), first...)
	for i := len(out); i < n; i++ {
		var a common.Address
		binary.BigEndian.PutUint64(a[12:], uint64(i)+1<<40)
		out = append(out, a)
	}
	return out
}

// TestBalancesAtPinnedBlock: the balances of funded and empty addresses
// in ETH and a token, read in batches at a pinned block, are the node's;
// coins sent after the pin are not counted.
func TestBalancesAtPinnedBlock(t *testing.T) {
	node := gethtest.Start(t)
	token := node.DeployToken("USDT", 6)
	a, b := common.HexToAddress("0x00000000000000000000000000000000000a11ce"), common.HexToAddress("0x0000000000000000000000000000000000000b0b")
	node.Fund(a, big.NewInt(7))
	node.TransferToken(token, b, big.NewInt(9))
	ctx := context.Background()
	c := eth.NewNodeClient(node.RPC)
	pin, err := c.PinHead(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node.Fund(a, big.NewInt(100))      // after the pin
	addrs := addressesFrom(1201, a, b) // three batches
	wei, err := c.BalancesAt(ctx, pin, "", addrs, nil)
	if err != nil {
		t.Fatal(err)
	}
	units, err := c.BalancesAt(ctx, pin, token.Hex(), addrs, nil)
	if err != nil {
		t.Fatal(err)
	}
	if wei[0].Int64() != 7 || wei[1].Sign() != 0 || units[0].Sign() != 0 || units[1].Int64() != 9 {
		t.Fatalf("at block %d: a holds %s wei %s units, b %s wei %s units", pin.Height, wei[0], units[0], wei[1], units[1])
	}
	for i := 2; i < len(addrs); i++ {
		if wei[i].Sign() != 0 || units[i].Sign() != 0 {
			t.Fatalf("empty address %d holds %s wei, %s units", i, wei[i], units[i])
		}
	}
	if now, _ := c.PinHead(ctx); now.Height <= pin.Height {
		t.Fatalf("no block after the pin")
	}
	// A token address that is no contract answers no balance: an error,
	// never a zero.
	if _, err := c.BalancesAt(ctx, pin, a.Hex(), addrs[:3], nil); err == nil {
		t.Fatal("balanceOf on an account without code: no error")
	}
}

// BenchmarkBalancesAt100k reads the ETH and token balances of 100,000
// addresses from a real geth --dev, as picd audit --chain does.
func BenchmarkBalancesAt100k(b *testing.B) {
	node := gethtest.Start(b)
	token := node.DeployToken("USDT", 6)
	c := eth.NewNodeClient(node.RPC)
	ctx := context.Background()
	pin, err := c.PinHead(ctx)
	if err != nil {
		b.Fatal(err)
	}
	addrs := addressesFrom(100_000)
	b.ResetTimer()
	for range b.N {
		for _, tok := range []string{"", token.Hex()} {
			if _, err := c.BalancesAt(ctx, pin, tok, addrs, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(2*len(addrs)*b.N)/b.Elapsed().Seconds(), "balances/s")
}

// TestSweepFlows: what sweeps moved per address, from eth_sweeps; a done
// sweep whose gas the log does not book is a problem.
func TestSweepFlows(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	db := sqldb.DB{Read: store.DB(), Write: store.WriteDB(), Dialect: sqldb.SQLite}
	if err := eth.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct{ id, asset, addr, amount, state, topup, gas, transfer string }{
		{"s1", "ETH", "0xAA", "1000", eth.SweepDone, "0", "21", "0xt1"},
		{"s2", "USDT.ETH", "0xbb", "500", eth.SweepDone, "90", "60", "0xT2"},
		{"s3", "USDT.ETH", "0xcc", "7", eth.SweepFailed, "90", "", "0xt3"},
		{"s4", "ETH", "0xdd", "5", "transfer", "0", "", "0xt4"},
	} {
		if _, err := db.Write.ExecContext(ctx, `INSERT INTO eth_sweeps (sweep_id, asset, address, hd_index, round, amount_units, state,
			transfer_txid, topup_wei, gas_cost_wei, created_at, updated_at) VALUES (?, ?, ?, 1, 1, ?, ?, ?, ?, ?, 0, 0)`,
			r.id, r.asset, r.addr, r.amount, r.state, r.transfer, r.topup, r.gas); err != nil {
			t.Fatal(err)
		}
	}
	// The gas each done transfer burned, from its receipt (eth_txs).
	for i, r := range []struct{ from, txid, fee string }{{"0xAA", "0xt1", "21"}, {"0xbb", "0xT2", "60"}} {
		if _, err := db.Write.ExecContext(ctx, `INSERT INTO eth_txs (from_address, nonce, txid, raw, purpose, ref, asset, value_units,
			max_fee_wei, fee_paid_wei, created_at) VALUES (?, ?, ?, '', 'sweep', ?, '', '0', '0', ?, 0)`,
			r.from, i, r.txid, "s"+fmt.Sprint(i+1), r.fee); err != nil {
			t.Fatal(err)
		}
	}
	booked := map[string]int64{"0xt1": 21, "0xt2": 55, "0xt3": 40} // s2's gas booked short
	f, err := eth.SweepFlows(ctx, db, "ETH", func(tx string) *big.Int { return big.NewInt(booked[strings.ToLower(tx)]) })
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]int64{"ETH": {"0xaa": -1021, "0xbb": 30, "0xcc": 50}, "USDT.ETH": {"0xbb": -500}}
	for asset, m := range want {
		for addr, v := range m {
			if got := f.Delta[asset][addr]; got == nil || got.Int64() != v {
				t.Errorf("%s %s: %v, want %d", asset, addr, got, v)
			}
		}
	}
	if len(f.InFlight) != 1 || !f.Addresses["0xdd"] || len(f.Problems) != 1 || !strings.Contains(f.Problems[0], "s2") {
		t.Fatalf("in flight %v, problems %v", f.InFlight, f.Problems)
	}
}
