// Package gethtest runs a real geth in --dev mode for tests: built once per
// version through the Go toolchain from the module's pinned go-ethereum (the
// tool directive in go.mod) and cached in the system temp directory, like
// the btcd of chain/btc's tests. A node mines a block whenever a transaction
// arrives and on Mine; its dev account holds the ether and deploys the test
// ERC-20 (OpenZeppelin's, compiled from testdata/erc20 with npm's solc).
package gethtest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/rpc"
)

// ChainID is the chain id of every --dev node.
const ChainID = 1337

//go:embed testdata/erc20/TestToken.json
var tokenArtifact []byte

// Token is the compiled test ERC-20: its ABI and deployment code.
type Token struct {
	ABI      abi.ABI
	Bytecode []byte
}

// TestToken parses the committed artifact of testdata/erc20.
func TestToken() (Token, error) {
	var art struct {
		ABI      json.RawMessage `json:"abi"`
		Bytecode string          `json:"bytecode"`
	}
	if err := json.Unmarshal(tokenArtifact, &art); err != nil {
		return Token{}, fmt.Errorf("gethtest: token artifact: %w", err)
	}
	parsed, err := abi.JSON(bytes.NewReader(art.ABI))
	if err != nil {
		return Token{}, fmt.Errorf("gethtest: token ABI: %w", err)
	}
	code, err := hexutil.Decode(art.Bytecode)
	if err != nil {
		return Token{}, fmt.Errorf("gethtest: token bytecode: %w", err)
	}
	return Token{ABI: parsed, Bytecode: code}, nil
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// Binary builds geth once per version into the system temp directory and
// returns its path. The first build on a machine takes minutes (figures in
// the commit that added this package); later ones find the file.
func Binary() (string, error) {
	buildOnce.Do(func() { builtBin, buildErr = build() })
	return builtBin, buildErr
}

func build() (string, error) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Version}}", "github.com/ethereum/go-ethereum").Output()
	version := strings.TrimSpace(string(out))
	if err != nil || version == "" {
		return "", fmt.Errorf("gethtest: go list go-ethereum version: %v", err)
	}
	bin := filepath.Join(os.TempDir(), fmt.Sprintf("gateway-geth-%s-%s-%s", version, runtime.GOOS, runtime.GOARCH))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	// -pgo=off: geth's profile would recompile every go-ethereum package
	// the tests already built; a test node does not need its speed-up.
	cmd := exec.Command("go", "build", "-pgo=off", "-o", tmp, "github.com/ethereum/go-ethereum/cmd/geth")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("gethtest: go build geth: %v\n%s", err, out)
	}
	return bin, os.Rename(tmp, bin)
}

// Node is one running geth --dev.
type Node struct {
	t      testing.TB
	cmd    *exec.Cmd
	logs   *syncBuffer
	URL    string // the HTTP JSON-RPC endpoint
	RPC    *rpc.Client
	Client *ethclient.Client
	Dev    common.Address // the dev account: funded and unlocked

	stopOnce   sync.Once
	mu         sync.Mutex
	withdrawal uint64 // the next withdrawal index Mine uses
}

// Start runs a fresh geth --dev for the test, stopped at its cleanup.
func Start(t testing.TB) *Node {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{t: t, logs: &syncBuffer{}, URL: fmt.Sprintf("http://127.0.0.1:%d", ports[0])}
	// --dev.period 0: a block as soon as a transaction (or a withdrawal,
	// which is how Mine makes empty ones) reaches the pool.
	n.cmd = exec.Command(bin, "--dev", "--dev.period", "0", "--datadir", filepath.Join(dir, "data"),
		"--http", "--http.addr", "127.0.0.1", "--http.port", fmt.Sprint(ports[0]), "--http.api", "eth,net,web3,dev",
		"--authrpc.addr", "127.0.0.1", "--authrpc.port", fmt.Sprint(ports[1]), "--ipcdisable",
		"--port", "0", "--nodiscover", "--maxpeers", "0", "--verbosity", "2")
	n.cmd.Stdout, n.cmd.Stderr = n.logs, n.logs
	dieWithParent(n.cmd) // a panicking test binary must not leave geth running
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Stop()
		if n.RPC != nil {
			n.RPC.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		var accounts []common.Address
		c, err := rpc.DialContext(ctx, n.URL)
		if err == nil {
			if err = c.CallContext(ctx, &accounts, "eth_accounts"); err == nil && len(accounts) > 0 {
				n.RPC, n.Client, n.Dev = c, ethclient.NewClient(c), accounts[0]
				break
			}
			c.Close()
		}
		if ctx.Err() != nil {
			t.Fatalf("geth did not answer: %v\n%s", err, n.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return n
}

// Stop kills geth (again at the test's end: a no-op).
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		n.cmd.Process.Kill()
		n.cmd.Wait()
	})
}

// Logs is what geth printed so far.
func (n *Node) Logs() string { return n.logs.String() }

// Head is the number of the newest block.
func (n *Node) Head() uint64 {
	n.t.Helper()
	h, err := n.Client.BlockNumber(context.Background())
	if err != nil {
		n.t.Fatal(err)
	}
	return h
}

// Mine adds blocks one at a time: each carries a zero withdrawal, which is
// what makes the dev node seal a block without a transaction.
func (n *Node) Mine(blocks int) {
	n.t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	for range blocks {
		head := n.Head()
		w := map[string]any{"index": hexutil.Uint64(n.withdrawal), "validatorIndex": "0x0",
			"address": common.Address{}, "amount": "0x0"}
		n.withdrawal++
		if err := n.RPC.Call(nil, "dev_addWithdrawal", w); err != nil {
			n.t.Fatalf("dev_addWithdrawal: %v", err)
		}
		n.waitHead(head + 1)
	}
}

// MineTo mines until the head is at least height.
func (n *Node) MineTo(height uint64) {
	n.t.Helper()
	if h := n.Head(); h < height {
		n.Mine(int(height - h))
	}
}

func (n *Node) waitHead(height uint64) {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for n.Head() < height {
		if time.Now().After(deadline) {
			n.t.Fatalf("geth did not reach block %d\n%s", height, n.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Send has the dev account send a transaction (to nil: a deployment) and
// waits for its receipt, which must be a success.
func (n *Node) Send(to *common.Address, wei *big.Int, data []byte) *types.Receipt {
	n.t.Helper()
	tx := map[string]any{"from": n.Dev, "gas": hexutil.Uint64(3_000_000)}
	if to != nil {
		tx["to"] = *to
	}
	if wei != nil {
		tx["value"] = (*hexutil.Big)(wei)
	}
	if data != nil {
		tx["data"] = hexutil.Bytes(data)
	}
	var hash common.Hash
	if err := n.RPC.Call(&hash, "eth_sendTransaction", tx); err != nil {
		n.t.Fatalf("eth_sendTransaction: %v", err)
	}
	r := n.Receipt(hash)
	if r.Status != types.ReceiptStatusSuccessful {
		n.t.Fatalf("transaction %s failed", hash.Hex())
	}
	// geth can answer the receipt a moment before "latest" names its
	// block; a caller that pins the head next must see the transaction.
	n.waitHead(r.BlockNumber.Uint64())
	return r
}

// Receipt waits (at most 10 s) for a transaction's receipt.
func (n *Node) Receipt(hash common.Hash) *types.Receipt {
	n.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := n.Client.TransactionReceipt(context.Background(), hash)
		if err == nil {
			return r
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("no receipt for %s: %v\n%s", hash.Hex(), err, n.logs)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Fund sends wei from the dev account to addr, mined at once.
func (n *Node) Fund(addr common.Address, wei *big.Int) *types.Receipt {
	n.t.Helper()
	return n.Send(&addr, wei, nil)
}

// DeployToken deploys the test ERC-20 with the given decimals; the dev
// account holds its whole supply (2^128 − 1 base units).
func (n *Node) DeployToken(symbol string, decimals uint8) common.Address {
	n.t.Helper()
	tok, err := TestToken()
	if err != nil {
		n.t.Fatal(err)
	}
	supply := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 128), big.NewInt(1))
	args, err := tok.ABI.Pack("", "Test "+symbol, symbol, decimals, supply)
	if err != nil {
		n.t.Fatal(err)
	}
	return n.Send(nil, nil, append(append([]byte(nil), tok.Bytecode...), args...)).ContractAddress
}

// TransferToken has the dev account transfer base units of token to to.
func (n *Node) TransferToken(token, to common.Address, units *big.Int) *types.Receipt {
	n.t.Helper()
	tok, err := TestToken()
	if err != nil {
		n.t.Fatal(err)
	}
	data, err := tok.ABI.Pack("transfer", to, units)
	if err != nil {
		n.t.Fatal(err)
	}
	return n.Send(&token, nil, data)
}

// Balance is addr's ether in wei.
func (n *Node) Balance(addr common.Address) *big.Int {
	n.t.Helper()
	b, err := n.Client.BalanceAt(context.Background(), addr, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	return b
}

// TokenBalance is balanceOf(owner) of token.
func (n *Node) TokenBalance(token, owner common.Address) *big.Int {
	n.t.Helper()
	tok, err := TestToken()
	if err != nil {
		n.t.Fatal(err)
	}
	var out []any
	data, _ := tok.ABI.Pack("balanceOf", owner)
	raw, err := n.Client.CallContract(context.Background(), ethereumCall(token, data), nil)
	if err == nil {
		out, err = tok.ABI.Unpack("balanceOf", raw)
	}
	if err != nil {
		n.t.Fatalf("balanceOf: %v", err)
	}
	return out[0].(*big.Int)
}

func freePorts(k int) ([]int, error) {
	var ports []int
	for range k {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func ethereumCall(to common.Address, data []byte) ethereum.CallMsg {
	return ethereum.CallMsg{To: &to, Data: data}
}
