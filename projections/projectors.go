package projections

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
)

// Merchants projects merchants, their key hashes and payout settings.
type Merchants struct{}

func (Merchants) Name() string { return "merchants" }

func (Merchants) Apply(ctx context.Context, tx Tx, _ eventstore.RecordedEvent, ev domain.Event) error {
	var err error
	switch e := ev.(type) {
	case domain.MerchantRegistered:
		_, err = tx.Exec(ctx, `INSERT INTO merchants (merchant_id, name, publishable_key, secret_key_hash, webhook_url, webhook_secret, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, e.MerchantID, e.Name, e.PublishableKey, e.SecretKeyHash, e.WebhookURL, e.WebhookSecret, e.RegisteredAt.UnixMilli())
	case domain.APIKeysRotated:
		_, err = tx.Exec(ctx, `UPDATE merchants SET publishable_key = ?, secret_key_hash = ? WHERE merchant_id = ?`, e.PublishableKey, e.SecretKeyHash, e.MerchantID)
	case domain.WebhookSecretRotated:
		_, err = tx.Exec(ctx, `UPDATE merchants SET webhook_secret = ? WHERE merchant_id = ?`, e.WebhookSecret, e.MerchantID)
	case domain.AccountSettingsChanged:
		_, err = tx.Exec(ctx, `UPDATE merchants SET webhook_url = ?, consolidate_to = ? WHERE merchant_id = ?`, e.WebhookURL, e.ConsolidateTo, e.MerchantID)
	case domain.PayoutSettingsChanged:
		_, err = tx.Exec(ctx, `INSERT INTO payout_settings (merchant_id, asset, payout_address, mode, instant_min_amount, updated_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (merchant_id, asset) DO UPDATE SET payout_address = excluded.payout_address, mode = excluded.mode,
			instant_min_amount = excluded.instant_min_amount, updated_at = excluded.updated_at`,
			e.MerchantID, e.Asset, e.PayoutAddress, string(e.Mode), e.InstantMinAmount.String(), e.ChangedAt.UnixMilli())
	}
	return err
}

// Invoices projects invoices and their payments.
type Invoices struct{}

func (Invoices) Name() string { return "invoices" }

func (Invoices) Apply(ctx context.Context, tx Tx, rec eventstore.RecordedEvent, ev domain.Event) error {
	var err error
	switch e := ev.(type) {
	case domain.InvoiceCreated:
		_, err = tx.Exec(ctx, `INSERT INTO invoices (invoice_id, merchant_id, asset, status, amount, pay_amount, pay_address, fee, fee_bps,
			settle_asset, order_id, amount_received, required_confirmations, created_at, expires_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '0', ?, ?, ?, ?)`,
			e.InvoiceID, e.MerchantID, e.Asset, string(domain.StatusNew), e.Amount.String(), e.PayAmount.String(), e.PayAddress,
			e.Fee.Fee.String(), e.Fee.Bps, e.SettleAsset, e.OrderID, e.RequiredConfirmations,
			e.CreatedAt.UnixMilli(), e.ExpiresAt.UnixMilli(), e.CreatedAt.UnixMilli())
	case domain.DepositDetected:
		_, err = tx.Exec(ctx, `INSERT INTO payments (invoice_id, deposit_id, txid, amount, confirmations, status, late, detected_at)
			VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)
			ON CONFLICT (invoice_id, deposit_id) DO UPDATE SET amount = excluded.amount, confirmations = excluded.confirmations,
			status = 'pending', late = excluded.late`,
			e.InvoiceID, e.DepositID, e.TxID, e.Amount.String(), e.Confirmations, e.Late, e.DetectedAt.UnixMilli())
		if err == nil {
			err = addReceived(ctx, tx, e.InvoiceID, e.Amount, e.DetectedAt.UnixMilli())
		}
	case domain.DepositConfirmed:
		_, err = tx.Exec(ctx, `UPDATE payments SET status = 'confirmed', confirmations = ? WHERE invoice_id = ? AND deposit_id = ?`,
			e.Confirmations, e.InvoiceID, e.DepositID)
	case domain.DepositReverted:
		_, err = tx.Exec(ctx, `UPDATE payments SET status = 'reverted' WHERE invoice_id = ? AND deposit_id = ?`, e.InvoiceID, e.DepositID)
		if err == nil {
			err = addReceived(ctx, tx, e.InvoiceID, e.Amount.Neg(), e.RevertedAt.UnixMilli())
		}
	case domain.InvoiceStatusChanged:
		var paidAt any
		if e.To == domain.StatusPaid {
			paidAt = e.At.UnixMilli()
		}
		_, err = tx.Exec(ctx, `UPDATE invoices SET status = ?, paid_at = COALESCE(?, paid_at), updated_at = ? WHERE invoice_id = ?`,
			string(e.To), paidAt, e.At.UnixMilli(), e.InvoiceID)
	}
	return err
}

func addReceived(ctx context.Context, tx Tx, invoiceID string, delta domain.Amount, atMs int64) error {
	var cur string
	if err := tx.QueryRow(ctx, `SELECT amount_received FROM invoices WHERE invoice_id = ?`, invoiceID).Scan(&cur); err != nil {
		return fmt.Errorf("invoice %s: %w", invoiceID, err)
	}
	total := domain.MustAmount(cur).Add(delta)
	_, err := tx.Exec(ctx, `UPDATE invoices SET amount_received = ?, updated_at = ? WHERE invoice_id = ?`, total.String(), atMs, invoiceID)
	return err
}

// Balances projects every merchant's available and pending balance per
// asset from the ledger postings of money events, and nothing else: the
// balance is what the postings say. A batch sums its postings in memory and
// writes each touched balance once.
type Balances struct{}

func (Balances) Name() string { return "balances" }

type balanceKey struct{ merchantID, asset string }

type balanceDelta struct{ available, pending domain.Amount }

func (Balances) deltas(tx Tx) map[balanceKey]*balanceDelta {
	d, ok := tx.batch["balances"].(map[balanceKey]*balanceDelta)
	if !ok {
		d = map[balanceKey]*balanceDelta{}
		tx.batch["balances"] = d
	}
	return d
}

func (b Balances) Apply(ctx context.Context, tx Tx, _ eventstore.RecordedEvent, ev domain.Event) error {
	m, ok := ev.(domain.MoneyEvent)
	if !ok {
		return nil
	}
	deltas := b.deltas(tx)
	for _, p := range m.LedgerPostings() {
		merchantID, bucket, ok := merchantAccount(p.Account)
		if !ok {
			continue
		}
		k := balanceKey{merchantID, p.Asset}
		d := deltas[k]
		if d == nil {
			d = &balanceDelta{}
			deltas[k] = d
		}
		if bucket == "available" {
			d.available = d.available.Add(p.Amount)
		} else {
			d.pending = d.pending.Add(p.Amount)
		}
	}
	return nil
}

// FlushBatch writes the batch's sums; rows are written even when a sum is
// zero, so a merchant's touched assets all show.
func (b Balances) FlushBatch(ctx context.Context, tx Tx) error {
	for k, d := range b.deltas(tx) {
		if err := addBalance(ctx, tx, k.merchantID, k.asset, d.available, d.pending); err != nil {
			return err
		}
	}
	delete(tx.batch, "balances")
	return nil
}

// merchantAccount splits "merchant:<id>:available|pending".
func merchantAccount(account string) (merchantID, bucket string, ok bool) {
	rest, found := strings.CutPrefix(account, "merchant:")
	if !found {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", "", false
	}
	bucket = rest[i+1:]
	return rest[:i], bucket, bucket == "available" || bucket == "pending"
}

func addBalance(ctx context.Context, tx Tx, merchantID, asset string, available, pending domain.Amount) error {
	var a, p string
	err := tx.QueryRow(ctx, `SELECT available, pending FROM balances WHERE merchant_id = ? AND asset = ?`, merchantID, asset).Scan(&a, &p)
	if errors.Is(err, sql.ErrNoRows) {
		a, p = "0", "0"
	} else if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO balances (merchant_id, asset, available, pending) VALUES (?, ?, ?, ?)
		ON CONFLICT (merchant_id, asset) DO UPDATE SET available = excluded.available, pending = excluded.pending`,
		merchantID, asset, domain.MustAmount(a).Add(available).String(), domain.MustAmount(p).Add(pending).String())
	return err
}
