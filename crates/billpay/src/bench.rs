//! `billpay bench`: benchmarks run against a real server over HTTP, beside a baseline measured
//! in the same run on the same database.
//!
//! `billpay bench payments` creates a fresh database (a new SQLite file in a temporary folder,
//! or, when the database URL names PostgreSQL, a new database on that server), starts the HTTP
//! application in this process on 127.0.0.1, and drives C concurrent keep-alive clients that
//! each send full card payments (`POST /api/v1/payments`, API key, Idempotency-Key, duplicate
//! guard active) until N have been sent, after a warm-up that is not counted. It then checks
//! every accepted payment against the database (applied / lost), and measures, on the same
//! database, the same rows written straight with SQL on one connection: one payment per commit,
//! and many payments per commit. On PostgreSQL it also runs pgbench's built-in TPC-B on a
//! throwaway database of the same server. Figures are printed beside the baseline, as ratios:
//! the machines this runs on are shared and noisy, so only same-run ratios compare.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use billpay_domain::{AccountNumber, ConfirmationNumber, MethodKind, Money, PostalCode};
use billpay_services::accounts::NewAccount;
use billpay_services::{Billpay, Clock, OsRandom, Random, SystemClock};
use billpay_store::rows::{IdempotencyRow, JournalRow, OutboxRow, PaymentRow, SandboxTxRow};
use billpay_store::{Engine, queries};
use clap::{Args, Subcommand};
use futures::StreamExt;
use sqlx::{AnyConnection, Connection, Executor};

use crate::config::{self, Settings};

#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Durable payments per second over HTTP, against a same-run baseline of direct writes.
    Payments(PaymentsArgs),
    /// An AutoPay run over many due accounts on the sandbox processor, against a same-run
    /// baseline of direct writes; optionally killed with SIGKILL and resumed.
    Autopay(crate::bench_autopay::AutopayArgs),
    /// Phone webhook latency under many concurrent simulated calls, against a same-run
    /// baseline of plain HTTP round trips.
    Ivr(crate::bench_ivr::IvrArgs),
    /// Live chat: many customers' event streams open at once, and how fast a representative's
    /// message reaches one.
    Chat(crate::bench_chat::ChatArgs),
    /// The customers' side of `bench chat`, which starts it as a child process.
    #[command(hide = true)]
    ChatClient(crate::bench_chat::ChatClientArgs),
}

#[derive(Args, Debug, Clone)]
pub struct PaymentsArgs {
    /// Payment requests measured (after the warm-up).
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Concurrent HTTP clients, each sending one request at a time over a keep-alive connection.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Customer accounts the payments are spread over.
    #[arg(long, default_value_t = 1_000)]
    pub accounts: usize,
    /// Requests sent before measuring; they are not counted in any figure.
    #[arg(long, default_value_t = 2_000)]
    pub warmup: usize,
    /// Payments the baseline writes one per commit.
    #[arg(long, default_value_t = 2_000)]
    pub baseline_single: usize,
    /// Payments the batched baseline writes (default: as many as --requests).
    #[arg(long)]
    pub baseline_batched: Option<usize>,
    /// Payments per commit in the batched baseline.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Folder for the fresh SQLite database (default: the system's temporary folder). Put it on
    /// the disk you want to measure.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the benchmark database afterwards (its location is printed).
    #[arg(long)]
    pub keep: bool,
    /// Skip `billpay verify` on the benchmark database at the end.
    #[arg(long)]
    pub no_verify: bool,
    /// PostgreSQL only: skip the pgbench TPC-B comparison.
    #[arg(long)]
    pub no_pgbench: bool,
    /// pgbench clients (-c).
    #[arg(long, default_value_t = 16)]
    pub pgbench_clients: u32,
    /// pgbench threads (-j).
    #[arg(long, default_value_t = 2)]
    pub pgbench_jobs: u32,
    /// pgbench duration in seconds (-T).
    #[arg(long, default_value_t = 15)]
    pub pgbench_secs: u32,
    /// pgbench scale factor (-i -s).
    #[arg(long, default_value_t = 10)]
    pub pgbench_scale: u32,
}

pub async fn run(what: BenchCommand, settings: &Settings) -> Result<()> {
    match what {
        BenchCommand::Payments(args) => payments(args, settings).await,
        BenchCommand::Autopay(args) => crate::bench_autopay::run(args, settings).await,
        BenchCommand::Ivr(args) => crate::bench_ivr::run(args, settings).await,
        BenchCommand::Chat(args) => crate::bench_chat::run(args, settings).await,
        BenchCommand::ChatClient(args) => crate::bench_chat::client(args).await,
    }
}

// ------------------------------------------------------------------------------------------
// The benchmark database.

/// A database that exists only for one benchmark run.
pub(crate) enum BenchDb {
    Sqlite {
        dir: PathBuf,
        url: String,
    },
    Postgres {
        admin_url: String,
        name: String,
        url: String,
    },
}

impl BenchDb {
    pub(crate) async fn create(
        settings: &Settings,
        dir: Option<&PathBuf>,
        run_id: &str,
    ) -> Result<BenchDb> {
        match Engine::from_url(&settings.database_url)? {
            Engine::Sqlite => {
                if settings.database_url != config::DEFAULT_DATABASE_URL {
                    eprintln!(
                        "note: the benchmark writes to a fresh SQLite file, not to {}",
                        config::redact_url(&settings.database_url)
                    );
                }
                let parent = dir.cloned().unwrap_or_else(std::env::temp_dir);
                let dir = parent.join(format!("billpay-bench-{run_id}"));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                let dir = dir.canonicalize()?;
                let url = format!("sqlite://{}?mode=rwc", dir.join("billpay.db").display());
                Ok(BenchDb::Sqlite { dir, url })
            }
            Engine::Postgres => {
                let admin_url = settings.database_url.clone();
                let name = format!("bp_bench_{run_id}");
                create_pg_database(&admin_url, &name).await?;
                let url = pg_url_for(&admin_url, &name)?;
                Ok(BenchDb::Postgres {
                    admin_url,
                    name,
                    url,
                })
            }
        }
    }

    pub(crate) fn url(&self) -> &str {
        match self {
            BenchDb::Sqlite { url, .. } | BenchDb::Postgres { url, .. } => url,
        }
    }

    pub(crate) fn engine(&self) -> Engine {
        match self {
            BenchDb::Sqlite { .. } => Engine::Sqlite,
            BenchDb::Postgres { .. } => Engine::Postgres,
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            BenchDb::Sqlite { dir, .. } => format!(
                "SQLite, fresh file {} (WAL, synchronous=FULL)",
                dir.join("billpay.db").display()
            ),
            BenchDb::Postgres {
                admin_url, name, ..
            } => format!(
                "PostgreSQL, fresh database {name} on {}",
                config::redact_url(admin_url)
            ),
        }
    }

    pub(crate) async fn destroy(self, keep: bool) -> Result<()> {
        if keep {
            eprintln!("kept the benchmark database: {}", self.describe());
            return Ok(());
        }
        match self {
            BenchDb::Sqlite { dir, .. } => {
                std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))
            }
            BenchDb::Postgres {
                admin_url, name, ..
            } => drop_pg_database(&admin_url, &name).await,
        }
    }
}

/// The URL of database `name` on the server of `admin_url` (same user, host, options).
fn pg_url_for(admin_url: &str, name: &str) -> Result<String> {
    let mut url = reqwest::Url::parse(admin_url).context("parsing the PostgreSQL URL")?;
    url.set_path(&format!("/{name}"));
    Ok(url.to_string())
}

async fn create_pg_database(admin_url: &str, name: &str) -> Result<()> {
    let mut c = AnyConnection::connect(admin_url)
        .await
        .with_context(|| format!("connecting to {}", config::redact_url(admin_url)))?;
    // `name` is ours: bp_bench_ and hex digits.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .with_context(|| format!("creating the database {name}"))?;
    let _ = c.close().await;
    Ok(())
}

async fn drop_pg_database(admin_url: &str, name: &str) -> Result<()> {
    let mut c = AnyConnection::connect(admin_url).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut c)
    .await
    .with_context(|| format!("dropping the database {name}"))?;
    let _ = c.close().await;
    Ok(())
}

// ------------------------------------------------------------------------------------------
// The run.

async fn payments(args: PaymentsArgs, settings: &Settings) -> Result<()> {
    if args.requests == 0 || args.concurrency == 0 || args.accounts == 0 || args.batch == 0 {
        bail!("--requests, --concurrency, --accounts and --batch must be at least 1");
    }
    // Amounts are distinct per request (so the duplicate guard never refuses one) and must stay
    // under the one-payment limit.
    let total = args.warmup + args.requests + args.baseline_single + args.baseline_batched();
    if total as i64 > billpay_services::payments::PAYMENT_AMOUNT_MAX_MINOR - AMOUNT_BASE {
        bail!("too many payments for distinct amounts");
    }
    sqlx::any::install_default_drivers();
    let run_id = billpay_services::clock::new_id("run", &SystemClock, &OsRandom);
    let db = BenchDb::create(settings, args.dir.as_ref(), &run_id).await?;
    let outcome = run_payments(&args, settings, &db, &run_id).await;
    let cleanup = db.destroy(args.keep).await;
    let report = outcome?;
    print!("{report}");
    if let Err(e) = cleanup {
        eprintln!("warning: could not remove the benchmark database: {e:#}");
    }
    Ok(())
}

impl PaymentsArgs {
    fn baseline_batched(&self) -> usize {
        self.baseline_batched.unwrap_or(self.requests)
    }
}

/// The smallest amount sent, in cents; request i pays AMOUNT_BASE + i.
const AMOUNT_BASE: i64 = 100;
/// How long one HTTP request may take before it counts as a client error.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// A customer account of the benchmark.
#[derive(Clone, Debug)]
pub(crate) struct BenchAccount {
    pub(crate) id: String,
    pub(crate) number: String,
}

async fn run_payments(
    args: &PaymentsArgs,
    settings: &Settings,
    db: &BenchDb,
    run_id: &str,
) -> Result<String> {
    let engine = db.engine();
    let machine = Machine::read();
    eprintln!("benchmark database: {}", db.describe());

    // The application, as `billpay serve` builds it, on the fresh database.
    let mut app_settings = settings.clone();
    app_settings.database_url = db.url().to_string();
    let (app, sandbox) = crate::build_from_settings(&app_settings, true).await?;
    let (key, secret) = app.create_api_key("bench").await?;
    let scope = format!("apikey:{}", key.id);
    eprintln!("creating {} accounts", args.accounts);
    let accounts = create_accounts(&app, args.accounts).await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, billpay_http::router(app.clone()))
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .into_future(),
    );

    // The clients run on their own runtime (threads named bench-client), so that their CPU
    // time can be told apart from the server's.
    let client_rt = ClientRuntime(Some(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("bench-client")
            .enable_all()
            .build()?,
    ));
    let load = Arc::new(Load {
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .timeout(CLIENT_TIMEOUT)
            .build()?,
        url: format!("http://{addr}/api/v1/payments"),
        key: secret.expose_secret().to_string(),
        accounts: accounts.iter().map(|a| a.number.clone()).collect(),
        run_id: run_id.to_string(),
    });

    if args.warmup > 0 {
        eprintln!("warm-up: {} requests (not counted)", args.warmup);
    }
    let warm = drive(client_rt.get()?, &load, 0, args.warmup, args.concurrency).await?;
    eprintln!(
        "measuring: {} requests, {} concurrent clients",
        args.requests, args.concurrency
    );
    let metrics_before = billpay_http::metrics_handle().render();
    let cpu_before = CpuSnapshot::take();
    let http = drive(
        client_rt.get()?,
        &load,
        args.warmup,
        args.requests,
        args.concurrency,
    )
    .await?;
    let cpu = CpuSnapshot::take().since(&cpu_before);
    let metrics_after = billpay_http::metrics_handle().render();
    drop(load);
    drop(client_rt);
    let _ = stop_tx.send(());
    match tokio::time::timeout(Duration::from_secs(30), server).await {
        Ok(joined) => joined??,
        Err(_) => eprintln!("warning: the server did not stop within 30 s"),
    }

    let verify = if args.no_verify {
        None
    } else {
        eprintln!("verifying the ledger");
        let started = Instant::now();
        let report = app.verify().await?;
        Some((report, started.elapsed()))
    };
    app.store.close().await;
    drop(sandbox);
    drop(app);

    // What the database holds, read on a connection of our own.
    let mut conn = open_baseline_conn(db.url(), engine).await?;
    let check = check_applied(&mut conn, &warm, &http).await?;
    let samples = Samples::read(&mut conn).await?;

    eprintln!(
        "baseline: {} payments, one per commit",
        args.baseline_single
    );
    let mut seq = args.warmup + args.requests;
    let mut taken = samples.confirmations.clone();
    let rows = baseline_rows(
        &accounts,
        &samples,
        &scope,
        run_id,
        seq,
        args.baseline_single,
        &mut taken,
    )?;
    seq += args.baseline_single;
    let cpu_single_before = CpuSnapshot::take();
    let single = write_baseline(&mut conn, engine, &rows, 1).await?;
    let cpu_single = CpuSnapshot::take().since(&cpu_single_before);
    drop(rows);
    eprintln!(
        "baseline: {} payments, {} per commit",
        args.baseline_batched(),
        args.batch
    );
    let rows = baseline_rows(
        &accounts,
        &samples,
        &scope,
        run_id,
        seq,
        args.baseline_batched(),
        &mut taken,
    )?;
    let cpu_batched_before = CpuSnapshot::take();
    let batched = write_baseline(&mut conn, engine, &rows, args.batch).await?;
    let cpu_batched = CpuSnapshot::take().since(&cpu_batched_before);
    drop(rows);
    let _ = conn.close().await;

    let pgbench = match db {
        BenchDb::Postgres { admin_url, .. } if !args.no_pgbench => {
            Some(pgbench(admin_url, args, run_id).await?)
        }
        _ => None,
    };

    Ok(Report {
        args,
        settings: &app_settings,
        engine,
        db_description: db.describe(),
        machine,
        http,
        check,
        cpu,
        commits: GroupCommits::between(&metrics_before, &metrics_after),
        server_mean: server_mean_latency(&metrics_before, &metrics_after),
        verify,
        single,
        cpu_single,
        batched,
        cpu_batched,
        pgbench,
    }
    .render())
}

async fn create_accounts(app: &Billpay, n: usize) -> Result<Vec<BenchAccount>> {
    let made: Vec<Result<BenchAccount>> = futures::stream::iter(0..n)
        .map(|i| {
            let app = app.clone();
            async move {
                let number = AccountNumber::from_body(&(30_000_000_000u64 + i as u64).to_string())?;
                let account = app
                    .create_account(NewAccount {
                        account_number: Some(number),
                        name: format!("Bench Customer {i}"),
                        email: Some(format!("customer{i}@example.com")),
                        phone: None,
                        postal_code: PostalCode::parse("10001")?,
                        timezone: Some("America/New_York".into()),
                        currency: None,
                    })
                    .await?;
                Ok(BenchAccount {
                    id: account.id,
                    number: account.account_number.as_str().to_string(),
                })
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    made.into_iter().collect()
}

// ------------------------------------------------------------------------------------------
// The HTTP load.

/// The clients' runtime; shut down without blocking when dropped (also on an early error, as
/// dropping a runtime inside another one is not allowed).
struct ClientRuntime(Option<tokio::runtime::Runtime>);

impl ClientRuntime {
    fn get(&self) -> Result<&tokio::runtime::Runtime> {
        self.0.as_ref().context("the client runtime has stopped")
    }
}

impl Drop for ClientRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

struct Load {
    client: reqwest::Client,
    url: String,
    key: String,
    accounts: Vec<String>,
    run_id: String,
}

/// What one phase of requests did.
#[derive(Default)]
struct Phase {
    wall: Duration,
    /// Latency of every request that got an answer, in microseconds.
    latencies_us: Vec<u64>,
    /// When each accepted request was answered, in microseconds from the phase's start.
    accepted_at_us: Vec<u64>,
    /// Payment ids of the 201 answers.
    accepted_ids: Vec<String>,
    /// Answers other than 201, by status.
    rejected: BTreeMap<u16, usize>,
    /// Requests that got no answer (connection errors, timeouts).
    errors: usize,
    first_problem: Option<String>,
}

impl Phase {
    fn merge(&mut self, other: Phase) {
        self.latencies_us.extend(other.latencies_us);
        self.accepted_at_us.extend(other.accepted_at_us);
        self.accepted_ids.extend(other.accepted_ids);
        for (status, n) in other.rejected {
            *self.rejected.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        if self.first_problem.is_none() {
            self.first_problem = other.first_problem;
        }
    }

    fn accepted(&self) -> usize {
        self.accepted_ids.len()
    }

    fn per_sec(&self) -> f64 {
        per_sec(self.accepted(), self.wall)
    }

    /// The latency at percentile `p` (nearest rank), in milliseconds.
    fn percentile_ms(&self, p: f64) -> f64 {
        percentile_ms(&self.latencies_us, p)
    }

    /// Accepted payments per second in each quarter of the phase.
    fn quarters(&self) -> [f64; 4] {
        let wall_us = self.wall.as_micros().max(1) as u64;
        let mut counts = [0usize; 4];
        for &t in &self.accepted_at_us {
            let q = ((t.saturating_mul(4)) / wall_us).min(3) as usize;
            counts[q] += 1;
        }
        counts.map(|n| per_sec(n, self.wall / 4))
    }
}

/// Percentile `p` (nearest rank) of latencies in microseconds, in milliseconds.
pub(crate) fn percentile_ms(samples_us: &[u64], p: f64) -> f64 {
    let mut sorted = samples_us.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// Customer `i`'s own Visa number (Luhn-valid; the sandbox approves it). Every simulated
/// customer pays with a card of their own, as real ones do: one card on many accounts is what
/// the fraud rules refuse.
pub(crate) fn customer_card(i: usize) -> String {
    let body = format!("4111{:011}", i % 100_000_000_000);
    let check = billpay_domain::luhn_digit(&body).unwrap_or(0);
    format!("{body}{check}")
}

/// A fresh vault keyring for one benchmark run, beside its database; removed by the caller
/// unless kept.
pub(crate) fn bench_keyring(dir: Option<&PathBuf>, run_id: &str) -> Result<PathBuf> {
    let path = dir
        .cloned()
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("billpay-bench-{run_id}-keyring.toml"));
    billpay_vault::Keyring::generate(&|b: &mut [u8]| billpay_services::Random::fill(&OsRandom, b))
        .save(&path)
        .context("writing the benchmark keyring")?;
    Ok(path)
}

/// Sends requests `first .. first + count` from `concurrency` clients and waits for all.
async fn drive(
    rt: &tokio::runtime::Runtime,
    load: &Arc<Load>,
    first: usize,
    count: usize,
    concurrency: usize,
) -> Result<Phase> {
    if count == 0 {
        return Ok(Phase::default());
    }
    let next = Arc::new(AtomicUsize::new(first));
    let end = first + count;
    let started = Instant::now();
    let clients: Vec<_> = (0..concurrency.min(count))
        .map(|_| rt.spawn(client_loop(load.clone(), next.clone(), end, started)))
        .collect();
    let mut phase = Phase::default();
    for c in clients {
        phase.merge(c.await.context("a benchmark client failed")?);
    }
    phase.wall = started.elapsed();
    Ok(phase)
}

async fn client_loop(
    load: Arc<Load>,
    next: Arc<AtomicUsize>,
    end: usize,
    started: Instant,
) -> Phase {
    let mut phase = Phase::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= end {
            break;
        }
        let body = serde_json::json!({
            "account_number": load.accounts[i % load.accounts.len()],
            "amount": AMOUNT_BASE + i as i64,
            "channel": "web",
            "payment_method": {
                "type": "card",
                "number": customer_card(i % load.accounts.len()),
                "exp_month": 12,
                "exp_year": 2034,
                "cvc": "123",
            },
        });
        let sent = Instant::now();
        let answer = load
            .client
            .post(&load.url)
            .bearer_auth(&load.key)
            .header("Idempotency-Key", format!("bench-{}-{i}", load.run_id))
            .json(&body)
            .send()
            .await;
        let answer = match answer {
            Ok(r) => {
                let status = r.status().as_u16();
                r.bytes().await.map(|b| (status, b))
            }
            Err(e) => Err(e),
        };
        let done = Instant::now();
        match answer {
            Ok((status, bytes)) => {
                phase
                    .latencies_us
                    .push(done.duration_since(sent).as_micros() as u64);
                let id = (status == 201)
                    .then(|| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                    .flatten()
                    .and_then(|v| v["id"].as_str().map(str::to_string));
                match id {
                    Some(id) => {
                        phase.accepted_ids.push(id);
                        phase
                            .accepted_at_us
                            .push(done.duration_since(started).as_micros() as u64);
                    }
                    None => {
                        *phase.rejected.entry(status).or_default() += 1;
                        if phase.first_problem.is_none() {
                            phase.first_problem = Some(format!(
                                "{status}: {}",
                                String::from_utf8_lossy(&bytes[..bytes.len().min(300)])
                            ));
                        }
                    }
                }
            }
            Err(e) => {
                phase.errors += 1;
                if phase.first_problem.is_none() {
                    phase.first_problem = Some(format!("request failed: {e}"));
                }
            }
        }
    }
    phase
}

// ------------------------------------------------------------------------------------------
// Applied and lost.

struct Applied {
    /// Measured 201 answers whose payment is in the database, succeeded, with its journal.
    applied: usize,
    /// Measured 201 answers whose payment is not in the database at all.
    lost: usize,
    /// Measured 201 answers whose payment is in the database but not succeeded and posted.
    wrong_state: usize,
    /// Succeeded payments in the database that no client was told about (warm-up included).
    unacknowledged: usize,
}

async fn check_applied(conn: &mut AnyConnection, warm: &Phase, http: &Phase) -> Result<Applied> {
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, journal_id FROM payments")
            .fetch_all(&mut *conn)
            .await?;
    let stored: HashMap<&str, bool> = rows
        .iter()
        .map(|(id, status, journal)| (id.as_str(), status == "succeeded" && journal.is_some()))
        .collect();
    let mut out = Applied {
        applied: 0,
        lost: 0,
        wrong_state: 0,
        unacknowledged: 0,
    };
    for id in &http.accepted_ids {
        match stored.get(id.as_str()) {
            Some(true) => out.applied += 1,
            Some(false) => out.wrong_state += 1,
            None => out.lost += 1,
        }
    }
    let told: HashSet<&str> = warm
        .accepted_ids
        .iter()
        .chain(&http.accepted_ids)
        .map(String::as_str)
        .collect();
    out.unacknowledged = stored
        .iter()
        .filter(|&(id, ok)| *ok && !told.contains(id))
        .count();
    Ok(out)
}

// ------------------------------------------------------------------------------------------
// The baseline: the same rows, written straight to the same database.

/// Real rows from the HTTP phase, so that the baseline writes rows of the same size.
pub(crate) struct Samples {
    response_body: String,
    receipt_json: Option<String>,
    pub(crate) confirmations: HashSet<String>,
}

impl Samples {
    pub(crate) async fn read(conn: &mut AnyConnection) -> Result<Samples> {
        let response_body = sqlx::query_scalar::<_, Option<String>>(
            "SELECT response_body FROM idempotency_keys \
             WHERE state = 'completed' AND endpoint = 'payments.create' LIMIT 1",
        )
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
        let receipt_json =
            sqlx::query_scalar::<_, String>("SELECT payload_json FROM outbox LIMIT 1")
                .fetch_optional(&mut *conn)
                .await?;
        let confirmations =
            sqlx::query_scalar::<_, String>("SELECT confirmation_number FROM payments")
                .fetch_all(&mut *conn)
                .await?;
        Ok(Samples {
            response_body: response_body
                .context("no completed payment to copy the stored response of")?,
            receipt_json,
            confirmations: confirmations.into_iter().collect(),
        })
    }
}

/// Everything one succeeded card payment leaves in the database.
pub(crate) struct BaselineRow {
    account_id: String,
    payment: PaymentRow,
    journal: JournalRow,
    postings: Vec<(String, i64)>,
    key: IdempotencyRow,
    processor: SandboxTxRow,
    receipt: Option<OutboxRow>,
}

fn bench_id(prefix: &str) -> String {
    billpay_services::clock::new_id(prefix, &SystemClock, &OsRandom)
}

/// Rows for payments `first .. first + count` (built before the clock starts).
pub(crate) fn baseline_rows(
    accounts: &[BenchAccount],
    samples: &Samples,
    scope: &str,
    run_id: &str,
    first: usize,
    count: usize,
    taken: &mut HashSet<String>,
) -> Result<Vec<BaselineRow>> {
    let random = OsRandom;
    let now = SystemClock.now_micros();
    (first..first + count)
        .map(|i| {
            let account = &accounts[i % accounts.len()];
            let amount = AMOUNT_BASE + i as i64;
            let payment_id = bench_id("pay");
            let journal_id = bench_id("je");
            let reference = bench_id("ch");
            let confirmation = loop {
                let c = ConfirmationNumber::from_random(random.next_u64())
                    .as_str()
                    .to_string();
                if taken.insert(c.clone()) {
                    break c;
                }
            };
            let number = AccountNumber::parse(&account.number)?;
            let entry = billpay_services::payments::payment_entry(
                &number,
                Money::usd(amount),
                Money::usd(0),
                MethodKind::Card,
            )?;
            Ok(BaselineRow {
                account_id: account.id.clone(),
                payment: PaymentRow {
                    id: payment_id.clone(),
                    account_id: account.id.clone(),
                    confirmation_number: confirmation,
                    amount,
                    currency: "USD".into(),
                    fee_amount: 0,
                    refunded_amount: 0,
                    status: "succeeded".into(),
                    channel: "web".into(),
                    method_type: "card".into(),
                    brand: Some("visa".into()),
                    last4: "4242".into(),
                    exp_month: Some(12),
                    exp_year: Some(2034),
                    bank_account_type: None,
                    routing_number: None,
                    holder_name: None,
                    processor: "sandbox".into(),
                    processor_key: format!("billpay-{payment_id}"),
                    processor_ref: Some(reference.clone()),
                    decline_code: None,
                    journal_id: Some(journal_id.clone()),
                    created_at: now,
                    updated_at: now,
                    payment_method_id: None,
                },
                journal: JournalRow {
                    id: journal_id,
                    kind: "payment".into(),
                    source_type: "payment".into(),
                    source_id: payment_id.clone(),
                    account_id: account.id.clone(),
                    currency: "USD".into(),
                    created_at: now,
                },
                postings: entry
                    .postings()
                    .iter()
                    .map(|p| (p.ledger_account.clone(), p.amount.minor_units()))
                    .collect(),
                key: IdempotencyRow {
                    scope: scope.to_string(),
                    idem_key: format!("baseline-{run_id}-{i}"),
                    endpoint: "payments.create".into(),
                    request_hash: format!("{:064x}", i),
                    state: "completed".into(),
                    resource_id: Some(payment_id.clone()),
                    response_status: Some(201),
                    response_body: Some(samples.response_body.clone()),
                    created_at: now,
                    completed_at: Some(now),
                },
                processor: SandboxTxRow {
                    processor_key: format!("billpay-{payment_id}"),
                    kind: "sale".into(),
                    reference,
                    parent_reference: None,
                    amount,
                    currency: "USD".into(),
                    outcome: "succeeded".into(),
                    decline_code: None,
                    settle_at: None,
                    return_code: None,
                    created_at: now,
                },
                receipt: samples.receipt_json.as_ref().map(|payload| OutboxRow {
                    id: bench_id("msg"),
                    kind: "email.receipt".into(),
                    dedupe_key: format!("receipt:{payment_id}"),
                    recipient: "customer@example.com".into(),
                    payload_json: payload.clone(),
                    created_at: now,
                    sent_at: None,
                    attempts: 0,
                }),
            })
        })
        .collect()
}

/// A connection set up as the store sets up its own (same pragmas on SQLite).
pub(crate) async fn open_baseline_conn(url: &str, engine: Engine) -> Result<AnyConnection> {
    let mut conn = AnyConnection::connect(url).await?;
    if engine == Engine::Sqlite {
        conn.execute("PRAGMA journal_mode=WAL").await?;
        conn.execute("PRAGMA synchronous=FULL").await?;
        conn.execute("PRAGMA foreign_keys=ON").await?;
        conn.execute("PRAGMA busy_timeout=10000").await?;
    }
    Ok(conn)
}

pub(crate) struct Baseline {
    pub(crate) payments: usize,
    pub(crate) per_commit: usize,
    pub(crate) wall: Duration,
}

impl Baseline {
    pub(crate) fn per_sec(&self) -> f64 {
        per_sec(self.payments, self.wall)
    }
}

/// Writes the rows, `per_commit` payments per transaction, with the store's own queries.
pub(crate) async fn write_baseline(
    conn: &mut AnyConnection,
    engine: Engine,
    rows: &[BaselineRow],
    per_commit: usize,
) -> Result<Baseline> {
    let begin = match engine {
        Engine::Sqlite => "BEGIN IMMEDIATE",
        Engine::Postgres => "BEGIN",
    };
    let started = Instant::now();
    for chunk in rows.chunks(per_commit) {
        conn.execute(begin).await?;
        for r in chunk {
            queries::lock_account(conn, &r.account_id, r.payment.created_at).await?;
            queries::insert_payment(conn, &r.payment).await?;
            queries::insert_journal(conn, &r.journal, &r.postings).await?;
            queries::idempotency_claim(conn, &r.key).await?;
            queries::sandbox_insert(conn, &r.processor).await?;
            if let Some(o) = &r.receipt {
                queries::insert_outbox(conn, o).await?;
            }
        }
        conn.execute("COMMIT").await?;
    }
    Ok(Baseline {
        payments: rows.len(),
        per_commit,
        wall: started.elapsed(),
    })
}

// ------------------------------------------------------------------------------------------
// pgbench.

struct Pgbench {
    tps: f64,
    latency_ms: Option<f64>,
    command: String,
    cpu: CpuUse,
}

/// pgbench's TPC-B on a throwaway database of the same server.
async fn pgbench(admin_url: &str, args: &PaymentsArgs, run_id: &str) -> Result<Pgbench> {
    let name = format!("bp_bench_{run_id}_tpcb");
    create_pg_database(admin_url, &name).await?;
    let url = pg_url_for(admin_url, &name)?;
    let result = async {
        eprintln!("pgbench: initializing scale {}", args.pgbench_scale);
        let init = tokio::process::Command::new("pgbench")
            .args(["-i", "-q", "-s", &args.pgbench_scale.to_string(), &url])
            .output()
            .await
            .context("running pgbench (is it installed and on PATH?)")?;
        if !init.status.success() {
            bail!(
                "pgbench -i failed: {}",
                String::from_utf8_lossy(&init.stderr)
            );
        }
        eprintln!(
            "pgbench: TPC-B, {} clients, {} s",
            args.pgbench_clients, args.pgbench_secs
        );
        let run_args = [
            "-c".to_string(),
            args.pgbench_clients.to_string(),
            "-j".to_string(),
            args.pgbench_jobs.to_string(),
            "-T".to_string(),
            args.pgbench_secs.to_string(),
        ];
        let before = CpuSnapshot::take();
        let out = tokio::process::Command::new("pgbench")
            .args(&run_args)
            .arg(&url)
            .output()
            .await?;
        let cpu = CpuSnapshot::take().since(&before);
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        if !out.status.success() {
            bail!("pgbench failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let tps = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .with_context(|| format!("no tps in pgbench's output:\n{text}"))?;
        let latency_ms = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("latency average = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok());
        Ok(Pgbench {
            tps,
            latency_ms,
            command: format!("pgbench {} <throwaway database>", run_args.join(" ")),
            cpu,
        })
    }
    .await;
    let dropped = drop_pg_database(admin_url, &name).await;
    let r = result?;
    dropped?;
    Ok(r)
}

// ------------------------------------------------------------------------------------------
// Where the time went: CPU per thread and per process, group-commit sizes.

/// The machine, as the report records it.
pub(crate) struct Machine {
    pub(crate) cpus: usize,
    pub(crate) model: String,
    pub(crate) memory: String,
}

impl Machine {
    pub(crate) fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, m)| m.trim().to_string())
            .unwrap_or_else(|| "unknown CPU".into());
        let memory = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find_map(|l| l.strip_prefix("MemTotal:"))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map(|kb| format!("{:.1} GiB RAM", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown RAM".into());
        Machine {
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            model,
            memory,
        }
    }
}

/// Linux's clock tick for /proc/*/stat times (USER_HZ; 100 on every mainstream build).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds used so far: by each of our threads, by database processes, and by the machine.
pub(crate) struct CpuSnapshot {
    at: Instant,
    /// Our threads: tid -> (name, CPU seconds).
    threads: HashMap<u32, (String, f64)>,
    /// postgres and pgbench processes: pid -> (name, CPU seconds).
    processes: HashMap<u32, (String, f64)>,
    /// From /proc/stat: (busy, iowait, total) in ticks.
    machine: (u64, u64, u64),
}

/// CPU used during an interval, in cores (CPU seconds per second of wall time).
#[derive(Default)]
pub(crate) struct CpuUse {
    /// By thread name, with the busiest single thread of that name.
    threads: BTreeMap<String, (f64, f64)>,
    processes: BTreeMap<String, f64>,
    machine_busy: f64,
    machine_iowait: f64,
    cpus: usize,
}

fn stat_cpu_secs(stat: &str) -> Option<f64> {
    let after = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SEC)
}

impl CpuSnapshot {
    pub(crate) fn take() -> CpuSnapshot {
        let mut threads = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
            for entry in dir.flatten() {
                let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let path = entry.path();
                let name = std::fs::read_to_string(path.join("comm"))
                    .map(|s| s.trim().to_string())
                    .unwrap_or_default();
                // schedstat: nanoseconds on the CPU; finer than the tick counts in stat.
                let secs = std::fs::read_to_string(path.join("schedstat"))
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
                    .map(|ns| ns / 1e9)
                    .or_else(|| stat_cpu_secs(&std::fs::read_to_string(path.join("stat")).ok()?));
                if let Some(secs) = secs {
                    threads.insert(tid, (name, secs));
                }
            }
        }
        let mut processes = HashMap::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                    continue;
                };
                let path = entry.path();
                let Ok(name) = std::fs::read_to_string(path.join("comm")) else {
                    continue;
                };
                let name = name.trim();
                if name != "postgres" && name != "pgbench" {
                    continue;
                }
                if let Some(secs) = std::fs::read_to_string(path.join("stat"))
                    .ok()
                    .and_then(|s| stat_cpu_secs(&s))
                {
                    processes.insert(pid, (name.to_string(), secs));
                }
            }
        }
        let machine = std::fs::read_to_string("/proc/stat")
            .ok()
            .and_then(|s| {
                let line = s.lines().next()?.strip_prefix("cpu ")?.to_string();
                let v: Vec<u64> = line
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                // user nice system idle iowait irq softirq steal (guest is inside user).
                let get = |i: usize| v.get(i).copied().unwrap_or(0);
                let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
                Some((busy, get(4), busy + get(3) + get(4)))
            })
            .unwrap_or_default();
        CpuSnapshot {
            at: Instant::now(),
            threads,
            processes,
            machine,
        }
    }

    pub(crate) fn since(&self, before: &CpuSnapshot) -> CpuUse {
        let wall = self.at.duration_since(before.at);
        let secs = wall.as_secs_f64().max(1e-9);
        let mut threads: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        for (tid, (name, now)) in &self.threads {
            let was = before.threads.get(tid).map(|t| t.1).unwrap_or(0.0);
            let used = (now - was).max(0.0) / secs;
            let e = threads.entry(name.clone()).or_default();
            e.0 += used;
            e.1 = e.1.max(used);
        }
        let mut processes: BTreeMap<String, f64> = BTreeMap::new();
        for (pid, (name, now)) in &self.processes {
            let was = before.processes.get(pid).map(|t| t.1).unwrap_or(0.0);
            *processes.entry(name.clone()).or_default() += (now - was).max(0.0) / secs;
        }
        let total = self.machine.2.saturating_sub(before.machine.2).max(1) as f64;
        CpuUse {
            threads,
            processes,
            machine_busy: self.machine.0.saturating_sub(before.machine.0) as f64 / total,
            machine_iowait: self.machine.1.saturating_sub(before.machine.1) as f64 / total,
            cpus: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
        }
    }
}

impl CpuUse {
    /// CPU used by this process, in cores.
    pub(crate) fn own(&self) -> f64 {
        self.threads.values().map(|t| t.0).sum()
    }

    fn describe_thread(name: &str) -> String {
        match name {
            "bench-client" => "HTTP clients (bench-client)".into(),
            "tokio-rt-worker" | "tokio-runtime-w" => "server: tokio workers".into(),
            "sqlx-sqlite-wor" => "server: SQLite connection threads".into(),
            "billpay" => "main thread".into(),
            other => other.to_string(),
        }
    }

    /// This process by thread group, PostgreSQL's processes, the machine, and everyone else.
    pub(crate) fn render(&self, indent: &str) -> String {
        let mut s = String::new();
        let own = self.own();
        let _ = writeln!(s, "{indent}{:<38}{own:5.2} cores", "this process");
        let mut named: Vec<_> = self.threads.iter().collect();
        named.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
        for (name, (cores, busiest)) in named {
            if *cores < 0.005 {
                continue;
            }
            let _ = write!(
                s,
                "{indent}  {:<36}{cores:5.2}",
                Self::describe_thread(name)
            );
            if name == "sqlx-sqlite-wor" {
                let _ = write!(s, " (busiest thread {busiest:.2})");
            }
            s.push('\n');
        }
        let mut db = 0.0;
        for (name, cores) in &self.processes {
            db += cores;
            let _ = writeln!(
                s,
                "{indent}{:<38}{cores:5.2} cores",
                format!("{name} (all its processes)")
            );
        }
        let _ = writeln!(
            s,
            "{indent}{}; other processes {:.2} cores",
            self.machine_line(),
            (self.machine_busy * self.cpus as f64 - own - db).max(0.0),
        );
        s
    }

    /// "machine 1.90 of 2 cores busy (95 %), iowait 1 %".
    fn machine_line(&self) -> String {
        format!(
            "{:<38}{:5.2} of {} cores busy ({:.0} %), iowait {:.0} %",
            "machine",
            self.machine_busy * self.cpus as f64,
            self.cpus,
            self.machine_busy * 100.0,
            self.machine_iowait * 100.0,
        )
    }
}

/// Group commits of the SQLite writer during the measured phase (from the store's metric).
pub(crate) struct GroupCommits {
    pub(crate) commits: f64,
    pub(crate) writes: f64,
}

impl GroupCommits {
    pub(crate) fn between(before: &str, after: &str) -> Option<GroupCommits> {
        let (s0, c0) = metric_sum_count(before, "billpay_store_group_commit_size", &[]);
        let (s1, c1) = metric_sum_count(after, "billpay_store_group_commit_size", &[]);
        (c1 > c0).then_some(GroupCommits {
            commits: c1 - c0,
            writes: s1 - s0,
        })
    }
}

/// Mean server-side time of POST /api/v1/payments during the phase, in milliseconds.
fn server_mean_latency(before: &str, after: &str) -> Option<f64> {
    let labels = [r#"method="POST""#, r#"route="/api/v1/payments""#];
    let (s0, c0) = metric_sum_count(before, "billpay_http_request_duration_seconds", &labels);
    let (s1, c1) = metric_sum_count(after, "billpay_http_request_duration_seconds", &labels);
    (c1 > c0).then(|| (s1 - s0) / (c1 - c0) * 1000.0)
}

/// Sum of `NAME_sum` and of `NAME_count` over the series that carry every label given.
pub(crate) fn metric_sum_count(text: &str, name: &str, labels: &[&str]) -> (f64, f64) {
    let mut sum = 0.0;
    let mut count = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (which, rest) = if let Some(r) = rest.strip_prefix("_sum") {
            (&mut sum, r)
        } else if let Some(r) = rest.strip_prefix("_count") {
            (&mut count, r)
        } else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if !labels.iter().all(|l| rest.contains(l)) {
            continue;
        }
        if let Some(v) = rest
            .rsplit(' ')
            .next()
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            *which += v;
        }
    }
    (sum, count)
}

pub(crate) fn per_sec(n: usize, wall: Duration) -> f64 {
    n as f64 / wall.as_secs_f64().max(1e-9)
}

// ------------------------------------------------------------------------------------------
// The report.

struct Report<'a> {
    args: &'a PaymentsArgs,
    settings: &'a Settings,
    engine: Engine,
    db_description: String,
    machine: Machine,
    http: Phase,
    check: Applied,
    cpu: CpuUse,
    commits: Option<GroupCommits>,
    server_mean: Option<f64>,
    verify: Option<(billpay_services::verify::VerifyReport, Duration)>,
    single: Baseline,
    cpu_single: CpuUse,
    batched: Baseline,
    cpu_batched: CpuUse,
    pgbench: Option<Pgbench>,
}

/// Target of the issue: durable payments per second on SQLite, on 2 cores.
const SQLITE_TARGET_PER_SEC: f64 = 5_000.0;
/// Target of the issue: p99 latency on SQLite, in milliseconds.
const SQLITE_TARGET_P99_MS: f64 = 20.0;

impl Report<'_> {
    fn render(&self) -> String {
        let a = self.args;
        let h = &self.http;
        let mut s = String::new();
        let _ = writeln!(s, "\nbillpay bench payments");
        let _ = writeln!(
            s,
            "  machine      {} CPUs ({}), {}",
            self.machine.cpus, self.machine.model, self.machine.memory
        );
        let _ = writeln!(s, "  database     {}", self.db_description);
        let _ = writeln!(
            s,
            "  load         {} measured requests after {} warm-up, {} concurrent keep-alive clients, {} accounts,",
            a.requests, a.warmup, a.concurrency, a.accounts
        );
        let _ = writeln!(
            s,
            "               card payments of distinct amounts (duplicate guard active), client and server in this process;"
        );
        let _ = writeln!(
            s,
            "               sandbox processor latency {} ms, database connections {}",
            self.settings.sandbox_latency_ms,
            match self.engine {
                Engine::Sqlite => format!(
                    "1 writer + up to {} readers",
                    self.settings.max_connections.clamp(1, 8)
                ),
                Engine::Postgres => format!("up to {}", self.settings.max_connections.max(2)),
            }
        );

        let _ = writeln!(s, "\nHTTP: POST /api/v1/payments");
        let _ = writeln!(
            s,
            "  accepted / applied / lost      {} / {} / {}",
            h.accepted(),
            self.check.applied,
            self.check.lost
        );
        let mut rejected: Vec<String> = h
            .rejected
            .iter()
            .map(|(status, n)| format!("{n} x {status}"))
            .collect();
        if h.errors > 0 {
            rejected.push(format!("{} without an answer", h.errors));
        }
        let _ = writeln!(
            s,
            "  rejected                       {}",
            if rejected.is_empty() {
                "none".to_string()
            } else {
                rejected.join(", ")
            }
        );
        if let Some(p) = &h.first_problem {
            let _ = writeln!(s, "  first problem                  {p}");
        }
        if self.check.wrong_state > 0 || self.check.unacknowledged > 0 {
            let _ = writeln!(
                s,
                "  accepted but not succeeded     {}\n  succeeded, never acknowledged  {}",
                self.check.wrong_state, self.check.unacknowledged
            );
        }
        let _ = writeln!(
            s,
            "  wall time                      {:.2} s",
            h.wall.as_secs_f64()
        );
        let _ = writeln!(s, "  payments/s                     {:.0}", h.per_sec());
        let q = h.quarters();
        let _ = writeln!(
            s,
            "  payments/s by quarter of run   {:.0} / {:.0} / {:.0} / {:.0}",
            q[0], q[1], q[2], q[3]
        );
        let _ = writeln!(
            s,
            "  latency p50 / p90 / p99 / max  {:.1} / {:.1} / {:.1} / {:.1} ms",
            h.percentile_ms(50.0),
            h.percentile_ms(90.0),
            h.percentile_ms(99.0),
            h.percentile_ms(100.0)
        );
        if let Some(m) = self.server_mean {
            let _ = writeln!(s, "  server-side mean               {m:.1} ms");
        }
        if let Some(g) = &self.commits {
            let _ = writeln!(
                s,
                "  SQLite group commits           {:.0} ({:.0}/s), {:.1} writes per commit (3 writes per payment)",
                g.commits,
                g.commits / h.wall.as_secs_f64().max(1e-9),
                g.writes / g.commits.max(1.0)
            );
        }
        let _ = writeln!(s, "  CPU during the measured phase:");
        s.push_str(&self.cpu.render("    "));
        if let Some((report, took)) = &self.verify {
            let _ = writeln!(
                s,
                "  billpay verify                 {} ({:.1} s)",
                if report.ok() { "ok" } else { "FAILED" },
                took.as_secs_f64()
            );
            if !report.ok() {
                s.push_str(&report.to_text());
                s.push('\n');
            }
        }

        let _ = writeln!(
            s,
            "\nBaseline: the same rows (payment, journal entry + 2 postings, completed idempotency key,\n\
             processor record, receipt in the outbox, account touched) written straight to the same\n\
             database with the store's own INSERTs, on one connection{}",
            match self.engine {
                Engine::Sqlite => " with the same pragmas",
                Engine::Postgres => "",
            }
        );
        for (b, cpu) in [
            (&self.single, &self.cpu_single),
            (&self.batched, &self.cpu_batched),
        ] {
            let _ = writeln!(
                s,
                "  {:>3} per commit                {:.0} payments/s ({} payments in {:.2} s; machine {:.0} % busy, iowait {:.0} %)",
                b.per_commit,
                b.per_sec(),
                b.payments,
                b.wall.as_secs_f64(),
                cpu.machine_busy * 100.0,
                cpu.machine_iowait * 100.0,
            );
        }
        if let Some(p) = &self.pgbench {
            let _ = writeln!(
                s,
                "\npgbench TPC-B (built-in script, scale {}) on the same server\n  {}\n  tps                            {:.0}{}",
                a.pgbench_scale,
                p.command,
                p.tps,
                p.latency_ms
                    .map(|l| format!(" (latency average {l:.1} ms)"))
                    .unwrap_or_default()
            );
            // pgbench and its backends have exited by the time CPU is read: only the machine's
            // total is meaningful (pgbench's own client runs on this machine too).
            let _ = writeln!(s, "  CPU during pgbench:\n    {}", p.cpu.machine_line());
        }

        let rate = h.per_sec();
        let _ = writeln!(s, "\nRatios (same run)");
        let _ = writeln!(
            s,
            "  HTTP / baseline, 1 per commit  {:.2}",
            rate / self.single.per_sec().max(1e-9)
        );
        let _ = writeln!(
            s,
            "  HTTP / baseline, {} per commit {:.2}",
            self.batched.per_commit,
            rate / self.batched.per_sec().max(1e-9)
        );
        if let Some(p) = &self.pgbench {
            let _ = writeln!(
                s,
                "  HTTP / pgbench TPC-B tps       {:.2}",
                rate / p.tps.max(1e-9)
            );
        }

        let _ = writeln!(s, "\nTargets");
        match self.engine {
            Engine::Sqlite => {
                let p99 = h.percentile_ms(99.0);
                let _ = writeln!(
                    s,
                    "  {:<31}{} ({:.0})",
                    format!(">= {SQLITE_TARGET_PER_SEC:.0} payments/s"),
                    met(rate >= SQLITE_TARGET_PER_SEC),
                    rate
                );
                let _ = writeln!(
                    s,
                    "  {:<31}{} ({p99:.1} ms)",
                    format!("p99 <= {SQLITE_TARGET_P99_MS:.0} ms"),
                    met(p99 <= SQLITE_TARGET_P99_MS)
                );
                if self.machine.cpus != 2 {
                    let _ = writeln!(
                        s,
                        "  (the targets are stated for 2 cores; this machine has {})",
                        self.machine.cpus
                    );
                }
            }
            Engine::Postgres => match &self.pgbench {
                Some(p) => {
                    let _ = writeln!(
                        s,
                        "  {:<31}{} ({:.0} vs {:.0})",
                        ">= pgbench TPC-B tps",
                        met(rate >= p.tps),
                        rate,
                        p.tps
                    );
                }
                None => {
                    let _ = writeln!(s, "  pgbench skipped (--no-pgbench)");
                }
            },
        }
        let _ = writeln!(
            s,
            "  {:<31}{}",
            "lost = 0",
            met(self.check.lost == 0 && self.check.wrong_state == 0)
        );
        s
    }
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_simulated_customer_has_a_valid_card_of_their_own() {
        let cards: std::collections::HashSet<String> = (0..1000).map(customer_card).collect();
        assert_eq!(cards.len(), 1000);
        for c in &cards {
            assert!(billpay_domain::CardNumber::parse(c).is_ok(), "{c}");
        }
    }

    #[test]
    fn metric_lines_are_summed_by_label() {
        let text = "\
# TYPE billpay_store_group_commit_size histogram
billpay_store_group_commit_size_bucket{le=\"+Inf\"} 4
billpay_store_group_commit_size_sum 30
billpay_store_group_commit_size_count 4
billpay_http_request_duration_seconds_sum{method=\"POST\",route=\"/api/v1/payments\"} 2.5
billpay_http_request_duration_seconds_count{method=\"POST\",route=\"/api/v1/payments\"} 10
billpay_http_request_duration_seconds_sum{method=\"GET\",route=\"/api/v1/payments/{id}\"} 9
billpay_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/payments/{id}\"} 9
";
        assert_eq!(
            metric_sum_count(text, "billpay_store_group_commit_size", &[]),
            (30.0, 4.0)
        );
        let labels = [r#"method="POST""#, r#"route="/api/v1/payments""#];
        assert_eq!(
            metric_sum_count(text, "billpay_http_request_duration_seconds", &labels),
            (2.5, 10.0)
        );
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let phase = Phase {
            latencies_us: (1..=100).map(|ms| ms * 1000).collect(),
            ..Phase::default()
        };
        assert_eq!(phase.percentile_ms(50.0), 50.0);
        assert_eq!(phase.percentile_ms(99.0), 99.0);
        assert_eq!(phase.percentile_ms(100.0), 100.0);
    }

    #[test]
    fn pg_url_keeps_user_host_and_options() {
        assert_eq!(
            pg_url_for(
                "postgres://u:p@db.example:5433/test?sslmode=disable",
                "bp_bench_1"
            )
            .unwrap(),
            "postgres://u:p@db.example:5433/bp_bench_1?sslmode=disable"
        );
    }
}
