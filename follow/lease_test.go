package follow_test

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

// leaseDB migrates the lease table into a schema of the test's own and
// opens fenced handles on it: one per process, as picd does.
type leaseDB struct {
	t   *testing.T
	db  sqldb.DB
	url string
}

func newLeaseDB(t *testing.T) *leaseDB {
	db := sqldbtest.Postgres(t, "lease")
	if err := follow.MigrateLease(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Write.Exec(`CREATE TABLE effects (id TEXT PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	var schema string
	if err := db.Read.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	return &leaseDB{t: t, db: db, url: sqldbtest.PostgresURL() + "&search_path=" + schema}
}

// open is a fenced handle named like a picd instance's.
func (l *leaseDB) open(name string, conns int) *sql.DB {
	dsn, err := sqldb.Params(l.url, map[string]string{"application_name": name})
	if err != nil {
		l.t.Fatal(err)
	}
	db, err := sqldb.OpenPostgres(dsn)
	if err != nil {
		l.t.Fatal(err)
	}
	db.SetMaxOpenConns(conns)
	l.t.Cleanup(func() { db.Close() })
	return db
}

// lapse moves the lease's last renewal back, as if its holder had been
// paused for that long.
func (l *leaseDB) lapse(d time.Duration) {
	if _, err := l.db.Write.Exec(`UPDATE leader_lease SET renewed_at = renewed_at - make_interval(secs => $1)`, d.Seconds()); err != nil {
		l.t.Fatal(err)
	}
}

func (l *leaseDB) effects() int {
	var n int
	if err := l.db.Read.QueryRow(`SELECT count(*) FROM effects`).Scan(&n); err != nil {
		l.t.Fatal(err)
	}
	return n
}

func always() bool { return true }

func TestLeaseTakenOverWhenNotRenewedThoughTheSessionLives(t *testing.T) {
	ctx := context.Background()
	l := newLeaseDB(t)
	a := follow.Lease{Name: "picd", Holder: "a", Bound: 5 * time.Second}
	b := follow.Lease{Name: "picd", Holder: "b", Bound: 5 * time.Second}
	aLease, bLease := l.open("a lease", 1), l.open("b lease", 1)
	ta, ok, err := a.TryAcquire(ctx, aLease)
	if err != nil || !ok {
		t.Fatalf("a: %d %v %v", ta, ok, err)
	}
	if _, ok, err := b.TryAcquire(ctx, bLease); err != nil || ok {
		t.Fatalf("b took a live lease: %v %v", ok, err)
	}
	if err := a.Renew(ctx, aLease, ta); err != nil {
		t.Fatal(err)
	}
	l.lapse(6 * time.Second) // a is paused: its session lives, it renews nothing
	tb, ok, err := b.TryAcquire(ctx, bLease)
	if err != nil || !ok || tb <= ta {
		t.Fatalf("b did not take the lapsed lease over: token %d (a had %d) %v %v", tb, ta, ok, err)
	}
	if err := a.Renew(ctx, aLease, ta); !errors.Is(err, follow.ErrLeaseLost) {
		t.Fatalf("a renewed a lease b took over: %v", err)
	}
	st, ok, err := follow.ReadLease(ctx, l.db.Read, "picd", 5*time.Second)
	if err != nil || !ok || st.Holder != "b" || st.Token != tb || !st.Live {
		t.Fatalf("status %+v %v %v", st, ok, err)
	}
}

func TestLeaseTakenOverAtOnceWhenTheHolderSessionIsGone(t *testing.T) {
	ctx := context.Background()
	l := newLeaseDB(t)
	a := follow.Lease{Name: "picd", Holder: "a", Bound: time.Hour}
	b := follow.Lease{Name: "picd", Holder: "b", Bound: time.Hour}
	aLease, bLease := l.open("a lease", 1), l.open("b lease", 1)
	if _, ok, err := a.TryAcquire(ctx, aLease); err != nil || !ok {
		t.Fatal(ok, err)
	}
	var pid int
	if err := l.db.Read.QueryRow(`SELECT holder_pid FROM leader_lease`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// What an operator or a network cut does to the leader's session.
	if _, err := l.db.Write.Exec(`SELECT pg_terminate_backend($1)`, pid); err != nil {
		t.Fatal(err)
	}
	var ok bool
	var err error
	for i := 0; i < 100 && !ok; i++ { // the backend leaves pg_stat_activity as it exits
		if _, ok, err = b.TryAcquire(ctx, bLease); err != nil {
			t.Fatal(err)
		}
		if !ok {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatal("b did not take over a lease whose holder's session is gone")
	}
}

func TestFenceRefusesTheWritesOfAStaleHolder(t *testing.T) {
	ctx := context.Background()
	l := newLeaseDB(t)
	a := follow.Lease{Name: "picd", Holder: "a", Bound: 5 * time.Second}
	b := follow.Lease{Name: "picd", Holder: "b", Bound: 5 * time.Second}
	aLease, bLease := l.open("a lease", 1), l.open("b lease", 1)
	aWrite := l.open("a write", 4)
	ta, _, err := a.TryAcquire(ctx, aLease)
	if err != nil {
		t.Fatal(err)
	}
	actx := sqldb.WithFence(ctx, a.Fence(ta, always))
	write := func(id string) error {
		tx, err := aWrite.BeginTx(actx, nil)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		if _, err := tx.ExecContext(actx, `INSERT INTO effects VALUES ($1)`, id); err != nil {
			return err
		}
		return tx.Commit()
	}
	if err := write("before"); err != nil {
		t.Fatal(err)
	}
	// A write in flight holds the fence: the takeover waits for it
	// (lock_timeout ends the wait), and the write commits.
	tx, err := aWrite.BeginTx(actx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(actx, `INSERT INTO effects VALUES ('in flight')`); err != nil {
		t.Fatal(err)
	}
	l.lapse(6 * time.Second)
	if _, ok, err := b.TryAcquire(ctx, bLease); ok || err == nil || !strings.Contains(err.Error(), "lock timeout") {
		t.Fatalf("b took over while a's fenced write was in flight: %v %v", ok, err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.TryAcquire(ctx, bLease); err != nil || !ok {
		t.Fatalf("b: %v %v", ok, err)
	}
	// a, unaware, writes on: in a transaction, outside one, or appends.
	if err := write("after"); !errors.Is(err, sqldb.ErrFenced) {
		t.Fatalf("a wrote after the takeover: %v", err)
	}
	if _, err := aWrite.ExecContext(actx, `INSERT INTO effects VALUES ('after, alone')`); !errors.Is(err, sqldb.ErrFenced) {
		t.Fatalf("a wrote outside a transaction after the takeover: %v", err)
	}
	if n := l.effects(); n != 2 {
		t.Fatalf("%d effects, want the 2 written before the takeover", n)
	}
	// A holder that knows its lease lapsed does not even ask.
	lapsed := sqldb.WithFence(ctx, b.Fence(99, func() bool { return false }))
	if _, err := aWrite.BeginTx(lapsed, nil); !errors.Is(err, sqldb.ErrFenced) {
		t.Fatalf("a lapsed holder's transaction began: %v", err)
	}
	// Without a fence (an HTTP request) nothing is checked.
	if _, err := aWrite.ExecContext(ctx, `INSERT INTO effects VALUES ('request')`); err != nil {
		t.Fatal(err)
	}
}

func TestParamsNameTheSession(t *testing.T) {
	l := newLeaseDB(t)
	db := l.open("picd i-1 write", 1)
	var name string
	if err := db.QueryRow(`SELECT current_setting('application_name')`).Scan(&name); err != nil || name != "picd i-1 write" {
		t.Fatalf("application_name %q %v", name, err)
	}
	kv, err := sqldb.Params("host=127.0.0.1 user=postgres dbname=test", map[string]string{"application_name": "it's"})
	if err != nil || !strings.Contains(kv, `application_name='it\'s'`) {
		t.Fatalf("%q %v", kv, err)
	}
}

// A leader's background appends go through FenceAppends: refused once
// another process took the lease over; HTTP's (no fence) never checked.
func TestFenceAppendsRefusesAStaleHolder(t *testing.T) {
	ctx := context.Background()
	l := newLeaseDB(t)
	var schema string
	if err := l.db.Read.QueryRow(`SELECT current_schema()`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	raw, err := postgres.Open(ctx, sqldbtest.PostgresURL(), postgres.WithSchema(schema+"_events"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		raw.Close()
		l.db.Write.Exec(`DROP SCHEMA ` + schema + `_events CASCADE`)
	})
	if err := raw.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	store := follow.FenceAppends(raw, l.open("a write", 2))
	a := follow.Lease{Name: "picd", Holder: "a", Bound: 5 * time.Second}
	b := follow.Lease{Name: "picd", Holder: "b", Bound: 5 * time.Second}
	ta, _, err := a.TryAcquire(ctx, l.open("a lease", 1))
	if err != nil {
		t.Fatal(err)
	}
	actx := sqldb.WithFence(ctx, a.Fence(ta, always))
	ev := func(id string) []eventstore.EventData {
		return []eventstore.EventData{{ID: id, Type: "Tested", Data: []byte(`{}`)}}
	}
	if _, err := store.Append(actx, "s-1", eventstore.Any, ev("e-1")); err != nil {
		t.Fatalf("the holder's append: %v", err)
	}
	l.lapse(6 * time.Second)
	if _, ok, err := b.TryAcquire(ctx, l.open("b lease", 1)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	if _, err := store.Append(actx, "s-1", eventstore.Any, ev("e-2")); !errors.Is(err, sqldb.ErrFenced) {
		t.Fatalf("a stale holder appended: %v", err)
	}
	if _, err := store.Append(ctx, "s-1", eventstore.Any, ev("e-3")); err != nil {
		t.Fatalf("an append without a fence: %v", err)
	}
	recs, err := raw.ReadStream(ctx, "s-1", 0, 10)
	if err != nil || len(recs) != 2 || recs[0].ID != "e-1" || recs[1].ID != "e-3" {
		t.Fatalf("stream: %+v %v", recs, err)
	}
	if _, ok := store.(eventstore.TypeReader); !ok {
		t.Fatal("the fenced store lost the store's type filter")
	}
}
