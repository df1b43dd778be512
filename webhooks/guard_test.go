package webhooks

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

func TestCheckDestination(t *testing.T) {
	refused := []string{"127.0.0.1", "127.255.0.9", "10.0.0.1", "10.255.255.255", "172.16.0.1", "172.31.9.9", "192.168.1.1",
		"169.254.169.254", "169.254.0.1", "100.64.0.1", "100.127.255.254", "0.0.0.0", "224.0.0.1", "255.255.255.255",
		"::", "::1", "fe80::1", "fc00::1", "fd12:3456::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",
		"64:ff9b::a00:1", "2002:7f00:1::1"}
	allowed := []string{"93.184.216.34", "8.8.8.8", "1.1.1.1", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "64:ff9b::808:808"}
	for _, s := range refused {
		if err := checkDestination(netip.MustParseAddr(s)); !errors.Is(err, ErrForbiddenAddress) {
			t.Errorf("%s allowed", s)
		}
		if err := dialControl(false)("tcp", netip.AddrPortFrom(netip.MustParseAddr(s), 443).String(), nil); err == nil {
			t.Errorf("dial control allowed %s", s)
		}
		if err := dialControl(true)("tcp", netip.AddrPortFrom(netip.MustParseAddr(s), 443).String(), nil); err != nil {
			t.Errorf("dial control with AllowPrivate refused %s: %v", s, err)
		}
	}
	for _, s := range allowed {
		if err := checkDestination(netip.MustParseAddr(s)); err != nil {
			t.Errorf("%s refused: %v", s, err)
		}
	}
}

// Without AllowPrivate the worker never connects to loopback (by IP or by
// a name that resolves to it), private or metadata addresses; with it, the
// same loopback receiver gets the delivery. Redirects are not followed.
func TestOutboundGuard(t *testing.T) {
	e := setup(t, embedded)
	rc := newReceiver(t)
	port := rc.srv.URL[strings.LastIndex(rc.srv.URL, ":"):]
	m := e.merchant("Shop", rc.srv.URL)
	inv := e.invoice(m.MerchantID)
	e.observe(inv, "1")
	e.sync()
	strict := e.worker(Config{AttemptTimeout: 2 * time.Second})
	for _, url := range []string{rc.srv.URL + "/ipn", "http://localhost" + port + "/ipn", "http://10.1.2.3/ipn",
		"http://169.254.169.254/latest/meta-data/", "http://[::1]" + port + "/"} {
		e.setURL(m.MerchantID, url)
		e.sync()
		start := time.Now()
		a, err := strict.SendTest(e.ctx, m.MerchantID)
		if err != nil || a.OK() || a.Error != "refused: private address" || time.Since(start) > time.Second {
			t.Errorf("%s: %+v %v", url, a, err)
		}
	}
	e.setURL(m.MerchantID, rc.srv.URL+"/ipn")
	e.sync()
	if n, err := strict.Pass(e.ctx); err != nil || n != 1 {
		t.Fatalf("pass: %d %v", n, err)
	}
	if d := e.all(strict, m.MerchantID)[0]; d.Status != StatusPending || len(d.Attempts) != 1 || !strings.Contains(d.Attempts[0].Error, "refused") {
		t.Fatalf("refused delivery: %+v", d)
	}
	if len(rc.requests()) != 0 {
		t.Fatalf("the guarded worker reached loopback %d times", len(rc.requests()))
	}

	open := e.worker(Config{AllowPrivate: true})
	rc.set(func(r request, _ int) (int, http.Header, string) {
		if r.Path == "/ipn" {
			return http.StatusFound, http.Header{"Location": {"/elsewhere"}}, "moved"
		}
		return 200, nil, ""
	})
	e.clock.Advance(10 * time.Second)
	if n, err := open.Pass(e.ctx); err != nil || n != 1 {
		t.Fatalf("pass: %d %v", n, err)
	}
	d := e.all(open, m.MerchantID)[0]
	if last := d.Attempts[len(d.Attempts)-1]; d.Status != StatusPending || last.StatusCode != http.StatusFound || !strings.Contains(last.Error, "redirect") {
		t.Fatalf("redirect: %+v", d)
	}
	if got := rc.requests(); len(got) != 1 || got[0].Path != "/ipn" {
		t.Fatalf("redirect followed: %+v", got)
	}
	rc.set(nil)
	e.clock.Advance(10 * time.Minute)
	e.drain(open, time.Millisecond, 3)
	if d := e.all(open, m.MerchantID)[0]; d.Status != StatusDelivered || len(rc.requests()) != 2 {
		t.Fatalf("with AllowPrivate: %+v", d)
	}
}

// Issue #17, finding 8: the save-time check applies checkDestination to a
// literal host and to every address a name resolves to now; a name that
// does not resolve is accepted (the dial-time check remains), and
// AllowPrivate accepts everything well-formed.
func TestCheckURL(t *testing.T) {
	ctx := context.Background()
	dns := map[string][]netip.Addr{
		"shop.example.com":     {netip.MustParseAddr("93.184.216.34")},
		"internal.example.com": {netip.MustParseAddr("10.20.30.40")},
		"mixed.example.com":    {netip.MustParseAddr("93.184.216.34"), netip.MustParseAddr("192.168.0.9")},
		"metadata.example.com": {netip.MustParseAddr("169.254.169.254")},
		"v6.example.com":       {netip.MustParseAddr("fd00::7")},
	}
	lookups := 0
	lookup := func(ctx context.Context, network, host string) ([]netip.Addr, error) {
		lookups++
		if _, ok := ctx.Deadline(); !ok {
			t.Error("lookup without a deadline")
		}
		if ips, ok := dns[host]; ok {
			return ips, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	for url, want := range map[string]error{
		"":                                 nil,
		"https://shop.example.com/ipn":     nil,
		"https://not-yet.example.com/ipn":  nil,
		"https://93.184.216.34:8443/ipn":   nil,
		"https://internal.example.com/ipn": ErrPrivateWebhookURL,
		"https://mixed.example.com/ipn":    ErrPrivateWebhookURL,
		"http://metadata.example.com/":     ErrPrivateWebhookURL,
		"https://v6.example.com/":          ErrPrivateWebhookURL,
		"http://127.0.0.1:3000/":           ErrPrivateWebhookURL,
		"http://localhost/":                ErrPrivateWebhookURL,
		"http://api.LocalHost./":           ErrPrivateWebhookURL,
		"http://[::ffff:10.0.0.1]/":        ErrPrivateWebhookURL,
		"ftp://shop.example.com/":          domain.ErrValidation,
	} {
		err := checkURL(ctx, url, false, lookup)
		if !errors.Is(err, want) || (want == nil && err != nil) {
			t.Errorf("%q: %v, want %v", url, err, want)
		}
		if err != nil && strings.ContainsAny(strings.TrimPrefix(err.Error(), "validation failed: "), "0123456789") {
			t.Errorf("%q: the message names an address: %v", url, err)
		}
		err = checkURL(ctx, url, true, lookup)
		if want == domain.ErrValidation && !errors.Is(err, domain.ErrValidation) || want != domain.ErrValidation && err != nil {
			t.Errorf("%q with AllowPrivate: %v", url, err)
		}
	}
	if !errors.Is(ErrPrivateWebhookURL, domain.ErrValidation) {
		t.Fatal("ErrPrivateWebhookURL is not a validation error")
	}
	if lookups == 0 {
		t.Fatal("names were never resolved")
	}
}
