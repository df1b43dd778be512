package readapi

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// MaxFeedPage bounds a page of the event feed.
const MaxFeedPage = 1000

// FeedEvent is one of a merchant's events as the feed keeps it.
type FeedEvent struct {
	Seq        int64 // the merchant's cursor: 1, 2, … in log order
	EventID    string
	Type       string
	Stream     string
	Version    int64
	Position   string // in the global log of the store it was read from
	RecordedAt time.Time
	Metadata   json.RawMessage
	Data       json.RawMessage
}

// FeedEventJSON is the envelope of GET /v1/events and of the SSE stream's
// data: the event as stored, with its body and metadata as JSON objects.
// Amounts in data are decimal strings, as every event stores them.
type FeedEventJSON struct {
	ID      string `json:"id"` // seq, the after cursor and the SSE id
	EventID string `json:"event_id"`
	Type    string `json:"type"`
	// SchemaVersion is the version of data's shape: its JSON Schema is
	// docs/events/<type>.v<schema_version>.json.
	SchemaVersion int             `json:"schema_version"`
	Stream        string          `json:"stream"`
	Version       int64           `json:"version"`
	Position      string          `json:"position"`
	RecordedAt    int64           `json:"recorded_at"` // Unix ms
	Metadata      json.RawMessage `json:"metadata"`
	Data          json.RawMessage `json:"data"`
}

// JSON renders the event.
func (e FeedEvent) JSON() FeedEventJSON {
	v, err := domain.SchemaVersion(e.Metadata)
	if err != nil {
		v = 1 // the feed's metadata was stored by this gateway; a malformed one predates versions
	}
	return FeedEventJSON{ID: strconv.FormatInt(e.Seq, 10), EventID: e.EventID, Type: e.Type, SchemaVersion: v, Stream: e.Stream,
		Version: e.Version, Position: e.Position, RecordedAt: e.RecordedAt.UnixMilli(), Metadata: e.Metadata, Data: e.Data}
}

// Events returns up to limit of the merchant's events with seq > after, in
// log order, and whether more follow. Errors: domain.ErrValidation (after
// negative, limit outside 1..MaxFeedPage).
func (s *SQL) Events(ctx context.Context, merchantID string, after int64, limit int) ([]FeedEvent, bool, error) {
	if limit < 1 || limit > MaxFeedPage {
		return nil, false, fmt.Errorf("%w: limit must be between 1 and %d", domain.ErrValidation, MaxFeedPage)
	}
	if after < 0 {
		return nil, false, fmt.Errorf("%w: after must not be negative", domain.ErrValidation)
	}
	rows, err := s.db.Read.QueryContext(ctx, s.db.Q(`SELECT seq, event_id, type, stream, version, position, recorded_at, metadata, data
		FROM event_feed WHERE merchant_id = ? AND seq > ? ORDER BY seq LIMIT ?`), merchantID, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("events: %w", err)
	}
	defer rows.Close()
	// A poller at the log's end gets a few rows; a page that fills 128 is
	// grown once to the size asked for: doubling from nothing copied a
	// full page's events ten times.
	page := make([]FeedEvent, 0, min(limit+1, 128))
	for rows.Next() {
		if len(page) == cap(page) {
			page = slices.Grow(page, limit+1-len(page))
		}
		var e FeedEvent
		var recorded int64
		var metadata, data string
		if err := rows.Scan(&e.Seq, &e.EventID, &e.Type, &e.Stream, &e.Version, &e.Position, &recorded, &metadata, &data); err != nil {
			return nil, false, fmt.Errorf("events: %w", err)
		}
		e.RecordedAt = time.UnixMilli(recorded).UTC()
		e.Metadata, e.Data = json.RawMessage(metadata), json.RawMessage(data)
		page = append(page, e)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("events: %w", err)
	}
	hasMore := len(page) > limit
	if hasMore {
		page = page[:limit]
	}
	return page, hasMore, nil
}
