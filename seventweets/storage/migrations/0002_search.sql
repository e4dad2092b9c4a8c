-- Indexes of GET /search.

-- Newest first, with the from/to bounds as a range on the same index. With no content
-- filter, or a common one, a search reads this index in order and stops after `limit`
-- rows.
CREATE INDEX tweets_created_at_id_idx ON tweets (created_at DESC, id DESC);

-- The content filter is `tweet ILIKE '%...%'`, which no btree index can serve. A trigram
-- index can: pg_trgm (in PostgreSQL's contrib package) finds the rows that contain every
-- trigram of the pattern. pg_trgm is a trusted extension since PostgreSQL 13, so the
-- owner of the database may create it without being a superuser. On a server without
-- contrib, or where the node's user may not create it, search still returns the same
-- results from a sequential scan, slower on a large table. Once pg_trgm is available,
-- add the index by hand with `CREATE EXTENSION pg_trgm;` and
-- `CREATE INDEX tweets_tweet_trgm_idx ON tweets USING gin (tweet gin_trgm_ops);`.
DO $$
BEGIN
    CREATE EXTENSION IF NOT EXISTS pg_trgm;
EXCEPTION
    WHEN undefined_file OR insufficient_privilege OR feature_not_supported THEN
        RAISE WARNING 'pg_trgm cannot be created (%); search by content will scan the table',
            SQLERRM;
END
$$;

-- The operator class is qualified with the extension's schema, because an extension
-- created earlier may sit in a schema that is not on the search path.
DO $$
DECLARE
    trgm_schema name;
BEGIN
    SELECT n.nspname INTO trgm_schema
    FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'pg_trgm';
    IF trgm_schema IS NOT NULL THEN
        EXECUTE format(
            'CREATE INDEX tweets_tweet_trgm_idx ON tweets USING gin (tweet %I.gin_trgm_ops)',
            trgm_schema
        );
    END IF;
END
$$;
