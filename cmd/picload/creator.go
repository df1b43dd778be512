package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"
)

// creator sends POST /v1/invoices on one kept-alive HTTP/1.1 connection,
// with the request written and the answer parsed by hand. The load tool
// shares the gateway's two cores: net/http's client spent 83 µs of CPU per
// invoice there (11-26, /usr/bin/time), a fifth of what the gateway spent
// on it, and every microsecond of it is taken from the gateway under test.
// -std-client measures with net/http instead.
type creator struct {
	addr    string
	timeout time.Duration
	reqs    [][]byte // the whole request, per merchant
	conn    net.Conn
	br      *bufio.Reader
	body    []byte
}

// newCreators returns one creator per client; nil ones mean net/http
// (-std-client, or an https:// gateway, which the hand-written client does
// not speak).
func newCreators(c config, base string, merchants []merchant, body map[string]string) ([]*creator, error) {
	out := make([]*creator, c.clients)
	if u, err := url.Parse(base); c.stdClient || err != nil || u.Scheme != "http" {
		return out, nil
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(merchants))
	for i, m := range merchants {
		keys[i] = m.key
	}
	for i := range out {
		if out[i], err = newCreator(base, keys, raw, 30*time.Second); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// newCreator prepares the requests; only plain http:// is supported.
func newCreator(base string, keys []string, body []byte, timeout time.Duration) (*creator, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" {
		return nil, fmt.Errorf("the raw client speaks plain http, not %q (use -std-client)", u.Scheme)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	c := &creator{addr: addr, timeout: timeout}
	for _, k := range keys {
		var b bytes.Buffer
		fmt.Fprintf(&b, "POST %s/v1/invoices HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n", u.Path, u.Host, k)
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n", len(body))
		b.Write(body)
		c.reqs = append(c.reqs, b.Bytes())
	}
	return c, nil
}

// invoiceRef is what the load needs of a created invoice.
type invoiceRef struct {
	ID        string `json:"id"`
	PayAmount string `json:"pay_amount"`
}

// createInvoice creates one invoice for merchant m; it decodes the answer
// into inv only when decode is set (paying needs the id and amount).
func (c *creator) createInvoice(m int, inv *invoiceRef, decode bool) (int, error) {
	code, body, err := c.create(m)
	switch {
	case err != nil:
		return code, err
	case code/100 != 2:
		return code, fmt.Errorf("POST /v1/invoices: %d: %s", code, bytes.TrimSpace(body[:min(len(body), 300)]))
	case decode:
		if err := json.Unmarshal(body, inv); err != nil {
			return code, fmt.Errorf("POST /v1/invoices: %w", err)
		}
	}
	return code, nil
}

// create sends merchant m's request and returns the status and the body
// (valid until the next call).
func (c *creator) create(m int) (int, []byte, error) {
	if c.conn == nil {
		conn, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return 0, nil, err
		}
		c.conn, c.br = conn, bufio.NewReaderSize(conn, 8192)
	}
	code, keep, err := c.roundTrip(c.reqs[m])
	if err != nil || !keep {
		_ = c.conn.Close()
		c.conn = nil
	}
	return code, c.body, err
}

func (c *creator) roundTrip(req []byte) (code int, keep bool, err error) {
	if err := c.conn.SetDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, false, err
	}
	if _, err := c.conn.Write(req); err != nil {
		return 0, false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 201 Created\r\n"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, fmt.Errorf("not an HTTP answer: %q", line)
	}
	if code, err = strconv.Atoi(string(line[9:12])); err != nil {
		return 0, false, fmt.Errorf("status line %q: %w", line, err)
	}
	length, chunked, keep := -1, false, true
	for {
		h, err := c.br.ReadSlice('\n')
		if err != nil {
			return code, false, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return code, false, fmt.Errorf("header line %q", h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil {
				return code, false, fmt.Errorf("Content-Length %q: %w", value, err)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			keep = !bytes.EqualFold(value, []byte("close"))
		}
	}
	switch {
	case chunked:
		if c.body, err = io.ReadAll(httputil.NewChunkedReader(c.br)); err != nil {
			return code, false, err
		}
		for { // the trailer, up to its blank line
			t, err := c.br.ReadSlice('\n')
			if err != nil {
				return code, false, err
			}
			if len(bytes.TrimRight(t, "\r\n")) == 0 {
				break
			}
		}
	case length >= 0:
		if cap(c.body) < length {
			c.body = make([]byte, length)
		}
		c.body = c.body[:length]
		_, err = io.ReadFull(c.br, c.body)
	default:
		return code, false, errors.New("answer without a length")
	}
	return code, keep, err
}
