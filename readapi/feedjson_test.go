package readapi

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

// feedJSONCases are payloads json.Marshal copies, compacts, escapes or
// refuses: AppendJSON must give what it gives for each.
var feedJSONCases = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-1.5e+10`, `"x"`,
	`{"a":"b","n":[1,2,{"c":null}],"t":true}`,
	`{"description":"Bücher für Ünïcödé — 1 € 🚀","k":"日本語"}`,
	`{"q":"say \"hi\"\\ \/ \b\f\n\r\t \u00e9 \uD83D\uDE80"}`,
	`{"html":"<b>a & b</b>"}`,                               // escaped by json.Marshal
	"{\"sep\":\"a\u2028b\u2029c\"}",                         // U+2028/2029: escaped
	`{"a": 1, "b" : [ 1 , 2 ] }`,                            // not compact
	" {\"a\":1}\n",                                          // surrounding whitespace
	"{\"bad\":\"\xff\xfe\"}",                                // invalid UTF-8: kept as is
	`{"a":1`, `{"a":1}x`, `{"a":01}`, `[1,]`, `"\x"`, `nul`, // invalid
	``, // empty
}

func TestFeedEventAppendJSONEqualsMarshal(t *testing.T) {
	base := FeedEvent{Seq: 42, EventID: "evt_01", Type: "InvoiceCreated", Stream: "invoice-inv_1", Version: 3,
		Position: "17/0", RecordedAt: time.UnixMilli(1764800000123).UTC(),
		Metadata: json.RawMessage(`{"merchant_id":"mer_1"}`), Data: json.RawMessage(`{"invoice_id":"inv_1"}`)}
	var events []FeedEvent
	events = append(events, base)
	for _, p := range feedJSONCases {
		e := base
		e.Data = json.RawMessage(p)
		events = append(events, e)
		e = base
		e.Metadata = json.RawMessage(p)
		events = append(events, e)
	}
	odd := base
	odd.Metadata, odd.Data = nil, nil
	events = append(events, odd)
	odd = base
	odd.Metadata = json.RawMessage(`{"merchant_id":"mer_1","schema_version":2}`)
	odd.EventID, odd.Type, odd.Stream = `evt "<&>"`, "Typ\u00e9\n", "s\u2028\xff"
	odd.Seq, odd.Version = 0, -1
	events = append(events, odd)
	odd = base
	odd.Metadata = json.RawMessage(`{"schema_version":"x"}`) // malformed: version 1
	events = append(events, odd)

	for _, e := range events {
		want, wantErr := json.Marshal(e.JSON())
		got, err := e.AppendJSON([]byte("prefix"))
		if (err != nil) != (wantErr != nil) {
			t.Errorf("data %q metadata %q: error %v, json.Marshal's %v", e.Data, e.Metadata, err, wantErr)
			continue
		}
		if err != nil {
			if string(got) != "prefix" {
				t.Errorf("data %q: on error dst is %q, want it unchanged", e.Data, got)
			}
			continue
		}
		if !bytes.Equal(got, append([]byte("prefix"), want...)) {
			t.Errorf("data %q metadata %q:\n got %s\nwant prefix%s", e.Data, e.Metadata, got, want)
		}
	}
}

// FuzzPlainJSON: plainJSON never takes for plain what json.Marshal of a
// json.RawMessage would refuse or change.
func FuzzPlainJSON(f *testing.F) {
	for _, p := range feedJSONCases {
		f.Add([]byte(p))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !plainJSON(b) {
			return
		}
		out, err := json.Marshal(json.RawMessage(b))
		if err != nil {
			t.Fatalf("plainJSON(%q) but json.Marshal refuses it: %v", b, err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("plainJSON(%q) but json.Marshal gives %q", b, out)
		}
	})
}

func TestPlainJSONDepth(t *testing.T) {
	deep := bytes.Repeat([]byte("["), plainMaxDepth+5)
	deep = append(deep, bytes.Repeat([]byte("]"), plainMaxDepth+5)...)
	if plainJSON(deep) {
		t.Error("a value deeper than plainMaxDepth is plain; want the slow path")
	}
	got, err := appendRawJSON(nil, deep)
	if err != nil || !bytes.Equal(got, deep) {
		t.Errorf("deep array: %s, %v", got, err)
	}
}
