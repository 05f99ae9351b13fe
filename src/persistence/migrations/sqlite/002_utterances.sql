-- What was said in a session, turn by turn; append-only. Deleting a session
-- deletes its utterances. The key is also the order of a transcript: by
-- turn, the interviewer ('interviewer' < 'respondent') before the respondent.
CREATE TABLE utterances (
    session_id  TEXT    NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    turn_number INTEGER NOT NULL CHECK (turn_number >= 0),
    speaker     TEXT    NOT NULL CHECK (speaker IN ('interviewer', 'respondent')),
    text        TEXT    NOT NULL CHECK (length(text) BETWEEN 1 AND 20000),
    metadata    TEXT    CHECK (
        metadata IS NULL OR (json_valid(metadata) AND length(CAST(metadata AS BLOB)) <= 16384)
    ),
    created_at  TEXT    NOT NULL,
    PRIMARY KEY (session_id, turn_number, speaker)
) STRICT, WITHOUT ROWID;
