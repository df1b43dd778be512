package chain_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

func TestUnmatchedSQLite(t *testing.T)   { testUnmatched(t, sqldbtest.SQLite(t)) }
func TestUnmatchedPostgres(t *testing.T) { testUnmatched(t, sqldbtest.Postgres(t, "unmatched")) }

// An unmatched deposit is kept once however often it is found, waits as
// open until one decision is taken, and is counted while it waits.
func testUnmatched(t *testing.T, db sqldb.DB) {
	ctx := context.Background()
	if err := chain.Migrate(ctx, db); err != nil {
		t.Fatal(err)
	}
	u := chain.Unmatched{DB: db}
	now := time.UnixMilli(1_800_000_000_000)
	token := chain.UnmatchedDeposit{Chain: "eth", DepositID: "0xabc:3", TxID: "0xabc", Address: "0x1111", Asset: "USDT.ETH",
		Amount: "7", BlockHeight: 42, Block: "0xb42", Reason: "chain: address is not one of ours: USDT.ETH 0x1111"}
	native := chain.UnmatchedDeposit{Chain: "eth", DepositID: "0xdef", TxID: "0xdef", Address: "0x2222", Asset: "ETH",
		Amount: "0.1", BlockHeight: 43, Block: "0xb43", Reason: "not ours"}
	for _, d := range []chain.UnmatchedDeposit{token, native, token} { // found again by a rescan
		if err := u.Record(ctx, d, now); err != nil {
			t.Fatal(err)
		}
	}
	list, err := u.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].OutputIndex != 3 || list[1].OutputIndex != -1 || list[0].Status != chain.UnmatchedOpen ||
		list[0].Amount != "7" || list[0].BlockHeight != 42 || list[0].FoundAt != now.UnixMilli() {
		t.Fatalf("kept: %+v", list)
	}
	tokenID, nativeID := list[0].ID, list[1].ID
	if counts, err := u.OpenByAsset(ctx); err != nil || counts["USDT.ETH"] != 1 || counts["ETH"] != 1 {
		t.Fatalf("open by asset: %v %v", counts, err)
	}

	// One decision: a credit may be finished (same invoice), not redirected.
	if err := u.Decide(ctx, tokenID, chain.UnmatchedCrediting, "inv_a", "", now); err != nil {
		t.Fatal(err)
	}
	if err := u.Decide(ctx, tokenID, chain.UnmatchedCrediting, "inv_b", "", now); !errors.Is(err, chain.ErrDecided) {
		t.Fatalf("credit to another invoice while crediting: %v", err)
	}
	if err := u.Decide(ctx, tokenID, chain.UnmatchedCrediting, "inv_a", "", now); err != nil {
		t.Fatalf("credit taken up again: %v", err)
	}
	if err := u.Decide(ctx, tokenID, chain.UnmatchedCredited, "inv_a", "", now); err != nil {
		t.Fatal(err)
	}
	if err := u.Decide(ctx, tokenID, chain.UnmatchedIgnored, "", "changed my mind", now); !errors.Is(err, chain.ErrDecided) {
		t.Fatalf("ignore after a credit: %v", err)
	}
	if err := u.Decide(ctx, nativeID, chain.UnmatchedCredited, "inv_c", "", now); err != nil {
		t.Fatal(err) // credited straight from open is allowed to the one who holds it
	}
	if err := u.Decide(ctx, 999, chain.UnmatchedIgnored, "", "x", now); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	// Found again after the decision: the decision stays.
	if err := u.Record(ctx, token, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, err := u.Get(ctx, tokenID)
	if err != nil || d.Status != chain.UnmatchedCredited || d.InvoiceID != "inv_a" {
		t.Fatalf("after being found again: %+v %v", d, err)
	}
	if counts, err := u.OpenByAsset(ctx); err != nil || len(counts) != 0 {
		t.Fatalf("open after the decisions: %v %v", counts, err)
	}
	if open, err := u.List(ctx, chain.UnmatchedOpen); err != nil || len(open) != 0 {
		t.Fatalf("open list: %+v %v", open, err)
	}

	// A reorg takes an open one away (a decided one stays); back in a
	// block, it is open again.
	tron := chain.UnmatchedDeposit{Chain: "tron", DepositID: "77aa", TxID: "77aa", Address: "TAbc", Asset: "TRX", Amount: "3",
		BlockHeight: 9, Block: "b9", Reason: "not ours"}
	if err := u.Record(ctx, tron, now); err != nil {
		t.Fatal(err)
	}
	if err := u.Gone(ctx, "tron", "77aa", now); err != nil {
		t.Fatal(err)
	}
	if err := u.Gone(ctx, "eth", "0xabc:3", now); err != nil {
		t.Fatal(err)
	}
	gone, err := u.List(ctx, chain.UnmatchedGone)
	if err != nil || len(gone) != 1 || gone[0].DepositID != "77aa" {
		t.Fatalf("gone: %+v %v", gone, err)
	}
	if d, _ := u.Get(ctx, tokenID); d.Status != chain.UnmatchedCredited {
		t.Fatalf("a reorg withdrew a decided deposit: %+v", d)
	}
	if err := u.Decide(ctx, gone[0].ID, chain.UnmatchedCrediting, "inv_d", "", now); !errors.Is(err, chain.ErrDecided) {
		t.Fatalf("credit of a deposit a reorg took away: %v", err)
	}
	tron.BlockHeight, tron.Block = 11, "b11"
	if err := u.Record(ctx, tron, now); err != nil {
		t.Fatal(err)
	}
	if d, _ := u.Get(ctx, gone[0].ID); d.Status != chain.UnmatchedOpen || d.BlockHeight != 11 {
		t.Fatalf("found again: %+v", d)
	}
}
