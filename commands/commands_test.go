package commands_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

type bundle struct {
	h     commands.Handlers
	store eventstore.Store
	now   *time.Time
}

// testDerive is a stand-in for HD derivation: distinct per chain and index.
func testDerive(chain domain.Chain, index int64) (string, error) {
	h := sha256.Sum256([]byte(fmt.Sprintf("%s/%d", chain, index)))
	return "0x" + hex.EncodeToString(h[:20]), nil
}

func setup(t *testing.T, addresses func(commands.Deps) commands.AddressSource) bundle {
	t.Helper()
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	if addresses == nil {
		addresses = func(d commands.Deps) commands.AddressSource { return commands.NewIndexAllocator(d, testDerive) }
	}
	acceptAll := func(domain.Chain, string) error { return nil }
	return bundle{h: commands.New(d, addresses(d), acceptAll), store: store, now: &now}
}

func register(t *testing.T, b bundle) commands.Registered {
	t.Helper()
	r, err := b.h.RegisterMerchant.Handle(context.Background(), commands.RegisterMerchant{CommandID: "c-" + t.Name(), Name: "My store", WebhookURL: "https://my-store.com/ipn"})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRegisterStoresOnlyTheKeyHash(t *testing.T) {
	b := setup(t, nil)
	r := register(t, b)
	evs, _ := b.store.ReadStream(context.Background(), commands.MerchantStream(r.MerchantID), 0, 10)
	if len(evs) != 1 || evs[0].Type != domain.TypeMerchantRegistered {
		t.Fatalf("events = %+v", evs)
	}
	raw := string(evs[0].Data) + string(evs[0].Metadata)
	if contains(raw, r.SecretKey) {
		t.Fatal("the secret key is in the log")
	}
	if !contains(raw, commands.HashSecretKey(r.SecretKey)) {
		t.Fatal("the key hash is not in the log")
	}
	if r.SecretKey[:9] != "pic_live_" || r.PublishableKey[:8] != "pic_pub_" || r.WebhookSecret[:6] != "whsec_" {
		t.Fatalf("key prefixes: %+v", r.Credentials)
	}
	if _, err := b.h.RegisterMerchant.Handle(context.Background(), commands.RegisterMerchant{CommandID: "x", Name: " "}); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("blank name: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(sub) > 0 && len(s) >= len(sub) && (func() bool {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
		return false
	})()
}

func TestCreateInvoiceRecordsFeeAndFreshAddresses(t *testing.T) {
	b := setup(t, nil)
	r := register(t, b)
	ctx := context.Background()
	seen := map[string]bool{}
	for i := 0; i < 70; i++ { // more than one index block
		res, err := b.h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: fmt.Sprint("ci-", i), MerchantID: r.MerchantID, Asset: "USDT.ETH", Amount: "49.99"})
		if err != nil {
			t.Fatal(err)
		}
		inv := res.Invoice
		if inv.Fee.Fee.String() != "0.124975" || inv.Fee.Bps != 25 || inv.Fee.Base.String() != "49.99" {
			t.Fatalf("fee = %+v", inv.Fee)
		}
		if inv.PayAmount.String() != "49.99" {
			t.Fatalf("fresh address needs no offset, pay_amount = %s", inv.PayAmount)
		}
		if seen[inv.PayAddress] {
			t.Fatalf("address %s given twice", inv.PayAddress)
		}
		seen[inv.PayAddress] = true
	}
	for _, bad := range []commands.CreateInvoice{
		{Asset: "DOGE", Amount: "1"},
		{Asset: "BTC", Amount: "1e3"},
		{Asset: "BTC", Amount: "0.000000001"},
		{Asset: "BTC", Amount: "0"},
		{Asset: "BTC", Amount: "1", SettleAs: "XYZ"},
	} {
		bad.MerchantID, bad.CommandID = r.MerchantID, "bad"
		if _, err := b.h.CreateInvoice.Handle(ctx, bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
	// Money rules 2 and 3: settle_as equal to the invoice's asset converts
	// nothing and is refused; an invoice that will be converted needs a
	// fresh price (none here: no oracle).
	for _, tc := range []struct {
		c    commands.CreateInvoice
		want error
	}{
		{commands.CreateInvoice{Asset: "BTC", Amount: "1", SettleAs: "BTC"}, domain.ErrValidation},
		{commands.CreateInvoice{Asset: "BTC", Amount: "1", SettleAs: "USDT.ETH"}, domain.ErrPriceUnavailable},
	} {
		tc.c.MerchantID, tc.c.CommandID = r.MerchantID, "bad-"+tc.c.SettleAs
		if _, err := b.h.CreateInvoice.Handle(ctx, tc.c); !errors.Is(err, tc.want) {
			t.Errorf("%+v: %v, want %v", tc.c, err, tc.want)
		}
	}
}

// Two allocators (two processes) on one log never hand out the same index.
func TestIndexAllocationAcrossAllocators(t *testing.T) {
	b := setup(t, nil)
	clock := func() time.Time { return *b.now }
	d := commands.Deps{Store: b.store, Assets: domain.DefaultAssets(), Now: clock, NewID: commands.NewIDGenerator(clock)}
	btc, _ := d.Assets.Lookup("BTC")
	var mu sync.Mutex
	seen := map[int64]bool{}
	var wg sync.WaitGroup
	for p := 0; p < 3; p++ {
		alloc := commands.NewIndexAllocator(d, testDerive)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 50; i++ {
					a, err := alloc.Allocate(context.Background(), btc, "mer_x")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					if seen[a.Index] {
						t.Errorf("index %d allocated twice", a.Index)
					}
					seen[a.Index] = true
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	if len(seen) != 600 {
		t.Fatalf("%d distinct indexes, want 600", len(seen))
	}
}

// On a reused address, concurrent open invoices of the same amount get
// distinct pay amounts.
func TestPayAmountUniqueOnReusedAddress(t *testing.T) {
	b := setup(t, func(commands.Deps) commands.AddressSource {
		return commands.StaticAddresses{domain.ChainEthereum: "0x00000000000000000000000000000000000000aa"}
	})
	r := register(t, b)
	var mu sync.Mutex
	pay := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			res, err := b.h.CreateInvoice.Handle(context.Background(), commands.CreateInvoice{CommandID: fmt.Sprint("c", i), MerchantID: r.MerchantID, Asset: "USDT.ETH", Amount: "49.99"})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if pay[res.Invoice.PayAmount.String()] {
				t.Errorf("pay_amount %s twice", res.Invoice.PayAmount)
			}
			pay[res.Invoice.PayAmount.String()] = true
		}(i)
	}
	wg.Wait()
	if !pay["49.99"] || !pay["49.990019"] || len(pay) != 20 {
		t.Fatalf("pay amounts: %v", pay)
	}
}

func TestRotateKeysAndSettings(t *testing.T) {
	b := setup(t, nil)
	r := register(t, b)
	ctx := context.Background()
	k, err := b.h.RotateKeys.Handle(ctx, commands.RotateKeys{CommandID: "rot", MerchantID: r.MerchantID})
	if err != nil || k.SecretKey == r.SecretKey || k.PublishableKey == r.PublishableKey {
		t.Fatalf("rotate: %+v %v", k, err)
	}
	if _, err := b.h.RotateKeys.Handle(ctx, commands.RotateKeys{CommandID: "rot2", MerchantID: "mer_missing"}); !errors.Is(err, domain.ErrNotFound) {
		t.Fatalf("rotate unknown merchant: %v", err)
	}
	url := "http://127.0.0.1:9/x"
	if _, err := b.h.UpdateAccount.Handle(ctx, commands.UpdateAccount{CommandID: "u1", MerchantID: r.MerchantID, Patch: domain.AccountPatch{WebhookURL: &url}}); err != nil {
		t.Fatal(err)
	}
	bad := "ftp://x"
	if _, err := b.h.UpdateAccount.Handle(ctx, commands.UpdateAccount{CommandID: "u2", MerchantID: r.MerchantID, Patch: domain.AccountPatch{WebhookURL: &bad}}); !errors.Is(err, domain.ErrValidation) {
		t.Fatalf("ftp webhook: %v", err)
	}
	pos, err := b.h.UpdateAccount.Handle(ctx, commands.UpdateAccount{CommandID: "u3", MerchantID: r.MerchantID, Patch: domain.AccountPatch{WebhookURL: &url}})
	if err != nil || pos != eventstore.Start {
		t.Fatalf("unchanged patch appended: %v %v", pos, err)
	}
	evs, _ := b.store.ReadStream(ctx, commands.MerchantStream(r.MerchantID), 0, 10)
	if len(evs) != 3 {
		t.Fatalf("merchant stream has %d events, want 3", len(evs))
	}
}

// A retried command (same command id) is recognised by the store.
func TestRetriedCommandIsNotDuplicated(t *testing.T) {
	b := setup(t, nil)
	r := register(t, b)
	ctx := context.Background()
	inv, err := b.h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: "ci", MerchantID: r.MerchantID, Asset: "BTC", Amount: "0.01"})
	if err != nil {
		t.Fatal(err)
	}
	id := inv.Invoice.InvoiceID
	dep := domain.ObservedDeposit{DepositID: "tx:0", TxID: "tx", Amount: domain.MustAmount("0.01"), Confirmations: 0}
	for i := 0; i < 2; i++ {
		if _, err := b.h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{CommandID: "obs", InvoiceID: id, Deposit: dep}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 2; i++ {
		if _, err := b.h.ConfirmDeposit.Handle(ctx, commands.ConfirmDeposit{CommandID: fmt.Sprint("conf", i), InvoiceID: id, DepositID: "tx:0", Confirmations: 2}); err != nil {
			t.Fatal(err)
		}
	}
	evs, _ := b.store.ReadStream(ctx, commands.InvoiceStream(id), 0, 20)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	want := fmt.Sprint([]string{"InvoiceCreated", "DepositDetected", "InvoiceConfirming", "DepositConfirmed", "InvoicePaid"})
	if fmt.Sprint(types) != want {
		t.Fatalf("stream = %v, want %v", types, want)
	}
	*b.now = b.now.Add(2 * time.Hour)
	if _, err := b.h.ExpireInvoice.Handle(ctx, commands.ExpireInvoice{CommandID: "exp", InvoiceID: id}); !errors.Is(err, domain.ErrInvalidState) {
		t.Fatalf("expiring a paid invoice: %v", err)
	}
}

func TestIDsSortByTime(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	gen := commands.NewIDGenerator(func() time.Time { return now })
	a := gen("inv_")
	now = now.Add(time.Millisecond)
	b := gen("inv_")
	if !(a < b) || len(a) != 30 || a[:4] != "inv_" {
		t.Fatalf("ids %s, %s", a, b)
	}
	if gen("inv_") == b {
		t.Fatal("two ids in one millisecond collide")
	}
}
