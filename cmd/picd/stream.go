package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acceptcryptohere/gateway/analytics"
)

// streamCmd is picd stream: the log published to NATS JetStream from a
// checkpoint, until a signal.
func streamCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("picd stream", flag.ContinueOnError)
	logSpec := fs.String("log", "", "the event store: sqlite:<path>, postgres:<url> or esdb:<url>; default: the gateway's (PIC_STORE, PIC_DATA_DIR, PIC_POSTGRES_URL, PIC_EVENTSTORE_URL)")
	url := fs.String("nats", env("PIC_NATS_URL", "nats://127.0.0.1:4222"), "NATS server URL(s), comma-separated (PIC_NATS_URL)")
	stream := fs.String("stream", env("PIC_NATS_STREAM", "PIC_EVENTS"), "JetStream stream, created or updated at start (PIC_NATS_STREAM)")
	prefix := fs.String("subject-prefix", env("PIC_NATS_SUBJECT_PREFIX", "pic.events"), "subjects are <prefix>.<merchant_id>.<type> (PIC_NATS_SUBJECT_PREFIX)")
	checkpoint := fs.String("checkpoint", env("PIC_STREAM_CHECKPOINT", ""), "file keeping the last position the server acknowledged (PIC_STREAM_CHECKPOINT; default <data>/stream.checkpoint)")
	window := fs.Duration("dedupe-window", 10*time.Minute, "the stream's duplicate window: a batch published again within it is stored once")
	batch := fs.Int("batch", 500, "events published before their acknowledgements are awaited and the checkpoint moves")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *checkpoint == "" {
		*checkpoint = filepath.Join(env("PIC_DATA_DIR", "./data"), "stream.checkpoint")
	}
	spec := *logSpec
	var err error
	if spec == "" {
		if spec, err = gatewayLogSpec(); err != nil {
			return err
		}
	}
	store, err := openStoreURL(ctx, spec, true)
	if err != nil {
		return err
	}
	defer store.Close()
	log := newLogger(stderr)
	nc, err := nats.Connect(*url, nats.Name("picd stream"), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { log.Warn("stream: disconnected from NATS", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { log.Info("stream: reconnected to NATS", "url", c.ConnectedUrl()) }))
	if err != nil {
		return fmt.Errorf("stream: connect to %s: %w", *url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2**batch))
	if err != nil {
		return err
	}
	sink := analytics.NewSink(analytics.SinkConfig{Store: store, JetStream: js, Checkpoint: analytics.FileCheckpoint{Path: *checkpoint},
		Stream: *stream, Prefix: *prefix, DedupeWindow: *window, Batch: *batch, Logger: log})
	setupCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = sink.Setup(setupCtx)
	cancel()
	if err != nil {
		return err
	}
	err = sink.Run(ctx)
	log.Info("stream: stopped", "published", sink.Published, "duplicates_dropped_by_server", sink.Duplicates)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
