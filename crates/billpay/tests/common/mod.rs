//! Test harness: the real application on port 0 with a fresh database, on SQLite or PostgreSQL.
//!
//! PostgreSQL tests create a database per test on the server named by `BILLPAY_TEST_PG_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) and drop it afterwards.
#![allow(dead_code)]
// Test fixtures name databases and keys uniquely with the real clock and random source; the
// code under test still only sees the injected seams.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::sync::Arc;

use billpay::config::Settings;
use billpay_services::sandbox::SandboxProcessor;
use billpay_services::{Billpay, ShiftedClock};
use serde_json::{Value, json};
use sqlx::Connection;

pub mod desk;
pub mod hooks;
pub mod smtp;
pub mod visitor;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

pub fn pg_admin_url() -> String {
    std::env::var("BILLPAY_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    pg_name: Option<String>,
}

impl TestDb {
    pub async fn new(engine: Engine) -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        match engine {
            Engine::Sqlite => {
                let url = format!("sqlite://{}/billpay.db?mode=rwc", dir.path().display());
                TestDb {
                    url,
                    engine,
                    dir,
                    pg_name: None,
                }
            }
            Engine::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = pg_admin_url();
                let name = format!("bp_test_{}", uuid::Uuid::new_v4().simple());
                let mut c = sqlx::AnyConnection::connect(&admin).await.expect(
                    "PostgreSQL must be reachable at BILLPAY_TEST_PG_URL for the PostgreSQL tests",
                );
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut c)
                    .await
                    .expect("create test database");
                let _ = c.close().await;
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                TestDb {
                    url: format!("{base}/{name}"),
                    engine,
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }

    /// The SQLite database file (and its WAL beside it).
    pub fn sqlite_path(&self) -> std::path::PathBuf {
        self.dir.path().join("billpay.db")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = pg_admin_url();
            // A fresh runtime on its own thread: Drop may run inside the test's runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        if let Ok(mut c) = sqlx::AnyConnection::connect(&admin).await {
                            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                            )))
                            .execute(&mut c)
                            .await;
                        }
                    });
                }
            })
            .join();
        }
    }
}

pub struct TestApp {
    pub base: String,
    pub addr: SocketAddr,
    pub key: String,
    pub app: Billpay,
    pub sandbox: Arc<SandboxProcessor>,
    pub clock: Arc<ShiftedClock>,
    pub client: reqwest::Client,
    pub db: TestDb,
}

/// The Twilio auth token of [`line`]'s phone webhooks.
pub const TWILIO_TOKEN: &str = "test-twilio-token";

/// An app with the phone line on, where representatives answer at all hours.
pub async fn line(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.twilio_auth_token = Some(billpay::config::SecretSetting(TWILIO_TOKEN.into()));
        s.agent_hours_start = 0;
        s.agent_hours_end = 24;
    })
    .await
}

pub async fn spawn_app(engine: Engine) -> TestApp {
    spawn_app_with(engine, |_| {}).await
}

pub async fn spawn_app_with(engine: Engine, tune: impl FnOnce(&mut Settings)) -> TestApp {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(std::env::var("BILLPAY_TEST_LOG").unwrap_or_else(|_| "warn".into()))
        .with_test_writer()
        .try_init();
    let db = TestDb::new(engine).await;
    let keyring = db.dir.path().join("vault-keyring.toml");
    billpay_vault::Keyring::generate(&|b: &mut [u8]| {
        billpay_services::Random::fill(&billpay_services::OsRandom, b)
    })
    .save(&keyring)
    .expect("test keyring");
    let mut settings = Settings {
        database_url: db.url.clone(),
        keyring_file: Some(keyring),
        ..Settings::default()
    };
    tune(&mut settings);
    let clock = Arc::new(ShiftedClock::new());
    let (app, sandbox) = billpay::build_with_clock(&settings, true, clock.clone())
        .await
        .expect("build app");
    let (_, key) = app.create_api_key("test").await.expect("api key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let router = billpay_http::router(app.clone());
    tokio::spawn(async move {
        let _ = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await;
    });
    TestApp {
        base: format!("http://{addr}"),
        addr,
        key: key.expose_secret().to_string(),
        app,
        sandbox,
        clock,
        client: http().build().expect("client"),
        db,
    }
}

/// reqwest is built with rustls and no built-in crypto provider (billpay installs ring's at
/// start); a test's own clients install it first.
pub fn http() -> reqwest::ClientBuilder {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
}

pub fn card(number: &str) -> Value {
    let cvc = if number.starts_with("34") || number.starts_with("37") {
        "1234"
    } else {
        "123"
    };
    json!({"type": "card", "number": number, "exp_month": 12, "exp_year": 2034, "cvc": cvc, "postal_code": "10001"})
}

pub fn ach(account: &str) -> Value {
    json!({"type": "ach", "routing_number": "110000000", "account_number": account,
           "account_type": "checking", "holder_name": "Pat Payer"})
}

pub fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl TestApp {
    async fn send(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(&self.key),
        )
        .await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.key)
                .json(&body),
        )
        .await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(
            self.client
                .put(format!("{}{path}", self.base))
                .bearer_auth(&self.key)
                .json(&body),
        )
        .await
    }

    pub async fn send_patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(
            self.client
                .patch(format!("{}{path}", self.base))
                .bearer_auth(&self.key)
                .json(&body),
        )
        .await
    }

    pub async fn send_delete(&self, path: &str) -> (u16, Value) {
        self.send(
            self.client
                .delete(format!("{}{path}", self.base))
                .bearer_auth(&self.key),
        )
        .await
    }

    pub async fn post_idem(&self, path: &str, idem: &str, body: Value) -> (u16, Value) {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.key)
                .header("Idempotency-Key", idem)
                .json(&body),
        )
        .await
    }

    pub async fn pay(&self, idem: &str, body: Value) -> (u16, Value) {
        self.post_idem("/api/v1/payments", idem, body).await
    }

    /// A payment of `cents` on `account` with `method`, under a fresh key.
    pub async fn pay_with(&self, account: &str, cents: i64, method: Value) -> (u16, Value) {
        self.pay(&new_key(), json!({"account_number": account, "amount": cents, "channel": "web", "payment_method": method}))
            .await
    }

    /// A new account with one bill of `cents` due in two weeks; returns its number.
    pub async fn account_with_bill(&self, cents: i64) -> String {
        let (s, a) = self
            .post(
                "/api/v1/accounts",
                json!({"name": "Pat Payer", "email": "pat@example.com", "postal_code": "10001"}),
            )
            .await;
        assert_eq!(s, 201, "{a}");
        let number = a["account_number"].as_str().expect("number").to_string();
        let today = jiff::Zoned::now().date();
        let due = today.checked_add(jiff::Span::new().days(14)).expect("date");
        let (s, b) = self
            .post(
                &format!("/api/v1/accounts/{number}/statements"),
                json!({"statement_date": today.to_string(), "due_date": due.to_string(), "amount_due": cents}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
        number
    }

    pub async fn balance(&self, account: &str) -> i64 {
        let (s, a) = self.get(&format!("/api/v1/accounts/{account}")).await;
        assert_eq!(s, 200, "{a}");
        a["balance"]["amount"].as_i64().expect("balance")
    }

    /// `billpay verify` must hold.
    pub async fn assert_verified(&self) {
        let report = self.app.verify().await.expect("verify runs");
        assert!(
            report.ok(),
            "ledger verification failed:\n{}",
            report.to_text()
        );
    }

    /// Every email in the outbox renders through its template (the payloads the services write
    /// are what the renderer reads), and each of `kinds` is among them.
    pub async fn assert_emails_render(&self, kinds: &[&str]) {
        let mut c = self.app.store.read_conn().await.expect("conn");
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT kind, payload_json FROM outbox WHERE kind LIKE 'email.%'")
                .fetch_all(&mut *c)
                .await
                .expect("outbox");
        for (kind, payload) in &rows {
            let e = self
                .app
                .render_outbox_row(kind, payload)
                .unwrap_or_else(|e| panic!("{kind} does not render: {e}\n{payload}"));
            assert!(!e.subject.is_empty() && !e.text.is_empty() && !e.html.is_empty());
        }
        for k in kinds {
            assert!(
                rows.iter().any(|(kind, _)| kind == k),
                "no {k} in the outbox"
            );
        }
    }

    /// How many charges the sandbox processor has made.
    pub async fn processor_charges(&self) -> i64 {
        let mut c = self.app.store.read_conn().await.expect("conn");
        billpay_store::queries::sandbox_count(&mut c, "sale")
            .await
            .expect("count")
            + billpay_store::queries::sandbox_count(&mut c, "debit")
                .await
                .expect("count")
    }
}

/// Declares a test that runs once on SQLite and once on PostgreSQL. `with BUILDER;` first
/// starts each app with `BUILDER(engine)` instead of `spawn_app(engine)`.
#[macro_export]
macro_rules! both_engines {
    (with $builder:path; $(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($app: $crate::common::TestApp) $body
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run($builder($crate::common::Engine::Sqlite).await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run($builder($crate::common::Engine::Postgres).await).await
                }
            }
        )*
    };
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $crate::both_engines! { with $crate::common::spawn_app; $(async fn $name($app) $body)* }
    };
}

/// `billpay ARGS` as a real process on this app's database and keyring: exit code, stdout,
/// stderr.
pub fn cli(app: &TestApp, args: &[&str]) -> (i32, Vec<u8>, String) {
    let keyring = app.db.dir.path().join("vault-keyring.toml");
    let env = [
        ("BILLPAY_DATABASE_URL", app.db.url.as_str()),
        ("BILLPAY_VAULT_KEYRING_FILE", keyring.to_str().unwrap()),
    ];
    let out = billpay_process(args, &env);
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Settings a developer's shell may carry that would change a child `billpay` process; tests
/// that run the binary clear them and pass their own.
/// `billpay` as a real process, with only this environment (and warnings-only logs).
pub fn billpay_process(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_billpay"));
    cmd.args(args);
    for v in BILLPAY_ENV_VARS {
        cmd.env_remove(v);
    }
    cmd.env("BILLPAY_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run billpay")
}

pub const BILLPAY_ENV_VARS: &[&str] = &[
    "BILLPAY_DATABASE_URL",
    "BILLPAY_CONFIG",
    "BILLPAY_LISTEN",
    "BILLPAY_SANDBOX_LATENCY_MS",
    "BILLPAY_LOG_JSON",
    "BILLPAY_VAULT_KEYRING_FILE",
    "BILLPAY_VAULT_KEYRING",
];

/// A `billpay serve` child process, killed when dropped.
pub struct ServerProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub stderr_path: std::path::PathBuf,
}

impl ServerProcess {
    /// Starts `billpay serve` with these extra arguments and environment, on a free port, and
    /// waits until it is listening. Logs go to `stderr_path`.
    pub fn start(
        args: &[&str],
        env: &[(&str, &str)],
        stderr_path: std::path::PathBuf,
    ) -> Result<ServerProcess, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        // Appended, so one log holds every run of a server restarted on the same database.
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&stderr_path)
            .map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_billpay"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .args(args);
        for var in BILLPAY_ENV_VARS {
            cmd.env_remove(var);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(stderr)
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut server = ServerProcess {
            child,
            addr,
            stderr_path,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "billpay serve exited with {status}: {}",
                    server.logs()
                ));
            }
            if std::net::TcpStream::connect(addr).is_ok() {
                return Ok(server);
            }
            if std::time::Instant::now() > deadline {
                return Err(format!("billpay serve did not start: {}", server.logs()));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().expect("wait for billpay");
        std::mem::forget(self);
        status
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
