-- What the customer agreed to be contacted by (TCPA): reminders go only to a channel with a
-- recorded consent, and a revocation is kept, not deleted.
CREATE TABLE contact_consents (
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    -- 'email' or 'sms'
    channel         TEXT NOT NULL,
    -- 'granted' or 'revoked'
    status          TEXT NOT NULL,
    source          TEXT NOT NULL,
    consent_text    TEXT NOT NULL,
    updated_at      BIGINT NOT NULL,
    PRIMARY KEY (account_id, channel)
);
