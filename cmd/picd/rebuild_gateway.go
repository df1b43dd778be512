package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/httpapi"
	"github.com/acceptcryptohere/gateway/projections"
)

// rebuildPollEvery is how often picd projections rebuild --gateway asks
// for the progress.
var rebuildPollEvery = 500 * time.Millisecond

// rebuildInGateway asks the gateway at base (its operator token from
// PIC_OPERATOR_TOKEN or PIC_OPERATOR_TOKEN_FILE) to rebuild inside its own
// process, and shows the progress until the rebuild ends.
func rebuildInGateway(ctx context.Context, base string, names []string, stdout io.Writer) error {
	token, err := operatorToken(Config{OperatorToken: os.Getenv("PIC_OPERATOR_TOKEN"), OperatorTokenFile: os.Getenv("PIC_OPERATOR_TOKEN_FILE")})
	if err != nil {
		return usageError(err)
	}
	if token == "" {
		return usageError(errors.New("--gateway needs the gateway's operator token in PIC_OPERATOR_TOKEN or PIC_OPERATOR_TOKEN_FILE"))
	}
	url := strings.TrimRight(base, "/") + "/v1/operator/projections/rebuild"
	body, _ := json.Marshal(map[string][]string{"projections": append([]string{}, names...)})
	call := func(method string, body []byte) (httpapi.RebuildState, error) {
		var st httpapi.RebuildState
		req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
		if err != nil {
			return st, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return st, unreachable(err)
		}
		defer resp.Body.Close()
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if err != nil {
			return st, unreachable(err)
		}
		if resp.StatusCode/100 != 2 {
			return st, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, strings.TrimSpace(string(raw)))
		}
		return st, json.Unmarshal(raw, &st)
	}
	st, err := call(http.MethodPost, body)
	if err != nil {
		return err
	}
	ours := st.StartedAt
	for st.State == "running" {
		select {
		case <-ctx.Done():
			fmt.Fprintln(stdout)
			return fmt.Errorf("stopped watching; the rebuild goes on in the gateway (GET %s): %w", url, ctx.Err())
		case <-time.After(rebuildPollEvery):
		}
		if st, err = call(http.MethodGet, nil); err != nil {
			return err
		}
		if ours == nil || st.StartedAt == nil || *st.StartedAt != *ours {
			return fmt.Errorf("the gateway no longer reports the rebuild it started (restarted?); GET %s", url)
		}
		fmt.Fprint(stdout, "\r"+progressBar(projections.RebuildProgress{Applied: st.Applied, Total: st.Total, Elapsed: time.Since(time.UnixMilli(*ours))}))
	}
	fmt.Fprintln(stdout)
	if st.State != "done" || st.FinishedAt == nil {
		return fmt.Errorf("the rebuild in the gateway failed: %s", st.Error)
	}
	var phases []string
	for _, p := range st.Phases {
		phases = append(phases, p.Name+" "+(time.Duration(p.MS)*time.Millisecond).String())
	}
	took := time.Duration(*st.FinishedAt-*st.StartedAt) * time.Millisecond
	fmt.Fprintf(stdout, "rebuilt and swapped in the gateway in %s (%s)\n", took, strings.Join(phases, ", "))
	return nil
}
