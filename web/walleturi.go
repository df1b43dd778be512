package web

import (
	"fmt"
	"strconv"

	"github.com/acceptcryptohere/gateway/domain"
)

// WalletURI is the payment request a wallet app reads from the checkout's
// QR code and "Open in wallet" link, with the exact amount in it:
//
//   - Bitcoin, BIP-21: bitcoin:<address>?amount=<BTC as a decimal>
//   - Ether, EIP-681: ethereum:<address>@<chain id>?value=<wei as an integer>
//   - ERC-20 tokens, EIP-681: ethereum:<token contract>@<chain id>/transfer?address=<address>&uint256=<base units>
//   - TRON: there is no standard. We use tron:<address>?amount=<decimal>,
//     the form TRON wallets that read payment QR codes accept, and add
//     &token=<contract> for a TRC-20 token, so a wallet that knows the
//     parameter picks the token; one that does not still reads the address.
//     The page always shows the exact amount and address beside the code.
//
// Integers (wei, base units) are written out in full, never in the
// exponent form EIP-681 also allows, which some wallets misread.
// Errors: the asset's chain is unknown, or the amount has more decimals
// than the asset, or the address has characters no chain uses.
func WalletURI(a domain.Asset, address string, amount domain.Amount, ethChainID int64) (string, error) {
	if !plainAddress(address) || (a.Contract != "" && !plainAddress(a.Contract)) {
		return "", fmt.Errorf("web: wallet URI: address %q is not alphanumeric", address)
	}
	units, err := amount.BaseUnits(a.Decimals)
	if err != nil {
		return "", fmt.Errorf("web: wallet URI: %w", err)
	}
	switch a.Chain {
	case domain.ChainBitcoin:
		return "bitcoin:" + address + "?amount=" + amount.String(), nil
	case domain.ChainEthereum:
		chain := strconv.FormatInt(ethChainID, 10)
		if a.Native() {
			return "ethereum:" + address + "@" + chain + "?value=" + units.String(), nil
		}
		return "ethereum:" + a.Contract + "@" + chain + "/transfer?address=" + address + "&uint256=" + units.String(), nil
	case domain.ChainTron:
		uri := "tron:" + address + "?amount=" + amount.String()
		if !a.Native() {
			uri += "&token=" + a.Contract
		}
		return uri, nil
	}
	return "", fmt.Errorf("web: wallet URI: unknown chain %q", a.Chain)
}

// plainAddress: every address format we pay to (base58, bech32, hex) is
// alphanumeric, so nothing in a URI needs escaping, and anything else is
// refused rather than escaped into a request a wallet might misread.
func plainAddress(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
