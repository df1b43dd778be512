package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/acceptcryptohere/gateway/eventstore/sqlite"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// addressLike finds what must never reach a merchant: an IPv4 or IPv6
// address, a host:port, the name of a resolver, a CIDR range.
var addressLike = regexp.MustCompile(`\d+\.\d+\.\d+\.\d+|\[?[0-9a-f]*:[0-9a-f:]+\]?|:\d+|/\d+\b|lookup|dial|\bon \S+`)

// Issue #17, finding 8: what a merchant sees of a failed attempt (the
// stored delivery log, GET /v1/webhooks/deliveries, and POST
// /v1/webhooks/test) is a category, never a resolved address, a port, the
// resolver or a Go error string; the details go to the operator's log.
func TestAttemptErrorsAreGeneric(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(rc.srv.URL, "http://"))
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	t.Cleanup(slow.Close)
	selfSigned := httptest.NewUnstartedServer(http.NotFoundHandler())
	selfSigned.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake it refuses
	selfSigned.StartTLS()
	t.Cleanup(selfSigned.Close)
	// A loopback port nobody listens on, taken after the servers above: a
	// port freed before them could be given to one of them (a CI run's
	// "closed" port answered 200 as the slow server).
	closed := func() string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}()
	m := e.merchant("Shop", rc.srv.URL)
	e.sync()

	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	strict := e.worker(Config{AttemptTimeout: 300 * time.Millisecond, Logger: logger})
	// A TLS handshake on a loaded machine can take longer than 300 ms: only
	// the slow receiver's case waits for the short timeout.
	open := e.worker(Config{AllowPrivate: true, AttemptTimeout: 10 * time.Second, Logger: logger})
	impatient := e.worker(Config{AllowPrivate: true, AttemptTimeout: 300 * time.Millisecond, Logger: logger})
	for _, c := range []struct {
		w      *Worker
		url    string
		want   string
		detail string // in the operator's log
	}{
		{strict, "http://10.1.2.3/ipn", "refused: private address", "10.1.2.3"},
		{strict, "http://169.254.169.254/latest/meta-data/", "refused: private address", "169.254.169.254"},
		{strict, "http://localhost:" + port + "/ipn", "refused: private address", "127.0.0.1"},
		{strict, "http://[::1]:" + port + "/", "refused: private address", "::1"},
		{open, "http://" + closed + "/ipn", "connection refused", closed},
		{open, "https://" + strings.TrimPrefix(rc.srv.URL, "http://") + "/ipn", "tls: handshake failed", "HTTPS"},
		{open, selfSigned.URL + "/ipn", "tls: certificate not trusted", "x509"},
		{impatient, slow.URL, "timeout: no response within 300ms", ""},
		{open, "http://no-such-host.invalid/ipn", "dns: ", "no-such-host.invalid"},
	} {
		e.setURL(m.MerchantID, c.url)
		e.sync()
		logs.Reset()
		a, err := c.w.SendTest(e.ctx, m.MerchantID)
		if err != nil || a.OK() {
			t.Fatalf("%s: %+v %v", c.url, a, err)
		}
		if !strings.HasPrefix(a.Error, c.want) || addressLike.MatchString(a.Error) {
			t.Errorf("%s: the merchant sees %q, want %q and no address", c.url, a.Error, c.want)
		}
		if !strings.Contains(logs.String(), c.detail) {
			t.Errorf("%s: the operator's log lacks %q: %s", c.url, c.detail, logs.String())
		}
	}

	// The stored delivery log says the same.
	e.setURL(m.MerchantID, "http://10.9.8.7/ipn")
	e.observe(e.invoice(m.MerchantID), "1")
	e.sync()
	if n, err := strict.Pass(e.ctx); err != nil || n != 1 {
		t.Fatalf("pass: %d %v", n, err)
	}
	d := e.all(strict, m.MerchantID)[0]
	raw, err := json.Marshal(d.JSON())
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Attempts) != 1 || d.Attempts[0].Error != "refused: private address" || strings.Contains(string(raw), "10.9.8.7") {
		t.Fatalf("stored attempt: %+v", d.Attempts)
	}
}

// Attempts stored before the errors became generic are rewritten by the
// webhook tables' migration 0002: nothing stored keeps an address.
func TestStoredAttemptErrorsMigrated(t *testing.T) {
	for name, newDB := range map[string]func(*testing.T, *sqlite.Store) sqldb.DB{"sqlite": embedded, "postgres": postgresDB} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			store, err := sqlite.Open(filepath.Join(t.TempDir(), "events.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			db := newDB(t, store)
			first, err := fs.Sub(migrations, "migrations")
			if err != nil {
				t.Fatal(err)
			}
			only := fstest.MapFS{}
			for _, d := range []string{"sqlite", "postgres"} {
				raw, err := fs.ReadFile(first, d+"/0001_webhooks.sql")
				if err != nil {
					t.Fatal(err)
				}
				only["m/"+d+"/0001_webhooks.sql"] = &fstest.MapFile{Data: raw}
			}
			if err := sqldb.ApplyMigrations(ctx, db, only, "m", "webhook_migrations"); err != nil {
				t.Fatal(err)
			}
			old := map[string]string{
				`refused: Post "http://10.1.2.3/ipn": dial tcp 10.1.2.3:80: webhooks: destination address not allowed (set PIC_WEBHOOK_ALLOW_PRIVATE=true to allow private addresses): 10.1.2.3 is in 10.0.0.0/8`: "refused: private address",
				`Post "http://127.0.0.1:43071/ipn": dial tcp 127.0.0.1:43071: connect: connection refused`:                                                                                                        "connection refused",
				`Post "http://shop.internal/ipn": dial tcp: lookup shop.internal on 10.255.255.53:53: no such host`:                                                                                               "dns: host not found",
				`Post "http://shop.internal/ipn": dial tcp: lookup shop.internal on 10.255.255.53:53: server misbehaving`:                                                                                         "dns: lookup failed",
				`Post "https://10.0.0.9:8443/ipn": tls: failed to verify certificate: x509: certificate is valid for a.example, not 10.0.0.9`:                                                                     "tls: certificate not trusted",
				`Post "https://10.0.0.9/ipn": http: server gave HTTP response to HTTPS client`:                                                                                                                    "tls: handshake failed",
				`Post "http://10.0.0.9/ipn": read tcp 10.0.0.2:5123->10.0.0.9:80: read: connection reset by peer`:                                                                                                 "connection closed by the endpoint",
				`bad request: parse "http://a b": invalid character " " in host name`:                                                                                                                             "webhook_url is not a valid URL",
				`Post "http://10.0.0.9/ipn": dial tcp 10.0.0.9:80: connect: no route to host`:                                                                                                                     "connection failed",
				"timeout: no response within 10s":                  "timeout: no response within 10s",
				"HTTP 500 Internal Server Error":                   "HTTP 500 Internal Server Error",
				"redirect not followed: 302 Found":                 "redirect not followed: 302 Found",
				"webhook_url is not an absolute http or https URL": "webhook_url is not an absolute http or https URL",
				"": "",
			}
			n := 0
			for stored := range old {
				n++
				if _, err := db.Write.ExecContext(ctx, db.Q(`INSERT INTO webhook_attempts (delivery_id, attempt, at, error, latency_ms) VALUES (?, 1, 0, ?, 0)`),
					fmt.Sprint("whd_", n), stored); err != nil {
					t.Fatal(err)
				}
			}
			if err := Migrate(ctx, db); err != nil {
				t.Fatal(err)
			}
			rows, err := db.Read.QueryContext(ctx, `SELECT error FROM webhook_attempts`)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			got := map[string]int{}
			for rows.Next() {
				var e string
				if err := rows.Scan(&e); err != nil {
					t.Fatal(err)
				}
				got[e]++
			}
			want := map[string]int{}
			for _, w := range old {
				want[w]++
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("after the migration %v, want %v", got, want)
			}
		})
	}
}
