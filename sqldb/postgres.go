package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// Params returns dsn (a URL or key=value string, as pgx reads both) with
// the given run-time parameters set, replacing any the dsn had. Postgres
// takes any setting in the startup message, so every connection of a pool
// opened with the result starts with them: application_name (shown in
// pg_stat_activity, so an operator sees which instance and role holds a
// session), idle_in_transaction_session_timeout.
func Params(dsn string, params map[string]string) (string, error) {
	if _, err := pgx.ParseConfig(dsn); err != nil {
		return "", fmt.Errorf("postgres url: %w", err)
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", fmt.Errorf("postgres url: %w", err)
		}
		q := u.Query()
		for k, v := range params {
			q.Set(k, v)
		}
		// pgx reads "+" literally: spaces as %20 (a "+" is %2B already).
		u.RawQuery = strings.ReplaceAll(q.Encode(), "+", "%20")
		return u.String(), nil
	}
	// key=value form: a later key wins.
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(params[k])
		dsn += " " + k + "='" + v + "'"
	}
	return dsn, nil
}

// ApplicationName is name cut to what Postgres keeps.
func ApplicationName(name string) string {
	if len(name) > ApplicationNameMax {
		return name[:ApplicationNameMax]
	}
	return name
}

// ApplicationNameMax is Postgres's limit (NAMEDATALEN - 1); longer names are cut.
const ApplicationNameMax = 63

// OpenPostgres opens a database/sql handle over pgx whose transactions
// check the Fence their context carries (see WithFence).
func OpenPostgres(dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres url: %w", err)
	}
	return sql.OpenDB(fencedConnector{stdlib.GetConnector(*cfg)}), nil
}

// ErrFenced: the write carried a fence that no longer holds (another
// process took the lease over); nothing of it was written.
var ErrFenced = errors.New("sqldb: fenced: the lease this write carries is no longer held")

// Fence is what a background write of a lease holder carries in its
// context: the store checks it inside the write's transaction, so a
// process that lost its lease (paused, cut off) writes nothing after the
// takeover, whatever its loops still try.
type Fence struct {
	// Query returns a row only while the lease is held, and locks what it
	// read for the rest of the transaction, so a takeover waits for the
	// transaction to end (Postgres: SELECT ... FOR KEY SHARE).
	Query string
	Args  []any
	// Held is the holder's own view, without the database: false once it
	// cannot be sure of its lease. Checked first, and before every
	// statement outside a transaction.
	Held func() bool
}

type fenceKey struct{}

// WithFence returns ctx carrying f: transactions begun with it (or a
// context derived from it) on a handle of OpenPostgres check f first.
// A nil f takes away the fence of ctx.
func WithFence(ctx context.Context, f *Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

// FenceOf returns the fence ctx carries, or nil.
func FenceOf(ctx context.Context) *Fence {
	f, _ := ctx.Value(fenceKey{}).(*Fence)
	return f
}

// Held reports whether ctx's fence holds in its holder's own view (true
// without one). Checked before an effect outside the database (a webhook
// sent) that no transaction can fence.
func Held(ctx context.Context) bool {
	f := FenceOf(ctx)
	return f == nil || f.Held == nil || f.Held()
}

// CheckFence runs ctx's fence inside tx (a transaction of any handle):
// nil when ctx carries none or it holds, ErrFenced when it does not.
func CheckFence(ctx context.Context, tx *sql.Tx) error {
	f := FenceOf(ctx)
	if f == nil {
		return nil
	}
	if f.Held != nil && !f.Held() {
		return ErrFenced
	}
	var one int
	err := tx.QueryRowContext(ctx, f.Query, f.Args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrFenced
	}
	return err
}

type fencedConnector struct{ driver.Connector }

func (c fencedConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.Connector.Connect(ctx)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(*stdlib.Conn)
	if !ok {
		return conn, nil
	}
	return &fencedConn{Conn: sc}, nil
}

// fencedConn is pgx's connection, with the fence checked as the first
// statement of every transaction, and around statements sent outside one.
type fencedConn struct {
	*stdlib.Conn
	inTx atomic.Bool
}

func (c *fencedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	f := FenceOf(ctx)
	if f != nil && f.Held != nil && !f.Held() {
		return nil, ErrFenced
	}
	tx, err := c.Conn.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	if f != nil {
		if err := c.check(ctx, f); err != nil {
			_ = tx.Rollback()
			return nil, err
		}
	}
	c.inTx.Store(true)
	return fencedTx{tx, c}, nil
}

func (c *fencedConn) check(ctx context.Context, f *Fence) error {
	args := make([]driver.NamedValue, len(f.Args))
	for i, a := range f.Args {
		args[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
	}
	rows, err := c.Conn.QueryContext(ctx, f.Query, args)
	if err != nil {
		return err
	}
	dest := make([]driver.Value, len(rows.Columns()))
	err = rows.Next(dest)
	cerr := rows.Close()
	switch {
	case err == io.EOF:
		return ErrFenced
	case err != nil:
		return err
	}
	return cerr
}

// ExecContext outside a transaction with a fence runs in one of its own,
// so the fence covers it too.
func (c *fencedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	f := FenceOf(ctx)
	if f == nil || c.inTx.Load() {
		return c.Conn.ExecContext(ctx, query, args)
	}
	tx, err := c.BeginTx(ctx, driver.TxOptions{})
	if err != nil {
		return nil, err
	}
	res, err := c.Conn.ExecContext(ctx, query, args)
	if err != nil {
		_ = tx.Rollback()
		return nil, err
	}
	return res, tx.Commit()
}

// QueryContext outside a transaction with a fence checks only the
// holder's own view: a query that writes (INSERT ... RETURNING) belongs
// in a transaction.
func (c *fencedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	if f := FenceOf(ctx); f != nil && !c.inTx.Load() && f.Held != nil && !f.Held() {
		return nil, ErrFenced
	}
	return c.Conn.QueryContext(ctx, query, args)
}

type fencedTx struct {
	driver.Tx
	c *fencedConn
}

func (t fencedTx) Commit() error {
	t.c.inTx.Store(false)
	return t.Tx.Commit()
}

func (t fencedTx) Rollback() error {
	t.c.inTx.Store(false)
	return t.Tx.Rollback()
}

// PgxConn is the pgx connection under a database/sql driver connection
// (sql.Conn.Raw's argument) of a pgx handle, fenced (OpenPostgres) or not:
// for what database/sql does not offer, such as COPY. ok is false for
// another driver.
func PgxConn(driverConn any) (c *pgx.Conn, ok bool) {
	switch dc := driverConn.(type) {
	case *fencedConn:
		return dc.Conn.Conn(), true
	case *stdlib.Conn:
		return dc.Conn(), true
	}
	return nil, false
}
