package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/httpapi"
	"github.com/acceptcryptohere/gateway/projections"
)

// picd projections rebuild --gateway asks a gateway's operator endpoint to
// rebuild in its own process and shows the progress until it is done.
func TestRebuildInGateway(t *testing.T) {
	ctx := context.Background()
	cfg, _, err := parseConfigArgs([]string{"--data=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b, err := openBackend(ctx, cfg, newLogger(&logs))
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	d := commands.Deps{Store: b.store, Assets: domain.DefaultAssets(), Now: time.Now, NewID: commands.NewIDGenerator(time.Now)}
	h := commands.New(d, commands.StaticAddresses{domain.ChainEthereum: "0xabc"}, func(domain.Chain, string) error { return nil })
	m, err := h.RegisterMerchant.Handle(ctx, commands.RegisterMerchant{Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	inv, err := h.CreateInvoice.Handle(ctx, commands.CreateInvoice{MerchantID: m.MerchantID, Asset: "USDT.ETH", Amount: "10"})
	if err != nil {
		t.Fatal(err)
	}
	const token = "operator-token-of-the-gateway"
	srv := httptest.NewServer(httpapi.NewOperatorRebuild(httpapi.OperatorRebuildConfig{Token: token, Check: projections.CheckRebuildNames,
		Run: func(ctx context.Context, names []string, progress func(int, int64), phase func(string, time.Duration)) error {
			return projections.RebuildWith(ctx, b.store, b.db, names, projections.RebuildOptions{Phase: phase,
				Progress: func(p projections.RebuildProgress) { progress(p.Applied, p.Total) }})
		}}))
	defer srv.Close()
	poll := rebuildPollEvery
	rebuildPollEvery = 10 * time.Millisecond
	t.Cleanup(func() { rebuildPollEvery = poll })

	var out, errOut bytes.Buffer
	err = projectionsCmd(ctx, []string{"rebuild", "--gateway", srv.URL}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "PIC_OPERATOR_TOKEN") {
		t.Fatalf("without a token: %v", err)
	}
	t.Setenv("PIC_OPERATOR_TOKEN", token)
	if err := projectionsCmd(ctx, []string{"rebuild", "--gateway", srv.URL, "nope"}, &out, &errOut); err == nil || !strings.Contains(err.Error(), "unknown projection") {
		t.Fatalf("an unknown projection: %v", err)
	}
	out.Reset()
	if err := projectionsCmd(ctx, []string{"rebuild", "--gateway", srv.URL}, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "rebuilt and swapped in the gateway in ") || !strings.Contains(out.String(), "old tables dropped ") {
		t.Fatalf("output: %q", out.String())
	}
	var status string
	if err := b.db.Read.QueryRowContext(ctx, `SELECT status FROM invoices WHERE invoice_id = ?`, inv.Invoice.InvoiceID).Scan(&status); err != nil || status != "new" {
		t.Fatalf("the invoice after the rebuild: %q %v", status, err)
	}
}

// TestRebuildBesideServingGateway: a rebuild of an embedded store from a
// second process stops while a gateway serves the file (it would fight the
// gateway for the one writer), goes on beside it with --beside-gateway,
// and runs as before once the gateway has stopped, even by SIGKILL.
func TestRebuildBesideServingGateway(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	g := startProc(t, []string{"PIC_DATA_DIR=" + dir})
	var out, errOut bytes.Buffer
	err := projectionsCmd(ctx, []string{"rebuild", "--data", dir}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "a gateway serves") || !strings.Contains(err.Error(), "--gateway URL") {
		t.Fatalf("beside a serving gateway: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "rebuilt") {
		t.Fatalf("it rebuilt anyway:\n%s", out.String())
	}
	if err := projectionsCmd(ctx, []string{"rebuild", "--beside-gateway", "--data", dir}, &out, &errOut); err != nil {
		t.Fatalf("with --beside-gateway: %v", err)
	}
	g.kill()
	out.Reset()
	if err := projectionsCmd(ctx, []string{"rebuild", "--data", dir}, &out, &errOut); err != nil || !strings.Contains(out.String(), "rebuilt and swapped") {
		t.Fatalf("after the gateway was killed: %v\n%s", err, out.String())
	}
}
