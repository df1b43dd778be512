package custody

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// A signer on another host answers on TCP with mutual TLS: TLS 1.3 only,
// the signer shows a certificate the gateway trusts through its CA file,
// and accepts only clients whose certificate chains to the client CA it
// is given. Without a valid client certificate the handshake fails and
// no request is read.

// ServerTLS is the signer's TLS configuration: its certificate and key,
// and the CA every client certificate must chain to (for client auth).
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" || clientCAFile == "" {
		return nil, errors.New("a TCP signer needs its certificate, its key and the CA of its clients' certificates")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("signer certificate: %w", err)
	}
	pool, err := loadPool(clientCAFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert},
		ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool}, nil
}

// ClientTLS is the gateway's TLS configuration towards a signer: the CA
// the signer's certificate must chain to, and its own client certificate.
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	if caFile == "" || certFile == "" || keyFile == "" {
		return nil, errors.New("an https:// signer needs the CA of its certificate and this gateway's client certificate and key")
	}
	pool, err := loadPool(caFile)
	if err != nil {
		return nil, err
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("signer client certificate: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: pool, Certificates: []tls.Certificate{cert}}, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("signer CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("signer CA %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// IsTLSRefusal tells whether err is a failed mutual TLS handshake: the
// client did not trust the signer's certificate, or the signer refused
// the client's. Waiting does not help; the certificates must change.
func IsTLSRefusal(err error) bool {
	var verify *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var invalid x509.CertificateInvalidError
	if errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &host) || errors.As(err, &invalid) {
		return true
	}
	// The signer's refusal arrives as a TLS alert, which crypto/tls
	// reports as a "remote error" (its alert type is unexported).
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "remote error"
}

// ListenTLS listens on a TCP address with cfg (ServerTLS).
func ListenTLS(addr string, cfg *tls.Config) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("signer listen: %w", err)
	}
	return tls.NewListener(ln, cfg), nil
}

// Cert files WriteCerts makes, in its directory.
const (
	CAFile         = "ca.crt"
	CAKeyFile      = "ca.key"
	SignerCertFile = "signer.crt"
	SignerKeyFile  = "signer.key"
	ClientCertFile = "gateway.crt"
	ClientKeyFile  = "gateway.key"
)

// WriteCerts makes a CA and, signed by it, the signer's server
// certificate (for hosts: names and IP addresses the gateway dials) and
// the gateway's client certificate, as PEM files in dir (keys 0600). It
// overwrites nothing. The CA's key is needed only to issue more: keep it
// offline. ECDSA P-256; the CA lasts ten years, the others two.
func WriteCerts(dir string, hosts []string, now time.Time) ([]string, error) {
	if len(hosts) == 0 {
		return nil, errors.New("the signer's certificate needs at least one host name or IP address")
	}
	names := []string{CAFile, CAKeyFile, SignerCertFile, SignerKeyFile, ClientCertFile, ClientKeyFile}
	for _, n := range names {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			return nil, fmt.Errorf("%s exists: certificates are never overwritten; choose another directory", filepath.Join(dir, n))
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca := &x509.Certificate{Subject: pkix.Name{CommonName: "picd signer CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	caDER, err := issue(ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	server := &x509.Certificate{Subject: pkix.Name{CommonName: "picd signer"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			server.IPAddresses = append(server.IPAddresses, ip)
		} else if h = strings.TrimSpace(h); h != "" {
			server.DNSNames = append(server.DNSNames, h)
		}
	}
	client := &x509.Certificate{Subject: pkix.Name{CommonName: "picd serve"}, NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	files := map[string][]byte{CAFile: pemOf("CERTIFICATE", caDER)}
	if files[CAKeyFile], err = keyPEM(caKey); err != nil {
		return nil, err
	}
	for _, leaf := range []struct {
		tmpl           *x509.Certificate
		certFile, keyF string
	}{{server, SignerCertFile, SignerKeyFile}, {client, ClientCertFile, ClientKeyFile}} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		der, err := issue(leaf.tmpl, caCert, &key.PublicKey, caKey)
		if err != nil {
			return nil, err
		}
		files[leaf.certFile] = pemOf("CERTIFICATE", der)
		if files[leaf.keyF], err = keyPEM(key); err != nil {
			return nil, err
		}
	}
	var written []string
	for _, n := range names {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(n, ".key") {
			mode = 0o600
		}
		path := filepath.Join(dir, n)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err == nil {
			_, err = f.Write(files[n])
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return written, err
		}
		written = append(written, path)
	}
	return written, nil
}

func issue(tmpl, parent *x509.Certificate, pub any, signer *ecdsa.PrivateKey) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial
	return x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pemOf("PRIVATE KEY", der), nil
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}
