-- Request counters for rate limits (per client address, per account), shared by every
-- instance: one row per key and fixed window. Relaxed state like a call in progress (see
-- ARCHITECTURE.md): on PostgreSQL written without waiting for the WAL flush; on SQLite this copy
-- stays empty and the session database (migrations-sessions) holds the counters.
CREATE TABLE rate_limits (
    key           TEXT NOT NULL,
    window_start  BIGINT NOT NULL,
    hits          BIGINT NOT NULL,
    PRIMARY KEY (key, window_start)
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
