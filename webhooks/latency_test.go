package webhooks

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/projections"
)

// TestLatencyUnderLoad measures, in the embedded mode (one SQLite file for
// events, read models and deliveries), the time from a status event's
// commit (the command returned) to the receiver's 2xx while invoices are
// paid at a fixed rate. It runs only with PIC_WEBHOOK_BENCH=1;
// PIC_WEBHOOK_BENCH_RATE (invoices/s, default 1000) and
// PIC_WEBHOOK_BENCH_SECONDS (default 3) tune it.
func TestLatencyUnderLoad(t *testing.T) {
	if os.Getenv("PIC_WEBHOOK_BENCH") != "1" {
		t.Skip("set PIC_WEBHOOK_BENCH=1")
	}
	rate, seconds := envInt("PIC_WEBHOOK_BENCH_RATE", 1000), envInt("PIC_WEBHOOK_BENCH_SECONDS", 3)
	e := setup(t, embedded)
	now := time.Now
	d := commands.Deps{Store: e.store, Assets: domain.DefaultAssets(), Now: now, NewID: commands.NewIDGenerator(now)}
	derive := func(chain domain.Chain, index int64) (string, error) {
		return fmt.Sprintf("%s-addr-%d", chain, index), nil
	}
	h := commands.New(d, commands.NewIndexAllocator(d, derive), func(domain.Chain, string) error { return nil })

	var mu sync.Mutex
	arrived := map[string]time.Time{} // invoice id + type → when the receiver answered
	rc := newReceiver(t)
	rc.set(func(r request, _ int) (int, http.Header, string) {
		var b struct{ Data struct{ ID string } }
		json.Unmarshal(r.Body, &b)
		mu.Lock()
		arrived[b.Data.ID+" "+r.Type] = time.Now()
		mu.Unlock()
		return 200, nil, ""
	})
	const merchants = 20
	var mids []string
	for i := 0; i < merchants; i++ {
		m, err := h.RegisterMerchant.Handle(e.ctx, commands.RegisterMerchant{CommandID: fmt.Sprint("r", i), Name: "M", WebhookURL: rc.srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		mids = append(mids, m.MerchantID)
	}
	total := rate * seconds
	invoices := make([]string, total)
	for i := range invoices {
		inv, err := h.CreateInvoice.Handle(e.ctx, commands.CreateInvoice{CommandID: fmt.Sprint("i", i), MerchantID: mids[i%merchants], Asset: "BTC", Amount: "0.001"})
		if err != nil {
			t.Fatal(err)
		}
		invoices[i] = inv.Invoice.InvoiceID
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	w := NewWorker(e.db, Config{AllowPrivate: true, Workers: 64, PerMerchant: 4, Logger: quiet})
	sub := NewSubscriber(e.store, e.db, SubscriberConfig{BaseURL: baseURL, Notify: w.Notify, Logger: quiet})
	runner := projections.NewRunner(e.store, e.db, quiet)
	if err := runner.CatchUp(e.ctx); err != nil {
		t.Fatal(err)
	}
	if err := sub.CatchUp(e.ctx); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	var bg sync.WaitGroup
	for _, run := range []func(context.Context) error{runner.Run, sub.Run, w.Run} {
		bg.Add(1)
		go func() { defer bg.Done(); run(ctx) }()
	}

	committed := make([]time.Time, 2*total) // [2i] confirming, [2i+1] paid
	start := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	for i, inv := range invoices {
		time.Sleep(time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))))
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := h.ObserveDeposit.Handle(e.ctx, commands.ObserveDeposit{CommandID: "o" + inv, InvoiceID: inv,
				Deposit: domain.ObservedDeposit{DepositID: "d", TxID: "tx" + inv, Amount: domain.MustAmount("0.001")}}); err != nil {
				t.Error(err)
				return
			}
			committed[2*i] = time.Now()
			if _, err := h.ConfirmDeposit.Handle(e.ctx, commands.ConfirmDeposit{CommandID: "c" + inv, InvoiceID: inv, DepositID: "d", Confirmations: 6}); err != nil {
				t.Error(err)
				return
			}
			committed[2*i+1] = time.Now()
		}()
	}
	wg.Wait()
	offered := time.Since(start)
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := len(arrived)
		mu.Unlock()
		if n == 2*total || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	bg.Wait()
	mu.Lock()
	defer mu.Unlock()
	var lat []time.Duration
	for i, inv := range invoices {
		for k, typ := range []string{EventInvoiceConfirming, EventInvoicePaid} {
			at, ok := arrived[inv+" "+typ]
			if !ok {
				t.Errorf("%s %s never arrived", inv, typ)
				continue
			}
			lat = append(lat, at.Sub(committed[2*i+k]))
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	t.Logf("%d invoices at %d/s offered over %s (%d deliveries): commit→2xx p50 %s p90 %s p99 %s max %s",
		total, rate, offered.Round(time.Millisecond), len(lat), q(0.50), q(0.90), q(0.99), lat[len(lat)-1])
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}
