// Package postgres is the Postgres adapter of the event store (pgx v5).
//
// Appends go through eventstore.Committer: concurrent appends are written
// many per transaction by one goroutine, so that N writers share one commit.
// The global log is read in (transaction id, sequence) order and only below
// the oldest append still open, so that a reader never skips an event whose
// transaction commits late (ARCHITECTURE.md, "Postgres event log: the
// ordering trap"); see horizon for how that is known.
package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/acceptcryptohere/gateway/eventstore"
)

var (
	_ eventstore.Store      = (*Store)(nil)
	_ eventstore.TypeReader = (*Store)(nil)
)

// DefaultSchema is the Postgres schema of the event tables unless WithSchema
// says otherwise. A schema of its own keeps the log apart from read models.
const DefaultSchema = "eventstore"

type config struct {
	schema       string
	maxBatch     int
	writers      int // batches in flight at once
	pollInterval time.Duration
	writeTimeout time.Duration
	singleTries  int
}

func defaultConfig() config {
	return config{
		schema:   DefaultSchema,
		maxBatch: 256,
		// One batch in flight: the queue behind it becomes the next batch,
		// so batches grow with the load. With four, batches of ~2 appends
		// each paid a transaction of their own (creating invoices, alternating
		// runs: 4,703 / 4,703 invoices/s and 2.6–2.7 s of Postgres CPU per
		// 20,000 with one; 4,292 / 4,118 and 3.1–3.4 s with four; appends
		// from 16 writers: 31,039/s with one, 24,381/s with four).
		writers:      1,
		pollInterval: 250 * time.Millisecond,
		writeTimeout: 30 * time.Second,
		singleTries:  5,
	}
}

// Option configures a Store.
type Option func(*config)

// WithSchema sets the Postgres schema that holds the event tables.
func WithSchema(name string) Option { return func(c *config) { c.schema = name } }

// WithWriters sets how many batches may be in flight at once (default 1):
// overlapping them hides the round trips of one batch behind another's,
// which may pay where the database is far away.
func WithWriters(n int) Option { return func(c *config) { c.writers = n } }

// Store is the Postgres event store. It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	schema    string
	cfg       config
	q         queries
	committer *eventstore.Committer
	notify    *notifier
	now       func() time.Time

	// chainMu holds the chain head (chain.go) across an insert: the chain
	// is one sequence, so batches in flight at once (WithWriters) chain one
	// after the other.
	chainMu sync.Mutex
	chain   chainHead
	chainer *eventstore.Chainer

	horizons horizonFlights
	readTo   readTo

	closed    atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
}

// Open connects to dsn and returns a store that owns its connection pool.
// It does not create tables: call Migrate (picd migrate) for that.
func Open(ctx context.Context, dsn string, opts ...Option) (*Store, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	s, err := newStore(pool, cfg)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

func newStore(pool *pgxpool.Pool, cfg config) (*Store, error) {
	if cfg.schema == "" {
		return nil, errors.New("postgres: empty schema name")
	}
	if cfg.maxBatch <= 0 || cfg.writers <= 0 || cfg.pollInterval <= 0 {
		return nil, fmt.Errorf("postgres: invalid options: max batch %d, poll interval %s", cfg.maxBatch, cfg.pollInterval)
	}
	s := &Store{
		pool:    pool,
		schema:  cfg.schema,
		cfg:     cfg,
		q:       buildQueries(cfg.schema),
		done:    make(chan struct{}),
		now:     time.Now,
		chainer: eventstore.NewChainer(),
	}
	s.notify = startNotifier(pool, channelName(cfg.schema))
	s.committer = eventstore.NewCommitterN(cfg.maxBatch, cfg.writers, s.flush)
	return s, nil
}

// channelName is the LISTEN/NOTIFY channel of a schema's log. Channel names
// are identifiers (at most 63 bytes), so long schema names are hashed.
func channelName(schema string) string {
	name := "eventstore." + schema
	if len(name) <= 63 {
		return name
	}
	sum := sha256.Sum256([]byte(schema))
	return "eventstore." + hex.EncodeToString(sum[:16])
}

type queries struct {
	readStream, readAll, readTypes, readable, lockStreams, versions, storedIDs, insertNotify string
	chainHead, readChain, lockAppend, horizon                                                string
	appendKey                                                                                string
}

func buildQueries(schema string) queries {
	t := pgx.Identifier{schema, "events"}.Sanitize()
	const cols = `transaction_id, global_position, event_id, stream, version, type, data, metadata, recorded_at`
	return queries{
		readStream: `SELECT ` + cols + ` FROM ` + t + `
			WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3`,
		// Only below the horizon ($4, from the horizon query run before):
		// every append that could still commit an event with a lower
		// (transaction_id, global_position) has ended.
		readAll: `SELECT ` + cols + ` FROM ` + t + `
			WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
			  AND transaction_id < $4::xid8
			ORDER BY transaction_id, global_position LIMIT $3`,
		// A window of readAll's rows ($3 of them), the events of the types
		// among them (at most $5), and one row flagged true: the window's
		// last position, with the window's size in the version column.
		readTypes: `WITH w AS (
				SELECT transaction_id, global_position, type FROM ` + t + `
				WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
				  AND transaction_id < $6::xid8
				ORDER BY transaction_id, global_position LIMIT $3),
			m AS (SELECT global_position FROM w WHERE type = ANY($4::text[]) ORDER BY transaction_id, global_position LIMIT $5)
			SELECT false, e.transaction_id, e.global_position, e.event_id, e.stream, e.version, e.type, e.data, e.metadata, e.recorded_at
			FROM m JOIN ` + t + ` e USING (global_position)
			UNION ALL
			(SELECT true, transaction_id, global_position, '', '', (SELECT count(*) FROM w), '', ''::bytea, NULL::bytea, now()
			 FROM w ORDER BY transaction_id DESC, global_position DESC LIMIT 1)`,
		// Statements are prepared and their generic plans cached per
		// connection, possibly while the table is new and has no
		// statistics; the shapes below keep to the indexes even then
		// (EXISTS and "= ANY($1)" fall back to sequential scans).
		readable: `SELECT count(*) FROM (SELECT 1 FROM ` + t + `
			WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)
			  AND transaction_id < $3::xid8
			ORDER BY transaction_id, global_position LIMIT 1) AS next`,
		// Sorted, so that two batches lock shared streams in the same order
		// and cannot deadlock on them. Keys are namespaced by schema. The
		// lock is its own statement: under READ COMMITTED the reads after
		// it take a snapshot that includes what the previous holder committed.
		lockStreams: `SELECT count(pg_advisory_xact_lock(k)) FROM (
				SELECT DISTINCT hashtextextended($1::text || s, 0) AS k FROM unnest($2::text[]) AS s ORDER BY k) AS keys`,
		// One index probe per stream (max over the (stream, version) key).
		versions: `SELECT s.stream, (SELECT max(e.version) FROM ` + t + ` e WHERE e.stream = s.stream)
			FROM unnest($1::text[]) AS s(stream)`,
		storedIDs: `SELECT i.id, e.stream, e.version, e.transaction_id, e.global_position
			FROM unnest($1::text[]) AS i(id)
			CROSS JOIN LATERAL (SELECT stream, version, transaction_id, global_position FROM ` + t + `
				WHERE event_id = i.id LIMIT 1) AS e`,
		// ORDER BY ord: sequence numbers follow the order of the batch, so
		// each stream's events are in version order in the global log.
		// No NOTIFY in here: a transaction that notifies holds a
		// database-wide lock through its commit (WAL flush included), which
		// would serialise every append batch. Listeners are told after the
		// commit instead (notifier.poke).
		// A recorded time given with the event (a copy keeps the source's)
		// is stored as given; the others get the transaction's time.
		// The chain (chain.go): the insert moves chain_head from the seq the
		// writer chained from ($8) to the last hash ($9); when another
		// process moved it first the update matches nothing and neither
		// does the insert: the writer reads the head and decides again.
		// "only_row AND": through the primary key. The long way turns
		// sequential scans off; a scan of this one-row table then costs
		// enough to switch JIT compilation on (measured: a second an append).
		insertNotify: `WITH head AS (UPDATE ` + pgx.Identifier{schema, "chain_head"}.Sanitize() + `
				SET seq = $8 + cardinality($1::text[]), hash = $9 WHERE only_row AND seq = $8 RETURNING seq)
			INSERT INTO ` + t + ` (event_id, stream, version, type, data, metadata, recorded_at, chain_seq, chain_hash)
			SELECT event_id, stream, version, type, data, metadata, at, $8 + ord, h
			FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::bytea[], $6::bytea[], $7::timestamptz[], $10::bytea[])
				WITH ORDINALITY AS u(event_id, stream, version, type, data, metadata, at, h, ord)
			WHERE EXISTS (SELECT 1 FROM head)
			ORDER BY ord
			RETURNING event_id, transaction_id, global_position`,
		// The append lock: shared among appenders, taken before their
		// transaction writes anything (so before it has an id), and named in
		// a setting the events table's trigger checks (migration 0003).
		lockAppend: `SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0)), set_config('eventstore.append_lock', $2, true)`,
		// The horizon: the oldest id among the transactions holding the
		// append lock, or, with none, the first id not yet given out (the
		// snapshot's xmax). An appender without an id yet will get one at or
		// above xmax. The reads that use it run in a later statement, so
		// with a later snapshot: every append below the horizon had ended
		// (its lock is released after its commit became visible) before
		// that snapshot was taken. pg_locks shows 32-bit xids; the running
		// ones are matched to the snapshot's 64-bit ones.
		horizon: `WITH snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
			holders AS (
				SELECT t.transactionid::text::bigint AS x32
				FROM pg_locks a JOIN pg_locks t ON t.virtualtransaction = a.virtualtransaction
				WHERE a.locktype = 'advisory' AND a.objsubid = 1 AND a.granted
				  AND ((a.classid::bigint << 32) | a.objid::bigint) = hashtextextended($1, 0)
				  AND t.locktype = 'transactionid' AND t.mode = 'ExclusiveLock' AND t.granted)
			SELECT coalesce(
				(SELECT min(x) FROM snap, pg_snapshot_xip(snap.s) AS x
				 WHERE (x::text::numeric % 4294967296)::bigint IN (SELECT x32 FROM holders)),
				(SELECT pg_snapshot_xmax(s) FROM snap))`,
		appendKey: "eventstore.append:" + schema,
		chainHead: `SELECT seq, hash FROM ` + pgx.Identifier{schema, "chain_head"}.Sanitize() + ` WHERE only_row`,
		readChain: `SELECT chain_seq, chain_hash, ` + cols + ` FROM ` + t + `
			WHERE chain_seq > $1 ORDER BY chain_seq LIMIT $2`,
	}
}

// Append writes events to the end of stream if it is at expected.
// Errors: eventstore.ErrInvalid, ErrConflict, ErrDuplicateEvent, ErrClosed,
// ctx errors (the append may still be carried out), database errors.
func (s *Store) Append(ctx context.Context, stream string, expected eventstore.ExpectedVersion, events []eventstore.EventData) (eventstore.AppendResult, error) {
	if err := eventstore.Validate(stream, expected, events); err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, err)
	}
	// The writer may use the slice after a cancelled caller returned.
	evs := append([]eventstore.EventData(nil), events...)
	res, err := s.committer.Append(ctx, eventstore.Request{Stream: stream, Expected: expected, Events: evs})
	if err != nil {
		return eventstore.AppendResult{}, fmt.Errorf("postgres: append to %q: %w", stream, err)
	}
	return res, nil
}

// ReadStream returns up to max events of stream from version from on.
// Errors: ErrClosed, ctx errors, database errors.
func (s *Store) ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if max <= 0 {
		return nil, nil
	}
	evs, err := s.query(ctx, max, s.q.readStream, stream, from, max)
	if err != nil {
		return nil, fmt.Errorf("postgres: read stream %q: %w", stream, err)
	}
	return evs, nil
}

// ReadAll returns up to max events after pos in global order.
// Errors: ErrClosed, ctx errors, database errors.
func (s *Store) ReadAll(ctx context.Context, after eventstore.Position, max int) ([]eventstore.RecordedEvent, error) {
	if s.closed.Load() {
		return nil, eventstore.ErrClosed
	}
	if max <= 0 {
		return nil, nil
	}
	gen := s.notify.generation()
	h, err := s.horizon(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: read all after %v: %w", after, err)
	}
	evs, err := s.query(ctx, max, s.q.readAll, after.Commit, prepareArg(after), max, h)
	if err != nil {
		return nil, fmt.Errorf("postgres: read all after %v: %w", after, err)
	}
	if len(evs) < max {
		reached := after
		if len(evs) > 0 {
			reached = evs[len(evs)-1].Position
		}
		s.readTo.reached(reached, gen)
	}
	return evs, nil
}

// typeScanWindow bounds how many events one filtered read looks at, so
// that a subscriber far behind advances in steps of bounded cost.
const typeScanWindow = 8192

// ReadAllOfTypes returns up to max events after pos whose type is one of
// types, looking at most typeScanWindow events ahead.
func (s *Store) ReadAllOfTypes(ctx context.Context, after eventstore.Position, max int, types []string) (eventstore.Page, error) {
	page := eventstore.Page{Reached: after}
	if s.closed.Load() {
		return page, eventstore.ErrClosed
	}
	if max <= 0 {
		return page, nil
	}
	gen := s.notify.generation()
	h, err := s.horizon(ctx)
	if err != nil {
		return page, fmt.Errorf("postgres: read types after %v: %w", after, err)
	}
	rows, err := s.pool.Query(ctx, s.q.readTypes, after.Commit, prepareArg(after), typeScanWindow, types, max, h)
	if err != nil {
		return page, fmt.Errorf("postgres: read types after %v: %w", after, ctxErr(ctx, err))
	}
	var window int64
	for rows.Next() {
		var e eventstore.RecordedEvent
		var last bool
		if err := rows.Scan(&last, &e.Position.Commit, &e.Position.Prepare, &e.ID, &e.Stream, &e.Version, &e.Type, &e.Data, &e.Metadata, &e.RecordedAt); err != nil {
			rows.Close()
			return page, fmt.Errorf("postgres: read types after %v: %w", after, ctxErr(ctx, err))
		}
		if last {
			page.Reached, window = e.Position, e.Version
			continue
		}
		page.Events = append(page.Events, e)
	}
	if err := rows.Err(); err != nil {
		return eventstore.Page{Reached: after}, fmt.Errorf("postgres: read types after %v: %w", after, ctxErr(ctx, err))
	}
	slices.SortFunc(page.Events, func(a, b eventstore.RecordedEvent) int {
		if a.Position.Less(b.Position) {
			return -1
		}
		return 1
	})
	if len(page.Events) == max {
		page.Reached, page.More = page.Events[max-1].Position, true
		return page, nil
	}
	page.More = window == typeScanWindow
	if !page.More {
		s.readTo.reached(page.Reached, gen)
	}
	return page, nil
}

// prepareArg fits a caller's Prepare into bigint; global_position never
// exceeds MaxInt64, so clamping keeps the comparison's meaning.
func prepareArg(p eventstore.Position) int64 {
	if p.Prepare > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(p.Prepare)
}

func (s *Store) query(ctx context.Context, capHint int, sql string, args ...any) ([]eventstore.RecordedEvent, error) {
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	evs, err := collectEvents(rows, capHint)
	if err != nil {
		return nil, ctxErr(ctx, err)
	}
	return evs, nil
}

// batchCapLimit bounds the slice a read reserves before it has the rows.
const batchCapLimit = 10_000

// collectEvents reads the rows' events. A read that returns a few rows (a
// stream, a subscriber at the log's end) keeps a small slice; one that
// fills it is likely a full batch, grown once to the batch's size rather
// than doubling from a few (as the SQLite store does: the copies were 5 %
// of an audit's CPU there).
func collectEvents(rows pgx.Rows, capHint int) ([]eventstore.RecordedEvent, error) {
	defer rows.Close()
	out := make([]eventstore.RecordedEvent, 0, min(capHint, 128))
	for rows.Next() {
		if len(out) == cap(out) && cap(out) < capHint {
			out = slices.Grow(out, min(capHint, batchCapLimit)-len(out))
		}
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// scanEvent reads a row of (transaction_id, global_position, event_id,
// stream, version, type, data, metadata, recorded_at), the columns every
// read of the log selects.
func scanEvent(row pgx.CollectableRow) (eventstore.RecordedEvent, error) {
	var e eventstore.RecordedEvent
	err := row.Scan(&e.Position.Commit, &e.Position.Prepare, &e.ID, &e.Stream, &e.Version, &e.Type, &e.Data, &e.Metadata, &e.RecordedAt)
	return e, err
}

// ctxErr prefers the context's error, so that callers can match it with
// errors.Is whatever pgx wrapped it in.
func ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// Wait blocks until events after pos may be readable, ctx ends or the store
// closes. It wakes on a notification from an append (of any process) and
// re-checks the log every poll interval, since an event may be committed
// before it is readable (an older transaction still runs) and notifications
// are lost while the listening connection reconnects. Right after a read
// that reached the horizon at pos, with no notification since it began,
// there is nothing to check until the next notification or poll.
// Errors: ErrClosed, ctx errors, database errors.
func (s *Store) Wait(ctx context.Context, after eventstore.Position) error {
	timer := time.NewTimer(s.cfg.pollInterval)
	defer timer.Stop()
	gen, known := s.readTo.take(after)
	for {
		if s.closed.Load() {
			return eventstore.ErrClosed
		}
		var changed <-chan struct{}
		if known {
			known = false
			if changed = s.notify.changedSince(gen); changed == nil {
				return nil // notified since that read began
			}
		} else {
			// Take the channel before checking, so a notification between
			// the check and the select is not lost.
			changed = s.notify.changed()
			var n int64
			h, err := s.horizon(ctx)
			if err == nil {
				err = s.pool.QueryRow(ctx, s.q.readable, after.Commit, prepareArg(after), h).Scan(&n)
			}
			if err != nil {
				return fmt.Errorf("postgres: wait after %v: %w", after, ctxErr(ctx, err))
			}
			if n > 0 {
				return nil
			}
		}
		select {
		case <-changed:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("postgres: wait after %v: %w", after, ctx.Err())
		case <-s.done:
			return eventstore.ErrClosed
		case <-timer.C:
			timer.Reset(s.cfg.pollInterval)
		}
	}
}

// LogTable is the global log's table, schema-qualified and quoted, for
// read models kept in the same database (sqldb.DB.LogTable): rows keyed by
// global_position, which is a Position's Prepare.
func (s *Store) LogTable() string { return pgx.Identifier{s.schema, "events"}.Sanitize() }

// Close writes the appends already queued, then stops listening and
// closes the pool. It is safe to call more than once.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.committer.Close()
		s.closed.Store(true)
		close(s.done)
		s.notify.stop()
		s.pool.Close()
	})
	return nil
}

// flush writes one batch of appends (the Committer's single writer). If
// another process wins a race for a stream version or an event id, the
// batch fails as a whole on a unique constraint; each request is then
// decided again on its own, so each gets its own answer (ErrConflict for
// the loser of a version race, the original result for a duplicate).
func (s *Store) flush(reqs []eventstore.Request) []eventstore.Outcome {
	outs, err := s.writeBatch(reqs)
	if err == nil {
		return outs
	}
	outs = make([]eventstore.Outcome, len(reqs))
	// A statement error (the server rolled the batch back) may belong to one
	// request, such as a lost race or a stream name Postgres rejects: decide
	// each request alone. Other errors (connection, timeout) would fail the
	// requests one by one too, so the batch shares them.
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || (len(reqs) == 1 && !isUniqueViolation(err)) {
		for i := range outs {
			outs[i].Err = err
		}
		return outs
	}
	for i, r := range reqs {
		outs[i] = s.writeOne(r)
	}
	return outs
}

// writeOne writes a single append, deciding it again after each lost race
// (another process may have appended the same ids, or to the same stream
// under Any). After singleTries lost races it reports the constraint hit.
func (s *Store) writeOne(r eventstore.Request) eventstore.Outcome {
	var err error
	for try := 0; try < s.cfg.singleTries; try++ {
		var outs []eventstore.Outcome
		outs, err = s.writeBatch([]eventstore.Request{r})
		if err == nil {
			return outs[0]
		}
		if !isUniqueViolation(err) {
			return eventstore.Outcome{Err: err}
		}
	}
	var pgErr *pgconn.PgError
	errors.As(err, &pgErr)
	switch pgErr.ConstraintName {
	case "events_stream_version_key":
		err = fmt.Errorf("%w: stream %s: %w", eventstore.ErrConflict, r.Stream, err)
	case "events_event_id_key":
		err = fmt.Errorf("%w: %w", eventstore.ErrDuplicateEvent, err)
	}
	return eventstore.Outcome{Err: err}
}

func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// writeBatch decides and writes reqs in one transaction and two round
// trips. The first begins it, locks the batch's streams and reads their
// versions and the batch's already stored ids; the second inserts every
// written event, notifies listeners and commits (durably:
// synchronous_commit is left alone), so the whole batch costs one WAL flush.
//
// The stream locks (transaction-scoped advisory locks, taken in one order)
// serialise appends to a stream across processes, so the versions read stay
// true until commit. UNIQUE (stream, version) and UNIQUE (event_id) remain
// the guarantee: a writer that takes no lock, or an id raced into another
// stream, makes the insert fail and flush decide each request again.
// It returns one outcome per request, or the error that failed the batch.
func (s *Store) writeBatch(reqs []eventstore.Request) ([]eventstore.Outcome, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.writeTimeout)
	defer cancel()
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres: append: %w", err)
	}
	// A connection released inside a transaction is destroyed by the pool,
	// which ends the transaction if the rollback below could not.
	defer conn.Release()

	s.chainMu.Lock()
	defer s.chainMu.Unlock()
	for try := 0; ; try++ {
		if !s.chain.valid {
			if err := s.loadHead(ctx, conn.Conn()); err != nil {
				return nil, err
			}
		}
		// After a lost race for the head, the transaction locks it before
		// chaining, so the next try cannot lose again.
		outs, err := s.writeTx(ctx, conn.Conn(), reqs, try > 0)
		if err != nil {
			s.chain.valid = false
			if conn.Conn().PgConn().TxStatus() != 'I' {
				_, _ = conn.Exec(ctx, "ROLLBACK")
			}
			if errors.Is(err, errChainMoved) && try < s.cfg.singleTries {
				continue // another process appended: decide again on the new head
			}
		}
		return outs, err
	}
}

func (s *Store) writeTx(ctx context.Context, conn *pgx.Conn, reqs []eventstore.Request, lockHead bool) ([]eventstore.Outcome, error) {
	if !lockHead && freshStreams(reqs) {
		outs, err := s.writeFresh(ctx, conn, reqs)
		if err == nil || !isUniqueViolation(err) {
			return outs, err
		}
		// Some stream or id exists after all: decide the batch the long way.
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return nil, err
		}
	}
	versions, stored, err := s.load(ctx, conn, reqs, lockHead)
	if err != nil {
		return nil, err
	}
	decisions := eventstore.Plan(reqs, versions, stored)

	var ids, streams, types []string
	var vers []int64
	var data, meta [][]byte
	var at []pgtype.Timestamptz
	for i, d := range decisions {
		if !d.Write {
			continue
		}
		for j, e := range reqs[i].Events {
			ids = append(ids, e.ID)
			streams = append(streams, reqs[i].Stream)
			vers = append(vers, d.FirstVersion+int64(j))
			types = append(types, e.Type)
			if e.Data == nil {
				e.Data = []byte{} // data is NOT NULL; nil reads back as empty
			}
			data = append(data, e.Data)
			meta = append(meta, e.Metadata)
			at = append(at, recordedAt(e))
		}
	}
	written := map[string]eventstore.Position{}
	if len(ids) > 0 {
		written, err = s.insert(ctx, conn, false, ids, streams, vers, types, data, meta, at)
	} else {
		_, err = conn.Exec(ctx, "COMMIT")
	}
	if err != nil {
		return nil, err
	}

	outs := make([]eventstore.Outcome, len(reqs))
	for i, d := range decisions {
		switch {
		case d.Err != nil:
			outs[i].Err = d.Err
		case d.DuplicateOf >= 0:
			outs[i] = outs[d.DuplicateOf]
			outs[i].Result.Replayed = true
		case d.Write:
			last := reqs[i].Events[len(reqs[i].Events)-1].ID
			pos, ok := written[last]
			if !ok {
				panic(fmt.Sprintf("postgres: insert did not return event %s", last))
			}
			outs[i].Result = eventstore.AppendResult{NextExpected: d.FirstVersion + int64(len(reqs[i].Events)) - 1, Position: pos}
		default:
			outs[i].Result = d.Result
		}
	}
	return outs, nil
}

// setIndexOnly keeps the write transaction's lookups on the indexes and
// skips re-planning them. Statements are prepared and their plans cached per
// connection; planned while the log is new (no or tiny statistics), a lookup
// becomes a sequential scan that stays cached while the table grows, until
// autovacuum next analyzes it (measured: appends/s fell tenfold). Forcing
// the generic plan saves the per-execution custom planning (~0.1 ms a batch
// on the single writer's critical path). Both settings end with the
// transaction; resetPlanMode restores custom plans for the insert, whose
// generic plan measured several times slower.
const (
	setIndexOnly  = "SELECT set_config('enable_seqscan', 'off', true), set_config('plan_cache_mode', 'force_generic_plan', true)"
	resetPlanMode = "SELECT set_config('plan_cache_mode', 'auto', true)"
)

// load begins the transaction, locks the streams of reqs and reads their
// last versions and where their event ids are already stored.
// With lockHead it also locks the chain head and reads it into s.chain
// (after the stream locks, as every writer takes them: no deadlock).
func (s *Store) load(ctx context.Context, conn *pgx.Conn, reqs []eventstore.Request, lockHead bool) (map[string]int64, map[string]eventstore.StoredID, error) {
	var streams, ids []string
	seen := map[string]bool{}
	for _, r := range reqs {
		if !seen[r.Stream] {
			seen[r.Stream] = true
			streams = append(streams, r.Stream)
		}
		for _, e := range r.Events {
			ids = append(ids, e.ID)
		}
	}
	b := &pgx.Batch{}
	b.Queue("BEGIN")
	b.Queue(s.q.lockAppend, s.q.appendKey, s.schema)
	b.Queue(setIndexOnly)
	b.Queue(s.q.lockStreams, s.schema+"/", streams)
	b.Queue(s.q.versions, streams)
	b.Queue(s.q.storedIDs, ids)
	if lockHead {
		b.Queue(s.q.chainHead + ` FOR UPDATE`)
	}
	br := conn.SendBatch(ctx, b)
	defer br.Close()

	for range 3 { // BEGIN, the append lock, the plan settings
		if _, err := br.Exec(); err != nil {
			return nil, nil, fmt.Errorf("postgres: begin: %w", err)
		}
	}
	if _, err := br.Exec(); err != nil {
		return nil, nil, fmt.Errorf("postgres: lock streams: %w", err)
	}
	versions := make(map[string]int64, len(streams))
	rows, err := br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: read versions: %w", err)
	}
	var stream string
	var last *int64
	if _, err := pgx.ForEachRow(rows, []any{&stream, &last}, func() error {
		if last != nil {
			versions[stream] = *last
		}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("postgres: read versions: %w", err)
	}

	stored := map[string]eventstore.StoredID{}
	rows, err = br.Query()
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: read stored ids: %w", err)
	}
	var id string
	var sid eventstore.StoredID
	if _, err := pgx.ForEachRow(rows, []any{&id, &sid.Stream, &sid.Version, &sid.Position.Commit, &sid.Position.Prepare}, func() error {
		stored[id] = sid
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("postgres: read stored ids: %w", err)
	}
	if lockHead {
		var seq int64
		var h []byte
		if err := br.QueryRow().Scan(&seq, &h); err != nil {
			return nil, nil, fmt.Errorf("postgres: lock chain head: %w", err)
		}
		s.chain = chainHead{valid: true, seq: uint64(seq), hash: h}
	}
	if err := br.Close(); err != nil {
		return nil, nil, fmt.Errorf("postgres: read batch state: %w", err)
	}
	return versions, stored, nil
}

// insert writes the rows and commits (after BEGIN when begin is set), in
// one round trip, then wakes listeners.
// After an error the rest of the pipeline is skipped and the transaction is
// left for the caller to roll back.
func (s *Store) insert(ctx context.Context, conn *pgx.Conn, begin bool, ids, streams []string, vers []int64, types []string, data, meta [][]byte, at []pgtype.Timestamptz) (map[string]eventstore.Position, error) {
	b := &pgx.Batch{}
	if begin {
		b.Queue("BEGIN")
		b.Queue(s.q.lockAppend, s.q.appendKey, s.schema)
	} else {
		// The long way set index-only plans for its reads (set_config
		// local to this transaction); a transaction begun here has none.
		b.Queue(resetPlanMode)
	}
	// Every event gets its recorded time here (the writer's clock, to the
	// microsecond Postgres keeps, unless given): the chain hash covers it.
	now := time.UnixMicro(s.now().UnixMicro()).UTC()
	hashes := make([][]byte, len(ids))
	prev := s.chain.hash
	for i := range ids {
		if at[i].Valid {
			at[i].Time = time.UnixMicro(at[i].Time.UnixMicro()).UTC()
		} else {
			at[i] = pgtype.Timestamptz{Time: now, Valid: true}
		}
		hashes[i] = s.chainer.Next(nil, prev, s.chain.seq+uint64(i)+1, ids[i], streams[i], vers[i], types[i], data[i], meta[i], at[i].Time)
		prev = hashes[i]
	}
	b.Queue(s.q.insertNotify, ids, streams, vers, types, data, meta, at, int64(s.chain.seq), prev, hashes)
	b.Queue("COMMIT")
	br := conn.SendBatch(ctx, b)
	defer br.Close()

	if _, err := br.Exec(); err != nil { // BEGIN or the plan reset
		return nil, fmt.Errorf("postgres: insert: %w", err)
	}
	if begin {
		if _, err := br.Exec(); err != nil {
			return nil, fmt.Errorf("postgres: append lock: %w", err)
		}
	}
	written := make(map[string]eventstore.Position, len(ids))
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("postgres: insert: %w", err)
	}
	var id string
	var pos eventstore.Position
	if _, err := pgx.ForEachRow(rows, []any{&id, &pos.Commit, &pos.Prepare}, func() error {
		written[id] = pos
		return nil
	}); err != nil {
		return nil, fmt.Errorf("postgres: insert: %w", err)
	}
	if _, err := br.Exec(); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, fmt.Errorf("postgres: commit: %w", err)
	}
	if len(written) == 0 {
		return nil, errChainMoved // committed nothing
	}
	if len(written) != len(ids) {
		panic(fmt.Sprintf("postgres: insert returned %d rows for %d events", len(written), len(ids)))
	}
	s.chain.seq += uint64(len(ids))
	s.chain.hash = prev
	// Waiters in this process wake now; other processes by NOTIFY.
	s.notify.broadcast()
	s.notify.poke()
	return written, nil
}

// recordedAt is the event's given recorded time, or NULL (the transaction's time).
func recordedAt(e eventstore.EventData) pgtype.Timestamptz {
	if e.RecordedAt.IsZero() {
		return pgtype.Timestamptz{}
	}
	return pgtype.Timestamptz{Time: e.RecordedAt, Valid: true}
}

// CountAfter counts the events after pos (readable or not yet), for
// progress bars and lag reports.
func (s *Store) CountAfter(ctx context.Context, after eventstore.Position) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{s.schema, "events"}.Sanitize()+` WHERE (transaction_id, global_position) > ($1::xid8, $2::bigint)`,
		after.Commit, prepareArg(after)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("postgres: count after %v: %w", after, err)
	}
	return n, nil
}

// freshStreams reports whether every append of the batch starts a new
// stream (NoStream) with streams and ids distinct across the batch: the
// usual shape of invoice creation. Such a batch needs no state read first:
// UNIQUE (stream, version) and UNIQUE (event_id) reject it if a stream or
// an id exists after all, and the batch is then decided the long way.
func freshStreams(reqs []eventstore.Request) bool {
	streams := make(map[string]bool, len(reqs))
	ids := make(map[string]bool, len(reqs))
	for _, r := range reqs {
		if r.Expected != eventstore.NoStream || streams[r.Stream] {
			return false
		}
		streams[r.Stream] = true
		for _, e := range r.Events {
			if ids[e.ID] {
				return false
			}
			ids[e.ID] = true
		}
	}
	return true
}

// writeFresh writes a batch of new streams in one round trip: begin,
// insert at versions 0.., commit.
func (s *Store) writeFresh(ctx context.Context, conn *pgx.Conn, reqs []eventstore.Request) ([]eventstore.Outcome, error) {
	var ids, streams, types []string
	var vers []int64
	var data, meta [][]byte
	var at []pgtype.Timestamptz
	for _, r := range reqs {
		for j, e := range r.Events {
			ids = append(ids, e.ID)
			streams = append(streams, r.Stream)
			vers = append(vers, int64(j))
			types = append(types, e.Type)
			if e.Data == nil {
				e.Data = []byte{}
			}
			data = append(data, e.Data)
			meta = append(meta, e.Metadata)
			at = append(at, recordedAt(e))
		}
	}
	written, err := s.insert(ctx, conn, true, ids, streams, vers, types, data, meta, at)
	if err != nil {
		return nil, err
	}
	outs := make([]eventstore.Outcome, len(reqs))
	for i, r := range reqs {
		outs[i].Result = eventstore.AppendResult{NextExpected: int64(len(r.Events)) - 1, Position: written[r.Events[len(r.Events)-1].ID]}
	}
	return outs, nil
}

// ReportsReplays: an idempotent re-append says Replayed (the group-commit
// plan sees the stored ids), so writers of new streams may skip reading them.
func (s *Store) ReportsReplays() bool { return true }
