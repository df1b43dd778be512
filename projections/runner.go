package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/bits"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/jackc/pgx/v5"
)

// Tx is a read-model transaction with the dialect's placeholders. During a
// rebuild it also points the projectors' table names at the new tables.
type Tx struct {
	tx     *sql.Tx
	db     sqldb.DB
	tables *tableRename
	// stmts caches prepared statements for the transaction: a batch runs
	// the same few statements hundreds of times, and preparing (parsing)
	// each time costs more than executing on SQLite.
	stmts map[string]*sql.Stmt
	// shared are the runner's statements that outlive a batch (nil: none).
	shared *sharedStmts
	// batch holds projectors' state for the length of one batch (running
	// sums, last sequence numbers), so a batch reads each row once.
	batch map[string]any
	// conn holds tx; set (Postgres, in a rebuild) to write large row
	// buffers with COPY.
	conn *sql.Conn
	// hold is a rebuild's state that outlives a batch (nil: none).
	hold *heldState
}

// heldState keeps, during a rebuild's catch-up, what the balances and the
// feed's references would write at each batch's end, and writes each
// merchant's every holdEvents events instead. Their rows are few and hot (a
// balance per merchant and asset; each merchant's last page of the feed),
// so a batch of 10,000 events rewrote thousands of them: at 10M events on
// SQLite the feed's inserts were 73 of the writer's 212 CPU seconds, the
// balances 26, and each commit wrote every page they touched to the WAL
// again. Nothing reads these tables until the swap, and the rebuild starts
// over if it stops, so holding them changes nothing but when they are
// written; the runner writes what is held before the swap.
//
// The merchants take turns (by a hash of the id, in groups): each batch
// writes one group's, so that no batch holds the writer much longer than
// the others. Writing every merchant's at once made one batch in 25 take
// 1.2–1.4 s instead of 0.1 s, and a serving gateway's appends wait for it.
type heldState struct {
	state  map[string]any
	groups uint32 // batches between two writes of a merchant's rows
	turn   uint32 // the group this batch writes
	span   uint32 // how many groups from turn on this batch writes
}

// holdEvents: about how many events' balances and feed references a
// rebuild holds: a reference is 8 bytes, so 2.5M of them take about 20 MB
// (40 with the slices' spare room). The more a merchant's references wait,
// the more of them go into each leaf page of event_feed_refs that a write
// reads and splits: at 10M events and 2,000 merchants, 2.5M instead of
// 250,000 (with 8-byte references and the last seq known) took the
// catch-up from 2:43, 2:49 to 2:21, 2:06.
var holdEvents = 2_500_000

func newHeldState(batchSize int) *heldState {
	return &heldState{state: map[string]any{}, groups: uint32(max(1, holdEvents/batchSize)), span: 1}
}

// next moves to the next batch's turn.
func (h *heldState) next() { h.turn = (h.turn + 1) % h.groups }

// held returns the map of state that spans batches: the rebuild's held
// state, else the batch's.
func (t Tx) held() map[string]any {
	if t.hold != nil {
		return t.hold.state
	}
	return t.batch
}

// holding reports whether FlushBatch should keep a merchant's held rows
// for a later batch rather than write them now.
func (t Tx) holding(merchantID string) bool {
	if t.hold == nil {
		return false
	}
	h := fnv.New32a()
	h.Write([]byte(merchantID))
	// This batch writes groups turn, turn+1, … turn+span-1 (mod groups).
	return (h.Sum32()%t.hold.groups+t.hold.groups-t.hold.turn)%t.hold.groups >= t.hold.span
}

func newTx(tx *sql.Tx, db sqldb.DB, tables *tableRename, shared *sharedStmts) Tx {
	return Tx{tx: tx, db: db, tables: tables, stmts: map[string]*sql.Stmt{}, shared: shared, batch: map[string]any{}}
}

// maxSharedStmts bounds the statements a runner keeps across batches.
const maxSharedStmts = 256

// sharedStmts are statements prepared on the SQLite writer pool (one
// connection) that batches reuse: preparing the same statements again in
// every batch was 0.19 s of the runner's 1.26 s in a profile under load. A
// statement cannot be prepared on the pool while a batch holds its one
// connection, so a batch notes the ones it missed, and they are prepared
// after it.
type sharedStmts struct {
	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	missed []string
}

func (s *sharedStmts) get(query string) *sql.Stmt {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stmts[query]
	if st == nil && len(s.stmts)+len(s.missed) < maxSharedStmts && !slices.Contains(s.missed, query) {
		s.missed = append(s.missed, query)
	}
	return st
}

// prepareMissed prepares the statements batches missed; call it while no
// transaction holds the pool's connection. A statement that fails to
// prepare stays unshared: batches prepare it themselves, as without the
// cache, so a cache miss never stops the projections.
func (s *sharedStmts) prepareMissed(ctx context.Context, db *sql.DB) {
	s.mu.Lock()
	missed := s.missed
	s.missed = nil
	s.mu.Unlock()
	for _, q := range missed {
		st, err := db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		s.mu.Lock()
		if s.stmts == nil {
			s.stmts = map[string]*sql.Stmt{}
		}
		s.stmts[q] = st
		s.mu.Unlock()
	}
}

// BatchFlusher is a projector that keeps state across a batch and writes
// it before the batch's checkpoint.
type BatchFlusher interface {
	FlushBatch(ctx context.Context, tx Tx) error
}

func (t Tx) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := t.stmts[query]; ok {
		return st, nil
	}
	q := t.db.Q(t.tables.apply(query))
	if t.shared != nil {
		if shared := t.shared.get(q); shared != nil {
			st := t.tx.StmtContext(ctx, shared)
			t.stmts[query] = st
			return st, nil
		}
	}
	st, err := t.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	t.stmts[query] = st
	return st, nil
}

func (t Tx) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t.db.Dialect == sqldb.Postgres {
		// pgx already caches prepared statements per connection; an
		// explicit Prepare would cost two more round trips per batch.
		return t.tx.ExecContext(ctx, t.db.Q(t.tables.apply(query)), args...)
	}
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// QueryRow errors surface from Scan, as with database/sql.
func (t Tx) QueryRow(ctx context.Context, query string, args ...any) *sql.Row {
	if t.db.Dialect == sqldb.Postgres {
		return t.tx.QueryRowContext(ctx, t.db.Q(t.tables.apply(query)), args...)
	}
	st, err := t.stmt(ctx, query)
	if err != nil {
		return t.tx.QueryRowContext(ctx, t.db.Q(t.tables.apply(query)), args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

// Query is QueryRow for several rows.
func (t Tx) Query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if t.db.Dialect == sqldb.Postgres {
		return t.tx.QueryContext(ctx, t.db.Q(t.tables.apply(query)), args...)
	}
	st, err := t.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// Projector folds events into its tables. Apply runs inside the batch's
// transaction; an error aborts the whole batch (it is retried, never skipped).
type Projector interface {
	Name() string
	Apply(ctx context.Context, tx Tx, rec eventstore.RecordedEvent, e domain.Event) error
}

// batchSize bounds the events applied in one transaction.
const batchSize = 500

// Runner feeds the global log to its projectors from their checkpoints.
type Runner struct {
	// running is set while Run applies the log in this process; Follow
	// then has nothing to learn from the database.
	running atomic.Bool

	store      eventstore.Store
	db         sqldb.DB
	projectors []Projector
	observers  []Observer
	log        *slog.Logger
	// suffix names the checkpoints (and tables) of a rebuild beside the live ones.
	suffix    string
	tables    *tableRename
	progress  func(applied int, pos eventstore.Position)
	batchSize int
	stmts     *sharedStmts // SQLite only
	hold      *heldState   // a rebuild's catch-up only
	metrics   follow.Metrics
	// Now stamps the checkpoints' updated_at [time.Now].
	Now func() time.Time

	mu      sync.Mutex
	reached eventstore.Position // every projector has applied up to here
	changed chan struct{}       // closed and replaced when reached moves
}

// NewRunner prepares a runner; Run starts it.
func NewRunner(store eventstore.Store, db sqldb.DB, log *slog.Logger, projectors ...Projector) *Runner {
	if len(projectors) == 0 {
		projectors = All()
	}
	if log == nil {
		log = slog.Default()
	}
	r := &Runner{store: store, db: db, projectors: projectors, log: log, changed: make(chan struct{}), batchSize: batchSize, Now: time.Now}
	if db.Dialect == sqldb.SQLite {
		r.stmts = &sharedStmts{}
	}
	return r
}

// Observer is told what the runner made visible in the read models before
// WaitFor reports it, so that a cache of read-model rows in this process
// can drop what changed before any reader is told the change is visible.
type Observer interface {
	// Started and Stopped bracket Run: only between them does this process
	// apply, and so see, every change to the read models.
	Started()
	Stopped()
	// Applied follows every committed batch, before its position is
	// published; recs is nil when the read models changed in ways this
	// runner did not see (another runner or a rebuild moved its checkpoints).
	Applied(recs []eventstore.RecordedEvent)
}

// Observe registers o; call it before Run.
func (r *Runner) Observe(o Observer) { r.observers = append(r.observers, o) }

func (r *Runner) applied(recs []eventstore.RecordedEvent) {
	for _, o := range r.observers {
		o.Applied(recs)
	}
}

// All returns the standard projectors.
func All() []Projector {
	return []Projector{Merchants{}, Invoices{}, Balances{}, Payouts{}, EventFeed{}}
}

// Run applies the log until ctx ends. A failing batch is retried after
// follow.Retry's pause: projections stop rather than skip an event.
// Errors: loading the checkpoints (before anything is applied); otherwise
// ctx's error when it ends.
func (r *Runner) Run(ctx context.Context) error {
	r.running.Store(true)
	defer r.running.Store(false)
	checkpoints, err := r.loadCheckpoints(ctx)
	if err != nil {
		return err
	}
	for _, o := range r.observers {
		o.Started()
		defer o.Stopped()
	}
	r.publish(minPosition(checkpoints))
	loop := follow.Loop{Store: r.store, Metrics: &r.metrics, OnError: func(err error) {
		r.log.Error("projection batch failed; retrying", "from", minPosition(checkpoints).String(), "err", err)
	}}
	return loop.Run(ctx, func(ctx context.Context) (bool, eventstore.Position, error) {
		err := r.drain(ctx, checkpoints)
		if errors.Is(err, errCheckpointMoved) {
			// Another runner (a former leader still finishing) applied the
			// batch; continue from where it got to.
			cps, lerr := r.loadCheckpoints(ctx)
			if lerr != nil {
				return false, minPosition(checkpoints), lerr
			}
			checkpoints = cps
			r.applied(nil) // what it applied is not known here
			return true, minPosition(checkpoints), nil
		}
		return false, minPosition(checkpoints), err
	})
}

// Metrics are the live runner's counters: events applied, failed batches
// and the position every projector has reached.
func (r *Runner) Metrics() *follow.Metrics { return &r.metrics }

// CatchUp applies everything currently in the log and returns (for tools
// and tests that do not run the loop).
func (r *Runner) CatchUp(ctx context.Context) error {
	checkpoints, err := r.loadCheckpoints(ctx)
	if err != nil {
		return err
	}
	return r.drain(ctx, checkpoints)
}

// drain applies batches until the log has nothing more to read, publishing
// the position after each. It reads and decodes the next batch while one is
// written: the two halves use different connections and, on two cores,
// different CPUs.
func (r *Runner) drain(ctx context.Context, checkpoints map[string]eventstore.Position) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan decodedPage, 2)
	go r.readAhead(ctx, minPosition(checkpoints), pages)
	for page := range pages {
		if page.err != nil {
			return page.err
		}
		if len(page.recs) == 0 {
			r.publish(minPosition(checkpoints))
			return nil
		}
		if err := r.applyDecoded(ctx, page, checkpoints); err != nil {
			return err
		}
		r.applied(page.recs)
		r.publish(minPosition(checkpoints))
		if r.stmts != nil {
			r.stmts.prepareMissed(ctx, r.db.Write)
		}
	}
	return ctx.Err()
}

// decodedPage is a batch of the log with its events decoded.
type decodedPage struct {
	recs   []eventstore.RecordedEvent
	events []domain.Event
	err    error
}

// readAhead sends decoded pages from pos until the end of the log (an
// empty page), an error, or ctx ends.
func (r *Runner) readAhead(ctx context.Context, pos eventstore.Position, out chan<- decodedPage) {
	defer close(out)
	for {
		recs, err := r.store.ReadAll(ctx, pos, r.batchSize)
		page := decodedPage{recs: recs, err: err}
		if err == nil {
			page.events, page.err = decodeAll(recs)
		}
		select {
		case out <- page:
		case <-ctx.Done():
			return
		}
		// A short page reached the end of what was readable: drain ends
		// there (Run then waits) instead of reading once more to find the
		// next page empty, a query per batch.
		if page.err != nil || len(recs) < r.batchSize {
			return
		}
		pos = recs[len(recs)-1].Position
	}
}

func decodeAll(recs []eventstore.RecordedEvent) ([]domain.Event, error) {
	out := make([]domain.Event, len(recs))
	for i, rec := range recs {
		e, err := domain.DecodeStored(rec.Type, rec.Data, rec.Metadata)
		if err != nil {
			// Events of types this version does not know (a newer writer)
			// cannot be projected; stopping is safer than guessing.
			return nil, fmt.Errorf("projections: event %s at %s: %w", rec.ID, rec.Position, err)
		}
		out[i] = e
	}
	return out, nil
}

func minPosition(cps map[string]eventstore.Position) eventstore.Position {
	first := true
	var m eventstore.Position
	for _, p := range cps {
		if first || p.Less(m) {
			m, first = p, false
		}
	}
	return m
}

// errCheckpointMoved: a checkpoint is not where this runner left it, so
// another runner is (or was) applying the same projector.
var errCheckpointMoved = errors.New("projections: checkpoint moved under the runner")

func (r *Runner) loadCheckpoints(ctx context.Context) (map[string]eventstore.Position, error) {
	cps := make(map[string]eventstore.Position, len(r.projectors))
	for _, p := range r.projectors {
		// Every projector has a row, so a batch can fence on it.
		if _, err := r.db.Write.ExecContext(ctx, r.db.Q(`INSERT INTO projection_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO NOTHING`), r.checkpointName(p), eventstore.Start.String(), r.Now().UnixMilli()); err != nil {
			return nil, fmt.Errorf("projections: checkpoint of %s: %w", p.Name(), err)
		}
		var s string
		err := r.db.Write.QueryRowContext(ctx, r.db.Q(`SELECT position FROM projection_checkpoints WHERE name = ?`), r.checkpointName(p)).Scan(&s)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			cps[p.Name()] = eventstore.Start
		case err != nil:
			return nil, fmt.Errorf("projections: checkpoint of %s: %w", p.Name(), err)
		default:
			pos, err := eventstore.ParsePosition(s)
			if err != nil {
				return nil, err
			}
			cps[p.Name()] = pos
		}
	}
	return cps, nil
}

func (r *Runner) checkpointName(p Projector) string { return p.Name() + r.suffix }

// begin starts a batch's transaction; release rolls it back unless it
// was committed, and gives the connection back.
func (r *Runner) begin(ctx context.Context) (tx Tx, sqlTx *sql.Tx, release func(), err error) {
	sqlTx, conn, done, err := beginReadModelConnTx(ctx, r.db)
	if err != nil {
		return Tx{}, nil, nil, err
	}
	tx = newTx(sqlTx, r.db, r.tables, r.stmts)
	if r.tables != nil {
		tx.conn = conn // a rebuild's shadow tables take COPY
	}
	return tx, sqlTx, func() { sqlTx.Rollback(); done() }, nil
}

// applyDecoded applies a page to every projector that has not seen it and
// writes the checkpoints, all in one transaction. checkpoints is keyed by
// projector name and updated only when the transaction commits.
func (r *Runner) applyDecoded(ctx context.Context, page decodedPage, checkpoints map[string]eventstore.Position) error {
	tx, sqlTx, release, err := r.begin(ctx)
	if err != nil {
		return err
	}
	defer release()
	if r.hold != nil {
		r.hold.next()
		tx.hold = r.hold
	}
	if err := r.fence(ctx, tx, checkpoints); err != nil {
		return err
	}
	next, err := r.applyEvents(ctx, tx, page.recs, page.events, checkpoints)
	if err != nil {
		return err
	}
	if err := r.writeCheckpoints(ctx, tx, checkpoints, next); err != nil {
		return err
	}
	if err := sqlTx.Commit(); err != nil {
		return err
	}
	for k, v := range next {
		checkpoints[k] = v
	}
	r.metrics.AddApplied(len(page.recs))
	if r.progress != nil {
		r.progress(len(page.recs), page.recs[len(page.recs)-1].Position)
	}
	return nil
}

// writeHeld writes what a rebuild's catch-up held (heldState), a few
// groups of merchants a transaction, and stops holding.
func (r *Runner) writeHeld(ctx context.Context) error {
	hold := r.hold
	r.hold = nil
	if hold == nil || len(hold.state) == 0 {
		return nil
	}
	// In heldWrites transactions: in one, 2.5M events' references held
	// the writer for 6 s at 10M events (and their rows' arguments took the
	// peak RSS to 660 MB); one a group (250) took 1.9 s at 1M, against
	// 1.6-1.7 s in 25.
	hold.span = max(1, (hold.groups+heldWrites-1)/heldWrites)
	for turn := uint32(0); turn < hold.groups; turn += hold.span {
		hold.turn = turn
		if err := r.flushHeld(ctx, hold); err != nil {
			return err
		}
	}
	return nil
}

// heldWrites: how many transactions write what a rebuild held.
const heldWrites = 25

func (r *Runner) flushHeld(ctx context.Context, hold *heldState) error {
	tx, sqlTx, release, err := r.begin(ctx)
	if err != nil {
		return err
	}
	defer release()
	tx.hold = hold
	if err := r.flushBatch(ctx, tx); err != nil {
		return err
	}
	return sqlTx.Commit()
}

// flushBatch ends a batch: each projector writes what it kept of it.
func (r *Runner) flushBatch(ctx context.Context, tx Tx) error {
	for _, p := range r.projectors {
		if f, ok := p.(BatchFlusher); ok {
			if err := f.FlushBatch(ctx, tx); err != nil {
				return fmt.Errorf("projections: %s: %w", p.Name(), err)
			}
		}
	}
	return nil
}

// fence locks each checkpoint row at the position this runner believes
// in. Two runners never both apply a batch: the second waits for the
// first's commit, then finds the position moved.
func (r *Runner) fence(ctx context.Context, tx Tx, checkpoints map[string]eventstore.Position) error {
	nowMs := r.Now().UnixMilli()
	// Usually every projector is at the same position: one statement.
	if pos, same := samePosition(checkpoints); same {
		names := r.checkpointNames()
		res, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET updated_at = ? WHERE position = ? AND name IN (?`+strings.Repeat(`, ?`, len(names)-1)+`)`,
			append([]any{nowMs, pos.String()}, names...)...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != int64(len(names)) {
			return fmt.Errorf("%w: %v", errCheckpointMoved, names)
		}
		return nil
	}
	for _, p := range r.projectors {
		res, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET updated_at = ? WHERE name = ? AND position = ?`,
			nowMs, r.checkpointName(p), checkpoints[p.Name()].String())
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("%w: %s", errCheckpointMoved, r.checkpointName(p))
		}
	}
	return nil
}

func (r *Runner) checkpointNames() []any {
	names := make([]any, len(r.projectors))
	for i, p := range r.projectors {
		names[i] = r.checkpointName(p)
	}
	return names
}

func samePosition(cps map[string]eventstore.Position) (eventstore.Position, bool) {
	var first eventstore.Position
	i := 0
	for _, p := range cps {
		if i > 0 && p != first {
			return first, false
		}
		first = p
		i++
	}
	return first, true
}

// applyEvents applies recs inside tx and returns the new checkpoints.
func (r *Runner) applyEvents(ctx context.Context, tx Tx, recs []eventstore.RecordedEvent, events []domain.Event, checkpoints map[string]eventstore.Position) (map[string]eventstore.Position, error) {
	next := make(map[string]eventstore.Position, len(checkpoints))
	for k, v := range checkpoints {
		next[k] = v
	}
	for i, rec := range recs {
		e := events[i]
		for _, p := range r.projectors {
			if !next[p.Name()].Less(rec.Position) {
				continue
			}
			if err := p.Apply(ctx, tx, rec, e); err != nil {
				return nil, fmt.Errorf("projections: %s on %s %s: %w", p.Name(), rec.Type, rec.ID, err)
			}
			next[p.Name()] = rec.Position
		}
	}
	if err := r.flushBatch(ctx, tx); err != nil {
		return nil, err
	}
	return next, nil
}

func (r *Runner) writeCheckpoints(ctx context.Context, tx Tx, old, next map[string]eventstore.Position) error {
	if pos, same := samePosition(next); same {
		names := r.checkpointNames()
		_, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET position = ? WHERE name IN (?`+strings.Repeat(`, ?`, len(names)-1)+`)`,
			append([]any{pos.String()}, names...)...)
		return err
	}
	for _, p := range r.projectors {
		pos := next[p.Name()]
		if pos == old[p.Name()] {
			continue
		}
		if _, err := tx.Exec(ctx, `UPDATE projection_checkpoints SET position = ? WHERE name = ?`, pos.String(), r.checkpointName(p)); err != nil {
			return err
		}
	}
	return nil
}

func (r *Runner) publish(pos eventstore.Position) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reached.Less(pos) {
		r.reached = pos
		close(r.changed)
		r.changed = make(chan struct{})
	}
}

// Position is where every projector of the runner has got to.
func (r *Runner) Position() eventstore.Position {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reached
}

// WaitFor blocks until every projector has applied pos, or ctx ends.
func (r *Runner) WaitFor(ctx context.Context, pos eventstore.Position) error {
	for {
		r.mu.Lock()
		done, ch := !r.reached.Less(pos), r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitRecordedBefore blocks until every projector has applied each event
// recorded before t (by the appending process's clock), or ctx ends. Unlike
// WaitFor it needs no position: a reader that missed something can wait
// for whatever was written before it asked, without chasing later writes.
func (r *Runner) WaitRecordedBefore(ctx context.Context, t time.Time) error {
	for {
		next, err := r.store.ReadAll(ctx, r.Position(), 1)
		if err != nil {
			return err
		}
		if len(next) == 0 || !next[0].RecordedAt.Before(t) {
			return nil
		}
		if err := r.WaitFor(ctx, next[0].Position); err != nil {
			return err
		}
	}
}

// Follow publishes the checkpoints that another process's runner writes,
// polling every interval, so WaitFor works in a process that serves HTTP
// but does not lead the projections.
func (r *Runner) Follow(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if r.running.Load() {
			continue // this process leads: Run publishes as it applies
		}
		cps, err := r.readCheckpoints(ctx)
		if err == nil {
			r.publish(minPosition(cps))
		}
	}
}

// readCheckpoints reads the stored checkpoints without creating any.
func (r *Runner) readCheckpoints(ctx context.Context) (map[string]eventstore.Position, error) {
	rows, err := r.db.Read.QueryContext(ctx, `SELECT name, position FROM projection_checkpoints`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	stored := map[string]string{}
	for rows.Next() {
		var name, pos string
		if err := rows.Scan(&name, &pos); err != nil {
			return nil, err
		}
		stored[name] = pos
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	cps := make(map[string]eventstore.Position, len(r.projectors))
	for _, p := range r.projectors {
		pos, err := eventstore.ParsePosition(stored[p.Name()])
		if err != nil {
			pos = eventstore.Start // no row yet
		}
		cps[p.Name()] = pos
	}
	return cps, nil
}

// rowBuffer collects rows for one table, written as multi-row INSERTs.
type rowBuffer struct {
	head string // INSERT INTO t (c1, c2, ...)
	cols int
	args []any
}

// rowsPerInsert bounds a statement's rows (SQLite allows 32,766 parameters).
// With shared statements (SQLite), statements have a power of two of rows,
// so that a few shapes recur and their prepared statements are reused; on
// Postgres one statement per table and batch saves round trips.
const rowsPerInsert = 256

// bufferRow queues one row of the INSERT head (with cols columns) under
// key; flushRows writes the queue. Projectors that buffer must flush before
// they touch the table otherwise, and in FlushBatch.
func (t Tx) bufferRow(key, head string, row ...any) {
	b, _ := t.batch[key].(*rowBuffer)
	if b == nil {
		b = &rowBuffer{head: head, cols: len(row)}
		t.batch[key] = b
	}
	if len(row) != b.cols {
		panic(fmt.Sprintf("projections: %s row has %d values, want %d", key, len(row), b.cols))
	}
	b.args = append(b.args, row...)
}

func (t Tx) flushRows(ctx context.Context, key string) error {
	return t.flushRowsUpsert(ctx, key, "")
}

// flushRowsUpsert is flushRows with onConflict after each statement's
// VALUES; rows queued under one key must then name distinct keys.
func (t Tx) flushRowsUpsert(ctx context.Context, key, onConflict string) error {
	b, _ := t.batch[key].(*rowBuffer)
	if b == nil || len(b.args) == 0 {
		return nil
	}
	delete(t.batch, key)
	if onConflict == "" && t.conn != nil && t.db.Dialect == sqldb.Postgres && len(b.args) > rowsPerInsert*b.cols {
		return t.copyRows(ctx, b)
	}
	one := "(?" + strings.Repeat(", ?", b.cols-1) + ")"
	for start := 0; start < len(b.args); {
		rows := min((len(b.args)-start)/b.cols, rowsPerInsert)
		if t.shared != nil {
			rows = 1 << (bits.Len(uint(rows)) - 1) // the largest power of two not above
		}
		end := start + rows*b.cols
		q := b.head + " VALUES " + one + strings.Repeat(", "+one, rows-1) + onConflict
		if _, err := t.Exec(ctx, q, b.args[start:end]...); err != nil {
			return err
		}
		start = end
	}
	return nil
}

var insertHead = regexp.MustCompile(`(?s)^\s*INSERT INTO\s+(\w+)\s*\((.*)\)\s*$`)

// copyRows writes b's rows with COPY (binary): a rebuild's batch holds
// thousands of rows per table, and the server neither parses nor plans
// COPY as it does a multi-row INSERT of thousands of parameters.
func (t Tx) copyRows(ctx context.Context, b *rowBuffer) error {
	m := insertHead.FindStringSubmatch(b.head)
	if m == nil {
		return fmt.Errorf("projections: cannot copy into %q", b.head)
	}
	table := t.tables.apply(m[1])
	cols := strings.Split(m[2], ",")
	for i := range cols {
		cols[i] = strings.TrimSpace(cols[i])
	}
	rows := make([][]any, 0, len(b.args)/b.cols)
	for i := 0; i < len(b.args); i += b.cols {
		rows = append(rows, b.args[i:i+b.cols])
	}
	return t.conn.Raw(func(dc any) error {
		c, ok := sqldb.PgxConn(dc)
		if !ok {
			return fmt.Errorf("projections: COPY needs a pgx connection, have %T", dc)
		}
		_, err := c.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromRows(rows))
		return err
	})
}
