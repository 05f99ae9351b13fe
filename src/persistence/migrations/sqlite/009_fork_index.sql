-- An erasure follows forks from the sessions it takes (forked_from_id), one
-- session at a time: without an index each step reads every session. Most
-- sessions are no fork, so only forks are indexed.
CREATE INDEX sessions_by_forked_from ON sessions (forked_from_id)
    WHERE forked_from_id IS NOT NULL;
