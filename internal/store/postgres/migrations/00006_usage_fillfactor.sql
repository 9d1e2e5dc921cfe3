-- +goose Up
-- Every ledger batch updates one row per (hour, key, model, upstream, user)
-- group in both aggregate tables. With half of each page kept free, the new
-- row version fits on the same page and the update is HOT: no new entries in
-- the two indexes, which are otherwise the larger part of an upsert's cost
-- (800 groups an hour: 16-17 -> 12 µs of server CPU per ledger row,
-- docs/perf.md). The price is about twice the disk for usage_hourly. Pages
-- written before this migration keep their layout until rewritten.
ALTER TABLE usage_hourly SET (fillfactor = 50);
ALTER TABLE usage_daily SET (fillfactor = 50);

-- +goose Down
ALTER TABLE usage_daily RESET (fillfactor);
ALTER TABLE usage_hourly RESET (fillfactor);
