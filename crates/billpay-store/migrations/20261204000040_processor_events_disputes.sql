-- Inbound processor webhooks: one row per event handled, so a redelivered event (same id) is
-- answered without acting twice. Only ids, the type and the outcome are kept, never the body.
CREATE TABLE processor_events (
    processor    TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    object_id    TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (processor, event_id)
);

-- Card disputes (chargebacks) as the processor reports them. Opening one reverses the payment
-- in the ledger (journal_id, source_type 'dispute'); winning it posts the payment again
-- (closing_journal_id). status is the processor's: warning_needs_response, needs_response,
-- under_review, won, lost, ...
CREATE TABLE disputes (
    id                  TEXT PRIMARY KEY,
    processor           TEXT NOT NULL,
    processor_dispute_id TEXT NOT NULL,
    payment_id          TEXT NOT NULL REFERENCES payments(id),
    account_id          TEXT NOT NULL,
    amount              BIGINT NOT NULL,
    currency            TEXT NOT NULL,
    reason              TEXT NOT NULL,
    status              TEXT NOT NULL,
    journal_id          TEXT,
    closing_journal_id  TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    UNIQUE (processor, processor_dispute_id)
);
CREATE INDEX disputes_payment ON disputes (payment_id);
CREATE INDEX disputes_status ON disputes (status, created_at);
