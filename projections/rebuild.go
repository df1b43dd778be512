package projections

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"
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
const rebuildBatchSize = 10000

// nextSuffix marks the tables and checkpoints of a rebuild in progress.
const nextSuffix = "__next"

// tableRename rewrites a projector's table names in its SQL, so the same
// projector code fills the new tables during a rebuild.
type tableRename struct {
	re *regexp.Regexp
}

func newTableRename(tables []string) *tableRename {
	quoted := make([]string, len(tables))
	for i, t := range tables {
		quoted[i] = regexp.QuoteMeta(t)
	}
	return &tableRename{re: regexp.MustCompile(`\b(` + strings.Join(quoted, "|") + `)\b`)}
}

func (t *tableRename) apply(query string) string {
	if t == nil {
		return query
	}
	return t.re.ReplaceAllString(query, "${1}"+nextSuffix)
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
	var tables []string
	plain := make([]Projector, len(projectors))
	for i, p := range projectors {
		tables = append(tables, p.Tables()...)
		plain[i] = p
	}
	if err := createShadowTables(ctx, db, tables); err != nil {
		return err
	}
	r := NewRunner(store, db, nil, plain...)
	r.suffix, r.tables = nextSuffix, newTableRename(tables)
	// On Postgres too: a batch's long write transaction no longer holds the
	// serving gateway's log readers back (they wait only for appends).
	r.batchSize = rebuildBatchSize
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
	if err := r.CatchUp(ctx); err != nil {
		return fmt.Errorf("rebuild: %w", err)
	}
	if err := swap(ctx, store, db, r, tables, now); err != nil {
		return err
	}
	return settleIndexes(ctx, db, tables)
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

// createShadowTables creates <table>__next with the live table's columns
// and indexes, dropping a leftover of an interrupted rebuild first.
func createShadowTables(ctx context.Context, db sqldb.DB, tables []string) error {
	for _, t := range tables {
		next := t + nextSuffix
		if _, err := db.Write.ExecContext(ctx, `DROP TABLE IF EXISTS `+next); err != nil {
			return err
		}
		if db.Dialect == sqldb.Postgres {
			if _, err := db.Write.ExecContext(ctx, `CREATE TABLE `+next+` (LIKE `+t+` INCLUDING ALL)`); err != nil {
				return fmt.Errorf("rebuild: create %s: %w", next, err)
			}
			continue
		}
		if err := copySQLiteSchema(ctx, db.Write, t, next); err != nil {
			return err
		}
	}
	return nil
}

var indexSuffix = regexp.MustCompile(`__g\d+$`)

// copySQLiteSchema recreates table t as next from sqlite_master, with its
// indexes under new names (index names are global in SQLite).
func copySQLiteSchema(ctx context.Context, db *sql.DB, t, next string) error {
	var tableSQL string
	if err := db.QueryRowContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?`, t).Scan(&tableSQL); err != nil {
		return fmt.Errorf("rebuild: schema of %s: %w", t, err)
	}
	head := regexp.MustCompile(`(?i)^CREATE TABLE\s+"?` + regexp.QuoteMeta(t) + `"?`)
	if _, err := db.ExecContext(ctx, head.ReplaceAllString(tableSQL, "CREATE TABLE "+next)); err != nil {
		return fmt.Errorf("rebuild: create %s: %w", next, err)
	}
	rows, err := db.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`, t)
	if err != nil {
		return err
	}
	type index struct{ name, sql string }
	var indexes []index
	for rows.Next() {
		var ix index
		if err := rows.Scan(&ix.name, &ix.sql); err != nil {
			rows.Close()
			return err
		}
		indexes = append(indexes, ix)
	}
	rows.Close()
	// Index names are global in SQLite: each rebuild's must differ from
	// the live table's (named by the rebuild before).
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	gen := fmt.Sprintf("__g%d", binary.BigEndian.Uint64(nonce[:])>>1)
	for _, ix := range indexes {
		newName := indexSuffix.ReplaceAllString(ix.name, "") + gen
		re := regexp.MustCompile(`(?i)^CREATE (UNIQUE )?INDEX\s+"?` + regexp.QuoteMeta(ix.name) + `"?\s+ON\s+"?` + regexp.QuoteMeta(t) + `"?`)
		stmt := re.ReplaceAllString(ix.sql, "CREATE ${1}INDEX "+newName+" ON "+next)
		if stmt == ix.sql {
			return fmt.Errorf("rebuild: cannot rewrite index %s", ix.name)
		}
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("rebuild: index %s: %w", newName, err)
		}
	}
	return nil
}

// swap catches the new tables up and puts them live, in one transaction.
func swap(ctx context.Context, store eventstore.Store, db sqldb.DB, r *Runner, tables []string, now func() time.Time) error {
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
		var renames []string
		if db.Dialect == sqldb.Postgres {
			if renames, err = postgresIndexRenames(ctx, sqlTx, t); err != nil {
				return err
			}
		}
		stmts := append([]string{
			`ALTER TABLE ` + t + ` RENAME TO ` + t + `__old`,
			`ALTER TABLE ` + t + nextSuffix + ` RENAME TO ` + t,
			`DROP TABLE ` + t + `__old`,
		}, renames...)
		for _, stmt := range stmts {
			if _, err := sqlTx.ExecContext(ctx, stmt); err != nil {
				return fmt.Errorf("rebuild: swap %s: %w", t, err)
			}
		}
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

// settleIndexes runs after the swap. On Postgres it gathers the rebuilt
// tables' statistics (new tables have none, and the planner would guess).
// On SQLite, where index names are global and cannot be renamed, it builds
// each index again under the live name (migrations' name, without the
// rebuild's __g suffix) and drops the suffixed one, one table per
// transaction.
func settleIndexes(ctx context.Context, db sqldb.DB, tables []string) error {
	if db.Dialect == sqldb.Postgres {
		for _, t := range tables {
			if _, err := db.Write.ExecContext(ctx, `ANALYZE `+t); err != nil {
				return fmt.Errorf("rebuild: analyze %s: %w", t, err)
			}
		}
		return nil
	}
	for _, t := range tables {
		rows, err := db.Write.QueryContext(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL`, t)
		if err != nil {
			return err
		}
		var stmts []string
		for rows.Next() {
			var name, def string
			if err := rows.Scan(&name, &def); err != nil {
				rows.Close()
				return err
			}
			orig := indexSuffix.ReplaceAllString(name, "")
			if orig == name {
				continue
			}
			re := regexp.MustCompile(`(?i)^CREATE (UNIQUE )?INDEX\s+"?` + regexp.QuoteMeta(name) + `"?\s`)
			create := re.ReplaceAllString(def, "CREATE ${1}INDEX "+orig+" ")
			if create == def {
				rows.Close()
				return fmt.Errorf("rebuild: cannot rewrite index %s", name)
			}
			stmts = append(stmts, create, `DROP INDEX `+name)
		}
		rows.Close()
		if len(stmts) == 0 {
			continue
		}
		tx, err := db.Write.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range stmts {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				_ = tx.Rollback()
				return fmt.Errorf("rebuild: rename index of %s: %w", t, err)
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
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
