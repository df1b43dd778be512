package main

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/acceptcryptohere/gateway/webhooks"
)

func TestQuantile(t *testing.T) {
	values := make([]float64, 1000)
	for i := range values {
		values[i] = float64(i + 1)
	}
	d := dist(values)
	if d.P50 != 500 || d.P99 != 990 || d.P999 != 999 || d.Max != 1000 || d.N != 1000 {
		t.Fatalf("dist of 1..1000: %+v", d)
	}
	if d := dist([]float64{7}); d.P50 != 7 || d.P999 != 7 {
		t.Fatalf("dist of one value: %+v", d)
	}
	if dist(nil) != nil {
		t.Fatal("dist of nothing should be nil")
	}
}

// TestReceiver: a good signature is counted once per delivery id, a second
// arrival of the id is a duplicate, and a bad signature is refused.
func TestReceiver(t *testing.T) {
	rc, err := startReceiver("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.close()
	url := rc.addMerchant("whsec_test")
	body := []byte(`{"type":"invoice.paid","created_at":1700000000000,"data":{"id":"inv_1"}}`)
	send := func(secret, id string) int {
		req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
		req.Header.Set(webhooks.HeaderSignature, webhooks.Sign(body, secret))
		req.Header.Set(webhooks.HeaderDelivery, id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := send("whsec_test", "whd_1"); code != 204 {
		t.Fatalf("good delivery: %d", code)
	}
	send("whsec_test", "whd_1")
	if code := send("whsec_other", "whd_2"); code != 401 {
		t.Fatalf("bad signature: %d", code)
	}
	got, bad, malformed := rc.snapshot()
	if len(got) != 1 || got["whd_1"].count != 2 || got["whd_1"].invoiceID != "inv_1" || bad != 1 || malformed != 0 {
		t.Fatalf("arrivals %+v, bad %d, malformed %d", got, bad, malformed)
	}
	if _, ok := rc.arrivedAt("inv_1", "invoice.paid"); !ok {
		t.Fatal("arrivedAt misses the paid webhook")
	}
}
