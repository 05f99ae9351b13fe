-- The audit log: who wrote, exported, erased or was refused what, and when.
-- A table of its own with no foreign key: an entry outlives the session it
-- names. It holds no key, no body and nothing a participant said; an
-- erasure's entry holds counts only (`counts`, JSON), never the participant.
-- AUTOINCREMENT: an id is never used twice, so a page cursor (an id) can
-- never come to mean another entry.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         TEXT    NOT NULL,
    key_name   TEXT,
    action     TEXT    NOT NULL,
    method     TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    session_id TEXT,
    counts     TEXT CHECK (counts IS NULL OR json_valid(counts))
) STRICT;

-- Listings filter by action or key name, newest first.
CREATE INDEX audit_log_by_action ON audit_log (action, id);
CREATE INDEX audit_log_by_key_name ON audit_log (key_name, id);
