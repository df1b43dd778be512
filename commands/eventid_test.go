package commands

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestEventIDs(t *testing.T) {
	at := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	invoice := InvoiceStream(NewIDGenerator(func() time.Time { return at })("inv_"))
	later := InvoiceStream(NewIDGenerator(func() time.Time { return at.Add(time.Millisecond) })("inv_"))
	a := EventID("cmd_1", invoice, 0)
	if a != EventID("cmd_1", invoice, 0) {
		t.Fatal("not deterministic")
	}
	if a == EventID("cmd_2", invoice, 0) || a == EventID("cmd_1", invoice, 1) || a == EventID("cmd_1", later, 0) {
		t.Fatal("different commands, indexes or streams share an id")
	}
	u, err := uuid.Parse(a)
	if err != nil || u.Version() != 7 || u.Variant() != uuid.RFC4122 {
		t.Fatalf("%s: %v, version %d, variant %v", a, err, u.Version(), u.Variant())
	}
	ms := int64(0)
	for _, b := range u[:6] {
		ms = ms<<8 | int64(b)
	}
	if !time.UnixMilli(ms).Equal(at) {
		t.Fatalf("%s carries %v, want the stream id's %v", a, time.UnixMilli(ms), at)
	}
	if !(a < EventID("cmd_0", later, 0)) {
		t.Fatal("ids of a later stream do not sort after")
	}
	// Streams without a time-ordered id keep name-based ids.
	for _, stream := range []string{"addresses-ETH", "invoice-inv_short", "x-inv_01jfz3k8m2x4v7q9c0b5n6t8w1r!", "balance"} {
		u, err := uuid.Parse(EventID("cmd_1", stream, 0))
		if err != nil || u.Version() != 5 {
			t.Fatalf("%s: %v version %d, want 5", stream, err, u.Version())
		}
	}
	if strings.ToLower(a) != a {
		t.Fatal("not lower case")
	}
}
