-- The leader's lease (follow.Lease): one row per lease name. token goes up
-- at every takeover and fences the holder's writes; renewed_at is the
-- database's clock, so instances' clocks never decide a takeover.
-- holder_pid and holder_since name the holder's lease session: when that
-- session is gone (killed, cut off) a candidate takes over at once.
-- token has no unique index on purpose: a fenced write's FOR KEY SHARE
-- lock must not block the holder's renewals, only a takeover's FOR UPDATE.
CREATE TABLE leader_lease (
    name         TEXT PRIMARY KEY,
    token        BIGINT NOT NULL,
    holder       TEXT NOT NULL,
    holder_pid   INTEGER NOT NULL,
    holder_since TIMESTAMPTZ,
    acquired_at  TIMESTAMPTZ NOT NULL,
    renewed_at   TIMESTAMPTZ NOT NULL
);
