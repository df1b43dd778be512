package tron

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcutil/base58"
)

// The JSON shapes below are those of java-tron's HTTP API (the /wallet and
// /walletsolidity servlets, which TronGrid also serves), as documented at
// developers.tron.network/reference (getnowblock, getblockbynum,
// gettransactioninfobyid, gettransactioninfobyblocknum, getaccount,
// getaccountresource, getchainparameters, createtransaction,
// triggersmartcontract, triggerconstantcontract, broadcasthex,
// broadcasttransaction) and tronprotocol.github.io/documentation-en/api/http.
// Requests use hex addresses ("41…", visible false), so responses do too.

// ErrNotFound: the node does not have that block or transaction.
var ErrNotFound = errors.New("tron: not found")

// ErrThrottled: the API refused a request for its rate or its daily
// quota: HTTP 429, or 403 as TronGrid answers a key over its limits.
var ErrThrottled = errors.New("tron: throttled by the API (rate limit or daily quota)")

// MaxBlockRange is the most blocks one getblockbylimitnext returns
// (java-tron's BLOCK_LIMIT_NUM).
const MaxBlockRange = 100

// RequestStats counts a client's requests against a quota counted per
// UTC day (TronGrid's): the total, those of the current day, and the
// throttled ones. Share one between the clients that use one API key.
type RequestStats struct {
	now func() time.Time

	mu               sync.Mutex
	total, throttled uint64
	day              string
	today            uint64
}

// NewRequestStats counts days by now's UTC date.
func NewRequestStats(now func() time.Time) *RequestStats { return &RequestStats{now: now} }

func (s *RequestStats) add(throttled bool) {
	if s == nil {
		return
	}
	day := s.now().UTC().Format(time.DateOnly)
	s.mu.Lock()
	defer s.mu.Unlock()
	if day != s.day {
		s.day, s.today = day, 0
	}
	s.total++
	s.today++
	if throttled {
		s.throttled++
	}
}

// Total is every request made; Throttled those refused as over a limit.
func (s *RequestStats) Total() uint64     { s.mu.Lock(); defer s.mu.Unlock(); return s.total }
func (s *RequestStats) Throttled() uint64 { s.mu.Lock(); defer s.mu.Unlock(); return s.throttled }

// Today is the requests made on the current UTC day.
func (s *RequestStats) Today() uint64 {
	day := s.now().UTC().Format(time.DateOnly)
	s.mu.Lock()
	defer s.mu.Unlock()
	if day != s.day {
		return 0
	}
	return s.today
}

// APIKeyHeader is TronGrid's API-key header.
const APIKeyHeader = "TRON-PRO-API-KEY"

// addressVersion is the first byte of every TRON account address.
const addressVersion = 0x41

// Block is a block as getnowblock and getblockbynum return it.
type Block struct {
	BlockID     string `json:"blockID"`
	BlockHeader struct {
		RawData struct {
			Number     int64  `json:"number"`
			ParentHash string `json:"parentHash"`
			Timestamp  int64  `json:"timestamp"`
		} `json:"raw_data"`
	} `json:"block_header"`
	Transactions []Transaction `json:"transactions,omitempty"`
}

// Number is the block's height.
func (b Block) Number() int64 { return b.BlockHeader.RawData.Number }

// Transaction is protocol.Transaction as JSON.
type Transaction struct {
	Ret        []TxResult `json:"ret,omitempty"`
	Signature  []string   `json:"signature,omitempty"`
	TxID       string     `json:"txID"`
	RawData    RawData    `json:"raw_data"`
	RawDataHex string     `json:"raw_data_hex"`
}

// TxResult is Transaction.Result: contractRet is "SUCCESS" for a
// transaction that did what it asked, "REVERT", "OUT_OF_ENERGY", … otherwise.
// Ret is the code field: "FAILED" on a failed dry run
// (triggerconstantcontract), absent (SUCESS, the default) otherwise.
type TxResult struct {
	Ret         string `json:"ret,omitempty"`
	ContractRet string `json:"contractRet,omitempty"`
}

// Succeeded reports whether the transaction's contract succeeded; a
// transaction without a result (not yet executed) has not.
func (t Transaction) Succeeded() bool {
	return len(t.Ret) > 0 && t.Ret[0].ContractRet == "SUCCESS"
}

// RawData is Transaction.raw as JSON.
type RawData struct {
	Contract      []ContractJSON `json:"contract"`
	RefBlockBytes string         `json:"ref_block_bytes"`
	RefBlockHash  string         `json:"ref_block_hash"`
	Expiration    int64          `json:"expiration"`
	FeeLimit      int64          `json:"fee_limit,omitempty"`
	Timestamp     int64          `json:"timestamp,omitempty"`
}

// ContractJSON is Transaction.Contract as JSON.
type ContractJSON struct {
	Parameter struct {
		Value   ContractValue `json:"value"`
		TypeURL string        `json:"type_url"`
	} `json:"parameter"`
	Type string `json:"type"` // "TransferContract", "TriggerSmartContract", …
}

// ContractValue holds the fields of TransferContract and TriggerSmartContract.
type ContractValue struct {
	Amount          int64  `json:"amount,omitempty"`
	OwnerAddress    string `json:"owner_address,omitempty"`
	ToAddress       string `json:"to_address,omitempty"`
	ContractAddress string `json:"contract_address,omitempty"`
	Data            string `json:"data,omitempty"`
	CallValue       int64  `json:"call_value,omitempty"`
}

// TransactionInfo is protocol.TransactionInfo: a transaction's receipt.
type TransactionInfo struct {
	ID              string  `json:"id"`
	Fee             int64   `json:"fee,omitempty"`
	BlockNumber     int64   `json:"blockNumber"`
	BlockTimeStamp  int64   `json:"blockTimeStamp"`
	ContractAddress string  `json:"contract_address,omitempty"`
	Receipt         Receipt `json:"receipt"`
	Log             []Log   `json:"log,omitempty"`
	// Result is "FAILED" for a failed transaction, absent otherwise.
	Result     string `json:"result,omitempty"`
	ResMessage string `json:"resMessage,omitempty"`
}

// Receipt is protocol.ResourceReceipt.
type Receipt struct {
	EnergyUsage      int64  `json:"energy_usage,omitempty"`
	EnergyFee        int64  `json:"energy_fee,omitempty"`
	EnergyUsageTotal int64  `json:"energy_usage_total,omitempty"`
	NetUsage         int64  `json:"net_usage,omitempty"`
	NetFee           int64  `json:"net_fee,omitempty"`
	Result           string `json:"result,omitempty"`
}

// Failed reports whether the transaction failed (nothing it asked moved).
func (i TransactionInfo) Failed() bool {
	return i.Result == "FAILED" || (i.Receipt.Result != "" && i.Receipt.Result != "SUCCESS")
}

// Log is a TVM event log. Address is the contract's 20 bytes in hex,
// without the 0x41 prefix (EVM form); topics and data are hex.
type Log struct {
	Address string   `json:"address"`
	Topics  []string `json:"topics"`
	Data    string   `json:"data,omitempty"`
}

// Account is what getaccount returns; a never-activated address is {}.
type Account struct {
	Address string `json:"address,omitempty"`
	Balance int64  `json:"balance,omitempty"` // sun
}

// Exists reports whether the account is activated on chain.
func (a Account) Exists() bool { return a.Address != "" }

// AccountResource is what getaccountresource returns (zeros omitted).
type AccountResource struct {
	FreeNetUsed  int64 `json:"freeNetUsed,omitempty"`
	FreeNetLimit int64 `json:"freeNetLimit,omitempty"`
	NetUsed      int64 `json:"NetUsed,omitempty"`
	NetLimit     int64 `json:"NetLimit,omitempty"`
	EnergyUsed   int64 `json:"EnergyUsed,omitempty"`
	EnergyLimit  int64 `json:"EnergyLimit,omitempty"`
}

// ChainParameter is one entry of getchainparameters.
type ChainParameter struct {
	Key   string `json:"key"`
	Value int64  `json:"value,omitempty"`
}

// TriggerRequest calls a contract (triggersmartcontract and triggerconstantcontract).
type TriggerRequest struct {
	OwnerAddress     string `json:"owner_address"`
	ContractAddress  string `json:"contract_address"`
	FunctionSelector string `json:"function_selector"`
	Parameter        string `json:"parameter"`
	FeeLimit         int64  `json:"fee_limit,omitempty"`
	CallValue        int64  `json:"call_value"`
}

// Return is api.Return.
type Return struct {
	Result  bool   `json:"result,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

// TransactionExtention is api.TransactionExtention, the answer of the
// trigger endpoints. A dry run (triggerconstantcontract) that reverted
// still has Result.Result true: java-tron marks it in transaction.ret[0].ret
// ("FAILED") and a hex Result.Message ("REVERT opcode executed"), with the
// revert data in ConstantResult. EnergyPenalty is the extra energy a
// popular contract costs (dynamic energy model).
type TransactionExtention struct {
	Result         Return       `json:"result"`
	EnergyUsed     int64        `json:"energy_used,omitempty"`
	EnergyPenalty  int64        `json:"energy_penalty,omitempty"`
	ConstantResult []string     `json:"constant_result,omitempty"`
	Transaction    *Transaction `json:"transaction,omitempty"`
}

// Reverted reports whether a dry run's call reverted (or otherwise failed
// in the VM), and why as far as the answer tells: the revert reason when the
// contract gave one (Error(string)), else the node's message.
func (e TransactionExtention) Reverted() (bool, string) {
	if e.Transaction == nil || len(e.Transaction.Ret) == 0 || e.Transaction.Ret[0].Ret != "FAILED" {
		return false, ""
	}
	why := nodeMessage(e.Result.Message)
	if len(e.ConstantResult) > 0 {
		if reason, ok := revertReason(e.ConstantResult[0]); ok {
			why = reason
		}
	}
	if why == "" {
		why = "reverted"
	}
	return true, why
}

// Energy is what a dry run says the call uses, its penalty included.
func (e TransactionExtention) Energy() int64 { return e.EnergyUsed + e.EnergyPenalty }

// revertReason decodes Error(string) revert data (selector 08c379a0).
func revertReason(h string) (string, bool) {
	b, err := hex.DecodeString(strings.TrimPrefix(h, "0x"))
	if err != nil || len(b) < 4+64 || hex.EncodeToString(b[:4]) != "08c379a0" {
		return "", false
	}
	n := new(big.Int).SetBytes(b[4+32 : 4+64])
	if !n.IsInt64() || n.Int64() > int64(len(b)-4-64) {
		return "", false
	}
	return string(b[4+64 : 4+64+n.Int64()]), true
}

// BroadcastResult is the answer of broadcasthex and broadcasttransaction.
type BroadcastResult struct {
	Result  bool   `json:"result,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	TxID    string `json:"txid,omitempty"`
}

// HTTPClient speaks a TRON full node's HTTP API (java-tron's /wallet and
// /walletsolidity endpoints, as TronGrid serves them).
type HTTPClient struct {
	base     string
	solidity string // where /walletsolidity/* is served (base unless set)
	apiKey   string
	hc       *http.Client
	stats    *RequestStats
}

// maxResponseBytes bounds one response (a full mainnet block is a few MB).
const maxResponseBytes = 64 << 20

// NewClient returns a client of the node at baseURL (e.g.
// https://api.trongrid.io or http://127.0.0.1:8090). apiKey, when set, is
// sent as TRON-PRO-API-KEY. timeout bounds each request (default 20 s).
func NewClient(baseURL, apiKey string, timeout time.Duration) *HTTPClient {
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	base := strings.TrimRight(baseURL, "/")
	return &HTTPClient{base: base, solidity: base, apiKey: apiKey, hc: &http.Client{Timeout: timeout}}
}

// WithStats counts the client's requests in stats.
func (c *HTTPClient) WithStats(stats *RequestStats) *HTTPClient {
	c.stats = stats
	return c
}

// WithSolidity sets where the /walletsolidity/* calls go: a self-hosted
// java-tron node serves them on its solidity port (8091 by default), not
// on the full-node port (8090); TronGrid serves both on one host, the
// default. An empty url keeps the API URL.
func (c *HTTPClient) WithSolidity(url string) *HTTPClient {
	if url != "" {
		c.solidity = strings.TrimRight(url, "/")
	}
	return c
}

// post sends body as JSON to path and decodes the answer into out. A node
// reports failures as {"Error": "…"} (java-tron's Util.processError).
func (c *HTTPClient) post(ctx context.Context, path string, body, out any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	base := c.base
	if strings.HasPrefix(path, "/walletsolidity/") {
		base = c.solidity
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("tron %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if c.apiKey != "" {
		req.Header.Set(APIKeyHeader, c.apiKey)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		c.stats.add(false)
		return fmt.Errorf("tron %s: %w", path, err)
	}
	defer resp.Body.Close()
	throttled := resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusForbidden
	c.stats.add(throttled)
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return fmt.Errorf("tron %s: %w", path, err)
	}
	if throttled {
		return fmt.Errorf("tron %s: HTTP %d: %w: %s", path, resp.StatusCode, ErrThrottled, snippet(data))
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("tron %s: HTTP %d: %s", path, resp.StatusCode, snippet(data))
	}
	var nodeErr struct {
		Error string `json:"Error"`
	}
	if json.Unmarshal(data, &nodeErr) == nil && nodeErr.Error != "" {
		return fmt.Errorf("tron %s: node error: %s", path, nodeErr.Error)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("tron %s: decode: %w (%s)", path, err, snippet(data))
	}
	return nil
}

func snippet(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return strings.TrimSpace(string(b))
}

// NowBlock returns the head block (/wallet/getnowblock).
func (c *HTTPClient) NowBlock(ctx context.Context) (Block, error) {
	var b Block
	if err := c.post(ctx, "/wallet/getnowblock", struct{}{}, &b); err != nil {
		return Block{}, err
	}
	if b.BlockID == "" {
		return Block{}, fmt.Errorf("tron getnowblock: %w", ErrNotFound)
	}
	return b, nil
}

// SolidBlock returns the newest solidified (irreversible) block
// (/walletsolidity/getnowblock).
func (c *HTTPClient) SolidBlock(ctx context.Context) (Block, error) {
	var b Block
	if err := c.post(ctx, "/walletsolidity/getnowblock", struct{}{}, &b); err != nil {
		return Block{}, fmt.Errorf("solidity endpoint %s/walletsolidity/getnowblock: %w (a java-tron node serves /walletsolidity on its solidity port, 8091 by default: set PIC_TRON_SOLIDITY_URL)",
			c.solidity, err)
	}
	if b.BlockID == "" {
		return Block{}, fmt.Errorf("tron solid block: %w", ErrNotFound)
	}
	return b, nil
}

// BlockByNum returns the block at height n (/wallet/getblockbynum).
// Errors: ErrNotFound (the node answers {} for a block it lacks).
func (c *HTTPClient) BlockByNum(ctx context.Context, n int64) (Block, error) {
	var b Block
	if err := c.post(ctx, "/wallet/getblockbynum", map[string]int64{"num": n}, &b); err != nil {
		return Block{}, err
	}
	if b.BlockID == "" {
		return Block{}, fmt.Errorf("tron block %d: %w", n, ErrNotFound)
	}
	return b, nil
}

// BlocksByLimitNext returns the blocks from height start up to, not
// including, end (/wallet/getblockbylimitnext; at most MaxBlockRange):
// as many as the node has, in height order, none past its head.
func (c *HTTPClient) BlocksByLimitNext(ctx context.Context, start, end int64) ([]Block, error) {
	var resp struct {
		Block []Block `json:"block"`
	}
	if err := c.post(ctx, "/wallet/getblockbylimitnext", map[string]int64{"startNum": start, "endNum": end}, &resp); err != nil {
		return nil, err
	}
	for i, b := range resp.Block {
		if b.Number() != start+int64(i) {
			return nil, fmt.Errorf("tron getblockbylimitnext %d-%d: block %d at place %d", start, end, b.Number(), i)
		}
	}
	return resp.Block, nil
}

// TransactionInfoByBlockNum returns the receipts of every transaction of
// block n (/wallet/gettransactioninfobyblocknum).
func (c *HTTPClient) TransactionInfoByBlockNum(ctx context.Context, n int64) ([]TransactionInfo, error) {
	var infos []TransactionInfo
	if err := c.post(ctx, "/wallet/gettransactioninfobyblocknum", map[string]int64{"num": n}, &infos); err != nil {
		return nil, err
	}
	return infos, nil
}

// TransactionInfoByID returns a transaction's receipt
// (/wallet/gettransactioninfobyid). Errors: ErrNotFound when the
// transaction is in no block (yet).
func (c *HTTPClient) TransactionInfoByID(ctx context.Context, txid string) (TransactionInfo, error) {
	var info TransactionInfo
	if err := c.post(ctx, "/wallet/gettransactioninfobyid", map[string]string{"value": txid}, &info); err != nil {
		return TransactionInfo{}, err
	}
	if info.ID == "" {
		return TransactionInfo{}, fmt.Errorf("tron transaction %s: %w", txid, ErrNotFound)
	}
	return info, nil
}

// Account returns an account (/wallet/getaccount); a never-activated
// address gives the zero Account.
func (c *HTTPClient) Account(ctx context.Context, address string) (Account, error) {
	var a Account
	err := c.post(ctx, "/wallet/getaccount", map[string]any{"address": hexAddress(address)}, &a)
	return a, err
}

// AccountResource returns an account's bandwidth and energy
// (/wallet/getaccountresource).
func (c *HTTPClient) AccountResource(ctx context.Context, address string) (AccountResource, error) {
	var r AccountResource
	err := c.post(ctx, "/wallet/getaccountresource", map[string]any{"address": hexAddress(address)}, &r)
	return r, err
}

// ChainParameters returns the chain's parameters by key
// (/wallet/getchainparameters): getEnergyFee, getTransactionFee, ….
func (c *HTTPClient) ChainParameters(ctx context.Context) (map[string]int64, error) {
	var resp struct {
		ChainParameter []ChainParameter `json:"chainParameter"`
	}
	if err := c.post(ctx, "/wallet/getchainparameters", struct{}{}, &resp); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(resp.ChainParameter))
	for _, p := range resp.ChainParameter {
		out[p.Key] = p.Value
	}
	return out, nil
}

// CreateTransaction asks the node to build an unsigned TRX transfer
// (/wallet/createtransaction).
func (c *HTTPClient) CreateTransaction(ctx context.Context, owner, to string, amountSun int64) (Transaction, error) {
	var tx Transaction
	err := c.post(ctx, "/wallet/createtransaction", map[string]any{"owner_address": hexAddress(owner), "to_address": hexAddress(to),
		"amount": amountSun}, &tx)
	if err != nil {
		return Transaction{}, err
	}
	if tx.RawDataHex == "" {
		return Transaction{}, fmt.Errorf("tron createtransaction: no transaction in the answer")
	}
	return tx, nil
}

// TriggerSmartContract asks the node to build an unsigned contract call
// (/wallet/triggersmartcontract).
func (c *HTTPClient) TriggerSmartContract(ctx context.Context, r TriggerRequest) (TransactionExtention, error) {
	return c.trigger(ctx, "/wallet/triggersmartcontract", r)
}

// TriggerConstantContract runs a contract call without a transaction
// (/wallet/triggerconstantcontract): a view's result, or the energy a
// call would use.
func (c *HTTPClient) TriggerConstantContract(ctx context.Context, r TriggerRequest) (TransactionExtention, error) {
	return c.trigger(ctx, "/wallet/triggerconstantcontract", r)
}

func (c *HTTPClient) trigger(ctx context.Context, path string, r TriggerRequest) (TransactionExtention, error) {
	r.OwnerAddress, r.ContractAddress = hexAddress(r.OwnerAddress), hexAddress(r.ContractAddress)
	var ext TransactionExtention
	if err := c.post(ctx, path, r, &ext); err != nil {
		return TransactionExtention{}, err
	}
	return ext, nil
}

// BroadcastHex sends a signed Transaction's protobuf bytes (/wallet/broadcasthex).
// A refusal is not an error here: read the result's Code.
func (c *HTTPClient) BroadcastHex(ctx context.Context, signedTx []byte) (BroadcastResult, error) {
	var r BroadcastResult
	err := c.post(ctx, "/wallet/broadcasthex", map[string]string{"transaction": hex.EncodeToString(signedTx)}, &r)
	return r, err
}

// BroadcastTransaction sends a signed transaction as JSON
// (/wallet/broadcasttransaction). The node re-encodes raw_data from the
// JSON, so BroadcastHex, which sends the signed bytes themselves, is what
// the Sender uses.
func (c *HTTPClient) BroadcastTransaction(ctx context.Context, tx Transaction) (BroadcastResult, error) {
	var r BroadcastResult
	err := c.post(ctx, "/wallet/broadcasttransaction", tx, &r)
	return r, err
}

// DecodeAddress reads a TRON address in base58check ("T…") or hex ("41…",
// 42 digits) form into its 21 bytes. Errors: a malformed address.
func DecodeAddress(s string) ([]byte, error) {
	if len(s) == 42 && strings.HasPrefix(s, "41") {
		b, err := hex.DecodeString(s)
		if err == nil {
			return b, nil
		}
	}
	payload, version, err := base58.CheckDecode(s)
	if err != nil || version != addressVersion || len(payload) != 20 {
		return nil, fmt.Errorf("tron: %q is not a TRON address", s)
	}
	return append([]byte{addressVersion}, payload...), nil
}

// EncodeAddress writes 21 address bytes (or the 20-byte EVM form) as base58check.
func EncodeAddress(b []byte) string {
	if len(b) == 21 {
		b = b[1:]
	}
	return base58.CheckEncode(b, addressVersion)
}

// hexAddress converts a base58 address to the API's hex form; anything
// else passes unchanged (the node will refuse it).
func hexAddress(s string) string {
	b, err := DecodeAddress(s)
	if err != nil {
		return s
	}
	return hex.EncodeToString(b)
}
