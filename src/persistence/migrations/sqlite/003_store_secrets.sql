-- Secrets the store keeps for itself, made once when the database is made.
-- cursor_key signs pagination cursors (HMAC), so that a cursor is refused
-- unless this database handed it out; every process on the database shares it.
CREATE TABLE store_secrets (
    name  TEXT NOT NULL PRIMARY KEY,
    value BLOB NOT NULL CHECK (length(value) >= 32)
) STRICT, WITHOUT ROWID;

INSERT INTO store_secrets (name, value) VALUES ('cursor_key', randomblob(32));
