-- Saved payment methods (the vault) and the audit trail of vault operations.
-- The card or bank account number is stored only as AES-256-GCM ciphertext under a per-record
-- data key, itself wrapped by a key-encryption key (kek_version) that never enters the database.

CREATE TABLE payment_methods (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    kind                TEXT NOT NULL,
    brand               TEXT,
    last4               TEXT NOT NULL,
    exp_month           BIGINT,
    exp_year            BIGINT,
    postal_code         TEXT,
    bank_account_type   TEXT,
    routing_number      TEXT,
    holder_name         TEXT,
    bank_name           TEXT,
    nickname            TEXT,
    fingerprint         TEXT NOT NULL,
    kek_version         BIGINT NOT NULL,
    wrapped_key         TEXT NOT NULL,
    ciphertext          TEXT NOT NULL,
    is_default          BIGINT NOT NULL,
    status              TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX payment_methods_account ON payment_methods(account_id, status);
CREATE INDEX payment_methods_kek ON payment_methods(kek_version);
CREATE UNIQUE INDEX payment_methods_active_fingerprint
    ON payment_methods(account_id, fingerprint) WHERE status = 'active';

ALTER TABLE payments ADD COLUMN payment_method_id TEXT;

CREATE TABLE audit_log (
    id              TEXT PRIMARY KEY,
    at              BIGINT NOT NULL,
    actor           TEXT NOT NULL,
    action          TEXT NOT NULL,
    subject_type    TEXT NOT NULL,
    subject_id      TEXT NOT NULL,
    account_id      TEXT,
    channel         TEXT,
    detail          TEXT NOT NULL
);
CREATE INDEX audit_log_at ON audit_log(at);
CREATE INDEX audit_log_subject ON audit_log(subject_type, subject_id);
