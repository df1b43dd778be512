-- Snapshots (eventstore.Snapshots): one per stream and kind, a fold's
-- state at a version of the stream. A cache beside the log, not part of
-- it: deleting every row loses nothing, the folds read from the start.
CREATE TABLE snapshots (
    stream   text        NOT NULL,
    kind     text        NOT NULL,
    version  bigint      NOT NULL CHECK (version >= 0),
    data     bytea       NOT NULL,
    saved_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (stream, kind)
);
