package eth_test

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/ethereum/go-ethereum/rpc"

	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/domain"
)

// The block and header NodeClient reads through go-ethereum's own methods
// are the ones the standard calls return.
func TestNodeClientMatchesStandardCalls(t *testing.T) {
	e := setup(t)
	_, addr := e.invoice("ETH", "1", 0)
	e.payETH(addr, "0.4")
	e.payUSDT(addr, "2")
	e.mine(1)
	for _, n := range []*big.Int{nil, big.NewInt(1)} {
		fast, err := e.node.BlockByNumber(e.ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		std, err := e.client.BlockByNumber(e.ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if fast.Hash() != std.Hash() || fast.ParentHash() != std.ParentHash() || len(fast.Transactions()) != len(std.Transactions()) {
			t.Fatalf("block %v: raw %s (%d txs), JSON %s (%d txs)", n, fast.Hash(), len(fast.Transactions()), std.Hash(), len(std.Transactions()))
		}
		for i, tx := range fast.Transactions() {
			want := std.Transactions()[i]
			if tx.Hash() != want.Hash() || tx.Value().Cmp(want.Value()) != 0 || (tx.To() == nil) != (want.To() == nil) ||
				(tx.To() != nil && *tx.To() != *want.To()) {
				t.Fatalf("block %v tx %d differs: %s vs %s", n, i, tx.Hash(), want.Hash())
			}
		}
		h, err := e.node.HeaderByNumber(e.ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		if h.Hash() != std.Hash() {
			t.Fatalf("header %v: %s, block %s", n, h.Hash(), std.Hash())
		}
	}
	if b, err := e.node.BlockByNumber(e.ctx, big.NewInt(1_000_000)); err == nil {
		t.Fatalf("block beyond the head: %v", b.Number())
	}
}

// A node that closes the debug namespace and lacks eth_getHeaderByNumber
// (as most public providers do) is read with the standard calls: a
// payment is still seen and confirmed, and each refused method is asked
// once, not once per block.
func TestNodeClientFallsBackWhenRefused(t *testing.T) {
	e := setup(t)
	node := &refusingNode{backend: rpcOf(e.client), refuse: map[string]bool{"debug_getRawBlock": true, "eth_getHeaderByNumber": true},
		calls: map[string]int{}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c, err := rpc.DialHTTP(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.node = eth.NewNodeClient(c)
	e.w = e.newWatcher()
	id, addr := e.invoice("ETH", "1", 0)
	e.payETH(addr, "1")
	e.mine(confirmations)
	e.scan()
	e.mine(2)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	calls := node.snapshot()
	for method := range node.refuse {
		if calls[method] != 1 {
			t.Errorf("%s asked %d times, want once", method, calls[method])
		}
	}
	if calls["eth_getBlockByNumber"] < confirmations+2 {
		t.Errorf("eth_getBlockByNumber asked %d times", calls["eth_getBlockByNumber"])
	}
}

// refusingNode is a JSON-RPC endpoint over HTTP that answers the methods
// in refuse the way go-ethereum answers a method it does not serve, and
// passes every other call to backend.
type refusingNode struct {
	backend *rpc.Client
	refuse  map[string]bool
	mu      sync.Mutex
	calls   map[string]int
}

func (n *refusingNode) snapshot() map[string]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := map[string]int{}
	for k, v := range n.calls {
		out[k] = v
	}
	return out
}

func (n *refusingNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ID     json.RawMessage   `json:"id"`
		Method string            `json:"method"`
		Params []json.RawMessage `json:"params"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n.mu.Lock()
	n.calls[req.Method]++
	n.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if n.refuse[req.Method] {
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"the method %s does not exist/is not available"}}`, req.ID, req.Method)
		return
	}
	args := make([]any, len(req.Params))
	for i, p := range req.Params {
		args[i] = p
	}
	var result json.RawMessage
	if err := n.backend.CallContext(r.Context(), &result, req.Method, args...); err != nil {
		msg, _ := json.Marshal(err.Error())
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32000,"message":%s}}`, req.ID, msg)
		return
	}
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":%s}`, req.ID, result)
}

// Over HTTP, as picd dials a node, a node that serves go-ethereum's
// methods is read with them: no full block or header as JSON.
func TestDialUsesRawBlocksOverHTTP(t *testing.T) {
	e := setup(t)
	node := &refusingNode{backend: rpcOf(e.client), refuse: map[string]bool{}, calls: map[string]int{}}
	srv := httptest.NewServer(node)
	defer srv.Close()
	c, err := eth.Dial(e.ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e.node = c
	e.w = e.newWatcher()
	id, addr := e.invoice("ETH", "1", 0)
	e.payETH(addr, "1")
	e.mine(confirmations)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)
	calls := node.snapshot()
	if calls["debug_getRawBlock"] < confirmations || calls["eth_getHeaderByNumber"] == 0 {
		t.Errorf("fast calls: %v", calls)
	}
	if calls["eth_getBlockByNumber"] != 0 {
		t.Errorf("eth_getBlockByNumber asked %d times", calls["eth_getBlockByNumber"])
	}
}
