package eth

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/acceptcryptohere/gateway/domain"
)

// TokenCaller is what checking a token contract needs from a node;
// *NodeClient and ethclient's clients implement it.
type TokenCaller interface {
	CodeAt(ctx context.Context, account common.Address, blockNumber *big.Int) ([]byte, error)
	CallContract(ctx context.Context, msg ethereum.CallMsg, blockNumber *big.Int) ([]byte, error)
}

// ErrTokenMismatch: the contract configured for a token asset is not that
// token (no code at the address, or other decimals). Amounts read from it
// would be credited at the wrong scale, so the asset must not run.
var ErrTokenMismatch = errors.New("eth: token contract does not match its asset")

// TokenInfo is what a token contract says about itself.
type TokenInfo struct {
	Decimals uint8
	Symbol   string // "" when the contract has no symbol()
}

var (
	decimalsCall = common.FromHex("0x313ce567") // decimals()
	symbolCall   = common.FromHex("0x95d89b41") // symbol()
)

// VerifyToken checks that the contract of token asset a (at its Contract
// address) is deployed and reports a.Decimals from decimals(), and returns
// what it says about itself. Errors: ErrTokenMismatch, naming what was
// expected and what was found; a node error otherwise (the check can be
// retried).
func VerifyToken(ctx context.Context, c TokenCaller, a domain.Asset) (TokenInfo, error) {
	if a.Chain != domain.ChainEthereum || a.Native() {
		return TokenInfo{}, fmt.Errorf("eth: verify token: %s is not an Ethereum token", a.Code)
	}
	if !common.IsHexAddress(a.Contract) {
		return TokenInfo{}, fmt.Errorf("%w: %s: contract %q is not an address", ErrTokenMismatch, a.Code, a.Contract)
	}
	addr := common.HexToAddress(a.Contract)
	code, err := c.CodeAt(ctx, addr, nil)
	if err != nil {
		return TokenInfo{}, fmt.Errorf("eth: verify %s: code at %s: %w", a.Code, addr.Hex(), err)
	}
	if len(code) == 0 {
		return TokenInfo{}, fmt.Errorf("%w: %s: no contract at %s on this chain", ErrTokenMismatch, a.Code, addr.Hex())
	}
	out, err := c.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: decimalsCall}, nil)
	if err != nil {
		if isRevert(err) {
			return TokenInfo{}, fmt.Errorf("%w: %s: contract %s has no decimals() (%v), want %d", ErrTokenMismatch, a.Code, addr.Hex(), err, a.Decimals)
		}
		return TokenInfo{}, fmt.Errorf("eth: verify %s: decimals(): %w", a.Code, err)
	}
	// A uint8 in one 32-byte word; anything else is not an ERC-20's answer.
	if len(out) != 32 || new(big.Int).SetBytes(out).Cmp(big.NewInt(255)) > 0 {
		return TokenInfo{}, fmt.Errorf("%w: %s: contract %s answers decimals() with %#x, want %d", ErrTokenMismatch, a.Code, addr.Hex(), out, a.Decimals)
	}
	info := TokenInfo{Decimals: out[31]}
	if int32(info.Decimals) != a.Decimals {
		return info, fmt.Errorf("%w: %s: contract %s has %d decimals, the asset has %d", ErrTokenMismatch, a.Code, addr.Hex(), info.Decimals, a.Decimals)
	}
	// symbol() is optional in ERC-20 and only logged: a failure is no mismatch.
	if out, err := c.CallContract(ctx, ethereum.CallMsg{To: &addr, Data: symbolCall}, nil); err == nil {
		info.Symbol = decodeSymbol(out)
	}
	return info, nil
}

// isRevert tells a contract's refusal from a node that could not answer
// (down, rate limited): only the first is the contract's answer.
func isRevert(err error) bool {
	var re rpc.Error
	return errors.As(err, &re) && re.ErrorCode() == 3 || strings.Contains(err.Error(), "execution reverted")
}

var stringType, _ = abi.NewType("string", "", nil)

// decodeSymbol reads symbol()'s answer: an ABI string, or the bytes32 some
// early tokens return; "" when it is neither.
func decodeSymbol(out []byte) string {
	if v, err := (abi.Arguments{{Type: stringType}}).Unpack(out); err == nil && len(v) == 1 {
		return printable(v[0].(string))
	}
	if len(out) == 32 {
		return printable(strings.TrimRight(string(out), "\x00"))
	}
	return ""
}

// printable keeps a contract's text safe to log: at most 32 printable ASCII
// characters.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() == 32 {
			break
		}
		if r >= 0x20 && r < 0x7f {
			b.WriteRune(r)
		}
	}
	return b.String()
}
