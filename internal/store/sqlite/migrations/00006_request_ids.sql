-- +goose Up
-- GetLog finds most rows without an index on id (internal/store/sqlite/ids.go):
-- a gateway-made id ("req_" + 14 hex digits of its time in microseconds)
-- bounds the row's time_us to [id time, id time + 100 ms). Only the rows outside
-- that rule (client-sent ids, late or clock-stepped rows) are listed here.
-- The condition below is idFindsSQL in ids.go.
CREATE TABLE request_ids (
    id      TEXT NOT NULL,
    time_us INTEGER NOT NULL,
    PRIMARY KEY (id, time_us)
) WITHOUT ROWID;
INSERT INTO request_ids (id, time_us)
SELECT id, time_us FROM requests
WHERE NOT (length(id) >= 18 AND substr(id, 1, 4) = 'req_'
    AND substr(id, 5, 14) NOT GLOB '*[^0-9a-f]*'
    AND time_us >= 0 AND time_us < 72057594037927936
    AND substr(id, 5, 14) <= printf('%014x', time_us)
    AND (time_us < 100000 OR printf('%014x', time_us - 100000) < substr(id, 5, 14)));
DROP INDEX requests_id;

-- +goose Down
CREATE INDEX requests_id ON requests (id);
DROP TABLE request_ids;
