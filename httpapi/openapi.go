package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the hand-written OpenAPI 3.1 description of /v1.
// TestOpenAPIListsEveryRoute keeps it and routes.go in step.
//
//go:embed openapi.json
var openAPIDoc []byte

// serveOpenAPI is GET /v1/openapi.json.
func serveOpenAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Write(openAPIDoc)
}
