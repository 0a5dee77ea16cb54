//! Connections, migrations and the write path.
//!
//! Every write goes through [`Store::write`]. On PostgreSQL each write is its own transaction
//! on a pooled connection and PostgreSQL's own group commit shares the WAL flushes. On SQLite
//! there is exactly one writer connection: a task takes every write that is waiting, runs them
//! one after another inside a single `BEGIN IMMEDIATE` transaction, each under its own
//! savepoint, and commits once (group commit). A write that fails rolls back to its savepoint
//! and leaves the others alone. Nobody is answered before the commit that holds their write
//! has returned, and with `synchronous=FULL` that commit is on disk.
//!
//! State that is not money and changes on every request (a phone call's place in the call
//! flow) is written through [`Store::write_relaxed`]. On PostgreSQL that is the same database
//! with `synchronous_commit = off` for the one transaction. On SQLite it is a companion file
//! beside the database, `<database>-sessions`, with its own writer in WAL mode and
//! `synchronous=NORMAL`: its commits never wait for the disk, and never queue behind the main
//! writer's durable payment commits (SQLite has one writer per file). Such a write survives a
//! crash of billpay, and may be lost to a crash of the machine, which costs a caller at most a
//! repeated prompt.

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
/// How often the session database's WAL is checkpointed.
const SESSION_CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

pub(crate) static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
/// The SQLite session database's schema (on PostgreSQL these tables are in `migrations`).
pub(crate) static SESSION_MIGRATOR: sqlx::migrate::Migrator =
    sqlx::migrate!("./migrations-sessions");

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
    /// Where relaxed state lives: the SQLite session database, or the same PostgreSQL pool.
    session_pool: AnyPool,
    session_writer: Writer,
    /// The PostgreSQL URL, for a LISTEN connection of its own (None on SQLite).
    listen_url: Option<std::sync::Arc<str>>,
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
                let (pool, writer) =
                    open_sqlite(&connect, opts.max_connections.clamp(1, 8), Sync::Full).await?;
                if opts.migrate {
                    MIGRATOR.run(&pool).await.map_err(StoreError::from)?;
                }
                let session_connect = AnyConnectOptions::from_str(&session_url(&opts.url)?)
                    .map_err(|e| StoreError::Config(format!("bad database URL: {e}")))?;
                let (session_pool, session_writer) =
                    open_sqlite(&session_connect, 4, Sync::Normal).await?;
                // Always: the session database is billpay's own, and `migrate` may not exist
                // yet for a file that was never opened.
                SESSION_MIGRATOR
                    .run(&session_pool)
                    .await
                    .map_err(StoreError::from)?;
                if opts.migrate {
                    move_calls_to_sessions(&pool, &session_pool).await?;
                }
                Ok(Store {
                    engine,
                    pool,
                    writer,
                    session_pool,
                    session_writer,
                    listen_url: None,
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
                    session_pool: pool.clone(),
                    pool,
                    writer: Writer::Pool,
                    session_writer: Writer::Pool,
                    listen_url: Some(opts.url.as_str().into()),
                })
            }
        }
    }

    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// A connection listening on a PostgreSQL notification channel (None on SQLite, where
    /// one process owns the database and broadcasts in memory).
    pub async fn listen(&self, channel: &str) -> Result<Option<crate::chat::Listener>, StoreError> {
        let Some(url) = &self.listen_url else {
            return Ok(None);
        };
        let mut l = sqlx::postgres::PgListener::connect(url)
            .await
            .map_err(StoreError::from)?;
        l.listen(channel).await.map_err(StoreError::from)?;
        Ok(Some(crate::chat::Listener(l)))
    }

    /// The pool for reads. Never write through it: use [`Store::write`].
    pub fn reader(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for reads.
    pub async fn read_conn(&self) -> Result<crate::PoolConnection, StoreError> {
        self.pool.acquire().await.map_err(StoreError::from)
    }

    /// A connection for reading what [`Store::write_relaxed`] wrote.
    pub async fn relaxed_conn(&self) -> Result<crate::PoolConnection, StoreError> {
        self.session_pool.acquire().await.map_err(StoreError::from)
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
    /// machine (never to a crash of billpay): a phone call's position in the call flow. Read
    /// it back through [`Store::relaxed_conn`]. On PostgreSQL the commit does not wait for its
    /// WAL flush (`synchronous_commit = off` for this transaction only; a later durable commit
    /// flushes it, and nothing is ever half-written). On SQLite it goes to the session
    /// database (`synchronous=NORMAL`, its own writer), so it never waits behind payments.
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
        let writer = if relaxed {
            &self.session_writer
        } else {
            &self.writer
        };
        match writer {
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
                let pool = if relaxed {
                    self.session_pool.clone()
                } else {
                    self.pool.clone()
                };
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
        self.session_pool.close().await;
    }

    /// Whether [`Store::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.pool.is_closed()
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

/// The URL of the SQLite session database: the database's path with `-sessions` appended,
/// and the same query parameters.
fn session_url(url: &str) -> Result<String, StoreError> {
    let (path, query) = match url.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (url, None),
    };
    let file = path
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    if file.is_empty() || file == ":memory:" || query.is_some_and(|q| q.contains("mode=memory")) {
        return Err(StoreError::Config(
            "billpay needs a SQLite database file (an in-memory database loses every payment \
             when billpay stops)"
                .into(),
        ));
    }
    Ok(match query {
        Some(q) => format!("{path}-sessions?{q}"),
        None => format!("{path}-sessions"),
    })
}

/// Calls stored in the main SQLite database by a billpay from before the session database
/// are moved into it, so a call in progress across the upgrade goes on. Copied first, then
/// deleted: a crash in between leaves a copy in both, and the next open finishes the move.
async fn move_calls_to_sessions(main: &AnyPool, sessions: &AnyPool) -> Result<(), StoreError> {
    let rows: Vec<crate::rows::IvrCallRow> = sqlx::query_as("SELECT * FROM ivr_calls")
        .fetch_all(main)
        .await
        .map_err(StoreError::from)?;
    if rows.is_empty() {
        return Ok(());
    }
    let mut tx = sessions.begin().await.map_err(StoreError::from)?;
    for r in &rows {
        // A call already there (a move cut short before the delete) is kept as it is.
        crate::queries::ivr_call_insert(&mut tx, r).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    sqlx::query("DELETE FROM ivr_calls")
        .execute(main)
        .await
        .map_err(StoreError::from)?;
    tracing::info!(
        calls = rows.len(),
        "phone calls moved to the session database"
    );
    Ok(())
}

/// How a SQLite file's commits reach the disk.
#[derive(Clone, Copy)]
enum Sync {
    /// Every commit is on disk before it returns: the main database.
    Full,
    /// Commits survive a crash of the process, not of the machine: the session database.
    Normal,
}

/// A SQLite file's read pool and its one writer task.
async fn open_sqlite(
    connect: &AnyConnectOptions,
    readers: u32,
    sync: Sync,
) -> Result<(AnyPool, Writer), StoreError> {
    // Readers: WAL lets them run beside the one writer.
    let pool = AnyPoolOptions::new()
        .max_connections(readers)
        .after_connect(move |conn, _| Box::pin(async move { sqlite_pragmas(conn, sync).await }))
        .connect_with(connect.clone())
        .await
        .map_err(StoreError::from)?;
    let mut writer_conn = AnyConnection::connect_with(connect)
        .await
        .map_err(StoreError::from)?;
    sqlite_pragmas(&mut writer_conn, sync)
        .await
        .map_err(StoreError::from)?;
    if matches!(sync, Sync::Normal) {
        // The session database's writer never checkpoints on commit (a checkpoint writes and
        // syncs the database file, and a webhook would wait for it): a task beside it does,
        // without blocking the writer (PASSIVE).
        writer_conn
            .execute("PRAGMA wal_autocheckpoint=0")
            .await
            .map_err(StoreError::from)?;
        let mut checkpointer = AnyConnection::connect_with(connect)
            .await
            .map_err(StoreError::from)?;
        sqlite_pragmas(&mut checkpointer, sync)
            .await
            .map_err(StoreError::from)?;
        tokio::spawn(sqlite_checkpointer(checkpointer, pool.clone()));
    }
    let (tx, rx) = mpsc::channel(WRITE_QUEUE_MAX);
    tokio::spawn(sqlite_writer(writer_conn, rx));
    Ok((pool, Writer::Queue(tx)))
}

async fn sqlite_pragmas(conn: &mut AnyConnection, sync: Sync) -> Result<(), sqlx::Error> {
    conn.execute("PRAGMA journal_mode=WAL").await?;
    conn.execute(match sync {
        Sync::Full => "PRAGMA synchronous=FULL",
        Sync::Normal => "PRAGMA synchronous=NORMAL",
    })
    .await?;
    conn.execute("PRAGMA foreign_keys=ON").await?;
    // 64 MiB of page cache per connection, and checkpoints every ~40 MiB of WAL rather than
    // every 4 MiB: fewer, larger checkpoints. Durability is still synchronous=FULL.
    conn.execute("PRAGMA cache_size=-65536").await?;
    conn.execute("PRAGMA wal_autocheckpoint=10000").await?;
    let busy = format!("PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}");
    conn.execute(sqlx::AssertSqlSafe(busy)).await?;
    Ok(())
}

/// Checkpoints a SQLite file's WAL once a second until its pool is closed.
async fn sqlite_checkpointer(mut conn: AnyConnection, pool: AnyPool) {
    let mut tick = tokio::time::interval(SESSION_CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !pool.is_closed() {
        tick.tick().await;
        if let Err(e) = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").await {
            tracing::warn!(error = %e, "session database checkpoint failed; retrying");
        }
    }
    let _ = conn.close().await;
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
    if let [write] = batch {
        // Alone in its transaction: no savepoint needed (two fewer round trips to SQLite's
        // thread); a failed write rolls the whole transaction back.
        if !write.run(conn).await {
            conn.execute("ROLLBACK").await.map_err(StoreError::from)?;
            return Ok(());
        }
        return match conn.execute("COMMIT").await {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                Err(StoreError::from(e))
            }
        };
    }
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
