-- +goose Up
-- A ledger row stores its shape by number (issue 14): the columns that a
-- busy gateway's rows repeat (key, endpoint, model, upstream, outcome, ...)
-- are stored once in request_shapes, and a row in request_rows keeps its
-- own values and the shape's id. The writer's CPU a row went with the
-- number of columns it handles (SQLite's VDBE reads, copies and checks
-- each one): 28 columns a row became 17, 40,579 instructions a row 26,971
-- with the statements of internal/store/sqlite/rows.go
-- (bench/writer-instructions.sh), and the writer process's CPU a row at
-- 5000 rows/s 7.2-9.1 us 4.9-5.4. requests is now a view with the old
-- columns, so every reader reads what it read. The end user, client
-- address and error stay in the row: they may differ in every request.
CREATE TABLE request_shapes (
    id         INTEGER PRIMARY KEY,
    key_id     TEXT NOT NULL,
    key_name   TEXT NOT NULL,
    endpoint   TEXT NOT NULL,
    model      TEXT NOT NULL,
    model_used TEXT NOT NULL,
    upstream   TEXT NOT NULL,
    stream     INTEGER NOT NULL,
    outcome    TEXT NOT NULL,
    status     INTEGER NOT NULL,
    attempts   INTEGER NOT NULL,
    estimated  INTEGER NOT NULL,
    priced     INTEGER NOT NULL,
    UNIQUE (key_id, key_name, endpoint, model, model_used, upstream, stream, outcome, status, attempts, estimated, priced)
);
CREATE TABLE request_rows (
    id                 TEXT NOT NULL,
    time_us            INTEGER NOT NULL,
    shape              INTEGER NOT NULL,
    end_user           TEXT NOT NULL DEFAULT '',
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cached_tokens      INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens   INTEGER NOT NULL DEFAULT 0,
    total_tokens       INTEGER NOT NULL DEFAULT 0,
    cost_nano          INTEGER NOT NULL DEFAULT 0,
    duration_ns        INTEGER NOT NULL DEFAULT 0,
    ttfb_ns            INTEGER NOT NULL DEFAULT 0,
    client_ip          TEXT NOT NULL DEFAULT '',
    error              TEXT NOT NULL DEFAULT '',
    request_body       BLOB,
    response_body      BLOB,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (time_us, id)
) WITHOUT ROWID;
INSERT INTO request_shapes (key_id, key_name, endpoint, model, model_used, upstream, stream, outcome, status, attempts, estimated, priced)
SELECT DISTINCT key_id, key_name, endpoint, model, model_used, upstream, stream, outcome, status, attempts, estimated, priced
FROM requests;
INSERT INTO request_rows (id, time_us, shape, end_user, prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens,
    total_tokens, cost_nano, duration_ns, ttfb_ns, client_ip, error, request_body, response_body, cache_write_tokens)
SELECT r.id, r.time_us, s.id, r.end_user, r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.reasoning_tokens,
    r.total_tokens, r.cost_nano, r.duration_ns, r.ttfb_ns, r.client_ip, r.error, r.request_body, r.response_body, r.cache_write_tokens
FROM requests r JOIN request_shapes s ON s.key_id = r.key_id AND s.key_name = r.key_name AND s.endpoint = r.endpoint
    AND s.model = r.model AND s.model_used = r.model_used AND s.upstream = r.upstream AND s.stream = r.stream
    AND s.outcome = r.outcome AND s.status = r.status AND s.attempts = r.attempts AND s.estimated = r.estimated
    AND s.priced = r.priced
ORDER BY r.time_us, r.id;
DROP TABLE requests;
-- CROSS JOIN keeps request_rows the outer loop, in primary-key order, as
-- the logs pages and retention read the table before: a filter on a shape
-- column (key_id = ?) must not turn into a scan of request_rows per shape.
CREATE VIEW requests AS
SELECT r.id, r.time_us, s.key_id, s.key_name, r.end_user, s.endpoint, s.model, s.model_used, s.upstream, s.stream,
    s.outcome, s.status, s.attempts, r.prompt_tokens, r.completion_tokens, r.cached_tokens, r.reasoning_tokens,
    r.total_tokens, s.estimated, r.cost_nano, s.priced, r.duration_ns, r.ttfb_ns, r.client_ip, r.error,
    r.request_body, r.response_body, r.cache_write_tokens
FROM request_rows r CROSS JOIN request_shapes s ON s.id = r.shape;

-- +goose Down
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
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (time_us, id)
) WITHOUT ROWID;
INSERT INTO requests_old SELECT * FROM requests;
DROP VIEW requests;
DROP TABLE request_rows;
DROP TABLE request_shapes;
ALTER TABLE requests_old RENAME TO requests;
