//! Command-line parsing and the commands themselves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use billpay_services::sandbox::{SandboxConfig, SandboxProcessor};
use billpay_services::{Billpay, OsRandom, SystemClock};
use billpay_store::{Store, StoreOptions};
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
        /// whose processor calls may still be in flight.
        #[arg(long, default_value_t = 60)]
        in_doubt_after_secs: u64,
    },
    /// Manage biller API keys.
    Apikey {
        #[command(subcommand)]
        action: ApikeyAction,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        what: bench::BenchCommand,
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
        .with_writer(std::io::stderr);
    if global.log_json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
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
    let app = Billpay {
        store,
        clock,
        random,
        processor: sandbox.clone(),
        render: Arc::new(billpay_http::JsonRender),
        config: Arc::new(settings.service_config()),
    };
    Ok((app, sandbox))
}

/// Entry point of the binary.
pub async fn main() -> std::process::ExitCode {
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
        } => {
            let (mut app, _) = build_from_settings(&settings, true).await?;
            let mut config = (*app.config).clone();
            config.in_doubt_after = jiff::SignedDuration::from_secs(
                i64::try_from(in_doubt_after_secs).unwrap_or(i64::MAX),
            );
            app.config = Arc::new(config);
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
        Command::Bench { what } => bench::run(what, &settings).await?,
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// How often the server reconciles in-doubt payments and settles bank debits.
const RECONCILE_EVERY: Duration = Duration::from_secs(15);

pub async fn serve(settings: Settings, demo: bool) -> Result<()> {
    let (app, _sandbox) = build_from_settings(&settings, true).await?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "listening on a non-loopback address without TLS: put a TLS-terminating proxy in front"
        );
    }
    if demo {
        demo::seed_and_print(&app, addr).await?;
    }
    // Background reconciliation: in-doubt payments, settlements, key pruning.
    let bg = app.clone();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let reconciler = tokio::spawn(async move {
        loop {
            match bg.reconcile().await {
                Ok(r) if r != Default::default() => tracing::info!(?r, "reconciled"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reconcile pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(RECONCILE_EVERY) => {}
                _ = stop_rx.changed() => break,
            }
        }
    });
    tracing::info!(%addr, database = app.store.engine().as_str(), "billpay listening");
    println!("billpay listening on http://{addr}");
    axum::serve(listener, billpay_http::router(app.clone()))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .context("server failed")?;
    // In-flight requests have finished (axum waited for them); stop the background work.
    let _ = stop_tx.send(true);
    let _ = reconciler.await;
    app.store.close().await;
    tracing::info!("billpay stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
