package projections

import (
	"context"
	"fmt"
	"slices"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// The invoices projector keeps, for the length of a batch, the invoices
// the batch created and the payments it detected as rows in memory: later
// events of the batch change those rows, and FlushBatch inserts each once
// with what the batch made of it (multi-row INSERTs). An invoice's or
// payment's life is usually short, so most of it happens inside one
// batch: a rebuild then writes an invoice in about one statement, not one
// per event. Rows from earlier batches are changed with UPDATEs, as they
// come.

const (
	newInvoicesKey = "invoices_new"
	paymentsKey    = "invoices_payments"
	receivedKey    = "invoices_received"
)

// invoiceRow is an invoice created in this batch, as the batch left it.
type invoiceRow struct {
	e                       domain.InvoiceCreated
	created                 eventstore.Position // of e: the chain watchers read new invoices by it
	status                  domain.Status
	received, fee           domain.Amount
	feeBps                  int64
	updatedAt               int64
	paidAt, settlementSince *int64
	settlement, reason      string
}

// paymentRow is a payment detected in this batch. It is written as an
// upsert: the payment may be in the table already (detected again after a
// reorg took it away), where it keeps its txid and detected_at, as the
// statement per event did.
type paymentRow struct {
	invoiceID, depositID, txid string
	amount                     domain.Amount
	confirmations              int
	status                     string
	late                       bool
	detectedAt                 int64
}

type invoiceBatch struct {
	invoices   map[string]*invoiceRow
	invOrder   []string
	payments   map[[2]string]*paymentRow
	payOrder   [][2]string
	statusDiff map[domain.Status]int64
	// received is amount_received of invoices of earlier batches that this
	// batch read or wrote, so each is read once.
	received map[string]domain.Amount
}

func batchOf(tx Tx) *invoiceBatch {
	b, _ := tx.batch[newInvoicesKey].(*invoiceBatch)
	if b == nil {
		b = &invoiceBatch{invoices: map[string]*invoiceRow{}, payments: map[[2]string]*paymentRow{},
			statusDiff: map[domain.Status]int64{}, received: map[string]domain.Amount{}}
		tx.batch[newInvoicesKey] = b
	}
	return b
}

func (Invoices) Apply(ctx context.Context, tx Tx, rec eventstore.RecordedEvent, ev domain.Event) error {
	b := batchOf(tx)
	switch e := ev.(type) {
	case domain.InvoiceCreated:
		b.invoices[e.InvoiceID] = &invoiceRow{e: e, created: rec.Position, status: domain.StatusNew, received: noneReceived, fee: e.Fee.Fee,
			feeBps: e.Fee.Bps, updatedAt: e.CreatedAt.UnixMilli()}
		b.invOrder = append(b.invOrder, e.InvoiceID)
		b.statusDiff[domain.StatusNew]++
		return nil
	case domain.DepositDetected:
		key := [2]string{e.InvoiceID, e.DepositID}
		if p := b.payments[key]; p != nil {
			p.amount, p.confirmations, p.status, p.late = e.Amount, e.Confirmations, "pending", e.Late
		} else {
			b.payments[key] = &paymentRow{invoiceID: e.InvoiceID, depositID: e.DepositID, txid: e.TxID, amount: e.Amount,
				confirmations: e.Confirmations, status: "pending", late: e.Late, detectedAt: e.DetectedAt.UnixMilli()}
			b.payOrder = append(b.payOrder, key)
		}
		return b.addReceived(ctx, tx, e.InvoiceID, e.Amount, e.DetectedAt.UnixMilli())
	case domain.DepositConfirmed:
		if p := b.payments[[2]string{e.InvoiceID, e.DepositID}]; p != nil {
			p.status, p.confirmations = "confirmed", e.Confirmations
		} else if _, err := tx.Exec(ctx, `UPDATE payments SET status = 'confirmed', confirmations = ? WHERE invoice_id = ? AND deposit_id = ?`,
			e.Confirmations, e.InvoiceID, e.DepositID); err != nil {
			return err
		}
		// The invoice's fee is what it charged (money rule 1).
		if inv := b.invoices[e.InvoiceID]; inv != nil {
			inv.fee, inv.feeBps = e.Fee.Fee, e.Fee.Bps
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE invoices SET fee = ?, fee_bps = ? WHERE invoice_id = ?`, e.Fee.Fee.String(), e.Fee.Bps, e.InvoiceID)
		return err
	case domain.DepositReverted:
		if p := b.payments[[2]string{e.InvoiceID, e.DepositID}]; p != nil {
			p.status = "reverted"
		} else if _, err := tx.Exec(ctx, `UPDATE payments SET status = 'reverted' WHERE invoice_id = ? AND deposit_id = ?`,
			e.InvoiceID, e.DepositID); err != nil {
			return err
		}
		if e.Fee != nil {
			if inv := b.invoices[e.InvoiceID]; inv != nil {
				inv.fee = e.Fee.Fee
			} else if _, err := tx.Exec(ctx, `UPDATE invoices SET fee = ? WHERE invoice_id = ?`, e.Fee.Fee.String(), e.InvoiceID); err != nil {
				return err
			}
		}
		return b.addReceived(ctx, tx, e.InvoiceID, e.Amount.Neg(), e.RevertedAt.UnixMilli())
	case domain.ConversionWaiting:
		if inv := b.invoices[e.InvoiceID]; inv != nil {
			if inv.settlement == "" || inv.settlement == "converted" {
				since := e.Since.UnixMilli()
				inv.settlement, inv.settlementSince, inv.reason = "waiting_for_price", &since, e.Reason
			}
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE invoices SET settlement_status = 'waiting_for_price', settlement_since = ?, settlement_reason = ?
			WHERE invoice_id = ? AND settlement_status IN ('', 'converted')`, e.Since.UnixMilli(), e.Reason, e.InvoiceID)
		return err
	case domain.PaymentConverted:
		if inv := b.invoices[e.InvoiceID]; inv != nil {
			if inv.settlement != "unconverted" {
				inv.settlement, inv.settlementSince, inv.reason = "converted", nil, ""
			}
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE invoices SET settlement_status = 'converted', settlement_since = NULL, settlement_reason = ''
			WHERE invoice_id = ? AND settlement_status <> 'unconverted'`, e.InvoiceID)
		return err
	case domain.ConversionAbandoned:
		if inv := b.invoices[e.InvoiceID]; inv != nil {
			inv.settlement, inv.reason, inv.fee, inv.feeBps = "unconverted", e.Reason, e.Fee.Fee, e.Fee.Bps
			return nil
		}
		_, err := tx.Exec(ctx, `UPDATE invoices SET settlement_status = 'unconverted', settlement_reason = ?, fee = ?, fee_bps = ?
			WHERE invoice_id = ?`, e.Reason, e.Fee.Fee.String(), e.Fee.Bps, e.InvoiceID)
		return err
	case domain.InvoiceStatusChanged:
		b.statusDiff[e.From]--
		b.statusDiff[e.To]++
		at := e.At.UnixMilli()
		if inv := b.invoices[e.InvoiceID]; inv != nil {
			inv.status, inv.updatedAt = e.To, at
			if e.To == domain.StatusPaid {
				inv.paidAt = &at
			}
			return nil
		}
		var paidAt any
		if e.To == domain.StatusPaid {
			paidAt = at
		}
		_, err := tx.Exec(ctx, `UPDATE invoices SET status = ?, paid_at = COALESCE(?, paid_at), updated_at = ? WHERE invoice_id = ?`,
			string(e.To), paidAt, at, e.InvoiceID)
		return err
	}
	return nil
}

// noneReceived is a new invoice's amount_received.
var noneReceived = domain.MustAmount("0")

// addReceived moves an invoice's amount_received by delta.
func (b *invoiceBatch) addReceived(ctx context.Context, tx Tx, invoiceID string, delta domain.Amount, atMs int64) error {
	if inv := b.invoices[invoiceID]; inv != nil {
		inv.received, inv.updatedAt = inv.received.Add(delta), atMs
		return nil
	}
	cur, ok := b.received[invoiceID]
	if !ok {
		var s string
		if err := tx.QueryRow(ctx, `SELECT amount_received FROM invoices WHERE invoice_id = ?`, invoiceID).Scan(&s); err != nil {
			return fmt.Errorf("invoice %s: %w", invoiceID, err)
		}
		cur = domain.MustAmount(s)
	}
	total := cur.Add(delta)
	b.received[invoiceID] = total
	_, err := tx.Exec(ctx, `UPDATE invoices SET amount_received = ?, updated_at = ? WHERE invoice_id = ?`, total.String(), atMs, invoiceID)
	return err
}

// FlushBatch writes the batch's new invoices, its payments and what it
// changed in the counts by status.
func (Invoices) FlushBatch(ctx context.Context, tx Tx) error {
	b := batchOf(tx)
	delete(tx.batch, newInvoicesKey)
	for _, id := range b.invOrder {
		r := b.invoices[id]
		e := r.e
		var priceCurrency, priceAmount, priceRate, priceSource string
		var priceAt int64
		if p := e.Price; p != nil {
			priceCurrency, priceAmount, priceRate, priceSource, priceAt = p.Currency, p.Amount.String(), p.Rate.String(), p.Source, p.RateAt.UnixMilli()
		}
		tx.bufferRow("invoice_rows", `INSERT INTO invoices (invoice_id, merchant_id, asset, status, amount, pay_amount, pay_address, fee, fee_bps,
			settle_asset, order_id, amount_received, required_confirmations, created_at, expires_at, updated_at, created_by,
			description, metadata, redirect_url, price_currency, price_amount, price_rate, price_source, price_rate_at,
			paid_at, settlement_status, settlement_since, settlement_reason, created_commit, created_prepare)`,
			e.InvoiceID, e.MerchantID, e.Asset, string(r.status), e.Amount.String(), e.PayAmount.String(), e.PayAddress,
			r.fee.String(), r.feeBps, e.SettleAsset, e.OrderID, r.received.String(), e.RequiredConfirmations,
			e.CreatedAt.UnixMilli(), e.ExpiresAt.UnixMilli(), r.updatedAt, string(e.Creator()),
			e.Description, metadataJSON(e.Metadata), e.RedirectURL, priceCurrency, priceAmount, priceRate, priceSource, priceAt,
			orNull(r.paidAt), r.settlement, orNull(r.settlementSince), r.reason,
			// The chain watchers read new invoices by this position
			// (scan.WatchedAfter): the log's order, not the clocks'.
			int64(r.created.Commit), int64(r.created.Prepare))
	}
	if err := tx.flushRows(ctx, "invoice_rows"); err != nil {
		return err
	}
	for _, k := range b.payOrder {
		p := b.payments[k]
		tx.bufferRow("payment_rows", `INSERT INTO payments (invoice_id, deposit_id, txid, amount, confirmations, status, late, detected_at)`,
			p.invoiceID, p.depositID, p.txid, p.amount.String(), p.confirmations, p.status, p.late, p.detectedAt)
	}
	if err := tx.flushRowsUpsert(ctx, "payment_rows", ` ON CONFLICT (invoice_id, deposit_id) DO UPDATE SET amount = excluded.amount,
		confirmations = excluded.confirmations, status = excluded.status, late = excluded.late`); err != nil {
		return err
	}
	return writeStatusCounts(ctx, tx, "invoice_status_counts", b.statusDiff)
}

// writeStatusCounts adds a batch's changes to a table of counts by status,
// in the same order in every batch (the rows' lock order).
func writeStatusCounts[S ~string](ctx context.Context, tx Tx, table string, diff map[S]int64) error {
	statuses := make([]string, 0, len(diff))
	for s, n := range diff {
		if n != 0 {
			statuses = append(statuses, string(s))
		}
	}
	slices.Sort(statuses)
	for _, s := range statuses {
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (status, n) VALUES (?, ?)
			ON CONFLICT (status) DO UPDATE SET n = `+table+`.n + excluded.n`, s, diff[S(s)]); err != nil {
			return err
		}
	}
	return nil
}

// orNull is a nullable column's value.
func orNull(v *int64) any {
	if v == nil {
		return nil
	}
	return *v
}
