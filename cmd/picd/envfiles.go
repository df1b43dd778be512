package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// secretVars are the PIC_* variables that hold a secret. Each may instead
// name a file with NAME_FILE (Docker and Kubernetes secrets), so that no
// secret has to sit in the environment, a compose file or a shell history.
// PIC_MNEMONIC has its own PIC_MNEMONIC_FILE (created on a first start).
var secretVars = []string{
	"PIC_POSTGRES_URL", "PIC_POSTGRES_PASSWORD", "PIC_EVENTSTORE_URL",
	"PIC_SESSION_SECRET", "PIC_SECRETS_KEY", "PIC_MNEMONIC_PASSPHRASE",
	"PIC_BTC_RPC_PASS", "PIC_ETH_RPC_URL", "PIC_TRON_API_KEY", "PIC_COINGECKO_API_KEY", "PIC_SIM_TOKEN",
}

func isSecretVar(name string) bool {
	for _, v := range secretVars {
		if v == name {
			return true
		}
	}
	return false
}

// secretFromFile reads NAME_FILE for a secret variable: the file's text
// without its trailing newline. ok is false when NAME_FILE is not set.
func secretFromFile(name string) (value string, ok bool, err error) {
	path := os.Getenv(name + "_FILE")
	if path == "" || !isSecretVar(name) {
		return "", false, nil
	}
	if _, both := os.LookupEnv(name); both {
		return "", true, fmt.Errorf("%s and %s_FILE are both set: set one", name, name)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", true, fmt.Errorf("%s_FILE: %w", name, err)
	}
	v := strings.TrimRight(string(b), "\r\n")
	if strings.TrimSpace(v) == "" {
		return "", true, fmt.Errorf("%s_FILE: %s is empty", name, path)
	}
	return v, true, nil
}

// checkSecretFiles reports the first secret file that cannot be used, so
// that picd refuses to start without its secrets instead of starting with
// an empty one (env gives "" for a file it could not read).
func checkSecretFiles() error {
	for _, name := range secretVars {
		if _, _, err := secretFromFile(name); err != nil {
			return err
		}
	}
	return nil
}

// withPostgresPassword puts password into a postgres:// URL, so that the
// password can come from its own secret (the one the database container
// reads too) rather than live inside the URL.
func withPostgresPassword(dsn, password string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("PIC_POSTGRES_PASSWORD needs PIC_POSTGRES_URL in the postgres://user@host/db form")
	}
	if u.User == nil || u.User.Username() == "" {
		return "", errors.New("PIC_POSTGRES_PASSWORD needs a user in PIC_POSTGRES_URL (postgres://user@host/db)")
	}
	if _, set := u.User.Password(); set {
		return "", errors.New("PIC_POSTGRES_URL has a password and PIC_POSTGRES_PASSWORD is set: keep it in one place")
	}
	u.User = url.UserPassword(u.User.Username(), password)
	return u.String(), nil
}

// checkPostgresPassword refuses a Postgres on another host reached with
// no password (no default passwords: a database across a network must ask
// for one). Loopback and Unix sockets may use trust or peer auth, as the
// tests and a single-machine install do; PGPASSWORD or a .pgpass file
// (PGPASSFILE) count as a password.
func checkPostgresPassword(dsn string) error {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil // a key=value DSN: pgx checks it
	}
	if u.User != nil {
		if _, set := u.User.Password(); set {
			return nil
		}
	}
	if u.Query().Get("password") != "" || os.Getenv("PGPASSWORD") != "" || os.Getenv("PGPASSFILE") != "" {
		return nil
	}
	host := u.Hostname()
	if host == "" || host == "localhost" || strings.HasPrefix(host, "/") || u.Query().Get("host") != "" && strings.HasPrefix(u.Query().Get("host"), "/") {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("Postgres at %s without a password: set PIC_POSTGRES_PASSWORD_FILE (or PIC_POSTGRES_PASSWORD)", host)
}
