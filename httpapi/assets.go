package httpapi

import (
	"net/http"

	"github.com/acceptcryptohere/gateway/domain"
)

// assetJSON is one supported asset; contract is null for a chain's own coin.
type assetJSON struct {
	Asset         string `json:"asset"`
	Name          string `json:"name"`
	Chain         string `json:"chain"`
	Decimals      int32  `json:"decimals"`
	Confirmations int    `json:"confirmations"`
	// Finality is the depth at which a payment becomes available (money
	// rule 4); Ethereum and TRON nodes' own finalized or solidified block
	// makes it sooner where the node has one.
	Finality int     `json:"finality"`
	Contract *string `json:"contract"`
}

// listAssets is GET /v1/assets: a bare array, as the API shows it.
func (s *server) listAssets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, renderAssets(s.d.Assets.List()))
}

func renderAssets(list []domain.Asset) []assetJSON {
	out := make([]assetJSON, 0, len(list))
	for _, a := range list {
		out = append(out, assetJSON{Asset: a.Code, Name: a.Name, Chain: string(a.Chain), Decimals: a.Decimals,
			Confirmations: a.Confirmations, Finality: a.FinalityDepth(), Contract: nullable(a.Contract)})
	}
	return out
}
