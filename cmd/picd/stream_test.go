package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/acceptcryptohere/gateway/analytics"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
)

// natsServer is a nats-server of the test's own, with JetStream in a
// directory that outlives a restart.
type natsServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
	logs bytes.Buffer
}

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server is not installed")
	}
	// A port in this test's range (33000-33999) that is free now.
	var port int
	for try := 0; ; try++ {
		port = 33000 + rand.IntN(1000)
		if ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			ln.Close()
			break
		}
		if try > 50 {
			t.Fatal("no free port in 33000-33999")
		}
	}
	n := &natsServer{t: t, port: port, dir: t.TempDir()}
	n.start(bin)
	t.Cleanup(n.kill)
	return n
}

func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

func (n *natsServer) start(bin string) {
	n.t.Helper()
	n.cmd = exec.Command(bin, "-a", "127.0.0.1", "-p", fmt.Sprint(n.port), "-js", "-sd", n.dir)
	n.cmd.Stdout, n.cmd.Stderr = &n.logs, &n.logs
	if err := n.cmd.Start(); err != nil {
		n.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		nc, err := nats.Connect(n.url())
		if err == nil {
			nc.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nats-server did not start: %v\n%s", err, n.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (n *natsServer) restart() {
	bin := n.cmd.Path
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	_ = n.cmd.Wait()
	n.start(bin)
}

func (n *natsServer) kill() {
	if n.cmd.ProcessState == nil {
		_ = n.cmd.Process.Kill()
		_ = n.cmd.Wait()
	}
}

// fillLog writes n events to a new SQLite log: the replay fixture's
// events (every type, three merchants) again and again under new ids.
func fillLog(t *testing.T, path string, n int) []string {
	t.Helper()
	f, err := os.Open("../../simulation/testdata/log-v1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type ev struct {
		Type     string          `json:"type"`
		Data     json.RawMessage `json:"data"`
		Metadata json.RawMessage `json:"metadata"`
	}
	var src []ev
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		var e ev
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		src = append(src, e)
	}
	s, err := sqlite.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const per = 100
	jobs := make(chan int)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				batch := make([]eventstore.EventData, per)
				for i := range batch {
					e := src[(k*per+i)%len(src)]
					batch[i] = eventstore.EventData{ID: fmt.Sprintf("ev-%d-%d", k, i), Type: e.Type, Data: e.Data, Metadata: e.Metadata}
				}
				if _, err := s.Append(context.Background(), fmt.Sprintf("fill-%d", k), eventstore.NoStream, batch); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for k := 0; k < n/per; k++ {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	ids := make([]string, 0, n)
	for pos := eventstore.Start; ; {
		page, err := s.ReadAll(context.Background(), pos, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			ids = append(ids, e.ID)
		}
		pos = page[len(page)-1].Position
	}
	return ids
}

// TestStreamToJetStreamExactlyOnce publishes a 100,000-event log to a real
// NATS JetStream with picd stream, kills picd mid-run and restarts it (it
// resumes from its checkpoint), restarts the server mid-run, and then
// reads the stream back: every event exactly once, with its type and
// schema version, on its merchant's and type's subject.
func TestStreamToJetStreamExactlyOnce(t *testing.T) {
	const total = 100_000
	dir := t.TempDir()
	logPath := filepath.Join(dir, "picd.db")
	ids := fillLog(t, logPath, total)
	if len(ids) != total {
		t.Fatalf("the log holds %d events", len(ids))
	}
	ns := startNATS(t)
	checkpoint := filepath.Join(dir, "stream.checkpoint")
	args := []string{"stream", "--log", "sqlite:" + logPath, "--nats", ns.url(), "--checkpoint", checkpoint, "--batch", "500"}
	startSink := func() (*exec.Cmd, *syncBuffer) {
		cmd := exec.Command(picdBin, args...)
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if cmd.ProcessState == nil {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
			}
		})
		return cmd, out
	}
	stored := func() uint64 {
		nc, err := nats.Connect(ns.url())
		if err != nil {
			return 0 // the server is restarting
		}
		defer nc.Close()
		js, _ := jetstream.New(nc)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := js.Stream(ctx, "PIC_EVENTS")
		if err != nil {
			return 0
		}
		info, err := st.Info(ctx)
		if err != nil {
			return 0
		}
		return info.State.Msgs
	}
	waitFor := func(what string, n uint64, out *syncBuffer) {
		deadline := time.Now().Add(3 * time.Minute)
		for stored() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d events stored, waited for %d\n%s", what, stored(), n, out)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	sink, out1 := startSink()
	waitFor("first run", total/4, out1)
	_ = sink.Process.Signal(syscall.SIGKILL)
	_ = sink.Wait()
	atKill := stored()
	cp, err := analytics.FileCheckpoint{Path: checkpoint}.Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("picd stream killed with %d events stored, checkpoint %s", atKill, cp)

	sink, out2 := startSink()
	waitFor("after the kill", total/2, out2)
	ns.restart()
	t.Logf("nats-server restarted with %d events stored", stored())
	waitFor("after the server restart", total, out2)
	// Caught up: the checkpoint reaches the log's end (only after the acks).
	deadline := time.Now().Add(time.Minute)
	for {
		cp, err = analytics.FileCheckpoint{Path: checkpoint}.Load()
		if err == nil && cp.String() == fmt.Sprintf("%d/0", total) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("checkpoint %v after the stream has every event\n%s", cp, out2)
		}
		time.Sleep(50 * time.Millisecond)
	}
	_ = sink.Process.Signal(syscall.SIGTERM)
	_ = sink.Wait()
	if !strings.Contains(out2.String(), `"after":"`) || strings.Contains(out2.String(), `"after":"0/0"`) {
		t.Errorf("the second run did not resume from the checkpoint:\n%s", out2)
	}
	if n := stored(); n != total {
		t.Fatalf("the stream holds %d messages for %d events", n, total)
	}

	// The consumer's side: every id once, with type and schema version.
	nc, err := nats.Connect(ns.url())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cons, err := js.OrderedConsumer(ctx, "PIC_EVENTS", jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]int, total)
	subjects := map[string]bool{}
	for len(seen) < total {
		batch, err := cons.Fetch(1000, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		got := 0
		for m := range batch.Messages() {
			got++
			var r analytics.Record
			if err := json.Unmarshal(m.Data(), &r); err != nil {
				t.Fatal(err)
			}
			h := m.Headers()
			if h.Get(nats.MsgIdHdr) != r.EventID || h.Get(analytics.HeaderEventType) != r.Type || h.Get(analytics.HeaderSchemaVersion) != "1" ||
				r.SchemaVersion != 1 {
				t.Fatalf("message %s: headers %v, record %s v%d", m.Subject(), h, r.Type, r.SchemaVersion)
			}
			if want := "pic.events." + map[bool]string{true: "_", false: r.MerchantID}[r.MerchantID == ""] + "." + r.Type; m.Subject() != want {
				t.Fatalf("event %s on %s, want %s", r.EventID, m.Subject(), want)
			}
			subjects[m.Subject()] = true
			seen[r.EventID]++
		}
		if err := batch.Error(); err != nil {
			t.Fatal(err)
		}
		if got == 0 {
			break
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Fatalf("event %s arrived %d times", id, seen[id])
		}
	}
	if len(seen) != total {
		t.Fatalf("%d distinct events consumed, want %d", len(seen), total)
	}
	t.Logf("%d events consumed exactly once over %d subjects, across a kill of picd stream and a server restart", len(seen), len(subjects))
}
