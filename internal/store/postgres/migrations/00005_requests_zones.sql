-- +goose Up
-- The six log-filter indexes of 00003 and requests_key_time give way to
-- request_zones, a map of which values occur in which 10-minute bucket
-- (store.ZoneBucketUS), written once per batch (internal/store/zones.go), as
-- on SQLite. requests keeps its primary key (id, time) for dedupe and GetLog
-- and requests_time for the logs pages and retention.
DROP INDEX IF EXISTS requests_model_time;
DROP INDEX IF EXISTS requests_user_time;
DROP INDEX IF EXISTS requests_outcome_time;
DROP INDEX IF EXISTS requests_upstream_time;
DROP INDEX IF EXISTS requests_status_time;
DROP INDEX IF EXISTS requests_stream_time;
DROP INDEX IF EXISTS requests_key_time;

-- dim: 1 key, 2 model, 3 user, 4 upstream, 5 outcome, 6 status, 7 stream
-- (store.ZoneDim); n counts the rows. Empty values and status 0 are left out.
CREATE TABLE request_zones (
    dim    SMALLINT NOT NULL,
    value  TEXT NOT NULL,
    bucket BIGINT NOT NULL, -- unix microseconds, a multiple of 600000000
    n      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (dim, value, bucket)
);
INSERT INTO request_zones (dim, value, bucket, n)
SELECT z.dim, z.value, floor(extract(epoch FROM r.time) / 600)::bigint * 600000000, count(*)
FROM requests r CROSS JOIN LATERAL (VALUES
    (1, r.key_id), (2, r.model), (3, r.end_user), (4, r.upstream), (5, r.outcome),
    (6, CASE WHEN r.status <> 0 THEN r.status::text ELSE '' END),
    (7, CASE WHEN r.stream THEN '1' ELSE '0' END)) AS z(dim, value)
WHERE z.value <> ''
GROUP BY 1, 2, 3;
ANALYZE request_zones;

-- +goose Down
DROP TABLE request_zones;
CREATE INDEX requests_key_time ON requests (key_id, time);
CREATE INDEX requests_model_time ON requests (model, time, id);
CREATE INDEX requests_user_time ON requests (end_user, time, id);
CREATE INDEX requests_outcome_time ON requests (outcome, time, id);
CREATE INDEX requests_upstream_time ON requests (upstream, time, id);
CREATE INDEX requests_status_time ON requests (status, time, id);
CREATE INDEX requests_stream_time ON requests (stream, time, id);
