-- Secrets the store keeps for itself, made once when the database is made.
-- cursor_key signs pagination cursors (HMAC), so that a cursor is refused
-- unless this database handed it out; every process on the database shares it.
CREATE TABLE store_secrets (
    name  text PRIMARY KEY,
    value bytea NOT NULL CHECK (octet_length(value) >= 32)
);

-- gen_random_uuid() draws from the server's strong random source (no
-- extension needed); two of them give 244 random bits.
INSERT INTO store_secrets (name, value) VALUES (
    'cursor_key',
    decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex')
);
