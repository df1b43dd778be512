package esdb

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/google/uuid"

	"github.com/acceptcryptohere/gateway/eventstore"
)

// These tests need no server.

func TestToExpectedRevision(t *testing.T) {
	cases := []struct {
		in   eventstore.ExpectedVersion
		want esdb.ExpectedRevision
	}{
		{eventstore.Any, esdb.Any{}},
		{eventstore.NoStream, esdb.NoStream{}},
		{0, esdb.Revision(0)},
		{41, esdb.Revision(41)},
		{math.MaxInt64, esdb.Revision(math.MaxInt64)},
	}
	for _, tc := range cases {
		if got := toExpectedRevision(tc.in); got != tc.want {
			t.Errorf("toExpectedRevision(%d) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestPositions(t *testing.T) {
	if got := toAllPosition(eventstore.Start); got != (esdb.Start{}) {
		t.Errorf("toAllPosition(Start) = %#v, want esdb.Start{}", got)
	}
	p := eventstore.Position{Commit: 1234, Prepare: 1200}
	if got := toAllPosition(p); got != (esdb.Position{Commit: 1234, Prepare: 1200}) {
		t.Errorf("toAllPosition(%v) = %#v", p, got)
	}
	if got := toPosition(esdb.Position{Commit: 1234, Prepare: 1200}); got != p {
		t.Errorf("toPosition = %v, want %v", got, p)
	}
	wr := &esdb.WriteResult{CommitPosition: 99, PreparePosition: 98, NextExpectedVersion: 4}
	if got := fromWriteResult(wr); got != (eventstore.AppendResult{NextExpected: 4, Position: eventstore.Position{Commit: 99, Prepare: 98}}) {
		t.Errorf("fromWriteResult = %+v", got)
	}
	if positionKnown(eventstore.Position{Commit: math.MaxUint64, Prepare: math.MaxUint64}) || !positionKnown(p) {
		t.Errorf("positionKnown wrong")
	}
}

func TestToEventData(t *testing.T) {
	id := uuid.New()
	evs, ids, err := toEventData([]eventstore.EventData{{ID: id.String(), Type: "InvoiceCreated", Data: []byte(`{}`), Metadata: []byte(`{"m":1}`)}})
	if err != nil {
		t.Fatal(err)
	}
	want := esdb.EventData{EventID: id, EventType: "InvoiceCreated", ContentType: esdb.ContentTypeJson}
	got := evs[0]
	if got.EventID != want.EventID || got.EventType != want.EventType || got.ContentType != want.ContentType ||
		string(got.Data) != `{}` || string(got.Metadata) != `{"m":1}` || ids[0] != id {
		t.Errorf("toEventData = %+v, %v", got, ids)
	}
	for _, bad := range []string{"evt_01HX", "not-a-uuid", "{" + id.String() + "}", "urn:uuid:" + id.String(), upper(id.String())} {
		if _, _, err := toEventData([]eventstore.EventData{{ID: bad, Type: "X"}}); !errors.Is(err, eventstore.ErrInvalid) {
			t.Errorf("id %q: %v, want ErrInvalid", bad, err)
		}
	}
}

// Append checks its input before it talks to the server, so a client that
// never connected is enough (the gRPC client connects lazily).
func TestAppendRejectsBeforeServer(t *testing.T) {
	s, err := Open("esdb://127.0.0.1:1?tls=false")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, err := s.Append(ctx, "invoice-1", eventstore.NoStream, []eventstore.EventData{{ID: "evt_123", Type: "InvoiceCreated"}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("non-UUID id: %v, want ErrInvalid", err)
	}
	if _, err := s.Append(ctx, "", eventstore.NoStream, []eventstore.EventData{{ID: uuid.NewString(), Type: "X"}}); !errors.Is(err, eventstore.ErrInvalid) {
		t.Errorf("empty stream: %v, want ErrInvalid", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "invoice-1", eventstore.Any, []eventstore.EventData{{ID: uuid.NewString(), Type: "X"}}); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("append after close: %v, want ErrClosed", err)
	}
	if _, err := s.ReadAll(ctx, eventstore.Start, 10); !errors.Is(err, eventstore.ErrClosed) {
		t.Errorf("read after close: %v, want ErrClosed", err)
	}
}

func TestOpenBadConnString(t *testing.T) {
	if _, err := Open("http://nope"); err == nil {
		t.Error("Open accepted a non-esdb URL")
	}
}

func TestIsSystem(t *testing.T) {
	cases := []struct {
		stream, typ string
		want        bool
	}{
		{"invoice-1", "InvoiceCreated", false},
		{"$stats-127.0.0.1:2113", "$statsCollected", true},
		{"$et-InvoiceCreated", "$>", true},
		{"$settings", "Settings", true},
		{"invoice-1", "$metadata", true},
	}
	for _, tc := range cases {
		if got := isSystem(&esdb.RecordedEvent{StreamID: tc.stream, EventType: tc.typ}); got != tc.want {
			t.Errorf("isSystem(%s, %s) = %v, want %v", tc.stream, tc.typ, got, tc.want)
		}
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
