package projections

import (
	"io/fs"
	"regexp"
	"testing"
)

// TestRebuildTouchesOnlyReadModels: every table a rebuild drops and
// recreates (the Tables of every projector) is created by projections' own
// migrations, in both dialects, so a rebuild can never reach operational
// state that another package's migrations create (opstore, webhooks,
// chain). TestRebuildKeepsOperationalState in cmd/picd checks the rows.
func TestRebuildTouchesOnlyReadModels(t *testing.T) {
	createTable := regexp.MustCompile(`(?i)CREATE TABLE (?:IF NOT EXISTS )?(\w+)`)
	for _, dialect := range []string{"sqlite", "postgres"} {
		created := map[string]bool{}
		err := fs.WalkDir(migrations, "migrations/"+dialect, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			body, err := fs.ReadFile(migrations, path)
			if err != nil {
				return err
			}
			for _, m := range createTable.FindAllStringSubmatch(string(body), -1) {
				created[m[1]] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, p := range All() {
			tabled, ok := p.(Tabled)
			if !ok {
				continue
			}
			for _, table := range tabled.Tables() {
				n++
				if !created[table] {
					t.Errorf("%s: projector %s rebuilds %s, which projections' migrations do not create", dialect, p.Name(), table)
				}
			}
		}
		if n < 5 {
			t.Fatalf("only %d rebuildable tables", n)
		}
	}
}
