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

// ---------------------------------------------------------------- customers

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PortalCustomerRow {
    pub id: String,
    pub account_id: String,
    pub email: String,
    pub password_hash: String,
    pub failed_signins: i64,
    pub locked_until: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// `email`, `sms` or `totp`.
    pub second_factor: String,
    /// Where `sms` codes go (E.164).
    pub sms_phone: Option<String>,
}

impl std::fmt::Debug for PortalCustomerRow {
    // The password hash is left out.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PortalCustomerRow")
            .field("id", &self.id)
            .field("account_id", &self.account_id)
            .field("failed_signins", &self.failed_signins)
            .finish_non_exhaustive()
    }
}

/// Inserts a customer; false if the account or the email already has one.
pub async fn insert_customer(c: &mut AnyConnection, r: &PortalCustomerRow) -> R<bool> {
    let done = sqlx::query(
        "INSERT INTO portal_customers (id, account_id, email, password_hash, failed_signins, \
         locked_until, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
         ON CONFLICT DO NOTHING",
    )
    .bind(&r.id)
    .bind(&r.account_id)
    .bind(&r.email)
    .bind(&r.password_hash)
    .bind(r.failed_signins)
    .bind(r.locked_until)
    .bind(r.created_at)
    .bind(r.updated_at)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn customer_by_email(c: &mut AnyConnection, email: &str) -> R<Option<PortalCustomerRow>> {
    Ok(
        sqlx::query_as::<_, PortalCustomerRow>("SELECT * FROM portal_customers WHERE email = $1")
            .bind(email)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn customer(c: &mut AnyConnection, id: &str) -> R<Option<PortalCustomerRow>> {
    Ok(
        sqlx::query_as::<_, PortalCustomerRow>("SELECT * FROM portal_customers WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

pub async fn customer_by_account(
    c: &mut AnyConnection,
    account_id: &str,
) -> R<Option<PortalCustomerRow>> {
    Ok(sqlx::query_as::<_, PortalCustomerRow>(
        "SELECT * FROM portal_customers WHERE account_id = $1",
    )
    .bind(account_id)
    .fetch_optional(c)
    .await?)
}

/// Sets how the customer proves the second factor (`email`, `sms` with its number, `totp`).
pub async fn set_second_factor(
    c: &mut AnyConnection,
    id: &str,
    factor: &str,
    sms_phone: Option<&str>,
    now: i64,
) -> R<()> {
    sqlx::query(
        "UPDATE portal_customers SET second_factor = $2, sms_phone = $3, updated_at = $4 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(factor)
    .bind(sms_phone)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// Counts a failed sign-in; `lock_until` (when the limit is reached) locks the sign-in.
pub async fn record_failed_signin(
    c: &mut AnyConnection,
    id: &str,
    lock_at: i64,
    lock_until: i64,
    now: i64,
) -> R<()> {
    sqlx::query(
        "UPDATE portal_customers SET failed_signins = failed_signins + 1, \
         locked_until = CASE WHEN failed_signins + 1 >= $2 THEN $3 ELSE locked_until END, \
         updated_at = $4 WHERE id = $1",
    )
    .bind(id)
    .bind(lock_at)
    .bind(lock_until)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

pub async fn clear_failed_signins(c: &mut AnyConnection, id: &str, now: i64) -> R<()> {
    sqlx::query(
        "UPDATE portal_customers SET failed_signins = 0, locked_until = NULL, updated_at = $2 \
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PortalCodeRow {
    pub id: String,
    pub customer_id: String,
    pub purpose: String,
    pub code_hash: String,
    pub outbox_id: Option<String>,
    pub attempts: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
    pub created_at: i64,
}

pub async fn insert_code(c: &mut AnyConnection, r: &PortalCodeRow) -> R<()> {
    sqlx::query(
        "INSERT INTO portal_codes (id, customer_id, purpose, code_hash, outbox_id, attempts, \
         expires_at, used_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&r.id)
    .bind(&r.customer_id)
    .bind(&r.purpose)
    .bind(&r.code_hash)
    .bind(&r.outbox_id)
    .bind(r.attempts)
    .bind(r.expires_at)
    .bind(r.used_at)
    .bind(r.created_at)
    .execute(c)
    .await?;
    Ok(())
}

/// The newest unused code of a customer for a purpose.
pub async fn live_code(
    c: &mut AnyConnection,
    customer_id: &str,
    purpose: &str,
) -> R<Option<PortalCodeRow>> {
    Ok(sqlx::query_as::<_, PortalCodeRow>(
        "SELECT * FROM portal_codes WHERE customer_id = $1 AND purpose = $2 AND used_at IS NULL \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(customer_id)
    .bind(purpose)
    .fetch_optional(c)
    .await?)
}

/// Counts an attempt at a code.
pub async fn bump_code_attempts(c: &mut AnyConnection, id: &str) -> R<()> {
    sqlx::query("UPDATE portal_codes SET attempts = attempts + 1 WHERE id = $1")
        .bind(id)
        .execute(c)
        .await?;
    Ok(())
}

/// Ends a code (used, replaced or worn out); false if it had already ended.
pub async fn end_code(c: &mut AnyConnection, id: &str, now: i64) -> R<bool> {
    let done =
        sqlx::query("UPDATE portal_codes SET used_at = $2 WHERE id = $1 AND used_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(c)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every live code of a customer for a purpose; returns their outbox rows.
pub async fn end_codes_of(
    c: &mut AnyConnection,
    customer_id: &str,
    purpose: &str,
    now: i64,
) -> R<Vec<String>> {
    let ids: Vec<(Option<String>,)> = sqlx::query_as(
        "UPDATE portal_codes SET used_at = $3 WHERE customer_id = $1 AND purpose = $2 \
         AND used_at IS NULL RETURNING outbox_id",
    )
    .bind(customer_id)
    .bind(purpose)
    .bind(now)
    .fetch_all(c)
    .await?;
    Ok(ids.into_iter().filter_map(|(o,)| o).collect())
}

/// Codes used, replaced or expired whose outbox row still holds the code: (code id, outbox
/// id, purpose, the message's kind), a batch.
pub async fn codes_to_redact(
    c: &mut AnyConnection,
    now: i64,
    limit: i64,
) -> R<Vec<(String, String, String, String)>> {
    Ok(sqlx::query_as(
        "SELECT p.id, p.outbox_id, p.purpose, COALESCE(o.kind, '') FROM portal_codes p \
         LEFT JOIN outbox o ON o.id = p.outbox_id WHERE p.outbox_id IS NOT NULL \
         AND (p.expires_at < $1 OR p.used_at IS NOT NULL) ORDER BY p.created_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// The code's outbox row was redacted.
pub async fn forget_code_outbox(c: &mut AnyConnection, id: &str, now: i64) -> R<()> {
    sqlx::query(
        "UPDATE portal_codes SET outbox_id = NULL, used_at = COALESCE(used_at, $2) WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// Overwrites an outbox row's payload (a one-time code that is no longer good).
pub async fn redact_outbox_payload(c: &mut AnyConnection, id: &str, payload: &str) -> R<()> {
    sqlx::query("UPDATE outbox SET payload_json = $2 WHERE id = $1")
        .bind(id)
        .bind(payload)
        .execute(c)
        .await?;
    Ok(())
}

pub async fn code(c: &mut AnyConnection, id: &str) -> R<Option<PortalCodeRow>> {
    Ok(
        sqlx::query_as::<_, PortalCodeRow>("SELECT * FROM portal_codes WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// Sets a new password hash; clears the failed sign-ins and any lock.
pub async fn set_password(c: &mut AnyConnection, id: &str, hash: &str, now: i64) -> R<()> {
    sqlx::query(
        "UPDATE portal_customers SET password_hash = $2, failed_signins = 0, locked_until = NULL, \
         updated_at = $3 WHERE id = $1",
    )
    .bind(id)
    .bind(hash)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

#[derive(Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SecurityAnswerRow {
    pub customer_id: String,
    pub seq: i64,
    pub question: String,
    pub answer_hash: String,
    pub created_at: i64,
}

impl std::fmt::Debug for SecurityAnswerRow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecurityAnswerRow")
            .field("customer_id", &self.customer_id)
            .field("seq", &self.seq)
            .field("question", &self.question)
            .finish_non_exhaustive()
    }
}

/// Replaces a customer's security questions and answers.
pub async fn replace_security_answers(
    c: &mut AnyConnection,
    customer_id: &str,
    rows: &[SecurityAnswerRow],
) -> R<()> {
    sqlx::query("DELETE FROM portal_security_answers WHERE customer_id = $1")
        .bind(customer_id)
        .execute(&mut *c)
        .await?;
    for r in rows {
        sqlx::query(
            "INSERT INTO portal_security_answers (customer_id, seq, question, answer_hash, \
             created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.customer_id)
        .bind(r.seq)
        .bind(&r.question)
        .bind(&r.answer_hash)
        .bind(r.created_at)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

pub async fn security_answers(
    c: &mut AnyConnection,
    customer_id: &str,
) -> R<Vec<SecurityAnswerRow>> {
    Ok(sqlx::query_as::<_, SecurityAnswerRow>(
        "SELECT * FROM portal_security_answers WHERE customer_id = $1 ORDER BY seq",
    )
    .bind(customer_id)
    .fetch_all(c)
    .await?)
}
