// Command tronfake serves a FAKE TRON full node (package
// chain/tron/tronfake) on an address, for the quick start and demos: the
// java-tron HTTP API that picd's TRON watcher and sender use, over an
// in-memory chain, plus the fake's own endpoints to pay an address from a
// funded test wallet, mine blocks and fund an address. It is not a node:
// nothing it holds is worth anything, and it forgets everything on exit.
//
//	tronfake [-listen 127.0.0.1:8090] [-solidity-listen 127.0.0.1:8091] [-block-interval 3s]
//
// With -solidity-listen it serves the two API families on two ports as
// java-tron does (/wallet/* on the full-node port, /walletsolidity/* on the
// solidity port, each 404 on the other); without, both on one address, as
// TronGrid does.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/acceptcryptohere/gateway/chain/tron/tronfake"
)

type config struct {
	listen         string
	solidityListen string
	blockInterval  time.Duration
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "tronfake:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	var cfg config
	fs := flag.NewFlagSet("tronfake", flag.ContinueOnError)
	fs.StringVar(&cfg.listen, "listen", "127.0.0.1:8090", "address to serve the fake node's HTTP API on (java-tron's HTTP port is 8090)")
	fs.StringVar(&cfg.solidityListen, "solidity-listen", "", "serve /walletsolidity/* on this address only, as java-tron's solidity port (8091) does; unset: on -listen too, as TronGrid does")
	fs.DurationVar(&cfg.blockInterval, "block-interval", 3*time.Second, "mine a block this often, as TRON does; 0: only on POST /fake/mine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || cfg.blockInterval < 0 {
		return errors.New("usage: tronfake [-listen addr] [-solidity-listen addr] [-block-interval 3s]")
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	var solid net.Listener
	if cfg.solidityListen != "" {
		if solid, err = net.Listen("tcp", cfg.solidityListen); err != nil {
			ln.Close()
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, ln, solid, cfg, stdout)
}

// serve runs the fake node on ln (and its solidity API on solid, when not
// nil) until ctx ends.
func serve(ctx context.Context, ln, solid net.Listener, cfg config, stdout io.Writer) error {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	url := "http://" + ln.Addr().String()
	env := "PIC_TRON_API_URL=" + url
	var handler http.Handler = node
	if solid != nil {
		handler = node.FullNodeHandler()
		env += " PIC_TRON_SOLIDITY_URL=http://" + solid.Addr().String()
	}
	fmt.Fprintf(stdout, `FAKE TRON node (not a node: an in-memory test chain) on %[1]s
  USDT contract (PIC_TRON_USDT_CONTRACT): %[2]s
  test wallet paying with /fake/pay:      %[3]s
  blocks: %[4]s

Run the gateway against it:
  %[5]s PIC_TRON_USDT_CONTRACT=%[2]s picd serve
Pay an invoice's address, mine (USDT.TRON needs 19 confirmations):
  curl -s %[1]s/fake/pay  -d '{"to":"T…","asset":"USDT","amount":"25"}'
  curl -s %[1]s/fake/mine -d '{"blocks":20}'
Fund the gateway's TRON hot wallet (logged by picd at start) with TRX for energy:
  curl -s %[1]s/fake/fund -d '{"address":"T…","trx":"100"}'
`, url, node.Token(), node.Payer(), blockNote(cfg.blockInterval), env)

	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	var solidSrv *http.Server
	if solid != nil {
		solidSrv = &http.Server{Handler: node.SolidityHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = solidSrv.Serve(solid) }()
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if cfg.blockInterval <= 0 {
			<-ctx.Done()
			return
		}
		t := time.NewTicker(cfg.blockInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				node.Mine(1)
			}
		}
	}()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	<-done
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if solidSrv != nil {
		_ = solidSrv.Shutdown(shutdown)
	}
	return srv.Shutdown(shutdown)
}

func blockNote(d time.Duration) string {
	if d <= 0 {
		return "mined only on POST /fake/mine"
	}
	return fmt.Sprintf("one every %s, and on POST /fake/mine", d)
}
