-- The audit log: who wrote, exported, erased or was refused what, and when.
-- A table of its own with no foreign key: an entry outlives the session it
-- names. It holds no key, no body and nothing a participant said; an
-- erasure's entry holds counts only (`counts`), never the participant.
CREATE TABLE audit_log (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL,
    key_name   text,
    action     text NOT NULL,
    method     text NOT NULL,
    path       text NOT NULL,
    session_id text,
    counts     jsonb
);

-- Listings filter by action or key name, newest first.
CREATE INDEX audit_log_by_action ON audit_log (action, id);
CREATE INDEX audit_log_by_key_name ON audit_log (key_name, id);
