package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/btcsuite/btcd/chaincfg"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/acceptcryptohere/gateway/chain"
	"github.com/acceptcryptohere/gateway/chain/btc"
	"github.com/acceptcryptohere/gateway/chain/custody"
	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/hd"
	"github.com/acceptcryptohere/gateway/chain/oracle"
	"github.com/acceptcryptohere/gateway/chain/scan"
	"github.com/acceptcryptohere/gateway/chain/sim"
	"github.com/acceptcryptohere/gateway/chain/tron"
	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/readapi"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/web"
)

// keys loads the master seed (creating it on first start) and derives the
// HD wallet. The seed itself is never logged.
func keys(cfg Config, log *slog.Logger) (*hd.Wallet, error) {
	params, err := hd.NetworkParams(cfg.BTCNetwork)
	if err != nil {
		return nil, err
	}
	words, created, err := hd.LoadGenerations(cfg.MnemonicFile, cfg.Mnemonic)
	if err != nil {
		return nil, err
	}
	if created {
		log.Warn("GENERATED A NEW MASTER SEED: every deposit address derives from it. Back up this file now and keep it secret; without it, funds on these addresses are lost",
			"path", cfg.MnemonicFile)
	}
	return hd.NewWallets(words, cfg.MnemonicPassphrase, params)
}

// simulatedChains are the chains with no node configured.
func simulatedChains(cfg Config) []domain.Chain {
	var out []domain.Chain
	if cfg.BTCRPCHost == "" {
		out = append(out, domain.ChainBitcoin)
	}
	if cfg.ETHRPCURL == "" {
		out = append(out, domain.ChainEthereum)
	}
	if cfg.TronAPIURL == "" {
		out = append(out, domain.ChainTron)
	}
	return out
}

// explorers are the checkout's block explorer links of the chains with a
// node: a simulated chain's transactions exist on no explorer.
func explorers(cfg Config) web.Explorers {
	out := web.Explorers{domain.ChainBitcoin: cfg.ExplorerBTCTx, domain.ChainEthereum: cfg.ExplorerETHTx, domain.ChainTron: cfg.ExplorerTronTx}
	for _, c := range simulatedChains(cfg) {
		delete(out, c)
	}
	return out
}

// quickStartAssets lowers confirmations when every chain is simulated, so a
// newcomer sees an invoice paid after one `picd sim mine`. With a real node
// somewhere the thresholds stay real, and the simulated chains' finality is
// the simulator's (one block past confirmations).
func quickStartAssets(cfg Config, assets domain.Assets) (domain.Assets, error) {
	if simulated := simulatedChains(cfg); len(simulated) < 3 {
		return sim.WithSimulatedFinality(assets, simulated)
	}
	return sim.WithConfirmations(assets, cfg.SimConfirmations)
}

// watchers are the chain loops that run under leadership, and the
// simulator's operator endpoints.
type watchers struct {
	loops  []loop
	nodes  map[domain.Chain]nodeIdentity // the chains watched on a node
	sim    *sim.Simulator
	routes http.Handler
}

func startWatchers(ctx context.Context, cfg Config, db sqldb.DB, handlers commands.Handlers, reader *readapi.SQL,
	assets domain.Assets, wallet *hd.Wallet, log *slog.Logger) (*watchers, error) {
	sink := chain.Sink{Commands: handlers, Addresses: reader}
	w := &watchers{nodes: map[domain.Chain]nodeIdentity{}}
	identityTable := func(prefix string) scan.IdentityTable { return scan.NewIdentityTable(db, prefix+"_node_identity") }
	if cfg.BTCRPCHost != "" {
		bc, err := btcConfig(cfg, wallet)
		if err != nil {
			return nil, err
		}
		bw, err := btc.New(bc, sink, db, assets, log)
		if err != nil {
			return nil, fmt.Errorf("bitcoin watcher: %w", err)
		}
		w.loops = append(w.loops, loop{name: "bitcoin watcher", run: bw.Run})
		w.nodes[domain.ChainBitcoin] = nodeIdentity{bw.Identity, identityTable("chain_btc")}
	}
	if cfg.ETHRPCURL != "" {
		ew, err := ethWatcher(ctx, cfg, sink, db, assets, log)
		if err != nil {
			return nil, err
		}
		w.loops = append(w.loops, loop{name: "ethereum watcher", run: ew.Run})
		w.nodes[domain.ChainEthereum] = nodeIdentity{ew.Identity, identityTable("eth")}
	}
	if cfg.TronAPIURL != "" {
		tw, err := tronWatcher(cfg, sink, db, assets, log)
		if err != nil {
			return nil, fmt.Errorf("tron watcher: %w", err)
		}
		w.loops = append(w.loops, loop{name: "tron watcher", run: tw.Run})
		w.nodes[domain.ChainTron] = nodeIdentity{tw.Identity, identityTable("tron")}
	}
	s, err := sim.New(sim.Config{Chains: simulatedChains(cfg)}, sink, db, assets, log)
	if err != nil {
		return nil, err
	}
	token, err := simToken(cfg, log)
	if err != nil {
		return nil, err
	}
	if w.routes, err = s.Routes(token); err != nil {
		return nil, err
	}
	w.sim = s
	return w, nil
}

// ethWatcher is the Ethereum watcher as picd configures it (picd serve,
// picd chain rescan).
func ethWatcher(ctx context.Context, cfg Config, sink chain.Sink, db sqldb.DB, assets domain.Assets, log *slog.Logger) (*eth.Watcher, error) {
	client, err := eth.Dial(ctx, cfg.ETHRPCURL)
	if err != nil {
		return nil, fmt.Errorf("ethereum node: %w", err)
	}
	ew, err := eth.New(eth.Config{Contracts: ethContracts(cfg), StartBlock: uint64(cfg.ETHStartBlock), ChainID: cfg.ETHChainID}, client, sink, db, assets, log)
	if err != nil {
		return nil, fmt.Errorf("ethereum watcher: %w", err)
	}
	return ew, nil
}

// tronWatcher is the TRON watcher as picd configures it.
func tronWatcher(cfg Config, sink chain.Sink, db sqldb.DB, assets domain.Assets, log *slog.Logger) (*tron.Watcher, error) {
	return tron.New(tron.Config{StartBlock: int64(cfg.TronStartBlock), Contracts: tronContracts(cfg),
		SolidEveryBlocks: tron.DefaultSolidEveryBlocks, AllCallReceipts: cfg.TronAllCallReceipts}, tronClient(cfg), sink, db, assets, log)
}

// ethNodeWait bounds how long start waits for the Ethereum node to answer.
const ethNodeWait = time.Minute

// ethereumAssets asks the Ethereum node, before anything uses the asset
// list, what the checkout and the watcher must agree with: its chain id
// (for EIP-681 links) and each token contract, which must be deployed and
// have its asset's decimals. A token that is not refuses to start: it is
// left out of the list, so no invoice, payment or payout uses it, and the
// reason is logged. Without a node configured, nothing changes (chain id 1).
// Errors: the node does not answer within ethNodeWait.
func ethereumAssets(ctx context.Context, cfg Config, assets domain.Assets, log *slog.Logger) (domain.Assets, int64, error) {
	if cfg.ETHRPCURL == "" {
		return assets, 1, nil
	}
	client, err := eth.Dial(ctx, cfg.ETHRPCURL)
	if err != nil {
		return assets, 0, fmt.Errorf("ethereum node: %w", err)
	}
	defer client.Close()
	deadline := time.Now().Add(ethNodeWait)
	var chainID int64
	var refused []string
	for attempt := 1; ; attempt++ {
		chainID, refused, err = checkEthereumNode(ctx, client, assets, log)
		if err == nil {
			break
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return assets, 0, fmt.Errorf("ethereum node %s did not answer: %w", cfg.ETHRPCURL, err)
		}
		log.Warn("ethereum node: waiting for it to answer", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Second):
		}
	}
	list := assets.List()
	kept := list[:0]
	for _, a := range list {
		if !slices.Contains(refused, a.Code) {
			kept = append(kept, a)
		}
	}
	raw, err := json.Marshal(kept)
	if err != nil {
		return assets, 0, err
	}
	assets, err = domain.ParseAssets(raw)
	return assets, chainID, err
}

// checkEthereumNode reads the chain id and verifies every token; it
// returns the tokens that do not match. Errors: the node's.
func checkEthereumNode(ctx context.Context, client *eth.NodeClient, assets domain.Assets, log *slog.Logger) (int64, []string, error) {
	id, err := client.ChainID(ctx)
	if err != nil {
		return 0, nil, err
	}
	log.Info("ethereum node", "chain_id", id)
	var refused []string
	for _, a := range assets.List() {
		if a.Chain != domain.ChainEthereum || a.Native() {
			continue
		}
		info, err := eth.VerifyToken(ctx, client, a)
		switch {
		case errors.Is(err, eth.ErrTokenMismatch):
			log.Error("token contract does not match its asset: the asset is not started", "asset", a.Code, "contract", a.Contract, "err", err)
			refused = append(refused, a.Code)
		case err != nil:
			return 0, nil, err
		default:
			log.Info("token contract verified", "asset", a.Code, "contract", a.Contract, "symbol", info.Symbol, "decimals", info.Decimals)
		}
	}
	return id.Int64(), refused, nil
}

// withContracts puts the configured contract overrides (testnets, private
// chains) into the asset list itself, so the API's assets, checkout links,
// watchers and senders all use the one the node has.
func withContracts(cfg Config, assets domain.Assets) (domain.Assets, error) {
	overrides := map[string]string{}
	maps.Copy(overrides, ethContracts(cfg))
	maps.Copy(overrides, tronContracts(cfg))
	if len(overrides) == 0 {
		return assets, nil
	}
	list := assets.List()
	for i, a := range list {
		if c, ok := overrides[a.Code]; ok {
			list[i].Contract = c
		}
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return assets, err
	}
	return domain.ParseAssets(raw)
}

// btcConfig is the Bitcoin watcher's configuration on the wallet's
// network (see btcConfigOn).
func btcConfig(cfg Config, wallet *hd.Wallet) (btc.Config, error) {
	return btcConfigOn(cfg, wallet.BitcoinParams())
}

// btcConfigOn is the Bitcoin node's connection on network params: TLS
// with the configured certificate (read here: a missing file stops the
// start), cookie-file or user and password authentication. Errors: the
// certificate unreadable.
func btcConfigOn(cfg Config, params *chaincfg.Params) (btc.Config, error) {
	c := btc.Config{RPCHost: cfg.BTCRPCHost, RPCUser: cfg.BTCRPCUser, RPCPass: cfg.BTCRPCPass, RPCCookiePath: cfg.BTCRPCCookie,
		P2PHost: cfg.BTCP2PHost, Params: params, StartHeight: int64(cfg.BTCStartHeight), Now: time.Now}
	if cfg.BTCRPCCert != "" {
		pem, err := os.ReadFile(cfg.BTCRPCCert)
		if err != nil {
			return c, fmt.Errorf("PIC_BTC_RPC_CERT: %w", err)
		}
		c.TLSCert = pem
	}
	return c, nil
}

func ethContracts(cfg Config) map[string]string {
	if cfg.ETHUSDTContract == "" {
		return nil
	}
	return map[string]string{"USDT.ETH": cfg.ETHUSDTContract}
}

// simToken is the operator token of the simulator's endpoints: configured,
// or generated once under the data directory (so `picd sim` finds it).
func simToken(cfg Config, log *slog.Logger) (string, error) {
	if cfg.SimToken != "" {
		return cfg.SimToken, nil
	}
	b, err := secretFile("", filepath.Join(cfg.DataDir, "sim.token"), log)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", b), nil
}

// priceOracle is the configured price source: static prices when given
// (offline use), else CoinGecko's public API.
func priceOracle(cfg Config) (oracle.Oracle, error) {
	if cfg.Prices != "" {
		var m map[string]string
		if err := json.Unmarshal([]byte(cfg.Prices), &m); err != nil {
			return nil, fmt.Errorf("PIC_PRICES: want a JSON object of decimal strings: %w", err)
		}
		return oracle.ParseStatic(m)
	}
	return oracle.NewCoinGecko(oracle.CoinGeckoConfig{BaseURL: cfg.CoinGeckoURL, APIKey: cfg.CoinGeckoAPIKey, MaxAge: cfg.PriceMaxAge}), nil
}

// payoutSenders are the senders of the simulated chains; real chains add
// theirs when their node is configured.
// tronRequests counts the TRON API requests of the watcher and the sender
// together: one API key, one daily quota (TronGrid's).
var tronRequests = tron.NewRequestStats(time.Now)

func tronClient(cfg Config) *tron.HTTPClient {
	return tron.NewClient(cfg.TronAPIURL, cfg.TronAPIKey, 0).WithSolidity(cfg.TronSolidityURL).WithStats(tronRequests)
}

// registerTronMetrics exposes the TRON API requests against the quota.
func registerTronMetrics(reg prometheus.Registerer) {
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "picd_tron_requests_total",
			Help: "Requests to the TRON API (watcher and sender)."}, func() float64 { return float64(tronRequests.Total()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "picd_tron_requests_today",
			Help: "Requests to the TRON API this UTC day (TronGrid counts its quota per day)."}, func() float64 { return float64(tronRequests.Today()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "picd_tron_throttled_total",
			Help: "TRON API requests refused for rate or quota (HTTP 429 or 403); the watcher backs off."}, func() float64 { return float64(tronRequests.Throttled()) }))
}

func tronContracts(cfg Config) map[string]string {
	if cfg.TronUSDTContract == "" {
		return nil
	}
	return map[string]string{"USDT.TRON": cfg.TronUSDTContract}
}

func payoutSenders(ctx context.Context, cfg Config, b *backend, wallet *hd.Wallet, signer custody.Signer, change commands.AddressSource, assets domain.Assets,
	prices oracle.Oracle, costs chain.CostRecorder, log *slog.Logger) (senders []chain.Sender, loops []loop, err error) {
	db := b.db
	if cfg.BTCRPCHost != "" {
		bc, err := btcConfig(cfg, wallet)
		if err != nil {
			return nil, nil, err
		}
		bs, err := btc.NewSender(btc.SenderConfig{Config: bc},
			btc.SenderDeps{DB: db, Keys: wallet, Signer: signer, Invoices: b.store, Change: change, Assets: assets, Log: log})
		if err != nil {
			return nil, nil, fmt.Errorf("bitcoin sender: %w", err)
		}
		senders = append(senders, bs)
		// Unmatched deposits decided "sweep" join the wallet once final
		// (payouts also take them in as they build).
		loops = append(loops, loop{name: "bitcoin unmatched sweep", run: func(ctx context.Context) error {
			t := time.NewTicker(time.Minute)
			defer t.Stop()
			for {
				if _, err := bs.TakeInUnmatched(ctx); err != nil && ctx.Err() == nil {
					log.Warn("bitcoin unmatched sweep", "err", err)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-t.C:
				}
			}
		}})
	}
	if cfg.ETHRPCURL != "" {
		client, err := eth.Dial(ctx, cfg.ETHRPCURL)
		if err != nil {
			return nil, nil, fmt.Errorf("ethereum node: %w", err)
		}
		// Payouts are paid from, and sweeps go to, the current seed
		// generation's hot wallet; the older generations' hot wallets are
		// swept into it (docs/operations.md, rotate to a new seed).
		es, err := eth.NewSender(eth.SenderConfig{Contracts: ethContracts(cfg), HotWalletIndex: wallet.Current(eth.DefaultHotWalletIndex),
			RetiredHotWallets: wallet.Retired(eth.DefaultHotWalletIndex)}, client,
			eth.SenderDeps{DB: db, Keys: wallet, Signer: signer, Invoices: b.store, Assets: assets, Log: log, Costs: costs})
		if err != nil {
			return nil, nil, fmt.Errorf("ethereum sender: %w", err)
		}
		log.Info("Ethereum hot wallet: fund it with ETH for gas", "address", es.HotWallet().Hex())
		senders = append(senders, es)
		// Deposits on invoice addresses move to the hot wallet, which pays out.
		loops = append(loops, loop{name: "ethereum sweep", run: func(ctx context.Context) error {
			t := time.NewTicker(cfg.SweepInterval)
			defer t.Stop()
			for {
				if _, err := es.SweepDeposits(ctx); err != nil && ctx.Err() == nil {
					log.Warn("ethereum sweep", "err", err)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-t.C:
				}
			}
		}})
	}
	if cfg.TronAPIURL != "" {
		ts, err := tron.NewSender(tron.SenderConfig{Contracts: tronContracts(cfg), Prices: prices, Invoices: b.store, Logger: log, Costs: costs,
			Signer: signer, HotWalletIndex: wallet.Current(tron.DefaultHotWalletIndex), RetiredHotWallets: wallet.Retired(tron.DefaultHotWalletIndex)},
			tronClient(cfg), wallet, db, assets)
		if err != nil {
			return nil, nil, fmt.Errorf("tron sender: %w", err)
		}
		log.Info("TRON hot wallet: fund it with TRX for energy and bandwidth", "address", ts.HotWalletAddress())
		senders = append(senders, ts)
		// Deposits on invoice addresses move to the hot wallet, which pays
		// out; a token sweep first tops the address up with TRX for energy.
		loops = append(loops, loop{name: "tron sweep", run: func(ctx context.Context) error {
			t := time.NewTicker(cfg.SweepInterval)
			defer t.Stop()
			for {
				if _, err := ts.SweepDeposits(ctx); err != nil && ctx.Err() == nil {
					log.Warn("tron sweep", "err", err)
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-t.C:
				}
			}
		}})
	}
	for _, c := range simulatedChains(cfg) {
		c := c
		s, err := sim.NewSender(ctx, db, sim.SenderConfig{Chain: c, ValidateAddress: func(addr string) error {
			return hd.ValidateAddress(c, addr, wallet.BitcoinParams())
		}})
		if err != nil {
			return nil, nil, err
		}
		senders = append(senders, s)
	}
	return senders, loops, nil
}
