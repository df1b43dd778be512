package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/httpapi"
	"github.com/acceptcryptohere/gateway/web"
)

// Config is parsed once from flags and PIC_* environment variables (a flag
// wins over its variable) and passed down; nothing reads the environment later.
type Config struct {
	Listen              string // PIC_LISTEN
	BaseURL             string // PIC_BASE_URL
	Store               string // PIC_STORE: sqlite | postgres | esdb
	DataDir             string // PIC_DATA_DIR
	PostgresURL         string // PIC_POSTGRES_URL
	EventStoreURL       string // PIC_EVENTSTORE_URL
	Registration        string // PIC_REGISTRATION: open | closed
	SessionSecret       string // PIC_SESSION_SECRET (hex); default: generated under DataDir
	SecretsKey          string // PIC_SECRETS_KEY (hex): seals webhook secrets; default: <data>/secrets.key, generated
	SecureCookies       bool   // PIC_SECURE_COOKIES
	ClientIPHeader      string // PIC_CLIENT_IP_HEADER
	KeyRatePerMinute    int    // PIC_KEY_RATE_PER_MINUTE
	SignupRatePerMinute int    // PIC_SIGNUP_RATE_PER_MINUTE
	PublicRatePerMinute int    // PIC_PUBLIC_RATE_PER_MINUTE
	DebugListen         string // PIC_DEBUG_LISTEN: pprof on a separate, private address
	MetricsListen       string // PIC_METRICS_LISTEN: Prometheus /metrics on its own address (default loopback); empty: off
	WebhookAllowPrivate bool   // PIC_WEBHOOK_ALLOW_PRIVATE: let webhooks reach loopback and private networks
	WebhookLogDays      int    // PIC_WEBHOOK_LOG_DAYS: finished webhook deliveries kept this long (0: for good)

	Mnemonic           string // PIC_MNEMONIC: the master seed's words (else read from MnemonicFile)
	MnemonicFile       string // PIC_MNEMONIC_FILE: default <data>/mnemonic, created on first start
	MnemonicPassphrase string // PIC_MNEMONIC_PASSPHRASE
	Signer             string // PIC_SIGNER: unix:///path or https://host:port of a picd signer; unset: sign in this process
	SignerTLSCA        string // PIC_SIGNER_TLS_CA: the CA an https:// signer's certificate must chain to
	SignerTLSCert      string // PIC_SIGNER_TLS_CLIENT_CERT: this gateway's client certificate for an https:// signer
	SignerTLSKey       string // PIC_SIGNER_TLS_CLIENT_KEY: its key
	BTCNetwork         string // PIC_BTC_NETWORK: mainnet, testnet, signet, regtest, simnet
	BTCRPCHost         string // PIC_BTC_RPC_HOST: a btcd or Bitcoin Core node; unset: BTC is simulated
	BTCRPCUser         string // PIC_BTC_RPC_USER
	BTCRPCPass         string // PIC_BTC_RPC_PASS
	BTCRPCCookie       string // PIC_BTC_RPC_COOKIE: Bitcoin Core's cookie file (<datadir>/.cookie), instead of user and password
	BTCRPCCert         string // PIC_BTC_RPC_CERT: PEM certificate (or CA) of the node's RPC server (btcd's rpc.cert); set: TLS
	BTCP2PHost         string // PIC_BTC_P2P_HOST: the node's peer-to-peer host:port; set: blocks are fetched there
	BTCStartHeight     int    // PIC_BTC_START_HEIGHT
	ETHRPCURL          string // PIC_ETH_RPC_URL: an Ethereum node; unset: ETH and USDT.ETH are simulated
	ETHUSDTContract    string // PIC_ETH_USDT_CONTRACT: override of the USDT contract (testnets)
	ETHStartBlock      int    // PIC_ETH_START_BLOCK
	ETHChainID         int64  // PIC_ETH_CHAIN_ID: the chain id the node must have; 0: the first node's is recorded
	TronAPIURL         string // PIC_TRON_API_URL: a TRON full node or TronGrid; unset: TRX and USDT.TRON are simulated
	TronSolidityURL    string // PIC_TRON_SOLIDITY_URL: where /walletsolidity/* is served (a java-tron node's solidity port, 8091); unset: TronAPIURL (TronGrid)
	TronAPIKey         string // PIC_TRON_API_KEY (never logged)
	TronUSDTContract   string // PIC_TRON_USDT_CONTRACT: override (Nile, Shasta)
	TronStartBlock     int    // PIC_TRON_START_BLOCK
	// TronAllCallReceipts: read the receipts of every block with a contract
	// call, so token transfers made by other contracts (an exchange's batch
	// payout) are seen; costs requests, so it is on by default only for a
	// self-hosted node (a separate solidity URL), which has no quota.
	TronAllCallReceipts bool   // PIC_TRON_ALL_CALL_RECEIPTS
	SimToken            string // PIC_SIM_TOKEN: operator token of the simulator's endpoints (default: generated under <data>)
	// OperatorToken is the bearer token of the operator's feed of the whole
	// log (GET /v1/operator/events), from PIC_OPERATOR_TOKEN or the file
	// PIC_OPERATOR_TOKEN_FILE names (a mounted secret); unset: no feed.
	OperatorToken     string
	OperatorTokenFile string
	SimConfirmations  int // PIC_SIM_CONFIRMATIONS: confirmations when every chain is simulated (quick start)

	Prices          string        // PIC_PRICES: static USD prices as JSON, e.g. {"BTC":"60000"}; set: no live source
	CoinGeckoURL    string        // PIC_COINGECKO_URL
	CoinGeckoAPIKey string        // PIC_COINGECKO_API_KEY
	PriceMaxAge     time.Duration // PIC_PRICE_MAX_AGE: older prices are refused (503)
	// ConversionMaxWait: a payment whose conversion has no price is
	// credited unconverted after this long (money rule 3).
	ConversionMaxWait time.Duration
	// SweepInterval: how often the Ethereum and TRON sweepers move final
	// deposits to the hot wallet (they also run at start).
	SweepInterval time.Duration // PIC_SWEEP_INTERVAL

	// Block explorer links of the checkout's transactions, a URL with
	// {txid}: PIC_EXPLORER_BTC_TX, PIC_EXPLORER_ETH_TX, PIC_EXPLORER_TRON_TX.
	// A simulated chain gets none (its transactions exist nowhere else).
	ExplorerBTCTx  string
	ExplorerETHTx  string
	ExplorerTronTx string

	// PostgresPassword (PIC_POSTGRES_PASSWORD, or _FILE) goes into
	// PostgresURL's user info: the password the database container reads.
	PostgresPassword string
	// Simulator: chains with no node are simulated (PIC_SIMULATOR=true);
	// simulatorImplied: set by the quick start, where no node is configured.
	Simulator        bool
	simulatorImplied bool
	simulatorSet     bool // PIC_SIMULATOR or --simulator given

	InstanceID  string        // PIC_INSTANCE_ID: this process in logs, the leader lease and application_name (default host-pid)
	LeaderLease time.Duration // PIC_LEADER_LEASE: a leader not renewing for this long is taken over (Postgres)
	LeaderRenew time.Duration // PIC_LEADER_RENEW: how often the leader renews, and candidates try

	// idleInTx, when set (serve), ends a session idle inside a transaction
	// for this long: a paused process must not hold locks a takeover waits on.
	idleInTx time.Duration
}

// env is the value of a PIC_* variable, or of the file its NAME_FILE names
// for a secret (an unreadable file gives "": checkSecretFiles refuses it).
func env(name, def string) string {
	if v, ok, err := secretFromFile(name); ok {
		if err != nil {
			return ""
		}
		return v
	}
	if v, ok := os.LookupEnv(name); ok {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1 // rejected by validate
	}
	return n
}

func envInt64(name string, def int64) int64 {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return -1 // rejected by validate
	}
	return n
}

func envDuration(name string, def time.Duration) time.Duration {
	v, ok := os.LookupEnv(name)
	if !ok {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return -1 // rejected by validate
	}
	return d
}

func parseConfig(args []string) (Config, error) {
	c, rest, err := parseConfigArgs(args)
	if err == nil && len(rest) > 0 {
		err = usageError(fmt.Errorf("unexpected arguments: %s", strings.Join(rest, " ")))
	}
	return c, err
}

// parseConfigArgs parses serve's flags (for a tool: the simulator is not
// checked) and returns the arguments after them.
func parseConfigArgs(args []string) (Config, []string, error) {
	h := serveHelp
	h.serve = false
	return parseConfigFor(h, args, os.Stdout)
}

// parseConfigFor parses the flags of the command h describes, serve's
// whole set or the store's alone (h.storeOnly), and returns the arguments
// after them. -h prints h's help to stdout and returns flag.ErrHelp (exit
// 0); a bad flag or value is a usage error (exit 2).
func parseConfigFor(h cmdHelp, args []string, stdout io.Writer) (Config, []string, error) {
	var c Config
	fs := flag.NewFlagSet(h.name, flag.ContinueOnError)
	c.storeFlags(fs)
	if !h.storeOnly {
		c.serveFlags(fs)
	}
	if err := parseFlags(fs, h, args, stdout); err != nil {
		return c, nil, err
	}
	validate := c.validate
	if h.storeOnly {
		validate = c.validateStore
	}
	if err := validate(); err != nil {
		return c, nil, usageError(err)
	}
	if h.serve {
		// Only the gateway itself runs the simulator; tools (audit, chain)
		// read what a gateway left, simulated or not.
		if err := c.checkSimulator(); err != nil {
			return c, nil, usageError(err)
		}
	}
	return c, fs.Args(), nil
}

// storeFlags are the flags that name the event store and the database:
// all that migrate, audit and projections need.
func (c *Config) storeFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Store, "store", env("PIC_STORE", "sqlite"), "event store: sqlite, postgres or esdb (PIC_STORE)")
	fs.StringVar(&c.DataDir, "data", env("PIC_DATA_DIR", "./data"), "directory for the embedded database and generated secrets (PIC_DATA_DIR)")
	fs.StringVar(&c.PostgresURL, "postgres-url", env("PIC_POSTGRES_URL", ""), "Postgres URL for the postgres and esdb modes (PIC_POSTGRES_URL)")
	fs.StringVar(&c.EventStoreURL, "eventstore-url", env("PIC_EVENTSTORE_URL", ""), "EventStoreDB connection string for the esdb mode (PIC_EVENTSTORE_URL)")
	// No flag: a password on a command line is seen by every user of the host.
	c.PostgresPassword = env("PIC_POSTGRES_PASSWORD", "")
	host, _ := os.Hostname()
	fs.StringVar(&c.InstanceID, "instance-id", env("PIC_INSTANCE_ID", fmt.Sprintf("%s-%d", host, os.Getpid())),
		"this process's name in logs, the leader lease and Postgres's application_name (PIC_INSTANCE_ID; default host-pid)")
	fs.DurationVar(&c.LeaderLease, "leader-lease", envDuration("PIC_LEADER_LEASE", 5*time.Second),
		"with Postgres, another instance takes the background work over when the leader has not renewed its lease for this long (PIC_LEADER_LEASE)")
}

// serveFlags are the rest of serve's flags.
func (c *Config) serveFlags(fs *flag.FlagSet) {
	fs.Func("simulator", "simulate the chains that have no node (PIC_SIMULATOR=true), with the operator endpoints /v1/sim/*; never in production. Default: true only when no node at all is configured (the quick start)",
		func(v string) error { return c.setSimulator(v) })
	if v, ok := os.LookupEnv("PIC_SIMULATOR"); ok {
		c.simulatorSet = true
		c.Simulator = v == "true"
	}
	fs.StringVar(&c.Listen, "listen", env("PIC_LISTEN", "localhost:3000"), "address to listen on (PIC_LISTEN)")
	fs.StringVar(&c.BaseURL, "base-url", env("PIC_BASE_URL", ""), "public origin for checkout links, e.g. https://pay.example.com (PIC_BASE_URL; default http://<listen>)")
	fs.StringVar(&c.Registration, "registration", env("PIC_REGISTRATION", "open"), "merchant sign-up: open or closed (PIC_REGISTRATION)")
	fs.StringVar(&c.SessionSecret, "session-secret", env("PIC_SESSION_SECRET", ""), "hex key for dashboard session cookies (PIC_SESSION_SECRET)")
	fs.StringVar(&c.SecretsKey, "secrets-key", env("PIC_SECRETS_KEY", ""),
		"hex key (64+ digits) that seals webhook secrets in the log (PIC_SECRETS_KEY; default <data>/secrets.key, created 0600 on first start)")
	fs.BoolVar(&c.SecureCookies, "secure-cookies", env("PIC_SECURE_COOKIES", "") == "true", "mark cookies Secure; set behind HTTPS (PIC_SECURE_COOKIES)")
	fs.StringVar(&c.ClientIPHeader, "client-ip-header", env("PIC_CLIENT_IP_HEADER", ""), "header with the client IP from a trusted proxy (PIC_CLIENT_IP_HEADER)")
	fs.IntVar(&c.KeyRatePerMinute, "key-rate", envInt("PIC_KEY_RATE_PER_MINUTE", httpapi.DefaultKeyRatePerMinute), "requests per minute per API key (PIC_KEY_RATE_PER_MINUTE)")
	fs.IntVar(&c.SignupRatePerMinute, "signup-rate", envInt("PIC_SIGNUP_RATE_PER_MINUTE", httpapi.DefaultSignupRatePerMinute), "merchant sign-ups per minute per IP (PIC_SIGNUP_RATE_PER_MINUTE)")
	fs.IntVar(&c.PublicRatePerMinute, "public-rate", envInt("PIC_PUBLIC_RATE_PER_MINUTE", httpapi.DefaultPublicRatePerMinute), "requests per minute per IP to each unauthenticated route: public invoice status, checkout, dashboard page, log-in, sign-out, /readyz (PIC_PUBLIC_RATE_PER_MINUTE)")
	fs.IntVar(&c.WebhookLogDays, "webhook-log-days", envInt("PIC_WEBHOOK_LOG_DAYS", 90),
		"days a finished webhook delivery (delivered, failed, gone, no endpoint) stays in the delivery log with its attempts; 0 keeps them all (PIC_WEBHOOK_LOG_DAYS)")
	fs.BoolVar(&c.WebhookAllowPrivate, "webhook-allow-private", env("PIC_WEBHOOK_ALLOW_PRIVATE", "") == "true", "allow webhook URLs on loopback and private networks (PIC_WEBHOOK_ALLOW_PRIVATE)")
	fs.StringVar(&c.Mnemonic, "mnemonic", env("PIC_MNEMONIC", ""), "BIP-39 words of the master seed (PIC_MNEMONIC); prefer the file")
	fs.StringVar(&c.MnemonicFile, "mnemonic-file", env("PIC_MNEMONIC_FILE", ""), "file with the master seed's words (PIC_MNEMONIC_FILE; default <data>/mnemonic, created 0600 on first start)")
	fs.StringVar(&c.MnemonicPassphrase, "mnemonic-passphrase", env("PIC_MNEMONIC_PASSPHRASE", ""), "BIP-39 passphrase (PIC_MNEMONIC_PASSPHRASE)")
	fs.StringVar(&c.Signer, "signer", env("PIC_SIGNER", ""),
		"a separate picd signer, unix:///path/to/signer.sock or https://host:port (PIC_SIGNER): this process then holds no seed; unset: it signs itself")
	fs.StringVar(&c.SignerTLSCA, "signer-tls-ca", env("PIC_SIGNER_TLS_CA", ""), "PEM CA the https:// signer's certificate must chain to (PIC_SIGNER_TLS_CA)")
	fs.StringVar(&c.SignerTLSCert, "signer-tls-client-cert", env("PIC_SIGNER_TLS_CLIENT_CERT", ""),
		"PEM client certificate this gateway shows the https:// signer (PIC_SIGNER_TLS_CLIENT_CERT)")
	fs.StringVar(&c.SignerTLSKey, "signer-tls-client-key", env("PIC_SIGNER_TLS_CLIENT_KEY", ""), "PEM key of the client certificate (PIC_SIGNER_TLS_CLIENT_KEY)")
	fs.StringVar(&c.BTCNetwork, "btc-network", env("PIC_BTC_NETWORK", "mainnet"), "Bitcoin network: mainnet, testnet, signet, regtest, simnet (PIC_BTC_NETWORK)")
	fs.StringVar(&c.BTCRPCHost, "btc-rpc-host", env("PIC_BTC_RPC_HOST", ""), "Bitcoin node RPC host:port (PIC_BTC_RPC_HOST); unset: simulated")
	fs.StringVar(&c.BTCRPCUser, "btc-rpc-user", env("PIC_BTC_RPC_USER", ""), "Bitcoin node RPC user (PIC_BTC_RPC_USER)")
	fs.StringVar(&c.BTCRPCPass, "btc-rpc-pass", env("PIC_BTC_RPC_PASS", ""), "Bitcoin node RPC password (PIC_BTC_RPC_PASS)")
	fs.StringVar(&c.BTCRPCCookie, "btc-rpc-cookie", env("PIC_BTC_RPC_COOKIE", ""),
		"Bitcoin Core's RPC cookie file, e.g. ~/.bitcoin/.cookie, read at each connection (PIC_BTC_RPC_COOKIE); instead of user and password")
	fs.StringVar(&c.BTCRPCCert, "btc-rpc-cert", env("PIC_BTC_RPC_CERT", ""),
		"PEM file of the Bitcoin node's RPC certificate or its CA, e.g. btcd's rpc.cert (PIC_BTC_RPC_CERT); set: the RPC speaks TLS")
	fs.StringVar(&c.BTCP2PHost, "btc-p2p-host", env("PIC_BTC_P2P_HOST", ""),
		"the Bitcoin node's peer-to-peer host:port, e.g. node:8333 (PIC_BTC_P2P_HOST); set: blocks are fetched there (checked against the RPC), the RPC serves the rest")
	fs.IntVar(&c.BTCStartHeight, "btc-start-height", envInt("PIC_BTC_START_HEIGHT", 0), "first block to scan without a checkpoint; 0: the tip (PIC_BTC_START_HEIGHT)")
	fs.StringVar(&c.ETHRPCURL, "eth-rpc-url", env("PIC_ETH_RPC_URL", ""), "Ethereum node JSON-RPC URL (PIC_ETH_RPC_URL); unset: simulated")
	fs.IntVar(&c.ETHStartBlock, "eth-start-block", envInt("PIC_ETH_START_BLOCK", 0), "first Ethereum block to scan without a checkpoint; 0: the head (PIC_ETH_START_BLOCK)")
	fs.StringVar(&c.ETHUSDTContract, "eth-usdt-contract", env("PIC_ETH_USDT_CONTRACT", ""), "USDT contract override (PIC_ETH_USDT_CONTRACT)")
	fs.Int64Var(&c.ETHChainID, "eth-chain-id", envInt64("PIC_ETH_CHAIN_ID", 0),
		"chain id the Ethereum node must have, e.g. 1 for mainnet (PIC_ETH_CHAIN_ID); 0: the first node's chain id and genesis are recorded and every later node must match")
	fs.StringVar(&c.TronAPIURL, "tron-api-url", env("PIC_TRON_API_URL", ""), "TRON node HTTP API, e.g. https://api.trongrid.io (PIC_TRON_API_URL); unset: simulated")
	fs.StringVar(&c.TronSolidityURL, "tron-solidity-url", env("PIC_TRON_SOLIDITY_URL", ""), "TRON solidity HTTP API (/walletsolidity/*), e.g. http://127.0.0.1:8091 for a java-tron node; unset: the API URL, right for TronGrid (PIC_TRON_SOLIDITY_URL)")
	fs.StringVar(&c.TronAPIKey, "tron-api-key", env("PIC_TRON_API_KEY", ""), "TRON-PRO-API-KEY for TronGrid (PIC_TRON_API_KEY)")
	fs.StringVar(&c.TronUSDTContract, "tron-usdt-contract", env("PIC_TRON_USDT_CONTRACT", ""), "USDT TRC-20 contract override (PIC_TRON_USDT_CONTRACT)")
	fs.BoolVar(&c.TronAllCallReceipts, "tron-all-call-receipts", env("PIC_TRON_ALL_CALL_RECEIPTS", strconv.FormatBool(env("PIC_TRON_SOLIDITY_URL", "") != "")) == "true",
		"read the receipts of every TRON block with a contract call, to see token transfers made by other contracts (PIC_TRON_ALL_CALL_RECEIPTS; default: true with PIC_TRON_SOLIDITY_URL, a self-hosted node, else false)")
	fs.IntVar(&c.TronStartBlock, "tron-start-block", envInt("PIC_TRON_START_BLOCK", 0), "first TRON block to scan without a checkpoint; 0: the head (PIC_TRON_START_BLOCK)")
	fs.StringVar(&c.SimToken, "sim-token", env("PIC_SIM_TOKEN", ""), "operator token of /v1/sim/* (PIC_SIM_TOKEN; default generated in <data>/sim.token)")
	fs.StringVar(&c.OperatorToken, "operator-token", env("PIC_OPERATOR_TOKEN", ""), "bearer token of the operator's feed of the whole log, GET /v1/operator/events (PIC_OPERATOR_TOKEN); unset: no feed")
	fs.StringVar(&c.OperatorTokenFile, "operator-token-file", env("PIC_OPERATOR_TOKEN_FILE", ""), "file holding the operator token, e.g. a mounted secret (PIC_OPERATOR_TOKEN_FILE)")
	fs.IntVar(&c.SimConfirmations, "sim-confirmations", envInt("PIC_SIM_CONFIRMATIONS", 1), "confirmations when every chain is simulated (PIC_SIM_CONFIRMATIONS)")
	fs.StringVar(&c.Prices, "prices", env("PIC_PRICES", ""), `static USD prices as JSON, e.g. {"BTC":"60000","ETH":"3000"} (PIC_PRICES); unset: CoinGecko`)
	fs.StringVar(&c.CoinGeckoURL, "coingecko-url", env("PIC_COINGECKO_URL", ""), "CoinGecko API base URL (PIC_COINGECKO_URL)")
	fs.StringVar(&c.CoinGeckoAPIKey, "coingecko-api-key", env("PIC_COINGECKO_API_KEY", ""), "CoinGecko demo API key (PIC_COINGECKO_API_KEY)")
	fs.DurationVar(&c.ConversionMaxWait, "conversion-max-wait", envDuration("PIC_CONVERSION_MAX_WAIT", time.Hour),
		"credit a payment unconverted when no price came for its conversion within this (PIC_CONVERSION_MAX_WAIT)")
	fs.DurationVar(&c.SweepInterval, "sweep-interval", envDuration("PIC_SWEEP_INTERVAL", time.Minute),
		"how often deposits on Ethereum and TRON are swept to the hot wallet, besides at start (PIC_SWEEP_INTERVAL)")
	fs.DurationVar(&c.PriceMaxAge, "price-max-age", envDuration("PIC_PRICE_MAX_AGE", 10*time.Minute), "refuse prices older than this (PIC_PRICE_MAX_AGE)")
	fs.StringVar(&c.DebugListen, "debug-listen", env("PIC_DEBUG_LISTEN", ""), "serve Go's pprof profiles on this private address (PIC_DEBUG_LISTEN)")
	fs.StringVar(&c.MetricsListen, "metrics-listen", env("PIC_METRICS_LISTEN", "127.0.0.1:9464"),
		"serve Prometheus /metrics on this address, never on the public one; empty: no metrics (PIC_METRICS_LISTEN)")
	fs.StringVar(&c.ExplorerBTCTx, "explorer-btc-tx", env("PIC_EXPLORER_BTC_TX", ""),
		"checkout link of a Bitcoin transaction, with {txid}, e.g. https://mempool.space/tx/{txid} (PIC_EXPLORER_BTC_TX)")
	fs.StringVar(&c.ExplorerETHTx, "explorer-eth-tx", env("PIC_EXPLORER_ETH_TX", ""),
		"checkout link of an Ethereum transaction, with {txid}, e.g. https://etherscan.io/tx/{txid} (PIC_EXPLORER_ETH_TX)")
	fs.StringVar(&c.ExplorerTronTx, "explorer-tron-tx", env("PIC_EXPLORER_TRON_TX", ""),
		"checkout link of a TRON transaction, with {txid}, e.g. https://tronscan.org/#/transaction/{txid} (PIC_EXPLORER_TRON_TX)")
	fs.DurationVar(&c.LeaderRenew, "leader-renew", envDuration("PIC_LEADER_RENEW", time.Second),
		"how often the leader renews its lease and the others try to take it (PIC_LEADER_RENEW)")
}

func (c *Config) validate() error {
	if err := c.validateStore(); err != nil {
		return err
	}
	return c.validateServe()
}

// validateStore checks the store flags alone.
func (c *Config) validateStore() error {
	if err := checkSecretFiles(); err != nil {
		return err
	}
	if c.PostgresPassword != "" && c.PostgresURL != "" {
		dsn, err := withPostgresPassword(c.PostgresURL, c.PostgresPassword)
		if err != nil {
			return err
		}
		c.PostgresURL = dsn
	}
	if c.Store != "sqlite" && c.PostgresURL != "" {
		if err := checkPostgresPassword(c.PostgresURL); err != nil {
			return err
		}
	}
	switch c.Store {
	case "sqlite":
	case "postgres":
		if c.PostgresURL == "" {
			return fmt.Errorf("store postgres needs PIC_POSTGRES_URL")
		}
	case "esdb":
		if c.PostgresURL == "" || c.EventStoreURL == "" {
			return fmt.Errorf("store esdb needs PIC_EVENTSTORE_URL (events) and PIC_POSTGRES_URL (read models)")
		}
	default:
		return fmt.Errorf("store %q: want sqlite, postgres or esdb", c.Store)
	}
	return nil
}

func (c *Config) validateServe() error {
	if err := checkPriceKeys(c.Prices); err != nil {
		return err
	}
	if c.Registration != "open" && c.Registration != "closed" {
		return fmt.Errorf("registration %q: want open or closed", c.Registration)
	}
	for name, v := range map[string]int{"key rate": c.KeyRatePerMinute, "signup rate": c.SignupRatePerMinute, "public rate": c.PublicRatePerMinute} {
		if v <= 0 {
			return fmt.Errorf("%s must be a positive integer", name)
		}
	}
	if c.WebhookLogDays < 0 {
		return fmt.Errorf("webhook log days must be 0 (keep every delivery) or more")
	}
	if c.PriceMaxAge <= 0 {
		return fmt.Errorf("price max age must be a positive duration")
	}
	if c.SweepInterval <= 0 {
		return fmt.Errorf("sweep interval must be a positive duration")
	}
	if c.MetricsListen != "" {
		if _, _, err := net.SplitHostPort(c.MetricsListen); err != nil {
			return fmt.Errorf("metrics listen %q: want host:port, or empty for no metrics", c.MetricsListen)
		}
	}
	if c.ETHChainID < 0 {
		return fmt.Errorf("eth chain id must be a positive integer (or 0: any)")
	}
	if c.BTCP2PHost != "" {
		if c.BTCRPCHost == "" {
			return fmt.Errorf("PIC_BTC_P2P_HOST needs PIC_BTC_RPC_HOST: the RPC names the blocks the peer is asked for")
		}
		if _, _, err := net.SplitHostPort(c.BTCP2PHost); err != nil {
			return fmt.Errorf("PIC_BTC_P2P_HOST must be host:port: %v", err)
		}
	}
	if c.BTCRPCCookie != "" && (c.BTCRPCUser != "" || c.BTCRPCPass != "") {
		return fmt.Errorf("PIC_BTC_RPC_COOKIE replaces PIC_BTC_RPC_USER and PIC_BTC_RPC_PASS: set one or the other")
	}
	// A start block is used only when no checkpoint is stored (the first
	// start); picd chain rescan covers a range scanned before.
	for name, v := range map[string]int{"btc start height": c.BTCStartHeight, "eth start block": c.ETHStartBlock, "tron start block": c.TronStartBlock} {
		if v < 0 {
			return fmt.Errorf("%s must be a block height (0: the chain's head at the first start)", name)
		}
	}
	if c.LeaderRenew <= 0 || c.LeaderLease < 3*c.LeaderRenew {
		return fmt.Errorf("leader lease (%s) must be at least 3 renewals (%s)", c.LeaderLease, c.LeaderRenew)
	}
	if c.InstanceID == "" {
		return fmt.Errorf("instance id must not be empty")
	}
	if c.SimConfirmations < 1 {
		return fmt.Errorf("sim confirmations must be at least 1")
	}
	for name, v := range map[string]string{"PIC_EXPLORER_BTC_TX": c.ExplorerBTCTx, "PIC_EXPLORER_ETH_TX": c.ExplorerETHTx, "PIC_EXPLORER_TRON_TX": c.ExplorerTronTx} {
		if v != "" {
			if err := web.CheckExplorerURL(v); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	if c.MnemonicFile == "" {
		c.MnemonicFile = filepath.Join(c.DataDir, "mnemonic")
	}
	if c.BaseURL == "" {
		c.BaseURL = "http://" + c.Listen
	}
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	return nil
}

func (c *Config) setSimulator(v string) error {
	switch v {
	case "true", "false":
		c.Simulator, c.simulatorSet = v == "true", true
		return nil
	}
	return fmt.Errorf("want true or false")
}

// checkSimulator refuses simulated chains unless asked for: a chain whose
// node is missing from a production configuration must not quietly become
// a simulator that anyone with the token can "pay". The quick start (no
// node at all, PIC_SIMULATOR unset) implies it, and serve says so.
func (c *Config) checkSimulator() error {
	var missing []string
	for _, n := range []struct{ chain, node string }{{"BTC (PIC_BTC_RPC_HOST)", c.BTCRPCHost}, {"ETH (PIC_ETH_RPC_URL)", c.ETHRPCURL}, {"TRON (PIC_TRON_API_URL)", c.TronAPIURL}} {
		if n.node == "" {
			missing = append(missing, n.chain)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if !c.simulatorSet && len(missing) == 3 {
		c.Simulator, c.simulatorImplied = true, true
	}
	if !c.Simulator {
		return fmt.Errorf("no node for %s: set it, or PIC_SIMULATOR=true to simulate those chains (a demo; never in production)", strings.Join(missing, ", "))
	}
	return nil
}

// checkPriceKeys refuses a PIC_PRICES key no lookup ever asks for: a
// mis-keyed price ("USDT" for "USDT.ETH") would otherwise show only as
// settlements waiting for a price.
func checkPriceKeys(prices string) error {
	if prices == "" {
		return nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(prices), &m); err != nil {
		return fmt.Errorf("PIC_PRICES: want a JSON object of decimal strings: %w", err)
	}
	known := []string{"EUR", "TRX"} // the euro (EUR prices), TRX (TRON network fees)
	for _, a := range domain.DefaultAssets().List() {
		known = append(known, a.Code)
	}
	for k := range m {
		if !slices.Contains(known, k) {
			slices.Sort(known)
			known = slices.Compact(known)
			return fmt.Errorf("PIC_PRICES: unknown key %q: want some of %s", k, strings.Join(known, ", "))
		}
	}
	return nil
}
