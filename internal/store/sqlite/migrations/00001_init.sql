-- +goose Up
-- One row per ledger.Record. Times are unix microseconds (UTC), durations nanoseconds.
-- The key is (id, time_us): a replayed row (same id, same time) is skipped, while
-- two requests that reuse a client-sent X-Request-Id both keep their rows.
CREATE TABLE requests (
    id                TEXT NOT NULL,
    time_us           INTEGER NOT NULL,
    key_id            TEXT NOT NULL DEFAULT '',
    key_name          TEXT NOT NULL DEFAULT '',
    end_user          TEXT NOT NULL DEFAULT '',
    endpoint          TEXT NOT NULL DEFAULT '',
    model             TEXT NOT NULL DEFAULT '',
    model_used        TEXT NOT NULL DEFAULT '',
    upstream          TEXT NOT NULL DEFAULT '',
    stream            INTEGER NOT NULL DEFAULT 0,
    outcome           TEXT NOT NULL DEFAULT '',
    status            INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    estimated         INTEGER NOT NULL DEFAULT 0,
    cost_nano         INTEGER NOT NULL DEFAULT 0,
    priced            INTEGER NOT NULL DEFAULT 0,
    duration_ns       INTEGER NOT NULL DEFAULT 0,
    ttfb_ns           INTEGER NOT NULL DEFAULT 0,
    client_ip         TEXT NOT NULL DEFAULT '',
    error             TEXT NOT NULL DEFAULT '',
    request_body      BLOB,
    response_body     BLOB
);
CREATE UNIQUE INDEX requests_id_time ON requests (id, time_us);
CREATE INDEX requests_time ON requests (time_us, id);
CREATE INDEX requests_key_time ON requests (key_id, time_us);

-- Hourly aggregates: /admin/usage and budgets read only this table.
-- h00..h23 are the duration histogram buckets (see store.HistBucket).
CREATE TABLE usage_hourly (
    hour              INTEGER NOT NULL, -- unix seconds, UTC, multiple of 3600
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    upstream          TEXT NOT NULL,
    end_user          TEXT NOT NULL,
    requests          INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_nano         INTEGER NOT NULL DEFAULT 0,
    unpriced          INTEGER NOT NULL DEFAULT 0,
    h00 INTEGER NOT NULL DEFAULT 0,
    h01 INTEGER NOT NULL DEFAULT 0,
    h02 INTEGER NOT NULL DEFAULT 0,
    h03 INTEGER NOT NULL DEFAULT 0,
    h04 INTEGER NOT NULL DEFAULT 0,
    h05 INTEGER NOT NULL DEFAULT 0,
    h06 INTEGER NOT NULL DEFAULT 0,
    h07 INTEGER NOT NULL DEFAULT 0,
    h08 INTEGER NOT NULL DEFAULT 0,
    h09 INTEGER NOT NULL DEFAULT 0,
    h10 INTEGER NOT NULL DEFAULT 0,
    h11 INTEGER NOT NULL DEFAULT 0,
    h12 INTEGER NOT NULL DEFAULT 0,
    h13 INTEGER NOT NULL DEFAULT 0,
    h14 INTEGER NOT NULL DEFAULT 0,
    h15 INTEGER NOT NULL DEFAULT 0,
    h16 INTEGER NOT NULL DEFAULT 0,
    h17 INTEGER NOT NULL DEFAULT 0,
    h18 INTEGER NOT NULL DEFAULT 0,
    h19 INTEGER NOT NULL DEFAULT 0,
    h20 INTEGER NOT NULL DEFAULT 0,
    h21 INTEGER NOT NULL DEFAULT 0,
    h22 INTEGER NOT NULL DEFAULT 0,
    h23 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, key_id, model, upstream, end_user)
) WITHOUT ROWID;
CREATE INDEX usage_hourly_key ON usage_hourly (key_id, hour);

-- The same sums per UTC day, kept in the same transaction: a 30-day query
-- reads whole days here and only the partial hours at its ends from
-- usage_hourly, so it scans ~24x fewer rows.
CREATE TABLE usage_daily (
    day               INTEGER NOT NULL, -- unix seconds, UTC, multiple of 86400
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    upstream          TEXT NOT NULL,
    end_user          TEXT NOT NULL,
    requests          INTEGER NOT NULL DEFAULT 0,
    errors            INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cached_tokens     INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_nano         INTEGER NOT NULL DEFAULT 0,
    unpriced          INTEGER NOT NULL DEFAULT 0,
    h00 INTEGER NOT NULL DEFAULT 0,
    h01 INTEGER NOT NULL DEFAULT 0,
    h02 INTEGER NOT NULL DEFAULT 0,
    h03 INTEGER NOT NULL DEFAULT 0,
    h04 INTEGER NOT NULL DEFAULT 0,
    h05 INTEGER NOT NULL DEFAULT 0,
    h06 INTEGER NOT NULL DEFAULT 0,
    h07 INTEGER NOT NULL DEFAULT 0,
    h08 INTEGER NOT NULL DEFAULT 0,
    h09 INTEGER NOT NULL DEFAULT 0,
    h10 INTEGER NOT NULL DEFAULT 0,
    h11 INTEGER NOT NULL DEFAULT 0,
    h12 INTEGER NOT NULL DEFAULT 0,
    h13 INTEGER NOT NULL DEFAULT 0,
    h14 INTEGER NOT NULL DEFAULT 0,
    h15 INTEGER NOT NULL DEFAULT 0,
    h16 INTEGER NOT NULL DEFAULT 0,
    h17 INTEGER NOT NULL DEFAULT 0,
    h18 INTEGER NOT NULL DEFAULT 0,
    h19 INTEGER NOT NULL DEFAULT 0,
    h20 INTEGER NOT NULL DEFAULT 0,
    h21 INTEGER NOT NULL DEFAULT 0,
    h22 INTEGER NOT NULL DEFAULT 0,
    h23 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, key_id, model, upstream, end_user)
) WITHOUT ROWID;
CREATE INDEX usage_daily_key ON usage_daily (key_id, day);

-- Newest ledger time per key, maintained by InsertRecords so that
-- KeysLastUsed needs no scan of requests.
CREATE TABLE key_last_used (
    key_id  TEXT PRIMARY KEY,
    time_us INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL DEFAULT '',
    prefix        TEXT NOT NULL DEFAULT '',
    hash          TEXT NOT NULL UNIQUE,
    models        TEXT NOT NULL DEFAULT '[]', -- JSON array
    rpm           INTEGER NOT NULL DEFAULT 0,
    tpm           INTEGER NOT NULL DEFAULT 0,
    max_parallel  INTEGER NOT NULL DEFAULT 0,
    budget_nano   INTEGER NOT NULL DEFAULT 0,
    budget_period TEXT NOT NULL DEFAULT '',
    expires_us    INTEGER NOT NULL DEFAULT 0, -- 0 = never
    revoked_us    INTEGER NOT NULL DEFAULT 0, -- 0 = not revoked
    created_us    INTEGER NOT NULL,
    updated_us    INTEGER NOT NULL
);

-- Conversation header: next_seq is bumped atomically by every append, which
-- serializes appenders of one conversation and orders their messages.
CREATE TABLE conversations (
    key_id       TEXT NOT NULL,
    end_user     TEXT NOT NULL,
    conversation TEXT NOT NULL,
    next_seq     INTEGER NOT NULL,
    PRIMARY KEY (key_id, end_user, conversation)
) WITHOUT ROWID;

CREATE TABLE conversation_messages (
    key_id       TEXT NOT NULL,
    end_user     TEXT NOT NULL,
    conversation TEXT NOT NULL,
    seq          INTEGER NOT NULL,
    role         TEXT NOT NULL,
    content      TEXT NOT NULL,
    time_us      INTEGER NOT NULL,
    PRIMARY KEY (key_id, end_user, conversation, seq)
) WITHOUT ROWID;

-- +goose Down
DROP TABLE conversation_messages;
DROP TABLE conversations;
DROP TABLE keys;
DROP TABLE key_last_used;
DROP TABLE usage_daily;
DROP TABLE usage_hourly;
DROP TABLE requests;
