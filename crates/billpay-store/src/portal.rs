//! Queries of the customer portal: server-side sessions, and the demo mailbox's view of the
//! outbox. Same conventions as [`crate::queries`]: one function per query, `$N` placeholders,
//! the same SQL text on both engines.

use sqlx::AnyConnection;

use crate::StoreError;
use crate::outbox::DeliveryRow;

type R<T> = Result<T, StoreError>;

/// A portal session. `id` is the SHA-256 of the browser's token, never the token.
#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PortalSessionRow {
    pub id: String,
    pub csrf_token: String,
    pub account_id: Option<String>,
    pub customer_id: Option<String>,
    pub data_json: String,
    pub sealed_kek_version: Option<i64>,
    pub sealed_wrapped_key: Option<String>,
    pub sealed_ciphertext: Option<String>,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl std::fmt::Debug for PortalSessionRow {
    // The CSRF token and the sealed blob are left out: neither belongs in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalSessionRow")
            .field("account_id", &self.account_id)
            .field("customer_id", &self.customer_id)
            .field("sealed", &self.sealed_ciphertext.is_some())
            .field("created_at", &self.created_at)
            .field("last_seen_at", &self.last_seen_at)
            .finish_non_exhaustive()
    }
}

pub async fn insert_session(c: &mut AnyConnection, s: &PortalSessionRow) -> R<()> {
    sqlx::query(
        "INSERT INTO portal_sessions (id, csrf_token, account_id, customer_id, data_json, \
         sealed_kek_version, sealed_wrapped_key, sealed_ciphertext, created_at, last_seen_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&s.id)
    .bind(&s.csrf_token)
    .bind(&s.account_id)
    .bind(&s.customer_id)
    .bind(&s.data_json)
    .bind(s.sealed_kek_version)
    .bind(&s.sealed_wrapped_key)
    .bind(&s.sealed_ciphertext)
    .bind(s.created_at)
    .bind(s.last_seen_at)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn session(c: &mut AnyConnection, id: &str) -> R<Option<PortalSessionRow>> {
    Ok(
        sqlx::query_as::<_, PortalSessionRow>("SELECT * FROM portal_sessions WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// Marks a session used now (its idle timeout starts again).
pub async fn touch_session(c: &mut AnyConnection, id: &str, now: i64) -> R<()> {
    sqlx::query("UPDATE portal_sessions SET last_seen_at = $2 WHERE id = $1")
        .bind(id)
        .bind(now)
        .execute(c)
        .await?;
    Ok(())
}

/// Writes a session's binding, flow state and sealed digits (all of them, as one change).
pub async fn update_session(c: &mut AnyConnection, s: &PortalSessionRow) -> R<bool> {
    let done = sqlx::query(
        "UPDATE portal_sessions SET account_id = $2, customer_id = $3, data_json = $4, \
         sealed_kek_version = $5, sealed_wrapped_key = $6, sealed_ciphertext = $7, \
         last_seen_at = $8 WHERE id = $1",
    )
    .bind(&s.id)
    .bind(&s.account_id)
    .bind(&s.customer_id)
    .bind(&s.data_json)
    .bind(s.sealed_kek_version)
    .bind(&s.sealed_wrapped_key)
    .bind(&s.sealed_ciphertext)
    .bind(s.last_seen_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn delete_session(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("DELETE FROM portal_sessions WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// Ends every session of a customer ("sign out everywhere"). Returns how many.
pub async fn delete_customer_sessions(c: &mut AnyConnection, customer_id: &str) -> R<u64> {
    let done = sqlx::query("DELETE FROM portal_sessions WHERE customer_id = $1")
        .bind(customer_id)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}

/// Deletes sessions idle since `idle_before` or started before `started_before`, at most
/// `limit` of them. Returns how many.
pub async fn delete_expired_sessions(
    c: &mut AnyConnection,
    idle_before: i64,
    started_before: i64,
    limit: i64,
) -> R<u64> {
    let done = sqlx::query(
        "DELETE FROM portal_sessions WHERE id IN (SELECT id FROM portal_sessions \
         WHERE last_seen_at < $1 OR created_at < $2 LIMIT $3)",
    )
    .bind(idle_before)
    .bind(started_before)
    .bind(limit)
    .execute(c)
    .await?;
    Ok(done.rows_affected())
}

/// The newest outbox rows of one channel (`email.`), newest first: the demo mailbox.
pub async fn recent_outbox(
    c: &mut AnyConnection,
    kind_prefix: &str,
    limit: i64,
) -> R<Vec<DeliveryRow>> {
    Ok(sqlx::query_as::<_, DeliveryRow>(
        "SELECT * FROM outbox WHERE kind LIKE $1 ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(format!("{kind_prefix}%"))
    .bind(limit)
    .fetch_all(c)
    .await?)
}

pub async fn outbox_row(c: &mut AnyConnection, id: &str) -> R<Option<DeliveryRow>> {
    Ok(
        sqlx::query_as::<_, DeliveryRow>("SELECT * FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}
