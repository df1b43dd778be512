package readapi

import "strings"

// searchWhere is the SQL of an InvoiceFilter's search fields, to follow a
// WHERE on merchant_id: the dashboard's search box and filters (issue
// #20). The search matches exactly, as people paste ids, addresses and
// txids: an invoice id, the merchant's order id, the pay address, or the
// txid of one of the invoice's payments.
func (f InvoiceFilter) searchWhere() (string, []any) {
	var q strings.Builder
	var args []any
	if f.Asset != "" {
		q.WriteString(` AND asset = ?`)
		args = append(args, f.Asset)
	}
	if f.Settlement != "" {
		q.WriteString(` AND settlement_status = ?`)
		args = append(args, f.Settlement)
	}
	if !f.CreatedFrom.IsZero() {
		q.WriteString(` AND created_at >= ?`)
		args = append(args, f.CreatedFrom.UnixMilli())
	}
	if !f.CreatedTo.IsZero() {
		q.WriteString(` AND created_at < ?`)
		args = append(args, f.CreatedTo.UnixMilli())
	}
	if f.Query != "" {
		q.WriteString(` AND (invoice_id = ? OR order_id = ? OR pay_address = ?
			OR invoice_id IN (SELECT invoice_id FROM payments WHERE txid = ?))`)
		args = append(args, f.Query, f.Query, f.Query, f.Query)
	}
	return q.String(), args
}
