package httpapi

import (
	"encoding/json"
	"testing"
)

// TestOpenAPIOperationsNamedAndTagged: every operation has a unique
// operationId (generated SDKs name methods by it, not by its path) and a
// tag the document declares; the document states its license.
func TestOpenAPIOperationsNamedAndTagged(t *testing.T) {
	var doc struct {
		Info struct {
			License struct{ Name, Identifier string } `json:"license"`
		} `json:"info"`
		Tags  []struct{ Name string } `json:"tags"`
		Paths map[string]map[string]json.RawMessage
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Info.License.Identifier != "MIT" {
		t.Errorf("info.license: %+v, want MIT (the LICENSE file)", doc.Info.License)
	}
	declared := map[string]bool{}
	for _, tag := range doc.Tags {
		declared[tag.Name] = true
	}
	ids := map[string]string{}
	for path, ops := range doc.Paths {
		for method, raw := range ops {
			switch method {
			case "get", "post", "put", "patch", "delete":
			default:
				continue
			}
			var op struct {
				OperationID string   `json:"operationId"`
				Tags        []string `json:"tags"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			where := method + " " + path
			if op.OperationID == "" {
				t.Errorf("%s: no operationId", where)
			} else if other, dup := ids[op.OperationID]; dup {
				t.Errorf("%s and %s share operationId %s", where, other, op.OperationID)
			}
			ids[op.OperationID] = where
			if len(op.Tags) == 0 {
				t.Errorf("%s: no tag", where)
			}
			for _, tag := range op.Tags {
				if !declared[tag] {
					t.Errorf("%s: tag %q is not declared in tags", where, tag)
				}
			}
		}
	}
}
