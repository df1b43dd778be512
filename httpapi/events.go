package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/readapi"
)

// EventFeed reads a merchant's events in log order; *readapi.SQL
// implements it.
type EventFeed interface {
	// Events returns up to limit events with seq > after and whether more
	// follow. Errors: domain.ErrValidation (after, limit).
	Events(ctx context.Context, merchantID string, after int64, limit int) ([]readapi.FeedEvent, bool, error)
}

var _ EventFeed = (*readapi.SQL)(nil)

// Event feed bounds.
const (
	defaultEventsLimit = 100
	// streamPage bounds what one stream holds in memory at a time: it sends
	// a page, then reads the next.
	streamPage = 100
	// streamPoll is how often an open stream looks for new events.
	streamPoll = 200 * time.Millisecond
	// maxStreamsPerMerchant bounds the open streams of one merchant in this
	// process: each polls the read model.
	maxStreamsPerMerchant = 10
	// streamRetryMs is the reconnection delay the stream suggests to EventSource clients.
	streamRetryMs = 2000
)

var (
	errNoEvents       = errorf(http.StatusServiceUnavailable, "service_unavailable", "the event feed is not available on this server")
	errTooManyStreams = errorf(http.StatusTooManyRequests, "too_many_streams", "too many open event streams for this account; close one first")
)

type eventListJSON struct {
	Data    []readapi.FeedEventJSON `json:"data"`
	HasMore bool                    `json:"has_more"`
	// NextAfter is the after of the next page: the last event's id, or the
	// request's after when the page is empty, so a poller can always send it back.
	NextAfter string `json:"next_after"`
}

// eventsAvailable answers 503 when the server has no event feed. Like
// webhooksAvailable it runs after authentication and the key check.
func (s *server) eventsAvailable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.d.Events == nil {
			s.writeError(w, r, errNoEvents)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// listEvents is GET /v1/events?after=&limit=: the merchant's events in log
// order, oldest first, after the cursor.
func (s *server) listEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	after, err := parseCursor(q.Get("after"), "after")
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	limit := defaultEventsLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > readapi.MaxFeedPage {
			s.writeError(w, r, errorf(http.StatusBadRequest, "validation_error", "limit must be an integer from 1 to "+strconv.Itoa(readapi.MaxFeedPage)))
			return
		}
		limit = n
	}
	page, hasMore, err := s.d.Events.Events(r.Context(), mustPrincipal(r).merchantID, after, limit)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	body, err := appendEventList(make([]byte, 0, eventPageBytes(page)), page, hasMore, after)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// appendEventList appends a page as writeJSON renders an eventListJSON,
// newline included, byte for byte (TestEventListEncoding), but with each
// event written by FeedEvent.AppendJSON: json.Marshal compacted every
// stored payload again, a third of a page's CPU.
func appendEventList(dst []byte, page []readapi.FeedEvent, hasMore bool, after int64) ([]byte, error) {
	dst = append(dst, `{"data":[`...)
	for i, e := range page {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = e.AppendJSON(dst); err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
	}
	if len(page) > 0 {
		after = page[len(page)-1].Seq
	}
	dst = append(dst, `],"has_more":`...)
	dst = strconv.AppendBool(dst, hasMore)
	dst = append(dst, `,"next_after":"`...)
	dst = strconv.AppendInt(dst, after, 10)
	return append(dst, "\"}\n"...), nil
}

// eventPageBytes guesses a page's size, so its buffer grows at most once.
func eventPageBytes(page []readapi.FeedEvent) int {
	n := 64
	for _, e := range page {
		n += 256 + len(e.EventID) + len(e.Stream) + len(e.Metadata) + len(e.Data)
	}
	return n
}

// parseCursor reads an event id: digits only, "" is 0 (the beginning).
func parseCursor(v, name string) (int64, error) {
	if v == "" {
		return 0, nil
	}
	bad := errorf(http.StatusBadRequest, "validation_error", name+" must be an event id: a non-negative integer")
	if len(v) > 19 {
		return 0, bad
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, bad
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, bad
	}
	return n, nil
}

// streamEvents is GET /v1/events/stream: Server-Sent Events, each
// "id: <seq>\nevent: <type>\ndata: <envelope>\n\n", starting after the
// Last-Event-ID header or else ?after=. It sends what exists, then polls the
// read model; a ": keepalive" comment goes out when the stream has been
// quiet for EventStreamKeepalive. It ends when the client goes away, after
// EventStreamMaxDuration, when the server shuts down, or on a read error;
// the client reconnects with Last-Event-ID and misses nothing.
func (s *server) streamEvents(w http.ResponseWriter, r *http.Request) {
	// The header wins: an EventSource reconnects to the same URL (with its
	// original ?after=) and sends the last id it received.
	cursorName, cursor := "after", r.URL.Query().Get("after")
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		cursorName, cursor = "Last-Event-ID", v
	}
	after, err := parseCursor(cursor, cursorName)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	merchantID := mustPrincipal(r).merchantID
	if !s.streams.acquire(merchantID) {
		s.writeError(w, r, errTooManyStreams)
		return
	}
	defer s.streams.release(merchantID)

	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.EventStreamMaxDuration)
	defer cancel()
	// Read the first page before answering, so a failing read model is
	// still a proper JSON error.
	page, more, err := s.d.Events.Events(ctx, merchantID, after, streamPage)
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("X-Accel-Buffering", "no") // nginx: do not buffer the stream
	w.WriteHeader(http.StatusOK)
	sw := &sseWriter{w: w, rc: rc, deadline: s.cfg.EventStreamKeepalive + 15*time.Second}
	if err := sw.write([]byte("retry: " + strconv.Itoa(streamRetryMs) + "\n\n")); err != nil {
		return
	}

	poll := time.NewTicker(streamPoll)
	defer poll.Stop()
	keepalive := time.NewTicker(s.cfg.EventStreamKeepalive)
	defer keepalive.Stop()
	for {
		for _, e := range page {
			if err := sw.event(e); err != nil {
				s.log.DebugContext(ctx, "httpapi: event stream write failed", "err", err)
				return
			}
			after = e.Seq
		}
		if len(page) > 0 {
			keepalive.Reset(s.cfg.EventStreamKeepalive)
		}
		if !more {
			// Caught up: wait for the next poll, sending keepalives.
		wait:
			for {
				select {
				case <-ctx.Done():
					return
				case <-s.d.ShuttingDown:
					return
				case <-keepalive.C:
					if err := sw.write([]byte(": keepalive\n\n")); err != nil {
						return
					}
				case <-poll.C:
					break wait
				}
			}
		} else if ctx.Err() != nil {
			return
		}
		page, more, err = s.d.Events.Events(ctx, merchantID, after, streamPage)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "httpapi: event stream read failed; the client will reconnect", "err", err)
			}
			return
		}
	}
}

// sseWriter writes whole SSE messages and flushes each one. Every write
// gets its own deadline, so a client that stops reading is dropped instead
// of holding the handler; it also replaces the server's WriteTimeout,
// which would otherwise end every stream after a minute.
type sseWriter struct {
	w        http.ResponseWriter
	rc       *http.ResponseController
	deadline time.Duration
	buf      []byte
}

func (sw *sseWriter) event(e readapi.FeedEvent) error {
	// AppendJSON writes compact JSON: one line, as SSE data needs.
	b := append(sw.buf[:0], "id: "...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, "\nevent: "...)
	b = append(b, e.Type...)
	b = append(b, "\ndata: "...)
	b, err := e.AppendJSON(b)
	if err != nil {
		return err
	}
	sw.buf = append(b, "\n\n"...)
	return sw.write(sw.buf)
}

func (sw *sseWriter) write(b []byte) error {
	// A socket deadline is on the system's clock, never on Deps.Now (the
	// business clock, which tests fix): the one direct clock read here.
	if err := sw.rc.SetWriteDeadline(time.Now().Add(sw.deadline)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	if _, err := sw.w.Write(b); err != nil {
		return err
	}
	return sw.rc.Flush()
}

// streamSlots counts the open streams of each merchant in this process.
type streamSlots struct {
	mu   sync.Mutex
	open map[string]int
}

func newStreamSlots() *streamSlots { return &streamSlots{open: map[string]int{}} }

func (s *streamSlots) acquire(merchantID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[merchantID] >= maxStreamsPerMerchant {
		return false
	}
	s.open[merchantID]++
	return true
}

func (s *streamSlots) release(merchantID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.open[merchantID]--; s.open[merchantID] <= 0 {
		delete(s.open, merchantID)
	}
}
