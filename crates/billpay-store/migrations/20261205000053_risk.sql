-- Payment risk: one row per payment attempt that reached the risk rules (its sources, card
-- fingerprint and range, and what became of it), counted over sliding windows by every
-- instance; and one row per decision, with its score and reasons, for staff.
CREATE TABLE risk_events (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    payment_id TEXT,
    ip TEXT,
    device TEXT,
    ani TEXT,
    card_fp TEXT,
    bin TEXT,
    -- pending (sent to the processor), succeeded, declined, blocked
    outcome TEXT NOT NULL,
    amount BIGINT NOT NULL
);
CREATE INDEX risk_events_ip ON risk_events(ip, at) WHERE ip IS NOT NULL;
CREATE INDEX risk_events_device ON risk_events(device, at) WHERE device IS NOT NULL;
CREATE INDEX risk_events_ani ON risk_events(ani, at) WHERE ani IS NOT NULL;
CREATE INDEX risk_events_card ON risk_events(card_fp, at) WHERE card_fp IS NOT NULL;
-- Only declines of a range are counted: a popular range has many approvals an hour.
CREATE INDEX risk_events_bin ON risk_events(bin, outcome, at) WHERE bin IS NOT NULL;
CREATE INDEX risk_events_account ON risk_events(account_id, at);
CREATE INDEX risk_events_payment ON risk_events(payment_id) WHERE payment_id IS NOT NULL;

CREATE TABLE risk_decisions (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    payment_id TEXT,
    action TEXT NOT NULL,
    score BIGINT NOT NULL,
    reasons TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL
);
CREATE INDEX risk_decisions_account ON risk_decisions(account_id, at);
CREATE INDEX risk_decisions_at ON risk_decisions(action, at);
