package esdb_test

// A tiny in-memory stand-in for EventStoreDB's gRPC Streams service, on
// loopback, so that the contract suite exercises this adapter's use of the
// real client (requests, options, paging, errors, subscriptions) where no
// server can run. Its semantics are a simplified reading of EventStoreDB's:
// it is not a substitute for running the suite against a real server.

import (
	"context"
	"errors"
	"net"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/storetest"
)

type fakeRecord struct {
	stream   string
	revision uint64
	pos      uint64
	id       *shared.UUID
	key      string // id as comparable bytes
	meta     map[string]string
	custom   []byte
	data     []byte
}

type fakeServer struct {
	api.UnimplementedStreamsServer
	// noIdempotency makes the fake answer every re-append with the
	// wrong-expected-version that EventStoreDB gives when its id cache
	// misses, so that the adapter's own read-back is what is tested.
	noIdempotency bool
	mu            sync.Mutex
	changed       chan struct{} // closed and replaced on every write
	log           []*fakeRecord
	streams       map[string][]*fakeRecord
}

func newFakeServer() *fakeServer {
	return &fakeServer{changed: make(chan struct{}), streams: map[string][]*fakeRecord{}}
}

// writeLocked appends records to the log; it also writes a system record
// first, as EventStoreDB's own streams interleave with ours in $all.
func (f *fakeServer) writeLocked(stream string, msgs []*api.AppendReq_ProposedMessage) *fakeRecord {
	sys := &api.AppendReq_ProposedMessage{Id: &shared.UUID{Value: &shared.UUID_String_{String_: "sys-" + strconv.Itoa(len(f.log))}},
		Metadata: map[string]string{"type": "$statsCollected", "content-type": "application/json"}}
	f.addLocked("$stats-fake", sys)
	var last *fakeRecord
	for _, m := range msgs {
		last = f.addLocked(stream, m)
	}
	close(f.changed)
	f.changed = make(chan struct{})
	return last
}

func (f *fakeServer) addLocked(stream string, m *api.AppendReq_ProposedMessage) *fakeRecord {
	meta := map[string]string{"created": strconv.FormatInt(time.Now().UnixNano()/100, 10)}
	for k, v := range m.Metadata {
		meta[k] = v
	}
	r := &fakeRecord{stream: stream, revision: uint64(len(f.streams[stream])), pos: uint64(len(f.log)+1) * 100,
		id: m.Id, key: m.Id.String(), meta: meta, custom: m.CustomMetadata, data: m.Data}
	f.log = append(f.log, r)
	f.streams[stream] = append(f.streams[stream], r)
	return r
}

func (f *fakeServer) Append(srv api.Streams_AppendServer) error {
	first, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := first.GetOptions()
	var msgs []*api.AppendReq_ProposedMessage
	for {
		req, err := srv.Recv()
		if err != nil {
			break // io.EOF once the client closes its side
		}
		msgs = append(msgs, req.GetProposedMessage())
	}
	stream := string(opts.StreamIdentifier.StreamName)
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.streams[stream]
	// Idempotent: the batch already stored where this expected version puts it.
	start := -1
	switch e := opts.ExpectedStreamRevision.(type) {
	case *api.AppendReq_Options_NoStream:
		start = 0
	case *api.AppendReq_Options_Revision:
		start = int(e.Revision) + 1
	case *api.AppendReq_Options_Any:
		for i, r := range cur {
			if r.key == msgs[0].Id.String() {
				start = i
			}
		}
	}
	if !f.noIdempotency && start >= 0 && start+len(msgs) <= len(cur) {
		same := true
		for i, m := range msgs {
			same = same && cur[start+i].key == m.Id.String()
		}
		if same {
			return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
				CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: uint64(start + len(msgs) - 1)},
				PositionOption:        &api.AppendResp_Success_NoPosition{NoPosition: &shared.Empty{}},
			}}})
		}
	}
	ok := true
	switch e := opts.ExpectedStreamRevision.(type) {
	case *api.AppendReq_Options_NoStream:
		ok = len(cur) == 0
	case *api.AppendReq_Options_Revision:
		ok = len(cur) == int(e.Revision)+1
	}
	if !ok {
		wrong := &api.AppendResp_WrongExpectedVersion{}
		if len(cur) == 0 {
			wrong.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		} else {
			wrong.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: uint64(len(cur) - 1)}
		}
		return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrong}})
	}
	last := f.writeLocked(stream, msgs)
	return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
		PositionOption:        &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{CommitPosition: last.pos, PreparePosition: last.pos}},
	}}})
}

func sendRecord(srv api.Streams_ReadServer, r *fakeRecord) error {
	return srv.Send(&api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id: r.id, StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(r.stream)},
			StreamRevision: r.revision, PreparePosition: r.pos, CommitPosition: r.pos,
			Metadata: r.meta, CustomMetadata: r.custom, Data: r.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: r.pos},
	}}})
}

func (f *fakeServer) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	o := req.Options
	if _, sub := o.CountOption.(*api.ReadReq_Options_Subscription); sub {
		return f.subscribeAll(o, srv)
	}
	count := int(o.GetCount())
	backwards := o.ReadDirection == api.ReadReq_Options_Backwards
	f.mu.Lock()
	var recs []*fakeRecord
	switch so := o.StreamOption.(type) {
	case *api.ReadReq_Options_Stream:
		name := string(so.Stream.StreamIdentifier.StreamName)
		cur := f.streams[name]
		if len(cur) == 0 {
			f.mu.Unlock()
			return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{StreamIdentifier: so.Stream.StreamIdentifier}}})
		}
		if backwards {
			if _, end := so.Stream.RevisionOption.(*api.ReadReq_Options_StreamOptions_End); !end {
				f.mu.Unlock()
				return status.Error(codes.Unimplemented, "fake: backwards only from end")
			}
			for i := len(cur) - 1; i >= 0 && len(recs) < count; i-- {
				recs = append(recs, cur[i])
			}
		} else {
			from := int(so.Stream.GetRevision())
			for i := from; i < len(cur) && len(recs) < count; i++ {
				recs = append(recs, cur[i])
			}
		}
	case *api.ReadReq_Options_All:
		if backwards {
			f.mu.Unlock()
			return status.Error(codes.Unimplemented, "fake: no backwards $all")
		}
		from := uint64(0)
		if p := so.All.GetPosition(); p != nil {
			from = p.CommitPosition // inclusive, like EventStoreDB's reads
		}
		for _, r := range f.log {
			if r.pos >= from && len(recs) < count {
				recs = append(recs, r)
			}
		}
	}
	f.mu.Unlock()
	for _, r := range recs {
		if err := sendRecord(srv, r); err != nil {
			return err
		}
	}
	return nil
}

// subscribeAll: a catch-up subscription to $all, exclusive of its start,
// filtered by event type regex.
func (f *fakeServer) subscribeAll(o *api.ReadReq_Options, srv api.Streams_ReadServer) error {
	all, ok := o.StreamOption.(*api.ReadReq_Options_All)
	if !ok {
		return status.Error(codes.Unimplemented, "fake: only $all subscriptions")
	}
	var after uint64
	if p := all.All.GetPosition(); p != nil {
		after = p.CommitPosition
	}
	var re *regexp.Regexp
	if fo := o.GetFilter(); fo != nil {
		re = regexp.MustCompile(fo.GetEventType().GetRegex())
	}
	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: "fake"}}}); err != nil {
		return err
	}
	for {
		f.mu.Lock()
		var recs []*fakeRecord
		for _, r := range f.log {
			if r.pos > after && (re == nil || re.MatchString(r.meta["type"])) {
				recs = append(recs, r)
			}
		}
		if n := len(f.log); n > 0 {
			after = max(after, f.log[n-1].pos)
		}
		changed := f.changed
		f.mu.Unlock()
		for _, r := range recs {
			if err := sendRecord(srv, r); err != nil {
				return err
			}
		}
		select {
		case <-srv.Context().Done():
			return srv.Context().Err()
		case <-changed:
		}
	}
}

// serveFake starts a fake on loopback and returns its connection string.
func serveFake(t *testing.T, f *fakeServer) string {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	api.RegisterStreamsServer(gs, f)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return "esdb://" + lis.Addr().String() + "?tls=false"
}

// TestContractOnFake runs the contract suite against the fake, always.
func TestContractOnFake(t *testing.T) {
	storetest.Run(t, factory(serveFake(t, newFakeServer())))
}

// TestContractOnFakeWithoutServerIdempotency: the adapter's read-back after a
// wrong-expected-version alone keeps re-appends idempotent.
func TestContractOnFakeWithoutServerIdempotency(t *testing.T) {
	f := newFakeServer()
	f.noIdempotency = true
	storetest.Run(t, factory(serveFake(t, f)))
}

// TestPartialReappendIsDuplicate: a batch whose first id is stored but not
// followed by the rest of it is ErrDuplicateEvent, not a silent success.
func TestPartialReappendIsDuplicate(t *testing.T) {
	s := factory(serveFake(t, newFakeServer()))(t)
	defer s.Close()
	ctx := context.Background()
	stream := "invoice-" + storetest.NewEventID()
	a := eventstore.EventData{ID: storetest.NewEventID(), Type: "A", Data: []byte(`{}`)}
	b := eventstore.EventData{ID: storetest.NewEventID(), Type: "B", Data: []byte(`{}`)}
	if _, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.EventData{a}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.EventData{a, b}); !errors.Is(err, eventstore.ErrDuplicateEvent) {
		t.Fatalf("re-append of [a] as [a b]: %v, want ErrDuplicateEvent", err)
	}
	if _, err := s.Append(ctx, stream, eventstore.NoStream, []eventstore.EventData{b}); !errors.Is(err, eventstore.ErrConflict) {
		t.Fatalf("new event with a stale NoStream: %v, want ErrConflict", err)
	}
}

// TestReadAllSkipsRunsOfSystemRecords: a stretch of system records longer
// than one page does not produce an empty page before the next event.
func TestReadAllSkipsRunsOfSystemRecords(t *testing.T) {
	f := newFakeServer()
	s := factory(serveFake(t, f))(t)
	defer s.Close()
	ctx := context.Background()
	f.mu.Lock()
	for i := 0; i < 5000; i++ {
		f.writeLocked("$stats-fake", nil)
	}
	f.mu.Unlock()
	id := storetest.NewEventID()
	if _, err := s.Append(ctx, "invoice-1", eventstore.NoStream, []eventstore.EventData{{ID: id, Type: "A", Data: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	page, err := s.ReadAll(ctx, eventstore.Start, 2)
	if err != nil || len(page) != 1 || page[0].ID != id {
		t.Fatalf("ReadAll after 5000 system records = %v, %v; want the one event", page, err)
	}
	more, err := s.ReadAll(ctx, page[0].Position, 2)
	if err != nil || len(more) != 0 {
		t.Fatalf("ReadAll after the last event = %v, %v; want empty", more, err)
	}
}
