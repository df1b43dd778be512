package projections

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Tabled is a projector that can be rebuilt: it names the tables it owns.
type Tabled interface {
	Projector
	Tables() []string
}

func (Merchants) Tables() []string { return []string{"merchants", "payout_settings"} }
func (Invoices) Tables() []string  { return []string{"invoices", "payments", "invoice_status_counts"} }
func (Balances) Tables() []string  { return []string{"balances"} }

// rebuildBatchSize: a rebuild has no reader waiting on each batch, so it
// commits less often than the live runner. On SQLite a batch holds the one
// writer (about a quarter second at this size), which appends then wait for;
// reads are not held up.
var rebuildBatchSize = 10000

// rebuildCheckpointPages is how many pages SQLite's log of writes (the
// WAL) holds before the writer copies them into the database file, during
// a rebuild (SQLite's default, kept otherwise, is 1,000). A batch of
// 10,000 events writes more than 1,000 pages, so each commit copied its
// pages at once, and pages that the next batches write again (the right
// edges of the shadow tables and of their indexes) were copied again and
// again. At 10M events a rebuild took 101–127 s instead of 111–144 s (4
// alternating pairs on a noisy machine, each pair 9–16 % apart). The WAL
// file grows to about 80 MB (4 KiB pages) and keeps that size.
const rebuildCheckpointPages = 20_000

// nextSuffix marks the tables and checkpoints of a rebuild in progress.
const nextSuffix = "__next"

// tableRename rewrites a projector's table names in its SQL, so the same
// projector code fills the new tables during a rebuild. It remembers what
// it rewrote: a rebuild sends the same texts millions of times, and
// rewriting each with the expression was 1.4 % of a rebuild's CPU at 1M
// events, on the writer.
type tableRename struct {
	re      *regexp.Regexp
	mu      sync.Mutex
	renamed map[string]string
}

// maxRenamed bounds what a tableRename remembers.
const maxRenamed = 1024

func newTableRename(tables []string) *tableRename {
	quoted := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = regexp.QuoteMeta(t)
	}
	return &tableRename{re: regexp.MustCompile(`\b(` + strings.Join(quoted, "|") + `)\b`), renamed: map[string]string{}}
}

func (t *tableRename) apply(query string) string {
	if t == nil {
		return query
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if q, ok := t.renamed[query]; ok {
		return q
	}
	q := t.re.ReplaceAllString(query, "${1}"+nextSuffix)
	if len(t.renamed) < maxRenamed {
		t.renamed[query] = q
	}
	return q
}

// RebuildProgress is reported after each batch of a rebuild.
type RebuildProgress struct {
	Applied int   // events applied so far
	Total   int64 // events in the log when the rebuild started; -1 if the store cannot count
	Elapsed time.Duration
}

// Counter is implemented by stores that can count their events cheaply.
type Counter interface {
	CountAfter(ctx context.Context, after eventstore.Position) (int64, error)
}

// Rebuild builds the named projectors' read models again from the start
// of the log, beside the live tables (blue/green), while the service keeps
// serving from the live ones; once caught up it swaps them in one
// transaction that first fences the live projectors' checkpoints, applies
// the last events, renames the tables and moves the live checkpoints to the
// rebuilt position. A live runner then finds its checkpoint moved and
// continues from there. No names: all projectors.
func Rebuild(ctx context.Context, store eventstore.Store, db sqldb.DB, names []string, progress func(RebuildProgress)) error {
	return RebuildWith(ctx, store, db, names, RebuildOptions{Progress: progress})
}

// RebuildOptions are Rebuild's optional inputs.
type RebuildOptions struct {
	// Progress is called after each batch.
	Progress func(RebuildProgress)
	// Now is the clock for progress and the checkpoints' updated_at (nil: time.Now).
	Now func() time.Time
	// Phase is called as each phase ends ("catch-up", "held rows",
	// "indexes", "catch-up again", "swap", "old tables dropped") with the
	// time it took: where a rebuild's time goes.
	Phase func(name string, took time.Duration)
	// Yield, when set, is called between the statements that hold the
	// writer longest (each index build, the swap, each old table's drop).
	// A rebuild inside the serving process waits there for its
	// projections to catch up: its writer connection goes to the waiting
	// appends and projector then, rather than to whichever waiter
	// database/sql picks, which may be the rebuild's next index build.
	Yield func(ctx context.Context)
	// Locked: the caller holds LockRebuild's lock (taken before it
	// answers, say); otherwise the rebuild takes it, or answers
	// ErrRebuildRunning.
	Locked bool
}

// RebuildWith is Rebuild with options.
func RebuildWith(ctx context.Context, store eventstore.Store, db sqldb.DB, names []string, opt RebuildOptions) error {
	now, progress := opt.Now, opt.Progress
	if now == nil {
		now = time.Now
	}
	projectors, err := selectProjectors(names)
	if err != nil {
		return err
	}
	if !opt.Locked {
		release, err := LockRebuild(ctx, db)
		if err != nil {
			return err
		}
		defer release()
	}
	var tables []string
	plain := make([]Projector, len(projectors))
	for i, p := range projectors {
		tables = append(tables, p.Tables()...)
		plain[i] = p
	}
	// A rebuild that stopped after its swap may have left old tables.
	if err := dropOldTables(ctx, db, tables, func(context.Context) {}); err != nil {
		return err
	}
	indexes, err := createShadowTables(ctx, db, tables)
	if err != nil {
		return err
	}
	if db.Dialect == sqldb.SQLite {
		restore, err := setPragmas(ctx, db.Write, "wal_autocheckpoint", strconv.Itoa(rebuildCheckpointPages))
		if err != nil {
			return err
		}
		defer restore() // if it fails, the writer checkpoints less often: no harm
	}
	r := NewRunner(store, db, nil, plain...)
	r.suffix, r.tables = nextSuffix, newTableRename(tables)
	// On Postgres too: a batch's long write transaction no longer holds the
	// serving gateway's log readers back (they wait only for appends).
	r.batchSize = rebuildBatchSize
	r.hold = newHeldState(r.batchSize)
	if _, err := db.Write.ExecContext(ctx, db.Q(`DELETE FROM projection_checkpoints WHERE name LIKE ?`), "%"+nextSuffix); err != nil {
		return err
	}
	total := int64(-1)
	if c, ok := store.(Counter); ok {
		if total, err = c.CountAfter(ctx, eventstore.Start); err != nil {
			return err
		}
	}
	start, applied := now(), 0
	r.progress = func(n int, _ eventstore.Position) {
		applied += n
		if progress != nil {
			progress(RebuildProgress{Applied: applied, Total: total, Elapsed: now().Sub(start)})
		}
	}
	phaseStart := start
	phase := func(name string) {
		if opt.Phase != nil {
			t := now()
			opt.Phase(name, t.Sub(phaseStart))
			phaseStart = t
		}
	}
	if err := r.catchUpInLanes(ctx); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	phase("catch-up")
	if err := r.writeHeld(ctx); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	phase("held rows")
	yield := opt.Yield
	if yield == nil {
		yield = func(context.Context) {}
	}
	if err := finishShadowTables(ctx, db, tables, indexes, yield); err != nil {
		return err
	}
	phase("indexes")
	// What was appended during the index builds goes in now rather than
	// inside the swap's transaction, which holds the writer.
	if err := r.CatchUp(ctx); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	phase("catch-up again")
	yield(ctx)
	if err := swap(ctx, store, db, r, tables, indexes.renames, now); err != nil {
		return err
	}
	phase("swap")
	if db.Dialect == sqldb.SQLite { // Postgres's swap dropped them
		if err := dropOldTables(ctx, db, tables, yield); err != nil {
			return err
		}
	}
	phase("old tables dropped")
	return nil
}

// finishShadowTables builds the shadow tables' indexes before the swap,
// one statement each: on SQLite each holds the writer, and so the
// gateway's appends, for one index build only. On Postgres it also gathers
// the tables' statistics (a new table has none, and the planner would
// guess); nothing live waits for it there.
func finishShadowTables(ctx context.Context, db sqldb.DB, tables []string, indexes shadowIndexes, yield func(context.Context)) (err error) {
	if db.Dialect == sqldb.SQLite {
		// An index build is a sort. SQLite sorts on helper threads when
		// told to (at 10M events an index of invoices took 2.3 s instead
		// of 3.2 on two cores), and its sort spills to temporary files,
		// which the writer otherwise keeps in memory (temp_store): the
		// driver's in-memory files made the same builds 2.2 times slower
		// (4.6 s against 2.1 for that index). Set back after: the writer's
		// one connection.
		restore, err := setPragmas(ctx, db.Write, "threads", strconv.Itoa(runtime.NumCPU()), "temp_store", "FILE")
		if err != nil {
			return err
		}
		defer func() {
			if resetErr := restore(); err == nil {
				err = resetErr
			}
		}()
	}
	for _, stmt := range indexes.beforeSwap {
		yield(ctx)
		if _, err := db.Write.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("rebuild: %s: %w", stmt, err)
		}
	}
	if db.Dialect != sqldb.Postgres {
		return nil
	}
	for _, t := range tables {
		if _, err := db.Write.ExecContext(ctx, `ANALYZE `+t+nextSuffix); err != nil {
			return fmt.Errorf("rebuild: analyze %s: %w", t+nextSuffix, err)
		}
	}
	return nil
}

// setPragmas sets SQLite pragmas (name, value, name, value, …) on the
// pool's connection and returns what sets their former values back.
func setPragmas(ctx context.Context, db *sql.DB, pairs ...string) (restore func() error, err error) {
	var former []string
	restore = func() error {
		for i := len(former) - 2; i >= 0; i -= 2 {
			if _, err := db.ExecContext(context.WithoutCancel(ctx), `PRAGMA `+former[i]+` = `+former[i+1]); err != nil {
				return err
			}
		}
		return nil
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		var was string
		if err := db.QueryRowContext(ctx, `PRAGMA `+pairs[i]).Scan(&was); err != nil {
			return nil, errors.Join(err, restore())
		}
		if _, err := db.ExecContext(ctx, `PRAGMA `+pairs[i]+` = `+pairs[i+1]); err != nil {
			return nil, errors.Join(err, restore())
		}
		former = append(former, pairs[i], was)
	}
	return restore, nil
}

// CheckRebuildNames says whether Rebuild knows every name (none: all).
func CheckRebuildNames(names []string) error {
	_, err := selectProjectors(names)
	return err
}

func selectProjectors(names []string) ([]Tabled, error) {
	var out []Tabled
	for _, p := range All() {
		t, ok := p.(Tabled)
		if !ok {
			continue
		}
		if len(names) == 0 {
			out = append(out, t)
			continue
		}
		for _, n := range names {
			if n == p.Name() {
				out = append(out, t)
			}
		}
	}
	if len(out) == 0 || (len(names) > 0 && len(out) != len(names)) {
		return nil, fmt.Errorf("rebuild: unknown projection in %v (have %v)", names, projectorNames())
	}
	return out, nil
}

func projectorNames() []string {
	var out []string
	for _, p := range All() {
		out = append(out, p.Name())
	}
	return out
}

// shadowIndexes are the live tables' secondary indexes, built on the
// shadow tables only once their rows are in: an index built from the
// finished table (one sort) costs far less than one kept up to date row by
// row through the load, and the projectors read the shadow tables only by
// their keys. Unique indexes are built before the load, as the projectors'
// upserts may need them.
type shadowIndexes struct {
	// beforeSwap build the indexes on the shadow tables, under names of
	// this rebuild's that the swap replaces with the live ones.
	beforeSwap []string
	// renames (SQLite, where index names are global): each index's name
	// in this rebuild and its live name and definition.
	renames []sqliteIndexRename
}

// sqliteIndexRename names one index of a shadow table.
type sqliteIndexRename struct {
	shadow, live, sql string
}

// createShadowTables creates <table>__next with the live table's columns,
// keys and unique indexes, dropping a leftover of an interrupted rebuild
// first, and returns its other indexes to build later.
func createShadowTables(ctx context.Context, db sqldb.DB, tables []string) (shadowIndexes, error) {
	var ix shadowIndexes
	for _, t := range tables {
		next := t + nextSuffix
		if _, err := db.Write.ExecContext(ctx, `DROP TABLE IF EXISTS `+next); err != nil {
			return ix, err
		}
		if db.Dialect == sqldb.Postgres {
			later, err := copyPostgresSchema(ctx, db.Write, t, next)
			if err != nil {
				return ix, err
			}
			ix.beforeSwap = append(ix.beforeSwap, later...)
			continue
		}
		before, renames, err := copySQLiteSchema(ctx, db.Write, t, next)
		if err != nil {
			return ix, err
		}
		ix.beforeSwap = append(ix.beforeSwap, before...)
		ix.renames = append(ix.renames, renames...)
	}
	return ix, nil
}

// copyPostgresSchema creates next like t with its constraints (primary
// key, unique) and unique indexes, and returns the statements that create
// t's other indexes on next.
func copyPostgresSchema(ctx context.Context, db *sql.DB, t, next string) ([]string, error) {
	if _, err := db.ExecContext(ctx, `CREATE TABLE `+next+` (LIKE `+t+` INCLUDING ALL EXCLUDING INDEXES)`); err != nil {
		return nil, fmt.Errorf("rebuild: create %s: %w", next, err)
	}
	// Without a name Postgres names each after next; the swap gives them
	// the live names (postgresIndexRenames).
	rows, err := db.QueryContext(ctx, `SELECT 'ALTER TABLE `+next+` ADD ' || pg_get_constraintdef(c.oid), true
			FROM pg_constraint c WHERE c.conrelid = $1::regclass AND c.contype IN ('p', 'u', 'x')
		UNION ALL
		SELECT 'CREATE ' || CASE WHEN x.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX ON `+next+` '
				|| regexp_replace(pg_get_indexdef(x.indexrelid), '^.* ON [^ ]+ ', ''), x.indisunique
			FROM pg_index x WHERE x.indrelid = $1::regclass
			AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid AND c.conrelid = x.indrelid)`, t)
	if err != nil {
		return nil, fmt.Errorf("rebuild: indexes of %s: %w", t, err)
	}
	var now, later []string
	for rows.Next() {
		var stmt string
		var first bool
		if err := rows.Scan(&stmt, &first); err != nil {
			rows.Close()
			return nil, err
		}
		if first {
			now = append(now, stmt)
		} else {
			later = append(later, stmt)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, stmt := range now {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return nil, fmt.Errorf("rebuild: %s: %w", stmt, err)
		}
	}
	return later, nil
}

var indexSuffix = regexp.MustCompile(`__g\d+$`)

// copySQLiteSchema recreates table t as next from sqlite_master, with its
// unique indexes, which the load may need, under names of this rebuild's
// (index names are global in SQLite), and returns the statements that
// build t's other indexes on next under such names, and each index's
// rename to its live name (without the __g suffix an interrupted former
// swap could have left) once t is dropped and next renamed t.
func copySQLiteSchema(ctx context.Context, db *sql.DB, t, next string) (before []string, renames []sqliteIndexRename, err error) {
	var tableSQL string
	if err := db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, t).Scan(&tableSQL); err != nil {
		return nil, nil, fmt.Errorf("rebuild: schema of %s: %w", t, err)
	}
	head := regexp.MustCompile(`(?i)^CREATE TABLE\s+"?` + regexp.QuoteMeta(t) + `"?`)
	if _, err := db.ExecContext(ctx, head.ReplaceAllString(tableSQL, "CREATE TABLE "+next)); err != nil {
		return nil, nil, fmt.Errorf("rebuild: create %s: %w", next, err)
	}
	indexes, err := sqliteIndexesOf(ctx, db, t)
	if err != nil {
		return nil, nil, err
	}
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, nil, err
	}
	gen := fmt.Sprintf("__g%d", binary.BigEndian.Uint64(nonce[:])>>1)
	for _, ix := range indexes {
		live := indexSuffix.ReplaceAllString(ix.name, "")
		tmp := live + gen
		create, unique, err := indexSQLFor(ix, t, tmp, next)
		if err != nil {
			return nil, nil, err
		}
		liveSQL, _, err := indexSQLFor(ix, t, live, t)
		if err != nil {
			return nil, nil, err
		}
		if unique {
			if _, err := db.ExecContext(ctx, create); err != nil {
				return nil, nil, fmt.Errorf("rebuild: index %s: %w", tmp, err)
			}
		} else {
			before = append(before, create)
		}
		renames = append(renames, sqliteIndexRename{shadow: tmp, live: live, sql: liveSQL})
	}
	return before, renames, nil
}

// indexSQLFor rewrites ix, an index of table t, as the index name of
// table on, and says whether it is unique.
func indexSQLFor(ix sqliteIndex, t, name, on string) (sql string, unique bool, err error) {
	re := regexp.MustCompile(`(?i)^CREATE (UNIQUE )?INDEX\s+"?` + regexp.QuoteMeta(ix.name) + `"?\s+ON\s+"?` + regexp.QuoteMeta(t) + `"?`)
	m := re.FindStringSubmatch(ix.sql)
	if m == nil {
		return "", false, fmt.Errorf("rebuild: cannot rewrite index %s", ix.name)
	}
	return re.ReplaceAllString(ix.sql, "CREATE ${1}INDEX "+name+" ON "+on), m[1] != "", nil
}

// renameSQLiteIndexes gives the swapped-in tables' indexes their live
// names, inside the swap's transaction. SQLite has no ALTER INDEX … RENAME;
// building each index again under its name doubled a rebuild's index work
// (24 of the 48 CPU seconds after the catch-up at 10M events). An index's
// name is its row in sqlite_schema, so the row is rewritten, as SQLite's
// own ALTER TABLE … RENAME rewrites it, and the schema's version moves on
// so that every connection reads the schema again before its next
// statement. A name already taken would make two rows of one name: that
// fails the swap instead.
func renameSQLiteIndexes(ctx context.Context, tx *sql.Tx, renames []sqliteIndexRename) (err error) {
	if len(renames) == 0 {
		return nil
	}
	var version int64
	if err := tx.QueryRowContext(ctx, `PRAGMA schema_version`).Scan(&version); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `PRAGMA writable_schema = ON`); err != nil {
		return err
	}
	defer func() {
		// RESET also reloads this connection's schema.
		if _, resetErr := tx.ExecContext(context.WithoutCancel(ctx), `PRAGMA writable_schema = RESET`); err == nil {
			err = resetErr
		}
	}()
	for _, r := range renames {
		var taken int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = ?`, r.live).Scan(&taken); err != nil {
			return err
		}
		if taken != 0 {
			return fmt.Errorf("rebuild: index name %s is taken", r.live)
		}
		res, err := tx.ExecContext(ctx, `UPDATE sqlite_schema SET name = ?, sql = ? WHERE type = 'index' AND name = ?`, r.live, r.sql, r.shadow)
		if err != nil {
			return fmt.Errorf("rebuild: rename index %s: %w", r.shadow, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return fmt.Errorf("rebuild: rename index %s: %d rows, %v", r.shadow, n, err)
		}
	}
	_, err = tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA schema_version = %d`, version+1))
	return err
}

// swap catches the new tables up and puts them live, in one transaction.
func swap(ctx context.Context, store eventstore.Store, db sqldb.DB, r *Runner, tables []string, indexes []sqliteIndexRename, now func() time.Time) error {
	sqlTx, release, err := beginReadModelTx(ctx, db)
	if err != nil {
		return err
	}
	defer release()
	defer sqlTx.Rollback()
	tx := newTx(sqlTx, db, r.tables, nil)
	// Lock the live checkpoints: the live runner's next batch waits here,
	// then finds its checkpoint moved and reloads it. A projector that never
	// ran (a log restored or generated, then rebuilt) gets its row now, or
	// the rebuilt position would be lost and its first run replay the log.
	for _, p := range r.projectors {
		if _, err := sqlTx.ExecContext(ctx, db.Q(`INSERT INTO projection_checkpoints (name, position, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at`), p.Name(), eventstore.Start.String(), now().UnixMilli()); err != nil {
			return fmt.Errorf("rebuild: fence %s: %w", p.Name(), err)
		}
	}
	// Read inside the transaction: on SQLite it holds the only write connection.
	cps, err := checkpointsIn(ctx, sqlTx, db, r)
	if err != nil {
		return err
	}
	if err := r.fence(ctx, tx, cps); err != nil {
		return err
	}
	final := cps
	for {
		recs, err := store.ReadAll(ctx, minPosition(final), batchSize)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			break
		}
		events, err := decodeAll(recs)
		if err != nil {
			return err
		}
		if final, err = r.applyEvents(ctx, tx, recs, events, final); err != nil {
			return err
		}
	}
	for _, t := range tables {
		var stmts []string
		if db.Dialect == sqldb.Postgres {
			renames, err := postgresIndexRenames(ctx, sqlTx, t)
			if err != nil {
				return err
			}
			// Dropping a table is cheap on Postgres (its files go).
			stmts = append([]string{
				`ALTER TABLE ` + t + ` RENAME TO ` + t + oldSuffix,
				`ALTER TABLE ` + t + nextSuffix + ` RENAME TO ` + t,
				`DROP TABLE ` + t + oldSuffix,
			}, renames...)
		} else {
			// SQLite frees a dropped table or index page by page, holding
			// the gateway's writer: at 10M events the old invoices took
			// 0.9 s, each of its indexes 60 ms. The old table keeps its
			// indexes under other names (renameSQLiteIndexes) and goes
			// after the swap (dropOldTables).
			old, err := sqliteIndexesOf(ctx, sqlTx, t)
			if err != nil {
				return err
			}
			for _, ix := range old {
				aside, _, err := indexSQLFor(ix, t, ix.name+oldSuffix, t+oldSuffix)
				if err != nil {
					return err
				}
				// First: the new indexes take these names.
				indexes = append([]sqliteIndexRename{{shadow: ix.name, live: ix.name + oldSuffix, sql: aside}}, indexes...)
			}
			stmts = append(stmts,
				`ALTER TABLE `+t+` RENAME TO `+t+oldSuffix,
				`ALTER TABLE `+t+nextSuffix+` RENAME TO `+t)
		}
		for _, stmt := range stmts {
			if _, err := sqlTx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("rebuild: swap %s: %w", t, err)
			}
		}
	}
	if err := renameSQLiteIndexes(ctx, sqlTx, indexes); err != nil {
		return err
	}
	for _, p := range r.projectors {
		if _, err := sqlTx.ExecContext(ctx, db.Q(`UPDATE projection_checkpoints SET position = ? WHERE name = ?`), final[p.Name()].String(), p.Name()); err != nil {
			return err
		}
		if _, err := sqlTx.ExecContext(ctx, db.Q(`DELETE FROM projection_checkpoints WHERE name = ?`), r.checkpointName(p)); err != nil {
			return err
		}
	}
	return sqlTx.Commit()
}

// oldSuffix names a live table swapped out, until it is dropped.
const oldSuffix = "__old"

// dropOldTables drops the tables a swap replaced that are still there (on
// SQLite, after the swap; or left by a rebuild that stopped between its
// swap and their drop), one statement each: each holds the gateway's
// writer for one table only.
func dropOldTables(ctx context.Context, db sqldb.DB, tables []string, yield func(context.Context)) error {
	for _, t := range tables {
		old := t + oldSuffix
		if db.Dialect == sqldb.SQLite {
			indexes, err := sqliteIndexesOf(ctx, db.Write, old)
			if err != nil {
				return err
			}
			for _, ix := range indexes {
				yield(ctx)
				if _, err := db.Write.ExecContext(ctx, `DROP INDEX `+ix.name); err != nil {
					return fmt.Errorf("rebuild: drop %s: %w", ix.name, err)
				}
			}
		}
		yield(ctx)
		if _, err := db.Write.ExecContext(ctx, `DROP TABLE IF EXISTS `+old); err != nil {
			return fmt.Errorf("rebuild: drop %s: %w", old, err)
		}
	}
	return nil
}

// sqliteIndex is an index's row of sqlite_schema.
type sqliteIndex struct{ name, sql string }

// sqliteIndexesOf gives table t's indexes but those SQLite keeps for its
// keys (which go with the table).
func sqliteIndexesOf(ctx context.Context, q interface {
	QueryContext(context.Context, string, ...any) (*sql.Rows, error)
}, t string) ([]sqliteIndex, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name`, t)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []sqliteIndex
	for rows.Next() {
		var ix sqliteIndex
		if err := rows.Scan(&ix.name, &ix.sql); err != nil {
			return nil, err
		}
		out = append(out, ix)
	}
	return out, rows.Err()
}

// postgresIndexRenames gives the live table's index names to the rebuilt
// table's matching indexes (CREATE TABLE … LIKE named them after the
// shadow table), as statements to run once the live table is dropped: a
// later migration that names an index must find it.
func postgresIndexRenames(ctx context.Context, tx *sql.Tx, t string) ([]string, error) {
	defs := func(table string) (map[string]string, error) {
		// The definition after "ON <table>", the column list and options.
		rows, err := tx.QueryContext(ctx, `SELECT i.relname, regexp_replace(pg_get_indexdef(i.oid), '^.* ON [^ ]+ ', '')
			FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid WHERE x.indrelid = $1::regclass`, table)
		if err != nil {
			return nil, fmt.Errorf("rebuild: indexes of %s: %w", table, err)
		}
		defer rows.Close()
		out := map[string]string{}
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				return nil, err
			}
			out[def] = name
		}
		return out, rows.Err()
	}
	live, err := defs(t)
	if err != nil {
		return nil, err
	}
	next, err := defs(t + nextSuffix)
	if err != nil {
		return nil, err
	}
	var out []string
	for def, name := range next {
		if liveName, ok := live[def]; ok && liveName != name {
			out = append(out, `ALTER INDEX `+name+` RENAME TO `+liveName)
		}
	}
	sort.Strings(out)
	return out, nil
}

func checkpointsIn(ctx context.Context, tx *sql.Tx, db sqldb.DB, r *Runner) (map[string]eventstore.Position, error) {
	cps := map[string]eventstore.Position{}
	for _, p := range r.projectors {
		var s string
		err := tx.QueryRowContext(ctx, db.Q(`SELECT position FROM projection_checkpoints WHERE name = ?`), r.checkpointName(p)).Scan(&s)
		if errors.Is(err, sql.ErrNoRows) {
			cps[p.Name()] = eventstore.Start
			continue
		}
		if err != nil {
			return nil, err
		}
		if cps[p.Name()], err = eventstore.ParsePosition(s); err != nil {
			return nil, err
		}
	}
	return cps, nil
}

// Status is one projection's position and how far it is behind.
type Status struct {
	Name     string
	Position eventstore.Position
	Behind   int64         // events not yet applied; -1 if the store cannot count
	Lag      time.Duration // age of the oldest unapplied event
}

// Statuses reports every live projection; lag is measured at now.
func Statuses(ctx context.Context, store eventstore.Store, db sqldb.DB, now time.Time) ([]Status, error) {
	r := NewRunner(store, db, nil)
	cps, err := r.readCheckpoints(ctx)
	if err != nil {
		return nil, err
	}
	var out []Status
	for _, p := range r.projectors {
		st := Status{Name: p.Name(), Position: cps[p.Name()], Behind: -1}
		if c, ok := store.(Counter); ok {
			if st.Behind, err = c.CountAfter(ctx, st.Position); err != nil {
				return nil, err
			}
		}
		next, err := store.ReadAll(ctx, st.Position, 1)
		if err != nil {
			return nil, err
		}
		if len(next) > 0 {
			st.Lag = now.Sub(next[0].RecordedAt)
		}
		out = append(out, st)
	}
	return out, nil
}
