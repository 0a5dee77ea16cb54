-- How a portal customer proves the second factor at sign-in: 'email' (a code sent to the email
-- on file), 'sms' (a code texted to `sms_phone`, a number proven with a texted code when it was
-- chosen) or 'totp' (an authenticator app; its secret is in `totp_secrets`).
ALTER TABLE portal_customers ADD COLUMN second_factor TEXT NOT NULL DEFAULT 'email';
ALTER TABLE portal_customers ADD COLUMN sms_phone TEXT;

-- Authenticator-app (TOTP, RFC 6238) secrets, of customers ('customer:<id>') and staff
-- ('staff:<id>'). Sealed by the vault like saved methods: key version, wrapped data key and
-- ciphertext, with the row id as associated data, so `billpay keys rotate` re-wraps them and no
-- column is readable. A secret is 'pending' from the QR code until its first right code, then
-- 'active'; an owner has at most one of each. `last_step` is the newest 30-second step whose
-- code was accepted: a code never works twice (RFC 6238 section 5.2).
CREATE TABLE totp_secrets (
    id           TEXT PRIMARY KEY,
    owner        TEXT NOT NULL,
    state        TEXT NOT NULL,
    kek_version  BIGINT NOT NULL,
    wrapped_key  TEXT NOT NULL,
    ciphertext   TEXT NOT NULL,
    last_step    BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    UNIQUE (owner, state)
);
