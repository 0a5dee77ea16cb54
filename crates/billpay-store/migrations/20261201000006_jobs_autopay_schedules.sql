-- Scheduled work and what it schedules: the job queue (leased rows), AutoPay enrollments and
-- scheduled (one-time and recurring) payments.

-- A job is a row. A worker leases due jobs (FOR UPDATE SKIP LOCKED on PostgreSQL; the single
-- writer on SQLite), runs them, and marks them done or schedules a retry with backoff. A lease
-- that runs out (the worker died) makes the job available again. business_key is unique: each
-- business event (one AutoPay attempt per account, statement and attempt number) is enqueued
-- at most once, in the same transaction as the change that caused it.
CREATE TABLE jobs (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    business_key    TEXT NOT NULL UNIQUE,
    payload         TEXT NOT NULL,
    run_at          BIGINT NOT NULL,
    status          TEXT NOT NULL,
    attempts        BIGINT NOT NULL,
    max_attempts    BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    finished_at     BIGINT
);
CREATE INDEX jobs_due ON jobs(status, run_at);
CREATE INDEX jobs_kind ON jobs(kind, status);

CREATE TABLE autopay_enrollments (
    account_id          TEXT PRIMARY KEY REFERENCES accounts(id),
    payment_method_id   TEXT NOT NULL,
    -- 'due_date' or 'days_before'
    timing              TEXT NOT NULL,
    days_before         BIGINT NOT NULL,
    maximum             BIGINT,
    status              TEXT NOT NULL,
    channel             TEXT NOT NULL,
    authorization_text  TEXT NOT NULL,
    enrolled_at         BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE scheduled_payments (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    payment_method_id   TEXT NOT NULL,
    amount              BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    channel             TEXT NOT NULL,
    -- 'once', 'weekly', 'biweekly' or 'monthly'
    frequency           TEXT NOT NULL,
    start_date          TEXT NOT NULL,
    end_date            TEXT,
    max_count           BIGINT,
    made_count          BIGINT NOT NULL,
    next_date           TEXT,
    status              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX scheduled_payments_account ON scheduled_payments(account_id, status);
