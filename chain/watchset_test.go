package chain_test

import (
	"strings"
	"testing"

	"github.com/acceptcryptohere/gateway/chain"
)

// A set answers with the address as it was stored, rendered from the key
// when a render gives it, kept as text otherwise; the latest form wins.
func TestWatchSetAnswersTheStoredForm(t *testing.T) {
	upper := func(k [2]byte) string { return strings.ToUpper(string(k[:])) }
	lower := func(k [2]byte) string { return string(k[:]) }
	s := chain.NewWatchSet(upper, lower)
	s.Add([2]byte{'a', 'b'}, "AB")
	s.Add([2]byte{'c', 'd'}, "cd")
	s.Add([2]byte{'e', 'f'}, "eF")
	for k, want := range map[[2]byte]string{{'a', 'b'}: "AB", {'c', 'd'}: "cd", {'e', 'f'}: "eF"} {
		if got, ok := s.Lookup(k); !ok || got != want || !s.Has(k) {
			t.Fatalf("Lookup(%q) = %q %v, want %q", k, got, ok, want)
		}
	}
	if _, ok := s.Lookup([2]byte{'x', 'y'}); ok || s.Has([2]byte{'x', 'y'}) {
		t.Fatal("an address never added is watched")
	}
	s.Add([2]byte{'e', 'f'}, "ef")
	s.Add([2]byte{'a', 'b'}, "aB")
	if got, _ := s.Lookup([2]byte{'e', 'f'}); got != "ef" {
		t.Fatalf("ef: %q", got)
	}
	if got, _ := s.Lookup([2]byte{'a', 'b'}); got != "aB" {
		t.Fatalf("ab: %q", got)
	}
	if s.Len() != 3 {
		t.Fatalf("Len %d, want 3", s.Len())
	}
}
