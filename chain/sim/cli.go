package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is where CLI finds the gateway when no URL is given.
const DefaultBaseURL = "http://localhost:3000"

// ErrUsage: the command line is not one CLI understands; the error's text
// is the usage.
var ErrUsage = errors.New(`usage:
  picd sim pay <invoice_id|address> <amount>   send a simulated payment (0 confirmations)
  picd sim mine [blocks]                       mine blocks (default 1) on every simulated chain
  picd sim reorg [--double-spend] [depth]      reorganise the last blocks (default 1): their payments are
                                               reverted and back in the mempool, mined again by the next
                                               blocks; with --double-spend they are gone
The gateway must run with the simulator on; the token is PIC_SIM_TOKEN.`)

// CLI runs "picd sim …" (args are what follows "sim") against a running
// gateway's operator endpoints at baseURL (DefaultBaseURL when empty),
// authenticated with token, and prints a summary to stdout.
// Errors: ErrUsage, ErrNoToken, the gateway's answer ({error, message}) or
// a connection error.
func CLI(ctx context.Context, args []string, baseURL, token string, stdout io.Writer) error {
	if len(args) == 0 {
		return ErrUsage
	}
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	baseURL = strings.TrimRight(baseURL, "/")
	count := func(i int) (int, error) {
		if len(args) <= i {
			return 1, nil
		}
		n, err := strconv.Atoi(args[i])
		if err != nil || n < 1 || len(args) > i+1 {
			return 0, ErrUsage
		}
		return n, nil
	}
	switch args[0] {
	case "pay":
		if len(args) != 3 {
			return ErrUsage
		}
		if token == "" {
			return ErrNoToken
		}
		req := payRequest{InvoiceID: args[1], Amount: args[2]}
		if !strings.HasPrefix(args[1], "inv_") {
			req = payRequest{Address: args[1], Amount: args[2]}
		}
		var p Payment
		if err := call(ctx, baseURL+"/v1/sim/pay", token, req, &p); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "sent %s %s to %s for invoice %s\n  txid %s\n  0 of %d confirmations: run `picd sim mine` to add blocks\n",
			p.Amount, p.Asset, p.Address, p.InvoiceID, p.TxID, p.RequiredConfirmations)
		return nil
	case "mine":
		n, err := count(1)
		if err != nil {
			return err
		}
		if token == "" {
			return ErrNoToken
		}
		var res MineResult
		if err := call(ctx, baseURL+"/v1/sim/mine", token, mineRequest{Blocks: &n}, &res); err != nil {
			return err
		}
		var heights []string
		for c, h := range res.Heights {
			heights = append(heights, fmt.Sprintf("%s %d", c, h))
		}
		sort.Strings(heights)
		fmt.Fprintf(stdout, "mined %d block(s); heights: %s\n", res.Blocks, strings.Join(heights, ", "))
		for _, c := range res.Confirmed {
			fmt.Fprintf(stdout, "  confirmed %s for invoice %s (%d confirmations)\n", c.TxID, c.InvoiceID, c.Confirmations)
		}
		for _, c := range res.Final {
			fmt.Fprintf(stdout, "  final %s for invoice %s: its net is available\n", c.TxID, c.InvoiceID)
		}
		if len(res.Failed) > 0 {
			fmt.Fprintf(stdout, "  %d confirmation(s) failed; the next mine retries them (see the gateway's log)\n", len(res.Failed))
		}
		return nil
	case "reorg":
		reinclude := true
		if len(args) > 1 && args[1] == "--double-spend" {
			reinclude = false
			args = append(args[:1], args[2:]...)
		}
		n, err := count(1)
		if err != nil {
			return err
		}
		if token == "" {
			return ErrNoToken
		}
		var res ReorgResult
		if err := call(ctx, baseURL+"/v1/sim/reorg", token, reorgRequest{Depth: n, Reinclude: &reinclude}, &res); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "reorganised the last %d block(s); %d payment(s) reverted\n", res.Depth, len(res.Reverted))
		if reinclude && len(res.Reverted) > 0 {
			fmt.Fprintln(stdout, "  back in the mempool: the next blocks mine them again")
		}
		for _, r := range res.Reverted {
			fmt.Fprintf(stdout, "  reverted %s of invoice %s\n", r.TxID, r.InvoiceID)
		}
		return nil
	}
	return ErrUsage
}

// call posts body as JSON and decodes a 200 answer into out.
func call(ctx context.Context, url, token string, body, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	raw, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("sim: is the gateway running with the simulator on? %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("sim: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorBody
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return fmt.Errorf("sim: %s (%d %s)", e.Message, resp.StatusCode, e.Error)
		}
		return fmt.Errorf("sim: the gateway answered %s", resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("sim: unexpected answer: %w", err)
	}
	return nil
}
