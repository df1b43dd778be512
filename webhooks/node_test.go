package webhooks

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The Node verification snippet of the product text (testdata/verify.mjs,
// verbatim from the seed) accepts a real delivery with the merchant's
// secret and rejects it with another secret or a tampered body.
func TestNodeSnippetVerifiesRealDelivery(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not on PATH")
	}
	e := setup(t, embedded)
	rc := newReceiver(t)
	m := e.merchant("Shop", rc.srv.URL)
	other := e.merchant("Other", "")
	inv := e.invoice(m.MerchantID)
	e.payFully(inv)
	e.sync()
	e.drain(e.worker(Config{AllowPrivate: true}), time.Millisecond, 5)
	got := rc.requests()
	if len(got) != 2 {
		t.Fatalf("%d deliveries", len(got))
	}
	dir := t.TempDir()
	scripts := []string{"testdata/verify.mjs", readmeSnippet(t, dir)}
	run := func(body []byte, signature, secret string) (bool, string) {
		ok, out := true, ""
		for _, script := range scripts {
			accepted, said := runNode(t, node, dir, script, body, signature, secret)
			if out != "" && said != out {
				t.Fatalf("the README's snippet and the seed's disagree: %s vs %s", said, out)
			}
			ok, out = accepted, said
		}
		return ok, out
	}
	for _, r := range got {
		sig := r.Header.Get(HeaderSignature)
		if ok, out := run(r.Body, sig, m.WebhookSecret); !ok || out != "accepted" {
			t.Errorf("%s: the seed's snippet rejected a real delivery: %s", r.Type, out)
		}
		if ok, out := run(r.Body, sig, other.WebhookSecret); ok || out != "rejected" {
			t.Errorf("%s: accepted with another merchant's secret: %s", r.Type, out)
		}
		tampered := append([]byte(nil), r.Body...)
		tampered[len(tampered)-2] ^= 1
		if ok, _ := run(tampered, sig, m.WebhookSecret); ok {
			t.Errorf("%s: accepted a tampered body", r.Type)
		}
	}
}

func runNode(t *testing.T, node, dir, script string, body []byte, signature, secret string) (bool, string) {
	f := filepath.Join(dir, "body.json")
	if err := os.WriteFile(f, body, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(node, script, f, signature, secret).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("node: %v %s", err, out)
	}
	return err == nil, strings.TrimSpace(string(out))
}

// readmeSnippet writes the README's Node block, followed by the driver of
// testdata/verify.mjs, to a script, so the README's text itself is tested.
func readmeSnippet(t *testing.T, dir string) string {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(readme), "<!-- webhook-verify-node -->\n```js\n")
	block, _, ok2 := strings.Cut(after, "```")
	if !ok || !ok2 || !strings.Contains(block, "function verify(") {
		t.Fatal("README.md lacks the marked Node verification block")
	}
	seed, err := os.ReadFile("testdata/verify.mjs")
	if err != nil {
		t.Fatal(err)
	}
	_, driver, _ := strings.Cut(string(seed), "function verify(")
	_, driver, _ = strings.Cut(driver, "\n") // the driver starts after the snippet's line
	script := filepath.Join(dir, "readme.mjs")
	if err := os.WriteFile(script, []byte(block+driver), 0o600); err != nil {
		t.Fatal(err)
	}
	return script
}
