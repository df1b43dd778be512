package chain

import (
	"errors"
	"testing"
)

func TestAlongside(t *testing.T) {
	called := false
	if err := Alongside(false, func() error { called = true; return errors.New("ran") })(); err != nil || called {
		t.Fatalf("not run: err %v, called %v", err, called)
	}
	boom := errors.New("boom")
	if err := Alongside(true, func() error { return boom })(); !errors.Is(err, boom) {
		t.Fatalf("run: err %v, want boom", err)
	}
}
