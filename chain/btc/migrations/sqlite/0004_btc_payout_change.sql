-- chain_btc_payout_change: the change address of each payout, kept before
-- the payout is signed. A payout built again after a crash (of picd serve,
-- or of a separate signer, between the signature and chain_btc_payouts)
-- sends its change to the same address, and a transaction the signer
-- signed for it before can be recognised as ours and adopted (payout.go).
CREATE TABLE chain_btc_payout_change (
    payout_id  TEXT PRIMARY KEY,
    hd_index   BIGINT NOT NULL,
    address    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
