package main

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/acceptcryptohere/gateway/webhooks"
)

// receiver is a webhook endpoint on loopback. Each merchant gets its own
// path (/hook/<n>), so a delivery is verified with that merchant's secret.
// It counts every arrival per delivery id: a second arrival of an id is a
// duplicate.
type receiver struct {
	ln  net.Listener
	srv *http.Server
	url string

	mu         sync.Mutex
	secrets    []string
	deliveries map[string]*arrival // by x-payincrypto-delivery
	byInvoice  map[string]time.Time
	badSig     int
	malformed  int
}

// arrival is what the receiver saw of one delivery id.
type arrival struct {
	count     int
	first     time.Time
	eventType string
	invoiceID string
	createdAt time.Time // the event's time, from the body
}

func startReceiver(listen string) (*receiver, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	r := &receiver{ln: ln, url: "http://" + ln.Addr().String(), deliveries: map[string]*arrival{}, byInvoice: map[string]time.Time{}}
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// addMerchant registers a merchant's webhook secret and returns its URL.
func (r *receiver) addMerchant(secret string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, secret)
	return r.url + "/hook/" + strconv.Itoa(len(r.secrets)-1)
}

func (r *receiver) close() { _ = r.srv.Close() }

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	now := time.Now()
	raw, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	n, convErr := strconv.Atoi(strings.TrimPrefix(req.URL.Path, "/hook/"))
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil || convErr != nil || n < 0 || n >= len(r.secrets) {
		r.malformed++
		http.Error(w, "unknown hook", http.StatusNotFound)
		return
	}
	if webhooks.Verify(raw, req.Header.Get(webhooks.HeaderSignature), r.secrets[n]) != nil {
		// 401 makes the gateway retry, so a bad signature shows as a
		// missing delivery too.
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var body struct {
		Type      string `json:"type"`
		CreatedAt int64  `json:"created_at"`
		Data      struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	id := req.Header.Get(webhooks.HeaderDelivery)
	if json.Unmarshal(raw, &body) != nil || id == "" {
		r.malformed++
		http.Error(w, "malformed", http.StatusBadRequest)
		return
	}
	a := r.deliveries[id]
	if a == nil {
		a = &arrival{first: now, eventType: body.Type, invoiceID: body.Data.ID, createdAt: time.UnixMilli(body.CreatedAt)}
		r.deliveries[id] = a
		r.byInvoice[body.Data.ID+" "+body.Type] = now
	}
	a.count++
	w.WriteHeader(http.StatusNoContent)
}

// arrivedAt returns when the first delivery of eventType for an invoice arrived.
func (r *receiver) arrivedAt(invoiceID, eventType string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.byInvoice[invoiceID+" "+eventType]
	return t, ok
}

// snapshot copies the arrivals for the report.
func (r *receiver) snapshot() (map[string]arrival, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]arrival, len(r.deliveries))
	for id, a := range r.deliveries {
		out[id] = *a
	}
	return out, r.badSig, r.malformed
}
