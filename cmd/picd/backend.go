package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/btc"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/sim"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/eventstore/esdb"
	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/follow"
	"github.com/acceptcryptohere/gateway/opstore"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// backend is the configured event store and read-model database, migrated.
type backend struct {
	store   eventstore.Store
	db      sqldb.DB
	closers []func() error
}

func (b *backend) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		_ = b.closers[i]()
	}
}

func openBackend(ctx context.Context, cfg Config, log *slog.Logger) (*backend, error) {
	return openBackendMode(ctx, cfg, log, false)
}

// openReadOnly opens the configured backend without migrating anything: it
// fails with eventstore.ErrNotMigrated or sqldb.ErrNotMigrated when a schema
// lags this build, and pings the databases so that an unreachable one is
// told apart. For picd audit, which must not change what it inspects.
func openReadOnly(ctx context.Context, cfg Config, log *slog.Logger) (*backend, error) {
	return openBackendMode(ctx, cfg, log, true)
}

func openBackendMode(ctx context.Context, cfg Config, log *slog.Logger, readOnly bool) (*backend, error) {
	b := &backend{}
	switch cfg.Store {
	case "sqlite":
		path := embeddedPath(cfg)
		if err := checkDBFile(path); err != nil {
			return nil, err
		}
		var opts []sqlite.Option
		if readOnly {
			opts = append(opts, sqlite.CheckOnly())
		}
		s, err := sqlite.Open(path, opts...)
		if err != nil {
			return nil, err
		}
		b.store, b.closers = s, append(b.closers, s.Close)
		b.db = sqldb.DB{Read: s.DB(), Write: s.WriteDB(), Dialect: sqldb.SQLite, LogTable: s.LogTable()}
		log.Info("embedded store", "path", path)
	case "postgres", "esdb":
		// Two pools: HTTP reads may use many connections at once, and must
		// never make the projector (which every write waits for) queue for
		// one.
		read, err := openPostgres(cfg, "read")
		if err != nil {
			return nil, fmt.Errorf("read-model database: %w", err)
		}
		read.SetMaxOpenConns(24)
		read.SetMaxIdleConns(24)
		write, err := openPostgres(cfg, "write")
		if err != nil {
			read.Close()
			return nil, fmt.Errorf("read-model database: %w", err)
		}
		write.SetMaxOpenConns(12)
		write.SetMaxIdleConns(12)
		b.closers = append(b.closers, read.Close, write.Close)
		b.db = sqldb.DB{Read: read, Write: write, Dialect: sqldb.Postgres}
		if readOnly {
			if err := read.PingContext(ctx); err != nil {
				b.close()
				return nil, fmt.Errorf("read-model database: %w", err)
			}
		}
		if cfg.Store == "postgres" {
			dsn, err := postgresDSN(cfg, "events")
			if err != nil {
				b.close()
				return nil, err
			}
			s, err := postgres.Open(ctx, dsn)
			if err != nil {
				b.close()
				return nil, err
			}
			b.closers = append(b.closers, s.Close)
			migrate := s.Migrate
			if readOnly {
				migrate = s.CheckMigrated
			}
			if err := migrate(ctx); err != nil {
				b.close()
				return nil, err
			}
			b.store, b.db.LogTable = s, s.LogTable()
		} else {
			s, err := esdb.Open(cfg.EventStoreURL)
			if err != nil {
				b.close()
				return nil, err
			}
			b.store, b.closers = s, append(b.closers, s.Close)
		}
	}
	b.db.CheckOnly = readOnly
	if err := projections.Migrate(ctx, b.db); err != nil {
		b.close()
		return nil, err
	}
	for _, migrate := range []func(context.Context, sqldb.DB) error{follow.MigrateLease, opstore.Migrate, webhooks.Migrate, chain.Migrate, btc.Migrate, eth.Migrate, tron.Migrate, sim.Migrate} {
		if err := migrate(ctx, b.db); err != nil {
			b.close()
			return nil, err
		}
	}
	b.db.CheckOnly = false
	return b, nil
}

// postgresDSN is the configured Postgres URL with this process's
// application_name (instance id and role: read, write, events, lease), so
// pg_stat_activity tells which instance holds which session, and, in
// serve, a bound on idling inside a transaction.
func postgresDSN(cfg Config, role string) (string, error) {
	params := map[string]string{"application_name": sqldb.ApplicationName("picd " + cfg.InstanceID + " " + role)}
	if cfg.idleInTx > 0 {
		params["idle_in_transaction_session_timeout"] = fmt.Sprint(cfg.idleInTx.Milliseconds())
	}
	return sqldb.Params(cfg.PostgresURL, params)
}

// openPostgres opens a database/sql handle of role whose transactions
// check the leader's fence (sqldb.WithFence).
func openPostgres(cfg Config, role string) (*sql.DB, error) {
	dsn, err := postgresDSN(cfg, role)
	if err != nil {
		return nil, err
	}
	return sqldb.OpenPostgres(dsn)
}

// sqliteHeader begins every SQLite 3 database file.
const sqliteHeader = "SQLite format 3\x00"

// embeddedPath is the embedded store's file.
func embeddedPath(cfg Config) string { return filepath.Join(cfg.DataDir, "picd.db") }

// checkDBFile refuses a file at path that is not a picd database: an empty
// one (a failed copy or restore, a full disk) would otherwise be taken for
// a new, empty log, and another program's SQLite database would get picd's
// tables. A missing file is fine: the first start creates it.
func checkDBFile(path string) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, head)
	switch {
	case n == 0 && (err == io.EOF || err == nil):
		return fmt.Errorf("%s is empty (0 bytes), not a picd database: restore it from a backup, or remove it to start a new, empty log", path)
	case string(head[:n]) != sqliteHeader:
		return fmt.Errorf("%s is not an SQLite database (it does not begin with %q): not a picd event log; point --data (PIC_DATA_DIR) at the gateway's data directory", path, strings.TrimRight(sqliteHeader, "\x00"))
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	// An escaped file: URI, as eventstore/sqlite opens it; query_only: a
	// look that writes nothing.
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: "_pragma=query_only(1)&_pragma=busy_timeout(5000)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer rows.Close()
	var tables []string
	ours := false
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		tables = append(tables, name)
		ours = ours || name == "events" || name == "schema_migrations"
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if len(tables) > 0 && !ours {
		if len(tables) > 5 {
			tables = append(tables[:5], "…")
		}
		return fmt.Errorf("%s is another program's SQLite database (tables %s), not a picd event log: point --data (PIC_DATA_DIR) at the gateway's data directory", path, strings.Join(tables, ", "))
	}
	return nil
}
