package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/readapi"
)

// TestEventListEncoding: the hand-written page of GET /v1/events is byte
// for byte what writeJSON gave for an eventListJSON: unicode, escapes,
// payloads json.Marshal compacts or escapes, empty pages and the next_after
// cursor.
func TestEventListEncoding(t *testing.T) {
	ev := func(seq int64, data, metadata string) readapi.FeedEvent {
		return readapi.FeedEvent{Seq: seq, EventID: "evt_" + string(rune('a'+seq%26)), Type: "InvoiceCreated", Stream: "invoice-inv_1",
			Version: seq - 1, Position: "12/3", RecordedAt: time.UnixMilli(1764800000000 + seq).UTC(),
			Metadata: json.RawMessage(metadata), Data: json.RawMessage(data)}
	}
	md := `{"merchant_id":"mer_1","command_id":"cmd_1"}`
	pages := []struct {
		name    string
		page    []readapi.FeedEvent
		hasMore bool
		after   int64
	}{
		{"empty from the start", nil, false, 0},
		{"empty after a cursor", []readapi.FeedEvent{}, false, 9_007_199_254_740_993},
		{"one", []readapi.FeedEvent{ev(1, `{"invoice_id":"inv_1","amount":"49.99"}`, md)}, true, 0},
		{"unicode and escapes", []readapi.FeedEvent{
			ev(7, `{"description":"Bücher — 10 € 🚀 日本","q":"a \"quoted\" \\ \/ \n\t\u00e9 \ud83d\ude80"}`, md),
			ev(8, `{"html":"<script>alert('x') & co</script>","sep":"a`+"\u2028"+`b`+"\u2029"+`"}`, md),
			ev(9, "{\"bad_utf8\":\"\xff\"}", `{"merchant_id":"<mer>","schema_version":2}`),
		}, false, 6},
		{"payloads json.Marshal compacts", []readapi.FeedEvent{
			ev(10, "{ \"a\" : [1, 2],\n\t\"b\": {} }", " {\"merchant_id\": \"mer_1\"} "),
			ev(11, `[]`, `{}`),
		}, true, 9},
	}
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			out := eventListJSON{Data: make([]readapi.FeedEventJSON, 0, len(p.page)), HasMore: p.hasMore, NextAfter: strconv.FormatInt(p.after, 10)}
			for _, e := range p.page {
				out.Data = append(out.Data, e.JSON())
			}
			if len(p.page) > 0 {
				out.NextAfter = out.Data[len(out.Data)-1].ID
			}
			rec := httptest.NewRecorder()
			writeJSON(rec, http.StatusOK, out)
			got, err := appendEventList(nil, p.page, p.hasMore, p.after)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != rec.Body.String() {
				t.Errorf("hand-written page differs from json.Marshal's:\n got %s\nwant %s", got, rec.Body.String())
			}
		})
	}
	// A payload json.Marshal refuses fails the page, as it did.
	if _, err := appendEventList(nil, []readapi.FeedEvent{ev(1, `{"a":`, md)}, false, 0); err == nil {
		t.Error("an invalid stored payload rendered; want an error (500)")
	}
}
