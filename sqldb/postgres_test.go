package sqldb_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/sqldb/sqldbtest"
)

// PgxConn finds pgx's connection under a fenced handle (OpenPostgres) and
// a plain one: a rebuild writes its rows with COPY through it.
func TestPgxConn(t *testing.T) {
	ctx := context.Background()
	fenced, err := sqldb.OpenPostgres(sqldbtest.PostgresURL())
	if err != nil {
		t.Fatal(err)
	}
	defer fenced.Close()
	plain := sqldbtest.Postgres(t, "pgx").Write
	for _, db := range []*sql.DB{fenced, plain} {
		conn, err := db.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		err = conn.Raw(func(dc any) error {
			c, ok := sqldb.PgxConn(dc)
			if !ok {
				t.Errorf("no pgx connection under %T", dc)
				return nil
			}
			var one int
			return c.QueryRow(ctx, `SELECT 1`).Scan(&one)
		})
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}
