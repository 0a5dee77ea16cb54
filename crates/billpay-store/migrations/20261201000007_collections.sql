-- Collections: holds that stop a suspension (medical, weather, hardship), payment arrangements
-- and their installments, account events (suspended, restored, ...) for the biller's systems,
-- and the webhook endpoints those events are delivered to.

CREATE TABLE account_holds (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    -- 'medical', 'weather' or 'hardship'
    kind            TEXT NOT NULL,
    until_date      TEXT NOT NULL,
    reason          TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX account_holds_account ON account_holds(account_id, until_date);

CREATE TABLE arrangements (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    -- 'extension' or 'installments'
    kind            TEXT NOT NULL,
    past_due        BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    -- 'active', 'kept' or 'broken'
    status          TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX arrangements_account ON arrangements(account_id, status);

CREATE TABLE arrangement_installments (
    arrangement_id  TEXT NOT NULL REFERENCES arrangements(id),
    seq             BIGINT NOT NULL,
    due_date        TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    PRIMARY KEY (arrangement_id, seq)
);

CREATE TABLE account_events (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL,
    kind            TEXT NOT NULL,
    payload         TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
CREATE INDEX account_events_order ON account_events(created_at, id);

CREATE TABLE webhook_endpoints (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    -- Sealed by the vault under the endpoint id (it signs every delivery).
    kek_version     BIGINT NOT NULL,
    wrapped_key     TEXT NOT NULL,
    ciphertext      TEXT NOT NULL,
    status          TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);
