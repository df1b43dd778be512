package scan_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/scan"
)

// TestNodeOfAnotherChain (#16 item 1): the node is swapped for one of
// another chain (another genesis block) that is ahead of the checkpoint,
// then for one that is behind it. Before, the first looked like a reorg
// and reverted the confirmed deposit, and the second was waited for. Now
// neither is scanned: nothing is reverted, the mismatch is stored (for
// /readyz) and logged once with what was expected and found, and scanning
// resumes when the first node is back.
func TestNodeOfAnotherChain(t *testing.T) {
	ctx := context.Background()
	// Asked once an hour: the swaps are told by the blocks (a checkpoint
	// that is not on the node's chain, a node behind it).
	cfg := scan.Config{StartBlock: 1, IdentityMaxAge: time.Hour, ForeignHistory: true}
	r := newRig(t, cfg)
	var logs bytes.Buffer
	r.scan = r.rescanner(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	r.chain.build(0, 4, "a")
	r.chain.pay(2, "a", 5)
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	const dep = "tx-a-5:0"
	if st := r.state(t, dep); st != chain.ScanSeen || len(r.ledger.confirmed) != 0 {
		t.Fatalf("deposit %s, confirmed %v", st, r.ledger.confirmed)
	}
	r.chain.build(4, 6, "a")
	if err := r.scan.ScanOnce(ctx); err != nil || len(r.ledger.confirmed) != 1 {
		t.Fatalf("confirm: %v %v", err, r.ledger.confirmed)
	}
	good := append([]memBlock(nil), r.chain.blocks...)

	for _, other := range []struct {
		name            string
		from, blocks    int
		expected, found string
	}{
		// Another genesis (z0), ahead of the checkpoint and behind it.
		{"ahead", 0, 12, "genesis a0 (recorded first)", "genesis z0"},
		{"behind", 0, 3, "genesis a0 (recorded first)", "genesis z0"},
		// The same genesis (a fresh dev chain), with none of our blocks.
		{"same genesis", 1, 12, "a chain holding the blocks scanned, 1 a1 to 5 a5", "block 1 z1 (none of the blocks scanned is on the node's chain)"},
	} {
		r.chain.build(other.from, other.blocks, "z")
		for i := range 3 {
			err := r.scan.ScanOnce(ctx)
			var mm *scan.MismatchError
			if !errors.Is(err, scan.ErrWrongNode) || !errors.As(err, &mm) {
				t.Fatalf("%s, scan %d: %v, want ErrWrongNode", other.name, i+1, err)
			}
			if mm.Expected != other.expected || mm.Found != other.found {
				t.Fatalf("%s: expected %q found %q", other.name, mm.Expected, mm.Found)
			}
		}
		if got := r.ledger.reverted(); len(got) != 0 {
			t.Fatalf("%s: reverted %v because the node changed", other.name, got)
		}
		if cp := r.checkpoint(t); cp.Height != 5 || cp.Block != "a5" {
			t.Fatalf("%s: checkpoint moved to %+v", other.name, cp)
		}
		if st := r.state(t, dep); st != chain.ScanSeen {
			t.Fatalf("%s: deposit %s", other.name, st)
		}
		reason, err := r.store.Mismatch(ctx)
		if err != nil || !strings.Contains(reason, "expected "+other.expected) || !strings.Contains(reason, "found "+other.found) {
			t.Fatalf("%s: stored mismatch %q %v", other.name, reason, err)
		}
		r.chain.mu.Lock()
		r.chain.blocks = append([]memBlock(nil), good...)
		r.chain.mu.Unlock()
		if err := r.scan.ScanOnce(ctx); err != nil {
			t.Fatalf("%s: the right node is back: %v", other.name, err)
		}
		if reason, err := r.store.Mismatch(ctx); reason != "" || err != nil {
			t.Fatalf("%s: mismatch %q %v after the right node came back", other.name, reason, err)
		}
	}
	if n := strings.Count(logs.String(), "node identity mismatch"); n != 3 {
		t.Fatalf("%d mismatch errors logged for three swaps of three scans each, want 3:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "scanning resumes"); n != 3 {
		t.Fatalf("%d resumptions logged, want 3:\n%s", n, logs.String())
	}
	// Scanning goes on where it stopped.
	r.chain.build(6, 9, "a")
	r.chain.pay(7, "a", 6)
	if err := r.scan.ScanOnce(ctx); err != nil || r.checkpoint(t).Height != 8 || r.state(t, "tx-a-6:0") != chain.ScanSeen {
		t.Fatalf("after the swaps: %v, checkpoint %+v", err, r.checkpoint(t))
	}
}

// TestIdentityRecordedAcrossRestarts: the first identity is kept in the
// database, so a scanner started later against another chain refuses it
// before anything else, even with no checkpoint to compare.
func TestIdentityRecordedAcrossRestarts(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, scan.Config{StartBlock: 1})
	r.chain.build(0, 3, "a")
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if id, ok, err := r.store.RecordedIdentity(ctx); id != "genesis a0" || !ok || err != nil {
		t.Fatalf("recorded %q %v %v", id, ok, err)
	}
	r.chain.build(0, 3, "z")
	restarted := r.rescanner(t, scan.Config{StartBlock: 1}, quietLog)
	if err := restarted.ScanOnce(ctx); !errors.Is(err, scan.ErrWrongNode) {
		t.Fatalf("a new scanner against another chain: %v", err)
	}
}

// TestIdentityMaxAge: a matching identity is asked again only after
// IdentityMaxAge, or at once after a failed scan.
func TestIdentityMaxAge(t *testing.T) {
	ctx := context.Background()
	now := time.UnixMilli(1_000_000)
	cfg := scan.Config{StartBlock: 1, IdentityMaxAge: time.Minute, Now: func() time.Time { return now }}
	r := newRig(t, cfg)
	r.scan = r.rescanner(t, cfg, quietLog)
	r.chain.build(0, 3, "a")
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatal(err)
	}
	// Another chain that extends ours would not be noticed by the blocks;
	// the identity is what tells it, once its age is up.
	r.chain.mu.Lock()
	r.chain.blocks[0].hash = "z0"
	r.chain.mu.Unlock()
	if err := r.scan.ScanOnce(ctx); err != nil {
		t.Fatalf("within IdentityMaxAge: %v", err)
	}
	now = now.Add(time.Minute)
	if err := r.scan.ScanOnce(ctx); !errors.Is(err, scan.ErrWrongNode) {
		t.Fatalf("after IdentityMaxAge: %v", err)
	}
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// rescanner is another scanner over the rig's chain, ledger and store (a
// restart), with newRig's settings.
func (r *rig) rescanner(t *testing.T, cfg scan.Config, log *slog.Logger) *scan.Scanner[[]payment] {
	t.Helper()
	cfg.Name, cfg.Assets = "mem", map[string]scan.Asset{testAsset: {Confirmations: 3, FinalDepth: 6}}
	cfg.BatchBlocks, cfg.KeepBlocks = max(cfg.BatchBlocks, 1), 20
	if cfg.Now == nil {
		cfg.Now = func() time.Time { return time.UnixMilli(1_000_000) }
	}
	s, err := scan.New(cfg, scan.Chain[[]payment](r.chain), scan.Sink(r.ledger), r.store, log)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
