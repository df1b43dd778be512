package domain

import (
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestEventIDs(t *testing.T) {
	at := time.Date(2026, 11, 26, 2, 0, 0, 0, time.UTC)
	var tail [10]byte
	invoice := InvoiceStream(FormatID("inv_", uint64(at.UnixMilli()), tail))
	later := InvoiceStream(FormatID("inv_", uint64(at.Add(time.Millisecond).UnixMilli()), tail))
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

// DerivedID depends on the command id alone when the command id carries
// its time, and keeps the id format: prefix, 26 characters, time first.
func TestDerivedID(t *testing.T) {
	at := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var tail [10]byte
	cmd := FormatID("cmd_", uint64(at.UnixMilli()), tail)
	a := DerivedID("inv_", cmd, "", at)
	if a != DerivedID("inv_", cmd, "", at.Add(time.Hour)) {
		t.Fatal("a time-carrying command id gave two ids")
	}
	if ms, ok := IDTime(a); !ok || ms != uint64(at.UnixMilli()) || len(a) != len("inv_")+26 || a[:4] != "inv_" {
		t.Fatalf("%s: time %d %v", a, ms, ok)
	}
	if a == DerivedID("inv_", cmd, "other", at) || a == DerivedID("inv_", cmd+"x", "", at) {
		t.Fatal("another scope or command gave the same id")
	}
	plain := DerivedID("inv_", "idem_0123", "", at)
	if ms, _ := IDTime(plain); ms != uint64(at.UnixMilli()) || plain != DerivedID("inv_", "idem_0123", "", at) {
		t.Fatalf("%s: a command id without time takes at's millisecond", plain)
	}
}
