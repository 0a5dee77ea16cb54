//! Queries for delivering the outbox: each row is leased to one sender at a time, like a job
//! (see [`crate::jobs`]). Same conventions as [`crate::queries`]; leasing is the one place the
//! engines differ: PostgreSQL picks rows with `FOR UPDATE SKIP LOCKED`, so several senders never
//! take the same row; on SQLite the single writer already serializes every lease.
//!
//! Statuses: `queued` → `sending` → `sent` | `queued` (retry later) | `failed`.

use sqlx::AnyConnection;

use crate::{Engine, StoreError};

type R<T> = Result<T, StoreError>;

/// An outbox row with its delivery state.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub kind: String,
    pub dedupe_key: String,
    pub recipient: String,
    pub payload_json: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub attempts: i64,
    pub status: String,
    pub next_attempt_at: i64,
    pub lease_owner: Option<String>,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub finished_at: Option<i64>,
}

/// Leases up to `limit` due rows whose kind starts with `kind_prefix` (`email.`) to `owner`
/// until `lease_until`, counting an attempt on each. The lease is committed before the caller
/// talks to the relay, so a row is in one sender's hands at a time.
pub async fn lease(
    c: &mut AnyConnection,
    engine: Engine,
    kind_prefix: &str,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> R<Vec<DeliveryRow>> {
    // Dialect fork (tested on both engines in tests/email.rs and tests/job_lease.rs). On
    // PostgreSQL the pick is a materialized CTE with SKIP LOCKED, run once: written as
    // `... WHERE status = 'queued' AND id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)` one
    // lease took all 60 rows with a limit of 8 while nine others ran (tests/job_lease.rs fails
    // on that form), most likely the subquery re-evaluated by the recheck of the outer guard on
    // rows another lease had just updated. The job queue's form, without the outer guard, holds.
    let sql = match engine {
        Engine::Postgres => {
            "WITH picked AS MATERIALIZED (SELECT id FROM outbox WHERE status = 'queued' \
             AND next_attempt_at <= $2 AND kind LIKE $5 \
             ORDER BY next_attempt_at, created_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) \
             UPDATE outbox SET status = 'sending', lease_owner = $1, lease_until = $3, \
             attempts = attempts + 1 WHERE status = 'queued' \
             AND id IN (SELECT id FROM picked) RETURNING *"
        }
        Engine::Sqlite => {
            "UPDATE outbox SET status = 'sending', lease_owner = $1, lease_until = $3, \
             attempts = attempts + 1 WHERE status = 'queued' AND id IN (SELECT id FROM outbox \
             WHERE status = 'queued' AND next_attempt_at <= $2 AND kind LIKE $5 \
             ORDER BY next_attempt_at, created_at, id LIMIT $4) RETURNING *"
        }
    };
    let mut rows = sqlx::query_as::<_, DeliveryRow>(sql)
        .bind(owner)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .bind(format!("{kind_prefix}%"))
        .fetch_all(c)
        .await?;
    rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(rows)
}

/// Rows of a kind prefix left `sending` by a sender whose lease ran out (it stopped
/// mid-conversation): whether
/// the relay accepted them is unknown, so they are not sent again automatically but failed
/// with `error`, for an operator to check and requeue. Returns their ids.
pub async fn fail_interrupted(
    c: &mut AnyConnection,
    kind_prefix: &str,
    error: &str,
    now: i64,
) -> R<Vec<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "UPDATE outbox SET status = 'failed', last_error = $1, lease_owner = NULL, \
         lease_until = NULL, finished_at = $2 \
         WHERE status = 'sending' AND lease_until < $2 AND kind LIKE $3 RETURNING id",
    )
    .bind(error)
    .bind(now)
    .bind(format!("{kind_prefix}%"))
    .fetch_all(c)
    .await?)
}

/// Marks a leased row sent; false when the lease was lost.
pub async fn mark_sent(c: &mut AnyConnection, id: &str, owner: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'sent', sent_at = $3, finished_at = $3, last_error = NULL, \
         lease_owner = NULL, lease_until = NULL \
         WHERE id = $1 AND lease_owner = $2 AND status = 'sending'",
    )
    .bind(id)
    .bind(owner)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt: queued again at `retry_at`, or failed for good when None.
pub async fn mark_failed(
    c: &mut AnyConnection,
    id: &str,
    owner: &str,
    error: &str,
    retry_at: Option<i64>,
    now: i64,
) -> R<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET status = CASE WHEN $4 IS NULL THEN 'failed' ELSE 'queued' END, \
         next_attempt_at = COALESCE($4, next_attempt_at), last_error = $3, \
         lease_owner = NULL, lease_until = NULL, \
         finished_at = CASE WHEN $4 IS NULL THEN $5 ELSE NULL END \
         WHERE id = $1 AND lease_owner = $2 AND status = 'sending'",
    )
    .bind(id)
    .bind(owner)
    .bind(error)
    .bind(retry_at)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// An operator's decision to send a failed row again: queued now with fresh attempts. The last
/// error stays for the record until the next attempt. False when the row is not failed.
pub async fn requeue(c: &mut AnyConnection, id: &str, now: i64) -> R<bool> {
    let done = sqlx::query(
        "UPDATE outbox SET status = 'queued', next_attempt_at = $2, attempts = 0, \
         finished_at = NULL WHERE id = $1 AND status = 'failed'",
    )
    .bind(id)
    .bind(now)
    .execute(c)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// (kind, status, count) over the whole outbox, for the operator's view.
pub async fn counts(c: &mut AnyConnection) -> R<Vec<(String, String, i64)>> {
    Ok(sqlx::query_as::<_, (String, String, i64)>(
        "SELECT kind, status, CAST(COUNT(*) AS BIGINT) FROM outbox GROUP BY kind, status \
         ORDER BY kind, status",
    )
    .fetch_all(c)
    .await?)
}

/// Rows in a status that carry an error (failed ones, and queued ones waiting to retry), newest
/// first.
pub async fn with_errors(c: &mut AnyConnection, status: &str, limit: i64) -> R<Vec<DeliveryRow>> {
    Ok(sqlx::query_as::<_, DeliveryRow>(
        "SELECT * FROM outbox WHERE status = $1 AND last_error IS NOT NULL \
         ORDER BY created_at DESC, id DESC LIMIT $2",
    )
    .bind(status)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

pub async fn by_id(c: &mut AnyConnection, id: &str) -> R<Option<DeliveryRow>> {
    Ok(
        sqlx::query_as::<_, DeliveryRow>("SELECT * FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_optional(c)
            .await?,
    )
}

/// How many rows of a kind prefix are waiting (queued), for the start-up message.
pub async fn queued_count(c: &mut AnyConnection, kind_prefix: &str) -> R<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT CAST(COUNT(*) AS BIGINT) FROM outbox WHERE status = 'queued' AND kind LIKE $1",
    )
    .bind(format!("{kind_prefix}%"))
    .fetch_one(c)
    .await?)
}
