-- The customer portal's server-side sessions. The browser holds a random 256-bit token in a
-- cookie; only its SHA-256 is stored (`id`), so a copy of this table signs nobody in.
-- `csrf_token` is the session's synchronizer token, sent back in every form.
-- `account_id` is the account a guest has verified (account number and ZIP) or the signed-in
-- customer's; `customer_id` is set only after a complete sign-in.
-- `data_json` is the flow in progress (quick pay: amount, method shown as brand and last four,
-- the payments made in this session). Card or bank digits entered for a payment are never in
-- it: they are sealed with the vault (`sealed_*`, the checkout id as associated data) and set
-- to NULL when the payment completes or the session ends.
CREATE TABLE portal_sessions (
    id                  TEXT PRIMARY KEY,
    csrf_token          TEXT NOT NULL,
    account_id          TEXT,
    customer_id         TEXT,
    data_json           TEXT NOT NULL,
    sealed_kek_version  BIGINT,
    sealed_wrapped_key  TEXT,
    sealed_ciphertext   TEXT,
    created_at          BIGINT NOT NULL,
    last_seen_at        BIGINT NOT NULL
);
CREATE INDEX portal_sessions_customer ON portal_sessions (customer_id);
CREATE INDEX portal_sessions_last_seen ON portal_sessions (last_seen_at);
