-- The SQLite session database (`<database>-sessions`): state that is not money and changes on
-- every request, written with synchronous=NORMAL by its own writer so it never queues behind
-- the main database's durable payment commits. On PostgreSQL this table lives in the main
-- database (see migrations/20261122000003_ivr.sql, which this copies).

CREATE TABLE ivr_calls (
    call_sid            TEXT PRIMARY KEY,
    from_number         TEXT NOT NULL,
    status              TEXT NOT NULL,
    turn                BIGINT NOT NULL,
    state               TEXT NOT NULL,
    last_twiml          TEXT,
    sealed_kek_version  BIGINT,
    sealed_wrapped_key  TEXT,
    sealed_ciphertext   TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX ivr_calls_status ON ivr_calls(status, updated_at);
