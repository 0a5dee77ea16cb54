//! The audit log's hash chain: reading unsealed records, sealing them in order, and reading the
//! chain back for verification. Same conventions as [`crate::queries`].

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

/// An audit record with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ChainedAuditRow {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub account_id: Option<String>,
    pub channel: Option<String>,
    pub detail: String,
    pub seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// The chain's head: the last sealed record's number and hash (0 and "genesis" when empty).
/// On PostgreSQL the row is locked until the transaction ends, so sealers take turns.
pub async fn lock_head(c: &mut AnyConnection) -> R<(i64, String)> {
    Ok(sqlx::query_as::<_, (i64, String)>(
        "UPDATE audit_chain SET seq = seq WHERE id = 1 RETURNING seq, hash",
    )
    .fetch_one(c)
    .await?)
}

pub async fn head(c: &mut AnyConnection) -> R<(i64, String)> {
    Ok(
        sqlx::query_as::<_, (i64, String)>("SELECT seq, hash FROM audit_chain WHERE id = 1")
            .fetch_one(c)
            .await?,
    )
}

pub async fn set_head(c: &mut AnyConnection, seq: i64, hash: &str) -> R<()> {
    sqlx::query("UPDATE audit_chain SET seq = $1, hash = $2 WHERE id = 1")
        .bind(seq)
        .bind(hash)
        .execute(c)
        .await?;
    Ok(())
}

/// Records not yet sealed, oldest first.
pub async fn unsealed(c: &mut AnyConnection, limit: i64) -> R<Vec<ChainedAuditRow>> {
    Ok(sqlx::query_as::<_, ChainedAuditRow>(
        "SELECT * FROM audit_log WHERE seq IS NULL ORDER BY at, id LIMIT $1",
    )
    .bind(limit)
    .fetch_all(c)
    .await?)
}

pub async fn any_unsealed(c: &mut AnyConnection) -> R<bool> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT id FROM audit_log WHERE seq IS NULL LIMIT 1")
            .fetch_optional(c)
            .await?
            .is_some(),
    )
}

/// Seals one record; false if it was sealed meanwhile.
pub async fn seal(
    c: &mut AnyConnection,
    id: &str,
    seq: i64,
    prev_hash: &str,
    hash: &str,
) -> R<bool> {
    let n = sqlx::query(
        "UPDATE audit_log SET seq = $2, prev_hash = $3, hash = $4 WHERE id = $1 AND seq IS NULL",
    )
    .bind(id)
    .bind(seq)
    .bind(prev_hash)
    .bind(hash)
    .execute(c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// Sealed records with `seq` greater than `after`, in chain order.
pub async fn chain_after(c: &mut AnyConnection, after: i64, limit: i64) -> R<Vec<ChainedAuditRow>> {
    Ok(sqlx::query_as::<_, ChainedAuditRow>(
        "SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(after)
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// How many records are not sealed yet, and the oldest one's time.
pub async fn unsealed_summary(c: &mut AnyConnection) -> R<(i64, Option<i64>)> {
    Ok(sqlx::query_as::<_, (i64, Option<i64>)>(
        "SELECT CAST(COUNT(*) AS BIGINT), MIN(at) FROM audit_log WHERE seq IS NULL",
    )
    .fetch_one(c)
    .await?)
}

/// Records matching every given filter, newest first (for supervisors).
#[allow(clippy::too_many_arguments)]
pub async fn search(
    c: &mut AnyConnection,
    actor: Option<&str>,
    action: Option<&str>,
    account_id: Option<&str>,
    subject_id: Option<&str>,
    from: i64,
    to: i64,
    limit: i64,
) -> R<Vec<ChainedAuditRow>> {
    Ok(sqlx::query_as::<_, ChainedAuditRow>(
        "SELECT * FROM audit_log WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action = $2) \
         AND ($3 IS NULL OR account_id = $3) AND ($4 IS NULL OR subject_id = $4) \
         AND at >= $5 AND at < $6 ORDER BY at DESC, id DESC LIMIT $7",
    )
    .bind(actor)
    .bind(action)
    .bind(account_id)
    .bind(subject_id)
    .bind(from)
    .bind(to)
    .bind(limit)
    .fetch_all(c)
    .await?)
}
