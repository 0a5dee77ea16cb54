//! Crash test: `kill -9` the real `billpay serve` process again and again while clients post
//! payments, restart it on the same database, and check that
//! - every acknowledged (201) payment is present exactly once, with the same id, confirmation
//!   number and status, and its idempotency key replays it without paying again;
//! - every unacknowledged request, retried with its key, ends in exactly one payment or a clean
//!   "still in progress" answer, never in two payments;
//! - the processor's records agree with the payments;
//! - `billpay reconcile` and `billpay verify` pass.
//!
//! Every request carries a distinct amount and `confirm_duplicate: true`, so each payment row in
//! the database names the one request that made it, and the duplicate guard cannot hide a
//! second execution of the same request.
// The test seeds its randomness and dates its bills from the real clock; billpay itself only
// sees its injected seams.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Engine, TestDb};
use futures::StreamExt;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_billpay");
/// Server lifetimes that end in `kill -9`.
const ROUNDS: usize = 6;
/// Concurrent clients posting payments.
const CLIENTS: usize = 16;
const ACCOUNTS: usize = 4;
/// After the first payment of a round is acknowledged, the server lives this much longer (ms).
const KILL_AFTER_MS: (u64, u64) = (100, 500);
/// Added latency of the sandbox processor: widens the window in which a payment is in doubt.
const SANDBOX_LATENCY_MS: &str = "5";
/// Least number of acknowledged payments over the whole test, so it cannot pass vacuously.
const ACKED_MIN: usize = 50;

/// Small deterministic generator; the seed is printed so a run can be repeated.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A running `billpay serve` (the shared harness's process), killed with SIGKILL on demand.
struct Server {
    process: common::ServerProcess,
    base: String,
}

impl Server {
    async fn start(url: &str, log: &Path) -> Server {
        let (url, log) = (url.to_string(), log.to_path_buf());
        let process = tokio::task::spawn_blocking(move || {
            let keyring = keyring_of(&log);
            common::ServerProcess::start(
                &[
                    "--sandbox-latency-ms",
                    SANDBOX_LATENCY_MS,
                    "--keyring",
                    &keyring,
                ],
                &[("BILLPAY_DATABASE_URL", &url), ("BILLPAY_LOG", "warn")],
                log,
            )
        })
        .await
        .expect("start task")
        .unwrap_or_else(|e| panic!("{e}"));
        let base = format!("http://{}", process.addr);
        Server { process, base }
    }

    /// SIGKILL, and wait for the process to be gone.
    async fn kill9(self) {
        let mut process = self.process;
        let status = tokio::task::spawn_blocking(move || {
            process.child.kill().expect("kill -9 billpay serve");
            process.child.wait().expect("wait for billpay serve")
        })
        .await
        .expect("kill task");
        assert!(
            !status.success(),
            "billpay serve exited cleanly instead of being killed"
        );
    }
}

/// The vault keyring beside the server log, in the test's own folder.
fn keyring_of(log: &Path) -> String {
    log.with_file_name("vault-keyring.toml")
        .display()
        .to_string()
}

fn bin_command() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    for var in common::BILLPAY_ENV_VARS {
        cmd.env_remove(var);
    }
    cmd.env("BILLPAY_LOG", "warn");
    cmd
}

/// Runs a CLI command on the database; returns (exit code, stdout, stderr).
async fn cli(url: &str, args: &[&str]) -> (i32, String, String) {
    let out = bin_command()
        .args(args)
        .args(["--database", url])
        .stdin(Stdio::null())
        .output()
        .await
        .expect("run billpay");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    format!(
        "--- last lines of the server log ---\n{}",
        lines[from..].join("\n")
    )
}

fn client() -> reqwest::Client {
    common::http()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

/// What the client saw for one request.
#[derive(Clone, Debug)]
enum Outcome {
    /// 201. The id and confirmation number are missing only if the body was cut off.
    Acked {
        id: Option<String>,
        confirmation: Option<String>,
    },
    /// 202: the processor's answer was lost.
    InDoubt,
    /// No response: the server died (or was not there).
    Unacked(String),
    /// Any other response.
    Other(u16, String),
}

/// What the database must hold for one request after the retries.
#[derive(Clone, Debug)]
enum Expect {
    /// This payment, succeeded.
    Paid(String),
    /// One payment, still in doubt (its key still in progress).
    InDoubt,
    /// One payment, declined.
    Declined,
}

#[derive(Clone, Debug)]
struct Attempt {
    key: String,
    amount: i64,
    account: String,
    body: Value,
    round: usize,
    outcome: Outcome,
}

async fn post_payment(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
    idem: &str,
    body: &Value,
) -> Answer {
    let resp = http
        .post(format!("{base}/api/v1/payments"))
        .bearer_auth(api_key)
        .header("Idempotency-Key", idem)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    // The status line arrived; a body cut off by the kill is an empty body, not "no answer".
    let text = resp.text().await.unwrap_or_default();
    Ok((status, text))
}

async fn get_json(http: &reqwest::Client, base: &str, api_key: &str, path: &str) -> (u16, Value) {
    let resp = http
        .get(format!("{base}{path}"))
        .bearer_auth(api_key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e:?}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn post_json(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let resp = http
        .post(format!("{base}{path}"))
        .bearer_auth(api_key)
        .json(&body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e:?}"));
    let status = resp.status().as_u16();
    let text = resp.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn classify(status: u16, text: &str) -> Outcome {
    let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    match status {
        201 => Outcome::Acked {
            id: body["id"].as_str().map(str::to_string),
            confirmation: body["confirmation_number"].as_str().map(str::to_string),
        },
        202 => Outcome::InDoubt,
        _ => Outcome::Other(status, text.to_string()),
    }
}

/// What the clients of one round share.
#[derive(Clone)]
struct Load {
    http: reqwest::Client,
    base: String,
    api_key: String,
    round: usize,
    /// Source of the distinct amounts, across rounds.
    next_amount: Arc<AtomicI64>,
    /// Payments acknowledged in this round.
    acked: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

/// The answer to one POST: (status, body), or the transport error when there was none.
type Answer = Result<(u16, String), String>;

/// One client: posts payments one after another until told to stop or the server dies.
async fn client_loop(load: Load, account: String) -> Vec<Attempt> {
    let Load {
        http,
        base,
        api_key,
        round,
        next_amount,
        acked,
        stop,
    } = load;
    let mut done = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let amount = 1_000 + next_amount.fetch_add(1, Ordering::SeqCst);
        let key = common::new_key();
        let body = json!({
            "account_number": account,
            "amount": amount,
            "channel": "web",
            "payment_method": common::card("4242424242424242"),
            "confirm_duplicate": true,
        });
        let (outcome, dead) = match post_payment(&http, &base, &api_key, &key, &body).await {
            Ok((status, text)) => (classify(status, &text), false),
            Err(e) => (Outcome::Unacked(e), true),
        };
        if matches!(outcome, Outcome::Acked { .. }) {
            acked.fetch_add(1, Ordering::SeqCst);
        }
        done.push(Attempt {
            key,
            amount,
            account: account.clone(),
            body,
            round,
            outcome,
        });
        if dead {
            break;
        }
    }
    done
}

/// Every payment of an account, newest first, following `starting_after`.
async fn list_payments(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
    account: &str,
) -> Vec<Value> {
    let mut all: Vec<Value> = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(id) => {
                format!("/api/v1/accounts/{account}/payments?limit=100&starting_after={id}")
            }
            None => format!("/api/v1/accounts/{account}/payments?limit=100"),
        };
        let (s, page) = get_json(http, base, api_key, &path).await;
        assert_eq!(s, 200, "{path}: {page}");
        let data = page["data"].as_array().expect("data").clone();
        let more = page["has_more"].as_bool().expect("has_more");
        after = data
            .last()
            .and_then(|p| p["id"].as_str())
            .map(str::to_string);
        all.extend(data);
        if !more || after.is_none() {
            return all;
        }
    }
}

async fn crash_test(engine: Engine) {
    let started = Instant::now();
    let db = TestDb::new(engine).await;
    let log: PathBuf = db.dir.path().join("server.log");
    let (code, out, err) = cli(&db.url, &["keys", "init", "--keyring", &keyring_of(&log)]).await;
    assert_eq!(code, 0, "billpay keys init: {out}{err}");
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    let mut rng = Rng(seed);
    let mut problems: Vec<String> = Vec::new();

    let (code, out, err) = cli(&db.url, &["apikey", "create", "--name", "crash-test"]).await;
    assert_eq!(code, 0, "apikey create failed: {err}");
    let api_key = out.trim().to_string();
    assert!(
        !api_key.is_empty() && !api_key.contains('\n'),
        "unexpected apikey output: {out:?}"
    );

    // Accounts with bills, on a first server that then dies like the others.
    let server = Server::start(&db.url, &log).await;
    let http = client();
    let today = jiff::Zoned::now().date();
    let due = today.checked_add(jiff::Span::new().days(14)).expect("date");
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        let (s, a) = post_json(
            &http,
            &server.base,
            &api_key,
            "/api/v1/accounts",
            json!({"name": format!("Crash Tester {i}"), "email": "crash@example.com", "postal_code": "10001"}),
        )
        .await;
        assert_eq!(s, 201, "{a}");
        let number = a["account_number"]
            .as_str()
            .expect("account_number")
            .to_string();
        let (s, b) = post_json(
            &http,
            &server.base,
            &api_key,
            &format!("/api/v1/accounts/{number}/statements"),
            json!({"statement_date": today.to_string(), "due_date": due.to_string(), "amount_due": 250_000}),
        )
        .await;
        assert_eq!(s, 201, "{b}");
        accounts.push(number);
    }
    server.kill9().await;

    // Rounds of load, each ended by kill -9.
    let next_amount = Arc::new(AtomicI64::new(0));
    let mut attempts: Vec<Attempt> = Vec::new();
    for round in 0..ROUNDS {
        let server = Server::start(&db.url, &log).await;
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let load = Load {
            http: client(),
            base: server.base.clone(),
            api_key: api_key.clone(),
            round,
            next_amount: next_amount.clone(),
            acked: acked.clone(),
            stop: stop.clone(),
        };
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|i| tokio::spawn(client_loop(load.clone(), accounts[i % ACCOUNTS].clone())))
            .collect();
        // Under load for certain: wait for the first acknowledgment, then a little longer.
        let wait_start = Instant::now();
        while acked.load(Ordering::SeqCst) == 0 && wait_start.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(
            rng.between(KILL_AFTER_MS.0, KILL_AFTER_MS.1),
        ))
        .await;
        stop.store(true, Ordering::SeqCst);
        server.kill9().await;
        let mut in_round = Vec::new();
        for t in tasks {
            in_round.extend(t.await.expect("client task"));
        }
        let acked_n = in_round
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Acked { .. }))
            .count();
        let unacked_n = in_round
            .iter()
            .filter(|a| matches!(a.outcome, Outcome::Unacked(_)))
            .count();
        let first_error = in_round.iter().find_map(|a| match &a.outcome {
            Outcome::Unacked(e) => Some(e.chars().take(100).collect::<String>()),
            _ => None,
        });
        eprintln!(
            "[{engine:?}] round {round}: {acked_n} acknowledged, {unacked_n} unacknowledged at kill -9 (e.g. {})",
            first_error.unwrap_or_default()
        );
        if acked_n == 0 {
            problems.push(format!(
                "round {round}: no payment was acknowledged in 20 s"
            ));
        }
        attempts.extend(in_round);
    }

    // Answers that are not 201/202/no-answer are bugs while the server is up.
    for a in &attempts {
        if let Outcome::Other(status, body) = &a.outcome {
            problems.push(format!(
                "round {}: key {} got {status} under load: {body}",
                a.round, a.key
            ));
        }
        if let Outcome::Acked { id: None, .. } = &a.outcome {
            eprintln!(
                "[{engine:?}] note: key {} was acknowledged but its body was cut off",
                a.key
            );
        }
    }

    // Restart and check.
    let server = Server::start(&db.url, &log).await;
    let http = client();
    let base = server.base.clone();

    // 1. Retry everything that was not acknowledged, with the same key and body.
    let retry: Vec<&Attempt> = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Unacked(_) | Outcome::InDoubt))
        .collect();
    let retried: Vec<(&Attempt, Answer)> = futures::stream::iter(retry.iter().copied())
        .map(|a| {
            let (http, base, api_key) = (&http, &base, &api_key);
            async move { (a, post_payment(http, base, api_key, &a.key, &a.body).await) }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    // amount -> the one payment the database must hold for that request.
    let mut expect: BTreeMap<i64, Expect> = BTreeMap::new();
    let mut in_progress = 0usize;
    let mut retried_ok = 0usize;
    let mut declined = 0usize;
    for (a, r) in &retried {
        match r {
            Ok((201, text)) => {
                let body: Value = serde_json::from_str(text).unwrap_or(Value::Null);
                match body["id"].as_str() {
                    Some(id) => {
                        expect.insert(a.amount, Expect::Paid(id.to_string()));
                        retried_ok += 1;
                    }
                    None => problems.push(format!(
                        "retry of key {} got 201 without an id: {text}",
                        a.key
                    )),
                }
            }
            Ok((202, _)) => {
                expect.insert(a.amount, Expect::InDoubt);
                in_progress += 1;
            }
            Ok((409, text)) if text.contains("request_in_progress") => {
                expect.insert(a.amount, Expect::InDoubt);
                in_progress += 1;
            }
            // An in-doubt payment older than a minute is resolved on retry; one that never
            // reached the processor is declined with processing_error.
            Ok((402, text)) if text.contains("processing_error") => {
                expect.insert(a.amount, Expect::Declined);
                declined += 1;
            }
            Ok((s, text)) => problems.push(format!("retry of key {} got {s}: {text}", a.key)),
            Err(e) => problems.push(format!("retry of key {} failed: {e}", a.key)),
        }
    }

    // 2. Replay every acknowledged request: same payment, never a second one. Retries that
    //    succeeded are replayed too.
    let mut replay: Vec<(&Attempt, Option<String>, Option<String>)> = Vec::new();
    for a in &attempts {
        if let Outcome::Acked { id, confirmation } = &a.outcome {
            replay.push((a, id.clone(), confirmation.clone()));
        }
    }
    for (a, _) in &retried {
        if let Some(Expect::Paid(id)) = expect.get(&a.amount) {
            replay.push((a, Some(id.clone()), None));
        }
    }
    let replayed: Vec<_> = futures::stream::iter(replay.iter())
        .map(|(a, id, conf)| {
            let (http, base, api_key) = (&http, &base, &api_key);
            async move {
                (
                    *a,
                    id.clone(),
                    conf.clone(),
                    post_payment(http, base, api_key, &a.key, &a.body).await,
                )
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    // amount -> (id, confirmation number) of every acknowledged payment.
    let mut acked: BTreeMap<i64, (String, Option<String>)> = BTreeMap::new();
    for (a, id, conf, r) in replayed {
        let body: Value = match &r {
            Ok((201, text)) => serde_json::from_str(text).unwrap_or(Value::Null),
            other => {
                problems.push(format!(
                    "replay of acknowledged key {} got {other:?}",
                    a.key
                ));
                continue;
            }
        };
        let got_id = body["id"].as_str().unwrap_or_default().to_string();
        let got_conf = body["confirmation_number"].as_str().map(str::to_string);
        if let Some(id) = &id
            && *id != got_id
        {
            problems.push(format!(
                "replay of key {} returned payment {got_id}, first answer was {id}",
                a.key
            ));
        }
        if conf.is_some() && conf != got_conf {
            problems.push(format!(
                "replay of key {} returned confirmation {got_conf:?}, first answer was {conf:?}",
                a.key
            ));
        }
        if body["status"] != "succeeded" || body["amount"] != a.amount {
            problems.push(format!("replay of key {} returned {body}", a.key));
        }
        if matches!(a.outcome, Outcome::Acked { .. }) {
            acked.insert(a.amount, (id.unwrap_or(got_id), conf.or(got_conf)));
        }
    }
    let acked_total = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Acked { .. }))
        .count();
    for (amount, (id, _)) in &acked {
        expect.insert(*amount, Expect::Paid(id.clone()));
    }

    // 3. Each acknowledged payment by id and by confirmation number.
    let fetched: Vec<_> = futures::stream::iter(acked.iter())
        .map(|(amount, (id, conf))| {
            let (http, base, api_key) = (&http, &base, &api_key);
            async move {
                let by_id = get_json(http, base, api_key, &format!("/api/v1/payments/{id}")).await;
                let by_conf = match conf {
                    Some(c) => Some(
                        get_json(http, base, api_key, &format!("/api/v1/confirmations/{c}")).await,
                    ),
                    None => None,
                };
                (*amount, id, conf, by_id, by_conf)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    for (amount, id, conf, (s, p), by_conf) in fetched {
        if s != 200 {
            problems.push(format!(
                "acknowledged payment {id} is gone: GET gave {s} {p}"
            ));
            continue;
        }
        if p["status"] != "succeeded"
            || p["amount"] != amount
            || (conf.is_some() && p["confirmation_number"].as_str() != conf.as_deref())
        {
            problems.push(format!(
                "acknowledged payment {id} (amount {amount}, confirmation {conf:?}) now reads {p}"
            ));
        }
        if let Some((s, c)) = by_conf
            && (s != 200 || c["id"] != id.as_str())
        {
            problems.push(format!(
                "confirmation {conf:?} of payment {id} gives {s} {c}"
            ));
        }
    }

    // 4. Every payment in the database, per account: each request made at most one, and each
    //    acknowledged or retried request exactly the one it was told about.
    let by_amount: HashMap<i64, &Attempt> = attempts.iter().map(|a| (a.amount, a)).collect();
    let mut listed: Vec<Value> = Vec::new();
    for account in &accounts {
        listed.extend(list_payments(&http, &base, &api_key, account).await);
    }
    let mut ids = HashSet::new();
    let mut rows: HashMap<i64, Vec<&Value>> = HashMap::new();
    let mut status_count: BTreeMap<String, usize> = BTreeMap::new();
    for p in &listed {
        let id = p["id"].as_str().unwrap_or_default();
        if !ids.insert(id.to_string()) {
            problems.push(format!("payment {id} listed twice"));
        }
        let amount = p["amount"].as_i64().unwrap_or(-1);
        match by_amount.get(&amount) {
            Some(a) if p["account_number"] == a.account.as_str() => {}
            _ => problems.push(format!("payment {id} matches no request: {p}")),
        }
        *status_count
            .entry(p["status"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        if p["status"] != "canceled" {
            rows.entry(amount).or_default().push(p);
        }
    }
    for (amount, ps) in &rows {
        if ps.len() > 1 {
            let key = by_amount.get(amount).map(|a| a.key.as_str()).unwrap_or("?");
            let list: Vec<String> = ps
                .iter()
                .map(|p| format!("{} {}", p["id"], p["status"]))
                .collect();
            problems.push(format!(
                "key {key} (amount {amount}) made {} payments: {}",
                ps.len(),
                list.join(", ")
            ));
        }
    }
    for (amount, want) in &expect {
        let key = by_amount.get(amount).map(|a| a.key.as_str()).unwrap_or("?");
        let have = rows.get(amount).map(Vec::as_slice).unwrap_or_default();
        match (want, have) {
            (Expect::Paid(id), [p]) if p["id"] == id.as_str() && p["status"] == "succeeded" => {}
            (Expect::InDoubt, [p]) if p["status"] == "processing" => {}
            (Expect::Declined, [p]) if p["status"] == "failed" => {}
            _ => {
                let list: Vec<String> = have
                    .iter()
                    .map(|p| format!("{} {}", p["id"], p["status"]))
                    .collect();
                problems.push(format!(
                    "key {key} (amount {amount}): expected {want:?}, the database lists [{}]",
                    list.join(", ")
                ));
            }
        }
    }
    server.kill9().await;

    // 5. The processor charged each payment at most once, and exactly the succeeded ones.
    sqlx::any::install_default_drivers();
    {
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&db.url)
            .await
            .expect("open the database");
        // (payment id, status, amount, charge outcome, charged amount)
        type ChargeRow = (String, String, i64, Option<String>, Option<i64>);
        let charged: Vec<ChargeRow> = sqlx::query_as(
            "SELECT p.id, p.status, p.amount, s.outcome, s.amount FROM payments p \
             LEFT JOIN sandbox_transactions s ON s.processor_key = p.processor_key",
        )
        .fetch_all(&mut c)
        .await
        .expect("payments and charges");
        for (id, status, amount, outcome, charged) in &charged {
            let ok = match status.as_str() {
                "succeeded" => outcome.as_deref() == Some("succeeded") && *charged == Some(*amount),
                "processing" => {
                    outcome.is_none()
                        || (outcome.as_deref() == Some("succeeded") && *charged == Some(*amount))
                }
                _ => outcome.as_deref() != Some("succeeded"),
            };
            if !ok {
                problems.push(format!("payment {id} is {status} ({amount}) but the processor shows {outcome:?} {charged:?}"));
            }
        }
        let orphans: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sandbox_transactions s \
             WHERE NOT EXISTS (SELECT 1 FROM payments p WHERE p.processor_key = s.processor_key)",
        )
        .fetch_one(&mut c)
        .await
        .expect("orphan charges");
        if orphans != 0 {
            problems.push(format!("{orphans} processor charges belong to no payment"));
        }
        if charged.len() != listed.len() {
            problems.push(format!(
                "the database holds {} payments, the API lists {}",
                charged.len(),
                listed.len()
            ));
        }
        let _ = c.close().await;
    }

    // 6. With the server down, resolve every payment left in doubt by the kills (asking the
    //    processor by key), then verify. Each must end succeeded exactly when it was charged.
    let (code, out, err) = cli(&db.url, &["reconcile", "--in-doubt-after-secs", "0"]).await;
    if code != 0 {
        problems.push(format!("billpay reconcile exited {code}:\n{out}{err}"));
    }
    {
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&db.url)
            .await
            .expect("open the database");
        let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT p.id, p.status, s.outcome FROM payments p \
             LEFT JOIN sandbox_transactions s ON s.processor_key = p.processor_key",
        )
        .fetch_all(&mut c)
        .await
        .expect("payments after reconcile");
        for (id, status, outcome) in &rows {
            let charged = outcome.as_deref() == Some("succeeded");
            let ok = match status.as_str() {
                "succeeded" => charged,
                "failed" | "canceled" => !charged,
                _ => false,
            };
            if !ok {
                problems.push(format!(
                    "after reconcile, payment {id} is {status} and the processor shows {outcome:?}"
                ));
            }
        }
        let _ = c.close().await;
    }
    let (code, report, err) = cli(&db.url, &["verify"]).await;
    if code != 0 {
        problems.push(format!("billpay verify exited {code}:\n{report}{err}"));
    }

    let unacked_total = attempts
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Unacked(_)))
        .count();
    eprintln!(
        "[{engine:?}] seed {seed}: {ROUNDS} rounds of kill -9, {} requests, {acked_total} acknowledged, \
         {unacked_total} unacknowledged (retried: {retried_ok} paid, {in_progress} still in doubt, {declined} declined), \
         {} payments in the database {status_count:?}, {:.1} s",
        attempts.len(),
        listed.len(),
        started.elapsed().as_secs_f64()
    );
    if acked_total < ACKED_MIN {
        problems.push(format!(
            "only {acked_total} payments were acknowledged; the test needs {ACKED_MIN}"
        ));
    }
    if unacked_total == 0 {
        problems.push("no request was in flight at any kill -9".into());
    }
    if !problems.is_empty() {
        eprintln!("{}", log_tail(&log));
        panic!(
            "{} problems after kill -9 (seed {seed}):\n{}",
            problems.len(),
            problems.join("\n")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    crash_test(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    crash_test(Engine::Postgres).await;
}
