-- +goose Up
-- The dashboard's log filters: newest-first pages filtered on one column.
-- Without these, a filter on a rare value (a user with three rows, status
-- 429 on a quiet day) walks requests_time back through the whole table.
-- Stream has two values, but "streamed" may match nothing at all.
CREATE INDEX requests_model_time ON requests (model, time_us, id);
CREATE INDEX requests_user_time ON requests (end_user, time_us, id);
CREATE INDEX requests_outcome_time ON requests (outcome, time_us, id);
CREATE INDEX requests_upstream_time ON requests (upstream, time_us, id);
CREATE INDEX requests_status_time ON requests (status, time_us, id);
CREATE INDEX requests_stream_time ON requests (stream, time_us, id);

-- +goose Down
DROP INDEX requests_stream_time;
DROP INDEX requests_status_time;
DROP INDEX requests_upstream_time;
DROP INDEX requests_outcome_time;
DROP INDEX requests_user_time;
DROP INDEX requests_model_time;
