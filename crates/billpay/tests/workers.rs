//! Two `billpay worker` processes on one PostgreSQL database, and a `kill -9` of one of them in
//! the middle of an AutoPay batch.
//!
//! Every enrolled account has a bill whose charge time has passed, so every charge job is due
//! at once. Two real worker processes lease from the same `jobs` table (`FOR UPDATE SKIP
//! LOCKED`); one is killed with SIGKILL once some payments exist but not all, with processor
//! calls in flight (the sandbox answers after 50 ms). The survivor takes the dead worker's
//! jobs when their 3 s leases run out.
//!
//! Asserted: no account ever has two succeeded AutoPay payments (checked throughout), every
//! account is paid exactly once for its bill, the processor's sales equal the succeeded
//! payments, no job is left queued, running or failed, `billpay verify` holds, and `billpay
//! jobs` lists `autopay.charge done`. A charge whose processor call the kill cut off is
//! resolved by its key when its job runs again (its re-run looks at its own key before working
//! out what is owed): charged, it is recorded; never charged, it fails with a processing error
//! and the retry pays.

// The workers are separate processes on the real clock: the test reads the same clock to know
// which jobs are due for them.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use serde_json::json;

/// Accounts enrolled in AutoPay, each with one bill due.
const ACCOUNTS: usize = 400;
/// Lease length of the workers, in seconds: a dead worker's jobs are taken after this.
const LEASE_SECS: u64 = 3;
/// Added latency of the sandbox processor in the workers: keeps calls in flight at the kill.
const SANDBOX_LATENCY_MS: u64 = 50;
/// Payments that must exist before the kill (and fewer than all of them).
const KILL_AFTER_PAYMENTS: i64 = 40;
/// AutoPay charges each worker takes at once.
const CHARGE_BATCH: usize = 20;
/// Upper bound on the whole run of the workers.
const RUN_SECS_MAX: u64 = 120;
/// Rounds of the in-process runner over jobs left for later (in-doubt retries).
const CATCH_UP_ROUNDS_MAX: usize = 8;

fn bill_cents(i: usize) -> i64 {
    5_000 + i as i64
}

/// A `billpay worker` child process, killed and reaped if the test fails first.
struct Worker(Option<Child>);

impl Worker {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("worker process")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn worker(db: &TestDb, config: &std::path::Path, log: &std::path::Path) -> Worker {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_billpay"));
    cmd.arg("worker");
    for var in BILLPAY_ENV_VARS {
        cmd.env_remove(var);
    }
    let keyring = db.dir.path().join("vault-keyring.toml");
    let stderr = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .expect("worker log");
    cmd.env("BILLPAY_DATABASE_URL", &db.url)
        .env("BILLPAY_CONFIG", config)
        .env("BILLPAY_VAULT_KEYRING_FILE", keyring)
        .env("BILLPAY_SANDBOX_LATENCY_MS", SANDBOX_LATENCY_MS.to_string())
        .env("BILLPAY_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map(|c| Worker(Some(c)))
        .expect("start billpay worker")
}

/// Ctrl-C, as an operator stops a worker; then wait for it to exit.
fn interrupt(mut worker: Worker) {
    let child = worker.child();
    let _ = Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("billpay worker did not stop within 30 s of Ctrl-C");
}

async fn scalar(app: &TestApp, sql: &'static str) -> i64 {
    let mut c = app.app.store.read_conn().await.expect("conn");
    sqlx::query_scalar::<_, i64>(sql)
        .fetch_one(&mut *c)
        .await
        .expect(sql)
}

async fn succeeded_autopay(app: &TestApp) -> i64 {
    scalar(
        app,
        "SELECT COUNT(*) FROM payments WHERE channel = 'autopay' AND status = 'succeeded'",
    )
    .await
}

/// Accounts with more than one succeeded AutoPay payment: must stay 0 at every moment.
async fn doubly_charged(app: &TestApp) -> i64 {
    scalar(
        app,
        "SELECT COUNT(*) FROM (SELECT account_id FROM payments \
         WHERE channel = 'autopay' AND status = 'succeeded' \
         GROUP BY account_id HAVING COUNT(*) > 1) AS twice",
    )
    .await
}

/// Jobs a worker could still take now: running (leased) or queued and due.
async fn runnable_jobs(app: &TestApp) -> i64 {
    let now = jiff::Timestamp::now().as_microsecond();
    let mut c = app.app.store.read_conn().await.expect("conn");
    sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM jobs WHERE status = 'running' \
         OR (status = 'queued' AND run_at <= $1)",
    )
    .bind(now)
    .fetch_one(&mut *c)
    .await
    .expect("runnable jobs")
}

/// Sets up one enrolled account with a card and a bill whose charge time has passed; returns
/// its number and bill.
async fn enrolled_account(app: &TestApp, i: usize, due: jiff::civil::Date) -> (String, i64) {
    let (s, a) = app
        .post(
            "/api/v1/accounts",
            json!({"name": format!("Worker Test {i}"), "email": "pat@example.com", "postal_code": "10001"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let number = a["account_number"].as_str().expect("number").to_string();
    let (s, m) = app
        .post(
            &format!("/api/v1/accounts/{number}/payment_methods"),
            card("4242424242424242"),
        )
        .await;
    assert!(s == 201 || s == 200, "{m}");
    let (s, e) = app
        .put(
            &format!("/api/v1/accounts/{number}/autopay"),
            json!({"payment_method": m["id"]}),
        )
        .await;
    assert_eq!(s, 200, "{e}");
    // Enrolled first, so the bill (due two days ago) schedules its charge job for 06:00 on
    // its due date: already past, so every job is due now.
    let (s, b) = app
        .post(
            &format!("/api/v1/accounts/{number}/statements"),
            json!({"statement_date": due.to_string(), "due_date": due.to_string(), "amount_due": bill_cents(i)}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    (number, bill_cents(i))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_one_killed_mid_batch_charge_every_account_once() {
    let app = spawn_app_with(Engine::Postgres, |s| s.job_lease_secs = LEASE_SECS).await;
    let due = jiff::Zoned::now()
        .date()
        .checked_sub(jiff::Span::new().days(2))
        .expect("date");
    let app_ref = &app;
    let bills: HashMap<String, i64> = futures::stream::iter(0..ACCOUNTS)
        .map(|i| async move { enrolled_account(app_ref, i, due).await })
        .buffer_unordered(16)
        .collect()
        .await;
    assert_eq!(bills.len(), ACCOUNTS);
    assert_eq!(
        scalar(
            &app,
            "SELECT COUNT(*) FROM jobs WHERE kind = 'autopay.charge' AND status = 'queued'"
        )
        .await,
        ACCOUNTS as i64
    );

    let config = app.db.dir.path().join("worker.toml");
    std::fs::write(
        &config,
        // Small AutoPay batches, so the kill lands with some batches done and one in flight.
        format!(
            "job_lease_secs = {LEASE_SECS}\nsandbox_latency_ms = {SANDBOX_LATENCY_MS}\n\
             [autopay]\ncharge_batch = {CHARGE_BATCH}\n"
        ),
    )
    .expect("config");
    let log_a = app.db.dir.path().join("worker-a.log");
    let log_b = app.db.dir.path().join("worker-b.log");
    let started = Instant::now();
    let mut victim = worker(&app.db, &config, &log_a);
    let survivor = worker(&app.db, &config, &log_b);

    // kill -9 one worker once some payments exist, but not all.
    let at_kill = loop {
        let paid = succeeded_autopay(&app).await;
        if paid >= KILL_AFTER_PAYMENTS {
            victim.child().kill().expect("kill -9 the worker");
            let _ = victim.child().wait();
            break paid;
        }
        assert!(
            started.elapsed() < Duration::from_secs(RUN_SECS_MAX),
            "no AutoPay payment within {RUN_SECS_MAX} s; worker logs:\n{}\n{}",
            std::fs::read_to_string(&log_a).unwrap_or_default(),
            std::fs::read_to_string(&log_b).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let in_flight_at_kill = scalar(
        &app,
        "SELECT COUNT(*) FROM payments WHERE channel = 'autopay' AND status = 'processing'",
    )
    .await;
    assert!(
        at_kill < ACCOUNTS as i64,
        "every account was paid before the kill ({at_kill}); the kill must land mid-batch"
    );

    // The survivor runs everything it can: its own jobs, and the dead worker's once their
    // leases run out. A charge left in doubt by the kill is retried later (backoff), so the
    // survivor is done when no job is running and none queued is due.
    let mut quiet_since: Option<Instant> = None;
    loop {
        assert_eq!(
            doubly_charged(&app).await,
            0,
            "an account has two succeeded AutoPay payments"
        );
        if runnable_jobs(&app).await == 0 {
            // Quiet for longer than a lease: nothing left that a live worker would take.
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(1) {
                break;
            }
        } else {
            quiet_since = None;
        }
        assert!(
            started.elapsed() < Duration::from_secs(RUN_SECS_MAX),
            "jobs still running after {RUN_SECS_MAX} s; survivor log:\n{}",
            std::fs::read_to_string(&log_b).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let survivor_secs = started.elapsed().as_secs_f64();
    interrupt(survivor);
    let by_survivor = succeeded_autopay(&app).await;

    // Jobs the survivor left for later are in-doubt charges waiting for their retry. Run them
    // as a worker would once their time comes: the app's clock moves past their retry time
    // (and past `in_doubt_after`), and the same job runner resolves each payment by its key.
    let mut rounds = 0;
    loop {
        let next = {
            let mut c = app.app.store.read_conn().await.expect("conn");
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(run_at) FROM jobs WHERE status = 'queued'",
            )
            .fetch_one(&mut *c)
            .await
            .expect("next run")
        };
        let Some(run_at) = next else { break };
        rounds += 1;
        assert!(
            rounds <= CATCH_UP_ROUNDS_MAX,
            "jobs still queued after {CATCH_UP_ROUNDS_MAX} rounds"
        );
        let now = billpay_services::Clock::now(app.clock.as_ref()).as_microsecond();
        let target = run_at.max(now) + 120_000_000;
        app.clock
            .advance(jiff::SignedDuration::from_micros(target - now));
        app.app.drain_jobs("catch-up").await.expect("drain");
        assert_eq!(doubly_charged(&app).await, 0);
    }

    // Anything still in doubt is resolved by its key (the reconciler asks the processor; it
    // never charges) once the payment is older than `in_doubt_after`.
    let in_doubt_left = scalar(
        &app,
        "SELECT COUNT(*) FROM payments WHERE channel = 'autopay' AND status = 'processing'",
    )
    .await;
    app.clock.advance(jiff::SignedDuration::from_mins(5));
    app.app.reconcile().await.expect("reconcile");
    assert_eq!(doubly_charged(&app).await, 0);

    // Every account paid exactly once, for its bill.
    let rows: Vec<(String, String, i64, Option<String>)> = {
        let mut c = app.app.store.read_conn().await.expect("conn");
        sqlx::query_as(
            "SELECT a.account_number, p.status, p.amount, p.decline_code \
             FROM payments p JOIN accounts a ON a.id = p.account_id WHERE p.channel = 'autopay'",
        )
        .fetch_all(&mut *c)
        .await
        .expect("payments")
    };
    let mut succeeded: HashMap<&str, Vec<i64>> = HashMap::new();
    let mut others = Vec::new();
    for (account, status, amount, code) in &rows {
        if status == "succeeded" {
            succeeded.entry(account).or_default().push(*amount);
        } else {
            others.push((account.clone(), status.clone(), code.clone()));
        }
    }
    // Nobody is charged twice, and no charge is for more than the bill.
    for (account, paid) in &succeeded {
        assert_eq!(paid.len(), 1, "account {account}: {paid:?}");
        assert_eq!(Some(&paid[0]), bills.get(*account), "account {account}");
    }
    // Every account is paid: a charge the kill cut off is resolved by its key when its job
    // runs again (charged: recorded; never charged: failed with a processing error, and the
    // retry pays).
    let unpaid: Vec<&String> = bills
        .keys()
        .filter(|a| !succeeded.contains_key(a.as_str()))
        .collect();
    assert!(
        unpaid.is_empty(),
        "unpaid after the kill: {unpaid:?} ({in_doubt_left} were in doubt): {others:?}"
    );
    // A payment cut off before the processor saw it is resolved as never charged (a processing
    // error), and the retry attempt pays; nothing else may be left.
    for (account, status, code) in &others {
        assert!(
            status == "failed" && code.as_deref() == Some("processing_error"),
            "account {account}: AutoPay payment {status} {code:?}"
        );
    }
    let mut c = app.app.store.read_conn().await.expect("conn");
    let sales = billpay_store::queries::sandbox_count(&mut c, "sale")
        .await
        .expect("sales");
    drop(c);
    assert_eq!(
        sales,
        succeeded.len() as i64,
        "processor sales = succeeded AutoPay payments"
    );
    for (status, want) in [("queued", 0), ("running", 0), ("failed", 0)] {
        let mut c = app.app.store.read_conn().await.expect("conn");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE status = $1")
            .bind(status)
            .fetch_one(&mut *c)
            .await
            .expect("jobs");
        assert_eq!(n, want, "jobs {status}");
    }
    app.assert_verified().await;

    // The operator's view, from the real command.
    let mut jobs = Command::new(env!("CARGO_BIN_EXE_billpay"));
    for var in BILLPAY_ENV_VARS {
        jobs.env_remove(var);
    }
    let out = jobs
        .arg("jobs")
        .env("BILLPAY_DATABASE_URL", &app.db.url)
        .env(
            "BILLPAY_VAULT_KEYRING_FILE",
            app.db.dir.path().join("vault-keyring.toml"),
        )
        .env("BILLPAY_LOG", "warn")
        .output()
        .expect("billpay jobs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "billpay jobs: {text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("autopay.charge\tdone\t")),
        "billpay jobs lists every charge done:\n{text}"
    );
    eprintln!(
        "{ACCOUNTS} accounts: kill -9 at {at_kill} paid ({in_flight_at_kill} in flight); survivor \
         done at {survivor_secs:.1} s with {by_survivor} paid; {} catch-up rounds; \
         {in_doubt_left} left in doubt, {} resolved as never charged, {} accounts unpaid",
        rounds,
        others.len(),
        unpaid.len()
    );
}
