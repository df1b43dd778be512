package main

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Fault tests: the real picd under load (invoices created, paid through the
// simulator, blocks mined, webhooks received on loopback) while something
// breaks. Each ends with settle's checks and `picd audit`. Every wait is
// bounded; each test takes well under 30 s.

// TestFaultKillDuringLoadWithWebhooks SIGKILLs picd while invoices are
// created and paid and webhooks are being delivered, then restarts it.
// Deliveries are at least once: an attempt in flight at the kill was sent
// but not recorded, so the same delivery id goes again after the restart.
// The test allows a second arrival only for ids first received before the
// restart (the killed process's last requests may be read by the receiver
// just after kill returns).
func TestFaultKillDuringLoadWithWebhooks(t *testing.T) {
	for name, env := range modes(t) {
		t.Run(name, func(t *testing.T) {
			e := append(env(t), faultEnv()...)
			rc := newHookReceiver(t)
			g := startProc(t, e)
			key := signUp(t, g.gateway, rc)
			url := g.url
			l := startLoad(func() string { return url }, key, 6)
			time.Sleep(2 * time.Second)
			g.kill()
			killedAt := time.Now()
			l.stop()
			before, _, _ := rc.snapshot()
			acked, paid, _ := l.results()
			if len(paid) == 0 || len(before) == 0 {
				t.Fatalf("nothing paid or delivered before the kill (%d acked, %d paid, %d webhooks):\n%s", len(acked), len(paid), len(before), g.out)
			}

			restarted := time.Now()
			g2 := startProc(t, e)
			s := settle(t, g2.url, key, l, rc, 20*time.Second)
			got, _, _ := rc.snapshot()
			for _, id := range s.duplicates {
				if got[id].first.After(restarted) {
					t.Errorf("delivery %s arrived twice, the first time after the restart (%s after the kill): not explained by the crash", id, got[id].first.Sub(killedAt).Round(time.Millisecond))
				}
			}
			g2.stop()
			auditAgrees(t, e)
			t.Logf("%s: killed with %d webhooks received; %s", name, len(before), s)
		})
	}
}

// TestFaultPostgresRestartedDuringLoad stops a private Postgres (fast
// shutdown) under picd for 2 s while invoices are created and paid, then
// starts it again. While it is down requests fail with 5xx and /readyz
// says 503; afterwards the same picd process serves again, nothing
// acknowledged is lost, webhooks arrive once per id and the audit agrees.
func TestFaultPostgresRestartedDuringLoad(t *testing.T) {
	pg := startPrivatePostgres(t)
	e := append([]string{"PIC_STORE=postgres", "PIC_POSTGRES_URL=" + pg.url, "PIC_DATA_DIR=" + t.TempDir()}, faultEnv()...)
	rc := newHookReceiver(t)
	g := startProc(t, e)
	key := signUp(t, g.gateway, rc)
	url := g.url
	l := startLoad(func() string { return url }, key, 6)
	time.Sleep(1500 * time.Millisecond)
	_, _, codesBefore := l.results()

	pg.stop(t)
	downAt := time.Now()
	time.Sleep(500 * time.Millisecond)
	readyDown, _ := getJSON(url+"/readyz", "", nil)
	time.Sleep(1500 * time.Millisecond)
	_, _, codesDown := l.results()
	pg.start(t)
	upAt := time.Now()
	for l.ackedSince(upAt) < 20 {
		if time.Since(upAt) > 15*time.Second {
			_, _, codes := l.results()
			t.Fatalf("picd did not serve again within 15 s of Postgres coming back (codes %v):\n%s", codes, tail(g.out.String(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	recovered := time.Since(upAt)
	time.Sleep(time.Second)
	l.stop()
	readyUp, _ := getJSON(url+"/readyz", "", nil)

	during := map[int]int{}
	for code, n := range codesDown {
		if d := n - codesBefore[code]; d > 0 {
			during[code] = d
		}
	}
	failed := 0
	for code, n := range during {
		if code/100 != 2 {
			failed += n
		}
	}
	if failed == 0 {
		t.Errorf("no request failed while Postgres was down (%v): was it down?", during)
	}
	if readyDown != http.StatusServiceUnavailable || readyUp != http.StatusOK {
		t.Errorf("/readyz: %d while Postgres was down (want 503), %d after (want 200)", readyDown, readyUp)
	}
	s := settle(t, url, key, l, rc, 20*time.Second)
	if len(s.duplicates) > 0 {
		// A worker that loses Postgres mid-send cannot record the attempt;
		// at least once allows that, so report rather than fail.
		t.Logf("ids delivered twice (attempt unrecordable while Postgres was down): %v", s.duplicates)
	}
	g.stop()
	auditAgrees(t, e)
	t.Logf("Postgres down for %s: request outcomes meanwhile %v, /readyz %d; serving again %s after it came back; %s",
		upAt.Sub(downAt).Round(10*time.Millisecond), during, readyDown, recovered.Round(time.Millisecond), s)
}

// TestFaultWebhookReceiverDown takes the receiver down for 3 s (connections
// refused) during load. The deliveries that failed are retried on the
// schedule (the second attempt 5 s after the first, plus at most 10 %
// jitter) and every one arrives once.
func TestFaultWebhookReceiverDown(t *testing.T) {
	e := append([]string{"PIC_DATA_DIR=" + t.TempDir()}, faultEnv()...)
	rc := newHookReceiver(t)
	g := startProc(t, e)
	key := signUp(t, g.gateway, rc)
	url := g.url
	l := startLoad(func() string { return url }, key, 4)
	time.Sleep(time.Second)
	rc.down()
	time.Sleep(3 * time.Second)
	rc.up()
	time.Sleep(time.Second)
	l.stop()

	s := settle(t, url, key, l, rc, 20*time.Second)
	if len(s.duplicates) > 0 {
		t.Errorf("with no crash every delivery id must arrive once; twice: %v", s.duplicates)
	}
	if s.retried == 0 {
		t.Fatalf("no delivery needed a retry: was the receiver down? %s", s)
	}
	logged, err := deliveryLog(url, key)
	if err != nil {
		t.Fatal(err)
	}
	var gaps []time.Duration
	for _, d := range logged {
		if len(d.Attempts) < 2 {
			continue
		}
		// The API lists attempts oldest first; every attempt but the last failed.
		for i, a := range d.Attempts[:len(d.Attempts)-1] {
			if a.Error == nil || a.StatusCode != nil {
				t.Errorf("delivery %s attempt %d: want a refused connection, got status %v error %v", d.ID, i+1, a.StatusCode, a.Error)
			}
		}
		if len(d.Attempts) > 2 {
			t.Errorf("delivery %s took %d attempts; the receiver was down for less than the first backoff", d.ID, len(d.Attempts))
		}
		gap := time.Duration(d.Attempts[1].At-d.Attempts[0].At) * time.Millisecond
		gaps = append(gaps, gap)
		// 5 s plus at most 10 % jitter; a busy machine adds dispatch delay.
		if gap < 5*time.Second || gap > 7500*time.Millisecond {
			t.Errorf("delivery %s: second attempt %s after the first, want 5 s to 5.5 s", d.ID, gap)
		}
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	g.stop()
	auditAgrees(t, e)
	t.Logf("receiver down 3 s: %d deliveries retried, retry gaps %s..%s; %s", len(gaps), gaps[0], gaps[len(gaps)-1], s)
}

// TestFaultLeaderKilledWithWebhooks runs two picd on one Postgres under
// load, SIGKILLs the one that leads the background work, and expects the
// other to take over projections and webhooks within 10 s: webhooks flow
// again, every status event has one delivery, every id arrives (twice only
// when the first arrival preceded the kill), and the audit finds nothing
// applied twice.
func TestFaultLeaderKilledWithWebhooks(t *testing.T) {
	e := append(append(postgresEnv(t), "PIC_DATA_DIR="+t.TempDir()), faultEnv()...)
	rc := newHookReceiver(t)
	a := startProc(t, e)
	waitLog(t, a, "leader: this process runs", 10*time.Second)
	b := startProc(t, e)
	key := signUp(t, b.gateway, rc)
	url := b.url
	l := startLoad(func() string { return url }, key, 6)
	time.Sleep(2 * time.Second)
	if strings.Contains(b.out.String(), "leader: this process runs") {
		t.Fatalf("b leads while a is alive")
	}
	a.kill()
	killedAt := time.Now()
	before, _, _ := rc.snapshot()
	waitLog(t, b, "leader: this process runs", 10*time.Second)
	tookOver := time.Now()
	takeover := tookOver.Sub(killedAt)
	// Webhooks flow again: an id not seen before the kill arrives.
	var resumed time.Duration
	for resumed == 0 {
		got, _, _ := rc.snapshot()
		for id, arr := range got {
			if _, old := before[id]; !old && arr.first.After(killedAt) {
				resumed = arr.first.Sub(killedAt)
				break
			}
		}
		if resumed == 0 && time.Since(killedAt) > 10*time.Second {
			t.Fatalf("no webhook delivered within 10 s of the leader's death:\n%s", tail(b.out.String(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Second)
	l.stop()
	s := settle(t, url, key, l, rc, 20*time.Second)
	got, _, _ := rc.snapshot()
	// A delivery may arrive twice only if the dead leader sent it first
	// (in flight at the kill). Its last requests can still be read by the
	// receiver after kill returns (written to the socket before the
	// SIGKILL), so the line is the takeover: before it the survivor sent
	// nothing.
	for _, id := range s.duplicates {
		if got[id].first.After(tookOver) {
			t.Errorf("delivery %s arrived twice, the first time after the survivor took over (%s after the kill)", id, got[id].first.Sub(killedAt).Round(time.Millisecond))
		}
	}
	b.stop()
	auditAgrees(t, e)
	t.Logf("leader killed with %d webhooks received: takeover after %s, webhooks again after %s; %s",
		len(before), takeover.Round(time.Millisecond), resumed.Round(time.Millisecond), s)
}

func waitLog(t *testing.T, p *proc, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.out.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the logs within %s:\n%s", want, timeout, tail(p.out.String(), 3000))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// privatePG is a Postgres cluster of the test's own, so it can be stopped
// without disturbing the shared server other packages test against.
type privatePG struct {
	bin, dir, data string
	port           int
	url            string
	asPostgres     bool
}

// startPrivatePostgres initialises a cluster (trust auth, loopback only, a
// free port, its socket in its own directory) and starts it. It skips the
// test when initdb is not installed.
func startPrivatePostgres(t *testing.T) *privatePG {
	t.Helper()
	initdb := ""
	if found, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb"); len(found) > 0 {
		sort.Strings(found)
		initdb = found[len(found)-1]
	} else if p, err := exec.LookPath("initdb"); err == nil {
		initdb = p
	}
	if initdb == "" {
		t.Skip("initdb not found (install the Postgres server package): cannot run a private Postgres to restart")
	}
	dir, err := os.MkdirTemp("", "picd-fault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	pg := &privatePG{bin: filepath.Dir(initdb), dir: dir, data: filepath.Join(dir, "data"), asPostgres: os.Geteuid() == 0}
	t.Cleanup(func() {
		_ = pg.command("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "stop").Run()
		os.RemoveAll(dir)
	})
	if pg.asPostgres {
		// Postgres refuses to run as root: run it as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skip("running as root and there is no postgres user to run a private Postgres as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := pg.command("initdb", "-D", pg.data, "--auth=trust", "-U", "postgres", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	_, port, _ := strings.Cut(freeAddr(t), ":")
	pg.port, _ = strconv.Atoi(port)
	pg.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pg.port)
	pg.start(t)
	return pg
}

func (pg *privatePG) command(tool string, args ...string) *exec.Cmd {
	path := filepath.Join(pg.bin, tool)
	if pg.asPostgres {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
	}
	return exec.Command(path, args...)
}

func (pg *privatePG) start(t *testing.T) {
	t.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1", pg.port, pg.dir)
	if out, err := pg.command("pg_ctl", "-D", pg.data, "-l", filepath.Join(pg.dir, "log"), "-o", opts, "-w", "-t", "30", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(filepath.Join(pg.dir, "log"))
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// stop is a fast shutdown: sessions are ended, the cluster checkpoints and exits.
func (pg *privatePG) stop(t *testing.T) {
	t.Helper()
	if out, err := pg.command("pg_ctl", "-D", pg.data, "-m", "fast", "-w", "-t", "30", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}
