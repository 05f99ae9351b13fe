-- Words that mix letters and digits ("café2", "naïve123") lose their accents too, as
-- plain words do: PostgreSQL's parser files them as numword, numhword and
-- hword_numpart, which 004 left to `simple` alone. Only where unaccent is in use;
-- the utterances whose stored vectors held such a word with an accent are written
-- again, so that their generated column is computed anew.
DO $$
DECLARE
    unaccent_schema text;
BEGIN
    SELECT extnamespace::regnamespace::text INTO unaccent_schema
    FROM pg_extension WHERE extname = 'unaccent';
    IF unaccent_schema IS NULL OR NOT EXISTS (
        SELECT 1 FROM pg_ts_config_map AS map
        JOIN pg_ts_config AS config ON config.oid = map.mapcfg
        WHERE config.cfgname = 'utterance_search'
          AND config.cfgnamespace = current_schema()::regnamespace
          AND map.mapdict = format('%s.unaccent', unaccent_schema)::regdictionary
    ) THEN
        RETURN;
    END IF;
    EXECUTE format(
        'ALTER TEXT SEARCH CONFIGURATION utterance_search '
        'ALTER MAPPING FOR numword, numhword, hword_numpart WITH %s.unaccent, pg_catalog.simple',
        unaccent_schema
    );
    EXECUTE format(
        'UPDATE utterances SET text = text WHERE text ~ %L AND text <> %s.unaccent(text)',
        '[0-9]', unaccent_schema
    );
END
$$;
