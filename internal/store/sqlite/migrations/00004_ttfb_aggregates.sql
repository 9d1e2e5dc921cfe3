-- +goose Up
-- Time to first token over time, from the aggregates: the sum of ttfb_ns
-- over the requests that have one (ttfb_ns > 0) and their count, so an
-- hour's or day's mean is ttfb_ns / ttfb_n. Rows already in the ledger are
-- folded in once (one grouped pass over requests); rows a retention policy
-- has deleted are simply not counted, which leaves the mean a mean of the
-- rows kept.
ALTER TABLE usage_hourly ADD COLUMN ttfb_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_hourly ADD COLUMN ttfb_n INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN ttfb_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE usage_daily ADD COLUMN ttfb_n INTEGER NOT NULL DEFAULT 0;

UPDATE usage_hourly SET ttfb_ns = s.ns, ttfb_n = s.n
FROM (SELECT time_us / 3600000000 * 3600 AS hour, key_id, model, upstream, end_user,
             SUM(ttfb_ns) AS ns, COUNT(*) AS n
      FROM requests WHERE ttfb_ns > 0 GROUP BY 1, 2, 3, 4, 5) AS s
WHERE usage_hourly.hour = s.hour AND usage_hourly.key_id = s.key_id AND usage_hourly.model = s.model
  AND usage_hourly.upstream = s.upstream AND usage_hourly.end_user = s.end_user;

UPDATE usage_daily SET ttfb_ns = s.ns, ttfb_n = s.n
FROM (SELECT hour - hour % 86400 AS day, key_id, model, upstream, end_user,
             SUM(ttfb_ns) AS ns, SUM(ttfb_n) AS n
      FROM usage_hourly WHERE ttfb_n > 0 GROUP BY 1, 2, 3, 4, 5) AS s
WHERE usage_daily.day = s.day AND usage_daily.key_id = s.key_id AND usage_daily.model = s.model
  AND usage_daily.upstream = s.upstream AND usage_daily.end_user = s.end_user;

-- +goose Down
ALTER TABLE usage_daily DROP COLUMN ttfb_n;
ALTER TABLE usage_daily DROP COLUMN ttfb_ns;
ALTER TABLE usage_hourly DROP COLUMN ttfb_n;
ALTER TABLE usage_hourly DROP COLUMN ttfb_ns;
