// Command tronfake serves a FAKE TRON full node (package
// chain/tron/tronfake) on an address, for the quick start and demos: the
// java-tron HTTP API that picd's TRON watcher and sender use, over an
// in-memory chain, plus the fake's own endpoints to pay an address from a
// funded test wallet, mine blocks and fund an address. It is not a node:
// nothing it holds is worth anything, and it forgets everything on exit.
//
//	tronfake [-listen 127.0.0.1:8090] [-block-interval 3s]
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
	listen        string
	blockInterval time.Duration
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
	fs.DurationVar(&cfg.blockInterval, "block-interval", 3*time.Second, "mine a block this often, as TRON does; 0: only on POST /fake/mine")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || cfg.blockInterval < 0 {
		return errors.New("usage: tronfake [-listen addr] [-block-interval 3s]")
	}
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, ln, cfg, stdout)
}

// serve runs the fake node on ln until ctx ends.
func serve(ctx context.Context, ln net.Listener, cfg config, stdout io.Writer) error {
	node := tronfake.New(tronfake.Options{Now: time.Now})
	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, `FAKE TRON node (not a node: an in-memory test chain) on %[1]s
  USDT contract (PIC_TRON_USDT_CONTRACT): %[2]s
  test wallet paying with /fake/pay:      %[3]s
  blocks: %[4]s

Run the gateway against it:
  PIC_TRON_API_URL=%[1]s PIC_TRON_USDT_CONTRACT=%[2]s picd serve
Pay an invoice's address, mine (USDT.TRON needs 19 confirmations):
  curl -s %[1]s/fake/pay  -d '{"to":"T…","asset":"USDT","amount":"25"}'
  curl -s %[1]s/fake/mine -d '{"blocks":20}'
Fund the gateway's TRON hot wallet (logged by picd at start) with TRX for energy:
  curl -s %[1]s/fake/fund -d '{"address":"T…","trx":"100"}'
`, url, node.Token(), node.Payer(), blockNote(cfg.blockInterval))

	srv := &http.Server{Handler: node, ReadHeaderTimeout: 10 * time.Second}
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
	return srv.Shutdown(shutdown)
}

func blockNote(d time.Duration) string {
	if d <= 0 {
		return "mined only on POST /fake/mine"
	}
	return fmt.Sprintf("one every %s, and on POST /fake/mine", d)
}
