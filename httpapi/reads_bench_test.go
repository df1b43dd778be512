package httpapi

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/acceptcryptohere/gateway/eventstore/postgres"
	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// benchReadsDB opens the read models of a generated store (picd generate,
// then picd projections rebuild) named by PIC_BENCH_READS_URL: a Postgres
// URL (its log in the default schema), or sqlite:<path of picd.db>; the
// benchmark is skipped without it. It returns the merchant with the most
// events in the feed (its references, or else its copies).
func benchReadsDB(b *testing.B) (*readapi.SQL, string) {
	url := os.Getenv("PIC_BENCH_READS_URL")
	if url == "" {
		b.Skip("PIC_BENCH_READS_URL (a store filled by picd generate: a Postgres URL or sqlite:<path>) is not set")
	}
	var db sqldb.DB
	if path, ok := strings.CutPrefix(url, "sqlite:"); ok {
		store, err := sqlite.Open(path, sqlite.CheckOnly())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { store.Close() })
		db = sqldb.DB{Read: store.DB(), Write: store.DB(), Dialect: sqldb.SQLite, LogTable: store.LogTable()}
	} else {
		pg, err := sqldb.OpenPostgres(url)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { pg.Close() })
		db = sqldb.DB{Read: pg, Write: pg, Dialect: sqldb.Postgres, LogTable: pgx.Identifier{postgres.DefaultSchema, "events"}.Sanitize()}
	}
	var merchant string
	for _, table := range []string{"event_feed_refs", "event_feed"} {
		err := db.Read.QueryRow(`SELECT merchant_id FROM ` + table + ` GROUP BY merchant_id ORDER BY count(*) DESC LIMIT 1`).Scan(&merchant)
		if err == nil {
			return readapi.NewSQL(db), merchant
		}
		if !errors.Is(err, sql.ErrNoRows) {
			b.Fatal(err)
		}
	}
	b.Fatal("the feed is empty: run picd projections rebuild")
	return nil, ""
}

// BenchmarkEventsPage reads and renders pages of 1,000 of a merchant's
// events as GET /v1/events does, without HTTP: "hand" is the page written
// by appendEventList, "marshal" the same page through json.Marshal as
// before, "render" the rendering alone of a page read once. Reports
// events/s.
func BenchmarkEventsPage(b *testing.B) {
	s, merchant := benchReadsDB(b)
	ctx := context.Background()
	const limit = 1000
	marshal := func(page []readapi.FeedEvent, hasMore bool, after int64) []byte {
		out := eventListJSON{Data: make([]readapi.FeedEventJSON, 0, len(page)), HasMore: hasMore, NextAfter: strconv.FormatInt(after, 10)}
		for _, e := range page {
			out.Data = append(out.Data, e.JSON())
		}
		if len(page) > 0 {
			out.NextAfter = out.Data[len(out.Data)-1].ID
		}
		rec := httptest.NewRecorder()
		writeJSON(rec, http.StatusOK, out)
		return rec.Body.Bytes()
	}
	hand := func(page []readapi.FeedEvent, hasMore bool, after int64) []byte {
		body, err := appendEventList(make([]byte, 0, eventPageBytes(page)), page, hasMore, after)
		if err != nil {
			b.Fatal(err)
		}
		return body
	}
	for _, bc := range []struct {
		name   string
		render func([]readapi.FeedEvent, bool, int64) []byte
	}{{"hand", hand}, {"marshal", marshal}} {
		b.Run(bc.name, func(b *testing.B) {
			var after int64
			events, bytes := 0, 0
			for b.Loop() {
				page, more, err := s.Events(ctx, merchant, after, limit)
				if err != nil {
					b.Fatal(err)
				}
				bytes += len(bc.render(page, more, after))
				events += len(page)
				if after = 0; more {
					after = page[len(page)-1].Seq
				}
			}
			b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(bytes)/float64(b.N), "B/page")
		})
	}
	page, more, err := s.Events(ctx, merchant, 0, limit)
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		render func([]readapi.FeedEvent, bool, int64) []byte
	}{{"render-hand", hand}, {"render-marshal", marshal}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				bc.render(page, more, 0)
			}
			b.ReportMetric(float64(len(page)*b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
	b.Run("read", func(b *testing.B) {
		var after int64
		for b.Loop() {
			page, more, err := s.Events(ctx, merchant, after, limit)
			if err != nil {
				b.Fatal(err)
			}
			if after = 0; more {
				after = page[len(page)-1].Seq
			}
		}
	})
}
