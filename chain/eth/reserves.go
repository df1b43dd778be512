package eth

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// Pinned is the block a reserves scan reads every balance at, so that
// the balances of many addresses are one moment of the chain.
type Pinned struct {
	Height uint64 `json:"height"`
	Hash   string `json:"hash"`
}

// PinHead reads the node's newest block.
func (c *NodeClient) PinHead(ctx context.Context) (Pinned, error) { return c.pin(ctx, "latest") }

// PinAt reads the block at height.
func (c *NodeClient) PinAt(ctx context.Context, height uint64) (Pinned, error) {
	return c.pin(ctx, hexutil.EncodeUint64(height))
}

func (c *NodeClient) pin(ctx context.Context, tag string) (Pinned, error) {
	var h *struct {
		Number hexutil.Uint64 `json:"number"`
		Hash   common.Hash    `json:"hash"`
	}
	if err := c.rpc.CallContext(ctx, &h, "eth_getBlockByNumber", tag, false); err != nil {
		return Pinned{}, fmt.Errorf("eth: block %s: %w", tag, err)
	}
	if h == nil {
		return Pinned{}, fmt.Errorf("eth: block %s: not found", tag)
	}
	return Pinned{Height: uint64(h.Number), Hash: h.Hash.Hex()}, nil
}

// reservesBatch is how many calls one JSON-RPC batch carries: geth's
// default limit is 1000 per batch.
const reservesBatch = 500

// reservesWorkers is how many batches are in flight at once.
const reservesWorkers = 4

// balanceOfSelector is the ERC-20 balanceOf(address) selector.
var balanceOfSelector = hexutil.MustDecode("0x70a08231")

// BalancesAt reads, at block at, the ETH balance of every address (token
// empty) or its balance of the ERC-20 token, in base units, in batched
// JSON-RPC calls. progress, if set, is called with the addresses done.
func (c *NodeClient) BalancesAt(ctx context.Context, at Pinned, token string, addrs []common.Address, progress func(done int)) ([]*big.Int, error) {
	out := make([]*big.Int, len(addrs))
	block := hexutil.EncodeUint64(at.Height)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, reservesWorkers)
	next := make(chan int)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range reservesWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for lo := range next {
				hi := min(lo+reservesBatch, len(addrs))
				if err := c.balanceBatch(ctx, block, token, addrs[lo:hi], out[lo:hi]); err != nil {
					errs <- err
					cancel()
					return
				}
				n := done.Add(int64(hi - lo))
				if progress != nil {
					progress(int(n))
				}
			}
		}()
	}
feed:
	for lo := 0; lo < len(addrs); lo += reservesBatch {
		select {
		case next <- lo:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *NodeClient) balanceBatch(ctx context.Context, block, token string, addrs []common.Address, out []*big.Int) error {
	elems := make([]rpc.BatchElem, len(addrs))
	bal := make([]hexutil.Big, len(addrs))
	raw := make([]hexutil.Bytes, len(addrs))
	for i, a := range addrs {
		if token == "" {
			elems[i] = rpc.BatchElem{Method: "eth_getBalance", Args: []any{a, block}, Result: &bal[i]}
			continue
		}
		data := append(append([]byte{}, balanceOfSelector...), common.LeftPadBytes(a.Bytes(), 32)...)
		call := map[string]any{"to": common.HexToAddress(token), "data": hexutil.Bytes(data)}
		elems[i] = rpc.BatchElem{Method: "eth_call", Args: []any{call, block}, Result: &raw[i]}
	}
	if err := c.rpc.BatchCallContext(ctx, elems); err != nil {
		return fmt.Errorf("eth: balances: %w", err)
	}
	for i, e := range elems {
		if e.Error != nil {
			return fmt.Errorf("eth: balance of %s at %s: %w", addrs[i].Hex(), block, e.Error)
		}
		if token == "" {
			out[i] = bal[i].ToInt()
			continue
		}
		if len(raw[i]) != 32 {
			return fmt.Errorf("eth: balanceOf %s on %s answered %d bytes, not 32", addrs[i].Hex(), token, len(raw[i]))
		}
		out[i] = new(big.Int).SetBytes(raw[i])
	}
	return nil
}

// SweepFlow is what the gateway's own sweeps moved out of (negative) or
// into a deposit address, per asset, in base units.
type SweepFlow struct {
	// Delta maps asset -> lower-case address -> base units.
	Delta map[string]map[string]*big.Int
	// InFlight lists the sweeps not ended (their address may differ from
	// what is recorded until they do), as "sweep_id asset address state".
	InFlight []string
	// Addresses are the addresses of unfinished sweeps, lower-case.
	Addresses map[string]bool
	// Problems: a sweep transaction whose gas the log books otherwise than
	// the receipt said (a NetworkCostPaid missing or wrong, money rule 7).
	Problems []string
}

// SweepFlows reads every sweep of the eth_sweeps table: a done sweep of
// ETH took its amount and its gas from the address; a token sweep took
// the token amount, and brought the address the ETH of its top-ups, less
// the gas its transfer burned.
//
// A reverted transfer moved no coin and burned its gas: costOf gives what
// the log booked for it (its NetworkCostPaid).
func SweepFlows(ctx context.Context, db sqldb.DB, native string, costOf func(txid string) *big.Int) (SweepFlow, error) {
	f := SweepFlow{Delta: map[string]map[string]*big.Int{}, Addresses: map[string]bool{}}
	// The address burned its transfer's gas (fee_paid_wei); gas_cost_wei
	// is what the sweep cost the hot wallet, for a token its top-ups.
	rows, err := db.Read.QueryContext(ctx, `SELECT w.sweep_id, w.asset, w.address, w.amount_units, w.state, w.topup_wei,
		COALESCE(t.fee_paid_wei, ''), w.transfer_txid FROM eth_sweeps w LEFT JOIN eth_txs t ON t.txid = w.transfer_txid`)
	if err != nil {
		return f, fmt.Errorf("eth: sweeps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, asset, addr, amount, state, topup, gas, transfer string
		if err := rows.Scan(&id, &asset, &addr, &amount, &state, &topup, &gas, &transfer); err != nil {
			return f, err
		}
		addr = strings.ToLower(addr)
		if asset != native {
			f.add(native, addr, parseUnits(topup))
		}
		switch state {
		case SweepDone:
			f.add(asset, addr, new(big.Int).Neg(parseUnits(amount)))
			f.add(native, addr, new(big.Int).Neg(parseUnits(gas)))
			if booked := costOf(transfer); gas != "" && booked.Cmp(parseUnits(gas)) != 0 {
				f.Problems = append(f.Problems, fmt.Sprintf("sweep %s of %s: its transfer %s paid %s wei of gas, the log books %s",
					id, addr, transfer, gas, booked))
			}
		case SweepFailed:
			if transfer != "" {
				f.add(native, addr, new(big.Int).Neg(costOf(transfer)))
			}
		default:
			f.InFlight = append(f.InFlight, fmt.Sprintf("%s %s %s %s", id, asset, addr, state))
			f.Addresses[addr] = true
		}
	}
	return f, rows.Err()
}

func (f SweepFlow) add(asset, addr string, v *big.Int) {
	m := f.Delta[asset]
	if m == nil {
		m = map[string]*big.Int{}
		f.Delta[asset] = m
	}
	if m[addr] == nil {
		m[addr] = new(big.Int)
	}
	m[addr].Add(m[addr], v)
}

func parseUnits(s string) *big.Int {
	v, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return new(big.Int)
	}
	return v
}

// CostProblems lists the gateway's transactions other than sweep
// transfers (SweepFlows checks those) whose gas was the operator's cost —
// gas top-ups, voids, token payouts and refunds — and which the log books
// otherwise than their receipt said: a NetworkCostPaid missing (its
// append failed, and the sender has not appended it again yet) or wrong.
// The hot wallet paid them, so without this check a missing cost would
// hide in the operator float.
func CostProblems(ctx context.Context, db sqldb.DB, native string, costOf func(txid string) *big.Int) ([]string, error) {
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT txid, purpose, ref, from_address, fee_paid_wei, cost_booked FROM eth_txs
		WHERE fee_paid_wei <> '' AND (purpose IN ('topup', 'void') OR (purpose = 'payout' AND asset <> ?)) ORDER BY created_at`), native)
	if err != nil {
		return nil, fmt.Errorf("eth: costs: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var txid, purpose, ref, from, fee string
		var booked int
		if err := rows.Scan(&txid, &purpose, &ref, &from, &fee, &booked); err != nil {
			return nil, err
		}
		if got := costOf(txid); got.Cmp(parseUnits(fee)) != 0 {
			due := ""
			if booked == 0 {
				due = " (due: the sender appends it again)"
			}
			out = append(out, fmt.Sprintf("%s %s of %s from %s paid %s wei of gas, the log books %s%s",
				purpose, txid, ref, strings.ToLower(from), fee, got, due))
		}
	}
	return out, rows.Err()
}
