package eth_test

import (
	"context"
	"encoding/binary"
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
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
