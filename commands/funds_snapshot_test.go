package commands

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// readCounter is the SQLite store, counting the events its streams' reads return.
type readCounter struct {
	*sqlite.Store
	read atomic.Int64
}

func (c *readCounter) ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error) {
	recs, err := c.Store.ReadStream(ctx, stream, from, max)
	c.read.Add(int64(len(recs)))
	return recs, err
}

// A funds stream of thousands of debits: the view saves a snapshot as it
// folds, a new process starts from it (reading only the events after it,
// with the same funds as a whole fold), and a command retried from before
// the snapshot still answers with its first result instead of deciding
// again. An unreadable snapshot is ignored.
func TestFundsViewStartsFromItsSnapshot(t *testing.T) {
	ctx := context.Background()
	raw, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	store := &readCounter{Store: raw}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	d := Deps{Store: store, Assets: domain.DefaultAssets(), Now: func() time.Time { return now }, funds: newFundsViews(maxFundsViews)}
	usdt, _ := d.Assets.Lookup("USDT.ETH")
	stream := domain.FundsStream("mer_a", usdt.Code)
	one := domain.MustAmount("1")
	request := func(f *domain.Funds, id string, credited string) (domain.Event, error) {
		r := domain.PayoutRequest{PayoutID: "po_" + id, MerchantID: "mer_a", CommandID: id, Asset: usdt, Amount: &one,
			ToAddress: "0x00000000000000000000000000000000000000bb", Kind: domain.PayoutKindWithdrawal}
		if len(id)%2 == 0 { // refunds (c0–c9, c100–c999, grouped by invoice), so that the snapshot carries them
			r.Kind, r.SourceInvoiceID = domain.PayoutKindRefund, "inv_"+id[:len(id)-1]
		}
		return f.RequestPayout(r, domain.MustAmount(credited), now)
	}
	// 2,500 debits appended as the commands would have, then one command.
	const n = 2500
	whole := &domain.Funds{}
	for start := 0; start < n; start += 500 {
		var batch []eventstore.EventData
		for i := start; i < start+500; i++ {
			id := fmt.Sprintf("c%d", i)
			ev, err := request(whole, id, "1000000")
			if err != nil {
				t.Fatal(err)
			}
			whole.Apply(ev)
			data, err := encode([]domain.Event{ev}, stream, Metadata{CommandID: id, MerchantID: "mer_a", OccurredAt: now})
			if err != nil {
				t.Fatal(err)
			}
			batch = append(batch, data...)
		}
		if _, err := store.Append(ctx, stream, eventstore.Any, batch); err != nil {
			t.Fatal(err)
		}
	}
	debit := func(d Deps, id, credited string) (fundsResult, error) {
		return executeFunds(ctx, d, stream, Metadata{CommandID: id, MerchantID: "mer_a", OccurredAt: now},
			func(f *domain.Funds) (domain.Event, error) { return request(f, id, credited) })
	}
	if _, err := debit(d, "new1", "1000000"); err != nil {
		t.Fatal(err)
	}
	snap, ok, err := raw.LoadSnapshot(ctx, stream, domain.FundsSnapshotKind)
	// The command folded the n events before it (its own is folded by the next).
	if err != nil || !ok || snap.Version != n-1 {
		t.Fatalf("snapshot after folding %d events = version %d, %v, %v; want %d", n, snap.Version, ok, err, n-1)
	}
	if seen := len(d.funds.view(stream).state.seen); seen != 0 {
		t.Fatalf("the view still holds %d ids from before its snapshot", seen)
	}

	// A new process: one more debit reads the events after the snapshot.
	d.funds = newFundsViews(maxFundsViews)
	store.read.Store(0)
	res, err := debit(d, "new2", "1000000")
	if err != nil {
		t.Fatal(err)
	}
	if got := store.read.Load(); got != 1 {
		t.Fatalf("the first debit after a start read %d events; want 1, the one after the snapshot", got)
	}
	if res.version != n+1 {
		t.Fatalf("the debit landed at version %d, want %d", res.version, n+1)
	}
	view := d.funds.view(stream).funds
	whole.Apply(mustDecode(t, raw, stream, n))
	if !view.Debited().Equal(whole.Debited()) {
		t.Fatalf("debited from the snapshot %s, from the whole stream %s", view.Debited(), whole.Debited())
	}
	for _, inv := range []string{"inv_c", "inv_c10", "inv_c99"} {
		if got, want := len(view.Refunds(inv)), len(whole.Refunds(inv)); got != want || want == 0 {
			t.Fatalf("refunds of %s: %d from the snapshot, %d from the whole stream", inv, got, want)
		}
	}

	// A retry of a command stored before the snapshot, in a new process,
	// whose decision now would fail: the stored result, not the failure.
	d.funds = newFundsViews(maxFundsViews)
	again, err := debit(d, "c7", "0")
	if err != nil {
		t.Fatalf("retry of c7: %v", err)
	}
	if again.version != 7 || again.event.(domain.PayoutRequested).PayoutID != "po_c7" {
		t.Fatalf("retry of c7 answered version %d, %+v; want its debit at version 7", again.version, again.event)
	}
	if _, err := debit(d, "new3", "0"); !errors.Is(err, domain.ErrInsufficientFunds) {
		t.Fatalf("a new debit with nothing credited = %v, want ErrInsufficientFunds", err)
	}

	// An unreadable snapshot: the next process folds the whole stream.
	if err := raw.SaveSnapshot(ctx, eventstore.Snapshot{Stream: stream, Kind: domain.FundsSnapshotKind, Version: n + 5, Data: []byte("not json")}); err != nil {
		t.Fatal(err)
	}
	d.funds = newFundsViews(maxFundsViews)
	store.read.Store(0)
	if _, err := debit(d, "new4", "1000000"); err != nil {
		t.Fatal(err)
	}
	if got := store.read.Load(); got != n+2 {
		t.Fatalf("with an unreadable snapshot the debit read %d events, want the whole stream (%d)", got, n+2)
	}
}

func mustDecode(t *testing.T, s eventstore.Store, stream string, version int64) domain.Event {
	t.Helper()
	recs, err := s.ReadStream(context.Background(), stream, version, 1)
	if err != nil || len(recs) != 1 {
		t.Fatalf("read %s@%d: %v, %v", stream, version, recs, err)
	}
	e, err := domain.DecodeStored(recs[0].Type, recs[0].Data, recs[0].Metadata)
	if err != nil {
		t.Fatal(err)
	}
	return e
}
