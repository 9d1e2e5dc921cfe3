-- +goose Up
-- requests becomes one B-tree in time order (issue 14): the primary key
-- (time_us, id) is the dedupe key of spill replays, the order of the logs
-- pages and the retention order at once. Only GetLog needs a second index.
-- The six log-filter indexes of 00003 and requests_key_time give way to
-- request_zones, a map of which values occur in which 10-minute bucket
-- (store.ZoneBucketUS), written once per batch (see internal/store/zones.go).
CREATE TABLE requests_new (
    id                 TEXT NOT NULL,
    time_us            INTEGER NOT NULL,
    key_id             TEXT NOT NULL DEFAULT '',
    key_name           TEXT NOT NULL DEFAULT '',
    end_user           TEXT NOT NULL DEFAULT '',
    endpoint           TEXT NOT NULL DEFAULT '',
    model              TEXT NOT NULL DEFAULT '',
    model_used         TEXT NOT NULL DEFAULT '',
    upstream           TEXT NOT NULL DEFAULT '',
    stream             INTEGER NOT NULL DEFAULT 0,
    outcome            TEXT NOT NULL DEFAULT '',
    status             INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
    total_tokens       INTEGER NOT NULL DEFAULT 0,
    estimated          INTEGER NOT NULL DEFAULT 0,
    cost_nano          INTEGER NOT NULL DEFAULT 0,
    priced             INTEGER NOT NULL DEFAULT 0,
    duration_ns        INTEGER NOT NULL DEFAULT 0,
    ttfb_ns            INTEGER NOT NULL DEFAULT 0,
    client_ip          TEXT NOT NULL DEFAULT '',
    error              TEXT NOT NULL DEFAULT '',
    request_body       BLOB,
    response_body      BLOB,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (time_us, id)
) WITHOUT ROWID;
INSERT INTO requests_new (id, time_us, key_id, key_name, end_user, endpoint, model, model_used, upstream, stream,
    outcome, status, attempts, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, total_tokens,
    estimated, cost_nano, priced, duration_ns, ttfb_ns, client_ip, error, request_body, response_body, cache_write_tokens)
SELECT id, time_us, key_id, key_name, end_user, endpoint, model, model_used, upstream, stream,
    outcome, status, attempts, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, total_tokens,
    estimated, cost_nano, priced, duration_ns, ttfb_ns, client_ip, error, request_body, response_body, cache_write_tokens
FROM requests ORDER BY time_us, id;
DROP TABLE requests;
ALTER TABLE requests_new RENAME TO requests;
CREATE INDEX requests_id ON requests (id);

-- dim: 1 key, 2 model, 3 user, 4 upstream, 5 outcome, 6 status, 7 stream
-- (store.ZoneDim); n counts the rows. Empty values and status 0 are left out.
CREATE TABLE request_zones (
    dim    INTEGER NOT NULL,
    value  TEXT NOT NULL,
    bucket INTEGER NOT NULL, -- unix microseconds, a multiple of 600000000
    n      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, value, bucket)
) WITHOUT ROWID;
-- One statement per dim: each GROUP BY sorts one row per request, and
-- seven in one statement held about 2 GB in the sorter at 5 million rows.
INSERT INTO request_zones SELECT 1, key_id, time_us - time_us % 600000000 AS b, count(*) FROM requests WHERE key_id <> '' GROUP BY 2, 3;
INSERT INTO request_zones SELECT 2, model, time_us - time_us % 600000000 AS b, count(*) FROM requests WHERE model <> '' GROUP BY 2, 3;
INSERT INTO request_zones SELECT 3, end_user, time_us - time_us % 600000000 AS b, count(*) FROM requests WHERE end_user <> '' GROUP BY 2, 3;
INSERT INTO request_zones SELECT 4, upstream, time_us - time_us % 600000000 AS b, count(*) FROM requests WHERE upstream <> '' GROUP BY 2, 3;
INSERT INTO request_zones SELECT 5, outcome, time_us - time_us % 600000000 AS b, count(*) FROM requests WHERE outcome <> '' GROUP BY 2, 3;
INSERT INTO request_zones SELECT 6, CAST(status AS TEXT), time_us - time_us % 600000000 AS b, count(*) FROM requests WHERE status <> 0 GROUP BY 2, 3;
INSERT INTO request_zones SELECT 7, CASE WHEN stream THEN '1' ELSE '0' END, time_us - time_us % 600000000 AS b, count(*) FROM requests GROUP BY 2, 3;

-- +goose Down
DROP TABLE request_zones;
CREATE TABLE requests_old (
    id                 TEXT NOT NULL,
    time_us            INTEGER NOT NULL,
    key_id             TEXT NOT NULL DEFAULT '',
    key_name           TEXT NOT NULL DEFAULT '',
    end_user           TEXT NOT NULL DEFAULT '',
    endpoint           TEXT NOT NULL DEFAULT '',
    model              TEXT NOT NULL DEFAULT '',
    model_used         TEXT NOT NULL DEFAULT '',
    upstream           TEXT NOT NULL DEFAULT '',
    stream             INTEGER NOT NULL DEFAULT 0,
    outcome            TEXT NOT NULL DEFAULT '',
    status             INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 0,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
    total_tokens       INTEGER NOT NULL DEFAULT 0,
    estimated          INTEGER NOT NULL DEFAULT 0,
    cost_nano          INTEGER NOT NULL DEFAULT 0,
    priced             INTEGER NOT NULL DEFAULT 0,
    duration_ns        INTEGER NOT NULL DEFAULT 0,
    ttfb_ns            INTEGER NOT NULL DEFAULT 0,
    client_ip          TEXT NOT NULL DEFAULT '',
    error              TEXT NOT NULL DEFAULT '',
    request_body       BLOB,
    response_body      BLOB,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0
);
INSERT INTO requests_old SELECT * FROM requests;
DROP TABLE requests;
ALTER TABLE requests_old RENAME TO requests;
CREATE UNIQUE INDEX requests_id_time ON requests (id, time_us);
CREATE INDEX requests_time ON requests (time_us, id);
CREATE INDEX requests_key_time ON requests (key_id, time_us);
CREATE INDEX requests_model_time ON requests (model, time_us, id);
CREATE INDEX requests_user_time ON requests (end_user, time_us, id);
CREATE INDEX requests_outcome_time ON requests (outcome, time_us, id);
CREATE INDEX requests_upstream_time ON requests (upstream, time_us, id);
CREATE INDEX requests_status_time ON requests (status, time_us, id);
CREATE INDEX requests_stream_time ON requests (stream, time_us, id);
