//! Delivery of the outbox by email, through the real entry points (HTTP payments, the job
//! runner's delivery pass, the `billpay outbox` command) to an SMTP sink on loopback, on SQLite
//! and PostgreSQL.

mod common;

use billpay::config::EmailSettings;
use billpay_store::outbox as oq;
use common::smtp::SmtpSink;
use common::*;
use serde_json::Value;

const FROM: &str = "billing@riverbend.example";

fn email_settings(sink: &SmtpSink) -> EmailSettings {
    EmailSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: Some(sink.addr.port()),
        tls: "none".into(),
        username: None,
        password_file: None,
        password_env: None,
        ca_file: None,
        from_address: FROM.into(),
        from_name: None,
        reply_to: Some("help@riverbend.example".into()),
        max_attempts: 4,
        timeout_secs: 5,
    }
}

async fn app_with_sink(engine: Engine) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let settings = email_settings(&sink);
    let app = spawn_app_with(engine, move |s| {
        s.biller_name = "Riverbend Utilities".into();
        s.email = Some(settings);
    })
    .await;
    (app, sink)
}

/// Pays `cents` by card on a new account with an email address; returns the payment.
async fn pay(app: &TestApp) -> Value {
    let account = app.account_with_bill(12_540).await;
    let (s, p) = app
        .pay_with(&account, 12_540, card("4242424242424242"))
        .await;
    assert_eq!(s, 201, "{p}");
    p
}

async fn row(app: &TestApp, dedupe: &str) -> oq::DeliveryRow {
    let mut c = app.app.store.read_conn().await.unwrap();
    let r = billpay_store::queries::outbox_for_dedupe(&mut c, dedupe)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no outbox row {dedupe}"));
    oq::by_id(&mut c, &r.id).await.unwrap().unwrap()
}

/// Runs delivery passes until nothing is due, as the worker loop would.
async fn deliver(app: &TestApp) -> billpay_services::email::DeliveryReport {
    app.app
        .drain_email("test-sender")
        .await
        .expect("delivery pass")
}

macro_rules! both {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(super::Engine::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(super::Engine::Postgres).await
                }
            }
        )*
    };
}

both!(
    receipt_arrives_once,
    transient_reply_is_retried_then_delivered,
    permanent_reply_fails_at_once_and_is_listed,
    attempts_run_out,
    two_senders_never_send_a_row_twice,
    interrupted_send_is_failed_not_resent,
    unknown_kind_fails_cleanly,
    off_without_configuration,
    refund_is_emailed,
    starttls_login_and_certificate_checks,
    connection_lost_before_the_message_is_retried_after_it_is_not,
);

async fn receipt_arrives_once(engine: Engine) {
    let (app, sink) = app_with_sink(engine).await;
    let p = pay(&app).await;
    let conf = p["confirmation_number"]
        .as_str()
        .expect("confirmation")
        .to_string();
    let r = deliver(&app).await;
    assert_eq!((r.sent, r.failed, r.retrying), (1, 0, 0), "{r:?}");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.rcpt_to, vec!["<pat@example.com>".to_string()]);
    assert_eq!(m.mail_from, format!("<{FROM}>"));
    let subject = m.header("Subject").unwrap();
    assert!(subject.contains(&conf), "{subject}");
    assert!(subject.contains("Riverbend Utilities"), "{subject}");
    assert!(m.header("From").unwrap().contains(FROM));
    assert_eq!(m.header("Reply-To").unwrap(), "help@riverbend.example");
    let stored = row(&app, &format!("receipt:{}", p["id"].as_str().unwrap())).await;
    assert_eq!(
        m.header("Message-ID").unwrap(),
        format!("<{}@riverbend.example>", stored.id)
    );
    assert!(m.data.contains("multipart/alternative"), "{}", m.data);
    assert!(m.data.contains("text/plain") && m.data.contains("text/html"));
    assert!(
        m.data.contains(&conf),
        "the body carries the confirmation number"
    );
    assert!(m.data.contains("1-800-555-0199"), "and the support phone");
    assert!(m.data.contains("$125.40"));
    assert!(m.data.contains("4242") && !m.data.contains("4242424242424242"));
    assert_eq!(stored.status, "sent");
    assert!(stored.sent_at.is_some());
    assert_eq!(stored.attempts, 1);
    // Later passes find nothing to send.
    app.clock.advance(jiff::SignedDuration::from_hours(3));
    let r = deliver(&app).await;
    assert_eq!(r.leased, 0);
    assert_eq!(sink.messages().len(), 1, "delivered once");
}

async fn transient_reply_is_retried_then_delivered(engine: Engine) {
    let (app, sink) = app_with_sink(engine).await;
    sink.reply_to_next_data("451 4.7.1 greylisted, try again later");
    let p = pay(&app).await;
    let key = format!("receipt:{}", p["id"].as_str().unwrap());
    let r = deliver(&app).await;
    assert_eq!((r.sent, r.retrying), (0, 1), "{r:?}");
    let waiting = row(&app, &key).await;
    assert_eq!(waiting.status, "queued");
    assert_eq!(waiting.attempts, 1);
    assert!(
        waiting.last_error.as_deref().unwrap().contains("451"),
        "{waiting:?}"
    );
    assert!(sink.messages().is_empty());
    // Not due again before its backoff.
    assert_eq!(deliver(&app).await.leased, 0);
    app.clock
        .advance(billpay_services::email::backoff(1) + jiff::SignedDuration::from_secs(1));
    let r = deliver(&app).await;
    assert_eq!(r.sent, 1, "{r:?}");
    let msgs = sink.messages();
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0]
            .data
            .contains(p["confirmation_number"].as_str().unwrap())
    );
    let sent = row(&app, &key).await;
    assert_eq!((sent.status.as_str(), sent.attempts), ("sent", 2));
    assert_eq!(sent.last_error, None);
}

async fn permanent_reply_fails_at_once_and_is_listed(engine: Engine) {
    let (app, sink) = app_with_sink(engine).await;
    sink.reply_to_next_rcpt("550 5.1.1 <pat@example.com>: no such user");
    let p = pay(&app).await;
    let key = format!("receipt:{}", p["id"].as_str().unwrap());
    let r = deliver(&app).await;
    assert_eq!((r.sent, r.failed, r.retrying), (0, 1, 0), "{r:?}");
    let failed = row(&app, &key).await;
    assert_eq!(failed.status, "failed");
    assert!(
        failed.last_error.as_deref().unwrap().contains("550"),
        "{failed:?}"
    );
    app.clock.advance(jiff::SignedDuration::from_hours(24));
    assert_eq!(
        deliver(&app).await.leased,
        0,
        "a permanent reject is not retried"
    );
    assert_eq!(sink.rcpt_commands(), 1);
    assert!(sink.messages().is_empty());

    // The operator sees it, with its reason, in `billpay outbox`.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_billpay"));
    cmd.args(["--database", &app.db.url, "outbox"]);
    for v in BILLPAY_ENV_VARS {
        cmd.env_remove(v);
    }
    let out = cmd.output().expect("run billpay outbox");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("email.receipt\tfailed\t1"), "{stdout}");
    assert!(
        stdout.contains(&failed.id) && stdout.contains("550"),
        "{stdout}"
    );
    assert!(
        stdout.contains("email delivery is off"),
        "this run has no [email]: {stdout}"
    );

    // Requeued by the operator (the address was fixed at the relay), it is sent.
    assert!(app.app.outbox_retry(&failed.id).await.unwrap());
    assert!(
        !app.app.outbox_retry(&failed.id).await.unwrap(),
        "only failed rows"
    );
    assert_eq!(deliver(&app).await.sent, 1);
    assert_eq!(sink.messages().len(), 1);
}

async fn attempts_run_out(engine: Engine) {
    let (app, sink) = app_with_sink(engine).await;
    let p = pay(&app).await;
    let key = format!("receipt:{}", p["id"].as_str().unwrap());
    for _ in 0..4 {
        sink.reply_to_next_data("421 4.3.2 service shutting down");
    }
    let mut reports = Vec::new();
    for _ in 0..6 {
        reports.push(deliver(&app).await);
        app.clock.advance(billpay_services::email::BACKOFF_MAX);
    }
    let done = row(&app, &key).await;
    assert_eq!(done.status, "failed", "{reports:?}");
    assert_eq!(done.attempts, 4, "max_attempts");
    assert!(done.last_error.as_deref().unwrap().contains("421"));
    assert!(sink.messages().is_empty());
}

async fn two_senders_never_send_a_row_twice(engine: Engine) {
    let (app, sink) = app_with_sink(engine).await;
    const N: usize = 12;
    let account = app.account_with_bill(100_000).await;
    for i in 0..N {
        let (s, p) = app
            .pay_with(&account, 1_000 + i as i64, card("4242424242424242"))
            .await;
        assert_eq!(s, 201, "{p}");
    }
    sink.delay_data(std::time::Duration::from_millis(60));
    // A second instance: its own store and pool on the same database.
    let mut settings = billpay::config::Settings {
        database_url: app.db.url.clone(),
        keyring_file: Some(app.db.dir.path().join("vault-keyring.toml")),
        email: Some(email_settings(&sink)),
        ..Default::default()
    };
    settings.biller_name = "Riverbend Utilities".into();
    let (other, _) = billpay::build_with_clock(&settings, false, app.clock.clone())
        .await
        .expect("second instance");
    let (a, b, c) = tokio::join!(
        app.app.drain_email("sender-a"),
        other.drain_email("sender-b"),
        app.app.drain_email("sender-c"),
    );
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a.sent + b.sent + c.sent, N as u64, "{a:?} {b:?} {c:?}");
    assert!(
        [&a, &b, &c].iter().filter(|r| r.sent > 0).count() >= 2,
        "the senders really overlapped: {a:?} {b:?} {c:?}"
    );
    let msgs = sink.messages();
    assert_eq!(msgs.len(), N);
    let mut ids: Vec<String> = msgs
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), N, "every row delivered exactly once");
    other.store.close().await;
}

async fn interrupted_send_is_failed_not_resent(engine: Engine) {
    let (app, sink) = app_with_sink(engine).await;
    let p = pay(&app).await;
    let key = format!("receipt:{}", p["id"].as_str().unwrap());
    // A sender leases the row and dies before recording anything.
    let now = app.app.clock.now_micros();
    let engine_kind = app.app.store.engine();
    let leased = app
        .app
        .store
        .write(move |c| {
            Box::pin(async move {
                oq::lease(
                    c,
                    engine_kind,
                    "email.",
                    "dead-sender",
                    now,
                    now + 1_000_000,
                    10,
                )
                .await
            })
        })
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    // While its lease holds, nobody else takes it.
    assert_eq!(deliver(&app).await.leased, 0);
    app.clock.advance(jiff::SignedDuration::from_secs(5));
    let r = deliver(&app).await;
    assert_eq!((r.interrupted, r.leased), (1, 0), "{r:?}");
    let failed = row(&app, &key).await;
    assert_eq!(failed.status, "failed");
    assert!(
        failed
            .last_error
            .as_deref()
            .unwrap()
            .contains("interrupted")
    );
    assert!(sink.messages().is_empty(), "never re-sent automatically");
    // The operator checked the relay's log and requeues it: same Message-ID.
    assert!(app.app.outbox_retry(&failed.id).await.unwrap());
    assert_eq!(deliver(&app).await.sent, 1);
    assert_eq!(
        sink.messages()[0].header("Message-ID").unwrap(),
        format!("<{}@riverbend.example>", failed.id)
    );
}

async fn unknown_kind_fails_cleanly(engine: Engine) {
    let (app, sink) = app_with_sink(engine).await;
    let now = app.app.clock.now_micros();
    let rows = [
        ("email.birthday", "odd", "{}"),
        (
            "sms.reminder",
            "text",
            "{\"what\": \"ready\", \"message\": \"hi\", \"date\": \"2026-12-01\"}",
        ),
    ];
    for (kind, key, payload) in rows {
        let r = billpay_store::rows::OutboxRow {
            id: format!("msg_{key}"),
            kind: kind.into(),
            dedupe_key: key.into(),
            recipient: if kind.starts_with("sms") {
                "+15555550123".into()
            } else {
                "pat@example.com".into()
            },
            payload_json: payload.into(),
            created_at: now,
            sent_at: None,
            attempts: 0,
        };
        app.app
            .store
            .write(move |c| {
                Box::pin(async move { billpay_store::queries::insert_outbox(c, &r).await })
            })
            .await
            .unwrap();
    }
    let p = pay(&app).await;
    let r = deliver(&app).await;
    assert_eq!((r.sent, r.failed), (1, 1), "{r:?}");
    let odd = row(&app, "odd").await;
    assert_eq!(odd.status, "failed");
    assert!(
        odd.last_error
            .unwrap()
            .contains("no email template for outbox kind \"email.birthday\"")
    );
    let text = row(&app, "text").await;
    assert_eq!(
        (text.status.as_str(), text.attempts),
        ("queued", 0),
        "SMS rows are not email's"
    );
    let receipt = row(&app, &format!("receipt:{}", p["id"].as_str().unwrap())).await;
    assert_eq!(receipt.status, "sent");
    assert_eq!(sink.messages().len(), 1);
}

async fn refund_is_emailed(engine: Engine) {
    let (app, sink) = app_with_sink(engine).await;
    let p = pay(&app).await;
    let id = p["id"].as_str().unwrap();
    let conf = p["confirmation_number"].as_str().unwrap();
    let (s, r) = app
        .post_idem(
            &format!("/api/v1/payments/{id}/refunds"),
            "refund-1",
            serde_json::json!({"amount": 2_500}),
        )
        .await;
    assert_eq!(s, 201, "{r}");
    // The replay of the refund request queues nothing more.
    let (s, _) = app
        .post_idem(
            &format!("/api/v1/payments/{id}/refunds"),
            "refund-1",
            serde_json::json!({"amount": 2_500}),
        )
        .await;
    assert_eq!(s, 201);
    let report = deliver(&app).await;
    assert_eq!(report.sent, 2, "the receipt and the refund: {report:?}");
    let msgs = sink.messages();
    let refund = msgs
        .iter()
        .find(|m| m.header("Subject").is_some_and(|s| s.contains("refunded")))
        .expect("a refund email");
    assert!(refund.header("Subject").unwrap().contains("$25.00"));
    assert!(refund.data.contains(conf));
    assert!(refund.data.contains("Visa ending in 4242"));
    assert!(refund.data.contains("$125.40"), "the payment's amount");
}

/// The default mode: STARTTLS on the submission port, then a login. A relay whose certificate
/// nothing vouches for is refused (and retried later, not failed); with `ca_file` it is trusted.
async fn starttls_login_and_certificate_checks(engine: Engine) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let sink =
        SmtpSink::start_starttls(cert.cert.der().clone(), cert.signing_key.serialize_der()).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, "relay-pw-77\n").unwrap();
    let trusted = EmailSettings {
        smtp_host: "localhost".into(),
        tls: "starttls".into(),
        username: Some("billpay".into()),
        password_file: Some(pw),
        ca_file: Some(ca),
        ..email_settings(&sink)
    };
    let untrusted = EmailSettings {
        ca_file: None,
        ..trusted.clone()
    };
    let app = spawn_app_with(engine, move |s| s.email = Some(trusted)).await;
    let p = pay(&app).await;
    let key = format!("receipt:{}", p["id"].as_str().unwrap());
    // An instance that does not trust the relay's certificate: nothing is sent, and the row
    // waits for a retry with the reason.
    let settings = billpay::config::Settings {
        database_url: app.db.url.clone(),
        keyring_file: Some(app.db.dir.path().join("vault-keyring.toml")),
        email: Some(untrusted),
        ..Default::default()
    };
    let (wary, _) = billpay::build_with_clock(&settings, false, app.clock.clone())
        .await
        .expect("second instance");
    let r = wary.drain_email("wary").await.unwrap();
    assert_eq!((r.sent, r.retrying), (0, 1), "{r:?}");
    let waiting = row(&app, &key).await;
    assert_eq!(waiting.status, "queued");
    assert!(
        waiting
            .last_error
            .as_deref()
            .unwrap()
            .to_lowercase()
            .contains("certificate")
            || waiting.last_error.as_deref().unwrap().contains("tls"),
        "{waiting:?}"
    );
    assert!(sink.messages().is_empty());
    assert!(
        sink.auth().is_empty(),
        "no password offered to an unverified relay"
    );
    wary.store.close().await;
    app.clock
        .advance(billpay_services::email::backoff(1) + jiff::SignedDuration::from_secs(1));
    let r = deliver(&app).await;
    assert_eq!(r.sent, 1, "{r:?}");
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(sink.tls_sessions(), 1);
    assert_eq!(sink.auth().len(), 1, "logged in after STARTTLS");
    let transcript = String::from_utf8_lossy(&sink.transcript()).to_string();
    assert!(transcript.contains("C: STARTTLS"), "{transcript}");
}

async fn connection_lost_before_the_message_is_retried_after_it_is_not(engine: Engine) {
    let (app, sink) = app_with_sink(engine).await;
    // Lost at RCPT: the relay cannot have the message, so it is simply tried again.
    sink.hang_up_at_next_rcpt();
    let p = pay(&app).await;
    let key = format!("receipt:{}", p["id"].as_str().unwrap());
    let r = deliver(&app).await;
    assert_eq!((r.sent, r.retrying, r.failed), (0, 1, 0), "{r:?}");
    assert_eq!(row(&app, &key).await.status, "queued");
    // Lost after the final `.`: it may have been accepted, so it is never sent again on its own.
    sink.hang_up_after_next_data();
    app.clock.advance(billpay_services::email::BACKOFF_MAX);
    let r = deliver(&app).await;
    assert_eq!((r.sent, r.failed, r.interrupted), (0, 1, 1), "{r:?}");
    assert_eq!(
        sink.hung_up_messages(),
        1,
        "the relay had the whole message"
    );
    let failed = row(&app, &key).await;
    assert_eq!(failed.status, "failed");
    let why = failed.last_error.clone().unwrap();
    assert!(
        why.contains("may have been delivered") && why.contains("Message-ID"),
        "{why}"
    );
    app.clock.advance(jiff::SignedDuration::from_hours(24));
    assert_eq!(deliver(&app).await.leased, 0, "not retried");
    assert!(sink.messages().is_empty());
}

async fn off_without_configuration(engine: Engine) {
    let app = spawn_app(engine).await;
    let p = pay(&app).await;
    let r = app.app.drain_email("x").await.unwrap();
    assert_eq!(r, Default::default());
    let waiting = row(&app, &format!("receipt:{}", p["id"].as_str().unwrap())).await;
    assert_eq!((waiting.status.as_str(), waiting.attempts), ("queued", 0));
    assert_eq!(app.app.email_queued().await.unwrap(), 1);
}

use common::billpay_process as billpay_cli;

const RELAY_PASSWORD: &str = "relay-Pw-5521xQ";

/// The whole path as deployed: `billpay serve` with an `[email]` section (TLS from the first
/// byte to a relay whose certificate only the configured `ca_file` vouches for, a login whose
/// password comes from an environment variable), a card payment over HTTP, and the receipt
/// arriving through the server's own worker loop. Then the same database served without
/// `[email]`: the server says once that email is off, and nothing is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_delivers_receipts_over_tls() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let db = TestDb::new(engine).await;
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let ca = db.dir.path().join("relay-ca.pem");
        std::fs::write(&ca, cert.cert.pem()).unwrap();
        let sink =
            SmtpSink::start_tls(cert.cert.der().clone(), cert.signing_key.serialize_der()).await;
        let config = db.dir.path().join("billpay.toml");
        std::fs::write(
            &config,
            format!(
                "biller_name = \"Riverbend Utilities\"\n\n[email]\nsmtp_host = \"localhost\"\nsmtp_port = {}\ntls = \"tls\"\nusername = \"billpay\"\npassword_env = \"BILLPAY_TEST_RELAY_PASSWORD\"\nca_file = \"{}\"\nfrom_address = \"{FROM}\"\ntimeout_secs = 5\n",
                sink.addr.port(),
                ca.display()
            ),
        )
        .unwrap();
        let keyring = db.dir.path().join("keys.toml");
        let k = keyring.to_str().unwrap().to_string();
        let c = config.to_str().unwrap().to_string();
        let env = [
            ("BILLPAY_DATABASE_URL", db.url.as_str()),
            ("BILLPAY_VAULT_KEYRING_FILE", k.as_str()),
            ("BILLPAY_CONFIG", c.as_str()),
            ("BILLPAY_TEST_RELAY_PASSWORD", RELAY_PASSWORD),
        ];
        let o = billpay_cli(&["keys", "init"], &env);
        assert!(o.status.success(), "{o:?}");
        let log = db.dir.path().join("serve.log");
        let server = ServerProcess::start(&[], &env, log.clone()).expect("serve");
        let base = format!("http://{}", server.addr);
        let key = String::from_utf8(billpay_cli(&["apikey", "create", "--name", "t"], &env).stdout)
            .unwrap()
            .trim()
            .to_string();
        let client = http().build().unwrap();
        let acct: Value = client
            .post(format!("{base}/api/v1/accounts"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"name": "Pat", "email": "pat@example.com", "postal_code": "10001"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let n = acct["account_number"]
            .as_str()
            .expect("account")
            .to_string();
        let p: Value = client
            .post(format!("{base}/api/v1/payments"))
            .bearer_auth(&key)
            .header("Idempotency-Key", "serve-email-1")
            .json(&serde_json::json!({"account_number": n, "amount": 4_321, "channel": "web", "payment_method": card("4242424242424242")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let conf = p["confirmation_number"]
            .as_str()
            .unwrap_or_else(|| panic!("{p}"));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while sink.messages().is_empty() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        let msgs = sink.messages();
        assert_eq!(msgs.len(), 1, "{}", server.logs());
        assert!(msgs[0].data.contains(conf));
        assert!(msgs[0].data.contains("$43.21"));
        assert!(sink.tls_sessions() >= 1, "over TLS");
        assert_eq!(sink.auth().len(), 1, "logged in once");
        let logs = server.logs();
        assert!(logs.contains("email delivery on"), "{logs}");
        assert!(!logs.contains(RELAY_PASSWORD));
        assert!(server.stop().success());

        // The same database without [email]: said once, nothing sent.
        let env_off = [
            ("BILLPAY_DATABASE_URL", db.url.as_str()),
            ("BILLPAY_VAULT_KEYRING_FILE", k.as_str()),
        ];
        let log_off = db.dir.path().join("serve-off.log");
        let server = ServerProcess::start(&[], &env_off, log_off).expect("serve");
        let p: Value = client
            .post(format!("http://{}/api/v1/payments", server.addr))
            .bearer_auth(&key)
            .header("Idempotency-Key", "serve-email-2")
            .json(&serde_json::json!({"account_number": n, "amount": 1_000, "channel": "web", "payment_method": card("4242424242424242")}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(p["confirmation_number"].is_string(), "{p}");
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        let logs = server.logs();
        assert_eq!(
            logs.matches("email delivery is off").count(),
            1,
            "said once: {logs}"
        );
        assert_eq!(sink.messages().len(), 1, "nothing sent without [email]");
        assert!(server.stop().success());
    }
}
