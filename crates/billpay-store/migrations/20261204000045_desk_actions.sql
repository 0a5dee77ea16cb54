-- Read receipts of live chat: the last message number each side has read. Stored, so a
-- reconnecting page shows them; typing indicators are not stored at all.
ALTER TABLE chat_conversations ADD COLUMN customer_read_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE chat_conversations ADD COLUMN agent_read_seq BIGINT NOT NULL DEFAULT 0;

-- Staff created from the command line: `status` active or disabled (a disabled member cannot
-- sign in; the row stays for the audit trail), and a temporary password that must be changed
-- at the first sign-in (`password_change_required` 1).
ALTER TABLE staff_users ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
ALTER TABLE staff_users ADD COLUMN password_change_required BIGINT NOT NULL DEFAULT 0;

-- A phone representative sends the caller to the phone line to key a card: the desk makes a
-- short code for this account and amount; the provider redirects the call to
-- /ivr/twilio/handoff?code=…, the caller keys the card there (never heard by the
-- representative), and the outcome comes back here and onto the account panel.
-- `status`: open (waiting for the call), in_call, paid, declined, pending (processor answer
-- in doubt), not_completed (canceled, no entry, too many tries), expired.
-- `result` is the words shown on the desk: amount, method as brand and last four, confirmation.
CREATE TABLE desk_phone_handoffs (
    id              TEXT PRIMARY KEY,
    code            TEXT NOT NULL,
    account_id      TEXT NOT NULL,
    account_number  TEXT NOT NULL,
    staff_id        TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL,
    call_sid        TEXT,
    result          TEXT,
    expires_at      BIGINT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX desk_phone_handoffs_code ON desk_phone_handoffs (code, status);
CREATE INDEX desk_phone_handoffs_account ON desk_phone_handoffs (account_id, created_at);
