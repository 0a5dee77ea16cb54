//! Command-line parsing and the commands themselves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use billpay_services::sandbox::{SandboxConfig, SandboxProcessor};
use billpay_services::vault::Vault;
use billpay_services::{Billpay, OsRandom, SystemClock};
use billpay_store::{Store, StoreOptions};
use billpay_vault::Keyring;
use clap::{Args, Parser, Subcommand};

use crate::config::Settings;
use crate::{bench, config, demo};

#[derive(Parser, Debug)]
#[command(
    name = "billpay",
    version,
    about = "Self-hosted bill payment: phone, web, chat, mail and AutoPay on one ledger."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    /// Default: sqlite://./billpay-data/billpay.db
    #[arg(long, global = true, env = "BILLPAY_DATABASE_URL")]
    pub database: Option<String>,
    /// TOML configuration file.
    #[arg(long, global = true, env = "BILLPAY_CONFIG")]
    pub config: Option<std::path::PathBuf>,
    /// Log filter, e.g. info or billpay=debug.
    #[arg(long, global = true, env = "BILLPAY_LOG", default_value = "info")]
    pub log: String,
    /// Log as JSON lines.
    #[arg(long, global = true, env = "BILLPAY_LOG_JSON")]
    pub log_json: bool,
    /// Vault keyring file: the key-encryption keys for saved payment methods.
    #[arg(long, global = true, env = "BILLPAY_VAULT_KEYRING_FILE")]
    pub keyring: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: REST API, health checks and metrics.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Check every ledger invariant; exits non-zero with a report if anything is off.
    Verify,
    /// Resolve in-doubt payments, settle bank debits, prune old idempotency keys; then exit.
    Reconcile {
        /// Resolve payments in doubt for at least this many seconds. 0 resolves every one at
        /// once: use it only while no server is running (after a crash), never beside a live one,
        /// whose processor calls may still be in flight. With Stripe it is at least 300 (Stripe's
        /// search must see a payment before "not found" can be trusted).
        #[arg(long, default_value_t = 60)]
        in_doubt_after_secs: u64,
        /// Then print the settlement report of this UTC day (YYYY-MM-DD): payments by processor,
        /// state and channel, compared with the ledger and the processor; exit 1 on differences.
        #[arg(long, value_name = "YYYY-MM-DD")]
        report: Option<String>,
    },
    /// Manage biller API keys.
    Apikey {
        #[command(subcommand)]
        action: ApikeyAction,
    },
    /// Staff of the agent desk: add one (a one-time temporary password and authenticator
    /// link are printed), list them, disable one.
    Staff {
        #[command(subcommand)]
        action: StaffAction,
    },
    /// Manage the vault's key-encryption keys.
    Keys {
        #[command(subcommand)]
        action: KeysAction,
    },
    /// Call a running billpay's phone line from the terminal, as the telephony provider would.
    /// Keys are read from stdin, one line per prompt (an empty line is silence).
    Phone {
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        url: String,
        /// The caller's number (caller id).
        #[arg(long, default_value = "+15555550101")]
        from: String,
        /// The auth token the server verifies webhooks with.
        #[arg(long, env = "BILLPAY_TWILIO_AUTH_TOKEN")]
        auth_token: String,
    },
    /// Bank debits in NACHA files: export, returns and notices of change, the sandbox bank.
    Ach {
        #[command(subcommand)]
        action: AchAction,
    },
    /// Run the job runner only (AutoPay, scheduled payments), for scale-out beside `serve`.
    Worker,
    /// Bills from the billing system: bulk import of statements.
    Statements {
        #[command(subcommand)]
        action: StatementsAction,
    },
    /// The demo biller: `demo traffic` fills the demo database with realistic payments.
    Demo {
        #[command(subcommand)]
        action: DemoAction,
    },
    /// Reports for the biller's back office: the daily payment posting file, aging and the
    /// daily reconciliation.
    Report {
        #[command(subcommand)]
        action: ReportAction,
    },
    /// The tamper-evident audit log: verify its hash chain, list records.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Customer emails: queued, sent and failed counts, the failures and their reasons.
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxAction>,
    },
    /// Scheduled work: what ran, what will run today, what failed.
    Jobs {
        #[command(subcommand)]
        action: Option<JobsAction>,
    },
    /// Pay by mail: post checks from a bank lockbox file; the exceptions queue.
    Lockbox {
        #[command(subcommand)]
        action: LockboxAction,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
    },
}

#[derive(Subcommand, Debug)]
enum StaffAction {
    /// Adds a staff member. Prints a temporary password (changed at the first sign-in) and
    /// the authenticator app's otpauth:// link (confirmed by the first code at that sign-in),
    /// once: hand them over privately.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["agent", "supervisor", "admin"])]
        role: String,
    },
    /// Every staff member: email, name, role, status.
    List,
    /// Disables a staff member: their desk sessions end and they cannot sign in again.
    Disable {
        #[arg(long)]
        email: String,
    },
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "BILLPAY_LISTEN")]
    listen: Option<SocketAddr>,
    /// Seed demo accounts with bills, create an API key, and print how to try them.
    #[arg(long)]
    demo: bool,
    /// Added latency of the sandbox processor, in milliseconds.
    #[arg(long, env = "BILLPAY_SANDBOX_LATENCY_MS")]
    sandbox_latency_ms: Option<u64>,
    /// TLS certificate chain (PEM): serve HTTPS natively, with HSTS.
    #[arg(long, env = "BILLPAY_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "BILLPAY_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
}

#[derive(Subcommand, Debug)]
enum StatementsAction {
    /// Import statements from CSV (header account_number,statement_date,due_date,amount_due;
    /// amounts in dollars) or JSON (amount_due in cents). The file is checked whole first; a
    /// statement already imported is not imported again.
    Import {
        file: std::path::PathBuf,
        /// Statements written at once.
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
}

#[derive(Subcommand, Debug)]
enum JobsAction {
    /// Counts per job type and status, today's upcoming jobs and every failed job (default).
    Status,
    /// Run every due job now, then exit.
    Run,
}

#[derive(Subcommand, Debug)]
enum DemoAction {
    /// Payments across every channel over the last days (web, phone calls through the call
    /// flow, chat, agent, AutoPay, mailed checks), with declines and returns, made through the
    /// real services at past times, so the desk's dashboard fills in. Run it after (or beside)
    /// `serve --demo` on the same database; a second run with the same --seed skips the days
    /// already made (recorded in the audit log) and adds the rest of today's payments.
    Traffic(crate::traffic::TrafficArgs),
}

#[derive(Subcommand, Debug)]
enum ReportAction {
    /// Every payment, refund and return the ledger posted on one day (in the biller's time
    /// zone), for the billing system. The same day gives the same bytes every time.
    Posting {
        /// The day, YYYY-MM-DD.
        #[arg(long)]
        date: String,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write to this file (written whole, then renamed into place) instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// The daily reconciliation of one UTC day: payments by processor, state and channel,
    /// compared with the ledger and the processor's own list (the settlement report of
    /// `reconcile --report`, without resolving anything first). Exits 1 if anything differs.
    Reconciliation {
        /// The day, YYYY-MM-DD (UTC).
        #[arg(long)]
        date: String,
        /// text or csv.
        #[arg(long, default_value = "text")]
        format: String,
        /// Write to this file (written whole, then renamed into place) instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
    /// What customers owe as of the end of a day, by how long past due (current, 1-30,
    /// 31-60, 61-90, over 90 days), one line per account with a balance, and totals.
    Aging {
        /// The day, YYYY-MM-DD (default: today in the biller's time zone).
        #[arg(long)]
        as_of: Option<String>,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write to this file (written whole, then renamed into place) instead of stdout.
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
enum AuditAction {
    /// Recompute the hash chain; exits 1 naming every record altered, deleted or added outside
    /// the sealer, and prints the head to record elsewhere.
    Verify,
    /// Records, newest first, filtered by any of the options.
    List {
        #[arg(long)]
        actor: Option<String>,
        #[arg(long)]
        action: Option<String>,
        /// An account number.
        #[arg(long)]
        account: Option<String>,
        /// The subject's id (a payment, a saved method...).
        #[arg(long)]
        subject: Option<String>,
        /// From this day (YYYY-MM-DD, UTC), inclusive.
        #[arg(long)]
        since: Option<jiff::civil::Date>,
        /// Up to this day (YYYY-MM-DD, UTC), inclusive.
        #[arg(long)]
        until: Option<jiff::civil::Date>,
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Subcommand, Debug)]
enum OutboxAction {
    /// Counts per kind and status, every failed message with its reason, and the messages
    /// waiting to retry (default).
    Status,
    /// Send every due email now through the configured relay, then exit.
    Send,
    /// Queue a failed message again, with fresh attempts. For a message failed as
    /// "interrupted", first check the relay's log for its Message-ID: it may have been sent.
    Retry { id: String },
}

#[derive(Subcommand, Debug)]
enum AchAction {
    /// Write every bank debit ready to go into a NACHA file for your bank. Running it twice, or
    /// again after a crash, never puts an entry in two files.
    Export {
        /// Directory the file is written to.
        #[arg(long)]
        dir: std::path::PathBuf,
    },
    /// Apply a returns / notification-of-change file from your bank (idempotent).
    Returns { file: std::path::PathBuf },
    /// List the NACHA files written.
    Files,
    /// Answer a NACHA file as the sandbox's test bank accounts would, writing the returns file.
    SandboxBank {
        file: std::path::PathBuf,
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand, Debug)]
enum LockboxAction {
    /// Post the checks in a lockbox file (billpay CSV layout or BAI2); a malformed file posts
    /// nothing, and a file imported twice posts nothing the second time.
    Import {
        file: std::path::PathBuf,
        /// csv or bai2 (guessed from the content when omitted).
        #[arg(long)]
        format: Option<String>,
    },
    /// Checks waiting for a person: no account, or more than one, matched the coupon.
    Exceptions,
    /// Post an exception to an account, or reject it.
    Resolve {
        id: String,
        /// The account to post the check to.
        #[arg(long, conflicts_with = "reject", required_unless_present = "reject")]
        account: Option<String>,
        /// Why the check is not posted.
        #[arg(long)]
        reject: Option<String>,
        /// Who resolves it (recorded).
        #[arg(long, default_value = "operator")]
        by: String,
    },
}

#[derive(Subcommand, Debug)]
enum KeysAction {
    /// Create a new keyring file (refuses to overwrite one).
    Init,
    /// Add a new key version, make it active, and re-wrap every saved method under it, online.
    Rotate,
    /// Remove an old key version once no saved method uses it.
    Retire {
        #[arg(long)]
        version: u32,
    },
    /// Show key versions and how many saved methods each one protects.
    Status,
}

#[derive(Subcommand, Debug)]
enum ApikeyAction {
    /// Create a key and print it (it is shown only once).
    Create {
        #[arg(long)]
        name: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke { id: String },
}

fn init_logging(global: &GlobalArgs) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_new(&global.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| MaskingWriter(std::io::stderr()));
    if global.log_json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.with_ansi(false).try_init();
    }
}

/// Every log line passes through here: any card number that slipped into a message, a path or
/// an error is masked to its last four digits before it is written. The first line of defence
/// is that secrets live in types that cannot be printed; this is the second.
pub struct MaskingWriter<W: std::io::Write>(pub W);

impl<W: std::io::Write> std::io::Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // The formatter hands over one whole event per write.
        let text = String::from_utf8_lossy(buf);
        self.0
            .write_all(billpay_domain::mask_card_numbers(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// Everything a command needs, built from settings.
pub async fn build_from_settings(
    settings: &Settings,
    migrate: bool,
) -> Result<(Billpay, Arc<SandboxProcessor>)> {
    build_with_clock(settings, migrate, Arc::new(SystemClock)).await
}

/// Builds the services with the given clock (tests pass one they can move).
pub async fn build_with_clock(
    settings: &Settings,
    migrate: bool,
    clock: Arc<dyn billpay_services::Clock>,
) -> Result<(Billpay, Arc<SandboxProcessor>)> {
    // One TLS crypto provider for the process (webhook deliveries, native TLS).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut opts = StoreOptions::new(&settings.database_url);
    opts.migrate = migrate;
    opts.max_connections = settings.max_connections;
    let store = Store::open(opts).await.with_context(|| {
        format!(
            "opening the database {}",
            config::redact_url(&settings.database_url)
        )
    })?;
    let random: Arc<dyn billpay_services::Random> = Arc::new(OsRandom);
    let sandbox = Arc::new(SandboxProcessor::new(
        store.clone(),
        clock.clone(),
        random.clone(),
        SandboxConfig {
            latency: Duration::from_millis(settings.sandbox_latency_ms),
            ..SandboxConfig::default()
        },
    ));
    let vault = open_vault(settings)?.map(Arc::new);
    let mut config = settings.service_config();
    config.email = settings
        .email
        .as_ref()
        .map(|e| e.config(&settings.biller_name))
        .transpose()?;
    let processor: Arc<dyn billpay_services::Processor> = match (
        settings.processor.as_str(),
        &settings.stripe,
    ) {
        ("stripe", Some(table)) => {
            let stripe = Arc::new(
                billpay_services::stripe::StripeProcessor::new(
                    table.config()?,
                    clock.clone(),
                    random.clone(),
                )
                .map_err(|e| anyhow::anyhow!("starting the Stripe connector: {e}"))?,
            );
            // Stripe's search finds a PaymentIntent by our key within about a minute; an
            // in-doubt payment is looked up only after that, so "not found" means "never sent".
            config.in_doubt_after = config
                .in_doubt_after
                .max(billpay_services::stripe::SEARCH_SETTLE);
            config.stripe = Some(stripe.clone());
            stripe
        }
        ("sandbox", _) => sandbox.clone(),
        (other, _) => anyhow::bail!(
            "processor = {other:?} needs its settings (processor = \"stripe\" needs a [stripe] table)"
        ),
    };
    let source = Arc::new(config::FileSource::new(settings)?);
    let app = Billpay {
        vault,
        store,
        clock,
        random,
        processor,
        render: Arc::new(billpay_http::JsonRender),
        settings: Arc::new(billpay_services::settings::Live::from_source(
            config, source,
        )),
        chat: Arc::default(),
    }
    .with_ach_origination();
    // The settings saved in the console, then any saved later by another instance.
    if let Err(e) = app.refresh_settings().await {
        tracing::warn!(error = %e, "the console's settings could not be read; the file's are in force");
    }
    tokio::spawn(app.clone().settings_watch());
    // Live chat between instances on PostgreSQL: other instances' messages reach this one's
    // listeners (a no-op on SQLite).
    if app.store.engine() == billpay_store::Engine::Postgres {
        tokio::spawn(app.clone().chat_relay());
    }
    Ok((app, sandbox))
}

/// Entry point of the binary.
pub async fn main() -> std::process::ExitCode {
    // One TLS crypto provider for the whole process: reqwest (webhooks, the phone simulator,
    // benchmarks) and native TLS both use it.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    init_logging(&cli.global);
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    let mut settings = Settings::load(&cli.global)?;
    match cli.command {
        Command::Serve(args) => {
            if let Some(l) = args.listen {
                settings.listen = l;
            }
            if let Some(ms) = args.sandbox_latency_ms {
                settings.sandbox_latency_ms = ms;
            }
            if args.tls_cert.is_some() {
                settings.tls_cert = args.tls_cert;
                settings.tls_key = args.tls_key;
            }
            if args.demo {
                // The demo biller originates its own bank debits, so a demo bank payment can be
                // followed into a NACHA file, a returns file and back.
                settings.ach.originate = true;
                // Emails are readable at /demo/mailbox without a mail server.
                settings.portal.demo_mailbox = true;
            }
            serve(settings, args.demo).await?;
        }
        Command::Migrate => {
            let (app, _) = build_from_settings(&settings, true).await?;
            println!(
                "migrations applied to {}",
                config::redact_url(&settings.database_url)
            );
            app.store.close().await;
        }
        Command::Verify => {
            let (app, _) = build_from_settings(&settings, true).await?;
            let report = app.verify().await?;
            print!("{}", report.to_text());
            app.store.close().await;
            if !report.ok() {
                return Ok(std::process::ExitCode::from(1));
            }
        }
        Command::Reconcile {
            in_doubt_after_secs,
            report,
        } => {
            let report_day = report
                .as_deref()
                .map(|d| {
                    d.parse::<jiff::civil::Date>().map_err(|_| {
                        anyhow::anyhow!("--report must be a day as YYYY-MM-DD, not {d:?}")
                    })
                })
                .transpose()?;
            let (app, _) = build_from_settings(&settings, true).await?;
            let mut config = (*app.config()).clone();
            config.in_doubt_after = jiff::SignedDuration::from_secs(
                i64::try_from(in_doubt_after_secs).unwrap_or(i64::MAX),
            );
            if config.stripe.is_some() {
                // Stripe's search may not see a PaymentIntent for up to a minute or so; looked
                // up sooner, "not found" could fail a payment that was charged.
                config.in_doubt_after = config
                    .in_doubt_after
                    .max(billpay_services::stripe::SEARCH_SETTLE);
            }
            let app = app.with_config(config);
            let r = app.reconcile().await?;
            println!(
                "payments resolved: {}\npayments still in doubt: {}\nrefunds resolved: {}\nbank debits settled: {}\nbank debits returned: {}\nidempotency keys pruned: {}",
                r.payments_resolved,
                r.payments_still_in_doubt,
                r.refunds_resolved,
                r.debits_settled,
                r.debits_returned,
                r.keys_pruned
            );
            if let Some(day) = report_day {
                let report = app.settlement_report(day).await?;
                print!("\n{}", report.to_text());
                app.store.close().await;
                if !report.ok() {
                    return Ok(std::process::ExitCode::from(1));
                }
                return Ok(std::process::ExitCode::SUCCESS);
            }
            app.store.close().await;
        }
        Command::Apikey { action } => {
            let (app, _) = build_from_settings(&settings, true).await?;
            match action {
                ApikeyAction::Create { name } => {
                    let (key, secret) = app.create_api_key(&name).await?;
                    eprintln!(
                        "created API key {} ({}); it is shown only this once:",
                        key.id, key.name
                    );
                    // The one place a key is deliberately printed: to the operator who made it.
                    println!("{}", secret.expose_secret());
                }
                ApikeyAction::List => {
                    for k in app.list_api_keys().await? {
                        println!(
                            "{}\t{}\t{}…\t{}\t{}",
                            k.id,
                            k.name,
                            k.prefix,
                            k.created_at,
                            if k.revoked { "revoked" } else { "active" }
                        );
                    }
                }
                ApikeyAction::Revoke { id } => {
                    app.revoke_api_key(&id).await?;
                    println!("revoked {id}");
                }
            }
            app.store.close().await;
        }
        Command::Keys { action } => keys(action, &settings).await?,
        Command::Staff { action } => return staff(action, &settings).await,
        Command::Ach { action } => return ach(action, &settings).await,
        Command::Worker => {
            let (app, _) = build_from_settings(&settings, true).await?;
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            let worker = tokio::spawn(run_worker(app.clone(), stop_rx));
            println!("billpay worker running; Ctrl-C to stop");
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop_tx.send(true);
            let _ = worker.await;
            app.store.close().await;
        }
        Command::Statements {
            action: StatementsAction::Import { file, concurrency },
        } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let lines = billpay_services::billing::parse_statements(&text)?;
            let (app, _) = build_from_settings(&settings, true).await?;
            let bar = count_bar("statements");
            bar.set_length(lines.len() as u64);
            let r = app
                .import_statements(lines, concurrency, || bar.inc(1))
                .await;
            bar.finish_and_clear();
            app.store.close().await;
            let r = r?;
            println!(
                "statements created: {}\nalready imported: {}\nrefused: {}",
                r.created,
                r.already_imported,
                r.refused.len()
            );
            for (line, why) in &r.refused {
                println!("line {line}: {why}");
            }
            if !r.refused.is_empty() {
                return Ok(std::process::ExitCode::from(1));
            }
        }
        Command::Jobs { action } => {
            return jobs(action.unwrap_or(JobsAction::Status), &settings).await;
        }
        Command::Outbox { action } => {
            return outbox(action.unwrap_or(OutboxAction::Status), &settings).await;
        }
        Command::Audit { action } => return audit(action, &settings).await,
        Command::Report { action } => return report(action, &settings).await,
        Command::Demo {
            action: DemoAction::Traffic(args),
        } => demo_traffic(settings, &args).await?,
        Command::Lockbox { action } => return lockbox(action, &settings).await,
        Command::Phone {
            url,
            from,
            auth_token,
        } => {
            let random = OsRandom;
            let sid = format!(
                "CA{:016x}{:016x}",
                billpay_services::Random::next_u64(&random),
                billpay_services::Random::next_u64(&random)
            );
            let phone = crate::phone::Phone::new(&url, &auth_token, &from, &sid);
            println!(
                "calling {url} from {from} ({sid}); type keys and Enter, an empty line is silence"
            );
            let stdin = std::io::stdin();
            phone
                .call(
                    || {
                        let mut line = String::new();
                        match stdin.read_line(&mut line) {
                            Ok(0) | Err(_) => None,
                            Ok(_) => Some(line),
                        }
                    },
                    |l| println!("{l}"),
                )
                .await?;
        }
        Command::Bench { what } => bench::run(what, &settings).await?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// The vault keyring from `--keyring` / BILLPAY_VAULT_KEYRING_FILE, or the keyring text in
/// BILLPAY_VAULT_KEYRING. None when neither is set.
fn open_vault(settings: &Settings) -> Result<Option<Vault>> {
    if let Some(path) = &settings.keyring_file {
        if !path.exists() {
            anyhow::bail!(
                "the vault keyring file {} does not exist: create it with `billpay keys init --keyring {}`",
                path.display(),
                path.display()
            );
        }
        return Ok(Some(Vault::from_file(path.clone()).with_context(|| {
            format!("loading the vault keyring {}", path.display())
        })?));
    }
    match std::env::var("BILLPAY_VAULT_KEYRING") {
        Ok(text) if !text.trim().is_empty() => Ok(Some(Vault::fixed(
            Keyring::from_toml(&text).context("in BILLPAY_VAULT_KEYRING")?,
        ))),
        _ => Ok(None),
    }
}

fn keyring_path(settings: &Settings) -> Result<std::path::PathBuf> {
    settings.keyring_file.clone().context(
        "name the keyring file with --keyring PATH or BILLPAY_VAULT_KEYRING_FILE (a keyring given in BILLPAY_VAULT_KEYRING cannot be changed in place)",
    )
}

/// Who runs a command-line action, for the audit log: the login name, or "cli".
fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty() && u.len() <= 64)
        .unwrap_or_else(|| "cli".into())
}

async fn staff(action: StaffAction, settings: &Settings) -> Result<std::process::ExitCode> {
    use billpay_services::staff::Role;
    let (app, _) = build_from_settings(settings, true).await?;
    let result = match action {
        StaffAction::Add { email, name, role } => {
            let role = Role::parse(&role).context("role: agent, supervisor or admin")?;
            match app.staff_add(&email, &name, role, &operator()).await {
                Ok(e) => {
                    eprintln!(
                        "added {} ({}, {}). Shown only this once: hand them over privately.",
                        e.staff.email,
                        e.staff.name,
                        e.staff.role.as_str()
                    );
                    // The one place these are deliberately printed: to the operator who made
                    // the account. The password must be changed at the first sign-in, where
                    // the first authenticator code also confirms the app.
                    println!(
                        "temporary password: {}",
                        e.temporary_password.expose_secret()
                    );
                    println!("authenticator: {}", e.otpauth_uri.expose_secret());
                    Ok(std::process::ExitCode::SUCCESS)
                }
                Err(e) => Err(e),
            }
        }
        StaffAction::List => match app.staff_list().await {
            Ok(list) => {
                for s in list {
                    println!(
                        "{}\t{}\t{}\t{}",
                        s.email,
                        s.name,
                        s.role.as_str(),
                        if s.active { "active" } else { "disabled" }
                    );
                }
                Ok(std::process::ExitCode::SUCCESS)
            }
            Err(e) => Err(e),
        },
        StaffAction::Disable { email } => match app.staff_disable(&email, &operator()).await {
            Ok(s) => {
                println!("disabled {}", s.email);
                Ok(std::process::ExitCode::SUCCESS)
            }
            Err(e) => Err(e),
        },
    };
    app.store.close().await;
    match result {
        Ok(code) => Ok(code),
        Err(billpay_services::ServiceError::Invalid { message, .. }) => {
            eprintln!("{message}");
            Ok(std::process::ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

async fn keys(action: KeysAction, settings: &Settings) -> Result<()> {
    let random = OsRandom;
    let rng = |buf: &mut [u8]| billpay_services::Random::fill(&random, buf);
    match action {
        KeysAction::Init => {
            let path = keyring_path(settings)?;
            if path.exists() {
                anyhow::bail!(
                    "{} already exists; billpay never overwrites a keyring (the saved methods would become unreadable)",
                    path.display()
                );
            }
            Keyring::generate(&rng).save(&path)?;
            println!(
                "created the vault keyring {} (key version 1). Keep it secret and backed up: without it saved payment methods cannot be read.",
                path.display()
            );
        }
        KeysAction::Rotate => {
            let path = keyring_path(settings)?;
            let mut keyring = Keyring::load(&path)?;
            let version = keyring.rotate(&rng);
            keyring.save(&path)?;
            println!("key version {version} is now active; re-wrapping saved payment methods...");
            let (app, _) = build_from_settings(settings, true).await?;
            // A running server picks up the new key when the file changes; repeat until no
            // method written meanwhile under an older key remains.
            let mut total = 0;
            for _ in 0..10 {
                let n = app.rewrap_payment_methods().await?;
                total += n + app.rewrap_ach_entries().await? + app.rewrap_totp_secrets().await?;
                let left: i64 = app
                    .methods_per_key_version()
                    .await?
                    .iter()
                    .chain(app.ach_entries_per_key_version().await?.iter())
                    .chain(app.totp_per_key_version().await?.iter())
                    .filter(|(v, _)| *v != i64::from(version))
                    .map(|(_, n)| n)
                    .sum();
                if left == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            println!(
                "re-wrapped {total} saved payment methods, ACH entries and authenticator secrets under key version {version}"
            );
            print_key_status(&app, &Keyring::load(&path)?).await?;
            app.store.close().await;
        }
        KeysAction::Retire { version } => {
            let path = keyring_path(settings)?;
            let mut keyring = Keyring::load(&path)?;
            let (app, _) = build_from_settings(settings, true).await?;
            let still: i64 = app
                .methods_per_key_version()
                .await?
                .iter()
                .chain(app.ach_entries_per_key_version().await?.iter())
                .chain(app.totp_per_key_version().await?.iter())
                .filter(|(v, _)| *v == i64::from(version))
                .map(|(_, n)| n)
                .sum();
            if still > 0 {
                anyhow::bail!(
                    "{still} saved payment methods, ACH entries or authenticator secrets still use key version {version}: run `billpay keys rotate` first"
                );
            }
            keyring.retire(version)?;
            keyring.save(&path)?;
            println!(
                "key version {version} retired and removed from {}",
                path.display()
            );
            app.store.close().await;
        }
        KeysAction::Status => {
            let (app, _) = build_from_settings(settings, true).await?;
            let keyring = match (&settings.keyring_file, app.vault.as_ref()) {
                (Some(path), _) => Keyring::load(path)?,
                (None, Some(_)) => {
                    Keyring::from_toml(&std::env::var("BILLPAY_VAULT_KEYRING").unwrap_or_default())?
                }
                (None, None) => anyhow::bail!("no vault keyring is configured"),
            };
            print_key_status(&app, &keyring).await?;
            app.store.close().await;
        }
    }
    Ok(())
}

async fn print_key_status(app: &Billpay, keyring: &Keyring) -> Result<()> {
    let counts = app.methods_per_key_version().await?;
    println!("active key version: {}", keyring.active_version());
    for v in keyring.versions() {
        let n = counts
            .iter()
            .find(|(k, _)| *k == i64::from(v))
            .map(|(_, n)| *n)
            .unwrap_or(0);
        println!("  version {v}: {n} saved payment methods");
    }
    for (v, n) in counts
        .iter()
        .filter(|(v, _)| !keyring.versions().contains(&u32::try_from(*v).unwrap_or(0)))
    {
        println!(
            "  version {v}: {n} saved payment methods — NOT IN THE KEYRING, they cannot be read"
        );
    }
    Ok(())
}

/// How often the server reconciles in-doubt payments and settles bank debits.
const RECONCILE_EVERY: Duration = Duration::from_secs(15);

pub async fn serve(mut settings: Settings, demo: bool) -> Result<()> {
    let shutdown = shutdown_signal();
    if demo && settings.keyring_file.is_none() && std::env::var("BILLPAY_VAULT_KEYRING").is_err() {
        let path = config::demo_keyring_path(&settings.database_url);
        if !path.exists() {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let random = OsRandom;
            let rng = |buf: &mut [u8]| billpay_services::Random::fill(&random, buf);
            Keyring::generate(&rng)
                .save(&path)
                .with_context(|| format!("creating the demo keyring {}", path.display()))?;
            println!(
                "demo: created a vault keyring at {} (for a real deployment, create one with `billpay keys init` and keep it apart from the database)",
                path.display()
            );
        }
        settings.keyring_file = Some(path);
    }
    if demo && settings.twilio_auth_token.is_none() {
        settings.twilio_auth_token = Some(config::SecretSetting("demo-twilio-token".into()));
        println!(
            "demo: the phone line verifies webhooks with the auth token demo-twilio-token; call it with `billpay phone --auth-token demo-twilio-token`"
        );
    }
    let (app, _sandbox) = build_from_settings(&settings, true).await?;
    if app.vault.is_none() {
        anyhow::bail!(
            "no vault keyring: billpay will not start without the key that protects saved payment methods. Create one with `billpay keys init --keyring PATH` and pass --keyring PATH (or BILLPAY_VAULT_KEYRING_FILE); `serve --demo` creates one for you"
        );
    }
    let tls = match (&settings.tls_cert, &settings.tls_key) {
        (Some(cert), Some(key)) => {
            // One process-wide crypto provider; a second install is a harmless no-op.
            let _ = rustls::crypto::ring::default_provider().install_default();
            Some(
                axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                    .await
                    .with_context(|| {
                        format!(
                            "loading the TLS certificate {} and key {}",
                            cert.display(),
                            key.display()
                        )
                    })?,
            )
        }
        (None, None) => None,
        _ => anyhow::bail!("give both tls_cert and tls_key, or neither"),
    };
    let listener = std::net::TcpListener::bind(settings.listen)
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() && tls.is_none() {
        tracing::warn!(
            %addr,
            "listening on a non-loopback address without TLS: put a TLS-terminating proxy in front, or pass --tls-cert and --tls-key"
        );
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    if demo {
        demo::seed_and_print(&app, addr, scheme).await?;
    }
    // Background reconciliation: in-doubt payments, settlements, key pruning.
    let bg = app.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    // The job runner: AutoPay, scheduled payments (several instances share the queue).
    let worker = tokio::spawn(run_worker(app.clone(), stop_rx.clone()));
    let export_dir = settings
        .ach
        .export_dir
        .clone()
        .filter(|_| settings.ach.originate);
    let export_at = settings.ach.export_time()?;
    let reconciler = tokio::spawn(async move {
        let mut exported_on: Option<jiff::civil::Date> = None;
        loop {
            match bg.reconcile().await {
                Ok(r) if r != Default::default() => tracing::info!(?r, "reconciled"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconcile pass failed"),
            }
            if let Some(dir) = &export_dir {
                daily_ach_export(&bg, dir, export_at, &mut exported_on).await;
            }
            // Timed-out portal sessions (and any card digits sealed in them) are deleted.
            if let Err(e) = bg.portal_sweep_sessions().await {
                tracing::warn!(error = %e, "portal session sweep failed");
            }
            // Sign-in codes used or expired are overwritten in their emails' outbox rows.
            if let Err(e) = bg.portal_redact_codes().await {
                tracing::warn!(error = %e, "portal code redaction failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(RECONCILE_EVERY) => {}
                _ = stop_rx.changed() => break,
            }
        }
    });
    tracing::info!(%addr, database = app.store.engine().as_str(), tls = tls.is_some(), "billpay listening");
    println!("billpay listening on {scheme}://{addr}");
    let router = billpay_http::router_with(
        app.clone(),
        billpay_http::RouterOptions {
            hsts: tls.is_some(),
        },
    );
    match tls {
        Some(config) => {
            let handle = axum_server::Handle::new();
            let stopper = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                stopper.graceful_shutdown(Some(Duration::from_secs(30)));
            });
            axum_server::from_tcp_rustls(listener, config)
                .context("serving TLS")?
                .handle(handle)
                .serve(router.into_make_service_with_connect_info::<std::net::SocketAddr>())
                .await
                .context("server failed")?;
        }
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            // The peer address reaches handlers (per-address rate limits).
            axum::serve(
                listener,
                router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .with_graceful_shutdown(shutdown)
            .await
            .context("server failed")?;
        }
    }
    // In-flight requests have finished (the server waited for them); stop the background work.
    let _ = stop_tx.send(true);
    let _ = reconciler.await;
    let _ = worker.await;
    app.store.close().await;
    tracing::info!("billpay stopped");
    Ok(())
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled, so a signal during start-up (seeding the demo) is not lost.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = wait(term) => {},
                _ = wait(int) => {},
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutting down: finishing in-flight requests");
    }
}

/// Says once, at start-up, whether customer emails and texts will be delivered.
async fn announce_email(app: &Billpay) {
    match &app.config().sms {
        Some(m) => tracing::info!(
            provider = %m.api_base,
            from = %m.from.as_deref().or(m.messaging_service_sid.as_deref()).unwrap_or_default(),
            "text message delivery on"
        ),
        None => {
            let queued = app.sms_queued().await.unwrap_or(0);
            if queued > 0 {
                tracing::warn!(
                    queued,
                    "text message delivery is off (no [sms] section in the configuration): texts stay queued in the outbox until it is configured"
                );
            }
        }
    }
    match &app.config().email {
        Some(e) => tracing::info!(
            relay = %format!("{}:{}", e.smtp_host, e.smtp_port),
            tls = ?e.tls,
            from = %e.from_address,
            "email delivery on"
        ),
        None => {
            let queued = app.email_queued().await.unwrap_or(0);
            tracing::warn!(
                queued,
                "email delivery is off (no [email] section in the configuration): customer emails stay queued in the outbox until it is configured"
            );
        }
    }
}

/// Leases and runs due jobs, and delivers due emails, until told to stop. The two loops run
/// side by side, so a slow mail relay never holds up AutoPay or scheduled payments; each waits
/// a moment when it has nothing to do.
async fn run_worker(app: Billpay, stop: tokio::sync::watch::Receiver<bool>) {
    announce_email(&app).await;
    let mail = {
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let owner = billpay_services::jobs::worker_name(&app);
            worker_loop(stop, "email delivery", move || {
                let app = app.clone();
                let owner = owner.clone();
                async move { app.deliver_email(&owner).await.map(|r| r.leased == 0) }
            })
            .await
        })
    };
    let texts = {
        let app = app.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let owner = billpay_services::jobs::worker_name(&app);
            worker_loop(stop, "text message delivery", move || {
                let app = app.clone();
                let owner = owner.clone();
                async move { app.deliver_sms(&owner).await.map(|r| r.leased == 0) }
            })
            .await
        })
    };
    let owner = billpay_services::jobs::worker_name(&app);
    worker_loop(stop, "job runner", move || {
        let app = app.clone();
        let owner = owner.clone();
        async move {
            // Audit records written since the last pass join the hash chain. A failure to seal
            // is logged and retried next pass; it never holds up AutoPay or scheduled payments.
            if let Err(e) = app.seal_audit().await {
                tracing::error!(error = %e, "audit records could not be sealed; retrying next pass");
            }
            if let Err(e) = app.prune_rate_limits().await {
                tracing::warn!(error = %e, "old rate-limit counters could not be pruned");
            }
            // Payments, refunds and returns the ledger posted become webhook events (their
            // deliveries are jobs this same pass runs).
            if let Err(e) = app.relay_ledger_events().await {
                tracing::warn!(error = %e, "ledger events could not be relayed; retrying next pass");
            }
            app.run_due_jobs(&owner).await.map(|r| r.leased == 0)
        }
    })
    .await;
    let _ = mail.await;
    let _ = texts.await;
}

/// Runs `pass` (which says whether it found nothing to do) until told to stop.
async fn worker_loop<F, Fut>(
    mut stop: tokio::sync::watch::Receiver<bool>,
    what: &'static str,
    pass: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<bool, billpay_services::ServiceError>>,
{
    loop {
        let idle = match pass().await {
            Ok(idle) => idle,
            Err(e) => {
                tracing::warn!(error = %e, "{what} pass failed");
                true
            }
        };
        if *stop.borrow() {
            break;
        }
        if idle {
            tokio::select! {
                _ = tokio::time::sleep(billpay_services::jobs::IDLE_WAIT) => {}
                _ = stop.changed() => break,
            }
        }
    }
}

async fn jobs(action: JobsAction, settings: &Settings) -> Result<std::process::ExitCode> {
    let (app, _) = build_from_settings(settings, true).await?;
    let result = async {
        match action {
            JobsAction::Run => {
                let owner = billpay_services::jobs::worker_name(&app);
                app.relay_ledger_events().await?;
                let r = app.drain_jobs(&owner).await?;
                println!(
                    "jobs run: {}\ndone: {}\nretrying: {}\nfailed: {}",
                    r.leased, r.done, r.retried, r.failed
                );
            }
            JobsAction::Status => {
                println!("kind\tstatus\tcount");
                for (kind, status, n) in app.job_counts().await? {
                    println!("{kind}\t{status}\t{n}");
                }
                let now = app.clock.now();
                let day = now.as_microsecond();
                let end = day + 86_400_000_000;
                println!("\nto run in the next 24 hours:");
                for j in app.jobs_in("queued", i64::MIN, end).await? {
                    println!(
                        "  {}\t{}\t{}",
                        billpay_services::clock::from_micros(j.run_at),
                        j.kind,
                        j.business_key
                    );
                }
                println!("\nfailed:");
                for j in app.jobs_in("failed", i64::MIN, i64::MAX).await? {
                    println!(
                        "  {}\t{}\t{}\tafter {} attempts: {}",
                        billpay_services::clock::from_micros(j.run_at),
                        j.kind,
                        j.business_key,
                        j.attempts,
                        j.last_error.unwrap_or_default()
                    );
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.store.close().await;
    result.map(|_| std::process::ExitCode::SUCCESS)
}

/// `billpay demo traffic`: the services on a clock the traffic moves through past days.
async fn demo_traffic(mut settings: Settings, args: &crate::traffic::TrafficArgs) -> Result<()> {
    args.check()?;
    // The keyring `serve --demo` made beside the database, for saved cards.
    if settings.keyring_file.is_none() && std::env::var("BILLPAY_VAULT_KEYRING").is_err() {
        let path = config::demo_keyring_path(&settings.database_url);
        if path.exists() {
            settings.keyring_file = Some(path);
        }
    }
    // The sandbox settles and returns the traffic's bank debits itself (no NACHA files), so
    // every one is settled or returned before the command ends.
    settings.ach.originate = false;
    let clock = Arc::new(billpay_services::ManualClock::new(
        billpay_services::Clock::now(&SystemClock),
    ));
    let (app, _) = build_with_clock(&settings, true, clock.clone()).await?;
    let result = crate::traffic::run(&app, &clock, args).await;
    app.store.close().await;
    let report = result?;
    print!("{}", report.to_text());
    println!(
        "Open the dashboard at /desk/dashboard (a supervisor or administrator; the demo agent is one)."
    );
    Ok(())
}

/// Writes a report to `output` (whole, then renamed into place) or stdout.
fn write_report(text: &str, output: Option<std::path::PathBuf>, what: &str) -> Result<()> {
    match output {
        Some(path) => {
            let tmp = path.with_extension("partial");
            std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
            std::fs::rename(&tmp, &path)
                .with_context(|| format!("moving the file into {}", path.display()))?;
            eprintln!("{what} written to {}", path.display());
        }
        None => print!("{text}"),
    }
    Ok(())
}

/// A progress bar on standard error for a long run (drawn only on a terminal, so a file or
/// a pipe gets the output alone): `what` counts, e.g. "accounts".
fn count_bar(what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what}  {{per_sec}}  eta {{eta}}"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn report_day(flag: &str, value: &str) -> Result<jiff::civil::Date> {
    value.trim().parse().map_err(|_| {
        anyhow::anyhow!("{flag} must be a day as YYYY-MM-DD, like 2026-12-04; got {value:?}")
    })
}

async fn report(action: ReportAction, settings: &Settings) -> Result<std::process::ExitCode> {
    match action {
        ReportAction::Aging {
            as_of,
            format,
            output,
        } => {
            if format != "csv" && format != "json" {
                anyhow::bail!("--format must be csv or json; got {format:?}");
            }
            let day = as_of
                .as_deref()
                .map(|d| report_day("--as-of", d))
                .transpose()?;
            let (app, _) = build_from_settings(settings, true).await?;
            let day = match day {
                Some(d) => d,
                None => app.today_for_biller(),
            };
            let bar = count_bar("accounts");
            let aging = app
                .aging_report_with_progress(day, &|done, all| {
                    bar.set_length(all);
                    bar.set_position(done);
                })
                .await;
            bar.finish_and_clear();
            app.store.close().await;
            let aging = aging?;
            let text = if format == "json" {
                aging.to_json()
            } else {
                aging.to_csv()
            };
            let what = format!("{} accounts as of {}", aging.accounts.len(), aging.as_of);
            write_report(&text, output, &what)?;
        }
        ReportAction::Reconciliation {
            date,
            format,
            output,
        } => {
            let day = report_day("--date", &date)?;
            if format != "text" && format != "csv" {
                anyhow::bail!("--format must be text or csv; got {format:?}");
            }
            let (app, _) = build_from_settings(settings, true).await?;
            // One pass that can take a while on a busy day: a spinner with the time so far (on a
            // terminal only, like the other reports' bars).
            let spinner = indicatif::ProgressBar::new_spinner();
            spinner.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {msg}  {elapsed}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            spinner.set_message(
                "comparing the day's payments with the ledger, the processor, the NACHA files and the lockbox items",
            );
            spinner.enable_steady_tick(std::time::Duration::from_millis(120));
            let r = app.settlement_report(day).await;
            spinner.finish_and_clear();
            app.store.close().await;
            let r = r?;
            let text = if format == "csv" {
                r.to_csv()
            } else {
                r.to_text()
            };
            let what = format!(
                "reconciliation of {}: {} differences",
                r.day, r.difference_count
            );
            write_report(&text, output, &what)?;
            if !r.ok() {
                return Ok(std::process::ExitCode::from(1));
            }
        }
        ReportAction::Posting {
            date,
            format,
            output,
        } => {
            let day = report_day("--date", &date)?;
            if format != "csv" && format != "json" {
                anyhow::bail!("--format must be csv or json; got {format:?}");
            }
            let (app, _) = build_from_settings(settings, true).await?;
            let bar = count_bar("lines");
            let file = app
                .posting_file_with_progress(day, &|done, all| {
                    bar.set_length(all);
                    bar.set_position(done);
                })
                .await;
            bar.finish_and_clear();
            app.store.close().await;
            let file = file?;
            let text = if format == "json" {
                file.to_json()
            } else {
                file.to_csv()
            };
            write_report(
                &text,
                output,
                &format!("{} lines for {}", file.count, file.date),
            )?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

async fn audit(action: AuditAction, settings: &Settings) -> Result<std::process::ExitCode> {
    let (app, _) = build_from_settings(settings, true).await?;
    let result = async {
        match action {
            AuditAction::Verify => {
                let r = app.verify_audit().await?;
                println!("sealed records checked: {}", r.sealed);
                println!("chain head: record {} {}", r.head_seq, r.head_hash);
                if r.unsealed > 0 {
                    println!(
                        "not sealed yet: {} (oldest {}); a running serve or worker seals them within seconds",
                        r.unsealed,
                        r.oldest_unsealed_at
                            .map(|t| billpay_services::clock::from_micros(t).to_string())
                            .unwrap_or_default()
                    );
                }
                if r.ok() {
                    println!("audit chain: ok");
                    Ok(std::process::ExitCode::SUCCESS)
                } else {
                    println!("audit chain: TAMPERED");
                    for p in &r.problems {
                        println!("  {p}");
                    }
                    Ok(std::process::ExitCode::from(1))
                }
            }
            AuditAction::List {
                actor,
                action,
                account,
                subject,
                since,
                until,
                limit,
            } => {
                let account = account
                    .map(|a| billpay_domain::AccountNumber::parse(&a))
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--account: {e}"))?;
                let from = since
                    .map(|d| d.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()))
                    .transpose()?
                    .unwrap_or(jiff::Timestamp::MIN);
                let to = until
                    .and_then(|d| d.tomorrow().ok())
                    .map(|d| d.to_zoned(jiff::tz::TimeZone::UTC).map(|z| z.timestamp()))
                    .transpose()?
                    .unwrap_or(jiff::Timestamp::MAX);
                let rows = app
                    .audit_records(
                        actor.as_deref(),
                        action.as_deref(),
                        account.as_ref(),
                        subject.as_deref(),
                        from,
                        to,
                        limit,
                    )
                    .await?;
                println!("at\tseq\tactor\taction\tsubject\tchannel\tdetail");
                for r in rows {
                    println!(
                        "{}\t{}\t{}\t{}\t{}:{}\t{}\t{}",
                        billpay_services::clock::from_micros(r.at),
                        r.seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                        r.actor,
                        r.action,
                        r.subject_type,
                        r.subject_id,
                        r.channel.unwrap_or_default(),
                        r.detail
                    );
                }
                Ok(std::process::ExitCode::SUCCESS)
            }
        }
    }
    .await;
    app.store.close().await;
    result
}

async fn outbox(action: OutboxAction, settings: &Settings) -> Result<std::process::ExitCode> {
    let (app, _) = build_from_settings(settings, true).await?;
    let result = async {
        match action {
            OutboxAction::Send => {
                if app.config().email.is_none() && app.config().sms.is_none() {
                    anyhow::bail!("delivery is off: add an [email] or [sms] section to the configuration");
                }
                let owner = billpay_services::jobs::worker_name(&app);
                for (what, on, r) in [
                    ("emails", app.config().email.is_some(), app.drain_email(&owner).await?),
                    ("texts", app.config().sms.is_some(), app.drain_sms(&owner).await?),
                ] {
                    if on {
                        println!(
                            "{what} attempted: {}\nsent: {}\nretrying later: {}\nfailed: {}\ninterrupted earlier, now failed: {}",
                            r.leased, r.sent, r.retrying, r.failed, r.interrupted
                        );
                    } else {
                        println!("{what}: delivery is off");
                    }
                }
            }
            OutboxAction::Retry { id } => {
                if !app.outbox_retry(&id).await? {
                    anyhow::bail!("no failed message {id}");
                }
                println!("{id} queued again");
            }
            OutboxAction::Status => {
                if app.config().email.is_none() {
                    println!("email delivery is off: no [email] section in the configuration\n");
                }
                if app.config().sms.is_none() {
                    println!("text message delivery is off: no [sms] section in the configuration\n");
                }
                println!("kind\tstatus\tcount");
                for (kind, status, n) in app.outbox_counts().await? {
                    println!("{kind}\t{status}\t{n}");
                }
                let (failed, retrying) = app.outbox_problems(200).await?;
                println!("\nfailed:");
                for m in failed {
                    println!(
                        "  {}\t{}\t{}\t{}\tafter {} attempts: {}",
                        m.id,
                        billpay_services::clock::from_micros(m.finished_at.unwrap_or(m.created_at)),
                        m.kind,
                        m.dedupe_key,
                        m.attempts,
                        m.last_error.unwrap_or_default()
                    );
                }
                println!("\nwaiting to retry:");
                for m in retrying {
                    println!(
                        "  {}\t{}\t{}\t{}\tnext at {} after {} attempts: {}",
                        m.id,
                        billpay_services::clock::from_micros(m.created_at),
                        m.kind,
                        m.dedupe_key,
                        billpay_services::clock::from_micros(m.next_attempt_at),
                        m.attempts,
                        m.last_error.unwrap_or_default()
                    );
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.store.close().await;
    result.map(|_| std::process::ExitCode::SUCCESS)
}

/// The scheduled daily NACHA file: once a day, at `at` in the biller's time zone or at the
/// first pass after it.
pub async fn daily_ach_export(
    app: &Billpay,
    dir: &std::path::Path,
    at: jiff::civil::Time,
    exported_on: &mut Option<jiff::civil::Date>,
) {
    let tz = jiff::tz::TimeZone::get(&app.config().ivr.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    let now = app.clock.now().to_zoned(tz);
    if now.time() < at || *exported_on == Some(now.date()) {
        return;
    }
    match app.export_ach(dir).await {
        Ok(files) => {
            *exported_on = Some(now.date());
            for f in files {
                tracing::info!(path = %f.path.display(), entries = f.entries, "NACHA file written");
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "the daily NACHA file could not be written; will retry")
        }
    }
}

async fn ach(action: AchAction, settings: &Settings) -> Result<std::process::ExitCode> {
    if let AchAction::SandboxBank { file, out } = &action {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        let now = billpay_services::Clock::now(&billpay_services::SystemClock)
            .to_zoned(jiff::tz::TimeZone::UTC)
            .datetime();
        match billpay_services::ach::sandbox_bank_returns(&text, now)? {
            Some(returns) => {
                billpay_services::ach::write_durably(out, returns.as_bytes())
                    .with_context(|| format!("writing {}", out.display()))?;
                println!("the sandbox bank returned entries: wrote {}", out.display());
            }
            None => println!("the sandbox bank accepted every entry; no returns file"),
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let (app, _) = build_from_settings(settings, true).await?;
    let result = async {
        match action {
            AchAction::Export { dir } => {
                let files = app.export_ach(&dir).await?;
                if files.is_empty() {
                    println!("no bank debits are ready to send; no file written");
                }
                for f in files {
                    println!(
                        "{}{}: {} entries, debits {}, credits {}, sha256 {}",
                        f.path.display(),
                        if f.recovered { " (finished after an interrupted run)" } else { "" },
                        f.entries,
                        f.debit_total,
                        f.credit_total,
                        f.sha256
                    );
                }
            }
            AchAction::Returns { file } => {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let r = app.import_ach_returns(&text).await?;
                println!(
                    "returns applied: {}\nnotices of change applied: {}\nalready applied before: {}",
                    r.returns_applied, r.corrections_applied, r.already_applied
                );
                for (payment, code) in &r.payments_returned {
                    println!("payment {payment} returned ({code})");
                }
                for u in &r.unmatched {
                    println!("needs attention: {u}");
                }
            }
            AchAction::Files => {
                for f in app.ach_files(100).await? {
                    println!(
                        "{}\t{}\t{}\t{} entries\tdebits {}\tcredits {}\t{}",
                        f.id,
                        f.file_name,
                        f.status,
                        f.entry_count,
                        billpay_domain::Money::new(f.debit_total, billpay_domain::Currency::USD),
                        billpay_domain::Money::new(f.credit_total, billpay_domain::Currency::USD),
                        f.sha256.unwrap_or_default()
                    );
                }
            }
            AchAction::SandboxBank { .. } => {}
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.store.close().await;
    result.map(|_| std::process::ExitCode::SUCCESS)
}

async fn lockbox(action: LockboxAction, settings: &Settings) -> Result<std::process::ExitCode> {
    use billpay_services::lockbox::{LockboxFormat, Resolution};
    let (app, _) = build_from_settings(settings, true).await?;
    let result = async {
        match action {
            LockboxAction::Import { file, format } => {
                let bytes =
                    std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
                let text = String::from_utf8(bytes).map_err(|e| {
                    anyhow::anyhow!(
                        "{} is not UTF-8 text (byte {}); nothing was posted",
                        file.display(),
                        e.utf8_error().valid_up_to()
                    )
                })?;
                let format = LockboxFormat::detect(format.as_deref(), &text)?;
                let r = app.import_lockbox(&text, format).await?;
                println!(
                    "items: {}\nposted: {}\nexceptions: {}\nalready imported: {}",
                    r.items,
                    r.posted.len(),
                    r.exceptions.len(),
                    r.already_imported
                );
                for (key, account, confirmation, amount) in &r.posted {
                    println!(
                        "posted {key}: {amount} to account {account}, confirmation {confirmation}"
                    );
                }
                for (key, reason) in &r.exceptions {
                    println!("exception {key}: {reason}");
                }
            }
            LockboxAction::Exceptions => {
                for i in app.lockbox_exceptions().await? {
                    println!(
                        "{}\t{}\tcheck {}\t{}\tcoupon \"{}\"\t{}\t{}",
                        i.id,
                        i.deposit_date,
                        i.check_number,
                        billpay_domain::Money::new(i.amount, billpay_domain::Currency::USD),
                        i.account_reference,
                        i.remitter,
                        i.reason.unwrap_or_default()
                    );
                }
            }
            LockboxAction::Resolve {
                id,
                account,
                reject,
                by,
            } => {
                let resolution = match (account, reject) {
                    (Some(account_number), _) => Resolution::Post { account_number },
                    (None, Some(reason)) => Resolution::Reject { reason },
                    (None, None) => anyhow::bail!("give --account or --reject"),
                };
                match app.resolve_lockbox_exception(&id, resolution, &by).await? {
                    Some(p) => println!(
                        "posted {} to account {}, confirmation {}",
                        p.amount,
                        p.account_number.as_str(),
                        p.confirmation_number.grouped()
                    ),
                    None => println!("rejected {id}"),
                }
            }
        }
        Ok::<_, anyhow::Error>(())
    }
    .await;
    app.store.close().await;
    result.map(|_| std::process::ExitCode::SUCCESS)
}
