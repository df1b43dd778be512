package httpapi

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestOpenAPILint runs Redocly's linter (recommended rules, warnings as
// errors) over openapi.json. scripts/test installs it into testdata/redocly
// with npm ci, pinned by the lock file; without it the test says so and
// skips.
func TestOpenAPILint(t *testing.T) {
	dir := filepath.Join("testdata", "redocly")
	bin := filepath.Join(dir, "node_modules", ".bin", "redocly")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("redocly not installed (scripts/test runs npm ci in %s)", dir)
	}
	cmd := exec.Command(bin, "lint", "--config", filepath.Join(dir, "redocly.yaml"), "openapi.json")
	// No telemetry or update checks from a test run.
	cmd.Env = append(os.Environ(), "REDOCLY_TELEMETRY=off", "REDOCLY_SUPPRESS_UPDATE_NOTICE=true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redocly lint openapi.json: %v\n%s", err, out)
	}
}
