package webhooks

import (
	"errors"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
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
		if err != nil || a.OK() || !strings.Contains(a.Error, "refused") || !strings.Contains(a.Error, "not allowed") || time.Since(start) > time.Second {
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
