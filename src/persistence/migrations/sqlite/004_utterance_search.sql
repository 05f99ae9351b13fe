-- Full-text search over utterances (FTS5), kept in step by triggers, so an
-- utterance and its index entry are written, and deleted, in one transaction.
-- unicode61 with remove_diacritics 2 folds case and accents: "Café" matches
-- "cafe". utterances has no rowid, so each utterance gets a numbered row here
-- that is also its row in the index; deleting by key stays an index lookup.
CREATE TABLE utterance_search_rows (
    row_id      INTEGER PRIMARY KEY,
    session_id  TEXT    NOT NULL,
    turn_number INTEGER NOT NULL,
    speaker     TEXT    NOT NULL,
    UNIQUE (session_id, turn_number, speaker)
) STRICT;

-- The index reads the text it shows in snippets from utterances (external
-- content): the text is stored once, and erasing an utterance leaves no copy
-- of it behind. No column sizes: they serve only BM25, which search does not use.
CREATE VIEW utterance_search_text AS
SELECT utterance_search_rows.row_id, utterances.text
FROM utterance_search_rows
JOIN utterances USING (session_id, turn_number, speaker);

CREATE VIRTUAL TABLE utterance_search USING fts5(
    text,
    content = 'utterance_search_text',
    content_rowid = 'row_id',
    columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 2'
);

CREATE TRIGGER utterances_search_insert AFTER INSERT ON utterances BEGIN
    INSERT INTO utterance_search_rows (session_id, turn_number, speaker)
    VALUES (new.session_id, new.turn_number, new.speaker);
    INSERT INTO utterance_search (rowid, text) VALUES (last_insert_rowid(), new.text);
END;

-- An external-content index forgets a row only when told the text it indexed.
-- A deleted session's utterances go by its ON DELETE CASCADE, which fires this too.
CREATE TRIGGER utterances_search_delete AFTER DELETE ON utterances BEGIN
    INSERT INTO utterance_search (utterance_search, rowid, text)
    SELECT 'delete', row_id, old.text FROM utterance_search_rows
    WHERE session_id = old.session_id AND turn_number = old.turn_number
      AND speaker = old.speaker;
    DELETE FROM utterance_search_rows
    WHERE session_id = old.session_id AND turn_number = old.turn_number
      AND speaker = old.speaker;
END;

CREATE TRIGGER utterances_search_update AFTER UPDATE OF text ON utterances BEGIN
    INSERT INTO utterance_search (utterance_search, rowid, text)
    SELECT 'delete', row_id, old.text FROM utterance_search_rows
    WHERE session_id = old.session_id AND turn_number = old.turn_number
      AND speaker = old.speaker;
    INSERT INTO utterance_search (rowid, text)
    SELECT row_id, new.text FROM utterance_search_rows
    WHERE session_id = new.session_id AND turn_number = new.turn_number
      AND speaker = new.speaker;
END;

INSERT INTO utterance_search_rows (session_id, turn_number, speaker)
SELECT session_id, turn_number, speaker FROM utterances;

INSERT INTO utterance_search (utterance_search) VALUES ('rebuild');
