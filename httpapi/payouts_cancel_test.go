package httpapi

import (
	"context"
	"net/http"
	"testing"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/domain"
)

// POST /v1/payouts/{id}/cancel (issue 16 item 3): a payout not yet signed
// is canceled and its funds released; once signed it is 409 with the
// error shape; another merchant's payout is 404.
func TestCancelPayout(t *testing.T) {
	b := setupMoney(t)
	a, other := b.signUp(t, "Shop A"), b.signUp(t, "Shop B")
	b.credit(t, a.secret, "USDT.ETH", "100")
	const to = `"to_address":"0x1111111111111111111111111111111111111111"`
	res := b.do(t, req{method: "POST", path: "/v1/withdrawals", key: a.secret, body: `{"asset":"USDT.ETH","amount":"10",` + to + `}`})
	if res.status != http.StatusCreated {
		t.Fatalf("withdrawal: %d %s", res.status, res.raw)
	}
	po := res.json(t)["id"].(string)
	path := "/v1/payouts/" + po + "/cancel"
	for _, tc := range []struct {
		name       string
		rq         req
		wantStatus int
		wantCode   string
	}{
		{"other merchant", req{method: "POST", path: path, key: other.secret}, 404, "not_found"},
		{"publishable", req{method: "POST", path: path, key: a.pub}, 403, "forbidden"},
		{"no key", req{method: "POST", path: path}, 401, "unauthorized"},
		{"unknown payout", req{method: "POST", path: "/v1/payouts/po_00000000000000000000000000/cancel", key: a.secret}, 404, "not_found"},
		{"a body", req{method: "POST", path: path, key: a.secret, body: `{"reason":"x"}`}, 400, "validation_error"},
		{"text/plain", req{method: "POST", path: path, key: a.secret, body: `{}`, header: map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type"},
	} {
		if got := b.do(t, tc.rq); got.status != tc.wantStatus || got.code() != tc.wantCode {
			t.Fatalf("%s: %d %s, want %d %s", tc.name, got.status, got.raw, tc.wantStatus, tc.wantCode)
		}
	}
	if got := b.balanceOf(t, a.secret, "USDT.ETH"); got.available.String() != "89.75" {
		t.Fatalf("available with the withdrawal reserved: %s", got.available)
	}
	for i := 0; i < 2; i++ { // canceling again answers the same
		res = b.do(t, req{method: "POST", path: path, key: a.secret})
		if res.status != http.StatusOK || res.json(t)["status"] != "canceled" || res.json(t)["id"] != po {
			t.Fatalf("cancel %d: %d %s", i, res.status, res.raw)
		}
	}
	if got := b.balanceOf(t, a.secret, "USDT.ETH"); got.available.String() != "99.75" {
		t.Fatalf("available after the cancel: %s", got.available)
	}
	if got := b.do(t, req{method: "GET", path: "/v1/payouts/" + po, key: a.secret}).json(t); got["status"] != "canceled" {
		t.Fatalf("the canceled payout: %v", got)
	}
	if got := b.do(t, req{method: "GET", path: "/v1/payouts?status=canceled", key: a.secret}).json(t); len(got["data"].([]any)) != 1 {
		t.Fatalf("canceled payouts: %v", got)
	}

	// A signed payout may be on its way: 409.
	ctx := context.Background()
	req2, err := b.deps.Commands.RequestPayout.Handle(ctx, commands.RequestPayout{CommandID: "wd2", MerchantID: a.id, Asset: "USDT.ETH",
		Amount: "5", ToAddress: "0x1111111111111111111111111111111111111111", Kind: domain.PayoutKindWithdrawal})
	if err != nil {
		t.Fatal(err)
	}
	signed, err := b.deps.Commands.SignPayout.Handle(ctx, commands.SignPayout{CommandID: "sign2", Ref: req2.Ref,
		Tx: domain.SignedTx{TxID: "0xabc", Raw: "00", NetworkFee: domain.MustAmount("0")}})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.runner.WaitFor(ctx, signed.Position); err != nil {
		t.Fatal(err)
	}
	res = b.do(t, req{method: "POST", path: "/v1/payouts/" + req2.Payout.PayoutID + "/cancel", key: a.secret})
	if res.status != http.StatusConflict || res.code() != "invalid_state" || res.json(t)["message"] == "" {
		t.Fatalf("canceling a signed payout: %d %s", res.status, res.raw)
	}
	t.Logf("409: %s", res.raw)
}
