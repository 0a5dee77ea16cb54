-- Bank debits billpay originates itself through NACHA files, the files it wrote, what came
-- back (returns and notices of change), the validation state of each bank account, and mailed
-- checks posted from bank lockbox files.
--
-- The bank account number of an entry is stored only sealed by the vault (AES-256-GCM under a
-- per-record data key); an entry's sealed number is destroyed once its return window closes.

CREATE TABLE ach_entries (
    id                  TEXT PRIMARY KEY,
    -- The processor-side idempotency key of the payment or refund that made this entry.
    processor_key       TEXT NOT NULL UNIQUE,
    payment_id          TEXT,
    refund_id           TEXT,
    account_id          TEXT NOT NULL,
    -- 'debit', 'credit' (a refund) or 'prenote' (a zero-dollar account validation).
    purpose             TEXT NOT NULL,
    sec_code            TEXT NOT NULL,
    transaction_code    BIGINT NOT NULL,
    routing_number      TEXT NOT NULL,
    account_type        TEXT NOT NULL,
    account_last4       TEXT NOT NULL,
    account_fingerprint TEXT NOT NULL,
    kek_version         BIGINT,
    wrapped_key         TEXT,
    ciphertext          TEXT,
    individual_name     TEXT NOT NULL,
    individual_id       TEXT NOT NULL,
    amount              BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    channel             TEXT NOT NULL,
    authorization_text  TEXT NOT NULL,
    authorized_at       BIGINT NOT NULL,
    payment_method_id   TEXT,
    -- 'held' (waiting for account validation), 'pending', 'exported', 'settled',
    -- 'returned' or 'canceled'.
    status              TEXT NOT NULL,
    hold_until          BIGINT,
    prenote_id          TEXT,
    file_id             TEXT,
    trace_number        TEXT UNIQUE,
    effective_date      TEXT,
    return_code         TEXT,
    returned_at         BIGINT,
    settled_at          BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX ach_entries_status ON ach_entries(status, created_at);
CREATE INDEX ach_entries_file ON ach_entries(file_id);
CREATE INDEX ach_entries_payment ON ach_entries(payment_id);
CREATE INDEX ach_entries_fingerprint ON ach_entries(account_fingerprint);

-- One row per NACHA file: entries are bound to a file in one transaction ('building'), the file
-- is written and made durable, then the row is marked 'written'. A file left 'building' by a
-- crash is rebuilt byte for byte from these rows, so no entry is ever in two files.
CREATE TABLE ach_files (
    id                  TEXT PRIMARY KEY,
    file_name           TEXT NOT NULL UNIQUE,
    file_id_modifier    TEXT NOT NULL,
    created_at          BIGINT NOT NULL,
    creation_local      TEXT NOT NULL,
    status              TEXT NOT NULL,
    entry_count         BIGINT NOT NULL,
    debit_total         BIGINT NOT NULL,
    credit_total        BIGINT NOT NULL,
    sha256              TEXT,
    written_at          BIGINT
);

-- Monotonic trace-number sequence per originating bank.
CREATE TABLE ach_sequences (
    name                TEXT PRIMARY KEY,
    value               BIGINT NOT NULL
);

-- Whether a bank account (by keyed fingerprint) has been validated, for WEB debits.
CREATE TABLE ach_validations (
    account_fingerprint TEXT PRIMARY KEY,
    status              TEXT NOT NULL,
    prenote_id          TEXT,
    return_code         TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- Every return and notice of change applied, once: re-importing a file changes nothing.
CREATE TABLE ach_return_items (
    item_key            TEXT PRIMARY KEY,
    kind                TEXT NOT NULL,
    code                TEXT NOT NULL,
    original_trace      TEXT NOT NULL,
    entry_id            TEXT,
    file_sha256         TEXT NOT NULL,
    outcome             TEXT NOT NULL,
    applied_at          BIGINT NOT NULL
);

-- Mailed checks from lockbox files: posted, or waiting in the exceptions queue for a person.
CREATE TABLE lockbox_items (
    id                  TEXT PRIMARY KEY,
    item_key            TEXT NOT NULL UNIQUE,
    file_sha256         TEXT NOT NULL,
    line_number         BIGINT NOT NULL,
    deposit_date        TEXT NOT NULL,
    lockbox             TEXT NOT NULL,
    batch               TEXT NOT NULL,
    sequence            TEXT NOT NULL,
    check_number        TEXT NOT NULL,
    amount              BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    account_reference   TEXT NOT NULL,
    remitter            TEXT NOT NULL,
    -- 'posted', 'exception' or 'rejected'.
    status              TEXT NOT NULL,
    reason              TEXT,
    payment_id          TEXT,
    resolved_by         TEXT,
    resolution_note     TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX lockbox_items_status ON lockbox_items(status, created_at);


-- Charges to a customer's account other than statements: a returned-payment fee (and later
-- late fees). One charge of a kind per source document, so a fee is never applied twice.
CREATE TABLE charges (
    id                  TEXT PRIMARY KEY,
    account_id          TEXT NOT NULL REFERENCES accounts(id),
    kind                TEXT NOT NULL,
    source_id           TEXT NOT NULL,
    amount              BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    description         TEXT NOT NULL,
    journal_id          TEXT NOT NULL,
    created_at          BIGINT NOT NULL
);
CREATE UNIQUE INDEX charges_kind_source ON charges(kind, source_id);
CREATE INDEX charges_account ON charges(account_id, created_at);
