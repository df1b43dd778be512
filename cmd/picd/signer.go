package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

var signerHelp = cmdHelp{name: "picd signer",
	usage: "picd signer [flags] | picd signer pending [flags] | picd signer approve [flags] PAYOUT_ID | picd signer rotate [flags] [WORDS_FILE] | picd signer certs [-hosts H,...] DIR",
	about: `Run the signer: the only process that holds the master seed. It listens on a Unix socket (0600), or with
--listen on TCP with mutual TLS, and signs a payout only when the event log (read through its own read-only
connection) asks for exactly that payout, once, within the per-asset limits; internal moves (sweeps, gas top-ups)
only between the gateway's own addresses. picd serve uses it with PIC_SIGNER=unix://<socket> (or
https://host:port and its client certificate) and then holds no seed.
pending lists the payouts held at a limit; approve lets one through (the gateway asks again within seconds).
rotate adds a seed generation (<mnemonic-file>.1, .2, ...: generated, or the words in WORDS_FILE); after a restart of
the signer, then of picd serve, new addresses and the hot wallet come from it, and the older generations only sign
for their own addresses (docs/operations.md, rotate to a new seed).
certs makes a CA, the signer's certificate and the gateway's client certificate in DIR, for --listen.`,
	exits: "0 stopped by a signal or done, 1 failed, 2 bad flags, 3 the log unreachable"}

// signerConfig is picd signer's configuration: where its seed, record and
// socket are, the log it reads (the store flags) and its limits.
type signerConfig struct {
	Config
	SignerDir string
	Socket    string
	Limits    map[string]custody.Limit
	// Listen, with TLSCert, TLSKey and ClientCA: TCP with mutual TLS
	// instead of the socket.
	Listen, TLSCert, TLSKey, ClientCA string
}

func parseSignerConfig(args []string, stdout io.Writer) (signerConfig, []string, error) {
	var c signerConfig
	fs := flag.NewFlagSet(signerHelp.name, flag.ContinueOnError)
	c.storeFlags(fs)
	fs.StringVar(&c.SignerDir, "signer-data", env("PIC_SIGNER_DATA_DIR", "./signer"),
		"the signer's own directory: seed, signing record, socket; never the gateway's (PIC_SIGNER_DATA_DIR)")
	fs.StringVar(&c.Socket, "socket", env("PIC_SIGNER_SOCKET", ""), "Unix socket to listen on (PIC_SIGNER_SOCKET; default <signer-data>/signer.sock)")
	fs.StringVar(&c.Listen, "listen", env("PIC_SIGNER_LISTEN", ""),
		"host:port to listen on with mutual TLS instead of the socket (PIC_SIGNER_LISTEN); needs --tls-cert, --tls-key and --tls-client-ca")
	fs.StringVar(&c.TLSCert, "tls-cert", env("PIC_SIGNER_TLS_CERT", ""), "PEM certificate the signer shows on --listen (PIC_SIGNER_TLS_CERT)")
	fs.StringVar(&c.TLSKey, "tls-key", env("PIC_SIGNER_TLS_KEY", ""), "PEM key of --tls-cert (PIC_SIGNER_TLS_KEY)")
	fs.StringVar(&c.ClientCA, "tls-client-ca", env("PIC_SIGNER_TLS_CLIENT_CA", ""),
		"PEM CA a client's certificate must chain to on --listen (PIC_SIGNER_TLS_CLIENT_CA); clients without one are refused")
	fs.StringVar(&c.Mnemonic, "mnemonic", env("PIC_MNEMONIC", ""), "BIP-39 words of the master seed (PIC_MNEMONIC); prefer the file")
	fs.StringVar(&c.MnemonicFile, "mnemonic-file", env("PIC_MNEMONIC_FILE", ""),
		"file with the master seed's words (PIC_MNEMONIC_FILE; default <signer-data>/mnemonic, created 0600 on first start)")
	fs.StringVar(&c.MnemonicPassphrase, "mnemonic-passphrase", env("PIC_MNEMONIC_PASSPHRASE", ""), "BIP-39 passphrase (PIC_MNEMONIC_PASSPHRASE)")
	fs.StringVar(&c.BTCNetwork, "btc-network", env("PIC_BTC_NETWORK", "mainnet"), "Bitcoin network (PIC_BTC_NETWORK), as the gateway's")
	fs.StringVar(&c.ETHUSDTContract, "eth-usdt-contract", env("PIC_ETH_USDT_CONTRACT", ""), "USDT contract override (PIC_ETH_USDT_CONTRACT), as the gateway's")
	fs.StringVar(&c.TronUSDTContract, "tron-usdt-contract", env("PIC_TRON_USDT_CONTRACT", ""), "USDT TRC-20 contract override (PIC_TRON_USDT_CONTRACT), as the gateway's")
	limits := env("PIC_SIGNER_LIMITS", "")
	fs.StringVar(&limits, "limits", limits,
		`per-asset payout limits per rolling hour and day, e.g. "ETH=2/10,USDT.ETH=5000/20000" (PIC_SIGNER_LIMITS); beyond one a payout waits for picd signer approve; an asset not named has none`)
	if err := parseFlags(fs, signerHelp, args, stdout); err != nil {
		return c, nil, err
	}
	if err := c.validateStore(); err != nil {
		return c, nil, usageError(err)
	}
	var err error
	if c.Limits, err = parseLimits(limits); err != nil {
		return c, nil, usageError(err)
	}
	if c.MnemonicFile == "" {
		c.MnemonicFile = filepath.Join(c.SignerDir, "mnemonic")
	}
	if c.Socket == "" {
		c.Socket = filepath.Join(c.SignerDir, "signer.sock")
	}
	if c.Listen != "" {
		if _, _, err := net.SplitHostPort(c.Listen); err != nil {
			return c, nil, usageError(fmt.Errorf("signer listen %q: want host:port", c.Listen))
		}
		if c.TLSCert == "" || c.TLSKey == "" || c.ClientCA == "" {
			return c, nil, usageError(errors.New("PIC_SIGNER_LISTEN needs PIC_SIGNER_TLS_CERT, PIC_SIGNER_TLS_KEY and PIC_SIGNER_TLS_CLIENT_CA: " +
				"the signer speaks TCP only with mutual TLS (picd signer certs makes them)"))
		}
	}
	return c, fs.Args(), nil
}

// parseLimits reads "ASSET=HOUR/DAY,..."; an empty side is no cap.
func parseLimits(s string) (map[string]custody.Limit, error) {
	out := map[string]custody.Limit{}
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		asset, caps, ok := strings.Cut(part, "=")
		hour, day, ok2 := strings.Cut(caps, "/")
		if !ok || !ok2 || asset == "" {
			return nil, fmt.Errorf("limit %q: want ASSET=HOURLY/DAILY, e.g. ETH=2/10", part)
		}
		var l custody.Limit
		for _, side := range []struct {
			s   string
			dst *domain.Amount
		}{{hour, &l.Hour}, {day, &l.Day}} {
			if side.s == "" {
				continue
			}
			a, err := domain.ParseAmount(side.s, 18)
			if err != nil || !a.IsPositive() {
				return nil, fmt.Errorf("limit %q: %q is not a positive amount", part, side.s)
			}
			*side.dst = a
		}
		out[strings.ToUpper(asset)] = l
	}
	return out, nil
}

func signerCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	sub := "run"
	if len(args) > 0 && (args[0] == "pending" || args[0] == "approve" || args[0] == "rotate" || args[0] == "certs") {
		sub, args = args[0], args[1:]
	}
	if sub == "certs" {
		return signerCerts(args, stdout)
	}
	cfg, rest, err := parseSignerConfig(args, stdout)
	if err != nil {
		return err
	}
	switch sub {
	case "pending", "approve":
		return signerApprovals(ctx, cfg, sub, rest, stdout)
	case "rotate":
		return rotateSeed(cfg.MnemonicFile, cfg.Mnemonic, cfg.MnemonicPassphrase, cfg.BTCNetwork, rest, stdout)
	}
	if len(rest) > 0 {
		return usageError(fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " ")))
	}
	return runSigner(ctx, cfg, newLogger(stderr))
}

func signerApprovals(ctx context.Context, cfg signerConfig, sub string, rest []string, stdout io.Writer) error {
	rec, err := custody.OpenRecord(filepath.Join(cfg.SignerDir, "signer.db"))
	if err != nil {
		return err
	}
	defer rec.Close()
	if sub == "approve" {
		if len(rest) != 1 {
			return usageError(errors.New("usage: picd signer approve PAYOUT_ID"))
		}
		h, err := rec.Approve(ctx, rest[0], time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "approved payout %s: %s %s to %s; it is signed at the gateway's next ask\n", h.PayoutID, h.Amount, h.Asset, h.ToAddress)
		return nil
	}
	held, err := rec.Pending(ctx, "")
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PAYOUT\tMERCHANT\tASSET\tAMOUNT\tTO\tHELD AT\tREASON")
	for _, h := range held {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.PayoutID, h.MerchantID, h.Asset, h.Amount, h.ToAddress, h.HeldAt.UTC().Format(time.RFC3339), h.Reason)
	}
	return tw.Flush()
}

// runSigner serves the signing API until ctx ends.
func runSigner(ctx context.Context, cfg signerConfig, log *slog.Logger) error {
	if err := privateDataDir(cfg.SignerDir); err != nil {
		return err
	}
	params, err := hd.NetworkParams(cfg.BTCNetwork)
	if err != nil {
		return usageError(err)
	}
	words, created, err := hd.LoadGenerations(cfg.MnemonicFile, cfg.Mnemonic)
	if err != nil {
		return err
	}
	if created {
		log.Warn("GENERATED A NEW MASTER SEED: back this file up now and keep it secret (docs/operations.md, key backup)", "path", cfg.MnemonicFile)
	}
	wallet, err := hd.NewWallets(words, cfg.MnemonicPassphrase, params)
	if err != nil {
		return err
	}
	logStore := &lazyLog{cfg: cfg.Config, log: log}
	defer logStore.close()
	assets, err := withContracts(cfg.Config, domain.DefaultAssets())
	if err != nil {
		return err
	}
	rec, err := custody.OpenRecord(filepath.Join(cfg.SignerDir, "signer.db"))
	if err != nil {
		return err
	}
	defer rec.Close()
	for asset := range cfg.Limits {
		if _, err := assets.Lookup(asset); err != nil {
			return usageError(fmt.Errorf("limit of %s: no such asset", asset))
		}
	}
	policy := custody.NewPolicy(custody.PolicyConfig{Wallet: wallet, Log: logStore, Record: rec, Assets: assets, Limits: cfg.Limits,
		EthereumHotIndex: wallet.Current(eth.DefaultHotWalletIndex), BitcoinParams: params, TronRead: tron.ReadTransfer,
		TronHotIndex: wallet.Current(tron.DefaultHotWalletIndex), Logger: log})
	ln, where, err := signerListener(cfg)
	if err != nil {
		return err
	}
	srv := &custody.Server{Keys: custody.Keys{BitcoinNetwork: params.Name, Accounts: wallet.AccountKeys(), Generations: wallet.GenerationKeys(),
		EthereumHotIndex: wallet.Current(eth.DefaultHotWalletIndex)},
		Signer: policy, Logger: log}
	log.Info("picd signer listening", where[0], where[1], "seed_generation", wallet.Generation(), "record", filepath.Join(cfg.SignerDir, "signer.db"), "limits", fmt.Sprint(cfg.Limits))
	return srv.Serve(ctx, ln)
}

// signerListener is the signer's Unix socket, or its TCP address with
// mutual TLS; where names it for the log.
func signerListener(cfg signerConfig) (ln net.Listener, where [2]string, err error) {
	if cfg.Listen == "" {
		ln, err = custody.ListenUnix(cfg.Socket)
		return ln, [2]string{"socket", cfg.Socket}, err
	}
	tlsCfg, err := custody.ServerTLS(cfg.TLSCert, cfg.TLSKey, cfg.ClientCA)
	if err != nil {
		return nil, where, usageError(err)
	}
	if ln, err = custody.ListenTLS(cfg.Listen, tlsCfg); err != nil {
		return nil, where, err
	}
	return ln, [2]string{"tls", ln.Addr().String()}, nil
}

// signerCerts writes a CA, the signer's server certificate and the
// gateway's client certificate for a signer on TCP.
func signerCerts(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("picd signer certs", flag.ContinueOnError)
	hosts := fs.String("hosts", "localhost,127.0.0.1", "comma-separated host names and IP addresses the gateway dials the signer by")
	if err := parseFlags(fs, signerHelp, args, stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError(errors.New("usage: picd signer certs [-hosts signer.internal,10.0.0.5] DIR"))
	}
	var hs []string
	for _, h := range strings.Split(*hosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hs = append(hs, h)
		}
	}
	dir := fs.Arg(0)
	files, err := custody.WriteCerts(dir, hs, time.Now())
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(stdout, "wrote", f)
	}
	fmt.Fprintf(stdout, `
the signer (host names %s):
  PIC_SIGNER_LISTEN=0.0.0.0:PORT PIC_SIGNER_TLS_CERT=%s PIC_SIGNER_TLS_KEY=%s PIC_SIGNER_TLS_CLIENT_CA=%s
the gateway:
  PIC_SIGNER=https://HOST:PORT PIC_SIGNER_TLS_CA=%s PIC_SIGNER_TLS_CLIENT_CERT=%s PIC_SIGNER_TLS_CLIENT_KEY=%s
keep %s offline: it is needed only to issue new certificates.
`, strings.Join(hs, ", "), filepath.Join(dir, custody.SignerCertFile), filepath.Join(dir, custody.SignerKeyFile), filepath.Join(dir, custody.CAFile),
		filepath.Join(dir, custody.CAFile), filepath.Join(dir, custody.ClientCertFile), filepath.Join(dir, custody.ClientKeyFile),
		filepath.Join(dir, custody.CAKeyFile))
	return nil
}

// custodyFor is serve's wallet and signer. Without PIC_SIGNER the seed is
// loaded here and signing happens in this process (the quick start).
// With it, this process holds no seed: addresses come from the signer's
// account keys (watch-only) and every signature from the signer.
func custodyFor(ctx context.Context, cfg Config, log *slog.Logger) (*hd.Wallet, custody.Signer, error) {
	if cfg.Signer == "" {
		w, err := keys(cfg, log)
		if err != nil {
			return nil, nil, err
		}
		log.Info("embedded signer: this process holds the master seed and signs; to keep the seed out of it run picd signer and set PIC_SIGNER (docs/operations.md)")
		return w, custody.Local{Keys: w}, nil
	}
	if err := noSeedFor(cfg); err != nil {
		return nil, nil, usageError(err)
	}
	client, err := dialSigner(cfg)
	if err != nil {
		return nil, nil, usageError(err)
	}
	var k custody.Keys
	for deadline := time.Now().Add(15 * time.Second); ; {
		if k, err = client.Keys(ctx); err == nil || time.Now().After(deadline) || ctx.Err() != nil || custody.IsTLSRefusal(err) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if custody.IsTLSRefusal(err) {
		return nil, nil, usageError(fmt.Errorf("signer %s: mutual TLS failed, check PIC_SIGNER_TLS_CA and the client certificate "+
			"(both from the signer's picd signer certs): %w", cfg.Signer, err))
	}
	if err != nil {
		return nil, nil, unreachable(fmt.Errorf("signer %s: %w", cfg.Signer, err))
	}
	params, err := hd.NetworkParams(cfg.BTCNetwork)
	if err != nil {
		return nil, nil, err
	}
	// A signer from before seed rotation gives generation 0's keys only.
	gens := k.Generations
	if len(gens) == 0 {
		gens = []map[domain.Chain]string{k.Accounts}
	}
	w, err := hd.NewWatchOnlyGenerations(gens, params)
	if err != nil {
		return nil, nil, fmt.Errorf("signer %s: %w", cfg.Signer, err)
	}
	if hot := w.Current(eth.DefaultHotWalletIndex); k.BitcoinNetwork != params.Name || k.EthereumHotIndex != hot {
		return nil, nil, fmt.Errorf("signer %s keys Bitcoin %s (Ethereum hot wallet key %d); this gateway is for %s (key %d)",
			cfg.Signer, k.BitcoinNetwork, k.EthereumHotIndex, params.Name, hot)
	}
	log.Info("separate signer: this process holds no seed; deposit addresses from the signer's public keys, signatures from the signer", "signer", cfg.Signer,
		"seed_generation", w.Generation())
	return w, client, nil
}

// dialSigner is a client of PIC_SIGNER: its Unix socket, or https:// with
// this gateway's client certificate.
func dialSigner(cfg Config) (*custody.Client, error) {
	if !strings.HasPrefix(cfg.Signer, "https://") {
		if cfg.SignerTLSCA != "" || cfg.SignerTLSCert != "" || cfg.SignerTLSKey != "" {
			return nil, fmt.Errorf("PIC_SIGNER_TLS_* are set but PIC_SIGNER %q is not https://host:port", cfg.Signer)
		}
		return custody.Dial(cfg.Signer)
	}
	tlsCfg, err := custody.ClientTLS(cfg.SignerTLSCA, cfg.SignerTLSCert, cfg.SignerTLSKey)
	if err != nil {
		return nil, fmt.Errorf("PIC_SIGNER %s: %w (PIC_SIGNER_TLS_CA, PIC_SIGNER_TLS_CLIENT_CERT, PIC_SIGNER_TLS_CLIENT_KEY)", cfg.Signer, err)
	}
	return custody.DialTLS(cfg.Signer, tlsCfg)
}

// noSeedFor refuses a seed configured for a gateway that uses a signer:
// the point of the signer is that this process never sees it.
func noSeedFor(cfg Config) error {
	if cfg.Mnemonic != "" || cfg.MnemonicPassphrase != "" {
		return errors.New("PIC_SIGNER is set, and so is PIC_MNEMONIC (or its passphrase): with a separate signer picd serve must hold no seed; " +
			"give it to picd signer only")
	}
	for _, file := range []string{cfg.MnemonicFile, hd.GenerationFile(cfg.MnemonicFile, 1)} {
		if _, err := os.Stat(file); err == nil {
			return fmt.Errorf("PIC_SIGNER is set, and a seed file is at %s: with a separate signer picd serve must hold no seed; "+
				"move the file to the signer's directory (docs/operations.md)", file)
		}
	}
	return nil
}

// lazyLog opens the event log read-only on the first request that needs
// it, so the signer may start before the gateway has created its store.
type lazyLog struct {
	cfg Config
	log *slog.Logger
	mu  sync.Mutex
	b   *backend
}

func (l *lazyLog) ReadStream(ctx context.Context, stream string, from int64, max int) ([]eventstore.RecordedEvent, error) {
	l.mu.Lock()
	if l.b == nil {
		b, err := openReadOnly(ctx, l.cfg, l.log)
		if err != nil {
			l.mu.Unlock()
			return nil, fmt.Errorf("the event log: %w", err)
		}
		l.b = b
	}
	store := l.b.store
	l.mu.Unlock()
	return store.ReadStream(ctx, stream, from, max)
}

func (l *lazyLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b != nil {
		l.b.close()
	}
}
