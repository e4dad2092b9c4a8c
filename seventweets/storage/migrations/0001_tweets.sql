-- Tweets that originate on this node. Retweets are stored here too: they keep the
-- original's text and point at the original by (name, id).
CREATE TABLE tweets (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tweet text NOT NULL,
    -- clock_timestamp(), not now(): two tweets created in one transaction still differ.
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    type text NOT NULL DEFAULT 'original' CHECK (type IN ('original', 'retweet')),
    reference_name text,
    reference_id bigint,
    CHECK ((type = 'original') = (reference_name IS NULL AND reference_id IS NULL))
);

-- One retweet per original, enforced here so that concurrent retweets cannot both land.
CREATE UNIQUE INDEX tweets_retweet_reference_key
    ON tweets (reference_name, reference_id) WHERE type = 'retweet';

-- Responses to POST /tweets by Idempotency-Key, kept 24 hours. A request holds the row
-- lock from insert to commit, so a concurrent repeat waits and then reads the response.
CREATE TABLE idempotency_keys (
    key text PRIMARY KEY,
    body_sha256 bytea NOT NULL,
    status smallint NOT NULL,
    response text NOT NULL,
    location text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idempotency_keys_created_at_idx ON idempotency_keys (created_at);
