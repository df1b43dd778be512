-- The global event log. Migrate runs this with search_path set to the
-- store's schema, so names here are unqualified.
--
-- transaction_id is the writing transaction's id. Readers of the global log
-- order by (transaction_id, global_position) and read only transactions
-- below the snapshot's xmin, so an event whose transaction commits late is
-- never skipped (ARCHITECTURE.md, "Postgres event log: the ordering trap").
--
-- data and metadata are bytea so that they read back byte for byte as
-- appended (jsonb would reformat them).
CREATE TABLE events (
    global_position bigserial   PRIMARY KEY,
    transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    event_id        text        NOT NULL,
    stream          text        NOT NULL,
    version         bigint      NOT NULL CHECK (version >= 0),
    type            text        NOT NULL,
    data            bytea       NOT NULL,
    metadata        bytea,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream, version)
);

CREATE INDEX events_transaction_id_global_position_idx ON events (transaction_id, global_position);
