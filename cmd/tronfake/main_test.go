package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
)

// syncBuffer is written by the server goroutine and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func start(t *testing.T, cfg config) (url string, out *syncBuffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out = &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, nil, cfg, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return "http://" + ln.Addr().String(), out
}

func post(t *testing.T, url string, body any, out any) int {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	return resp.StatusCode
}

// The quick start's steps against the served fake: pay an address USDT
// from the test wallet, mine, and read it back through the node API with
// chain/tron's client, as picd does.
func TestServeQuickStartSteps(t *testing.T) {
	url, out := start(t, config{blockInterval: 0})
	var info struct {
		USDTContract string `json:"usdt_contract"`
		Payer        string `json:"payer"`
	}
	resp, err := http.Get(url + "/fake/info")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&info)
	resp.Body.Close()
	if info.USDTContract != tronfake.New(tronfake.Options{}).Token() || !strings.Contains(out.String(), info.USDTContract) ||
		!strings.Contains(out.String(), "PIC_TRON_API_URL="+url) {
		t.Fatalf("info %+v; printed:\n%s", info, out)
	}
	key, _ := crypto.GenerateKey()
	to := tron.EncodeAddress(tronfake.KeyAddress(key))
	var paid struct {
		TxID  string `json:"txid"`
		Error string `json:"error"`
	}
	if code := post(t, url+"/fake/pay", map[string]string{"to": to, "asset": "USDT", "amount": "25.5"}, &paid); code != 200 || len(paid.TxID) != 64 {
		t.Fatalf("pay: %d %+v", code, paid)
	}
	if code := post(t, url+"/fake/pay", map[string]string{"to": "nope", "asset": "USDT", "amount": "1"}, &paid); code != 400 || paid.Error == "" {
		t.Fatalf("pay to a bad address: %d %+v", code, paid)
	}
	var mined struct{ Height int64 }
	if code := post(t, url+"/fake/mine", map[string]int{"blocks": 20}, &mined); code != 200 || mined.Height != 20 {
		t.Fatalf("mine: %d %+v", code, mined)
	}
	var tx struct {
		Verified bool   `json:"verified"`
		Block    int64  `json:"block"`
		Result   string `json:"result"`
	}
	post(t, url+"/fake/tx", map[string]string{"txid": paid.TxID}, &tx)
	if !tx.Verified || tx.Block != 1 || tx.Result != "SUCCESS" {
		t.Fatalf("tx: %+v", tx)
	}
	var bal struct {
		TRX, USDT string
		Activated bool
	}
	if post(t, url+"/fake/fund", map[string]string{"address": to, "trx": "100"}, &bal); bal.TRX != "100" || bal.USDT != "25.5" || !bal.Activated {
		t.Fatalf("fund: %+v", bal)
	}

	c := tron.NewClient(url, "", 2*time.Second)
	ctx := context.Background()
	head, err := c.NowBlock(ctx)
	if err != nil || head.Number() != 20 {
		t.Fatalf("head %d %v", head.Number(), err)
	}
	info1, err := c.TransactionInfoByID(ctx, paid.TxID)
	if err != nil || info1.BlockNumber != 1 || len(info1.Log) != 1 {
		t.Fatalf("receipt %+v %v", info1, err)
	}
	acc, err := c.Account(ctx, to)
	if err != nil || acc.Balance != 100_000_000 {
		t.Fatalf("account %+v %v", acc, err)
	}
}

// With a block interval the fake mines on its own.
func TestServeMinesOnItsOwn(t *testing.T) {
	url, _ := start(t, config{blockInterval: 10 * time.Millisecond})
	c := tron.NewClient(url, "", time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, err := c.NowBlock(context.Background())
		if err == nil && b.Number() >= 3 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no blocks: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRunRejectsArguments(t *testing.T) {
	if err := run([]string{"extra"}, &bytes.Buffer{}); err == nil {
		t.Fatal("accepted an argument")
	}
}

// With -solidity-listen the fake serves java-tron's two ports: the
// solidified block on the solidity port only, 404 for it on the full-node
// port (and for /wallet/* on the solidity port); the banner names both URLs.
func TestServeJavaTronPortSplit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	solid, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- serve(ctx, ln, solid, config{}, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	fullURL, solidURL := "http://"+ln.Addr().String(), "http://"+solid.Addr().String()
	status := func(url string) int {
		resp, err := http.Post(url, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b, c, d := status(fullURL+"/wallet/getnowblock"), status(fullURL+"/walletsolidity/getnowblock"),
		status(solidURL+"/walletsolidity/getnowblock"), status(solidURL+"/wallet/getnowblock"); a != 200 || b != 404 || c != 200 || d != 404 {
		t.Fatalf("full /wallet %d, full /walletsolidity %d, solidity /walletsolidity %d, solidity /wallet %d", a, b, c, d)
	}
	client := tron.NewClient(fullURL, "", 5*time.Second)
	if _, err := client.SolidBlock(context.Background()); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("solidified block from the full-node port: %v", err)
	}
	if _, err := client.WithSolidity(solidURL).SolidBlock(context.Background()); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "PIC_TRON_SOLIDITY_URL="+solidURL) {
		t.Fatalf("banner:\n%s", out)
	}
}
