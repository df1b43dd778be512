package web

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/acceptcryptohere/gateway/domain"
)

// waitStatus waits until the read model shows the invoice in status (the
// projections run behind the commands).
func (s *stack) waitStatus(t *testing.T, id string, status domain.Status) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		inv, err := s.reader.InvoiceByID(context.Background(), "", id)
		if err == nil && inv.Status == status {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("invoice %s: status %s (%v), want %s", id, inv.Status, err, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

var (
	bigAmount  = regexp.MustCompile(`<span id="pay-amount-big">([^<]*)</span>`)
	copyAmount = regexp.MustCompile(`<code id="pay-amount">([^<]*)</code>`)
	walletHref = regexp.MustCompile(`<a class="button" id="wallet-link" href="([^"]*)"`)
	qrMarkup   = regexp.MustCompile(`<figure class="qr-box" id="qr"><svg.*?</svg>`)
)

// TestCheckoutPartiallyPaidAsksForAmountDue is issue #15: after half the
// pay_amount arrived, everything the customer may follow (the big amount,
// the copy field, the wallet link and the QR code) asks for the rest, not
// for the whole pay_amount again.
func TestCheckoutPartiallyPaidAsksForAmountDue(t *testing.T) {
	s := newStack(t)
	m := s.signUp(t, "Partial Shop")
	assets := domain.DefaultAssets()
	for _, tc := range []struct{ asset, amount string }{{"BTC", "0.01"}, {"ETH", "0.05"}, {"USDT.ETH", "49.99"}, {"USDT.TRON", "25"}} {
		t.Run(tc.asset, func(t *testing.T) {
			a, err := assets.Lookup(tc.asset)
			if err != nil {
				t.Fatal(err)
			}
			inv := s.createInvoice(t, m.SecretKey, map[string]any{"asset": tc.asset, "amount": tc.amount})
			pay := domain.MustAmount(inv.PayAmount)
			units, err := pay.BaseUnits(a.Decimals)
			if err != nil {
				t.Fatal(err)
			}
			half := domain.FromBaseUnits(units.Rsh(units, 1), a.Decimals)
			due := pay.Sub(half)
			s.simPay(t, inv.ID, half.String())
			s.waitStatus(t, inv.ID, domain.StatusPartiallyPaid)

			var api map[string]any
			if st := s.call(t, "GET", "/v1/invoices/"+inv.ID, m.SecretKey, nil, &api); st != http.StatusOK {
				t.Fatalf("GET invoice: %d", st)
			}
			if api["amount_due"] != due.String() {
				t.Errorf("API amount_due %#v, want %q", api["amount_due"], due)
			}

			wantURI, err := WalletURI(a, inv.PayAddress, due, 1)
			if err != nil {
				t.Fatal(err)
			}
			p := get(t, s.srv.Config.Handler, "GET", "/pay/"+inv.ID)
			if p.status != http.StatusOK {
				t.Fatalf("checkout: %d", p.status)
			}
			for name, re := range map[string]*regexp.Regexp{"big amount": bigAmount, "copy field": copyAmount} {
				if got := re.FindStringSubmatch(p.body); got == nil || got[1] != due.String() {
					t.Errorf("%s %q, want the amount due %s (pay_amount %s)", name, got, due, pay)
				}
			}
			if got := walletHref.FindStringSubmatch(p.body); got == nil || strings.ReplaceAll(got[1], "&amp;", "&") != wantURI {
				t.Errorf("wallet link %q, want %q", got, wantURI)
			}
			svg := qrMarkup.FindString(p.body)
			if svg == "" {
				t.Fatal("no QR code on the page")
			}
			if got, err := decodeQR(rasteriseSVG(t, svg, 6)); err != nil || got != wantURI {
				t.Errorf("QR code decodes to %q (%v), want %q", got, err, wantURI)
			}
			if !strings.Contains(p.body, `<span id="missing">`+due.String()+`</span>`) {
				t.Errorf("the partial notice lacks the missing %s", due)
			}

			// The rest arrives: nothing is due, the page shows its confirming screen.
			s.simPay(t, inv.ID, due.String())
			s.waitStatus(t, inv.ID, domain.StatusConfirming)
			if st := s.call(t, "GET", "/v1/invoices/"+inv.ID, m.SecretKey, nil, &api); st != http.StatusOK || api["amount_due"] != "0" {
				t.Errorf("after the rest: %d amount_due %#v, want \"0\"", st, api["amount_due"])
			}
			p = get(t, s.srv.Config.Handler, "GET", "/pay/"+inv.ID)
			if !strings.Contains(p.body, `<section id="screen-confirming" class="screen center">`) {
				t.Error("paid in full, but the confirming screen is not the one shown")
			}
		})
	}
}

// TestPaymentRequest: GET /pay/request/{id} is what checkout.js reads to
// redraw the QR code and wallet link when the amount due changes.
func TestPaymentRequest(t *testing.T) {
	s := newStack(t)
	m := s.signUp(t, "Request Shop")
	inv := s.createInvoice(t, m.SecretKey, map[string]any{"asset": "USDT.ETH", "amount": "20"})
	s.simPay(t, inv.ID, "5.5")
	s.waitStatus(t, inv.ID, domain.StatusPartiallyPaid)

	res, err := http.Get(s.srv.URL + "/pay/request/" + inv.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("status %d, Content-Type %q, Cache-Control %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	var req struct {
		AmountDue  string `json:"amount_due"`
		SendAmount string `json:"send_amount"`
		WalletURI  string `json:"wallet_uri"`
		QR         *struct {
			Size int    `json:"size"`
			Path string `json:"path"`
		} `json:"qr"`
	}
	if err := json.NewDecoder(res.Body).Decode(&req); err != nil {
		t.Fatal(err)
	}
	want := "ethereum:0xdAC17F958D2ee523a2206206994597C13D831ec7@1/transfer?address=" + inv.PayAddress + "&uint256=14500000"
	if req.AmountDue != "14.5" || req.SendAmount != "14.5" || req.WalletURI != want {
		t.Errorf("amount_due %q send_amount %q wallet_uri %q, want 14.5, 14.5 and %q", req.AmountDue, req.SendAmount, req.WalletURI, want)
	}
	if req.QR == nil {
		t.Fatal("no QR code")
	}
	svg := `viewBox="0 0 ` + strconv.Itoa(req.QR.Size) + ` ` + strconv.Itoa(req.QR.Size) + `" ` + req.QR.Path
	if got, err := decodeQR(rasteriseSVG(t, svg, 6)); err != nil || got != want {
		t.Errorf("QR code decodes to %q (%v), want %q", got, err, want)
	}

	for target, want := range map[string]int{
		"/pay/request/inv_00000000000000000000000000": http.StatusNotFound,
		"/pay/request/nope":                           http.StatusNotFound,
	} {
		if p := get(t, s.srv.Config.Handler, "GET", target); p.status != want {
			t.Errorf("%s: %d, want %d", target, p.status, want)
		}
	}
}
