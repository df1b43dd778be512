package custody

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// tlsSigner serves f's policy on a real TCP listener with mutual TLS, its
// certificates from dir, and returns its https:// address.
func tlsSigner(t testing.TB, f *fixture, dir string) string {
	t.Helper()
	cfg, err := ServerTLS(filepath.Join(dir, SignerCertFile), filepath.Join(dir, SignerKeyFile), filepath.Join(dir, CAFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := ListenTLS("127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = (&Server{Signer: f.policy, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}).Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return "https://" + ln.Addr().String()
}

func writeCerts(t testing.TB, hosts ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := WriteCerts(dir, hosts, time.Now()); err != nil {
		t.Fatal(err)
	}
	return dir
}

func clientOf(t testing.TB, addr, caDir, certDir string) *Client {
	t.Helper()
	cfg, err := ClientTLS(filepath.Join(caDir, CAFile), filepath.Join(certDir, ClientCertFile), filepath.Join(certDir, ClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c, err := DialTLS(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Over TCP with mutual TLS the signer signs for a client whose
// certificate its CA issued, and refuses, before reading any request, a
// client without a certificate, one with a certificate of another CA,
// one that shows the signer's own (server) certificate, and one that
// offers TLS 1.2. The client refuses a signer whose certificate it does
// not trust.
func TestSignerOverMutualTLS(t *testing.T) {
	f := newFixture(t, nil)
	ours, other := writeCerts(t, "127.0.0.1", "localhost"), writeCerts(t, "127.0.0.1")
	for _, n := range []string{CAKeyFile, SignerKeyFile, ClientKeyFile} {
		if fi, err := os.Stat(filepath.Join(ours, n)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v, want 0600", n, fi.Mode(), err)
		}
	}
	if _, err := WriteCerts(ours, []string{"localhost"}, time.Now()); err == nil || !strings.Contains(err.Error(), "never overwritten") {
		t.Fatalf("certificates written over existing ones: %v", err)
	}
	addr := tlsSigner(t, f, ours)
	ctx := context.Background()

	f.request("po_tls", "0.5", domain.PayoutKindWithdrawal)
	unsigned, _ := UnsignedEthereum(ethPayout(payee, "0.5", 0))
	req := Request{Chain: domain.ChainEthereum, Purpose: PurposePayout, PayoutID: "po_tls", MerchantID: merchant, Asset: "ETH",
		FromIndex: hotIndex, Unsigned: unsigned}
	raw, err := clientOf(t, addr, ours, ours).Sign(ctx, req)
	if err != nil {
		t.Fatalf("sign over mutual TLS: %v", err)
	}
	if tx, from := decodeSigned(t, raw); tx.To() == nil || *tx.To() != payee || from != f.hot() {
		t.Fatalf("signed %v from %s", tx.To(), from)
	}

	// A refused client never reaches the policy: the record stays at one.
	refusedBy := func(name, alert string, cfg *tls.Config) {
		t.Helper()
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg}, Timeout: 10 * time.Second}
		resp, err := hc.Post(addr+"/v1/sign", "application/json", strings.NewReader(`{}`))
		if err == nil {
			resp.Body.Close()
			t.Fatalf("%s: answered %s, want the handshake refused", name, resp.Status)
		}
		if !strings.Contains(err.Error(), "remote error: tls: "+alert) {
			t.Fatalf("%s: %v, want the signer's alert %q", name, err, alert)
		}
	}
	pool := func(dir string) *x509.CertPool {
		b, _ := os.ReadFile(filepath.Join(dir, CAFile))
		p := x509.NewCertPool()
		p.AppendCertsFromPEM(b)
		return p
	}
	pair := func(dir, cert, key string) []tls.Certificate {
		c, err := tls.LoadX509KeyPair(filepath.Join(dir, cert), filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		return []tls.Certificate{c}
	}
	refusedBy("no client certificate", "certificate required", &tls.Config{RootCAs: pool(ours)})
	// What the gateway's client makes of a refusal: not a signer that is
	// down (it does not wait for it), nor a policy refusal.
	if _, err := clientOf(t, addr, ours, other).Keys(ctx); !IsTLSRefusal(err) || IsRefused(err) {
		t.Fatalf("a client certificate of another CA through Client: %v, want a TLS refusal", err)
	}
	refusedBy("a client certificate of another CA", "unknown certificate authority", &tls.Config{RootCAs: pool(ours), Certificates: pair(other, ClientCertFile, ClientKeyFile)})
	refusedBy("the signer's server certificate as a client's", "bad certificate", &tls.Config{RootCAs: pool(ours), Certificates: pair(ours, SignerCertFile, SignerKeyFile)})
	refusedBy("TLS 1.2", "protocol version not supported", &tls.Config{RootCAs: pool(ours), Certificates: pair(ours, ClientCertFile, ClientKeyFile), MaxVersion: tls.VersionTLS12})

	// The client refuses a signer whose certificate another CA issued:
	// it trusts only its own CA file, whatever certificate it shows.
	_, err = clientOf(t, addr, other, other).Sign(ctx, req)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) || IsRefused(err) || !IsTLSRefusal(err) {
		t.Fatalf("a signer the client does not trust: %v, want an unknown authority", err)
	}
	// Nor may a signer's certificate name another host than dialled.
	if _, err := clientOf(t, strings.Replace(addr, "127.0.0.1", "localhost", 1), ours, ours).Keys(ctx); err != nil {
		t.Fatalf("localhost is in the certificate: %v", err)
	}
	named := writeCerts(t, "signer.internal")
	namedAddr := tlsSigner(t, f, named)
	var host x509.HostnameError
	if _, err := clientOf(t, namedAddr, named, named).Keys(ctx); !errors.As(err, &host) {
		t.Fatalf("a certificate for signer.internal dialled as 127.0.0.1: %v, want a host name error", err)
	}

	sigs, err := f.rec.Signatures(ctx, 0, 10)
	if err != nil || len(sigs) != 1 || sigs[0].PayoutID != "po_tls" {
		t.Fatalf("record: %v %v, want the one payout", sigs, err)
	}
}
