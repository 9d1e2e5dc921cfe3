-- +goose Up
-- Cache writes are kept apart from cache reads (both are part of
-- prompt_tokens). Aggregates gain them and "refused": requests the gateway
-- itself refused (401/403/429), counted apart from "unpriced", which from
-- now on counts only requests that used tokens on a model without a price.
ALTER TABLE requests ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN cache_write_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN refused INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE usage_daily DROP COLUMN refused;
ALTER TABLE usage_daily DROP COLUMN cache_write_tokens;
ALTER TABLE usage_hourly DROP COLUMN refused;
ALTER TABLE usage_hourly DROP COLUMN cache_write_tokens;
ALTER TABLE requests DROP COLUMN cache_write_tokens;
