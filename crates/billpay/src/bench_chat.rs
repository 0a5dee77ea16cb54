//! `billpay bench chat`: many customers connected to live chat at once, and how fast a
//! representative's message reaches the customer's open event stream.
//!
//! Setup: `--sessions` portal sessions, each with a verified account and a conversation
//! (through the same service calls the chat page makes). Each opens `GET /chat/events` (the
//! server-sent event stream the page's script keeps open) and stays connected. Then
//! `--messages` messages are stored one at a time into random conversations, as a
//! representative's reply is (`chat_append`: masking, numbering, storage, announcement), paced
//! at `--rate` per second; each is timed from just before the store call to the moment the
//! customer's stream delivers it. The process's resident memory is read before and after the
//! sessions connect. Clients and server share the process and its cores.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Args;
use tokio::sync::Mutex;

use billpay_domain::{AccountNumber, Money, PostalCode};
use billpay_services::accounts::{NewAccount, NewStatement};
use billpay_services::chat::{NewMessage, Sender};
use billpay_services::{OsRandom, Random, SystemClock};

use crate::bench::{BenchDb, Machine, bench_keyring, percentile_ms as pct};
use crate::config::Settings;

#[derive(Args, Debug, Clone)]
pub struct ChatArgs {
    /// Customers connected at once (each an open event stream).
    #[arg(long, default_value_t = 10_000)]
    pub sessions: usize,
    /// Messages delivered and timed.
    #[arg(long, default_value_t = 2_000)]
    pub messages: usize,
    /// Messages stored per second.
    #[arg(long, default_value_t = 100)]
    pub rate: u64,
    /// Folder for the fresh SQLite database (default: the system's temporary folder).
    #[arg(long)]
    pub dir: Option<std::path::PathBuf>,
    /// Keep the benchmark database afterwards.
    #[arg(long)]
    pub keep: bool,
}

/// Accounts the sessions are spread over (a conversation per session either way).
const ACCOUNTS: usize = 100;
/// Streams opened at once while connecting.
const CONNECT_WAVE: usize = 200;
/// Messages timed for the one-stream baseline.
const BASELINE_MESSAGES_MAX: usize = 200;
/// Baseline messages are numbered from here, apart from the measured ones (under 13 digits:
/// a longer Luhn-valid marker would be masked as a card number).
const BASELINE_MARKER: usize = 1_000_000_000;
/// GET round trips timed for the plain-request baseline.
const GET_ROUND_TRIPS: usize = 200;
/// Longest wait before a closed stream connects again.
const RECONNECT_PAUSE_MS: u64 = 100;

pub async fn run(args: ChatArgs, settings: &Settings) -> Result<()> {
    if args.sessions == 0 || args.messages == 0 || args.rate == 0 {
        bail!("--sessions, --messages and --rate must be at least 1");
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
    println!("{}", result?);
    Ok(())
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

async fn measure(
    args: &ChatArgs,
    settings: &Settings,
    db: &BenchDb,
    keyring: &std::path::Path,
) -> Result<String> {
    let machine = Machine::read();
    eprintln!("benchmark database: {}", db.describe());
    let mut s = settings.clone();
    s.keyring_file = Some(keyring.to_path_buf());
    s.database_url = db.url().to_string();
    let (app, _sandbox) = crate::build_from_settings(&s, true).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    tokio::spawn(axum::serve(listener, billpay_http::router(app.clone())).into_future());

    eprintln!(
        "creating {ACCOUNTS} accounts and {} conversations",
        args.sessions
    );
    let today = app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let zip = PostalCode::parse("10001")?;
    let mut numbers = Vec::new();
    for i in 0..ACCOUNTS {
        let number = AccountNumber::from_body(&format!("{}", 30_000_000_000u64 + i as u64))?;
        app.create_account(NewAccount {
            account_number: Some(number.clone()),
            name: format!("Bench Customer {i}"),
            email: None,
            phone: None,
            postal_code: zip.clone(),
            timezone: None,
            currency: None,
        })
        .await?;
        app.create_statement(
            &number,
            NewStatement {
                statement_date: today,
                due_date: today.checked_add(jiff::Span::new().days(14))?,
                amount_due: Money::usd(5_000),
                lines: Vec::new(),
            },
        )
        .await?;
        numbers.push(number);
    }
    let started = Instant::now();
    let mut sessions: Vec<(String, String)> = Vec::with_capacity(args.sessions);
    for i in 0..args.sessions {
        let (_, session) = app.portal_start_session().await?;
        let number = &numbers[i % ACCOUNTS];
        let Ok((token, conversation)) = app
            .chat_start(&session, "Bench Customer", number.as_str(), "10001")
            .await?
        else {
            bail!("a bench conversation could not start");
        };
        let token = token.ok_or_else(|| anyhow::anyhow!("no session token"))?;
        sessions.push((token.expose().to_string(), conversation.id));
    }
    eprintln!(
        "{} conversations in {:.1} s",
        args.sessions,
        started.elapsed().as_secs_f64()
    );

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    // Delivery times by marker, filled by the stream readers.
    let arrived: Arc<Mutex<HashMap<usize, Instant>>> = Arc::default();
    let reconnects = Arc::new(AtomicUsize::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);

    // Same-run baselines, before the crowd connects: a plain GET round trip, and the delivery
    // latency of the same messages with one open stream.
    let get_idle_us = get_round_trips(&client, &base).await;
    let baseline_messages = args.messages.min(BASELINE_MESSAGES_MAX);
    let (_, session) = app.portal_start_session().await?;
    let Ok((token, conversation)) = app
        .chat_start(&session, "Bench Baseline", numbers[0].as_str(), "10001")
        .await?
    else {
        bail!("the baseline conversation could not start");
    };
    let token = token.ok_or_else(|| anyhow::anyhow!("no session token"))?;
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<(usize, bool)>(1);
    let (stop_baseline, baseline_stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(read_stream(
        client.clone(),
        base.clone(),
        token.expose().to_string(),
        arrived.clone(),
        Some((0, ready_tx)),
        baseline_stop_rx,
        reconnects.clone(),
    ));
    if ready_rx.recv().await.map(|(_, ok)| ok) != Some(true) {
        bail!("the baseline stream did not open");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pause = Duration::from_micros(1_000_000 / args.rate);
    let one_session_us = send_and_time(
        &app,
        &arrived,
        baseline_messages,
        pause,
        BASELINE_MARKER,
        |_| conversation.id.clone(),
    )
    .await?
    .0;
    // Its two sockets go back to the process's file-descriptor budget for the crowd.
    let _ = stop_baseline.send(true);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let rss_before = rss_mib();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<(usize, bool)>(args.sessions);
    let mut open: Vec<usize> = Vec::with_capacity(args.sessions);
    let mut refused = 0usize;
    // Connected in waves, so the listen backlog never overflows (a real crowd arrives over
    // time; a burst of thousands of SYNs at once measures the kernel, not billpay).
    for (n, (token, _)) in sessions.iter().enumerate() {
        tokio::spawn(read_stream(
            client.clone(),
            base.clone(),
            token.clone(),
            arrived.clone(),
            Some((n, ready_tx.clone())),
            stop_rx.clone(),
            reconnects.clone(),
        ));
        if (n + 1) % CONNECT_WAVE == 0 {
            while open.len() + refused < n + 1 {
                match ready_rx.recv().await {
                    Some((i, true)) => open.push(i),
                    Some((_, false)) => refused += 1,
                    None => break,
                }
            }
        }
    }
    drop(ready_tx);
    while open.len() + refused < sessions.len() {
        match ready_rx.recv().await {
            Some((i, true)) => open.push(i),
            Some((_, false)) => refused += 1,
            None => break,
        }
    }
    let connected = open.len();
    if connected == 0 {
        bail!("no stream opened");
    }
    // Let every stream reach its wait for announcements.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_connected = rss_mib();
    let get_busy_us = get_round_trips(&client, &base).await;
    eprintln!(
        "{connected} streams open ({refused} refused); sending {} messages",
        args.messages
    );
    // Replies go to conversations whose customer is connected (a refused stream, over the
    // process's file-descriptor limit, is reported, not counted as a lost message).
    let mut pick_random = |_: usize| {
        let mut pick = [0u8; 8];
        OsRandom.fill(&mut pick);
        let i = open[(u64::from_le_bytes(pick) as usize) % open.len()];
        sessions[i].1.clone()
    };
    let (latencies_us, send_wall) =
        send_and_time(&app, &arrived, args.messages, pause, 0, &mut pick_random).await?;
    let _ = stop_tx.send(true);
    let lost = args.messages - latencies_us.len();
    let rss_after = rss_mib();
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    let p99 = pct(&latencies_us, 99.0);
    let p99_one = pct(&one_session_us, 99.0);
    Ok(format!(
        "\nbillpay bench chat ({engine}, {cpus} CPUs: {model}, {memory})\n\n\
         sessions connected:  {connected} of {sessions} ({refused} refused); \
         {reconnects} reconnects with Last-Event-ID\n\
         messages:            {messages} at {rate}/s over {wall:.1} s; {lost} not delivered\n\
         delivery latency:    p50 {p50:.1} ms, p90 {p90:.1} ms, p99 {p99:.1} ms, max {max:.1} ms\n\
         baseline, 1 stream:  {base_n} messages at {rate}/s: p50 {b50:.1} ms, p99 {b99:.1} ms \
         (p99 with {connected} streams is {r_one:.1}x)\n\
         GET /healthz:        p99 {g_idle:.2} ms before the streams, {g_busy:.2} ms with them \
         open (delivery p99 is {r_get:.0}x an idle GET)\n\
         resident memory:     {before:.0} MiB before the streams, {conn:.0} MiB with them open \
         ({per_session:.1} KiB per session, client side included), {after:.0} MiB at the end\n",
        engine = db.engine().as_str(),
        cpus = machine.cpus,
        model = machine.model,
        memory = machine.memory,
        sessions = args.sessions,
        messages = args.messages,
        rate = args.rate,
        wall = send_wall.as_secs_f64(),
        p50 = pct(&latencies_us, 50.0),
        p90 = pct(&latencies_us, 90.0),
        p99 = p99,
        reconnects = reconnects.load(Ordering::Relaxed),
        base_n = one_session_us.len(),
        b50 = pct(&one_session_us, 50.0),
        b99 = p99_one,
        r_one = ratio(p99, p99_one),
        g_idle = pct(&get_idle_us, 99.0),
        g_busy = pct(&get_busy_us, 99.0),
        r_get = ratio(p99, pct(&get_idle_us, 99.0)),
        max = latencies_us.last().copied().unwrap_or(0) as f64 / 1000.0,
        before = rss_before,
        conn = rss_connected,
        per_session = (rss_connected - rss_before) * 1024.0 / connected.max(1) as f64,
        after = rss_after,
    ))
}

/// One customer's page: keeps `GET /chat/events` open like a browser's `EventSource`, which
/// reconnects when the server ends the stream (`STREAM_SECS_MAX`) and sends the number of the
/// last event it has (`Last-Event-ID`), so every message arrives. Records when each marker
/// arrives. `ready` hears (with the session's index) whether the first connection opened.
async fn read_stream(
    client: reqwest::Client,
    base: String,
    token: String,
    arrived: Arc<Mutex<HashMap<usize, Instant>>>,
    mut ready: Option<(usize, tokio::sync::mpsc::Sender<(usize, bool)>)>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    reconnects: Arc<AtomicUsize>,
) {
    let cookie = format!("billpay_session={token}");
    let mut last_id: i64 = 1;
    loop {
        let req = client
            .get(format!("{base}/chat/events"))
            .header("cookie", &cookie)
            .header("last-event-id", last_id.to_string());
        let resp = tokio::select! {
            r = req.send() => r,
            _ = stop.changed() => return,
        };
        let ok = matches!(&resp, Ok(r) if r.status().is_success());
        if let Some((index, r)) = ready.take() {
            let _ = r.send((index, ok)).await;
            if !ok {
                return;
            }
        }
        if let Ok(mut resp) = resp.and_then(|r| r.error_for_status()) {
            let mut buf = String::new();
            loop {
                let chunk = tokio::select! {
                    c = resp.chunk() => c,
                    _ = stop.changed() => return,
                };
                let Ok(Some(chunk)) = chunk else { break };
                let now = Instant::now();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find('\n') {
                    let line: String = buf.drain(..=end).collect();
                    if let Some(id) = line.strip_prefix("id: ") {
                        last_id = id.trim().parse().unwrap_or(last_id);
                    } else if let Some(i) = line.find("bench-marker-") {
                        let rest = &line[i + "bench-marker-".len()..];
                        let digits: String =
                            rest.chars().take_while(char::is_ascii_digit).collect();
                        if let Ok(k) = digits.parse::<usize>() {
                            arrived.lock().await.insert(k, now);
                        }
                    }
                }
            }
        }
        if *stop.borrow() {
            return;
        }
        reconnects.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
    }
}

/// Stores `count` representative replies (markers from `first_marker`) into the
/// conversations `pick` names, paced by `pause`, and returns the delivery latencies of those
/// that arrived within 2 s of the last one (sorted, in microseconds) and the sending time.
async fn send_and_time(
    app: &billpay_services::Billpay,
    arrived: &Arc<Mutex<HashMap<usize, Instant>>>,
    count: usize,
    pause: Duration,
    first_marker: usize,
    mut pick: impl FnMut(usize) -> String,
) -> Result<(Vec<u64>, Duration)> {
    let mut sent_at: HashMap<usize, Instant> = HashMap::with_capacity(count);
    let started = Instant::now();
    for n in 0..count {
        let k = first_marker + n;
        let conversation = pick(n);
        let t0 = Instant::now();
        app.chat_append(
            &conversation,
            NewMessage::new(
                Sender::Agent,
                Some("Bench".into()),
                &format!("reply bench-marker-{k} end"),
            ),
        )
        .await?;
        sent_at.insert(k, t0);
        let next = started + pause * (n as u32 + 1);
        tokio::time::sleep_until(next.into()).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let wall = started.elapsed();
    let arrived = arrived.lock().await;
    let mut latencies_us: Vec<u64> = sent_at
        .iter()
        .filter_map(|(k, t0)| {
            arrived
                .get(k)
                .map(|t| t.duration_since(*t0).as_micros() as u64)
        })
        .collect();
    latencies_us.sort_unstable();
    Ok((latencies_us, wall))
}

/// Sequential `GET /healthz` round trips, in microseconds.
async fn get_round_trips(client: &reqwest::Client, base: &str) -> Vec<u64> {
    let mut out = Vec::with_capacity(GET_ROUND_TRIPS);
    for _ in 0..GET_ROUND_TRIPS {
        let t0 = Instant::now();
        if let Ok(r) = client.get(format!("{base}/healthz")).send().await
            && r.bytes().await.is_ok()
        {
            out.push(t0.elapsed().as_micros() as u64);
        }
    }
    out
}
