//! `billpay bench autopay`: an AutoPay run over many due accounts on the sandbox processor.
//!
//! It creates a fresh database (as `bench payments` does), bulk-loads N accounts straight with
//! the store's INSERT queries — each with a saved card sealed by the vault keyring, an AutoPay
//! enrollment, a statement due two days ago with its journal entry, its `autopay.charge` job
//! (due now, keyed and shaped as `schedule_statement_in` makes it) and its pre-debit notice job
//! (already sent) — and then runs the job runner until every charge job is done, timing only
//! that. Setup time is reported apart; it is not the figure of record.
//!
//! The run is in-process (`--workers` job runners, each calling `run_due_jobs` in a loop), or,
//! with `--kill-after-secs S`, a child `billpay worker` on the bench database killed with
//! SIGKILL after S seconds and started again, to show the run resumes with no duplicate charge.
//!
//! Then: jobs done/failed, accounts charged once, accounts charged twice (must be 0), processor
//! sales, `billpay verify`, and a same-run baseline: the rows of one card payment written
//! straight with the store's queries (one per commit, and `--batch` per commit).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use billpay_domain::{AccountNumber, JournalEntry, Money, local_date, local_instant};
use billpay_services::{Billpay, OsRandom, SystemClock};
use billpay_store::jobs::{self as jq, AutopayRow};
use billpay_store::rows::{AccountRow, JournalRow, PaymentMethodRow, StatementRow};
use billpay_store::{StoreError, queries};
use clap::Args;
use sqlx::{AnyConnection, Connection};

use crate::bench::{
    BenchAccount, BenchDb, CpuSnapshot, CpuUse, GroupCommits, Machine, Samples, baseline_rows,
    open_baseline_conn, per_sec, write_baseline,
};
use crate::config::Settings;

#[derive(Args, Debug, Clone)]
pub struct AutopayArgs {
    /// Accounts enrolled in AutoPay, each with one bill due (one charge job each).
    #[arg(long, default_value_t = 1_000_000)]
    pub accounts: usize,
    /// Job runners in this process, each leasing batches with `run_due_jobs`.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Folder for the fresh SQLite database (default: the system's temporary folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Keep the benchmark database (and its keyring) afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Skip `billpay verify` at the end.
    #[arg(long)]
    pub no_verify: bool,
    /// Run the AutoPay phase in a child `billpay worker`, kill it with SIGKILL after this many
    /// seconds, start it again, and wait until every charge is done.
    #[arg(long)]
    pub kill_after_secs: Option<u64>,
    /// The job lease (job_lease_secs) of the runners: how soon a killed worker's jobs are
    /// taken again.
    #[arg(long, default_value_t = 5)]
    pub lease_secs: u64,
    /// Accounts written per setup transaction.
    #[arg(long, default_value_t = 1_000)]
    pub load_batch: usize,
    /// Payments the baseline writes one per commit.
    #[arg(long, default_value_t = 2_000)]
    pub baseline_single: usize,
    /// Payments the batched baseline writes.
    #[arg(long, default_value_t = 20_000)]
    pub baseline_batched: usize,
    /// Payments per commit in the batched baseline.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
}

/// The target for 1,000,000 due accounts on 2 cores, in seconds.
const TARGET_SECS_PER_MILLION: f64 = 120.0;
/// How often progress is printed during the run.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Longest the resumable run may take before the benchmark gives up.
const RESUME_WAIT_MAX: Duration = Duration::from_secs(6 * 3600);
/// The card every account saves (the sandbox approves it).
const CARD: &str = "4242424242424242";

pub async fn run(args: AutopayArgs, settings: &Settings) -> Result<()> {
    if args.accounts == 0 || args.workers == 0 || args.load_batch == 0 || args.batch == 0 {
        bail!("--accounts, --workers, --load-batch and --batch must be at least 1");
    }
    if args.lease_secs == 0 || args.lease_secs > 3600 {
        bail!("--lease-secs must be 1 to 3600");
    }
    sqlx::any::install_default_drivers();
    let run_id = billpay_services::clock::new_id("run", &SystemClock, &OsRandom);
    let db = BenchDb::create(settings, args.dir.as_ref(), &run_id).await?;
    let outcome = match crate::bench::bench_keyring(args.dir.as_ref(), &run_id) {
        Ok(keyring) => {
            let outcome = run_autopay(&args, settings, &db, &keyring, &run_id).await;
            if !args.keep {
                let _ = std::fs::remove_file(&keyring);
            }
            outcome
        }
        Err(e) => Err(e),
    };
    let cleanup = db.destroy(args.keep).await;
    let report = outcome?;
    print!("{report}");
    if let Err(e) = cleanup {
        eprintln!("warning: could not remove the benchmark database: {e:#}");
    }
    Ok(())
}

/// What the database says after the run.
struct Outcome {
    jobs_done: i64,
    jobs_failed: i64,
    jobs_left: i64,
    charged_once: i64,
    charged_twice: i64,
    never_charged_payments: i64,
    sales: i64,
}

impl Outcome {
    async fn read(c: &mut AnyConnection) -> Result<Outcome> {
        let count = |sql: &'static str| sqlx::query_scalar::<_, i64>(sql);
        Ok(Outcome {
            jobs_done: count(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'autopay.charge' AND status = 'done'",
            )
            .fetch_one(&mut *c)
            .await?,
            jobs_failed: count(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'autopay.charge' AND status = 'failed'",
            )
            .fetch_one(&mut *c)
            .await?,
            jobs_left: count(
                "SELECT COUNT(*) FROM jobs WHERE kind = 'autopay.charge' \
                 AND status IN ('queued', 'running')",
            )
            .fetch_one(&mut *c)
            .await?,
            charged_once: count(
                "SELECT COUNT(DISTINCT account_id) FROM payments \
                 WHERE channel = 'autopay' AND status = 'succeeded'",
            )
            .fetch_one(&mut *c)
            .await?,
            charged_twice: count(
                "SELECT COUNT(*) FROM (SELECT account_id FROM payments \
                 WHERE channel = 'autopay' AND status = 'succeeded' \
                 GROUP BY account_id HAVING COUNT(*) > 1) AS twice",
            )
            .fetch_one(&mut *c)
            .await?,
            never_charged_payments: count(
                "SELECT COUNT(*) FROM payments WHERE channel = 'autopay' AND status = 'failed'",
            )
            .fetch_one(&mut *c)
            .await?,
            sales: queries::sandbox_count(c, "sale").await?,
        })
    }
}

/// How the AutoPay phase ran.
struct RunPhase {
    wall: Duration,
    cpu: Option<CpuUse>,
    commits: Option<GroupCommits>,
    /// Resumable mode: paid at the kill, and the wall time of each life of the worker.
    kill: Option<(i64, Duration, Duration)>,
}

async fn run_autopay(
    args: &AutopayArgs,
    settings: &Settings,
    db: &BenchDb,
    keyring: &std::path::Path,
    run_id: &str,
) -> Result<String> {
    let engine = db.engine();
    let machine = Machine::read();
    eprintln!("benchmark database: {}", db.describe());
    let mut app_settings = settings.clone();
    app_settings.database_url = db.url().to_string();
    app_settings.keyring_file = Some(keyring.to_path_buf());
    app_settings.job_lease_secs = args.lease_secs;
    let (app, sandbox) = crate::build_from_settings(&app_settings, true).await?;

    eprintln!("loading {} accounts", args.accounts);
    let started = Instant::now();
    let accounts = load(&app, args.accounts, args.load_batch).await?;
    let setup = started.elapsed();
    eprintln!(
        "loaded in {:.1} s ({:.0} accounts/s)",
        setup.as_secs_f64(),
        per_sec(args.accounts, setup)
    );

    let phase = match args.kill_after_secs {
        None => run_in_process(&app, args).await?,
        Some(secs) => {
            app.store.close().await;
            run_killed_and_resumed(&app_settings, db, args, secs).await?
        }
    };
    let app = if args.kill_after_secs.is_some() {
        crate::build_from_settings(&app_settings, false).await?.0
    } else {
        app
    };
    let verify = if args.no_verify {
        None
    } else {
        eprintln!("verifying the ledger");
        let started = Instant::now();
        let report = app.verify().await?;
        Some((report.ok(), started.elapsed(), report.to_text()))
    };
    app.store.close().await;
    drop(sandbox);
    drop(app);

    let mut conn = open_baseline_conn(db.url(), engine).await?;
    let outcome = Outcome::read(&mut conn).await?;
    let samples = Samples::read(&mut conn).await?;
    let mut taken: HashSet<String> = samples.confirmations.clone();
    eprintln!(
        "baseline: {} payments, one per commit",
        args.baseline_single
    );
    let rows = baseline_rows(
        &accounts,
        &samples,
        "autopay-baseline",
        run_id,
        0,
        args.baseline_single,
        &mut taken,
    )?;
    let single = write_baseline(&mut conn, engine, &rows, 1).await?;
    drop(rows);
    eprintln!(
        "baseline: {} payments, {} per commit",
        args.baseline_batched, args.batch
    );
    let rows = baseline_rows(
        &accounts,
        &samples,
        "autopay-baseline",
        run_id,
        args.baseline_single,
        args.baseline_batched,
        &mut taken,
    )?;
    let batched = write_baseline(&mut conn, engine, &rows, args.batch).await?;
    drop(rows);
    let _ = conn.close().await;

    // The report.
    let n = args.accounts as f64;
    let wall = phase.wall.as_secs_f64();
    let rate = outcome.charged_once as f64 / wall.max(1e-9);
    let projected = 1_000_000.0 / rate.max(1e-9);
    let mut s = String::new();
    let _ = writeln!(s, "billpay bench autopay");
    let _ = writeln!(
        s,
        "  machine        {} × {}, {}",
        machine.cpus, machine.model, machine.memory
    );
    let _ = writeln!(s, "  database       {}", db.describe());
    let _ = writeln!(
        s,
        "  run            {} accounts, {}, lease {} s, sandbox latency {} ms",
        args.accounts,
        match args.kill_after_secs {
            None => format!("{} in-process job runners", args.workers),
            Some(k) => format!("child `billpay worker`, SIGKILL after {k} s, then restarted"),
        },
        args.lease_secs,
        app_settings.sandbox_latency_ms,
    );
    let _ = writeln!(
        s,
        "  setup (not measured)  {:.1} s, {:.0} accounts/s",
        setup.as_secs_f64(),
        per_sec(args.accounts, setup)
    );
    let _ = writeln!(s, "\nAutoPay run");
    let _ = writeln!(s, "  wall time                 {wall:.1} s");
    if let Some((paid, first, second)) = phase.kill {
        let _ = writeln!(
            s,
            "  killed after              {:.1} s with {paid} paid; second life {:.1} s",
            first.as_secs_f64(),
            second.as_secs_f64()
        );
    }
    let _ = writeln!(s, "  charges/s                 {rate:.0}");
    let _ = writeln!(
        s,
        "  charge jobs done / failed / left  {} / {} / {}",
        outcome.jobs_done, outcome.jobs_failed, outcome.jobs_left
    );
    let _ = writeln!(
        s,
        "  accounts charged once     {} of {}",
        outcome.charged_once, args.accounts
    );
    let _ = writeln!(
        s,
        "  accounts charged twice    {} (must be 0)",
        outcome.charged_twice
    );
    let _ = writeln!(
        s,
        "  payments never charged    {} (in doubt at the kill, resolved by key as not sent)",
        outcome.never_charged_payments
    );
    let _ = writeln!(
        s,
        "  processor sales           {} (must be {})",
        outcome.sales, args.accounts
    );
    if let Some(c) = &phase.commits {
        let _ = writeln!(
            s,
            "  SQLite group commits      {:.0} ({:.0}/s), {:.1} writes each, {:.1} write transactions per charge",
            c.commits,
            c.commits / wall.max(1e-9),
            c.writes / c.commits.max(1.0),
            c.writes / (outcome.charged_once as f64).max(1.0)
        );
    }
    if let Some(cpu) = &phase.cpu {
        let _ = writeln!(s, "  CPU during the run:");
        s.push_str(&cpu.render("    "));
    }
    if let Some((ok, took, text)) = &verify {
        let _ = writeln!(
            s,
            "  billpay verify            {} ({:.1} s)",
            if *ok { "ok" } else { "FAILED" },
            took.as_secs_f64()
        );
        if !ok {
            let _ = writeln!(s, "{text}");
        }
    }
    let _ = writeln!(s, "\nBaseline (same run, same database, direct writes)");
    let _ = writeln!(
        s,
        "  1 payment per commit      {:.0}/s ({} payments)",
        single.per_sec(),
        single.payments
    );
    let _ = writeln!(
        s,
        "  {} payments per commit   {:.0}/s ({} payments)",
        batched.per_commit,
        batched.per_sec(),
        batched.payments
    );
    let _ = writeln!(
        s,
        "  AutoPay ÷ baseline 1/commit   {:.2}",
        rate / single.per_sec().max(1e-9)
    );
    let _ = writeln!(
        s,
        "  AutoPay ÷ baseline {}/commit  {:.2}",
        batched.per_commit,
        rate / batched.per_sec().max(1e-9)
    );
    let _ = writeln!(s, "\nTarget: 1,000,000 due accounts in ≤ 120 s on 2 cores");
    let _ = writeln!(
        s,
        "  {} (measured {:.0} accounts in {wall:.1} s; at {rate:.0} charges/s 1,000,000 take {projected:.0} s{})",
        if projected <= TARGET_SECS_PER_MILLION {
            "met"
        } else {
            "NOT MET"
        },
        n,
        if args.accounts == 1_000_000 {
            ""
        } else {
            ", extrapolated linearly"
        }
    );
    let bad = outcome.charged_twice != 0
        || outcome.jobs_left != 0
        || outcome.charged_once != args.accounts as i64
        || outcome.sales != args.accounts as i64
        || verify.as_ref().is_some_and(|v| !v.0);
    if bad {
        let _ = writeln!(
            s,
            "\nFAILED: every account must be charged exactly once and verify must hold"
        );
    }
    Ok(s)
}

// ------------------------------------------------------------------------------------------
// Setup: the rows the services would have written, straight with the store's queries.

async fn load(app: &Billpay, n: usize, per_tx: usize) -> Result<Vec<BenchAccount>> {
    let vault = app
        .vault
        .as_ref()
        .context("the benchmark needs a vault keyring")?;
    let keyring = vault.keyring();
    let fingerprint = keyring.fingerprint("card", CARD);
    let tz_name = "America/New_York";
    let tz = jiff::tz::TimeZone::get(tz_name)?;
    let now = app.clock.now();
    let due = local_date(now, &tz).checked_sub(jiff::Span::new().days(2))?;
    let cfg = &app.config().autopay;
    let charge_at = local_instant(due, cfg.run_time, &tz).as_microsecond();
    let notice_at = local_instant(
        billpay_domain::pre_debit_notice_date(due, cfg.notice_days),
        cfg.run_time,
        &tz,
    )
    .as_microsecond();
    let now_us = now.as_microsecond();
    let mut accounts = Vec::with_capacity(n);
    let mut last_print = Instant::now();
    for start in (0..n).step_by(per_tx) {
        let end = (start + per_tx).min(n);
        let mut batch = Vec::with_capacity(end - start);
        for i in start..end {
            let number = AccountNumber::from_body(&(40_000_000_000u64 + i as u64).to_string())?;
            let account = AccountRow {
                id: app.new_id("acct"),
                account_number: number.as_str().to_string(),
                name: format!("AutoPay Customer {i}"),
                email: Some(format!("customer{i}@example.com")),
                phone: None,
                postal_code: "10001".into(),
                timezone: tz_name.into(),
                currency: "USD".into(),
                service_status: "active".into(),
                created_at: now_us,
                updated_at: now_us,
            };
            let method_id = app.new_id("pm");
            let sealed = keyring
                .seal(&method_id, CARD.as_bytes(), &|b: &mut [u8]| {
                    app.random.fill(b)
                })
                .map_err(|e| anyhow::anyhow!("sealing a card: {e}"))?;
            let method = PaymentMethodRow {
                id: method_id.clone(),
                account_id: account.id.clone(),
                kind: "card".into(),
                brand: Some("visa".into()),
                last4: "4242".into(),
                exp_month: Some(12),
                exp_year: Some(2034),
                postal_code: Some("10001".into()),
                bank_account_type: None,
                routing_number: None,
                holder_name: None,
                bank_name: None,
                nickname: None,
                fingerprint: fingerprint.clone(),
                kek_version: i64::from(sealed.kek_version),
                wrapped_key: sealed.wrapped_key,
                ciphertext: sealed.ciphertext,
                is_default: 1,
                status: "active".into(),
                created_at: now_us,
                updated_at: now_us,
            };
            let enrollment = AutopayRow {
                account_id: account.id.clone(),
                payment_method_id: method_id,
                timing: "due_date".into(),
                days_before: 0,
                maximum: None,
                status: "active".into(),
                channel: "web".into(),
                authorization_text: "You authorize the benchmark biller to charge the card ending in 4242 for each bill.".into(),
                enrolled_at: now_us,
                updated_at: now_us,
            };
            let amount = 5_000 + (i % 10_000) as i64;
            let statement_id = app.new_id("stmt");
            let journal_id = app.new_id("je");
            let statement = StatementRow {
                id: statement_id.clone(),
                account_id: account.id.clone(),
                statement_date: due.to_string(),
                due_date: due.to_string(),
                amount_due: amount,
                currency: "USD".into(),
                lines_json: "[]".into(),
                journal_id: journal_id.clone(),
                created_at: now_us,
            };
            let entry = JournalEntry::statement(&number, Money::usd(amount))?;
            let postings: Vec<(String, i64)> = entry
                .postings()
                .iter()
                .map(|p| (p.ledger_account.clone(), p.amount.minor_units()))
                .collect();
            let journal = JournalRow {
                id: journal_id,
                kind: "statement".into(),
                source_type: "statement".into(),
                source_id: statement_id.clone(),
                account_id: account.id.clone(),
                currency: "USD".into(),
                created_at: now_us,
            };
            // The jobs as `statement_jobs` shapes them; the notice went out days ago.
            let payload = serde_json::json!({
                "account_id": account.id,
                "statement_id": statement_id,
                "attempt": 1,
                "first_attempt": due.to_string(),
            });
            let charge = billpay_services::jobs::job(
                app,
                billpay_services::autopay::JOB_CHARGE,
                format!("autopay:{}:{}:1", account.id, statement_id),
                payload.clone(),
                charge_at,
            );
            let mut notice = billpay_services::jobs::job(
                app,
                billpay_services::autopay::JOB_NOTICE,
                format!("autopay-notice:{}:{}", account.id, statement_id),
                payload,
                notice_at,
            );
            notice.status = "done".into();
            notice.attempts = 1;
            notice.finished_at = Some(notice_at);
            accounts.push(BenchAccount {
                id: account.id.clone(),
                number: account.account_number.clone(),
            });
            batch.push((
                account, method, enrollment, statement, journal, postings, charge, notice,
            ));
        }
        app.store
            .write(move |c| {
                Box::pin(async move {
                    for (
                        account,
                        method,
                        enrollment,
                        statement,
                        journal,
                        postings,
                        charge,
                        notice,
                    ) in &batch
                    {
                        queries::insert_account(c, account).await?;
                        queries::insert_payment_method(c, method).await?;
                        jq::upsert_autopay(c, enrollment).await?;
                        queries::insert_statement(c, statement).await?;
                        queries::insert_journal(c, journal, postings).await?;
                        jq::enqueue(c, charge).await?;
                        jq::enqueue(c, notice).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        if last_print.elapsed() >= PROGRESS_EVERY {
            eprintln!("  {end} accounts loaded");
            last_print = Instant::now();
        }
    }
    Ok(accounts)
}

// ------------------------------------------------------------------------------------------
// The AutoPay run.

async fn run_in_process(app: &Billpay, args: &AutopayArgs) -> Result<RunPhase> {
    eprintln!(
        "AutoPay run: {} due charges, {} job runners",
        args.accounts, args.workers
    );
    let done = Arc::new(AtomicU64::new(0));
    let metrics_before = billpay_http::metrics_handle().render();
    let cpu_before = CpuSnapshot::take();
    let started = Instant::now();
    let mut runners = Vec::new();
    for w in 0..args.workers {
        let app = app.clone();
        let done = done.clone();
        runners.push(tokio::spawn(async move {
            let owner = format!("bench-{w}");
            loop {
                let r = app.run_due_jobs(&owner).await?;
                done.fetch_add(r.done + r.failed, Ordering::Relaxed);
                if r.leased == 0 {
                    return Ok::<_, anyhow::Error>(());
                }
            }
        }));
    }
    let progress = {
        let done = done.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                let n = done.load(Ordering::Relaxed);
                eprintln!(
                    "  {:.0} s: {n} jobs finished ({:.0}/s)",
                    started.elapsed().as_secs_f64(),
                    n as f64 / started.elapsed().as_secs_f64()
                );
            }
        })
    };
    for r in runners {
        r.await??;
    }
    let wall = started.elapsed();
    progress.abort();
    let cpu = CpuSnapshot::take().since(&cpu_before);
    let metrics_after = billpay_http::metrics_handle().render();
    Ok(RunPhase {
        wall,
        cpu: Some(cpu),
        commits: GroupCommits::between(&metrics_before, &metrics_after),
        kill: None,
    })
}

/// A child `billpay worker` on the bench database.
fn start_worker(settings: &Settings, config: &std::path::Path) -> Result<std::process::Child> {
    let exe = std::env::current_exe().context("finding the billpay executable")?;
    let keyring = settings
        .keyring_file
        .as_ref()
        .context("the benchmark's keyring")?;
    std::process::Command::new(exe)
        .arg("worker")
        .env("BILLPAY_DATABASE_URL", &settings.database_url)
        .env("BILLPAY_CONFIG", config)
        .env("BILLPAY_VAULT_KEYRING_FILE", keyring)
        .env_remove("BILLPAY_VAULT_KEYRING")
        .env_remove("BILLPAY_SANDBOX_LATENCY_MS")
        .env("BILLPAY_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("starting billpay worker")
}

async fn paid(c: &mut AnyConnection) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM payments WHERE channel = 'autopay' AND status = 'succeeded'",
    )
    .fetch_one(&mut *c)
    .await?)
}

async fn run_killed_and_resumed(
    settings: &Settings,
    db: &BenchDb,
    args: &AutopayArgs,
    kill_after_secs: u64,
) -> Result<RunPhase> {
    let config = settings
        .keyring_file
        .as_ref()
        .context("the benchmark's keyring")?
        .with_extension("worker.toml");
    std::fs::write(
        &config,
        format!(
            "job_lease_secs = {}\nsandbox_latency_ms = {}\n",
            args.lease_secs, settings.sandbox_latency_ms
        ),
    )?;
    let mut conn = open_baseline_conn(db.url(), db.engine()).await?;
    eprintln!("AutoPay run in a child `billpay worker`; SIGKILL after {kill_after_secs} s");
    let started = Instant::now();
    let mut child = start_worker(settings, &config)?;
    tokio::time::sleep(Duration::from_secs(kill_after_secs)).await;
    child.kill().context("SIGKILL billpay worker")?;
    let _ = child.wait();
    let first = started.elapsed();
    let at_kill = paid(&mut conn).await?;
    eprintln!(
        "killed after {:.1} s with {at_kill} paid; starting it again",
        first.as_secs_f64()
    );
    let second_started = Instant::now();
    let child = start_worker(settings, &config)?;
    let mut last_print = Instant::now();
    loop {
        let left: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE kind = 'autopay.charge' \
             AND status IN ('queued', 'running')",
        )
        .fetch_one(&mut conn)
        .await?;
        if left == 0 {
            break;
        }
        if started.elapsed() > RESUME_WAIT_MAX {
            bail!("{left} charge jobs still left after {RESUME_WAIT_MAX:?}");
        }
        if last_print.elapsed() >= PROGRESS_EVERY {
            eprintln!(
                "  {:.0} s: {} paid, {left} charge jobs left",
                started.elapsed().as_secs_f64(),
                paid(&mut conn).await?
            );
            last_print = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let wall = started.elapsed();
    let second = second_started.elapsed();
    let _ = std::process::Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let mut child = child;
    let _ = child.wait();
    let _ = conn.close().await;
    let _ = std::fs::remove_file(&config);
    Ok(RunPhase {
        wall,
        cpu: None,
        commits: None,
        kill: Some((at_kill, first, second)),
    })
}
