-- Payments held for review: a payment the risk rules sent to review went to the processor as
-- usual and, once it went through, is held here until a supervisor approves it or rejects it
-- (a rejection refunds it). One row per payment, opened in the transaction that records the
-- processor's approval; decided once (decided_at, decided_by, decision, decision_reason).
CREATE TABLE payment_reviews (
    payment_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    -- the risk rules' reason codes, comma-separated, strongest first, and their score
    reasons TEXT NOT NULL,
    score BIGINT NOT NULL,
    opened_at BIGINT NOT NULL,
    decided_at BIGINT,
    -- staff:<id>
    decided_by TEXT,
    -- approve or reject
    decision TEXT,
    decision_reason TEXT
);
-- The queue: open reviews (decided_at IS NULL), oldest first.
CREATE INDEX payment_reviews_queue ON payment_reviews(decided_at, opened_at);
CREATE INDEX payment_reviews_account ON payment_reviews(account_id, opened_at);
-- The outcome transaction finds a payment's review decision by payment.
CREATE INDEX risk_decisions_payment ON risk_decisions(payment_id) WHERE payment_id IS NOT NULL;
