-- billpay payment core schema.
-- One text for SQLite and PostgreSQL: integers are BIGINT (i64), strings TEXT,
-- instants BIGINT microseconds since the Unix epoch (UTC), calendar dates TEXT 'YYYY-MM-DD'.
-- No booleans, no autoincrement, no engine-specific types: a dialect fork gets its own folder.

CREATE TABLE accounts (
    id              TEXT PRIMARY KEY,
    account_number  TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    email           TEXT,
    phone           TEXT,
    postal_code     TEXT NOT NULL,
    timezone        TEXT NOT NULL,
    currency        TEXT NOT NULL,
    service_status  TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

CREATE TABLE statements (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    statement_date  TEXT NOT NULL,
    due_date        TEXT NOT NULL,
    amount_due      BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    lines_json      TEXT NOT NULL,
    journal_id      TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX statements_account_date ON statements(account_id, statement_date);

CREATE TABLE payments (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    confirmation_number TEXT NOT NULL UNIQUE,
    amount              BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    fee_amount          BIGINT NOT NULL,
    refunded_amount     BIGINT NOT NULL,
    status              TEXT NOT NULL,
    channel             TEXT NOT NULL,
    method_type         TEXT NOT NULL,
    brand               TEXT,
    last4               TEXT NOT NULL,
    exp_month           BIGINT,
    exp_year            BIGINT,
    bank_account_type   TEXT,
    routing_number      TEXT,
    holder_name         TEXT,
    processor           TEXT NOT NULL,
    processor_key       TEXT NOT NULL UNIQUE,
    processor_ref       TEXT,
    decline_code        TEXT,
    journal_id          TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX payments_account_created ON payments(account_id, created_at);
CREATE INDEX payments_status ON payments(status, updated_at);

CREATE TABLE refunds (
    id              TEXT PRIMARY KEY,
    payment_id      TEXT NOT NULL REFERENCES payments(id),
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    processor_key   TEXT NOT NULL UNIQUE,
    processor_ref   TEXT,
    failure_code    TEXT,
    journal_id      TEXT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX refunds_payment ON refunds(payment_id);

-- Double-entry ledger. A journal entry is one balanced transaction; its postings sum to zero.
CREATE TABLE journal_entries (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    source_type     TEXT NOT NULL,
    source_id       TEXT NOT NULL,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    currency        TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    UNIQUE (source_type, source_id, kind)
);
CREATE INDEX journal_account ON journal_entries(account_id);

CREATE TABLE postings (
    journal_id      TEXT NOT NULL REFERENCES journal_entries(id),
    seq             BIGINT NOT NULL,
    ledger_account  TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    PRIMARY KEY (journal_id, seq)
);
CREATE INDEX postings_ledger_account ON postings(ledger_account);

-- Stripe-style idempotency: the first execution's response, replayed for the same key.
CREATE TABLE idempotency_keys (
    scope           TEXT NOT NULL,
    idem_key        TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    request_hash    TEXT NOT NULL,
    state           TEXT NOT NULL,
    resource_id     TEXT,
    response_status BIGINT,
    response_body   TEXT,
    created_at      BIGINT NOT NULL,
    completed_at    BIGINT,
    PRIMARY KEY (scope, idem_key)
);
CREATE INDEX idempotency_created ON idempotency_keys(created_at);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    prefix          TEXT NOT NULL,
    key_hash        TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    revoked_at      BIGINT
);

-- Messages to deliver (receipt emails now; SMS and webhooks later). Written in the same
-- transaction as the event that caused them.
CREATE TABLE outbox (
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    dedupe_key      TEXT NOT NULL UNIQUE,
    recipient       TEXT NOT NULL,
    payload_json    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    sent_at         BIGINT,
    attempts        BIGINT NOT NULL
);

-- The sandbox processor's own records: what the simulated network did, keyed by the
-- processor-side idempotency key. It is a separate system that happens to share the database.
CREATE TABLE sandbox_transactions (
    processor_key   TEXT PRIMARY KEY,
    kind            TEXT NOT NULL,
    reference       TEXT NOT NULL UNIQUE,
    parent_reference TEXT,
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    outcome         TEXT NOT NULL,
    decline_code    TEXT,
    settle_at       BIGINT,
    return_code     TEXT,
    created_at      BIGINT NOT NULL
);
