package analytics

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acceptcryptohere/gateway/backoff"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// NATS headers every published event carries besides Nats-Msg-Id (the
// event id, which JetStream deduplicates on).
const (
	HeaderEventType     = "Pic-Event-Type"
	HeaderSchemaVersion = "Pic-Schema-Version"
	HeaderPosition      = "Pic-Position"
)

// Checkpoint keeps the sink's place in the log.
type Checkpoint interface {
	Load() (eventstore.Position, error)
	Save(eventstore.Position) error
}

// FileCheckpoint keeps the position in a file, replaced atomically and
// synced, so a crash leaves the old position or the new one.
type FileCheckpoint struct{ Path string }

func (f FileCheckpoint) Load() (eventstore.Position, error) {
	raw, err := os.ReadFile(f.Path)
	if errors.Is(err, os.ErrNotExist) {
		return eventstore.Start, nil
	}
	if err != nil {
		return eventstore.Position{}, err
	}
	return eventstore.ParsePosition(strings.TrimSpace(string(raw)))
}

func (f FileCheckpoint) Save(p eventstore.Position) error {
	tmp := f.Path + ".tmp"
	fh, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := fh.WriteString(p.String() + "\n"); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Sync(); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, f.Path); err != nil {
		return err
	}
	if d, err := os.Open(filepath.Dir(f.Path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// SinkConfig configures a Sink.
type SinkConfig struct {
	Store      eventstore.Store
	JetStream  jetstream.JetStream
	Checkpoint Checkpoint
	// Stream is the JetStream stream (default "PIC_EVENTS"), created or
	// updated at start to hold Prefix.> with DedupeWindow.
	Stream string
	// Prefix of the subjects: <prefix>.<merchant_id or _>.<type>.
	Prefix string
	// DedupeWindow is the stream's duplicate window (default 10 min): a
	// batch published again after a crash, within it, is not stored twice.
	DedupeWindow time.Duration
	// Batch bounds the events published before their acknowledgements are
	// awaited and the checkpoint moves (default 500).
	Batch int
	// AckWait bounds the wait for a batch's acknowledgements (default 30 s).
	AckWait time.Duration
	Logger  *slog.Logger
}

// Sink publishes the log to NATS JetStream, each event once.
type Sink struct {
	cfg SinkConfig
	// Published counts events the server acknowledged as new, Duplicates
	// those it had already (a batch sent again after a crash or a failure).
	Published, Duplicates int64
}

// NewSink fills in SinkConfig's defaults.
func NewSink(cfg SinkConfig) *Sink {
	if cfg.Stream == "" {
		cfg.Stream = "PIC_EVENTS"
	}
	if cfg.Prefix == "" {
		cfg.Prefix = "pic.events"
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = 10 * time.Minute
	}
	if cfg.Batch <= 0 || cfg.Batch > MaxPage {
		cfg.Batch = 500
	}
	if cfg.AckWait <= 0 {
		cfg.AckWait = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Sink{cfg: cfg}
}

// Subject is where an event is published: by merchant, then type, so a
// consumer filters either ("pic.events.mer_x.>", "pic.events.*.InvoicePaid").
// Events of no merchant (the address allocator's) go under "_".
func (s *Sink) Subject(r Record) string {
	m := r.MerchantID
	if m == "" || strings.ContainsAny(m, ".*> \t") {
		m = "_"
	}
	return s.cfg.Prefix + "." + m + "." + r.Type
}

// Setup creates or updates the stream.
func (s *Sink) Setup(ctx context.Context) error {
	_, err := s.cfg.JetStream.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: s.cfg.Stream, Subjects: []string{s.cfg.Prefix + ".>"}, Duplicates: s.cfg.DedupeWindow, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return fmt.Errorf("stream: create or update %s: %w", s.cfg.Stream, err)
	}
	return nil
}

// retry paces the retries of a batch the server did not acknowledge.
var retry = backoff.Policy{Base: 200 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.5}

// Run publishes from the checkpoint on, until ctx ends. A batch is
// published, every acknowledgement awaited, and only then the checkpoint
// moved past it; a batch that fails is published again from its start (the
// server drops the copies it already has, by event id).
func (s *Sink) Run(ctx context.Context) error {
	pos, err := s.cfg.Checkpoint.Load()
	if err != nil {
		return fmt.Errorf("stream: checkpoint: %w", err)
	}
	s.cfg.Logger.Info("stream: publishing the log", "after", pos.String(), "stream", s.cfg.Stream)
	failures := 0
	for {
		recs, err := s.cfg.Store.ReadAll(ctx, pos, s.cfg.Batch)
		if err != nil {
			return fmt.Errorf("stream: read the log: %w", err)
		}
		if len(recs) == 0 {
			if err := s.cfg.Store.Wait(ctx, pos); err != nil {
				return err
			}
			continue
		}
		if err := s.publish(ctx, recs); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			failures++
			s.cfg.Logger.Warn("stream: batch not acknowledged; publishing it again", "after", pos.String(), "events", len(recs), "err", err)
			if !retry.Wait(ctx, failures) {
				return ctx.Err()
			}
			continue
		}
		failures = 0
		last := recs[len(recs)-1].Position
		if err := s.cfg.Checkpoint.Save(last); err != nil {
			return fmt.Errorf("stream: save checkpoint: %w", err)
		}
		pos = last
	}
}

func (s *Sink) publish(ctx context.Context, recs []eventstore.RecordedEvent) error {
	futures := make([]jetstream.PubAckFuture, 0, len(recs))
	for _, rec := range recs {
		r, err := NewRecord(rec)
		if err != nil {
			return err
		}
		body, err := json.Marshal(r)
		if err != nil {
			return err
		}
		msg := nats.NewMsg(s.Subject(r))
		msg.Data = body
		msg.Header.Set(HeaderEventType, r.Type)
		msg.Header.Set(HeaderSchemaVersion, strconv.Itoa(r.SchemaVersion))
		msg.Header.Set(HeaderPosition, r.Position)
		f, err := s.cfg.JetStream.PublishMsgAsync(msg, jetstream.WithMsgID(r.EventID), jetstream.WithExpectStream(s.cfg.Stream))
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	timeout := time.NewTimer(s.cfg.AckWait)
	defer timeout.Stop()
	var published, dup int64
	for _, f := range futures {
		select {
		case ack := <-f.Ok():
			if ack.Duplicate {
				dup++
			} else {
				published++
			}
		case err := <-f.Err():
			return err
		case <-timeout.C:
			return errors.New("no acknowledgement in time")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	s.Published += published
	s.Duplicates += dup
	return nil
}
