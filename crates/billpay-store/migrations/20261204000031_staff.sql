-- Staff of the agent desk: representatives (agent), supervisors and administrators. They sign
-- in with a password (argon2id) and an authenticator app (totp_secrets, owner 'staff:<id>'),
-- which is mandatory. `availability`: available or away (only available agents are assigned
-- new conversations).
CREATE TABLE staff_users (
    id              TEXT PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL,
    role            TEXT NOT NULL,
    password_hash   TEXT NOT NULL,
    failed_signins  BIGINT NOT NULL,
    locked_until    BIGINT,
    availability    TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);

-- The desk's server-side sessions, apart from the customers' (their own cookie). `id` is the
-- SHA-256 of the browser's token. `pending_staff_id` is a sign-in past its password waiting
-- for the authenticator code; `staff_id` is set only after both.
CREATE TABLE staff_sessions (
    id                TEXT PRIMARY KEY,
    csrf_token        TEXT NOT NULL,
    staff_id          TEXT,
    pending_staff_id  TEXT,
    created_at        BIGINT NOT NULL,
    last_seen_at      BIGINT NOT NULL
);
CREATE INDEX staff_sessions_last_seen ON staff_sessions (last_seen_at);
