-- Failed sign-ins with an email address that has no sign-in (portal customers and staff),
-- counted and locked exactly as a real sign-in's are, so the lockout does not tell a stranger
-- which addresses exist. `key` is "portal:" or "staff:" and a SHA-256 of the normalised
-- address, never the address itself.
CREATE TABLE signin_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    locked_until BIGINT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX signin_failures_updated ON signin_failures(updated_at);
