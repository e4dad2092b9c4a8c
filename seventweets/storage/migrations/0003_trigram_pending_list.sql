-- A GIN index buffers new entries in a pending list and merges the list into the index
-- once it passes gin_pending_list_limit (4 MB by default). The insert that passes the
-- limit does the whole merge, which under a steady stream of POST /tweets made every
-- few thousandth insert wait tens of milliseconds (p99 of POST /tweets 27 ms against
-- 14 ms with a 256 kB list, one run of bench/run_bench.py each). Merging a smaller list
-- more often keeps that wait short and kept the same throughput; turning the list off
-- (fastupdate = off) also kept it short but cost a quarter of the throughput.
-- A trigram index added by hand later, on a server without pg_trgm at first, needs the
-- same: ALTER INDEX tweets_tweet_trgm_idx SET (gin_pending_list_limit = 256);
DO $$
BEGIN
    IF to_regclass('tweets_tweet_trgm_idx') IS NOT NULL THEN
        ALTER INDEX tweets_tweet_trgm_idx SET (gin_pending_list_limit = 256);
    END IF;
END
$$;
