-- Full-text search over utterances: a tsvector column the database computes
-- from the text in the same write (a stored generated column), under a GIN index.
-- The text search configuration is `simple` (no stemming, no stop words: the
-- words of any language are kept as said) with `unaccent` before it, so
-- "Café" matches "cafe". unaccent ships with PostgreSQL and is a trusted
-- extension: the migration creates it when it is missing and it may. Where it
-- may not (no CREATE on the database, or the contrib files are not installed)
-- the configuration is `simple` alone: search still works and ignores case,
-- but accents count; the README says how to add unaccent later.
DO $$
DECLARE
    unaccent_schema text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent') THEN
        BEGIN
            CREATE EXTENSION unaccent;
        EXCEPTION
            WHEN insufficient_privilege OR undefined_file OR feature_not_supported
                OR duplicate_object OR unique_violation THEN
                RAISE NOTICE 'unaccent is not available (%); search will count accents', SQLERRM;
        END;
    END IF;
    CREATE TEXT SEARCH CONFIGURATION utterance_search (COPY = pg_catalog.simple);
    SELECT extnamespace::regnamespace::text INTO unaccent_schema
    FROM pg_extension WHERE extname = 'unaccent';
    IF unaccent_schema IS NOT NULL THEN
        EXECUTE format(
            'ALTER TEXT SEARCH CONFIGURATION utterance_search '
            'ALTER MAPPING FOR hword, hword_part, word WITH %s.unaccent, pg_catalog.simple',
            unaccent_schema
        );
    END IF;
END
$$;

ALTER TABLE utterances ADD COLUMN search_vector tsvector
    GENERATED ALWAYS AS (to_tsvector('utterance_search', text)) STORED;

CREATE INDEX utterances_search ON utterances USING gin (search_vector);

-- AND over a set of tsqueries: a query is built from its terms, one tsquery each.
CREATE AGGREGATE all_of (tsquery) (SFUNC = pg_catalog.tsquery_and, STYPE = tsquery);
