package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/acceptcryptohere/gateway/readapi"
)

// parseStatementTime reads a statement bound: a date (midnight UTC) or an
// RFC 3339 time.
func parseStatementTime(name, s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &exitError{code: exitUsage, err: fmt.Errorf("audit: --%s %q: want YYYY-MM-DD or an RFC 3339 time", name, s)}
	}
	return t, nil
}

// statement is "picd audit --from --to": the period statement per merchant
// and for the operator, as a table, JSON or CSV.
func statement(ctx context.Context, b *backend, out auditOutput, stdout io.Writer) error {
	if out.from == "" || out.to == "" {
		return &exitError{code: exitUsage, err: fmt.Errorf("audit: a statement needs both --from and --to")}
	}
	from, err := parseStatementTime("from", out.from)
	if err != nil {
		return err
	}
	to, err := parseStatementTime("to", out.to)
	if err != nil {
		return err
	}
	if !from.Before(to) {
		return &exitError{code: exitUsage, err: fmt.Errorf("audit: --from %s is not before --to %s", out.from, out.to)}
	}
	st, err := readapi.BuildStatement(ctx, b.store, readapi.StatementOptions{From: from, To: to, Merchant: out.merchant})
	if err != nil {
		return unreachable(fmt.Errorf("audit: statement: %w", err))
	}
	switch {
	case out.json:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case out.csv:
		return writeStatementCSV(stdout, st)
	}
	printStatement(stdout, st)
	return nil
}

// writeStatementCSV writes one row per account, asset and line (opening,
// each kind of movement, closing), and the log's end as a last row.
func writeStatementCSV(w io.Writer, st readapi.Statement) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"from", "to", "owner", "account", "asset", "line", "amount", "count"})
	f, t := st.From.Format(time.RFC3339), st.To.Format(time.RFC3339)
	for _, a := range st.Accounts {
		_ = cw.Write([]string{f, t, a.Owner, a.Account, a.Asset, "opening", a.Opening.String(), ""})
		for _, mv := range a.Movements {
			_ = cw.Write([]string{f, t, a.Owner, a.Account, a.Asset, mv.Kind, mv.Amount.String(), fmt.Sprint(mv.Count)})
		}
		_ = cw.Write([]string{f, t, a.Owner, a.Account, a.Asset, "closing", a.Closing.String(), ""})
	}
	if st.LogEnd != nil {
		_ = cw.Write([]string{f, t, "", "log_end", "", fmt.Sprintf("seq %d", st.LogEnd.Seq), st.LogEnd.Hash, ""})
	}
	cw.Flush()
	return cw.Error()
}

func printStatement(w io.Writer, st readapi.Statement) {
	fmt.Fprintf(w, "statement from %s to %s (recorded time, UTC; the end excluded): %d money events in the period\n\n",
		st.From.Format(time.RFC3339), st.To.Format(time.RFC3339), st.Events)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "OWNER\tACCOUNT\tASSET\tLINE\tAMOUNT\tEVENTS")
	for _, a := range st.Accounts {
		fmt.Fprintf(tw, "%s\t%s\t%s\topening\t%s\t\n", a.Owner, a.Account, a.Asset, a.Opening)
		for _, mv := range a.Movements {
			fmt.Fprintf(tw, "\t\t\t%s\t%s\t%d\n", mv.Kind, mv.Amount, mv.Count)
		}
		fmt.Fprintf(tw, "\t\t\tclosing\t%s\t\n", a.Closing)
	}
	tw.Flush()
	fmt.Fprintln(w)
	if st.LogEnd != nil {
		fmt.Fprintf(w, "read the log to chain seq %d, hash %s\n(picd audit --verify-chain recomputes it: a changed past changes it)\n", st.LogEnd.Seq, st.LogEnd.Hash)
	} else {
		fmt.Fprintln(w, "this store keeps no hash chain")
	}
}
