-- Registered portal customers: one sign-in per account. The password is stored only as an
-- argon2id PHC string. Failed sign-ins are counted; past the limit the sign-in is locked
-- until `locked_until`.
CREATE TABLE portal_customers (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL UNIQUE,
    email           TEXT NOT NULL UNIQUE,
    password_hash   TEXT NOT NULL,
    failed_signins  BIGINT NOT NULL DEFAULT 0,
    locked_until    BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- One-time codes (the second factor of a sign-in). Only SHA-256(id || code) is kept here; the
-- code itself is in the email's outbox row until it is used, replaced or expired, when that
-- row's payload is overwritten. Each code takes at most a few attempts.
CREATE TABLE portal_codes (
    id           TEXT PRIMARY KEY,
    customer_id  TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    code_hash    TEXT NOT NULL,
    outbox_id    TEXT,
    attempts     BIGINT NOT NULL DEFAULT 0,
    expires_at   BIGINT NOT NULL,
    used_at      BIGINT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX portal_codes_customer ON portal_codes (customer_id, purpose, created_at);
CREATE INDEX portal_codes_expires ON portal_codes (expires_at);
