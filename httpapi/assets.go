package httpapi

import (
	"net/http"

	"github.com/acceptcryptohere/gateway/domain"
)

// assetJSON is one supported asset; contract is null for a chain's own coin.
type assetJSON struct {
	Asset         string  `json:"asset"`
	Name          string  `json:"name"`
	Chain         string  `json:"chain"`
	Decimals      int32   `json:"decimals"`
	Confirmations int     `json:"confirmations"`
	Contract      *string `json:"contract"`
}

// listAssets is GET /v1/assets: a bare array, as the API shows it.
func (s *server) listAssets(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, renderAssets(s.d.Assets.List()))
}

func renderAssets(list []domain.Asset) []assetJSON {
	out := make([]assetJSON, 0, len(list))
	for _, a := range list {
		out = append(out, assetJSON{Asset: a.Code, Name: a.Name, Chain: string(a.Chain), Decimals: a.Decimals,
			Confirmations: a.Confirmations, Contract: nullable(a.Contract)})
	}
	return out
}
