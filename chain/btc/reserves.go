package btc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/btcsuite/btcd/rpcclient"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// Output is one output the gateway's own tables say it holds.
type Output struct {
	OutPoint string // txid:vout
	Address  string
	Sat      int64
	Note     string // why it may differ (in the mempool, spent by a payout in flight)
}

// ExpectedOutputs is the gateway's UTXO set by its own tables: the
// wallet's outputs not spent (an output locked by a payout is spent once
// the payout is confirmed: payoutStatus says so), and the deposits not
// reverted that the wallet has not taken in yet (not final).
func ExpectedOutputs(ctx context.Context, db sqldb.DB, payoutStatus func(id string) string) ([]Output, error) {
	var out []Output
	rows, err := db.Read.QueryContext(ctx, `SELECT outpoint, address, amount_sat, state, payout_id FROM chain_btc_utxos`)
	if err != nil {
		return nil, fmt.Errorf("btc: utxos: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var o Output
		var state, payout string
		if err := rows.Scan(&o.OutPoint, &o.Address, &o.Sat, &state, &payout); err != nil {
			return nil, err
		}
		switch state {
		case utxoMissing, utxoVoid: // reverted deposit; change of a payout that failed
			continue
		case utxoLocked:
			switch st := payoutStatus(payout); st {
			case string(domain.PayoutConfirmedStatus):
				continue // spent
			case string(domain.PayoutSignedStatus), string(domain.PayoutSentStatus):
				o.Note = "spent by payout " + payout + " (" + st + ")"
			}
		case utxoPending:
			o.Note = "change of payout " + payout
		}
		out = append(out, o)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	drows, err := db.Read.QueryContext(ctx, db.Q(`SELECT deposit_id, address, amount_sat, block_height FROM chain_btc_deposits d
		WHERE state <> ? AND NOT EXISTS (SELECT 1 FROM chain_btc_utxos u WHERE u.outpoint = d.deposit_id)`), stateReverted)
	if err != nil {
		return nil, fmt.Errorf("btc: deposits: %w", err)
	}
	defer drows.Close()
	for drows.Next() {
		var o Output
		var height int64
		if err := drows.Scan(&o.OutPoint, &o.Address, &o.Sat, &height); err != nil {
			return nil, err
		}
		if height == 0 {
			o.Note = "a deposit in the mempool"
		}
		out = append(out, o)
	}
	return out, drows.Err()
}

// Tip is the node's best block when outputs were read.
type Tip struct {
	Height int64
	Hash   string
}

// outputsBatch is how many gettxout calls are in flight at once.
const outputsBatch = 500

// ReadOutputs asks the node for every output (gettxout, mined only): its
// value in satoshis, or -1 when it is spent or unknown. The tip is read
// before and after; when it moved, the outputs are read again (three
// times at most) so that all are of one block.
func ReadOutputs(ctx context.Context, cfg Config, outs []Output, progress func(done int)) (Tip, []int64, error) {
	client, err := rpcclient.New(&rpcclient.ConnConfig{
		Host: cfg.RPCHost, User: cfg.RPCUser, Pass: cfg.RPCPass, CookiePath: cfg.RPCCookiePath,
		HTTPPostMode: true, DisableTLS: len(cfg.TLSCert) == 0, Certificates: cfg.TLSCert,
	}, nil)
	if err != nil {
		return Tip{}, nil, fmt.Errorf("btc: rpc client: %w", err)
	}
	defer client.Shutdown()
	for try := 0; ; try++ {
		before, err := tip(client)
		if err != nil {
			return Tip{}, nil, err
		}
		sats, err := readOutputs(ctx, client, outs, progress)
		if err != nil {
			return Tip{}, nil, err
		}
		after, err := tip(client)
		if err != nil {
			return Tip{}, nil, err
		}
		if after == before || try == 2 {
			return before, sats, nil
		}
	}
}

func tip(c *rpcclient.Client) (Tip, error) {
	h, height, err := c.GetBestBlock()
	if err != nil {
		return Tip{}, fmt.Errorf("btc: best block: %w", err)
	}
	return Tip{Height: int64(height), Hash: h.String()}, nil
}

func readOutputs(ctx context.Context, c *rpcclient.Client, outs []Output, progress func(int)) ([]int64, error) {
	sats := make([]int64, len(outs))
	for lo := 0; lo < len(outs); lo += outputsBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+outputsBatch, len(outs))
		futures := make([]rpcclient.FutureRawResult, hi-lo)
		for i := lo; i < hi; i++ {
			txid, vout, ok := strings.Cut(outs[i].OutPoint, ":")
			n, err := strconv.ParseUint(vout, 10, 32)
			if !ok || err != nil {
				return nil, fmt.Errorf("btc: outpoint %q", outs[i].OutPoint)
			}
			params := []json.RawMessage{json.RawMessage(strconv.Quote(txid)), json.RawMessage(strconv.FormatUint(n, 10)), json.RawMessage("false")}
			futures[i-lo] = c.RawRequestAsync("gettxout", params)
		}
		for i, f := range futures {
			raw, err := f.Receive()
			if err != nil {
				return nil, fmt.Errorf("btc: gettxout %s: %w", outs[lo+i].OutPoint, err)
			}
			if sats[lo+i], err = outputValue(raw); err != nil {
				return nil, fmt.Errorf("btc: gettxout %s: %w", outs[lo+i].OutPoint, err)
			}
		}
		if progress != nil {
			progress(hi)
		}
	}
	return sats, nil
}

// outputValue reads gettxout's value exactly (a decimal, never a float):
// -1 for null (spent or unknown).
func outputValue(raw json.RawMessage) (int64, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return -1, nil
	}
	var r struct {
		Value json.Number `json:"value"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&r); err != nil {
		return 0, err
	}
	a, err := domain.ParseAmount(r.Value.String(), 8)
	if err != nil {
		return 0, err
	}
	u, err := a.BaseUnits(8)
	if err != nil || !u.IsInt64() {
		return 0, errors.Join(err, errors.New("value out of range"))
	}
	return u.Int64(), nil
}
