package eth_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/acceptcryptohere/gateway/chain/eth"
	"github.com/acceptcryptohere/gateway/chain/eth/gethtest"
	"github.com/acceptcryptohere/gateway/domain"
)

// Token contracts checked on a real geth (#16 item 2): what is deployed
// at the configured address must be the asset's token.
func TestVerifyTokenOnGeth(t *testing.T) {
	node := gethtest.Start(t)
	client := eth.NewNodeClient(node.RPC)
	ctx := context.Background()
	usdt, err := domain.DefaultAssets().Lookup("USDT.ETH")
	if err != nil {
		t.Fatal(err)
	}
	at := func(addr common.Address) domain.Asset { a := usdt; a.Contract = addr.Hex(); return a }

	six := node.DeployToken("USDT", 6)
	info, err := eth.VerifyToken(ctx, client, at(six))
	if err != nil || info.Decimals != 6 || info.Symbol != "USDT" {
		t.Fatalf("6-decimal token: %+v %v", info, err)
	}

	eighteen := node.DeployToken("USDT", 18)
	info, err = eth.VerifyToken(ctx, client, at(eighteen))
	if !errors.Is(err, eth.ErrTokenMismatch) || info.Decimals != 18 ||
		!strings.Contains(err.Error(), "18 decimals") || !strings.Contains(err.Error(), "has 6") {
		t.Fatalf("18-decimal token as USDT.ETH: %+v %v", info, err)
	}

	// An address with nothing deployed (mainnet's USDT on a dev chain).
	if _, err := eth.VerifyToken(ctx, client, usdt); !errors.Is(err, eth.ErrTokenMismatch) || !strings.Contains(err.Error(), "no contract") {
		t.Fatalf("mainnet address on a dev chain: %v", err)
	}

	// A contract without decimals() (the hand-assembled minimal token).
	r := node.Send(nil, nil, tokenInitCode(t))
	if _, err := eth.VerifyToken(ctx, client, at(r.ContractAddress)); !errors.Is(err, eth.ErrTokenMismatch) || !strings.Contains(err.Error(), "no decimals()") {
		t.Fatalf("contract without decimals(): %v", err)
	}

	// A node that does not answer is no mismatch: the check is retried.
	node.Stop()
	if _, err := eth.VerifyToken(ctx, client, at(six)); err == nil || errors.Is(err, eth.ErrTokenMismatch) {
		t.Fatalf("node down: %v", err)
	}
}
