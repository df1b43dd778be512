package hd

import (
	"fmt"
	"strings"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/btcutil/base58"
	"github.com/btcsuite/btcd/chaincfg"

	"github.com/acceptcryptohere/gateway/domain"
)

// ValidateAddress checks a payout address for chain: for Bitcoin a standard
// address (P2PKH, P2SH, P2WPKH, P2WSH, P2TR) of btcParams' network; for
// Ethereum 0x and 40 hex digits, with a valid EIP-55 checksum when the case
// is mixed, and not the zero address; for TRON base58check with version
// 0x41. Errors: domain.ErrValidation.
func ValidateAddress(chain domain.Chain, addr string, btcParams *chaincfg.Params) error {
	var err error
	switch chain {
	case domain.ChainBitcoin:
		err = validateBitcoin(addr, btcParams)
	case domain.ChainEthereum:
		err = validateEthereum(addr)
	case domain.ChainTron:
		err = validateTron(addr)
	default:
		err = fmt.Errorf("unknown chain %q", chain)
	}
	if err != nil {
		return fmt.Errorf("%w: %s address: %v", domain.ErrValidation, chain, err)
	}
	return nil
}

// AddressCheck binds ValidateAddress to a Bitcoin network, as commands.New wants it.
func AddressCheck(btcParams *chaincfg.Params) domain.AddressCheck {
	return func(chain domain.Chain, addr string) error { return ValidateAddress(chain, addr, btcParams) }
}

func validateBitcoin(addr string, params *chaincfg.Params) error {
	if params == nil {
		return fmt.Errorf("no Bitcoin network configured")
	}
	if len(addr) > 90 || strings.TrimSpace(addr) != addr {
		return fmt.Errorf("malformed")
	}
	a, err := btcutil.DecodeAddress(addr, params)
	if err != nil {
		return fmt.Errorf("not a valid address: %v", err)
	}
	if !a.IsForNet(params) {
		return fmt.Errorf("not an address of %s", params.Name)
	}
	switch a.(type) {
	case *btcutil.AddressPubKeyHash, *btcutil.AddressScriptHash, *btcutil.AddressWitnessPubKeyHash,
		*btcutil.AddressWitnessScriptHash, *btcutil.AddressTaproot:
		return nil
	}
	return fmt.Errorf("not a standard address type")
}

func validateEthereum(addr string) error {
	if len(addr) != 42 || !strings.HasPrefix(addr, "0x") {
		return fmt.Errorf("want 0x and 40 hex digits")
	}
	body := addr[2:]
	lower, upper := true, true
	for _, c := range body {
		switch {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'f':
			upper = false
		case c >= 'A' && c <= 'F':
			lower = false
		default:
			return fmt.Errorf("want 0x and 40 hex digits")
		}
	}
	if strings.Trim(body, "0") == "" {
		return fmt.Errorf("the zero address burns funds")
	}
	if lower || upper {
		return nil // no checksum to verify
	}
	var account [20]byte
	for i := range account {
		fmt.Sscanf(body[2*i:2*i+2], "%02x", &account[i])
	}
	if eip55(account[:]) != addr {
		return fmt.Errorf("EIP-55 checksum does not match (a typo?)")
	}
	return nil
}

func validateTron(addr string) error {
	if len(addr) != 34 || addr[0] != 'T' {
		return fmt.Errorf("want 34 base58 characters starting with T")
	}
	payload, version, err := base58.CheckDecode(addr)
	if err != nil {
		return fmt.Errorf("base58check: %v", err)
	}
	if version != TronVersion || len(payload) != 20 {
		return fmt.Errorf("not a TRON account address")
	}
	return nil
}

// NetworkParams maps a network name (PIC_BTC_NETWORK) to its parameters:
// mainnet, testnet (testnet3), regtest, simnet, signet.
func NetworkParams(name string) (*chaincfg.Params, error) {
	switch strings.ToLower(name) {
	case "mainnet", "main", "bitcoin", "":
		return &chaincfg.MainNetParams, nil
	case "testnet", "testnet3", "test":
		return &chaincfg.TestNet3Params, nil
	case "regtest":
		return &chaincfg.RegressionNetParams, nil
	case "simnet":
		return &chaincfg.SimNetParams, nil
	case "signet":
		return &chaincfg.SigNetParams, nil
	}
	return nil, fmt.Errorf("%w: unknown Bitcoin network %q (mainnet, testnet, regtest, simnet, signet)", domain.ErrValidation, name)
}
