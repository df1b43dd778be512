package layout

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/acceptcryptohere/gateway"

// mayImport is the table "may import" of docs/architecture.md: for each
// folder, the folders of this module its packages may import (besides the
// standard library, their own folder and its subfolders, and the packages
// open to every folder). A package takes the row of its longest matching
// folder. Keep the two in step.
var mayImport = map[string][]string{
	"domain":           {},
	"sqldb":            {},
	"backoff":          {},
	"follow":           {"domain", "eventstore", "sqldb"},
	"eventstore":       {"domain"},
	"commands":         {"domain", "eventstore"},
	"projections":      {"domain", "eventstore", "sqldb", "follow"},
	"opstore":          {"domain", "sqldb"},
	"readapi":          {"domain", "eventstore", "sqldb"},
	"chain":            {"domain", "eventstore", "commands", "opstore", "sqldb", "follow"},
	"chain/hd":         {"domain"},
	"chain/oracle":     {"domain"},
	"webhooks":         {"domain", "eventstore", "readapi", "opstore", "sqldb", "follow"},
	"httpapi":          {"domain", "eventstore", "commands", "readapi", "opstore", "webhooks", "analytics"},
	"analytics":        {"domain", "eventstore"},
	"reserves":         {"domain"},
	"web":              {"domain", "readapi"},
	"cmd":              {"*"},
	"simulation":       {"*"}, // test-only: drives every part at once
	"internal":         {},
	"internal/history": {"domain", "eventstore", "commands"},
}

// openToAll may be imported by any package of the module.
var openToAll = []string{"backoff"}

// exceptions are imports against the table that are being removed, each
// with its issue. Delete a line as soon as the import is gone (the test
// fails on a line no import needs any more).
var exceptions = map[string]string{}

// thirdParty limits what a folder may pull in from outside the module,
// directly or not; other folders may use any module of go.mod.
var thirdParty = map[string][]string{
	// go-json-experiment/json: the JSON v2 engine (Go's encoding/json/v2)
	// that decodes event bodies; it has no dependencies of its own.
	"domain": {"github.com/shopspring/decimal", "github.com/go-json-experiment/json"},
}

type pkg struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// listPackages runs go list -deps -json over the module (non-test code).
func listPackages(t *testing.T) map[string]pkg {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	cmd := exec.Command(goTool, "list", "-deps", "-json", "./...")
	cmd.Dir = filepath.Join("..", "..")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

// rowOf returns the folder whose row applies to rel (a path inside the
// module), or "" when no row does.
func rowOf(rel string) string {
	best := ""
	for folder := range mayImport {
		if (rel == folder || strings.HasPrefix(rel, folder+"/")) && len(folder) > len(best) {
			best = folder
		}
	}
	return best
}

func within(rel, folder string) bool { return rel == folder || strings.HasPrefix(rel, folder+"/") }

func TestImportDirection(t *testing.T) {
	pkgs := listPackages(t)
	var own []string
	for path, p := range pkgs {
		if p.Module != nil && p.Module.Path == module {
			own = append(own, path)
		}
	}
	sort.Strings(own)
	if len(own) < 10 {
		t.Fatalf("go list found only %v", own)
	}
	used := map[string]bool{}
	for _, path := range own {
		rel := strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
		row := rowOf(rel)
		if row == "" {
			t.Errorf("%s has no row in the import table: add its folder to docs/architecture.md and to mayImport", rel)
			continue
		}
		allowed := mayImport[row]
		for _, imp := range pkgs[path].Imports {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			target := strings.TrimPrefix(imp, module+"/")
			if within(target, row) || allows(allowed, target) || allows(openToAll, target) {
				continue
			}
			if key := exceptionFor(rel, target); key != "" {
				used[key] = true
				continue
			}
			t.Errorf("%s imports %s: the table allows %s only %v (docs/architecture.md)", rel, target, row, allowed)
		}
		for folder, mods := range thirdParty {
			if !within(rel, folder) {
				continue
			}
			for _, dep := range pkgs[path].Deps {
				d := pkgs[dep]
				if d.Standard || strings.HasPrefix(dep, module+"/") || allows(mods, dep) {
					continue
				}
				t.Errorf("%s depends on %s: %s may use only the standard library and %v", rel, dep, folder, mods)
			}
		}
	}
	for key, why := range exceptions {
		if !used[key] {
			t.Errorf("exception %q (%s) is no longer needed: delete it from exceptions", key, why)
		}
	}
}

// allows reports whether target is one of folders or inside one.
func allows(folders []string, target string) bool {
	for _, f := range folders {
		if f == "*" || within(target, f) {
			return true
		}
	}
	return false
}

// exceptionFor returns the key of the exception that covers rel importing
// target, matching the exception's folders as prefixes.
func exceptionFor(rel, target string) string {
	for key := range exceptions {
		from, to, _ := strings.Cut(key, " -> ")
		if within(rel, from) && within(target, to) && rowOf(rel) == rowOf(from) {
			return key
		}
	}
	return ""
}
