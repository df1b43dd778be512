package httpapi

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/acceptcryptohere/gateway/readapi"
)

// maxSearchLength bounds the search text: the longest id, address or txid
// we store is far shorter.
const maxSearchLength = 200

// parseInvoiceSearch reads GET /v1/invoices' search parameters (issue
// #20): q (an invoice id, order id, pay address or txid, matched exactly),
// asset, settlement, and created_gte / created_lt (Unix ms). Anything it
// cannot read is a 400 naming the parameter, never an empty page.
func (s *server) parseInvoiceSearch(q url.Values, f *readapi.InvoiceFilter) error {
	if v := q.Get("q"); v != "" {
		v = strings.TrimSpace(v)
		if v == "" || len(v) > maxSearchLength {
			return errorf(http.StatusBadRequest, "validation_error", "q must be 1 to "+strconv.Itoa(maxSearchLength)+" characters: an invoice id, order id, address or txid")
		}
		f.Query = v
	}
	if v := q.Get("asset"); v != "" {
		if _, err := s.d.Assets.Lookup(v); err != nil {
			return err
		}
		f.Asset = v
	}
	if v := q.Get("settlement"); v != "" {
		switch v {
		case readapi.SettlementWaiting, readapi.SettlementConverted, readapi.SettlementUnconverted:
			f.Settlement = v
		default:
			return errorf(http.StatusBadRequest, "validation_error", "settlement must be waiting_for_price, converted or unconverted")
		}
	}
	from, to, err := parsePeriod(q)
	if err != nil {
		return err
	}
	f.CreatedFrom, f.CreatedTo = from, to
	return nil
}

// parsePeriod reads created_gte and created_lt, Unix milliseconds, each
// optional; both given, the period must not be empty.
func parsePeriod(q url.Values) (from, to time.Time, err error) {
	read := func(name string) (time.Time, error) {
		v := q.Get(name)
		if v == "" {
			return time.Time{}, nil
		}
		ms, err := strconv.ParseInt(v, 10, 64)
		if err != nil || ms < 0 || ms > 253402300799999 { // up to year 9999
			return time.Time{}, errorf(http.StatusBadRequest, "validation_error", name+" must be a time in Unix milliseconds")
		}
		return time.UnixMilli(ms).UTC(), nil
	}
	if from, err = read("created_gte"); err != nil {
		return
	}
	if to, err = read("created_lt"); err != nil {
		return
	}
	if !from.IsZero() && !to.IsZero() && !to.After(from) {
		err = errorf(http.StatusBadRequest, "validation_error", "created_lt must be after created_gte")
	}
	return
}
