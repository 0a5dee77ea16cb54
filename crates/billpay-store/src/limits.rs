//! Rate-limit counters (`rate_limits`), written with [`crate::Store::write_relaxed`] and read
//! with [`crate::Store::relaxed_conn`]. Same conventions as [`crate::queries`].

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

/// Counts one request against `key` in the window starting at `window_start`; returns the
/// window's count including this one.
pub async fn hit(c: &mut AnyConnection, key: &str, window_start: i64) -> R<i64> {
    let (hits,): (i64,) = sqlx::query_as(
        "INSERT INTO rate_limits (key, window_start, hits) VALUES ($1, $2, 1) \
         ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_limits.hits + 1 \
         RETURNING hits",
    )
    .bind(key)
    .bind(window_start)
    .fetch_one(c)
    .await?;
    Ok(hits)
}

/// The count of `key` in the window starting at `window_start` (0 if none).
pub async fn hits(c: &mut AnyConnection, key: &str, window_start: i64) -> R<i64> {
    let row: Option<(i64,)> =
        sqlx::query_as("SELECT hits FROM rate_limits WHERE key = $1 AND window_start = $2")
            .bind(key)
            .bind(window_start)
            .fetch_optional(c)
            .await?;
    Ok(row.map(|(n,)| n).unwrap_or(0))
}

/// When the sign-in of an address without one is locked until (`key`: see
/// `signin_failures`), if it ever was.
pub async fn unknown_signin_lock(c: &mut AnyConnection, key: &str) -> R<Option<i64>> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT locked_until FROM signin_failures WHERE key = $1")
            .bind(key)
            .fetch_optional(c)
            .await?;
    Ok(row.and_then(|(t,)| t))
}

/// Counts a failed sign-in of an address without one, as a real sign-in's failures are
/// counted: at `lock_at` failures it is locked until `lock_until`.
pub async fn record_unknown_signin(
    c: &mut AnyConnection,
    key: &str,
    lock_at: i64,
    lock_until: i64,
    now: i64,
) -> R<()> {
    sqlx::query(
        "INSERT INTO signin_failures (key, failures, locked_until, updated_at) \
         VALUES ($1, 1, CASE WHEN $2 <= 1 THEN $3 ELSE NULL END, $4) \
         ON CONFLICT (key) DO UPDATE SET failures = signin_failures.failures + 1, \
           locked_until = CASE WHEN signin_failures.failures + 1 >= $2 THEN $3 \
             ELSE signin_failures.locked_until END, \
           updated_at = $4",
    )
    .bind(key)
    .bind(lock_at)
    .bind(lock_until)
    .bind(now)
    .execute(c)
    .await?;
    Ok(())
}

/// Drops the failures of addresses without a sign-in last tried before `before` and not
/// locked past it. Returns how many.
pub async fn prune_unknown_signins(c: &mut AnyConnection, before: i64) -> R<u64> {
    let done = sqlx::query(
        "DELETE FROM signin_failures WHERE updated_at < $1 \
         AND (locked_until IS NULL OR locked_until < $1)",
    )
    .bind(before)
    .execute(c)
    .await?;
    Ok(done.rows_affected())
}

/// Drops windows that started before `before`. Returns how many.
pub async fn prune(c: &mut AnyConnection, before: i64) -> R<u64> {
    let done = sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
        .bind(before)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}
