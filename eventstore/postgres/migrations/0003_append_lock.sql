-- Readers of the global log stop at the oldest append still open, not at
-- the oldest write transaction of the whole server (pg_snapshot_xmin), so a
-- long transaction elsewhere no longer holds every follower back. That
-- needs every appender to take the store's append lock (a shared advisory
-- lock) before its transaction writes anything, and to say so in the
-- transaction's eventstore.append_lock setting; an insert that did not is
-- refused here, since its events could commit behind a reader's position
-- and be skipped. A process of an older release, which does not take the
-- lock, fails its appends instead of losing events: upgrade every process.
CREATE FUNCTION events_require_append_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('eventstore.append_lock', true) IS DISTINCT FROM TG_TABLE_SCHEMA THEN
        RAISE EXCEPTION 'events of schema % are written under the store''s append lock, taken before the transaction writes anything (eventstore/postgres: lockAppend)', TG_TABLE_SCHEMA
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_require_append_lock BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_require_append_lock();
