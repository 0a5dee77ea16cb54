//! Queries of the console's settings versions (`settings_versions`). Same conventions as
//! [`crate::queries`]: one function per query, `$N` placeholders, the same SQL on both engines.
//! Versions are only ever inserted; the primary key on `version` makes two instances saving at
//! once fail one of them instead of both becoming "version 7".

use sqlx::AnyConnection;

use crate::StoreError;

type R<T> = Result<T, StoreError>;

/// One saved version of the console settings.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct SettingsVersionRow {
    pub version: i64,
    pub at: i64,
    pub staff_id: String,
    pub staff_name: String,
    pub reason: String,
    /// JSON object: setting name to its value, for every setting that differs from the file.
    pub overrides: String,
    /// JSON list of `[name, before, after]`.
    pub changes: String,
}

/// The newest versions first, at most `limit`.
pub async fn settings_history(c: &mut AnyConnection, limit: i64) -> R<Vec<SettingsVersionRow>> {
    Ok(sqlx::query_as(
        "SELECT version, at, staff_id, staff_name, reason, overrides, changes \
         FROM settings_versions ORDER BY version DESC LIMIT $1",
    )
    .bind(limit)
    .fetch_all(c)
    .await?)
}

/// Records a new version. Fails (a unique violation) when another save took the number first.
pub async fn insert_settings_version(c: &mut AnyConnection, r: &SettingsVersionRow) -> R<()> {
    sqlx::query(
        "INSERT INTO settings_versions (version, at, staff_id, staff_name, reason, overrides, changes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(r.version)
    .bind(r.at)
    .bind(&r.staff_id)
    .bind(&r.staff_name)
    .bind(&r.reason)
    .bind(&r.overrides)
    .bind(&r.changes)
    .execute(c)
    .await?;
    Ok(())
}
