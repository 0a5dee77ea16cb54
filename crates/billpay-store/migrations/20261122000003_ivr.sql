-- The phone line (IVR): one row per call, so a call survives a restart and can move between
-- instances, and the NACHA TEL authorizations taken by phone.
-- `state` is JSON with no secret in it. Digits keyed for a card or bank account between
-- webhooks are sealed with the vault (record id = call sid as associated data) in the
-- sealed_* columns, and set to NULL once the payment is made or the call ends.

CREATE TABLE ivr_calls (
    call_sid            TEXT PRIMARY KEY,
    from_number         TEXT NOT NULL,
    status              TEXT NOT NULL,
    turn                BIGINT NOT NULL,
    state               TEXT NOT NULL,
    last_twiml          TEXT,
    sealed_kek_version  BIGINT,
    sealed_wrapped_key  TEXT,
    sealed_ciphertext   TEXT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);
CREATE INDEX ivr_calls_status ON ivr_calls(status, updated_at);

CREATE TABLE tel_authorizations (
    payment_id      TEXT PRIMARY KEY REFERENCES payments(id),
    call_sid        TEXT NOT NULL,
    text            TEXT NOT NULL,
    authorized_at   BIGINT NOT NULL
);

CREATE INDEX accounts_phone ON accounts(phone);
