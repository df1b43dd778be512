package tron

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"

	"github.com/acceptcryptohere/gateway/sqldb"
)

// reservesWorkers is how many balance requests are in flight at once: the
// TRON HTTP API has no batch call.
const reservesWorkers = 8

// BalancesAt reads the TRX balance (contract empty) or the token balance
// of every address, in base units, at the node's newest block (the API
// reads no older state). progress, if set, is called with the addresses done.
func BalancesAt(ctx context.Context, c *HTTPClient, contract string, addrs []string, progress func(done int)) ([]*big.Int, error) {
	out := make([]*big.Int, len(addrs))
	var done atomic.Int64
	var firstErr error
	var once sync.Once
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	next := make(chan int)
	var wg sync.WaitGroup
	for range reservesWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				v, err := balanceOf(ctx, c, contract, addrs[i])
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("tron: balance of %s: %w", addrs[i], err); cancel() })
					continue
				}
				out[i] = v
				if n := done.Add(1); progress != nil && (n%500 == 0 || int(n) == len(addrs)) {
					progress(int(n))
				}
			}
		}()
	}
feed:
	for i := range addrs {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, ctx.Err()
}

func balanceOf(ctx context.Context, c *HTTPClient, contract, addr string) (*big.Int, error) {
	if contract == "" {
		a, err := c.Account(ctx, addr)
		if err != nil {
			return nil, err
		}
		return big.NewInt(a.Balance), nil
	}
	owner, err := DecodeAddress(addr)
	if err != nil {
		return nil, err
	}
	param := make([]byte, 32)
	copy(param[12:], owner[1:])
	ext, err := c.TriggerConstantContract(ctx, TriggerRequest{OwnerAddress: addr, ContractAddress: contract,
		FunctionSelector: "balanceOf(address)", Parameter: hex.EncodeToString(param)})
	if err != nil {
		return nil, err
	}
	if !ext.Result.Result || len(ext.ConstantResult) != 1 {
		return nil, fmt.Errorf("balanceOf: %s %s", ext.Result.Code, nodeMessage(ext.Result.Message))
	}
	b, err := hex.DecodeString(ext.ConstantResult[0])
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("balanceOf: unexpected result %q", ext.ConstantResult[0])
	}
	return new(big.Int).SetBytes(b), nil
}

// SweepFlow is what the gateway's own sweeps moved out of (negative) or
// into a deposit address, per asset, in base units.
type SweepFlow struct {
	Delta     map[string]map[string]*big.Int // asset -> address -> base units
	InFlight  []string
	Addresses map[string]bool // of sweeps not ended
}

// SweepFlows reads tron_sweeps: a TRX sweep took its amount and the TRX
// its transfer burned from the address; a token sweep took the token
// amount, brought the address its top-ups' TRX, and the transfer burned
// what the log's cost of that transaction says (costOf; the top-ups' own
// fees are the hot wallet's).
func SweepFlows(ctx context.Context, db sqldb.DB, native string, costOf func(txid string) *big.Int) (SweepFlow, error) {
	f := SweepFlow{Delta: map[string]map[string]*big.Int{}, Addresses: map[string]bool{}}
	rows, err := db.Read.QueryContext(ctx, `SELECT sweep_id, asset, address, amount_units, state, transfer_txid, topup_sun, burned_sun FROM tron_sweeps`)
	if err != nil {
		return f, fmt.Errorf("tron: sweeps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, asset, addr, amount, state, transfer string
		var topup, burned int64
		if err := rows.Scan(&id, &asset, &addr, &amount, &state, &transfer, &topup, &burned); err != nil {
			return f, err
		}
		units, _ := new(big.Int).SetString(amount, 10)
		if units == nil {
			units = new(big.Int)
		}
		if asset != native {
			f.add(native, addr, big.NewInt(topup))
		}
		switch state {
		case SweepDone:
			f.add(asset, addr, new(big.Int).Neg(units))
			if asset == native {
				f.add(native, addr, big.NewInt(-burned))
			} else if transfer != "" {
				f.add(native, addr, new(big.Int).Neg(costOf(transfer)))
			}
		case SweepNothing, SweepEmpty:
		default:
			f.InFlight = append(f.InFlight, fmt.Sprintf("sweep %s %s %s %s", id, asset, addr, state))
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
