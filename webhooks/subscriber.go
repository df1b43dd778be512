package webhooks

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Webhook event types (x-payincrypto-event and the body's type).
const (
	EventInvoicePartiallyPaid = "invoice.partially_paid"
	EventInvoiceConfirming    = "invoice.confirming"
	EventInvoicePaid          = "invoice.paid"
	EventInvoiceExpired       = "invoice.expired"
	// A paid invoice whose payment a reorganisation took away, and an
	// invoice back to awaiting payment (money rule 5: every status change,
	// backwards too, is a webhook named after the new status).
	EventInvoiceReverted = "invoice.reverted"
	EventInvoiceNew      = "invoice.new"
	// EventInvoiceRefunded: a refund of the invoice is confirmed on chain
	// (the customer has it). Not a status change: the invoice keeps its
	// status; the body adds the refund.
	EventInvoiceRefunded = "invoice.refunded"
	// EventTest is only sent by SendTest.
	EventTest = "test"
)

// webhookTypes maps the log's event types that cause a webhook to the
// webhook's event name: every status change.
var webhookTypes = map[string]string{
	domain.TypeInvoicePartiallyPaid:   EventInvoicePartiallyPaid,
	domain.TypeInvoiceConfirming:      EventInvoiceConfirming,
	domain.TypeInvoicePaid:            EventInvoicePaid,
	domain.TypeInvoiceExpired:         EventInvoiceExpired,
	domain.TypeInvoiceReverted:        EventInvoiceReverted,
	domain.TypeInvoiceAwaitingPayment: EventInvoiceNew,
}

// logTypes are the keys of webhookTypes and the payout confirmations
// (a refund's is invoice.refunded): all the subscriber reads.
var logTypes = append(slices.Collect(maps.Keys(webhookTypes)), domain.TypePayoutConfirmed)

// webhookType maps a log event type to the webhook it announces; ok=false
// for events that announce none.
func webhookType(logType string) (string, bool) {
	name, ok := webhookTypes[logType]
	return name, ok
}

// DeliveryID is the stable x-payincrypto-delivery id of the delivery an
// event causes: the same event always gives the same id, so a replayed log
// cannot create a second delivery of it.
func DeliveryID(eventID string) string {
	h := sha256.Sum256([]byte(eventID))
	return "whd_" + hex.EncodeToString(h[:])[:24]
}

// body is a delivery's JSON, in the field order of the API page.
type body struct {
	Type      string `json:"type"`
	CreatedAt int64  `json:"created_at"` // Unix ms of the event
	Data      any    `json:"data"`
	// Refund is set on invoice.refunded only.
	Refund *refundJSON `json:"refund,omitempty"`
}

// refundJSON is the confirmed refund an invoice.refunded announces.
type refundJSON struct {
	ID              string `json:"id"`
	Amount          string `json:"amount"` // what the customer received
	NetworkFee      string `json:"network_fee"`
	NetOfNetworkFee bool   `json:"net_of_network_fee"`
	ToAddress       string `json:"to_address"`
	TxID            string `json:"txid"`
	ConfirmedAt     int64  `json:"confirmed_at"`
}

const checkpointName = "deliveries"

// subscriberBatch bounds the events turned into deliveries in one transaction.
const subscriberBatch = 500

// SubscriberConfig configures a Subscriber.
type SubscriberConfig struct {
	// BaseURL is the public origin for the invoice's checkout_url, the same
	// one the HTTP API renders invoices with.
	BaseURL string
	// Now stamps the deliveries' created_at (their retry window starts
	// there). Default time.Now.
	Now func() time.Time
	// Notify is called after a commit that created deliveries; wire it to
	// Worker.Notify so they are sent at once instead of at the next poll.
	Notify func()
	Logger *slog.Logger
	// Gather is how long the subscriber lets appends accumulate after it is
	// woken, before it reads: under load a read per append batch is most
	// of its cost (on Postgres a filtered read of the log per commit).
	// Default 10 ms, which is all a webhook waits longer; negative: none.
	Gather time.Duration
}

// defaultGather is SubscriberConfig.Gather's default.
const defaultGather = 10 * time.Millisecond

// Subscriber reads the global log from its own checkpoint
// (webhook_checkpoint) and turns each invoice status event into exactly one
// delivery row. The deliveries of a batch and the checkpoint commit in one
// transaction, and a delivery's id derives from its event's id (inserted
// with ON CONFLICT DO NOTHING), so a crash or restart neither loses a
// delivery nor creates a duplicate.
type Subscriber struct {
	store eventstore.Store
	db    sqldb.DB
	cfg   SubscriberConfig
	// f keeps the position read to in memory; batches without a status
	// event write the stored checkpoint at most every
	// follow.DefaultSaveEvery, so an idle subscriber does not take the
	// (SQLite: only) writer from appends. A restart re-reads at most that
	// much, and delivery ids make it harmless.
	f *follow.Follower
	// deliveries are the current batch's, built before its transaction.
	deliveries []newDelivery
	created    int
}

// NewSubscriber prepares a subscriber; run Migrate first, then Run.
func NewSubscriber(store eventstore.Store, db sqldb.DB, cfg SubscriberConfig) *Subscriber {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Notify == nil {
		cfg.Notify = func() {}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Gather == 0 {
		cfg.Gather = defaultGather
	}
	s := &Subscriber{store: store, db: db, cfg: cfg}
	log := cfg.Logger
	s.f = follow.New(follow.Config{Store: store, DB: db, Name: "webhooks", Types: logTypes, Batch: subscriberBatch, Gather: cfg.Gather, Now: cfg.Now,
		Checkpoint: follow.Table{DB: db, Table: "webhook_checkpoint", Name: checkpointName, Made: true, Now: cfg.Now},
		OnError:    func(err error) { log.Error("webhooks: subscriber batch failed; retrying", "err", err) }})
	return s
}

// Metrics are the subscriber's follower counters.
func (s *Subscriber) Metrics() *follow.Metrics { return s.f.Metrics() }

// Run follows the log until ctx ends and returns ctx's error. A failing
// batch is retried after follow.Retry's pause: the subscriber stops rather
// than skips an event.
func (s *Subscriber) Run(ctx context.Context) error {
	return s.f.Run(ctx, s.handler())
}

// CatchUp turns everything currently in the log into deliveries and
// returns (for tools and tests that do not run the loop).
func (s *Subscriber) CatchUp(ctx context.Context) error {
	return s.f.CatchUp(ctx, s.handler())
}

// newDelivery is a delivery row about to be inserted.
type newDelivery struct {
	id, eventID, position, merchantID, invoiceID, eventType string
	body                                                    []byte
}

// handler builds a batch's deliveries before its transaction (reading the
// log while holding the SQLite write connection would stall every append
// behind it), inserts them in the transaction that moves the checkpoint,
// and wakes the worker when it created any.
func (s *Subscriber) handler() follow.Handler {
	return follow.Handler{
		Prepare: func(ctx context.Context, recs []eventstore.RecordedEvent) (bool, error) {
			s.deliveries, s.created = s.deliveries[:0], 0
			for _, rec := range recs {
				d, ok, err := s.deliveryFor(ctx, rec)
				if err != nil {
					return false, err
				}
				if ok {
					s.deliveries = append(s.deliveries, d)
				}
			}
			return len(s.deliveries) > 0, nil
		},
		Write: func(ctx context.Context, tx *sql.Tx, _ []eventstore.RecordedEvent) error {
			var err error
			s.created, err = s.insert(ctx, tx, s.deliveries)
			return err
		},
		Committed: func([]eventstore.RecordedEvent) {
			if s.created > 0 {
				s.cfg.Notify()
			}
			s.deliveries, s.created = s.deliveries[:0], 0
		},
	}
}

// deliveryFor builds the delivery an event causes, if any: the body shows
// the invoice as of that event, folded from its stream up to the event.
func (s *Subscriber) deliveryFor(ctx context.Context, rec eventstore.RecordedEvent) (newDelivery, bool, error) {
	if rec.Type == domain.TypePayoutConfirmed {
		return s.refundDelivery(ctx, rec)
	}
	typ, ok := webhookType(rec.Type)
	if !ok {
		return newDelivery{}, false, nil
	}
	ev, err := domain.DecodeStored(rec.Type, rec.Data, rec.Metadata)
	if err != nil {
		return newDelivery{}, false, fmt.Errorf("webhooks: event %s: %w", rec.ID, err)
	}
	change, ok := ev.(domain.InvoiceStatusChanged)
	if !ok {
		return newDelivery{}, false, fmt.Errorf("webhooks: event %s of type %s is a %T", rec.ID, rec.Type, ev)
	}
	stream := domain.InvoiceStream(change.InvoiceID)
	prefix, err := s.store.ReadStream(ctx, stream, 0, int(rec.Version)+1)
	if err != nil {
		return newDelivery{}, false, fmt.Errorf("webhooks: read %s: %w", stream, err)
	}
	evs := make([]domain.Event, 0, len(prefix))
	for _, r := range prefix {
		e, err := domain.DecodeStored(r.Type, r.Data, r.Metadata)
		if err != nil {
			return newDelivery{}, false, fmt.Errorf("webhooks: event %s: %w", r.ID, err)
		}
		evs = append(evs, e)
	}
	inv, err := readapi.InvoiceFromEvents(evs)
	if err != nil {
		return newDelivery{}, false, fmt.Errorf("webhooks: invoice %s at version %d: %w", change.InvoiceID, rec.Version, err)
	}
	raw, err := json.Marshal(body{Type: typ, CreatedAt: change.At.UnixMilli(), Data: inv.JSON(s.cfg.BaseURL)})
	if err != nil {
		return newDelivery{}, false, err
	}
	return newDelivery{id: DeliveryID(rec.ID), eventID: rec.ID, position: rec.Position.String(), merchantID: change.MerchantID,
		invoiceID: change.InvoiceID, eventType: typ, body: raw}, true, nil
}

// insert writes the deliveries in tx, after the follower moved (and so
// locked: Postgres a row lock, SQLite the write lock) the checkpoint row,
// and reads and advances the sequence under that lock.
func (s *Subscriber) insert(ctx context.Context, tx *sql.Tx, deliveries []newDelivery) (int, error) {
	if len(deliveries) == 0 {
		return 0, nil
	}
	nowMs := s.cfg.Now().UnixMilli()
	var seq int64
	if err := tx.QueryRowContext(ctx, s.db.Q(`SELECT next_seq FROM webhook_checkpoint WHERE name = ?`), checkpointName).Scan(&seq); err != nil {
		return 0, fmt.Errorf("webhooks: checkpoint: %w", err)
	}
	created := 0
	for _, d := range deliveries {
		res, err := tx.ExecContext(ctx, s.db.Q(`INSERT INTO webhook_deliveries (delivery_id, seq, event_id, event_position, merchant_id, invoice_id,
			event_type, body, status, attempt_count, next_attempt_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) ON CONFLICT (delivery_id) DO NOTHING`),
			d.id, seq, d.eventID, d.position, d.merchantID, d.invoiceID, d.eventType, d.body, StatusPending, nowMs, nowMs, nowMs)
		if err != nil {
			return 0, fmt.Errorf("webhooks: insert delivery %s: %w", d.id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, err
		} else if n == 1 {
			seq++
			created++
		}
	}
	if _, err := tx.ExecContext(ctx, s.db.Q(`UPDATE webhook_checkpoint SET next_seq = ? WHERE name = ?`), seq, checkpointName); err != nil {
		return 0, fmt.Errorf("webhooks: checkpoint: %w", err)
	}
	return created, nil
}

// refundDelivery builds the invoice.refunded delivery of a refund's
// confirmation (other payouts announce nothing): the invoice as its stream
// stands, and the refund.
func (s *Subscriber) refundDelivery(ctx context.Context, rec eventstore.RecordedEvent) (newDelivery, bool, error) {
	ev, err := domain.DecodeStored(rec.Type, rec.Data, rec.Metadata)
	if err != nil {
		return newDelivery{}, false, fmt.Errorf("webhooks: event %s: %w", rec.ID, err)
	}
	c, ok := ev.(domain.PayoutConfirmed)
	if !ok || c.Kind != domain.PayoutKindRefund || c.InvoiceID == "" {
		return newDelivery{}, false, nil
	}
	stream := domain.InvoiceStream(c.InvoiceID)
	recs, err := eventstore.ReadFullStream(ctx, s.store, stream)
	if err != nil {
		return newDelivery{}, false, fmt.Errorf("webhooks: read %s: %w", stream, err)
	}
	evs := make([]domain.Event, 0, len(recs))
	for _, r := range recs {
		e, err := domain.DecodeStored(r.Type, r.Data, r.Metadata)
		if err != nil {
			return newDelivery{}, false, fmt.Errorf("webhooks: event %s: %w", r.ID, err)
		}
		evs = append(evs, e)
	}
	inv, err := readapi.InvoiceFromEvents(evs)
	if err != nil {
		return newDelivery{}, false, fmt.Errorf("webhooks: invoice %s: %w", c.InvoiceID, err)
	}
	raw, err := json.Marshal(body{Type: EventInvoiceRefunded, CreatedAt: c.ConfirmedAt.UnixMilli(), Data: inv.JSON(s.cfg.BaseURL),
		Refund: &refundJSON{ID: c.PayoutID, Amount: c.Sent.String(), NetworkFee: c.NetworkFee.String(), NetOfNetworkFee: true,
			ToAddress: c.ToAddress, TxID: c.TxID, ConfirmedAt: c.ConfirmedAt.UnixMilli()}})
	if err != nil {
		return newDelivery{}, false, err
	}
	return newDelivery{id: DeliveryID(rec.ID), eventID: rec.ID, position: rec.Position.String(), merchantID: c.MerchantID,
		invoiceID: c.InvoiceID, eventType: EventInvoiceRefunded, body: raw}, true, nil
}

// StartAt sets the subscriber's checkpoint to pos, so that it makes no
// deliveries for the events up to there. For a store filled with a
// history that no merchant waits to hear about (picd generate); run
// Migrate on db first.
func StartAt(ctx context.Context, db sqldb.DB, pos eventstore.Position) error {
	_, err := db.Write.ExecContext(ctx, db.Q(`UPDATE webhook_checkpoint SET position = ? WHERE name = ?`), pos.String(), checkpointName)
	return err
}
