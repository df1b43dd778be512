package webhooks_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/acceptcryptohere/gateway/webhooks"
)

// A receiver checks the signature over the raw body before trusting it.
func ExampleVerify() {
	secret := "whsec_example"
	handler := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read", http.StatusBadRequest)
			return
		}
		if err := webhooks.Verify(raw, r.Header.Get("x-payincrypto-signature"), secret); err != nil {
			http.Error(w, "bad signature", http.StatusBadRequest)
			return
		}
		// De-duplicate on r.Header.Get("x-payincrypto-delivery"), then act.
		w.WriteHeader(http.StatusNoContent)
	})

	body := `{"type":"invoice.paid","created_at":1782579331203,"data":{"id":"inv_1","status":"paid"}}`
	for _, sig := range []string{webhooks.Sign([]byte(body), secret), webhooks.Sign([]byte(body), "whsec_other")} {
		req := httptest.NewRequest("POST", "/ipn", strings.NewReader(body))
		req.Header.Set("x-payincrypto-signature", sig)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		fmt.Println(rec.Code)
	}
	// Output:
	// 204
	// 400
}
