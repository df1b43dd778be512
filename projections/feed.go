package projections

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// EventFeed keeps every event that belongs to a merchant (its metadata
// names one) for the analytics feed, GET /v1/events and its SSE stream.
//
// Each entry gets seq, the merchant's next number (1, 2, …), assigned in
// log order inside the batch's transaction. seq rather than the global
// position is the public cursor because it is dense per merchant, and
// because a rebuild, or a copy of the log into another store (where
// positions differ), numbers the same events the same way: a client's
// cursor stays valid.
//
// Where the log is in the read models' database (sqldb.DB.LogTable), an
// entry is a reference to the event's row of the log (event_feed_refs);
// elsewhere it is a copy of the event (event_feed). A database whose log is
// at hand may still hold copies written before references were: they come
// first in each merchant's seq, and a rebuild turns them into references.
type EventFeed struct{}

var _ Tabled = EventFeed{}

func (EventFeed) Name() string     { return "event_feed" }
func (EventFeed) Tables() []string { return []string{"event_feed", "event_feed_refs"} }

// feedBatch is a batch's feed entries by merchant, each merchant's in log
// order; FlushBatch numbers them on from the merchant's last seq, read for
// all of the batch's merchants in one statement rather than one each.
type feedBatch struct {
	rows map[string][]feedRow // copies
	refs map[string][]int64   // references: the events' log rows
	// lastSeq is each merchant's last seq written while the batch lives:
	// a rebuild's held batch lives through its catch-up (its tables
	// started empty), and reading MAX(seq) from a table of millions took 7
	// of the writer's 136 CPU seconds at 10M events.
	lastSeq map[string]int64
}

type feedRow struct {
	pos  eventstore.Position
	rec  *eventstore.RecordedEvent
	data string // published
}

// merchants is how many merchants have entries waiting.
func (b *feedBatch) merchants() int { return len(b.rows) + len(b.refs) }

const feedKey = "event_feed"

func (EventFeed) Apply(ctx context.Context, tx Tx, rec eventstore.RecordedEvent, _ domain.Event) error {
	merchantID, err := metadataMerchant(rec.Metadata)
	if err != nil {
		return fmt.Errorf("event_feed: metadata of %s: %w", rec.ID, err)
	}
	if merchantID == "" {
		return nil // the allocator's and address streams: nobody's feed
	}
	state := feedState(tx)
	b, _ := state[feedKey].(*feedBatch)
	if b == nil {
		b = &feedBatch{rows: map[string][]feedRow{}, refs: map[string][]int64{}, lastSeq: map[string]int64{}}
		state[feedKey] = b
	}
	if tx.db.LogTable != "" {
		// A reference keeps the log row only (a rebuild holds millions): it
		// is published (secrets removed) as it is read.
		b.refs[merchantID] = append(b.refs[merchantID], tx.db.LogRow(rec.Position.Commit, rec.Position.Prepare))
		return nil
	}
	data, err := domain.PublishedData(rec.Data)
	if err != nil {
		return fmt.Errorf("event_feed: data of %s: %w", rec.ID, err)
	}
	b.rows[merchantID] = append(b.rows[merchantID], feedRow{pos: rec.Position, rec: &rec, data: string(data)})
	return nil
}

// feedState is where the feed's entries wait to be written: references may
// be held across a rebuild's batches (Tx.held); copies, whole events, are
// the batch's.
func feedState(tx Tx) map[string]any {
	if tx.db.LogTable == "" {
		return tx.batch
	}
	return tx.held()
}

// FlushBatch writes the batch's feed entries. Nothing reads the feed
// within a batch, so they are written together at its end.
func (EventFeed) FlushBatch(ctx context.Context, tx Tx) error {
	state := feedState(tx)
	b, _ := state[feedKey].(*feedBatch)
	if b == nil {
		return nil
	}
	var merchants []string
	for m := range b.rows { // copies are never held: write every merchant's
		merchants = append(merchants, m)
	}
	for m := range b.refs {
		if !tx.holding(m) {
			merchants = append(merchants, m)
		}
	}
	slices.Sort(merchants)
	// The rows written now leave the state; a rebuild's others stay held.
	copied, referenced := b.rows, b.refs
	switch {
	case len(merchants) == b.merchants() && tx.hold == nil:
		delete(state, feedKey)
	case len(merchants) == b.merchants(): // a rebuild keeps lastSeq
		b.rows, b.refs = map[string][]feedRow{}, map[string][]int64{}
	default:
		b.rows = map[string][]feedRow{}
		referenced = make(map[string][]int64, len(merchants))
		for _, m := range merchants {
			if r, ok := b.refs[m]; ok {
				referenced[m] = r
				delete(b.refs, m)
			}
		}
	}
	last := make(map[string]int64, len(merchants))
	var unknown []string
	for _, m := range merchants {
		if seq, ok := b.lastSeq[m]; ok {
			last[m] = seq
		} else {
			unknown = append(unknown, m)
		}
	}
	for start := 0; start < len(unknown); {
		// A power of two of merchants per statement (the last repeated),
		// so that few shapes of it are prepared.
		n := min(len(unknown)-start, rowsPerInsert)
		shape := 1 << bits.Len(uint(n-1))
		args := make([]any, shape)
		for i := range args {
			args[i] = unknown[start+min(i, n-1)]
		}
		// Both tables: copies written before references come first.
		rows, err := tx.Query(ctx, `SELECT v.column1, (SELECT MAX(seq) FROM event_feed WHERE merchant_id = v.column1),
			(SELECT MAX(seq) FROM event_feed_refs WHERE merchant_id = v.column1)
			FROM (VALUES (?)`+strings.Repeat(`, (?)`, shape-1)+`) AS v`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var m string
			var copies, refs sql.NullInt64
			if err := rows.Scan(&m, &copies, &refs); err != nil {
				rows.Close()
				return err
			}
			last[m] = max(copies.Int64, refs.Int64)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		start += n
	}
	// By merchant: each merchant's rows of a batch go into a few pages
	// side by side, and so does its part of the key's index; a feed is
	// read by merchant.
	const copies, refs = "event_feed_rows", "event_feed_refs_rows"
	for _, m := range merchants {
		for i, logRow := range referenced[m] {
			tx.bufferRow(refs, `INSERT INTO event_feed_refs (merchant_id, seq, log_row)`, m, last[m]+int64(i)+1, logRow)
		}
		for i, r := range copied[m] {
			// The runner's checkpoint fence keeps an event from being
			// applied twice; event_id carries no unique index (migration
			// 0005 says why).
			tx.bufferRow(copies, `INSERT INTO event_feed (merchant_id, seq, event_id, stream, version, type, data, metadata, recorded_at, position)`,
				m, last[m]+int64(i)+1, r.rec.ID, r.rec.Stream, r.rec.Version, r.rec.Type, r.data, string(r.rec.Metadata),
				r.rec.RecordedAt.UnixMilli(), r.pos.String())
		}
		b.lastSeq[m] = last[m] + int64(len(referenced[m])+len(copied[m]))
	}
	if err := tx.flushRows(ctx, copies); err != nil {
		return err
	}
	return tx.flushRows(ctx, refs)
}

// metadataMerchant returns the merchant_id of an event's metadata; "" when
// there is no metadata or it names no merchant.
func metadataMerchant(md []byte) (string, error) {
	if len(bytes.TrimSpace(md)) == 0 {
		return "", nil
	}
	// Our metadata is a flat object of a few fields: read it without
	// decoding (a fifth of the feed's cost in a rebuild's profile), and
	// leave anything else to encoding/json.
	if id, ok := flatStringField(md, "merchant_id"); ok {
		return id, nil
	}
	var m struct {
		MerchantID string `json:"merchant_id"`
	}
	if err := json.Unmarshal(md, &m); err != nil {
		return "", err
	}
	return m.MerchantID, nil
}

// flatStringField reads the string field key of obj, a compact JSON object
// whose values are strings without escapes, numbers, booleans or null;
// "" when there is none. ok is false for anything else: nested values,
// escapes, whitespace, a key that differs from key only in case (which
// encoding/json would take), a field of key that is not a string, or obj
// not being such an object; the caller then decodes it.
func flatStringField(obj []byte, key string) (string, bool) {
	var found string
	if len(obj) < 2 || obj[0] != '{' {
		return "", false
	}
	i := 1
	if obj[i] == '}' {
		return "", i+1 == len(obj)
	}
	for {
		k, next, ok := plainString(obj, i)
		if !ok || next >= len(obj) || obj[next] != ':' {
			return "", false
		}
		i = next + 1
		if i >= len(obj) {
			return "", false
		}
		isKey := string(k) == key
		if !isKey && strings.EqualFold(string(k), key) {
			return "", false
		}
		if obj[i] == '"' {
			v, next, ok := plainString(obj, i)
			if !ok {
				return "", false
			}
			if isKey {
				found = string(v) // the last one, as encoding/json
			}
			i = next
		} else {
			if isKey {
				return "", false
			}
			j := i
			for j < len(obj) && obj[j] != ',' && obj[j] != '}' {
				if !isLiteralByte(obj[j]) {
					return "", false
				}
				j++
			}
			if lit := obj[i:j]; len(lit) == 0 || !json.Valid(lit) {
				return "", false
			}
			i = j
		}
		if i >= len(obj) {
			return "", false
		}
		switch obj[i] {
		case ',':
			i++
		case '}':
			return found, i+1 == len(obj)
		default:
			return "", false
		}
	}
}

// plainString reads the JSON string at obj[i] (its opening quote) that has
// no escapes and no control characters; next is the index after its
// closing quote. It returns the string's bytes within obj: with a string
// made of every name and value, metadataMerchant took 4.9 CPU s of a
// rebuild at 10M events instead of 4.0.
func plainString(obj []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(obj) || obj[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(obj); j++ {
		switch c := obj[j]; {
		case c == '"':
			if !utf8.Valid(obj[i+1 : j]) {
				return nil, 0, false
			}
			return obj[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// isLiteralByte: a byte of a number, true, false or null.
func isLiteralByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '-' || c == '+' || c == '.' || c == 'E'
}
