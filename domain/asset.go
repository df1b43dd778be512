package domain

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
)

// Chain names a blockchain network.
type Chain string

const (
	ChainBitcoin  Chain = "bitcoin"
	ChainEthereum Chain = "ethereum"
	ChainTron     Chain = "tron"
)

// Asset is a coin on one chain. Assets are data (assets.json), so adding a
// token on a chain we already watch is configuration, not code.
type Asset struct {
	Code          string `json:"code"`
	Name          string `json:"name"`
	Chain         Chain  `json:"chain"`
	Decimals      int32  `json:"decimals"`
	Confirmations int    `json:"confirmations"`
	// Finality is the depth at which a payment's block can no longer be
	// undone and its funds become available (money rule 4); 0: the same as
	// Confirmations. Chains with a finality tag of their own (Ethereum's
	// finalized block, TRON's solidified one) use it where the node has it.
	Finality int `json:"finality,omitempty"`
	// Contract is the token contract; empty for a chain's native coin.
	Contract string `json:"contract,omitempty"`
}

// FinalityDepth is the number of blocks after which a payment is final.
func (a Asset) FinalityDepth() int { return max(a.Finality, a.Confirmations) }

// Native reports whether the asset is its chain's own coin.
func (a Asset) Native() bool { return a.Contract == "" }

// Assets is the set of supported assets, in listing order.
type Assets struct {
	list   []Asset
	byCode map[string]Asset
}

//go:embed assets.json
var defaultAssetsJSON []byte

// DefaultAssets returns the built-in asset list.
func DefaultAssets() Assets {
	a, err := ParseAssets(defaultAssetsJSON)
	if err != nil {
		panic("domain: built-in assets.json: " + err.Error())
	}
	return a
}

var assetCode = regexp.MustCompile(`^[A-Z0-9]{2,10}(\.[A-Z0-9]{2,10})?$`)

// ParseAssets reads an asset list as JSON and checks each entry.
func ParseAssets(data []byte) (Assets, error) {
	var list []Asset
	if err := json.Unmarshal(data, &list); err != nil {
		return Assets{}, fmt.Errorf("assets: %w", err)
	}
	byCode := make(map[string]Asset, len(list))
	for _, a := range list {
		switch {
		case !assetCode.MatchString(a.Code):
			return Assets{}, fmt.Errorf("assets: bad code %q", a.Code)
		case a.Chain != ChainBitcoin && a.Chain != ChainEthereum && a.Chain != ChainTron:
			return Assets{}, fmt.Errorf("assets: %s: unknown chain %q", a.Code, a.Chain)
		case a.Decimals < 0 || a.Decimals > 18:
			return Assets{}, fmt.Errorf("assets: %s: decimals %d out of 0..18", a.Code, a.Decimals)
		case a.Confirmations < 1:
			return Assets{}, fmt.Errorf("assets: %s: needs at least one confirmation", a.Code)
		case a.Finality != 0 && a.Finality < a.Confirmations:
			return Assets{}, fmt.Errorf("assets: %s: finality %d below confirmations %d", a.Code, a.Finality, a.Confirmations)
		}
		if _, dup := byCode[a.Code]; dup {
			return Assets{}, fmt.Errorf("assets: %s listed twice", a.Code)
		}
		byCode[a.Code] = a
	}
	return Assets{list: list, byCode: byCode}, nil
}

// List returns the assets in listing order.
func (s Assets) List() []Asset { return append([]Asset(nil), s.list...) }

// Lookup returns the asset with code. Errors: ErrUnsupportedAsset.
func (s Assets) Lookup(code string) (Asset, error) {
	a, ok := s.byCode[code]
	if !ok {
		return Asset{}, fmt.Errorf("%w: %q", ErrUnsupportedAsset, code)
	}
	return a, nil
}
