package projections

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// EventFeed keeps every event that belongs to a merchant (its metadata
// names one) for the analytics feed, GET /v1/events and its SSE stream.
//
// Each row gets seq, the merchant's next number (1, 2, …), assigned in log
// order inside the batch's transaction. seq rather than the global position
// is the public cursor because it is dense per merchant, and because a
// rebuild, or a copy of the log into another store (where positions
// differ), numbers the same events the same way: a client's cursor stays
// valid.
type EventFeed struct{}

var _ Tabled = EventFeed{}

func (EventFeed) Name() string     { return "event_feed" }
func (EventFeed) Tables() []string { return []string{"event_feed"} }

func (EventFeed) Apply(ctx context.Context, tx Tx, rec eventstore.RecordedEvent, _ domain.Event) error {
	merchantID, err := metadataMerchant(rec.Metadata)
	if err != nil {
		return fmt.Errorf("event_feed: metadata of %s: %w", rec.ID, err)
	}
	if merchantID == "" {
		return nil // the allocator's and address streams: nobody's feed
	}
	data, err := domain.PublishedData(rec.Data)
	if err != nil {
		return fmt.Errorf("event_feed: data of %s: %w", rec.ID, err)
	}
	// The batch remembers each merchant's last seq: one read per merchant
	// per batch instead of one per event.
	seqs, _ := tx.batch["event_feed_seqs"].(map[string]int64)
	if seqs == nil {
		seqs = map[string]int64{}
		tx.batch["event_feed_seqs"] = seqs
	}
	last, known := seqs[merchantID]
	if !known {
		err = tx.QueryRow(ctx, `SELECT seq FROM event_feed WHERE merchant_id = ? ORDER BY seq DESC LIMIT 1`, merchantID).Scan(&last)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	seqs[merchantID] = last + 1
	// The runner's checkpoint fence keeps an event from being applied twice;
	// event_id carries no unique index (migration 0005 says why).
	// Rows are written together at the end of the batch (FlushBatch):
	// nothing reads event_feed within a batch but the seq cache above.
	tx.bufferRow("event_feed_rows", `INSERT INTO event_feed (merchant_id, seq, event_id, stream, version, type, data, metadata, recorded_at, position)`,
		merchantID, last+1, rec.ID, rec.Stream, rec.Version, rec.Type, string(data), string(rec.Metadata),
		rec.RecordedAt.UnixMilli(), rec.Position.String())
	return nil
}

// FlushBatch writes the batch's feed rows.
func (EventFeed) FlushBatch(ctx context.Context, tx Tx) error {
	return tx.flushRows(ctx, "event_feed_rows")
}

// metadataMerchant returns the merchant_id of an event's metadata; "" when
// there is no metadata or it names no merchant.
func metadataMerchant(md []byte) (string, error) {
	if len(bytes.TrimSpace(md)) == 0 {
		return "", nil
	}
	var m struct {
		MerchantID string `json:"merchant_id"`
	}
	if err := json.Unmarshal(md, &m); err != nil {
		return "", err
	}
	return m.MerchantID, nil
}
