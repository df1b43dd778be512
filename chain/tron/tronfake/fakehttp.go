package tronfake

import (
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"

	"github.com/acceptcryptohere/gateway/domain"
)

// The fake's own endpoints, under /fake/ (JSON in, JSON out; a failure is
// HTTP 400 with {"error": "…"}). Amounts are decimal strings of TRX or
// USDT (6 decimals each).
//
//	GET  /fake/info                                  {usdt_contract, payer, height}
//	POST /fake/pay     {to, asset: TRX|USDT, amount} {txid}: a signed transfer from the test wallet, pooled
//	POST /fake/mine    {blocks}                      {height}: mine blocks (default 1, at most 1000)
//	POST /fake/fund    {address, trx, usdt}          {address, trx, usdt}: credit an address out of thin air
//	POST /fake/balance {address}                     {address, trx, usdt, activated}
//	POST /fake/tx      {txid}                        {txid, verified, block, result, fee_sun}

// maxMineBlocks bounds one /fake/mine.
const maxMineBlocks = 1000

type payRequest struct {
	To     string `json:"to"`
	Asset  string `json:"asset"`
	Amount string `json:"amount"`
}

type fundRequest struct {
	Address string `json:"address"`
	TRX     string `json:"trx"`
	USDT    string `json:"usdt"`
}

type balanceJSON struct {
	Address   string `json:"address"`
	TRX       string `json:"trx"`
	USDT      string `json:"usdt"`
	Activated bool   `json:"activated"`
}

func (f *Node) serveFake(w http.ResponseWriter, r *http.Request) {
	fail := func(err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	if r.URL.Path == "/fake/info" {
		writeJSON(w, map[string]any{"usdt_contract": f.Token(), "payer": f.Payer(), "height": f.Height()})
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	decode := func(v any) bool {
		if r.ContentLength == 0 {
			return true
		}
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(v); err != nil {
			fail(fmt.Errorf("bad JSON: %w", err))
			return false
		}
		return true
	}
	switch r.URL.Path {
	case "/fake/pay":
		var req payRequest
		if !decode(&req) {
			return
		}
		units, err := baseUnits(req.Amount)
		if err != nil || units <= 0 {
			fail(fmt.Errorf("amount %q: want a positive decimal with at most 6 decimals", req.Amount))
			return
		}
		txid, err := f.Pay(req.To, req.Asset, units)
		if err != nil {
			fail(err)
			return
		}
		writeJSON(w, map[string]string{"txid": txid})
	case "/fake/mine":
		var req struct {
			Blocks *int `json:"blocks"`
		}
		if !decode(&req) {
			return
		}
		n := 1
		if req.Blocks != nil {
			n = *req.Blocks
		}
		if n < 1 || n > maxMineBlocks {
			fail(fmt.Errorf("blocks %d: want 1 to %d", n, maxMineBlocks))
			return
		}
		writeJSON(w, map[string]int64{"height": f.Mine(n)})
	case "/fake/fund":
		var req fundRequest
		if !decode(&req) {
			return
		}
		sun, err1 := baseUnits(req.TRX)
		usdt, err2 := baseUnits(req.USDT)
		if err1 != nil || err2 != nil {
			fail(fmt.Errorf("trx %q, usdt %q: want decimals with at most 6 decimals", req.TRX, req.USDT))
			return
		}
		if err := f.Fund(req.Address, sun, usdt); err != nil {
			fail(err)
			return
		}
		f.writeBalance(w, req.Address, fail)
	case "/fake/balance":
		var req struct {
			Address string `json:"address"`
		}
		if !decode(&req) {
			return
		}
		f.writeBalance(w, req.Address, fail)
	case "/fake/tx":
		var req struct {
			TxID string `json:"txid"`
		}
		if !decode(&req) {
			return
		}
		out := map[string]any{"txid": req.TxID, "verified": f.VerifiedTx(req.TxID), "block": f.BlockOf(req.TxID)}
		if info, ok := f.Receipt(req.TxID); ok {
			out["result"], out["fee_sun"] = info.Receipt.Result, info.Fee
			if info.Receipt.Result == "" {
				out["result"] = "SUCCESS" // a TRX transfer's receipt has no result
			}
		}
		writeJSON(w, out)
	default:
		http.NotFound(w, r)
	}
}

func (f *Node) writeBalance(w http.ResponseWriter, address string, fail func(error)) {
	sun, usdt, err := f.Balances(address)
	if err != nil {
		fail(err)
		return
	}
	writeJSON(w, balanceJSON{Address: address, TRX: domain.FromBaseUnits(big.NewInt(sun), 6).String(),
		USDT: domain.FromBaseUnits(usdt, 6).String(), Activated: f.Activated(address)})
}

// baseUnits reads a 6-decimal amount ("" is 0).
func baseUnits(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	a, err := domain.ParseAmount(s, 6)
	if err != nil {
		return 0, err
	}
	u, err := a.BaseUnits(6)
	if err != nil || !u.IsInt64() {
		return 0, fmt.Errorf("amount %s out of range", s)
	}
	return u.Int64(), nil
}
