//! `billpay bench ivr`: webhook latency of the phone line under many concurrent calls.
//!
//! Every simulated call is what a caller with a saved card does: the provider's voice webhook,
//! then English, "yes, that is my account", the ZIP code, pay in full, the saved card, confirm
//! (the one turn that calls the processor), then the status callback. Calls start spread over
//! one think time and pause a jittered think time before each key, as a person listening to
//! prompts does, so `--calls` of them are in progress at once. Each webhook is signed exactly
//! as the provider signs it and timed from send to the last byte of the answer.
//!
//! The baseline, measured in the same run with the same clients, pacing and request count, is
//! `GET /healthz` through the same router: the cost of an HTTP round trip on this machine at
//! this concurrency. The figures are the webhook percentiles and their ratio to it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use futures::StreamExt;
use serde_json::json;

use billpay_services::{OsRandom, SystemClock};

use crate::bench::{BenchDb, Machine, bench_keyring, percentile_ms as pct};
use crate::config::{SecretSetting, Settings};
use crate::phone::Phone;

#[derive(Args, Debug, Clone)]
pub struct IvrArgs {
    /// Calls in progress at once (one account with a bill and a saved card each).
    #[arg(long, default_value_t = 1_000)]
    pub calls: usize,
    /// Mean pause before each key, in milliseconds (jittered between half and one and a half
    /// times): the caller listening to the prompt.
    #[arg(long, default_value_t = 2_000)]
    pub think_ms: u64,
    /// Folder for the fresh SQLite database (default: the system's temporary folder).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Keep the benchmark database afterwards.
    #[arg(long)]
    pub keep: bool,
}

const TOKEN: &str = "bench-ivr-twilio-token";
/// Clients asking GET /healthz while the calls run, and their mean pause.
const PROBES: usize = 20;
const PROBE_PAUSE_MS: u64 = 100;
/// What each turn of a call is, for the per-turn table.
const TURN_NAMES: [&str; 8] = [
    "voice (call arrives)",
    "language",
    "yes, my account",
    "ZIP",
    "pay in full",
    "saved card",
    "confirm (pays)",
    "status callback",
];
/// The keys of one call, after the voice webhook: English, yes, ZIP, pay in full, the saved
/// card, confirm.
const KEYS: [&str; 6] = ["1", "1", "10001", "1", "1", "1"];
/// The turn (0 = the voice webhook) whose answer waits for the processor.
const PAY_TURN: usize = 6;

/// A small deterministic generator for jitter (no need for a crate).
struct Jitter(u64);

impl Jitter {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pause(&mut self, mean_ms: u64) -> Duration {
        Duration::from_micros((mean_ms as f64 * 1000.0 * (0.5 + self.next())) as u64)
    }
}

#[derive(Default)]
struct Timings {
    flow_us: Vec<u64>,
    pay_us: Vec<u64>,
    /// The flow webhooks again, by turn (0 = the voice webhook; the last = the status callback).
    by_turn: Vec<Vec<u64>>,
    failures: usize,
    first_failure: Option<String>,
}

impl Timings {
    fn merge(&mut self, o: Timings) {
        self.flow_us.extend(o.flow_us);
        self.pay_us.extend(o.pay_us);
        if self.by_turn.len() < o.by_turn.len() {
            self.by_turn.resize(o.by_turn.len(), Vec::new());
        }
        for (mine, theirs) in self.by_turn.iter_mut().zip(o.by_turn) {
            mine.extend(theirs);
        }
        self.failures += o.failures;
        if self.first_failure.is_none() {
            self.first_failure = o.first_failure;
        }
    }

    fn flow(&mut self, turn: usize, us: u64) {
        self.flow_us.push(us);
        if self.by_turn.len() <= turn {
            self.by_turn.resize(turn + 1, Vec::new());
        }
        self.by_turn[turn].push(us);
    }

    fn fail(&mut self, why: String) {
        self.failures += 1;
        self.first_failure.get_or_insert(why);
    }
}

pub async fn run(args: IvrArgs, settings: &Settings) -> Result<()> {
    if args.calls == 0 {
        bail!("--calls must be at least 1");
    }
    sqlx::any::install_default_drivers();
    let run_id = billpay_services::clock::new_id("run", &SystemClock, &OsRandom);
    let db = BenchDb::create(settings, args.dir.as_ref(), &run_id).await?;
    let result = match bench_keyring(args.dir.as_ref(), &run_id) {
        Ok(keyring) => {
            let r = measure(&args, settings, &db, &keyring).await;
            if !args.keep {
                let _ = std::fs::remove_file(&keyring);
            }
            r
        }
        Err(e) => Err(e),
    };
    db.destroy(args.keep).await?;
    let report = result?;
    println!("{report}");
    Ok(())
}

async fn measure(
    args: &IvrArgs,
    settings: &Settings,
    db: &BenchDb,
    keyring: &std::path::Path,
) -> Result<String> {
    let machine = Machine::read();
    eprintln!("benchmark database: {}", db.describe());
    let mut s = settings.clone();
    s.keyring_file = Some(keyring.to_path_buf());
    s.database_url = db.url().to_string();
    s.twilio_auth_token = Some(SecretSetting(TOKEN.into()));
    s.public_url = None;
    s.agent_hours_start = 0;
    s.agent_hours_end = 24;
    let (app, _sandbox) = crate::build_from_settings(&s, true).await?;
    let (_, secret) = app.create_api_key("bench-ivr").await?;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        axum::serve(listener, billpay_http::router(app.clone()))
            .with_graceful_shutdown(async move {
                let _ = stop_rx.await;
            })
            .into_future(),
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.calls)
        .timeout(Duration::from_secs(120))
        .build()?;

    eprintln!(
        "creating {} accounts, each with a bill and a saved card",
        args.calls
    );
    let today = app
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::get("America/New_York")?)
        .date();
    let accounts = setup(&client, &base, secret.expose_secret(), args.calls, today).await?;

    let requests_per_call = 1 + KEYS.len() + 1;
    eprintln!(
        "baseline: GET /healthz, {} clients x {requests_per_call} requests, {} ms mean pause",
        args.calls, args.think_ms
    );
    let think_ms = args.think_ms;
    let started = Instant::now();
    let baseline = paced(args, |i, mut jitter| {
        let client = client.clone();
        let url = format!("{base}/healthz");
        async move {
            let mut t = Timings::default();
            tokio::time::sleep(jitter.pause(think_ms) / 2).await;
            for turn in 0..requests_per_call {
                if turn > 0 {
                    tokio::time::sleep(jitter.pause(think_ms)).await;
                }
                let at = Instant::now();
                match client.get(&url).send().await {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                        t.flow_us.push(at.elapsed().as_micros() as u64);
                    }
                    Ok(r) => t.fail(format!("client {i}: /healthz answered {}", r.status())),
                    Err(e) => t.fail(format!("client {i}: {e}")),
                }
            }
            t
        }
    })
    .await;
    let baseline_wall = started.elapsed();

    eprintln!(
        "phone line: {} concurrent calls, {} ms mean pause before each key",
        args.calls, args.think_ms
    );
    let started = Instant::now();
    // Beside the calls, a few clients keep asking GET /healthz: what the same machine, runtime
    // and HTTP stack add to any request while the calls are in progress.
    let probing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let probes: Vec<_> = (0..PROBES)
        .map(|i| {
            let (client, url, probing) =
                (client.clone(), format!("{base}/healthz"), probing.clone());
            let mut jitter = Jitter(0x2545_f491_4f6c_dd1d ^ i as u64);
            tokio::spawn(async move {
                let mut us = Vec::new();
                while probing.load(std::sync::atomic::Ordering::Relaxed) {
                    tokio::time::sleep(jitter.pause(PROBE_PAUSE_MS)).await;
                    let at = Instant::now();
                    if let Ok(r) = client.get(&url).send().await {
                        let _ = r.bytes().await;
                        us.push(at.elapsed().as_micros() as u64);
                    }
                }
                us
            })
        })
        .collect();
    let calls = paced(args, |i, mut jitter| {
        let phone = Phone::with_client(
            &base,
            TOKEN,
            &accounts[i].1,
            &format!("CAbench{i:06}"),
            client.clone(),
        );
        async move { one_call(&phone, &mut jitter, think_ms).await }
    })
    .await;
    let calls_wall = started.elapsed();
    probing.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut probe_us = Vec::new();
    for p in probes {
        probe_us.extend(p.await.unwrap_or_default());
    }

    let _ = stop_tx.send(());
    let _ = server.await;

    // Every call paid exactly once, and the books balance.
    let mut conn = app.store.read_conn().await?;
    let payments: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM payments WHERE channel = 'phone' AND status = 'succeeded'",
    )
    .fetch_one(&mut *conn)
    .await?;
    drop(conn);
    let verify = app.verify().await?;
    app.store.close().await;
    if calls.failures > 0 || baseline.failures > 0 {
        bail!(
            "{} calls and {} baseline clients failed; first: {}",
            calls.failures,
            baseline.failures,
            calls
                .first_failure
                .or(baseline.first_failure)
                .unwrap_or_default()
        );
    }
    if payments != args.calls as i64 {
        bail!(
            "{} calls made {payments} phone payments: every call must pay exactly once",
            args.calls
        );
    }

    let (b50, b99) = (pct(&baseline.flow_us, 50.0), pct(&baseline.flow_us, 99.0));
    let (f50, f95, f99, fmax) = (
        pct(&calls.flow_us, 50.0),
        pct(&calls.flow_us, 95.0),
        pct(&calls.flow_us, 99.0),
        pct(&calls.flow_us, 100.0),
    );
    let (p50, p99) = (pct(&calls.pay_us, 50.0), pct(&calls.pay_us, 99.0));
    let (q50, q99) = (pct(&probe_us, 50.0), pct(&probe_us, 99.0));
    let mut turns =
        String::from("\n| turn | webhooks | p50 ms | p99 ms | max ms |\n|---|---|---|---|---|\n");
    for (i, us) in calls.by_turn.iter().enumerate() {
        if us.is_empty() {
            continue;
        }
        turns.push_str(&format!(
            "| {} | {} | {:.2} | {:.2} | {:.2} |\n",
            TURN_NAMES.get(i).copied().unwrap_or("?"),
            us.len(),
            pct(us, 50.0),
            pct(us, 99.0),
            pct(us, 100.0)
        ));
    }
    let ratio = |x: f64, base: f64| if base > 0.0 { x / base } else { 0.0 };
    Ok(format!(
        "## billpay bench ivr\n\n\
         - machine: {} CPUs, {}, {}\n\
         - database: {}\n\
         - {} concurrent calls (one saved-card payment each), {} ms mean pause before each key; \
         calls took {:.1} s, baseline {:.1} s\n\
         - sandbox processor latency: {} ms\n\n\
         | figure | ms | ratio to baseline |\n|---|---|---|\n\
         | baseline GET /healthz p50 | {b50:.2} | 1.00 |\n\
         | baseline GET /healthz p99 | {b99:.2} | 1.00 |\n\
         | GET /healthz during the calls p50 ({} requests) | {q50:.2} | {:.2} |\n\
         | GET /healthz during the calls p99 | {q99:.2} | {:.2} |\n\
         | webhook p50 (no processor call; {} webhooks) | {f50:.2} | {:.2} |\n\
         | webhook p95 | {f95:.2} | {:.2} |\n\
         | **webhook p99** (target <= 5 ms) | {f99:.2} | {:.2} |\n\
         | webhook max | {fmax:.2} | {:.2} |\n\
         | paying webhook p50 (includes the processor call; {} webhooks) | {p50:.2} | {:.2} |\n\
         | paying webhook p99 | {p99:.2} | {:.2} |\n\
         {turns}\n\
         Every call paid once ({payments} phone payments); billpay verify over {} payments: {}.\n",
        machine.cpus,
        machine.model,
        machine.memory,
        db.describe(),
        args.calls,
        args.think_ms,
        calls_wall.as_secs_f64(),
        baseline_wall.as_secs_f64(),
        s.sandbox_latency_ms,
        probe_us.len(),
        ratio(q50, b50),
        ratio(q99, b99),
        calls.flow_us.len(),
        ratio(f50, b50),
        ratio(f95, b99),
        ratio(f99, b99),
        ratio(fmax, b99),
        calls.pay_us.len(),
        ratio(p50, b50),
        ratio(p99, b99),
        verify.payments,
        if verify.ok() {
            "every check passed"
        } else {
            "CHECKS FAILED"
        },
    ))
}

/// Runs `calls` clients at once, each with its own jitter; merges what they measured.
async fn paced<F, Fut>(args: &IvrArgs, client: F) -> Timings
where
    F: Fn(usize, Jitter) -> Fut,
    Fut: std::future::Future<Output = Timings> + Send + 'static,
{
    let handles: Vec<_> = (0..args.calls)
        .map(|i| tokio::spawn(client(i, Jitter(0x9e37_79b9_7f4a_7c15 ^ i as u64))))
        .collect();
    let mut all = Timings::default();
    for h in handles {
        match h.await {
            Ok(t) => all.merge(t),
            Err(e) => all.fail(format!("a client task failed: {e}")),
        }
    }
    all
}

async fn one_call(phone: &Phone, jitter: &mut Jitter, think_ms: u64) -> Timings {
    let mut t = Timings::default();
    // Calls arrive spread over one pause, not all in the same instant.
    tokio::time::sleep(jitter.pause(think_ms) / 2).await;
    let mut path = "/ivr/twilio/voice".to_string();
    let mut digits: Option<&str> = None;
    for turn in 0..=KEYS.len() {
        if turn > 0 {
            tokio::time::sleep(jitter.pause(think_ms)).await;
        }
        let extra: Vec<(&str, &str)> = digits.map(|d| vec![("Digits", d)]).unwrap_or_default();
        let at = Instant::now();
        let (status, body) = match phone.post(&path, &extra).await {
            Ok(r) => r,
            Err(e) => {
                t.fail(format!("{}: {e:#}", phone.call_sid));
                return t;
            }
        };
        let us = at.elapsed().as_micros() as u64;
        if status != 200 {
            t.fail(format!("{} turn {turn}: status {status}", phone.call_sid));
            return t;
        }
        if turn == PAY_TURN {
            t.pay_us.push(us);
            if !body.contains("was approved") {
                t.fail(format!(
                    "{}: the payment was not approved: {body}",
                    phone.call_sid
                ));
            }
            break;
        }
        t.flow(turn, us);
        let next = billpay_ivr::twiml::read(&body)
            .into_iter()
            .find_map(|e| match e {
                billpay_ivr::twiml::Event::Gather { action } => Some(action),
                _ => None,
            });
        let Some(action) = next else {
            t.fail(format!(
                "{} turn {turn}: no Gather in the answer: {body}",
                phone.call_sid
            ));
            return t;
        };
        path = action;
        digits = KEYS.get(turn).copied();
    }
    let at = Instant::now();
    match phone
        .post("/ivr/twilio/status", &[("CallStatus", "completed")])
        .await
    {
        Ok((204, _)) => t.flow(PAY_TURN + 1, at.elapsed().as_micros() as u64),
        Ok((s, _)) => t.fail(format!("{}: status callback answered {s}", phone.call_sid)),
        Err(e) => t.fail(format!("{}: {e:#}", phone.call_sid)),
    }
    t
}

/// `n` accounts (caller id, ZIP 10001), each with a bill due in three weeks and a saved card,
/// made through the API. Returns (account number, caller id).
async fn setup(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    n: usize,
    today: jiff::civil::Date,
) -> Result<Vec<(String, String)>> {
    let statement_date = today.checked_sub(jiff::Span::new().days(2))?;
    let due_date = today.checked_add(jiff::Span::new().days(21))?;
    let made: Vec<Result<(String, String)>> = futures::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move {
                let phone = format!("+1555{:07}", 1_000_000 + i);
                let post = |path: String, body: serde_json::Value| {
                    let client = client.clone();
                    async move {
                        let r = client
                            .post(format!("{base}{path}"))
                            .bearer_auth(key)
                            .json(&body)
                            .send()
                            .await?;
                        let status = r.status();
                        let v: serde_json::Value = r.json().await?;
                        if !status.is_success() {
                            bail!("{path}: {status} {v}");
                        }
                        Ok::<_, anyhow::Error>(v)
                    }
                };
                let a = post(
                    "/api/v1/accounts".into(),
                    json!({"name": format!("Caller {i}"), "phone": phone, "postal_code": "10001"}),
                )
                .await?;
                let number = a["account_number"]
                    .as_str()
                    .context("no account number")?
                    .to_string();
                post(
                    format!("/api/v1/accounts/{number}/statements"),
                    json!({"statement_date": statement_date.to_string(),
                           "due_date": due_date.to_string(), "amount_due": 8410}),
                )
                .await?;
                post(
                    format!("/api/v1/accounts/{number}/payment_methods"),
                    json!({"type": "card", "number": crate::bench::customer_card(i),
                           "exp_month": 12, "exp_year": 2034}),
                )
                .await?;
                Ok((number, phone))
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    let accounts: Vec<(String, String)> = made.into_iter().collect::<Result<_>>()?;
    Ok(accounts)
}
