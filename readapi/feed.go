package readapi

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
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
	// A poller at the log's end gets a few rows; a page that fills 128 is
	// grown once to the size asked for: doubling from nothing copied a
	// full page's events ten times.
	page := make([]FeedEvent, 0, min(limit+1, 128))
	err := s.feedEvents(ctx, merchantID, after, limit+1, time.Time{}, time.Time{}, func(e FeedEvent) error {
		if len(page) == cap(page) {
			page = slices.Grow(page, limit+1-len(page))
		}
		page = append(page, e)
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("events: %w", err)
	}
	hasMore := len(page) > limit
	if hasMore {
		page = page[:limit]
	}
	return page, hasMore, nil
}

// feedEvents calls fn for the merchant's feed entries with seq > after, in
// seq order: at most limit of them (0: all), only those recorded in
// [from, to) where from or to is set (to the millisecond, as the copies
// keep the time). The copies in event_feed come first; then, where the log
// is in this database, the references in event_feed_refs, read joined
// with the log and published (secrets removed) here.
func (s *SQL) feedEvents(ctx context.Context, merchantID string, after int64, limit int, from, to time.Time, fn func(FeedEvent) error) error {
	n := 0
	read := func(query string, args []any, publish bool) error {
		if limit > 0 {
			query += ` LIMIT ?`
			args = append(args, limit-n)
		}
		rows, err := s.db.Read.QueryContext(ctx, s.db.Q(query), args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var e FeedEvent
			var recordedMicros int64
			var metadata, data []byte
			if err := rows.Scan(&e.Seq, &e.EventID, &e.Type, &e.Stream, &e.Version, &e.Position, &recordedMicros, &metadata, &data); err != nil {
				return err
			}
			if publish {
				if data, err = domain.PublishedData(data); err != nil {
					return fmt.Errorf("event %s: %w", e.EventID, err)
				}
			}
			e.RecordedAt = time.UnixMilli(recordedMicros / 1000).UTC()
			e.Metadata, e.Data = json.RawMessage(metadata), json.RawMessage(data)
			n++
			after = e.Seq
			if err := fn(e); err != nil {
				return err
			}
		}
		return rows.Err()
	}
	if s.db.LogTable == "" || !s.noFeedCopies.Load() {
		where, args := period("recorded_at", from, to)
		err := read(`SELECT seq, event_id, type, stream, version, position, recorded_at * 1000, metadata, data
			FROM event_feed WHERE merchant_id = ? AND seq > ?`+where+` ORDER BY seq`, append([]any{merchantID, after}, args...), false)
		if err != nil || s.db.LogTable == "" || limit > 0 && n == limit {
			return err
		}
		if n == 0 {
			var one int
			switch err := s.db.Read.QueryRowContext(ctx, `SELECT 1 FROM event_feed LIMIT 1`).Scan(&one); {
			case errors.Is(err, sql.ErrNoRows):
				s.noFeedCopies.Store(true)
			case err != nil:
				return err
			}
		}
	}
	// The log keeps the time to the microsecond; the bounds are taken to
	// the millisecond, as for the copies.
	position, recorded := s.db.LogColumns()
	var lo, hi any = from.UnixMilli() * 1000, to.UnixMilli() * 1000
	if s.db.Dialect == sqldb.Postgres {
		lo, hi = time.UnixMilli(from.UnixMilli()), time.UnixMilli(to.UnixMilli())
	}
	where, args := between("e.recorded_at", lo, hi, !from.IsZero(), !to.IsZero())
	return read(`SELECT f.seq, e.event_id, e.type, e.stream, e.version, `+position+`, `+recorded+`, e.metadata, e.data
		FROM event_feed_refs f JOIN `+s.db.LogTable+` e ON e.global_position = f.log_row
		WHERE f.merchant_id = ? AND f.seq > ?`+where+` ORDER BY f.seq`, append([]any{merchantID, after}, args...), true)
}
