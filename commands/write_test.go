package commands_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// testStores are the event stores the write path is checked on.
var testStores = map[string]func(t *testing.T) eventstore.Store{
	"sqlite": func(t *testing.T) eventstore.Store {
		s, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
	"postgres": openPostgres,
}

// openPostgres gives the test a migrated store in its own schema.
func openPostgres(t *testing.T) eventstore.Store {
	dsn := os.Getenv("PIC_TEST_POSTGRES_URL")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		if os.Getenv("PIC_SKIP_POSTGRES") == "1" {
			t.Skipf("postgres unreachable (PIC_SKIP_POSTGRES=1): %v", err)
		}
		t.Fatalf("postgres at %s unreachable (set PIC_TEST_POSTGRES_URL, or PIC_SKIP_POSTGRES=1 to skip): %v", dsn, err)
	}
	conn.Close(ctx)
	b := make([]byte, 6)
	rand.Read(b)
	schema := "cmdtest_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if conn, err := pgx.Connect(ctx, dsn); err == nil {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			conn.Close(ctx)
		}
	})
	s, err := postgres.Open(ctx, dsn, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

// testClock is a clock the test moves.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// streamEvents reads every stream the store was asked to append to (the
// global log would do, but Postgres holds back its tail while other
// transactions on the server are open).
func streamEvents(t *testing.T, store *appendsStore) []eventstore.RecordedEvent {
	t.Helper()
	store.mu.Lock()
	var streams []string
	for s := range store.appends {
		streams = append(streams, s)
	}
	store.mu.Unlock()
	var out []eventstore.RecordedEvent
	for _, s := range streams {
		recs, err := eventstore.ReadFullStream(context.Background(), store, s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, recs...)
	}
	return out
}

// appendsStore counts the appends to each stream and, with conflictFirst,
// refuses the first one with ErrConflict, as if another writer had got
// there first.
type appendsStore struct {
	eventstore.Store
	conflictFirst bool
	mu            sync.Mutex
	appends       map[string]int
}

func (s *appendsStore) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, evs []eventstore.EventData) (eventstore.AppendResult, error) {
	s.mu.Lock()
	n := s.appends[stream]
	s.appends[stream] = n + 1
	s.mu.Unlock()
	if n == 0 && s.conflictFirst {
		return eventstore.AppendResult{}, eventstore.ErrConflict
	}
	return s.Store.Append(ctx, stream, expected, evs)
}

// A create retried with the same command id, later or concurrently, is
// recognised by the store itself: the same merchant, the same invoice, one
// stream each (not only httpapi's idempotency table prevents duplicates).
func TestRetriedCreateIsRecognisedByTheStore(t *testing.T) {
	for name, open := range testStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := &appendsStore{Store: open(t), appends: map[string]int{}}
			clock := &testClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
			d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock.Now, NewID: commands.NewIDGenerator(clock.Now)}
			h := commands.New(d, commands.NewIndexAllocator(d, testDerive), func(domain.Chain, string) error { return nil })
			newCommandID := commands.NewIDGenerator(clock.Now)

			reg := commands.RegisterMerchant{CommandID: newCommandID("cmd_"), Name: "Shop"}
			r1, err := h.RegisterMerchant.Handle(ctx, reg)
			if err != nil {
				t.Fatal(err)
			}
			clock.advance(3 * time.Second)
			r2, err := h.RegisterMerchant.Handle(ctx, reg)
			if err != nil {
				t.Fatal(err)
			}
			if r2.MerchantID != r1.MerchantID || r2.Position != r1.Position || r2.PublishableKey != r1.PublishableKey {
				t.Fatalf("retried sign-up: %+v, first %+v", r2, r1)
			}
			if r2.SecretKey != "" {
				t.Fatal("a retried sign-up shows a secret key the log does not have")
			}

			create := commands.CreateInvoice{CommandID: newCommandID("cmd_"), MerchantID: r1.MerchantID, Asset: "USDT.ETH", Amount: "10"}
			first, err := h.CreateInvoice.Handle(ctx, create)
			if err != nil {
				t.Fatal(err)
			}
			clock.advance(time.Minute)
			var wg sync.WaitGroup
			for i := 0; i < 4; i++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					again, err := h.CreateInvoice.Handle(ctx, create)
					if err != nil {
						t.Error(err)
						return
					}
					if again.Invoice.InvoiceID != first.Invoice.InvoiceID || again.Invoice.PayAddress != first.Invoice.PayAddress ||
						again.Position != first.Position {
						t.Errorf("retried invoice %s at %s (%v), first %s at %s (%v)", again.Invoice.InvoiceID, again.Invoice.PayAddress,
							again.Position, first.Invoice.InvoiceID, first.Invoice.PayAddress, first.Position)
					}
				}()
			}
			wg.Wait()

			// A command id that carries no time (an Idempotency-Key's
			// digest) is recognised too when retried in the same millisecond,
			// and another command id makes another invoice.
			keyed := commands.CreateInvoice{CommandID: "idem_0123456789abcdef", MerchantID: r1.MerchantID, Asset: "BTC", Amount: "0.1"}
			k1, err := h.CreateInvoice.Handle(ctx, keyed)
			if err != nil {
				t.Fatal(err)
			}
			k2, err := h.CreateInvoice.Handle(ctx, keyed)
			if err != nil {
				t.Fatal(err)
			}
			if k1.Invoice.InvoiceID != k2.Invoice.InvoiceID || k1.Invoice.InvoiceID == first.Invoice.InvoiceID {
				t.Fatalf("keyed: %s then %s (first %s)", k1.Invoice.InvoiceID, k2.Invoice.InvoiceID, first.Invoice.InvoiceID)
			}
			if !strings.HasPrefix(first.Invoice.InvoiceID, "inv_") || len(first.Invoice.InvoiceID) != len("inv_")+26 || !(first.Invoice.InvoiceID < k1.Invoice.InvoiceID) {
				t.Fatalf("ids %s, %s: want inv_ and 26 characters, sorting by time", first.Invoice.InvoiceID, k1.Invoice.InvoiceID)
			}

			types, streams := map[string]int{}, map[string]bool{}
			for _, e := range streamEvents(t, store) {
				types[e.Type]++
				if strings.HasPrefix(e.Stream, "invoice-") || strings.HasPrefix(e.Stream, "merchant-") {
					streams[e.Stream] = true
				}
			}
			if types[domain.TypeMerchantRegistered] != 1 || types[domain.TypeInvoiceCreated] != 2 || len(streams) != 3 {
				t.Fatalf("%d MerchantRegistered, %d InvoiceCreated in %d streams; want 1, 2 in 3",
					types[domain.TypeMerchantRegistered], types[domain.TypeInvoiceCreated], len(streams))
			}
		})
	}
}

type fixedCredits map[string]string

func (f fixedCredits) Credited(_ context.Context, _, asset string, _ eventstore.Position) (domain.Amount, error) {
	return domain.MustAmount(f[asset]), nil
}

// Every kind of command goes through the same write path: a conflict is
// retried, and the same command again answers with what was stored (the
// same position) and appends nothing.
func TestConflictAndRetryBehaveAlikeForEveryCommand(t *testing.T) {
	for name, open := range testStores {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store := &appendsStore{Store: open(t), conflictFirst: true, appends: map[string]int{}}
			clock := &testClock{now: time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)}
			d := commands.Deps{Store: store, Assets: domain.DefaultAssets(), Now: clock.Now, NewID: commands.NewIDGenerator(clock.Now),
				Credits: fixedCredits{"USDT.ETH": "100"}}
			acceptAll := func(domain.Chain, string) error { return nil }
			h := commands.New(d, commands.NewIndexAllocator(d, testDerive), acceptAll)
			reused := commands.New(d, commands.StaticAddresses{domain.ChainEthereum: "0x00000000000000000000000000000000000000aa"}, acceptAll)

			// Creates carry command ids with their time, as NewIDGenerator
			// makes them: a retry a second later names the same aggregate.
			newCommandID := commands.NewIDGenerator(clock.Now)
			regID, invID, reusedID := newCommandID("cmd_"), newCommandID("cmd_"), newCommandID("cmd_")
			var merchantID, invoiceID string
			var ref commands.PayoutRef
			steps := []struct {
				name    string
				streams []string // prefixes of the streams it writes
				run     func() (eventstore.Position, error)
			}{
				{"RegisterMerchant", []string{"merchant-"}, func() (eventstore.Position, error) {
					r, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{CommandID: regID, Name: "Shop"})
					merchantID = r.MerchantID
					return r.Position, err
				}},
				{"RotateWebhookSecret", []string{"merchant-"}, func() (eventstore.Position, error) {
					r, err := h.RotateWebhookSecret.Handle(ctx, commands.RotateWebhookSecret{CommandID: "rot", MerchantID: merchantID})
					return r.Position, err
				}},
				{"CreateInvoice", []string{"addresses-", "invoice-"}, func() (eventstore.Position, error) {
					r, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: invID, MerchantID: merchantID, Asset: "USDT.ETH", Amount: "10"})
					invoiceID = r.Invoice.InvoiceID
					return r.Position, err
				}},
				{"CreateInvoice on a reused address", []string{"address-", "invoice-"}, func() (eventstore.Position, error) {
					r, err := reused.CreateInvoice.Handle(ctx, commands.CreateInvoice{CommandID: reusedID, MerchantID: merchantID, Asset: "USDT.ETH", Amount: "10"})
					return r.Position, err
				}},
				{"ObserveDeposit", []string{"invoice-"}, func() (eventstore.Position, error) {
					r, err := h.ObserveDeposit.Handle(ctx, commands.ObserveDeposit{CommandID: "obs", InvoiceID: invoiceID,
						Deposit: domain.ObservedDeposit{DepositID: "dep1", TxID: "0xabc", Amount: domain.MustAmount("10"), Confirmations: 1}})
					return r.Position, err
				}},
				{"RequestPayout", []string{"payouts-"}, func() (eventstore.Position, error) {
					r, err := h.RequestPayout.Handle(ctx, commands.RequestPayout{CommandID: "po", MerchantID: merchantID, Asset: "USDT.ETH",
						Kind: domain.PayoutKindWithdrawal, Amount: "40", ToAddress: "0x00000000000000000000000000000000000000bb"})
					ref = r.Ref
					return r.Position, err
				}},
				{"SignPayout", []string{"payout-"}, func() (eventstore.Position, error) {
					r, err := h.SignPayout.Handle(ctx, commands.SignPayout{CommandID: "sign", Ref: ref,
						Tx: domain.SignedTx{TxID: "0xdef", Raw: "f86b", NetworkFee: domain.MustAmount("0.5")}})
					return r.Position, err
				}},
			}
			for _, s := range steps {
				before := len(streamEvents(t, store))
				first, err := s.run()
				if err != nil {
					t.Fatalf("%s: %v", s.name, err)
				}
				for _, prefix := range s.streams {
					seen := false
					store.mu.Lock()
					for stream, n := range store.appends {
						seen = seen || (strings.HasPrefix(stream, prefix) && n > 1)
					}
					store.mu.Unlock()
					if !seen {
						t.Errorf("%s: no conflict retried on a %s stream", s.name, prefix)
					}
				}
				written := len(streamEvents(t, store))
				if written == before || first == (eventstore.Position{}) {
					t.Fatalf("%s wrote nothing", s.name)
				}
				clock.advance(time.Second)
				again, err := s.run()
				if err != nil {
					t.Fatalf("%s again: %v", s.name, err)
				}
				if again != first {
					t.Errorf("%s again: position %v, first %v", s.name, again, first)
				}
				if n := len(streamEvents(t, store)); n != written {
					t.Errorf("%s again wrote %d events", s.name, n-written)
				}
			}
			// The same signing command with another transaction is refused:
			// the stored one must not pass for it.
			_, err := h.SignPayout.Handle(ctx, commands.SignPayout{CommandID: "sign", Ref: ref,
				Tx: domain.SignedTx{TxID: "0x999", Raw: "f86c", NetworkFee: domain.MustAmount("0.5")}})
			if err == nil {
				t.Fatal("another transaction under a stored signing command was accepted")
			}
		})
	}
}
