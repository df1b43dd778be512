// Package history fills an event store with a realistic, reproducible
// history of a gateway (issue #23): merchants signed up through the command
// handler, invoices decided by the domain (paid, partially paid, paid late,
// reverted by a reorg, expired, still open), each invoice's whole life
// written in one append so the store's group commit batches the writers,
// and payouts (some failed) through the command handlers. Every event is
// what the gateway itself would have written, so picd audit agrees and the
// projections rebuild from it.
package history

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// Kind is what happens to a generated invoice.
type Kind string

const (
	Paid     Kind = "paid"     // paid in full, credited, final
	Partial  Kind = "partial"  // half paid, then expired
	Late     Kind = "late"     // expired, then paid in full (credited late)
	Reverted Kind = "reverted" // paid, credited, then a reorg took the payment away
	Expired  Kind = "expired"  // never paid
	Open     Kind = "open"     // created shortly before the history's end, still open
)

// Kinds lists every kind in a fixed order (the order picks are made in).
var Kinds = []Kind{Paid, Partial, Late, Reverted, Expired, Open}

// DefaultMix is the share of each kind of invoice.
var DefaultMix = map[Kind]float64{Paid: 0.82, Partial: 0.04, Late: 0.03, Reverted: 0.02, Expired: 0.08, Open: 0.01}

// eventsOf is how many events an invoice of each kind writes.
var eventsOf = map[Kind]int{Paid: 6, Partial: 4, Late: 5, Reverted: 7, Expired: 2, Open: 1}

// Config says what history to write. The same Config (Workers included)
// writes the same invoices, amounts, times and ids; only the merchants'
// random secrets differ.
type Config struct {
	Events    int // stop once this many events are written (each worker stops at its share)
	Merchants int
	Seed      uint64
	Workers   int // concurrent writers (default 32)
	// Pipeline is how many invoice appends each writer keeps in flight
	// (default 8). It changes only the order of the log, not what is in it.
	Pipeline int
	// Spread: an invoice's events after its creation are appended once
	// its writer has created this many more invoices, so that the log
	// interleaves invoices' lives as a gateway's does (0: each invoice's
	// whole life in one append).
	Spread int
	// Start and End bound the invoices' creation times.
	Start, End time.Time
	// Mix weighs the kinds (nil: DefaultMix).
	Mix map[Kind]float64
	// PayoutEvery: a merchant withdraws its whole balance of an asset
	// after this many credited invoices in it (0: no payouts).
	PayoutEvery int
	// FailEvery: one payout in this many (drawn) fails instead (0: none).
	FailEvery int
}

// Merchant is a generated merchant and its secret key (shown once).
type Merchant struct {
	ID        string `json:"id"`
	SecretKey string `json:"secret_key"`
}

// Report is what was written.
type Report struct {
	Events        int64          `json:"events"`
	Invoices      map[Kind]int64 `json:"invoices"`
	Payouts       int64          `json:"payouts"`
	FailedPayouts int64          `json:"failed_payouts"`
	Merchants     []Merchant     `json:"merchants"`
	Elapsed       time.Duration  `json:"elapsed_ns"`
	// Head is the position of the log's last event once written: where a
	// gateway that had lived this history would have its subscribers.
	Head eventstore.Position `json:"-"`
}

// Generate writes the history into store. sealer seals the merchants'
// webhook secrets as picd does (nil: in clear). progress, when set, is
// called with the events written so far, now and then.
func Generate(ctx context.Context, store eventstore.Store, sealer commands.SecretSealer, cfg Config, progress func(events int64)) (Report, error) {
	if err := cfg.check(); err != nil {
		return Report{}, err
	}
	began := time.Now()
	assets := domain.DefaultAssets()
	workers := min(cfg.Workers, cfg.Merchants)
	var total atomic.Int64
	ws := make([]*worker, workers)
	for i := range ws {
		ws[i] = newWorker(i, workers, cfg, store, assets, sealer, &total)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if errs[i] = w.run(ctx); errs[i] != nil {
				cancel()
			}
		}()
	}
	done := make(chan struct{})
	if progress != nil {
		go func() {
			t := time.NewTicker(500 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
					progress(total.Load())
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	rep := Report{Invoices: map[Kind]int64{}, Elapsed: time.Since(began)}
	for _, w := range ws {
		rep.Events += w.events
		rep.Payouts += w.payouts
		rep.FailedPayouts += w.failed
		for k, n := range w.counts {
			rep.Invoices[k] += n
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	for _, w := range ws {
		if rep.Head.Less(w.head) {
			rep.Head = w.head
		}
	}
	// The handlers' own appends (sign-ups, payout requests) may lie past
	// the last invoice or payout stream: read on to the end.
	for {
		recs, err := store.ReadAll(ctx, rep.Head, 1000)
		if err != nil {
			return rep, err
		}
		if len(recs) == 0 {
			break
		}
		rep.Head = recs[len(recs)-1].Position
	}
	// Merchants in the order they were numbered.
	for i := 0; i < cfg.Merchants; i++ {
		rep.Merchants = append(rep.Merchants, ws[i%workers].merchants[i/workers])
	}
	return rep, nil
}

func (c *Config) check() error {
	if c.Workers <= 0 {
		c.Workers = 32
	}
	if c.Pipeline <= 0 {
		c.Pipeline = 8
	}
	if c.Mix == nil {
		c.Mix = DefaultMix
	}
	var sum float64
	for k, v := range c.Mix {
		if _, ok := eventsOf[k]; !ok || v < 0 {
			return fmt.Errorf("history: mix: unknown kind %q or negative share", k)
		}
		sum += v
	}
	switch {
	case c.Events < 1 || c.Merchants < 1:
		return fmt.Errorf("history: events and merchants must be positive")
	case sum <= 0:
		return fmt.Errorf("history: the mix is empty")
	case !c.Start.Before(c.End.Add(-4 * time.Hour)):
		return fmt.Errorf("history: start must be at least 4 hours before end")
	}
	return nil
}

// eventsPerInvoice is the mean number of events an invoice brings, payouts included.
func (c Config) eventsPerInvoice() float64 {
	// In the fixed order of Kinds: a float sum in a map's random order
	// differs in its last bits from run to run, and with it every time.
	var sum, n float64
	for _, k := range Kinds {
		sum += c.Mix[k]
		n += c.Mix[k] * float64(eventsOf[k])
	}
	mean := n / sum
	if c.PayoutEvery > 0 {
		credited := (c.Mix[Paid] + c.Mix[Late]) / sum
		mean += 4 * credited / float64(c.PayoutEvery)
	}
	return mean
}

// pick chooses a kind by the mix.
func (c Config) pick(r *rand.Rand) Kind {
	var sum float64
	for _, k := range Kinds {
		sum += c.Mix[k]
	}
	x := r.Float64() * sum
	for _, k := range Kinds {
		if x < c.Mix[k] {
			return k
		}
		x -= c.Mix[k]
	}
	return Paid
}

// hexOf is a reproducible hex string of n characters named by parts.
func hexOf(n int, parts ...any) string {
	h := sha256.Sum256(fmt.Append(nil, parts...))
	s := hex.EncodeToString(h[:])
	for len(s) < n {
		h = sha256.Sum256(h[:])
		s += hex.EncodeToString(h[:])
	}
	return s[:n]
}

// commandID is a command id at t whose random part comes from r.
func commandID(t time.Time, r *rand.Rand) string {
	var tail [10]byte
	binary.LittleEndian.PutUint64(tail[:8], r.Uint64())
	binary.LittleEndian.PutUint16(tail[8:], uint16(r.Uint32()))
	return domain.FormatID("cmd_", uint64(t.UnixMilli()), tail)
}

// fraction is units/div of a base-unit amount, rounded down.
func fraction(a domain.Amount, decimals int32, div int64) domain.Amount {
	units, err := a.BaseUnits(decimals)
	if err != nil {
		panic("history: " + err.Error()) // amounts come from the domain at the asset's decimals
	}
	return domain.FromBaseUnits(new(big.Int).Quo(units, big.NewInt(div)), decimals)
}
