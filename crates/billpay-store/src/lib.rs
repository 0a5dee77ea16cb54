//! billpay-store: all of billpay's SQL, and nothing else.
//!
//! Owns the schema (`migrations/`), the connection pools, the write path with group commit on
//! SQLite ([`Store::write`]), and one function per query. Every query is written once with `$N`
//! placeholders and runs unchanged on SQLite and PostgreSQL through sqlx's `Any` driver; the
//! only dialect difference is how a write transaction begins (`BEGIN IMMEDIATE` on SQLite).
//!
//! Rows here are storage shapes (`*Row`): plain integers and strings. Turning them into domain
//! types is the services' job. This crate must not depend on the services, HTTP or the clock:
//! every instant is passed in as microseconds since the Unix epoch.

pub mod ach;
pub mod audit;
pub mod batch;
pub mod chat;
pub mod collections;
pub mod dashboard;
mod db;
pub mod desk;
pub mod disputes;
pub mod jobs;
pub mod limits;
pub mod outbox;
pub mod portal;
pub mod queries;
pub mod reports;
pub mod risk;
pub mod rows;
pub mod settings;
pub mod totp;

pub use db::{Engine, GROUP_COMMIT_BATCH_MAX, Store, StoreOptions, WriteFn};
pub use sqlx::AnyConnection;

/// A pooled read connection.
pub type PoolConnection = sqlx::pool::PoolConnection<sqlx::Any>;

/// Errors a caller of the store can act on. Cloneable because one failed group commit is
/// reported to every write in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("a row with this {0} already exists")]
    Duplicate(String),
    #[error("database configuration: {0}")]
    Config(String),
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Database(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("internal store error: {0}")]
    Internal(String),
}

impl StoreError {
    pub fn is_duplicate(&self) -> bool {
        matches!(self, StoreError::Duplicate(_))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Duplicate(db.constraint().unwrap_or("key").to_string())
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => {
                StoreError::Unavailable(e.to_string())
            }
            _ => StoreError::Database(e.to_string()),
        }
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration failed: {e}"))
    }
}
