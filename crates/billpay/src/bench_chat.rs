//! `billpay bench chat`: many customers connected to live chat at once, and how fast a
//! representative's message reaches the customer's open event stream.
//!
//! Setup: `--sessions` portal sessions, each with a verified account and a conversation
//! (through the same service calls the chat page makes). Each opens `GET /chat/events` (the
//! server-sent event stream the page's script keeps open) and stays connected. Then
//! `--messages` messages are stored one at a time into random conversations, as a
//! representative's reply is (`chat_append`: masking, numbering, storage, announcement), paced
//! at `--rate` per second; each is timed from just before the store call to the moment the
//! customer's stream delivers it. The customers' streams are held by a child process
//! (`billpay bench chat-client`, hidden), as a crowd of browsers would be: each side then has
//! its own file-descriptor budget (10,000 streams are 20,000 sockets in one process), and the
//! server's resident memory is read alone. Both processes share the machine's cores. A
//! message's marker carries the instant it was stored (microseconds since the run's epoch, on
//! the machine's one wall clock), so the reader times it where it arrives.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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

/// The customers' side of `bench chat`, run by it as a child process.
#[derive(Args, Debug, Clone)]
pub struct ChatClientArgs {
    /// The server's base URL.
    #[arg(long)]
    pub base: String,
    /// A file with one portal session token per line.
    #[arg(long)]
    pub tokens: std::path::PathBuf,
    /// The run's epoch (Unix microseconds) that message markers count from.
    #[arg(long)]
    pub epoch_us: u64,
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
    let epoch_us = unix_us();
    // Delivery latencies by marker, filled by the stream readers.
    let arrived: Arrivals = Arc::default();
    let reconnects = Arc::new(AtomicUsize::new(0));

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
        Reader {
            arrived: arrived.clone(),
            epoch_us,
            reconnects: reconnects.clone(),
        },
        Some((0, ready_tx)),
        baseline_stop_rx,
    ));
    if ready_rx.recv().await.map(|(_, ok)| ok) != Some(true) {
        bail!("the baseline stream did not open");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pause = Duration::from_micros(1_000_000 / args.rate);
    let (sent, _) = send(
        &app,
        epoch_us,
        baseline_messages,
        pause,
        BASELINE_MARKER,
        |_| conversation.id.clone(),
    )
    .await?;
    let one_session_us = latencies(&*arrived.lock().await, &sent);
    // Its two sockets go back to the process's file-descriptor budget for the crowd.
    let _ = stop_baseline.send(true);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let rss_before = rss_mib();
    // The crowd, in a process of its own.
    let tokens_file = keyring.with_extension("chat-tokens");
    let tokens: String = sessions.iter().map(|(t, _)| format!("{t}\n")).collect();
    std::fs::write(&tokens_file, tokens).context("writing the bench's session tokens")?;
    let exe = std::env::current_exe().context("finding the billpay executable")?;
    let mut child = tokio::process::Command::new(exe)
        .args(["bench", "chat-client", "--base", &base, "--epoch-us"])
        .arg(epoch_us.to_string())
        .arg("--tokens")
        .arg(&tokens_file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the bench's client process")?;
    let mut to_child = child.stdin.take().context("client stdin")?;
    let mut from_child = BufReader::new(child.stdout.take().context("client stdout")?).lines();
    let ready = from_child.next_line().await?.unwrap_or_default();
    let _ = std::fs::remove_file(&tokens_file);
    let Some(refused_list) = ready.strip_prefix("ready ") else {
        bail!("the client process did not connect its streams: {ready:?}");
    };
    let refused_ids: std::collections::HashSet<usize> = refused_list
        .split(',')
        .filter_map(|i| i.trim().parse().ok())
        .collect();
    let open: Vec<usize> = (0..sessions.len())
        .filter(|i| !refused_ids.contains(i))
        .collect();
    let refused = refused_ids.len();
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
    // Replies go to conversations whose customer is connected (a refused stream, over a
    // file-descriptor limit, is reported, not counted as a lost message).
    let mut pick_random = |_: usize| {
        let mut pick = [0u8; 8];
        OsRandom.fill(&mut pick);
        let i = open[(u64::from_le_bytes(pick) as usize) % open.len()];
        sessions[i].1.clone()
    };
    let (sent, send_wall) = send(&app, epoch_us, args.messages, pause, 0, &mut pick_random).await?;
    to_child.write_all(b"stop\n").await?;
    to_child.flush().await?;
    let result = from_child.next_line().await?.unwrap_or_default();
    let _ = child.wait().await;
    let client_side = ClientReport::parse(&result)
        .with_context(|| format!("the client process's report: {result:?}"))?;
    let latencies_us = latencies(&client_side.arrived, &sent);
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
         server memory:       {before:.0} MiB before the streams, {conn:.0} MiB with them open \
         ({per_session:.1} KiB per session), {after:.0} MiB at the end\n\
         client process:      {client_rss:.0} MiB with the streams open (the customers' side)\n",
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
        reconnects = client_side.reconnects,
        client_rss = client_side.rss_mib,
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

/// Delivery latencies in microseconds, by message marker.
type Arrivals = Arc<Mutex<HashMap<usize, u64>>>;

/// Where a stream reader records what arrives.
#[derive(Clone)]
struct Reader {
    arrived: Arrivals,
    /// The run's epoch that markers' send instants count from.
    epoch_us: u64,
    reconnects: Arc<AtomicUsize>,
}

/// The machine's wall clock, which both processes of the bench read.
fn unix_us() -> u64 {
    u64::try_from(billpay_services::Clock::now_micros(&SystemClock)).unwrap_or(0)
}

/// A message's marker: its number and when it was stored (microseconds since the epoch). A
/// letter separates them, so no run of digits is long enough to be masked as a card number.
fn marker(k: usize, sent_us: u64) -> String {
    format!("bench-marker-{k}t{sent_us}e")
}

/// The marker in a line of the stream: (number, microseconds since the epoch it was stored).
fn parse_marker(line: &str) -> Option<(usize, u64)> {
    let rest = &line[line.find("bench-marker-")? + "bench-marker-".len()..];
    let (k, rest) = rest.split_once('t')?;
    let (sent, _) = rest.split_once('e')?;
    Some((k.parse().ok()?, sent.parse().ok()?))
}

/// One customer's page: keeps `GET /chat/events` open like a browser's `EventSource`, which
/// reconnects when the server ends the stream (`STREAM_SECS_MAX`) and sends the number of the
/// last event it has (`Last-Event-ID`), so every message arrives. Records each marker's
/// delivery latency. `ready` hears (with the session's index) whether the first connection
/// opened.
async fn read_stream(
    client: reqwest::Client,
    base: String,
    token: String,
    reader: Reader,
    mut ready: Option<(usize, tokio::sync::mpsc::Sender<(usize, bool)>)>,
    mut stop: tokio::sync::watch::Receiver<bool>,
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
                let now = unix_us();
                buf.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buf.find('\n') {
                    let line: String = buf.drain(..=end).collect();
                    if let Some(id) = line.strip_prefix("id: ") {
                        last_id = id.trim().parse().unwrap_or(last_id);
                    } else if let Some((k, sent)) = parse_marker(&line) {
                        let latency = now.saturating_sub(reader.epoch_us + sent);
                        reader.arrived.lock().await.entry(k).or_insert(latency);
                    }
                }
            }
        }
        if *stop.borrow() {
            return;
        }
        reader.reconnects.fetch_add(1, Ordering::Relaxed);
        tokio::time::sleep(Duration::from_millis(RECONNECT_PAUSE_MS)).await;
    }
}

/// Stores `count` representative replies (markers from `first_marker`) into the
/// conversations `pick` names, paced by `pause`, then waits 2 s for the last to arrive.
/// Returns the markers sent and the sending time.
async fn send(
    app: &billpay_services::Billpay,
    epoch_us: u64,
    count: usize,
    pause: Duration,
    first_marker: usize,
    mut pick: impl FnMut(usize) -> String,
) -> Result<(Vec<usize>, Duration)> {
    let mut sent = Vec::with_capacity(count);
    let started = Instant::now();
    for n in 0..count {
        let k = first_marker + n;
        let conversation = pick(n);
        let at = unix_us().saturating_sub(epoch_us);
        app.chat_append(
            &conversation,
            NewMessage::new(
                Sender::Agent,
                Some("Bench".into()),
                &format!("reply {} end", marker(k, at)),
            ),
        )
        .await?;
        sent.push(k);
        let next = started + pause * (n as u32 + 1);
        tokio::time::sleep_until(next.into()).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok((sent, started.elapsed()))
}

/// The latencies (sorted, microseconds) of the sent markers that arrived.
fn latencies(arrived: &HashMap<usize, u64>, sent: &[usize]) -> Vec<u64> {
    let mut out: Vec<u64> = sent
        .iter()
        .filter_map(|k| arrived.get(k).copied())
        .collect();
    out.sort_unstable();
    out
}

/// What the client process reports at the end: `result <reconnects> <rss MiB> k:µs k:µs ..`.
struct ClientReport {
    reconnects: usize,
    rss_mib: f64,
    arrived: HashMap<usize, u64>,
}

impl ClientReport {
    fn render(&self) -> String {
        let mut line = format!("result {} {:.1}", self.reconnects, self.rss_mib);
        for (k, us) in &self.arrived {
            line.push_str(&format!(" {k}:{us}"));
        }
        line
    }

    fn parse(line: &str) -> Option<ClientReport> {
        let mut words = line.strip_prefix("result ")?.split_whitespace();
        let reconnects = words.next()?.parse().ok()?;
        let rss_mib = words.next()?.parse().ok()?;
        let arrived = words
            .map(|w| {
                let (k, us) = w.split_once(':')?;
                Some((k.parse().ok()?, us.parse().ok()?))
            })
            .collect::<Option<HashMap<usize, u64>>>()?;
        Some(ClientReport {
            reconnects,
            rss_mib,
            arrived,
        })
    }
}

/// `billpay bench chat-client`: opens a stream for every token in waves, says
/// `ready <refused indices, comma-separated>`, records what arrives until `stop` (or the end
/// of its input), then prints its [`ClientReport`].
pub async fn client(args: ChatClientArgs) -> Result<()> {
    let tokens: Vec<String> = std::fs::read_to_string(&args.tokens)
        .context("reading the session tokens")?
        .lines()
        .map(str::to_string)
        .collect();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let reader = Reader {
        arrived: Arc::default(),
        epoch_us: args.epoch_us,
        reconnects: Arc::new(AtomicUsize::new(0)),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<(usize, bool)>(tokens.len());
    let mut answered = 0usize;
    let mut refused = Vec::new();
    // Connected in waves, so the listen backlog never overflows (a real crowd arrives over
    // time; a burst of thousands of SYNs at once measures the kernel, not billpay).
    for (n, token) in tokens.iter().enumerate() {
        tokio::spawn(read_stream(
            client.clone(),
            args.base.clone(),
            token.clone(),
            reader.clone(),
            Some((n, ready_tx.clone())),
            stop_rx.clone(),
        ));
        if (n + 1) % CONNECT_WAVE == 0 || n + 1 == tokens.len() {
            while answered < n + 1 {
                match ready_rx.recv().await {
                    Some((i, ok)) => {
                        answered += 1;
                        if !ok {
                            refused.push(i.to_string());
                        }
                    }
                    None => break,
                }
            }
        }
    }
    let mut out = tokio::io::stdout();
    out.write_all(format!("ready {}\n", refused.join(",")).as_bytes())
        .await?;
    out.flush().await?;
    let mut input = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = input.next_line().await? {
        if line.trim() == "stop" {
            break;
        }
    }
    let rss = rss_mib();
    let _ = stop_tx.send(true);
    let report = ClientReport {
        reconnects: reader.reconnects.load(Ordering::Relaxed),
        rss_mib: rss,
        arrived: reader.arrived.lock().await.clone(),
    };
    out.write_all(format!("{}\n", report.render()).as_bytes())
        .await?;
    out.flush().await?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_read_back_and_are_never_card_length() {
        let m = marker(1_000_000_123, 987_654_321_012);
        assert_eq!(
            parse_marker(&format!("data: reply {m} end")),
            Some((1_000_000_123, 987_654_321_012))
        );
        assert!(
            !m.chars()
                .collect::<Vec<_>>()
                .windows(13)
                .any(|w| w.iter().all(char::is_ascii_digit))
        );
        assert_eq!(parse_marker("data: nothing here"), None);
    }

    #[test]
    fn the_client_report_round_trips() {
        let r = ClientReport {
            reconnects: 3,
            rss_mib: 12.5,
            arrived: [(7, 1500), (9, 42)].into_iter().collect(),
        };
        let back = ClientReport::parse(&r.render()).unwrap();
        assert_eq!((back.reconnects, back.arrived), (3, r.arrived));
    }
}
