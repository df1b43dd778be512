package projections

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// compareBatch is how many invoices or payouts one read-model query looks up.
const compareBatch = 500

// rowBatch gathers what the log says of invoices or payouts, by id, to
// compare with their read-model rows a batch at a time, looked up by id:
// the store's order of stream names need not be the read model's order of
// ids (collations).
type rowBatch[T any] struct {
	want map[string]T
	// size is how many one lookup compares (0: compareBatch).
	size int
	// found counts the rows the lookups found: more rows in the table are
	// ones the log does not have.
	found int64
	// stmts: the lookup prepared once per number of ids (nearly always
	// size), not once per batch.
	stmts map[int]*sql.Stmt
}

// close releases the prepared lookups.
func (b *rowBatch[T]) close() {
	for _, st := range b.stmts {
		st.Close()
	}
	b.stmts = nil
}

// add puts id in the batch and reports whether the batch is full.
func (b *rowBatch[T]) add(id string, w T) (full bool) {
	if b.want == nil {
		b.want = make(map[string]T, cmp.Or(b.size, compareBatch))
	}
	b.want[id] = w
	return len(b.want) >= cmp.Or(b.size, compareBatch)
}

// lookup runs query, which selects the rows whose id is IN the list it
// ends with, for the batch's ids. scan reads a row and returns its id;
// compare gets each row found with what the log says, missing each id
// without a row. The batch is empty after.
func (b *rowBatch[T]) lookup(ctx context.Context, rep *AuditReport, db sqldb.DB, what, query string,
	scan func(*sql.Rows) (string, error), compare, missing func(id string, w T)) error {
	if len(b.want) == 0 {
		return nil
	}
	ids := make([]any, 0, len(b.want))
	for id := range b.want {
		ids = append(ids, id)
	}
	st := b.stmts[len(ids)]
	if st == nil {
		var err error
		if st, err = db.Read.PrepareContext(ctx, db.Q(query+` (?`+strings.Repeat(", ?", len(ids)-1)+`)`)); err != nil {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
		if b.stmts == nil {
			b.stmts = map[int]*sql.Stmt{}
		}
		b.stmts[len(ids)] = st
	}
	rows, err := st.QueryContext(ctx, ids...)
	if err != nil {
		return fmt.Errorf("audit: %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		id, err := scan(rows)
		if err != nil {
			return err
		}
		rep.RowsCompared++
		b.found++
		w, ok := b.want[id]
		if !ok {
			continue // a duplicate id: the table's key forbids it
		}
		delete(b.want, id)
		compare(id, w)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	for id, w := range b.want {
		missing(id, w)
	}
	clear(b.want)
	return nil
}

// extraRows names the rows of a read model that the log does not have,
// the slow path of a read model that is wrong already: page selects the
// rows after an id in id order (a limited page; the id first), scan reads
// one, and inLog looks it up in the log. It stops once n are named.
func extraRows[R any](ctx context.Context, rep *AuditReport, db sqldb.DB, what, page string, n int64,
	scan func(*sql.Rows) (string, R, error), inLog func(R) (bool, error)) error {
	after := ""
	for n > 0 {
		rows, err := db.Read.QueryContext(ctx, db.Q(page), after)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
		type row struct {
			id string
			r  R
		}
		var got []row
		for rows.Next() {
			id, r, err := scan(rows)
			if err != nil {
				rows.Close()
				return err
			}
			got = append(got, row{id, r})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(got) == 0 {
			return nil
		}
		after = got[len(got)-1].id
		for _, r := range got {
			ok, err := inLog(r.r)
			if err != nil {
				return err
			}
			if !ok {
				rep.problem("%s %s: in the read model, not in the log", strings.TrimSuffix(what, "s"), r.id)
				if n--; n == 0 {
					return nil
				}
			}
		}
	}
	return nil
}

// countRows counts a read model's rows.
func countRows(ctx context.Context, db sqldb.DB, table string) (int64, error) {
	var n int64
	if err := db.Read.QueryRowContext(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil {
		return 0, fmt.Errorf("audit: %s: %w", table, err)
	}
	return n, nil
}
