//! Connections, migrations and the write path.
//!
//! Every write goes through [`Store::write`]. On PostgreSQL each write is its own transaction
//! on a pooled connection and PostgreSQL's own group commit shares the WAL flushes. On SQLite
//! there is exactly one writer connection: a task takes every write that is waiting, runs them
//! one after another inside a single `BEGIN IMMEDIATE` transaction, each under its own
//! savepoint, and commits once (group commit). A write that fails rolls back to its savepoint
//! and leaves the others alone. Nobody is answered before the commit that holds their write
//! has returned, and with `synchronous=FULL` that commit is on disk.

use std::str::FromStr;
use std::time::Duration;

use futures::future::BoxFuture;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, Connection, Executor};
use tokio::sync::{mpsc, oneshot};

use crate::StoreError;

/// Which database engine the URL named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn from_url(url: &str) -> Result<Engine, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Engine::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Engine::Postgres)
        } else {
            Err(StoreError::Config(
                "the database URL must start with sqlite: or postgres:".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }
}

/// Most writes the SQLite writer puts in one transaction.
pub const GROUP_COMMIT_BATCH_MAX: usize = 256;
/// Writes that may wait for the SQLite writer before callers are made to wait for room.
const WRITE_QUEUE_MAX: usize = 8192;
const SQLITE_BUSY_TIMEOUT_MS: u64 = 10_000;

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// A unit of work run inside a write transaction.
pub type WriteFn<T, E> =
    Box<dyn for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send>;

trait ErasedWrite: Send {
    /// Runs the write; returns whether it succeeded (so the savepoint is kept).
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool>;
    /// Hands the result over once the transaction's fate is known.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

struct PendingWrite<T, E> {
    work: Option<WriteFn<T, E>>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T: Send + 'static, E: From<StoreError> + Send + 'static> ErasedWrite for PendingWrite<T, E> {
    fn run<'c>(&'c mut self, conn: &'c mut AnyConnection) -> BoxFuture<'c, bool> {
        Box::pin(async move {
            let Some(work) = self.work.take() else {
                return false;
            };
            let result = work(conn).await;
            let ok = result.is_ok();
            self.result = Some(result);
            ok
        })
    }

    fn finish(self: Box<Self>, commit: Result<(), StoreError>) {
        let this = *self;
        let outcome = match (this.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Err(e)) => Err(E::from(e)),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Err(e)) => Err(E::from(e)),
            (None, Ok(())) => Err(E::from(StoreError::Internal("write was never run".into()))),
        };
        // The caller may have gone away; the write's fate is already decided.
        let _ = this.reply.send(outcome);
    }
}

#[derive(Clone)]
enum Writer {
    /// The SQLite group-commit queue.
    Queue(mpsc::Sender<Box<dyn ErasedWrite>>),
    /// PostgreSQL: writes run on the shared pool.
    Pool,
}

/// The database: a read pool and the write path.
#[derive(Clone)]
pub struct Store {
    engine: Engine,
    pool: AnyPool,
    writer: Writer,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("engine", &self.engine)
            .finish()
    }
}

/// Options for opening the store.
#[derive(Clone, Debug)]
pub struct StoreOptions {
    pub url: String,
    pub max_connections: u32,
    /// Apply migrations on open.
    pub migrate: bool,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            max_connections: 16,
            migrate: true,
        }
    }
}

impl Store {
    /// Opens the database, applies migrations if asked, and starts the writer.
    pub async fn open(opts: StoreOptions) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let engine = Engine::from_url(&opts.url)?;
        let connect = AnyConnectOptions::from_str(&opts.url)
            .map_err(|e| StoreError::Config(format!("bad database URL: {e}")))?;
        match engine {
            Engine::Sqlite => {
                ensure_sqlite_parent(&opts.url)?;
                // Readers: WAL lets them run beside the one writer.
                let pool = AnyPoolOptions::new()
                    .max_connections(opts.max_connections.clamp(1, 8))
                    .after_connect(|conn, _| Box::pin(async move { sqlite_pragmas(conn).await }))
                    .connect_with(connect.clone())
                    .await
                    .map_err(StoreError::from)?;
                if opts.migrate {
                    MIGRATOR.run(&pool).await.map_err(StoreError::from)?;
                }
                let mut writer_conn = AnyConnection::connect_with(&connect)
                    .await
                    .map_err(StoreError::from)?;
                sqlite_pragmas(&mut writer_conn)
                    .await
                    .map_err(StoreError::from)?;
                let (tx, rx) = mpsc::channel(WRITE_QUEUE_MAX);
                tokio::spawn(sqlite_writer(writer_conn, rx));
                Ok(Store {
                    engine,
                    pool,
                    writer: Writer::Queue(tx),
                })
            }
            Engine::Postgres => {
                let pool = AnyPoolOptions::new()
                    .max_connections(opts.max_connections.max(2))
                    .acquire_timeout(Duration::from_secs(30))
                    .connect_with(connect)
                    .await
                    .map_err(StoreError::from)?;
                if opts.migrate {
                    MIGRATOR.run(&pool).await.map_err(StoreError::from)?;
                }
                Ok(Store {
                    engine,
                    pool,
                    writer: Writer::Pool,
                })
            }
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The pool for reads. Never write through it: use [`Store::write`].
    pub fn reader(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for reads.
    pub async fn read_conn(&self) -> Result<crate::PoolConnection, StoreError> {
        self.pool.acquire().await.map_err(StoreError::from)
    }

    /// Applies pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await.map_err(StoreError::from)
    }

    /// Runs `work` in a write transaction and returns once that transaction is durable.
    /// An error from `work` rolls back everything `work` did and nothing else.
    /// The work runs to completion even if the caller stops waiting.
    pub async fn write<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        self.write_as(work, false).await
    }

    /// Like [`Store::write`], for state that is not money and may be lost to a crash of the
    /// database server (never to a crash of billpay): a phone call's position in the call
    /// flow. On PostgreSQL the commit does not wait for its WAL flush (`synchronous_commit =
    /// off` for this transaction only; a later durable commit flushes it, and nothing is ever
    /// half-written). On SQLite it is an ordinary durable write: the single writer's group
    /// commit cannot mix durability levels.
    pub async fn write_relaxed<T, E, F>(&self, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        self.write_as(work, true).await
    }

    async fn write_as<T, E, F>(&self, work: F, relaxed: bool) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
    {
        match &self.writer {
            Writer::Queue(queue) => {
                let (reply, answer) = oneshot::channel();
                let pending: Box<dyn ErasedWrite> = Box::new(PendingWrite {
                    work: Some(Box::new(work) as WriteFn<T, E>),
                    result: None,
                    reply,
                });
                let stopped = || {
                    E::from(StoreError::Unavailable(
                        "the database writer has stopped".into(),
                    ))
                };
                queue.send(pending).await.map_err(|_| stopped())?;
                answer.await.map_err(|_| stopped())?
            }
            Writer::Pool => {
                let pool = self.pool.clone();
                // Spawned so that a caller going away cannot cancel a transaction half way.
                let handle = tokio::spawn(async move {
                    let mut tx = pool.begin().await.map_err(|e| E::from(e.into()))?;
                    if relaxed {
                        tx.execute("SET LOCAL synchronous_commit = off")
                            .await
                            .map_err(|e| E::from(e.into()))?;
                    }
                    let value = work(&mut tx).await?;
                    tx.commit().await.map_err(|e| E::from(e.into()))?;
                    Ok(value)
                });
                handle
                    .await
                    .map_err(|e| E::from(StoreError::Internal(format!("write task failed: {e}"))))?
            }
        }
    }

    /// Closes the pools after the writer has drained.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn ensure_sqlite_parent(url: &str) -> Result<(), StoreError> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(|e| {
            StoreError::Config(format!(
                "cannot create the database folder {}: {e}",
                parent.display()
            ))
        })?;
    }
    Ok(())
}

async fn sqlite_pragmas(conn: &mut AnyConnection) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode=WAL").await?;
    conn.execute("PRAGMA synchronous=FULL").await?;
    conn.execute("PRAGMA foreign_keys=ON").await?;
    // 64 MiB of page cache per connection, and checkpoints every ~40 MiB of WAL rather than
    // every 4 MiB: fewer, larger checkpoints. Durability is still synchronous=FULL.
    conn.execute("PRAGMA cache_size=-65536").await?;
    conn.execute("PRAGMA wal_autocheckpoint=10000").await?;
    let busy = format!("PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}");
    conn.execute(sqlx::AssertSqlSafe(busy)).await?;
    Ok(())
}

/// The SQLite writer: one connection, one transaction per batch, one savepoint per write.
async fn sqlite_writer(mut conn: AnyConnection, mut rx: mpsc::Receiver<Box<dyn ErasedWrite>>) {
    let mut batch: Vec<Box<dyn ErasedWrite>> = Vec::with_capacity(GROUP_COMMIT_BATCH_MAX);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < GROUP_COMMIT_BATCH_MAX {
            match rx.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let commit = run_batch(&mut conn, &mut batch).await;
        metrics::histogram!("billpay_store_group_commit_size").record(batch.len() as f64);
        for write in batch.drain(..) {
            write.finish(commit.clone());
        }
    }
    tracing::debug!("database writer stopped: queue closed");
}

async fn run_batch(
    conn: &mut AnyConnection,
    batch: &mut [Box<dyn ErasedWrite>],
) -> Result<(), StoreError> {
    conn.execute("BEGIN IMMEDIATE")
        .await
        .map_err(StoreError::from)?;
    for write in batch.iter_mut() {
        let step = async {
            conn.execute("SAVEPOINT w").await?;
            let ok = write.run(conn).await;
            if ok {
                conn.execute("RELEASE w").await?;
            } else {
                conn.execute("ROLLBACK TO w").await?;
                conn.execute("RELEASE w").await?;
            }
            Ok::<(), sqlx::Error>(())
        };
        if let Err(e) = step.await {
            let _ = conn.execute("ROLLBACK").await;
            return Err(StoreError::from(e));
        }
    }
    match conn.execute("COMMIT").await {
        Ok(_) => Ok(()),
        Err(e) => {
            let _ = conn.execute("ROLLBACK").await;
            Err(StoreError::from(e))
        }
    }
}
