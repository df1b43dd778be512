package btc

import (
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/chaincfg"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// cookieNode is a JSON-RPC server that, like Bitcoin Core with cookie
// authentication, takes only Basic auth with __cookie__ and the password
// of the moment, and answers getblockhash with regtest's genesis.
type cookieNode struct {
	mu       sync.Mutex
	password string
	seen     []string // the Authorization headers received
}

func (n *cookieNode) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	n.seen = append(n.seen, r.Header.Get("Authorization"))
	want := n.password
	n.mu.Unlock()
	if user, pass, ok := r.BasicAuth(); !ok || user != "__cookie__" || pass != want {
		http.Error(w, "", http.StatusUnauthorized)
		return
	}
	var req struct {
		Method string          `json:"method"`
		ID     json.RawMessage `json:"id"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Method != "getblockhash" {
		http.Error(w, "", http.StatusBadRequest)
		return
	}
	res, _ := json.Marshal(chaincfg.RegressionNetParams.GenesisHash.String())
	_ = json.NewEncoder(w).Encode(map[string]any{"result": json.RawMessage(res), "error": nil, "id": req.ID})
}

// TestCookieAuth (#16 item 7): with RPCCookiePath the watcher sends the
// cookie file's __cookie__:password as Basic auth (btcd has no cookie, so
// a real HTTP server stands in for Bitcoin Core and checks the header).
func TestCookieAuth(t *testing.T) {
	node := &cookieNode{password: "first-secret"}
	srv := httptest.NewServer(node)
	defer srv.Close()
	cookie := filepath.Join(t.TempDir(), ".cookie")
	if err := os.WriteFile(cookie, []byte("__cookie__:first-secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{RPCHost: strings.TrimPrefix(srv.URL, "http://"), RPCCookiePath: cookie, Params: &chaincfg.RegressionNetParams,
		RPCTimeout: 5 * time.Second}, chain.Sink{}, sqldb.DB{Read: &sql.DB{}, Write: &sql.DB{}, Dialect: sqldb.SQLite}, domain.DefaultAssets(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	if id, err := w.Identity(ctx); err != nil || id != "genesis "+chaincfg.RegressionNetParams.GenesisHash.String() {
		t.Fatalf("identity over cookie auth: %q %v", id, err)
	}
	// Bitcoin Core writes a new cookie at each start; rpcclient reads the
	// file again when its time changed, at most every 30 s (not waited
	// for here).
	node.mu.Lock()
	defer node.mu.Unlock()
	if len(node.seen) != 1 || !strings.HasPrefix(node.seen[0], "Basic ") {
		t.Fatalf("authorization headers %v", node.seen)
	}
}
