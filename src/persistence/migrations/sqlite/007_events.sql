-- The event log (an outbox): one row per acknowledged write, inserted in the
-- write's own transaction. AUTOINCREMENT: an id is never handed out twice,
-- not even after the newest events were trimmed. session_id and study_id are
-- columns, so that an erasure can find a participant's events.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    type       TEXT    NOT NULL,
    session_id TEXT,
    study_id   TEXT,
    version    INTEGER,
    at         TEXT    NOT NULL,
    data       TEXT    NOT NULL
) STRICT;

CREATE INDEX events_by_session ON events (session_id);
CREATE INDEX events_by_time ON events (at);

-- The newest id retention has trimmed: a reader asking to resume before it
-- has missed events the log no longer keeps.
CREATE TABLE event_log (
    only_row        INTEGER PRIMARY KEY CHECK (only_row = 1),
    trimmed_through INTEGER NOT NULL
) STRICT;
INSERT INTO event_log (only_row, trimmed_through) VALUES (1, 0);
