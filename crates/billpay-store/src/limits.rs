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

/// Drops windows that started before `before`. Returns how many.
pub async fn prune(c: &mut AnyConnection, before: i64) -> R<u64> {
    let done = sqlx::query("DELETE FROM rate_limits WHERE window_start < $1")
        .bind(before)
        .execute(c)
        .await?;
    Ok(done.rows_affected())
}
