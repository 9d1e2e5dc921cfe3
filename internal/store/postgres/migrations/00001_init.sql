-- +goose Up
-- One row per ledger.Record. Durations are nanoseconds. The key is (id, time): a
-- replayed row (same id, same time) is skipped, while two requests that reuse a
-- client-sent X-Request-Id both keep their rows.
CREATE TABLE requests (
    id                TEXT NOT NULL,
    time              TIMESTAMPTZ NOT NULL,
    key_id            TEXT NOT NULL DEFAULT '',
    key_name          TEXT NOT NULL DEFAULT '',
    end_user          TEXT NOT NULL DEFAULT '',
    endpoint          TEXT NOT NULL DEFAULT '',
    model             TEXT NOT NULL DEFAULT '',
    model_used        TEXT NOT NULL DEFAULT '',
    upstream          TEXT NOT NULL DEFAULT '',
    stream            BOOLEAN NOT NULL DEFAULT false,
    outcome           TEXT NOT NULL DEFAULT '',
    status            INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens     BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens  BIGINT NOT NULL DEFAULT 0,
    total_tokens      BIGINT NOT NULL DEFAULT 0,
    estimated         BOOLEAN NOT NULL DEFAULT false,
    cost_nano         BIGINT NOT NULL DEFAULT 0,
    priced            BOOLEAN NOT NULL DEFAULT false,
    duration_ns       BIGINT NOT NULL DEFAULT 0,
    ttfb_ns           BIGINT NOT NULL DEFAULT 0,
    client_ip         TEXT NOT NULL DEFAULT '',
    error             TEXT NOT NULL DEFAULT '',
    request_body      BYTEA,
    response_body     BYTEA,
    dur_bucket        SMALLINT NOT NULL DEFAULT 0 -- store.HistBucket(duration), feeds usage_hourly
);
ALTER TABLE requests ADD PRIMARY KEY (id, time);
CREATE INDEX requests_time ON requests (time, id);
CREATE INDEX requests_key_time ON requests (key_id, time);

-- Hourly aggregates: /admin/usage and budgets read only this table.
-- h00..h23 are the duration histogram buckets (see store.HistBucket).
CREATE TABLE usage_hourly (
    hour              BIGINT NOT NULL, -- unix seconds, UTC, multiple of 3600
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    upstream          TEXT NOT NULL,
    end_user          TEXT NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    errors            BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens     BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens  BIGINT NOT NULL DEFAULT 0,
    cost_nano         BIGINT NOT NULL DEFAULT 0,
    unpriced          BIGINT NOT NULL DEFAULT 0,
    h00 BIGINT NOT NULL DEFAULT 0,
    h01 BIGINT NOT NULL DEFAULT 0,
    h02 BIGINT NOT NULL DEFAULT 0,
    h03 BIGINT NOT NULL DEFAULT 0,
    h04 BIGINT NOT NULL DEFAULT 0,
    h05 BIGINT NOT NULL DEFAULT 0,
    h06 BIGINT NOT NULL DEFAULT 0,
    h07 BIGINT NOT NULL DEFAULT 0,
    h08 BIGINT NOT NULL DEFAULT 0,
    h09 BIGINT NOT NULL DEFAULT 0,
    h10 BIGINT NOT NULL DEFAULT 0,
    h11 BIGINT NOT NULL DEFAULT 0,
    h12 BIGINT NOT NULL DEFAULT 0,
    h13 BIGINT NOT NULL DEFAULT 0,
    h14 BIGINT NOT NULL DEFAULT 0,
    h15 BIGINT NOT NULL DEFAULT 0,
    h16 BIGINT NOT NULL DEFAULT 0,
    h17 BIGINT NOT NULL DEFAULT 0,
    h18 BIGINT NOT NULL DEFAULT 0,
    h19 BIGINT NOT NULL DEFAULT 0,
    h20 BIGINT NOT NULL DEFAULT 0,
    h21 BIGINT NOT NULL DEFAULT 0,
    h22 BIGINT NOT NULL DEFAULT 0,
    h23 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, key_id, model, upstream, end_user)
);
CREATE INDEX usage_hourly_key ON usage_hourly (key_id, hour);

-- The same sums per UTC day, kept in the same transaction: a 30-day query
-- reads whole days here and only the partial hours at its ends from
-- usage_hourly, so it scans ~24x fewer rows.
CREATE TABLE usage_daily (
    day               BIGINT NOT NULL, -- unix seconds, UTC, multiple of 86400
    key_id            TEXT NOT NULL,
    model             TEXT NOT NULL,
    upstream          TEXT NOT NULL,
    end_user          TEXT NOT NULL,
    requests          BIGINT NOT NULL DEFAULT 0,
    errors            BIGINT NOT NULL DEFAULT 0,
    prompt_tokens     BIGINT NOT NULL DEFAULT 0,
    completion_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens     BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens  BIGINT NOT NULL DEFAULT 0,
    cost_nano         BIGINT NOT NULL DEFAULT 0,
    unpriced          BIGINT NOT NULL DEFAULT 0,
    h00 BIGINT NOT NULL DEFAULT 0,
    h01 BIGINT NOT NULL DEFAULT 0,
    h02 BIGINT NOT NULL DEFAULT 0,
    h03 BIGINT NOT NULL DEFAULT 0,
    h04 BIGINT NOT NULL DEFAULT 0,
    h05 BIGINT NOT NULL DEFAULT 0,
    h06 BIGINT NOT NULL DEFAULT 0,
    h07 BIGINT NOT NULL DEFAULT 0,
    h08 BIGINT NOT NULL DEFAULT 0,
    h09 BIGINT NOT NULL DEFAULT 0,
    h10 BIGINT NOT NULL DEFAULT 0,
    h11 BIGINT NOT NULL DEFAULT 0,
    h12 BIGINT NOT NULL DEFAULT 0,
    h13 BIGINT NOT NULL DEFAULT 0,
    h14 BIGINT NOT NULL DEFAULT 0,
    h15 BIGINT NOT NULL DEFAULT 0,
    h16 BIGINT NOT NULL DEFAULT 0,
    h17 BIGINT NOT NULL DEFAULT 0,
    h18 BIGINT NOT NULL DEFAULT 0,
    h19 BIGINT NOT NULL DEFAULT 0,
    h20 BIGINT NOT NULL DEFAULT 0,
    h21 BIGINT NOT NULL DEFAULT 0,
    h22 BIGINT NOT NULL DEFAULT 0,
    h23 BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (day, key_id, model, upstream, end_user)
);
CREATE INDEX usage_daily_key ON usage_daily (key_id, day);

-- Newest ledger time per key, maintained by InsertRecords so that
-- KeysLastUsed needs no scan of requests.
CREATE TABLE key_last_used (
    key_id TEXT PRIMARY KEY,
    time   TIMESTAMPTZ NOT NULL
);

CREATE TABLE keys (
    id            TEXT PRIMARY KEY,
    name          TEXT NOT NULL DEFAULT '',
    prefix        TEXT NOT NULL DEFAULT '',
    hash          TEXT NOT NULL UNIQUE,
    models        TEXT[] NOT NULL DEFAULT '{}',
    rpm           INTEGER NOT NULL DEFAULT 0,
    tpm           INTEGER NOT NULL DEFAULT 0,
    max_parallel  INTEGER NOT NULL DEFAULT 0,
    budget_nano   BIGINT NOT NULL DEFAULT 0,
    budget_period TEXT NOT NULL DEFAULT '',
    expires_at    TIMESTAMPTZ,
    revoked_at    TIMESTAMPTZ,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);

-- Conversation header: next_seq is bumped atomically by every append, which
-- serializes appenders of one conversation (row lock) and orders their messages.
CREATE TABLE conversations (
    key_id       TEXT NOT NULL,
    end_user     TEXT NOT NULL,
    conversation TEXT NOT NULL,
    next_seq     BIGINT NOT NULL,
    PRIMARY KEY (key_id, end_user, conversation)
);

CREATE TABLE conversation_messages (
    key_id       TEXT NOT NULL,
    end_user     TEXT NOT NULL,
    conversation TEXT NOT NULL,
    seq          BIGINT NOT NULL,
    role         TEXT NOT NULL,
    content      TEXT NOT NULL,
    time         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (key_id, end_user, conversation, seq)
);

-- +goose Down
DROP TABLE conversation_messages;
DROP TABLE conversations;
DROP TABLE keys;
DROP TABLE key_last_used;
DROP TABLE usage_daily;
DROP TABLE usage_hourly;
DROP TABLE requests;
