package gethtest_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
)

// The committed artifact is what TestToken.sol compiles to: recompiled with
// the pinned solc and OpenZeppelin when scripts/test has installed them
// (npm ci in testdata/erc20).
func TestTokenArtifactIsTheSource(t *testing.T) {
	dir := filepath.Join("testdata", "erc20")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "solc")); err != nil {
		t.Skip("solc not installed: run npm ci in " + dir + " (scripts/test does)")
	}
	cmd := exec.Command("node", "compile.js")
	cmd.Dir = dir
	got, err := cmd.Output()
	if err != nil {
		t.Fatalf("compile: %v", err)
	}
	want, err := os.ReadFile(filepath.Join(dir, "TestToken.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("testdata/erc20/TestToken.json is stale: run node compile.js > TestToken.json in %s", dir)
	}
}

// The test token on the real node behaves as a standard ERC-20: metadata,
// balances, and a Transfer log per transfer.
func TestTokenOnDevNode(t *testing.T) {
	n := gethtest.Start(t)
	ctx := context.Background()
	if id, err := n.Client.ChainID(ctx); err != nil || id.Int64() != gethtest.ChainID {
		t.Fatalf("chain id %v %v", id, err)
	}
	token := n.DeployToken("USDT", 6)
	tok, err := gethtest.TestToken()
	if err != nil {
		t.Fatal(err)
	}
	call := func(method string, args ...any) []any {
		data, err := tok.ABI.Pack(method, args...)
		if err != nil {
			t.Fatal(err)
		}
		raw, err := n.Client.CallContract(ctx, ethereum.CallMsg{To: &token, Data: data}, nil)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		out, err := tok.ABI.Unpack(method, raw)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if d := call("decimals")[0].(uint8); d != 6 {
		t.Fatalf("decimals %d", d)
	}
	if s := call("symbol")[0].(string); s != "USDT" {
		t.Fatalf("symbol %q", s)
	}
	to := crypto.PubkeyToAddress(mustKey(t).PublicKey)
	r := n.TransferToken(token, to, big.NewInt(49_990_000))
	if got := n.TokenBalance(token, to); got.Int64() != 49_990_000 {
		t.Fatalf("balanceOf %v", got)
	}
	transfer := tok.ABI.Events["Transfer"].ID
	if len(r.Logs) != 1 || r.Logs[0].Address != token || r.Logs[0].Topics[0] != transfer ||
		common.BytesToAddress(r.Logs[0].Topics[1][:]) != n.Dev || common.BytesToAddress(r.Logs[0].Topics[2][:]) != to ||
		new(big.Int).SetBytes(r.Logs[0].Data).Int64() != 49_990_000 {
		t.Fatalf("logs %+v", r.Logs)
	}
	before := n.Head()
	n.Mine(3)
	if n.Head() != before+3 {
		t.Fatalf("head %d after mining 3 on %d", n.Head(), before)
	}
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := crypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
