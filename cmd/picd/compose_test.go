package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// composeFile is the part of docker-compose.yml the checks read.
type composeFile struct {
	Services map[string]struct {
		Image       string            `yaml:"image"`
		Build       any               `yaml:"build"`
		Command     []string          `yaml:"command"`
		Environment map[string]string `yaml:"environment"`
		Ports       []string          `yaml:"ports"`
		Secrets     []string          `yaml:"secrets"`
		Volumes     []string          `yaml:"volumes"`
	} `yaml:"services"`
	Secrets map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

var composeVar = regexp.MustCompile(`\$\{([A-Z_]+)(?::([?-])([^}]*))?\}`)

// interpolate resolves ${NAME}, ${NAME:-default} and ${NAME:?message} as
// docker compose does, from vars; a missing required one is an error.
func interpolate(text string, vars map[string]string) (string, error) {
	var missing []string
	out := composeVar.ReplaceAllStringFunc(text, func(m string) string {
		p := composeVar.FindStringSubmatch(m)
		if v := vars[p[1]]; v != "" {
			return v
		}
		switch p[2] {
		case "-":
			return p[3]
		case "?":
			missing = append(missing, p[1])
		}
		return ""
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("required: %v", missing)
	}
	return out, nil
}

func loadCompose(t *testing.T, vars map[string]string) composeFile {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	text, err := interpolate(string(raw), vars)
	if err != nil {
		t.Fatal(err)
	}
	var f composeFile
	if err := yaml.Unmarshal([]byte(text), &f); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return f
}

var composeVars = map[string]string{"PIC_DOMAIN": "pay.example.com", "PIC_BTC_RPC_HOST": "btc-node.example:8332", "PIC_BTC_RPC_USER": "pic"}

// TestComposeIsProductionShaped: pinned images, no default password, no
// port of picd or Postgres published, the simulator off, every secret
// from a Docker secret, and the operator's settings required.
func TestComposeIsProductionShaped(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := interpolate(string(raw), nil); err == nil || !strings.Contains(err.Error(), "PIC_DOMAIN") {
		t.Fatalf("compose starts without PIC_DOMAIN (%v)", err)
	}
	for _, bad := range []string{"change-me", ":latest", "INSECURE"} {
		if strings.Contains(string(raw), bad) {
			t.Errorf("docker-compose.yml has %q", bad)
		}
	}
	f := loadCompose(t, composeVars)
	pinned := regexp.MustCompile(`:[0-9]+(\.[0-9]+)+(-[a-z0-9]+)?$`)
	for name, s := range f.Services {
		// The signer runs the image the picd service builds.
		if s.Build == nil && !pinned.MatchString(s.Image) && s.Image != f.Services["picd"].Image {
			t.Errorf("service %s: image %q is not pinned to a release", name, s.Image)
		}
		for _, p := range s.Ports {
			if name != "caddy" && !strings.HasPrefix(p, "127.0.0.1:") {
				t.Errorf("service %s publishes %s beyond loopback: only the TLS proxy is public", name, p)
			}
		}
	}
	picd := f.Services["picd"]
	env := picd.Environment
	if env["PIC_SIMULATOR"] != "false" || env["PIC_SECURE_COOKIES"] != "true" || !strings.HasPrefix(env["PIC_BASE_URL"], "https://") {
		t.Errorf("picd: simulator %q, secure cookies %q, base URL %q", env["PIC_SIMULATOR"], env["PIC_SECURE_COOKIES"], env["PIC_BASE_URL"])
	}
	for _, v := range secretVars {
		if _, plain := env[v]; plain && v != "PIC_POSTGRES_URL" {
			t.Errorf("picd: %s in the environment: use %s_FILE and a Docker secret", v, v)
		}
	}
	if strings.Contains(env["PIC_POSTGRES_URL"], ":@") || regexp.MustCompile(`//[^/@]+:[^/@]+@`).MatchString(env["PIC_POSTGRES_URL"]) {
		t.Errorf("picd: a password inside PIC_POSTGRES_URL")
	}
	for k, v := range env {
		if !strings.HasSuffix(k, "_FILE") {
			continue
		}
		name, ok := strings.CutPrefix(v, "/run/secrets/")
		if !ok || !contains(picd.Secrets, name) || f.Secrets[name].File == "" {
			t.Errorf("picd: %s=%s is not one of its Docker secrets", k, v)
		}
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestComposeRefusesToStartWithoutSecrets runs picd's own validation of
// its environment on the compose file's: without a secret picd does not
// start; with all of them it does, with the password only from its file.
func TestComposeRefusesToStartWithoutSecrets(t *testing.T) {
	f := loadCompose(t, composeVars)
	picd := f.Services["picd"]
	dir := t.TempDir()
	values := map[string]string{
		"postgres_password": "s3cret-pg", "secrets_key": strings.Repeat("ab", 32), "session_secret": strings.Repeat("cd", 32),
		"btc_rpc_pass": "rpc-pass", "eth_rpc_url": "https://eth-node.example:8545", "tron_api_key": "tron-key",
		"mnemonic": "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
	}
	for k, v := range picd.Environment {
		if name, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
			v = filepath.Join(dir, name)
		}
		t.Setenv(k, v)
	}
	start := func() (Config, error) {
		c, _, err := parseConfigFor(serveHelp, picd.Command[1:], io.Discard)
		return c, err
	}
	write := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(values[name]+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := start(); err == nil || !strings.Contains(err.Error(), "_FILE") || exitCode(err) != exitUsage {
		t.Fatalf("started with no secret files: %v", err)
	}
	for name := range values {
		write(name)
	}
	c, err := start()
	if err != nil {
		t.Fatalf("with every secret: %v", err)
	}
	if !strings.Contains(c.PostgresURL, "pic:s3cret-pg@postgres") || c.SecretsKey != values["secrets_key"] || c.BTCRPCPass != "rpc-pass" ||
		c.ETHRPCURL != values["eth_rpc_url"] || c.TronAPIKey != "tron-key" || c.Simulator || !c.SecureCookies || c.Signer != "unix:///run/signer/signer.sock" {
		t.Fatalf("config from the compose environment: %+v", c)
	}
	// Each secret missing alone stops picd, naming it.
	for _, name := range []string{"postgres_password", "secrets_key", "session_secret", "btc_rpc_pass", "eth_rpc_url", "tron_api_key"} {
		os.Remove(filepath.Join(dir, name))
		if _, err := start(); err == nil || exitCode(err) != exitUsage {
			t.Errorf("started without secret %s (%v)", name, err)
		}
		write(name)
	}
	// The seed is the signer's alone (#18): picd gets neither it nor the
	// signer's volume, and picd serve refuses a seed with PIC_SIGNER.
	if contains(picd.Secrets, "mnemonic") || strings.Contains(strings.Join(picd.Volumes, " "), "signer-data") {
		t.Errorf("picd has the seed or the signer's volume: secrets %v, volumes %v", picd.Secrets, picd.Volumes)
	}
	if err := noSeedFor(c); err != nil {
		t.Errorf("picd's compose configuration holds a seed: %v", err)
	}
	signer := f.Services["signer"]
	for k, v := range signer.Environment {
		if name, ok := strings.CutPrefix(v, "/run/secrets/"); ok {
			if !contains(signer.Secrets, name) {
				t.Errorf("signer: %s=%s is not one of its secrets", k, v)
			}
			v = filepath.Join(dir, name)
		}
		t.Setenv(k, v)
	}
	sc, rest, err := parseSignerConfig(signer.Command[1:], io.Discard)
	if err != nil || len(rest) > 0 || sc.MnemonicFile != filepath.Join(dir, "mnemonic") || sc.Store != "postgres" || sc.Socket != "/run/signer/signer.sock" ||
		!strings.Contains(sc.PostgresURL, "pic:s3cret-pg@postgres") {
		t.Fatalf("signer config from the compose environment: %+v %v", sc, err)
	}

	// No default password: the database password not given at all.
	os.Unsetenv("PIC_POSTGRES_PASSWORD_FILE")
	if _, err := start(); err == nil || !strings.Contains(err.Error(), "without a password") {
		t.Errorf("started against postgres:5432 with no password (%v)", err)
	}
}

// TestSimulatorOnlyWhenAsked: the quick start (no node) simulates every
// chain; a node for some chains and none for the others is refused unless
// PIC_SIMULATOR=true.
func TestSimulatorOnlyWhenAsked(t *testing.T) {
	t.Setenv("PIC_DATA_DIR", t.TempDir())
	c, err := serveConfig(nil)
	if err != nil || !c.Simulator || !c.simulatorImplied {
		t.Fatalf("quick start: simulator %v implied %v (%v)", c.Simulator, c.simulatorImplied, err)
	}
	if _, err := serveConfig([]string{"--simulator=false"}); err == nil || exitCode(err) != exitUsage {
		t.Fatalf("no node and the simulator off: %v", err)
	}
	_, err = serveConfig([]string{"--eth-rpc-url", "http://127.0.0.1:37004"})
	if err == nil || !strings.Contains(err.Error(), "BTC (PIC_BTC_RPC_HOST), TRON (PIC_TRON_API_URL)") {
		t.Fatalf("ETH node alone, simulator unset: %v", err)
	}
	t.Setenv("PIC_SIMULATOR", "true")
	if c, err := serveConfig([]string{"--eth-rpc-url", "http://127.0.0.1:37004"}); err != nil || !c.Simulator || c.simulatorImplied {
		t.Fatalf("ETH node with PIC_SIMULATOR=true: %v", err)
	}
}

func serveConfig(args []string) (Config, error) {
	c, _, err := parseConfigFor(serveHelp, args, io.Discard)
	return c, err
}

// TestSecretFiles: NAME_FILE gives a secret's value (the trailing newline
// dropped); both set, or an unreadable or empty file, is refused.
func TestSecretFiles(t *testing.T) {
	t.Setenv("PIC_DATA_DIR", t.TempDir())
	dir := t.TempDir()
	key := filepath.Join(dir, "key")
	writeFile(t, key, strings.Repeat("0f", 32)+"\n")
	t.Setenv("PIC_SECRETS_KEY_FILE", key)
	if c, err := parseConfig(nil); err != nil || c.SecretsKey != strings.Repeat("0f", 32) {
		t.Fatalf("PIC_SECRETS_KEY_FILE: %q, %v", c.SecretsKey, err)
	}
	t.Setenv("PIC_SECRETS_KEY", "00")
	if _, err := parseConfig(nil); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Fatalf("both set: %v", err)
	}
	os.Unsetenv("PIC_SECRETS_KEY")
	writeFile(t, key, "\n")
	if _, err := parseConfig(nil); err == nil || !strings.Contains(err.Error(), "is empty") {
		t.Fatalf("empty secret file: %v", err)
	}
	t.Setenv("PIC_SECRETS_KEY_FILE", filepath.Join(dir, "missing"))
	if _, err := parseConfig(nil); err == nil || !strings.Contains(err.Error(), "PIC_SECRETS_KEY_FILE") {
		t.Fatalf("missing secret file: %v", err)
	}
}
