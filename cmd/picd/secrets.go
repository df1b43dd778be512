package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/acceptcryptohere/gateway/commands"
	"github.com/acceptcryptohere/gateway/eventstore"
	"github.com/acceptcryptohere/gateway/projections"
	"github.com/acceptcryptohere/gateway/sqldb"
	"github.com/acceptcryptohere/gateway/webhooks"
)

// privateDataDir creates the data directory, or makes an existing one (a
// mounted volume) 0700: it holds the seed, the secrets key and, on SQLite,
// the log. The files picd creates in it are 0600 (secretFile, the seed
// file, sqlite.Open). A directory picd may not chmod is an error, not a
// warning: others could then replace the files in it.
func privateDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: make it 0700 (picd must own it): %w", dir, err)
	}
	return nil
}

// webhookSecretBox loads the key that seals webhook secrets (see
// webhooks.SecretBox): PIC_SECRETS_KEY, else <data>/secrets.key, generated
// 0600 on first start. It will not generate a new key while the read
// models hold sealed secrets (a data directory lost or not persisted would
// otherwise leave every delivery unsigned without a word). A key that is
// there but is not the one they were sealed under is logged as an error
// and picd runs: that is how an operator who lost the key starts again
// (those merchants' deliveries wait until they rotate their secret).
func webhookSecretBox(ctx context.Context, cfg Config, db sqldb.DB, log *slog.Logger) (*webhooks.SecretBox, error) {
	path := filepath.Join(cfg.DataDir, "secrets.key")
	var sample string
	err := db.Read.QueryRowContext(ctx, `SELECT webhook_secret_sealed FROM merchants WHERE webhook_secret_sealed <> '' LIMIT 1`).Scan(&sample)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sealed webhook secrets: %w", err)
	}
	sealedUnder := ""
	if sample != "" {
		if sealedUnder, err = webhooks.SealedKeyID(sample); err != nil {
			return nil, err
		}
		if cfg.SecretsKey == "" {
			if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("%s is missing, and webhook secrets are sealed under key %s: restore the file from a backup or set PIC_SECRETS_KEY", path, sealedUnder)
			}
		}
	}
	_, statErr := os.Stat(path)
	key, err := secretFile(cfg.SecretsKey, path, log)
	if err != nil {
		return nil, err
	}
	if cfg.SecretsKey == "" && errors.Is(statErr, os.ErrNotExist) {
		log.Warn("generated the key that seals webhook secrets: back it up with the seed; without it every merchant must rotate its webhook secret", "path", path)
	}
	box, err := webhooks.NewSecretBox(key)
	if err != nil {
		return nil, err
	}
	if sealedUnder != "" && sealedUnder != box.KeyID() {
		log.Error("webhook secrets are sealed under another key than the configured one: their deliveries wait, unsigned, "+
			"until the key they were sealed under is restored (secrets.key or PIC_SECRETS_KEY) or the merchants rotate their secret; see docs/security.md",
			"sealed_under", sealedUnder, "configured", box.KeyID(), "path", path)
	}
	return box, nil
}

const (
	// rekeyPage bounds the merchants read per query of rekeyLegacySecrets.
	rekeyPage = 500
	// rekeyCatchUpLimit bounds the wait for the projections at start.
	rekeyCatchUpLimit = 5 * time.Minute
)

// rekeyLegacySecrets runs once at start, on the process that leads the
// background work. A log from before webhook secrets were sealed holds
// them in clear; each such live secret is sealed (a WebhookSecretRotated
// with the same secret and Rekeyed set), so that from then on the read
// models, and every later event, hold only the sealed form. The old events
// keep the clear value (they are immutable, and copy-events and the audit
// must see the log as it was), so the operator is told, now and at every
// start, which merchants should rotate their secret. See docs/security.md.
func rekeyLegacySecrets(ctx context.Context, store eventstore.Store, runner *projections.Runner, db sqldb.DB,
	rekey commands.RekeyWebhookSecretHandler, log *slog.Logger) {
	// The read model lists the merchants: let it reach the log's end first.
	deadline := time.Now().Add(rekeyCatchUpLimit)
	for time.Now().Before(deadline) {
		next, err := store.ReadAll(ctx, runner.Position(), 1)
		if err == nil && len(next) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	rekeyed, after := 0, ""
	for {
		ids, err := merchantIDs(ctx, db, `webhook_secret <> ''`, after, rekeyPage)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("re-key webhook secrets", "err", err)
			}
			return
		}
		for _, id := range ids {
			done, _, err := rekey.Handle(ctx, commands.RekeyWebhookSecret{CommandID: "rekey-webhook-secret-" + id, MerchantID: id})
			if err != nil {
				if ctx.Err() == nil {
					log.Error("re-key webhook secret", "merchant_id", id, "err", err)
				}
				return
			}
			if done {
				rekeyed++
			}
		}
		if len(ids) < rekeyPage {
			break
		}
		after = ids[len(ids)-1]
	}
	if rekeyed > 0 {
		log.Info("sealed the webhook secrets that the log held in clear", "merchants", rekeyed)
	}
	exposed, err := merchantIDs(ctx, db, `webhook_secret_exposed = 1`, "", 100)
	if err != nil {
		if ctx.Err() == nil {
			log.Error("webhook secrets in clear", "err", err)
		}
		return
	}
	if len(exposed) > 0 {
		log.Warn("these merchants sign webhooks with a secret that older events of the log hold in clear; "+
			"ask them to rotate it (POST /v1/account/webhook-secret/rotate, or the dashboard); see docs/security.md",
			"merchants", exposed, "listed_at_most", 100)
	}
}

// merchantIDs lists up to limit merchant ids after after, in order, whose
// row matches where (a constant condition).
func merchantIDs(ctx context.Context, db sqldb.DB, where, after string, limit int) ([]string, error) {
	rows, err := db.Read.QueryContext(ctx, db.Q(`SELECT merchant_id FROM merchants WHERE `+where+` AND merchant_id > ? ORDER BY merchant_id LIMIT ?`), after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
