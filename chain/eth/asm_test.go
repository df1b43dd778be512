package eth_test

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/core/vm"
)

// assemble turns the EVM assembly of testdata/*.asm into bytecode: one
// instruction per line, "; comments", "label:" lines become JUMPDEST, and
// "@label" pushes the label's offset as PUSH2.
func assemble(src string) ([]byte, error) {
	type item struct {
		op    vm.OpCode
		arg   []byte
		label string // for @label
	}
	var items []item
	labels := map[string]int{}
	pc := 0
	for n, line := range strings.Split(src, "\n") {
		if i := strings.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			continue
		case len(f) == 1 && strings.HasSuffix(f[0], ":"):
			labels[strings.TrimSuffix(f[0], ":")] = pc
			items = append(items, item{op: vm.JUMPDEST})
			pc++
			continue
		case len(f) == 1 && strings.HasPrefix(f[0], "@"):
			items = append(items, item{op: vm.PUSH2, label: f[0][1:]})
			pc += 3
			continue
		}
		op := vm.StringToOp(f[0])
		if op.String() != f[0] {
			return nil, fmt.Errorf("line %d: unknown opcode %q", n+1, f[0])
		}
		it := item{op: op}
		if op.IsPush() && op != vm.PUSH0 {
			size := int(op - vm.PUSH1 + 1)
			if len(f) != 2 {
				return nil, fmt.Errorf("line %d: %s needs one hex argument", n+1, f[0])
			}
			b, err := hex.DecodeString(strings.TrimPrefix(f[1], "0x"))
			if err != nil || len(b) > size {
				return nil, fmt.Errorf("line %d: bad %s argument %q", n+1, f[0], f[1])
			}
			it.arg = append(make([]byte, size-len(b)), b...)
		} else if len(f) != 1 {
			return nil, fmt.Errorf("line %d: %s takes no argument", n+1, f[0])
		}
		items = append(items, it)
		pc += 1 + len(it.arg)
	}
	var code []byte
	for _, it := range items {
		code = append(code, byte(it.op))
		if it.label != "" {
			off, ok := labels[it.label]
			if !ok {
				return nil, fmt.Errorf("unknown label %q", it.label)
			}
			it.arg = []byte{byte(off >> 8), byte(off)}
		}
		code = append(code, it.arg...)
	}
	return code, nil
}

// tokenInitCode is the deployment code of testdata/minerc20.asm: it gives
// the deployer 2^128-1 base units and returns the runtime code.
func tokenInitCode(t testing.TB) []byte {
	src, err := os.ReadFile("testdata/minerc20.asm")
	if err != nil {
		t.Fatal(err)
	}
	runtime, err := assemble(string(src))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile("testdata/minerc20.hex")
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(runtime); got != strings.TrimSpace(string(want)) {
		t.Fatalf("testdata/minerc20.hex is stale: assembled\n%s", got)
	}
	const initLen = 32
	init, err := assemble(`
		PUSH16 0xffffffffffffffffffffffffffffffff
		CALLER
		SSTORE
		PUSH2 0x` + fmt.Sprintf("%04x", len(runtime)) + `
		DUP1
		PUSH2 0x` + fmt.Sprintf("%04x", initLen) + `
		PUSH1 0x00
		CODECOPY
		PUSH1 0x00
		RETURN`)
	if err != nil {
		t.Fatal(err)
	}
	if len(init) != initLen {
		t.Fatalf("init code is %d bytes, want %d", len(init), initLen)
	}
	return append(init, runtime...)
}

func TestAssembler(t *testing.T) {
	code, err := assemble("start:\nPUSH1 0x2a\n@start\nJUMP\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(code); got != "5b602a61000056" {
		t.Fatalf("assembled %s", got)
	}
	for _, bad := range []string{"PUSH1", "PUSH1 0x1234", "FOO", "@nowhere", "ADD 0x01"} {
		if _, err := assemble(bad); err == nil {
			t.Errorf("%q assembled", bad)
		}
	}
}
