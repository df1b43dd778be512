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
		// A union of index lookups: an OR over the columns would read
		// every invoice of the merchant.
		q.WriteString(` AND invoice_id IN (SELECT CAST(? AS TEXT)
			UNION SELECT invoice_id FROM invoices WHERE order_id = ?
			UNION SELECT invoice_id FROM invoices WHERE pay_address = ?
			UNION SELECT invoice_id FROM payments WHERE txid = ?)`)
		args = append(args, f.Query, f.Query, f.Query, f.Query)
	}
	return q.String(), args
}
