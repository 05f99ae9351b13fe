-- What was said in a session, turn by turn; the same rules as the SQLite schema.
-- metadata is kept as the JSON text it came in, so both engines return it alike.
CREATE TABLE utterances (
    session_id  text COLLATE "C" NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    turn_number integer NOT NULL CHECK (turn_number >= 0),
    speaker     text COLLATE "C" NOT NULL CHECK (speaker IN ('interviewer', 'respondent')),
    text        text NOT NULL CHECK (char_length(text) BETWEEN 1 AND 20000),
    metadata    text CHECK (
        metadata IS NULL OR (metadata::json IS NOT NULL AND octet_length(metadata) <= 16384)
    ),
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (session_id, turn_number, speaker)
);
