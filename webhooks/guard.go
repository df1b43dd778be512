package webhooks

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// ErrForbiddenAddress: the webhook host resolved to an address that is not
// on the public internet (loopback, private, link-local including cloud
// metadata, CGNAT, multicast, unspecified, reserved) and the operator has not
// set AllowPrivate (PIC_WEBHOOK_ALLOW_PRIVATE=true).
var ErrForbiddenAddress = errors.New("webhooks: destination address not allowed (set PIC_WEBHOOK_ALLOW_PRIVATE=true to allow private addresses)")

// forbidden lists the ranges a merchant-chosen URL must not reach.
var forbidden = mustPrefixes(
	"0.0.0.0/8",      // "this network", includes the unspecified address
	"10.0.0.0/8",     // RFC 1918
	"100.64.0.0/10",  // CGNAT
	"127.0.0.0/8",    // loopback
	"169.254.0.0/16", // link-local, cloud metadata 169.254.169.254
	"172.16.0.0/12",  // RFC 1918
	"192.0.0.0/24",   // IETF protocol assignments
	"192.168.0.0/16", // RFC 1918
	"198.18.0.0/15",  // benchmarking
	"224.0.0.0/4",    // multicast
	"240.0.0.0/4",    // reserved, broadcast
	"::/96",          // unspecified, loopback, IPv4-compatible (deprecated)
	"fc00::/7",       // unique local (ULA)
	"fe80::/10",      // link-local
	"fec0::/10",      // site-local (deprecated)
	"ff00::/8",       // multicast
	"100::/64",       // discard
	"2001:db8::/32",  // documentation
)

// Ranges that embed an IPv4 address, which is checked in its turn.
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96")
	sixToFour = netip.MustParsePrefix("2002::/16")
)

func mustPrefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

// checkDestination returns nil when ip is a public unicast address.
func checkDestination(ip netip.Addr) error {
	ip = ip.Unmap().WithZone("")
	if !ip.IsValid() {
		return fmt.Errorf("%w: invalid address", ErrForbiddenAddress)
	}
	if ip.Is6() {
		b := ip.As16()
		switch {
		case nat64.Contains(ip):
			return checkDestination(netip.AddrFrom4([4]byte(b[12:16])))
		case sixToFour.Contains(ip):
			if err := checkDestination(netip.AddrFrom4([4]byte(b[2:6]))); err != nil {
				return err
			}
		}
	}
	for _, p := range forbidden {
		if p.Contains(ip) {
			return fmt.Errorf("%w: %s is in %s", ErrForbiddenAddress, ip, p)
		}
	}
	return nil
}

// ErrPrivateWebhookURL: a webhook URL saved while its host is, or resolves
// to, an address checkDestination refuses. It is a domain.ErrValidation and
// its text names no address (what a name resolves to inside the gateway's
// network is not the merchant's to learn).
var ErrPrivateWebhookURL = fmt.Errorf("%w: webhook_url must reach the public internet: its host is, or resolves to, a loopback, private or link-local address",
	domain.ErrValidation)

// saveLookupTimeout bounds the DNS lookup of CheckURL.
const saveLookupTimeout = 2 * time.Second

// CheckURL applies, when a webhook URL is saved, the rules the dialer
// applies to every connection: a literal address, or every address the host
// resolves to now, must pass checkDestination, unless the operator allows
// private addresses. A host that does not resolve (yet), or a lookup that
// fails or times out, is accepted: the merchant may set DNS up later, and
// the dial-time check stays, since DNS can change after saving.
// Errors: domain.ErrValidation (a malformed URL), ErrPrivateWebhookURL.
func (w *Worker) CheckURL(ctx context.Context, rawURL string) error {
	return checkURL(ctx, rawURL, w.cfg.AllowPrivate, net.DefaultResolver.LookupNetIP)
}

func checkURL(ctx context.Context, rawURL string, allowPrivate bool, lookup func(ctx context.Context, network, host string) ([]netip.Addr, error)) error {
	if err := domain.ValidateWebhookURL(rawURL); err != nil || rawURL == "" || allowPrivate {
		return err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return fmt.Errorf("%w: webhook_url is not a valid URL", domain.ErrValidation)
	}
	host := u.Hostname()
	// RFC 6761: localhost and its subdomains are loopback by definition,
	// whatever this resolver answers today.
	if name := strings.TrimSuffix(strings.ToLower(host), "."); name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return ErrPrivateWebhookURL
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if checkDestination(ip) != nil {
			return ErrPrivateWebhookURL
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, saveLookupTimeout)
	defer cancel()
	ips, err := lookup(ctx, "ip", host)
	if err != nil {
		return nil
	}
	for _, ip := range ips {
		if checkDestination(ip) != nil {
			return ErrPrivateWebhookURL
		}
	}
	return nil
}

// dialControl runs after the resolver, on the very address the socket is
// about to connect to, so a DNS answer that changes between a check and the
// connection (rebinding) cannot slip past it.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
		}
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
		}
		if allowPrivate {
			return nil
		}
		return checkDestination(ip)
	}
}

// NewHTTPClient returns the client deliveries are sent with: every
// connection's address is checked by the dialer (see ErrForbiddenAddress)
// unless allowPrivate, no proxy from the environment (a proxy would hide
// the destination from that check), redirects are not followed (the 3xx is
// the attempt's answer), and response headers are bounded. The per-attempt
// timeout is the request context's.
func NewHTTPClient(allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: dialControl(allowPrivate)}
	transport := &http.Transport{
		Proxy:                  nil,
		DialContext:            dialer.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           256,
		MaxIdleConnsPerHost:    8,
		IdleConnTimeout:        90 * time.Second,
		TLSHandshakeTimeout:    10 * time.Second,
		ExpectContinueTimeout:  time.Second,
		MaxResponseHeaderBytes: 64 << 10,
	}
	return &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}
