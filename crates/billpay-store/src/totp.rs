//! Authenticator-app secrets (`totp_secrets`), sealed by the vault. Same conventions as
//! [`crate::queries`].

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

/// A sealed TOTP secret. `Debug` leaves the sealed parts out.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TotpSecretRow {
    pub id: String,
    /// `customer:<id>` or `staff:<id>`.
    pub owner: String,
    /// `pending` or `active`.
    pub state: String,
    pub kek_version: i64,
    pub wrapped_key: String,
    pub ciphertext: String,
    pub last_step: i64,
    pub created_at: i64,
}

impl std::fmt::Debug for TotpSecretRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpSecretRow")
            .field("id", &self.id)
            .field("owner", &self.owner)
            .field("state", &self.state)
            .field("kek_version", &self.kek_version)
            .finish_non_exhaustive()
    }
}

/// Stores a new pending secret for its owner, replacing any earlier pending one.
pub async fn insert_pending(c: &mut AnyConnection, r: &TotpSecretRow) -> R<()> {
    sqlx::query("DELETE FROM totp_secrets WHERE owner = $1 AND state = 'pending'")
        .bind(&r.owner)
        .execute(&mut *c)
        .await?;
    sqlx::query(
        "INSERT INTO totp_secrets (id, owner, state, kek_version, wrapped_key, ciphertext, \
         last_step, created_at) VALUES ($1, $2, 'pending', $3, $4, $5, 0, $6)",
    )
    .bind(&r.id)
    .bind(&r.owner)
    .bind(r.kek_version)
    .bind(&r.wrapped_key)
    .bind(&r.ciphertext)
    .bind(r.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// The owner's secret in a state.
pub async fn secret(c: &mut AnyConnection, owner: &str, state: &str) -> R<Option<TotpSecretRow>> {
    Ok(sqlx::query_as::<_, TotpSecretRow>(
        "SELECT * FROM totp_secrets WHERE owner = $1 AND state = $2",
    )
    .bind(owner)
    .bind(state)
    .fetch_optional(c)
    .await?)
}

/// Makes the pending secret `id` the owner's active one (any earlier active one is dropped),
/// remembering the step of the code that proved it. False if that pending secret is gone.
pub async fn activate(c: &mut AnyConnection, owner: &str, id: &str, step: i64) -> R<bool> {
    let pending: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM totp_secrets WHERE id = $1 AND owner = $2 AND state = 'pending'",
    )
    .bind(id)
    .bind(owner)
    .fetch_optional(&mut *c)
    .await?;
    if pending.is_none() {
        return Ok(false);
    }
    sqlx::query("DELETE FROM totp_secrets WHERE owner = $1 AND state = 'active'")
        .bind(owner)
        .execute(&mut *c)
        .await?;
    sqlx::query("UPDATE totp_secrets SET state = 'active', last_step = $2 WHERE id = $1")
        .bind(id)
        .bind(step)
        .execute(c)
        .await?;
    Ok(true)
}

/// Records that the code of `step` was accepted; false if that step (or a later one) already
/// was, on any instance: the code is a replay.
pub async fn use_step(c: &mut AnyConnection, id: &str, step: i64) -> R<bool> {
    let done =
        sqlx::query("UPDATE totp_secrets SET last_step = $2 WHERE id = $1 AND last_step < $2")
            .bind(id)
            .bind(step)
            .execute(c)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Removes every secret of the owner. Returns how many.
pub async fn delete_owner(c: &mut AnyConnection, owner: &str) -> R<u64> {
    let done = sqlx::query("DELETE FROM totp_secrets WHERE owner = $1")
        .bind(owner)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}

/// Secrets per key version: (version, count).
pub async fn per_key_version(c: &mut AnyConnection) -> R<Vec<(i64, i64)>> {
    Ok(sqlx::query_as::<_, (i64, i64)>(
        "SELECT kek_version, COUNT(*) FROM totp_secrets GROUP BY kek_version ORDER BY kek_version",
    )
    .fetch_all(c)
    .await?)
}

/// A batch of secrets sealed under another key version than `active`.
pub async fn under_other_keys(
    c: &mut AnyConnection,
    active: i64,
    limit: i64,
) -> R<Vec<TotpSecretRow>> {
    Ok(sqlx::query_as::<_, TotpSecretRow>(
        "SELECT * FROM totp_secrets WHERE kek_version <> $1 ORDER BY id LIMIT $2",
    )
    .bind(active)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Replaces a secret's wrapped data key, if it is still the one re-wrapped.
pub async fn rewrap(
    c: &mut AnyConnection,
    id: &str,
    old_wrapped: &str,
    kek_version: i64,
    wrapped_key: &str,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE totp_secrets SET kek_version = $3, wrapped_key = $4 WHERE id = $1 AND wrapped_key = $2",
    )
    .bind(id)
    .bind(old_wrapped)
    .bind(kek_version)
    .bind(wrapped_key)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Drops pending secrets created before `before` (QR codes shown and never confirmed).
pub async fn delete_stale_pending(c: &mut AnyConnection, before: i64) -> R<u64> {
    let done = sqlx::query("DELETE FROM totp_secrets WHERE state = 'pending' AND created_at < $1")
        .bind(before)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}
