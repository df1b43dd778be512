package webhooks

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// prunePage bounds the deliveries one pruning transaction deletes, so that
// the delivery log is never locked for long on a gateway that serves.
var prunePage = 1000 // a variable for the tests

// Prune deletes the finished deliveries (any status but pending) that last
// changed before before, with their attempts, and returns how many went.
// Pending ones stay whatever their age: they still have to be sent. None
// comes back: the subscriber's checkpoint is past the events they
// announced. It deletes a page per transaction until none is left or ctx
// ends.
func (w *Worker) Prune(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, err := w.prunePage(ctx, before.UnixMilli())
		total += n
		if err != nil {
			return total, fmt.Errorf("webhooks: prune the delivery log: %w", err)
		}
		if n < prunePage {
			return total, nil
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
}

func (w *Worker) prunePage(ctx context.Context, beforeMs int64) (int, error) {
	tx, err := w.db.Write.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, w.db.Q(`SELECT delivery_id FROM webhook_deliveries
		WHERE status <> 'pending' AND updated_at < ? ORDER BY updated_at, delivery_id LIMIT ?`), beforeMs, prunePage)
	if err != nil {
		return 0, err
	}
	var ids []any
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, err
		}
		ids = append(ids, id)
	}
	if err := rows.Close(); err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
	if _, err := tx.ExecContext(ctx, w.db.Q(`DELETE FROM webhook_attempts WHERE delivery_id IN `+in), ids...); err != nil {
		return 0, err
	}
	// The status is checked again: a merchant's retry may have made one
	// pending since it was read.
	res, err := tx.ExecContext(ctx, w.db.Q(`DELETE FROM webhook_deliveries WHERE status <> 'pending' AND delivery_id IN `+in), ids...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, err
	}
	return int(n), tx.Commit()
}

// RunPruning prunes the delivery log every interval, keeping finished
// deliveries for retention (0: keep them all, and return at once).
func (w *Worker) RunPruning(ctx context.Context, retention, interval time.Duration) error {
	if retention <= 0 {
		return nil
	}
	for {
		n, err := w.Prune(ctx, w.cfg.Now().Add(-retention))
		switch {
		case err != nil && ctx.Err() == nil:
			w.cfg.Logger.Error("webhooks: pruning the delivery log failed", "err", err)
		case n > 0:
			w.cfg.Logger.Info("webhooks: pruned the delivery log", "deliveries", n, "older_than", retention.String())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
