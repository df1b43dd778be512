package webhooks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// A leader that loses its lease between send's check and the write of the
// request (a pause, issue #27) writes nothing: the receiver sees no request.
func TestPostWritesNothingOnceTheLeaseIsLost(t *testing.T) {
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Add(1)
	}))
	defer srv.Close()
	w := NewWorker(sqldb.DB{}, Config{AllowPrivate: true})
	ep := endpoint{url: srv.URL, secret: "whsec_test"}

	var held atomic.Bool
	ctx := sqldb.WithFence(context.Background(), &sqldb.Fence{Held: held.Load})
	held.Store(true)
	if a, _ := w.post(ctx, ep, "invoice.paid", "whd_1", []byte(`{}`)); !a.OK() || got.Load() != 1 {
		t.Fatalf("with the lease held: attempt %+v, %d requests received", a, got.Load())
	}
	held.Store(false)
	a, _ := w.post(ctx, ep, "invoice.paid", "whd_2", []byte(`{}`))
	if a.OK() || a.Error == "" || got.Load() != 1 {
		t.Fatalf("after the lease was lost: attempt %+v, %d requests received (want 1)", a, got.Load())
	}
}
