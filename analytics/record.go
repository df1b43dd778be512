package analytics

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// Record is an event as every outlet publishes it (the operator's export
// and HTTP feed, the stream sink): the event with its type and the schema
// version of its body, whose JSON Schema is docs/events/<type>.v<N>.json.
// The body is as stored at that version, less domain.SecretFields.
type Record struct {
	Position      string          `json:"position"` // in the source store's log; resume after it
	EventID       string          `json:"event_id"`
	Type          string          `json:"type"`
	SchemaVersion int             `json:"schema_version"`
	Schema        string          `json:"schema"` // the schema's $id
	Stream        string          `json:"stream"`
	Version       int64           `json:"version"`
	RecordedAt    time.Time       `json:"recorded_at"`
	MerchantID    string          `json:"merchant_id,omitempty"`
	Data          json.RawMessage `json:"data"`
	Metadata      json.RawMessage `json:"metadata,omitempty"`
}

// NewRecord makes the published record of a stored event.
func NewRecord(rec eventstore.RecordedEvent) (Record, error) {
	v, err := domain.SchemaVersion(rec.Metadata)
	if err != nil {
		return Record{}, fmt.Errorf("analytics: event %s: %w", rec.ID, err)
	}
	data, err := domain.PublishedData(rec.Data)
	if err != nil {
		return Record{}, fmt.Errorf("analytics: event %s: %w", rec.ID, err)
	}
	r := Record{Position: rec.Position.String(), EventID: rec.ID, Type: rec.Type, SchemaVersion: v, Schema: SchemaID(rec.Type, v),
		Stream: rec.Stream, Version: rec.Version, RecordedAt: rec.RecordedAt.UTC(), Data: data}
	if len(bytes.TrimSpace(rec.Metadata)) > 0 {
		r.Metadata = rec.Metadata
		var m struct {
			MerchantID string `json:"merchant_id"`
		}
		if err := json.Unmarshal(rec.Metadata, &m); err != nil {
			return Record{}, fmt.Errorf("analytics: event %s metadata: %w", rec.ID, err)
		}
		r.MerchantID = m.MerchantID
	}
	return r, nil
}

// Writer writes records in one format.
type Writer interface {
	Write(Record) error
	Flush() error
}

// NewWriter returns a writer of format "jsonl" (one record a line) or
// "csv" (a header, then one row a record; data and metadata as JSON text).
func NewWriter(w io.Writer, format string) (Writer, error) {
	switch format {
	case "jsonl", "":
		return &jsonlWriter{w: w, enc: json.NewEncoder(w)}, nil
	case "csv":
		return &csvWriter{w: csv.NewWriter(w)}, nil
	}
	return nil, fmt.Errorf("analytics: format %q: want jsonl or csv", format)
}

type jsonlWriter struct {
	w   io.Writer
	enc *json.Encoder
}

func (j *jsonlWriter) Write(r Record) error { return j.enc.Encode(r) } // Encode ends each with a newline
func (j *jsonlWriter) Flush() error {
	if f, ok := j.w.(interface{ Flush() error }); ok {
		return f.Flush()
	}
	return nil
}

// CSVHeader is the csv format's first row.
var CSVHeader = []string{"position", "event_id", "type", "schema_version", "stream", "version", "recorded_at", "merchant_id", "data", "metadata"}

type csvWriter struct {
	w      *csv.Writer
	headed bool
}

func (c *csvWriter) Write(r Record) error {
	if !c.headed {
		c.headed = true
		if err := c.w.Write(CSVHeader); err != nil {
			return err
		}
	}
	return c.w.Write([]string{r.Position, r.EventID, r.Type, strconv.Itoa(r.SchemaVersion), r.Stream, strconv.FormatInt(r.Version, 10),
		r.RecordedAt.Format(time.RFC3339Nano), r.MerchantID, string(r.Data), string(r.Metadata)})
}

func (c *csvWriter) Flush() error {
	c.w.Flush()
	return c.w.Error()
}

// MaxPage bounds the events one read of the log holds.
const MaxPage = 1000

// Export writes every event after from, in global order, in pages of at
// most page events (so memory stays constant whatever the log's size), and
// returns where it stopped. With follow it then waits for new events
// until ctx ends (tail); without, it returns at the end of the log.
// progress, if set, is called after each page.
func Export(ctx context.Context, store eventstore.Store, from eventstore.Position, page int, follow bool, w Writer,
	progress func(n int64, at eventstore.Position)) (eventstore.Position, int64, error) {
	if page < 1 || page > MaxPage {
		page = MaxPage
	}
	pos, n := from, int64(0)
	for {
		recs, err := store.ReadAll(ctx, pos, page)
		if err != nil {
			return pos, n, err
		}
		for _, rec := range recs {
			r, err := NewRecord(rec)
			if err != nil {
				return pos, n, err
			}
			if err := w.Write(r); err != nil {
				return pos, n, err
			}
			pos = rec.Position
			n++
		}
		if len(recs) > 0 && progress != nil {
			progress(n, pos)
		}
		if len(recs) == page {
			continue
		}
		if err := w.Flush(); err != nil {
			return pos, n, err
		}
		if !follow {
			return pos, n, nil
		}
		if err := store.Wait(ctx, pos); err != nil {
			return pos, n, err
		}
	}
}
