-- Request counters for rate limits on SQLite (see migrations/20261204000024_rate_limits.sql,
-- which this copies): every request counted here never waits behind a payment's commit.
CREATE TABLE rate_limits (
    key           TEXT NOT NULL,
    window_start  BIGINT NOT NULL,
    hits          BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
