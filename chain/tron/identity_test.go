package tron_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
	"github.com/acceptcryptohere/gateway/domain"
)

// TestNodeOfAnotherNetwork (#16 item 1): the watcher's node is replaced by
// one of another network (the FAKE node with another genesis block, as
// Nile's is not mainnet's), taller than ours. Before, its blocks were taken
// for a reorg and the paid invoice's deposit reverted. Now nothing is
// scanned or reverted, the mismatch is stored for /readyz with both
// genesis ids, and scanning resumes on the right node.
func TestNodeOfAnotherNetwork(t *testing.T) {
	e := setup(t, tron.Config{})
	id, addr := e.invoice("TRX", "2", 0)
	e.payTRX(addr, "2")
	e.node.mine(25)
	e.scan()
	e.wantStatus(id, domain.StatusPaid)

	nile := tronfake.New(tronfake.Options{Network: "nile"})
	srv := httptest.NewServer(nile)
	t.Cleanup(srv.Close)
	nile.Mine(int(e.node.Height()) + 10)
	w := e.newWatcher(tron.NewClient(srv.URL, "", 2*time.Second))
	e.catchUp()
	for range 2 {
		err := w.ScanOnce(e.ctx)
		var mm *scan.MismatchError
		if !errors.As(err, &mm) || !errors.Is(err, scan.ErrWrongNode) {
			t.Fatalf("scan on another network: %v", err)
		}
		if !strings.HasPrefix(mm.Found, "genesis ") || !strings.HasPrefix(mm.Expected, "genesis ") || mm.Found == mm.Expected {
			t.Fatalf("mismatch %+v", mm)
		}
	}
	reason, err := scan.NewIdentityTable(e.db, "tron_node_identity").Mismatch(e.ctx)
	if err != nil || !strings.Contains(reason, "tron node identity mismatch") {
		t.Fatalf("stored mismatch %q %v", reason, err)
	}
	e.catchUp()
	inv := e.wantStatus(id, domain.StatusPaid)
	if inv.AmountReceived.String() != "2" {
		t.Fatalf("received %s after the swap", inv.AmountReceived)
	}

	// The right node again: scanning resumes and a new payment is paid.
	e.w = e.newWatcher(e.client)
	id2, addr2 := e.invoice("TRX", "3", 0)
	e.payTRX(addr2, "3")
	e.node.mine(25)
	e.scan()
	e.wantStatus(id2, domain.StatusPaid)
	if reason, err := scan.NewIdentityTable(e.db, "tron_node_identity").Mismatch(e.ctx); reason != "" || err != nil {
		t.Fatalf("mismatch %q %v with the right node back", reason, err)
	}
}
