package projections

import (
	"context"
	"database/sql"

	"github.com/acceptcryptohere/gateway/domain"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/sqldb"
)

// payoutComparer compares the payouts' read-model rows with the log. A
// payout the log has ended (confirmed, failed, canceled) can change no
// more, so it is compared then, in batches looked up by id, and let go:
// the audit holds the payouts open at a point of the log, not every
// payout ever made (at 10M generated events the payouts had been a
// third of its heap, and a merchant in instant mode makes one per paid
// invoice). The payouts still open at the log's end are compared last.
type payoutComparer struct {
	rowBatch[*auditPayout]
	db   sqldb.DB
	skip bool
	// statuses counts the log's payouts by status.
	statuses map[string]int64
	// most is the most payouts held at once.
	most int
}

// end lets a payout the log has just ended go: it is compared with its
// row once the batch is full.
func (c *payoutComparer) end(ctx context.Context, rep *AuditReport, id string) error {
	p := rep.payouts[id]
	if p == nil {
		return nil
	}
	c.most = max(c.most, len(rep.payouts))
	delete(rep.payouts, id)
	if rep.addresses {
		if rep.endedStatus == nil {
			rep.endedStatus = map[string]string{}
		}
		rep.endedStatus[id] = p.status
	}
	return c.add(ctx, rep, id, p)
}

func (c *payoutComparer) add(ctx context.Context, rep *AuditReport, id string, p *auditPayout) error {
	if c.statuses == nil {
		c.statuses = map[string]int64{}
	}
	c.statuses[p.status]++
	if c.skip || !c.rowBatch.add(id, p) {
		return nil
	}
	return c.flush(ctx, rep)
}

// flush compares the batch: merchant, status, amount, transaction and
// network fee.
func (c *payoutComparer) flush(ctx context.Context, rep *AuditReport) error {
	var merchantID, status, amount, txid, fee string
	return c.lookup(ctx, rep, c.db, "payouts", `SELECT payout_id, merchant_id, status, amount, txid, network_fee FROM payouts WHERE payout_id IN`,
		func(rows *sql.Rows) (id string, err error) {
			err = rows.Scan(&id, &merchantID, &status, &amount, &txid, &fee)
			return id, err
		},
		func(id string, want *auditPayout) {
			wantFee := ""
			if want.networkFee != nil {
				wantFee = want.networkFee.String()
			}
			if merchantID != want.merchantID || status != want.status || amount != want.amount.String() || txid != want.txid || fee != wantFee {
				rep.problem("payout %s: read model %s/%s/%s/%s/%s, log %s/%s/%s/%s/%s", id, merchantID, status, amount, txid, fee,
					want.merchantID, want.status, want.amount, want.txid, wantFee)
			}
		},
		func(id string, _ *auditPayout) { rep.problem("payout %s: missing from the read model", id) })
}

// comparePayouts ends the payouts' comparison: those still open, rows of
// payouts the log does not have, and the counts by status the projector
// keeps (the picd_payouts gauge).
func (rep *AuditReport) comparePayouts(ctx context.Context, store eventstore.Store, db sqldb.DB, c *payoutComparer, through eventstore.Position) error {
	for id, p := range rep.payouts {
		if err := c.add(ctx, rep, id, p); err != nil {
			return err
		}
	}
	if c.skip {
		return nil
	}
	if err := c.flush(ctx, rep); err != nil {
		return err
	}
	rowsTotal, err := countRows(ctx, db, "payouts")
	if err != nil {
		return err
	}
	if extra := rowsTotal - c.found; extra > 0 {
		// A row is the log's if the request it names is its payout's, at
		// or before the audit's last event.
		type request struct {
			id, stream string
			version    int64
		}
		err := extraRows(ctx, rep, db, "payouts", `SELECT payout_id, request_stream, request_version FROM payouts
			WHERE payout_id > ? ORDER BY payout_id LIMIT 1000`, extra,
			func(rows *sql.Rows) (string, request, error) {
				var r request
				err := rows.Scan(&r.id, &r.stream, &r.version)
				return r.id, r, err
			},
			func(r request) (bool, error) { return requestedAt(ctx, store, r.stream, r.version, r.id, through) })
		if err != nil {
			return err
		}
	}
	return rep.compareStatusCounts(ctx, db, "payout_status_counts", "payouts", c.statuses)
}

// requestedAt reports whether the event at stream's version is the
// request of payout id, at or before through.
func requestedAt(ctx context.Context, store eventstore.Store, stream string, version int64, id string, through eventstore.Position) (bool, error) {
	recs, err := store.ReadStream(ctx, stream, version, 1)
	if err != nil {
		return false, err
	}
	if len(recs) == 0 || recs[0].Version != version || recs[0].Type != domain.TypePayoutRequested || through.Less(recs[0].Position) {
		return false, nil
	}
	e, err := domain.DecodeStored(recs[0].Type, recs[0].Data, recs[0].Metadata)
	if err != nil {
		return false, nil
	}
	req, ok := e.(domain.PayoutRequested)
	return ok && req.PayoutID == id, nil
}
