-- The analytics event feed: each merchant's events in log order, numbered
-- per merchant. seq is the public cursor (GET /v1/events?after=, the SSE
-- id): it is assigned in log order, so a rebuild from the same log, or from
-- a copy of it in another store, gives every event the same seq.
-- data and metadata are the event's JSON as stored (secrets removed).
CREATE TABLE event_feed (
    merchant_id TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    event_id    TEXT NOT NULL UNIQUE,
    stream      TEXT NOT NULL,
    version     INTEGER NOT NULL,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    position    TEXT NOT NULL,
    PRIMARY KEY (merchant_id, seq)
);
