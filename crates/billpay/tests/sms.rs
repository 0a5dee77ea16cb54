//! Text-message delivery of the outbox, on SQLite and PostgreSQL: reminders queued by the real
//! job runner for a customer who agreed to texts, sent by the delivery pass to a provider on
//! loopback that speaks Twilio's Messages API (form POST, basic auth, 201 or a JSON error), and
//! the `billpay outbox` command.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use billpay::config::SmsSettings;
use billpay_store::outbox as oq;
use common::*;
use serde_json::json;

const ACCOUNT_SID: &str = "ACtest0123456789";
const TOKEN: &str = "sms-Tok-5e4d3c2b1a";
const FROM: &str = "+18005550199";
const PHONE: &str = "+15555550123";

/// One request the provider received.
#[derive(Clone, Debug)]
struct Received {
    account: String,
    authorization: String,
    form: Vec<(String, String)>,
}

impl Received {
    fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the provider answers next: a status and body, after a delay.
type Reply = (u16, String, Duration);

#[derive(Clone, Default)]
struct Provider {
    received: Arc<Mutex<Vec<Received>>>,
    replies: Arc<Mutex<VecDeque<Reply>>>,
}

impl Provider {
    async fn start() -> (Provider, String) {
        let p = Provider::default();
        let app = axum::Router::new()
            .route(
                "/2010-04-01/Accounts/{sid}/Messages.json",
                axum::routing::post(messages),
            )
            .with_state(p.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (p, format!("http://{addr}"))
    }

    fn then(&self, status: u16, body: serde_json::Value) {
        self.replies
            .lock()
            .unwrap()
            .push_back((status, body.to_string(), Duration::ZERO));
    }

    fn then_stall(&self, secs: u64) {
        self.replies
            .lock()
            .unwrap()
            .push_back((201, "{}".into(), Duration::from_secs(secs)));
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn messages(
    State(p): State<Provider>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, String) {
    let form: Vec<(String, String)> = serde_urlencoded::from_str(&body).unwrap_or_default();
    p.received.lock().unwrap().push(Received {
        account: sid,
        authorization: headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string(),
        form,
    });
    let next = p.replies.lock().unwrap().pop_front();
    let (status, body, delay) = next.unwrap_or_else(|| {
        let n = p.received.lock().unwrap().len();
        (
            201,
            json!({"sid": format!("SM{n:032}"), "status": "queued"}).to_string(),
            Duration::ZERO,
        )
    });
    tokio::time::sleep(delay).await;
    (StatusCode::from_u16(status).unwrap(), body)
}

fn sms_settings(base: &str, token_file: &std::path::Path) -> SmsSettings {
    SmsSettings {
        api_base: base.into(),
        account_sid: ACCOUNT_SID.into(),
        auth_token_file: Some(token_file.to_path_buf()),
        auth_token_env: None,
        from: Some(FROM.into()),
        messaging_service_sid: None,
        max_attempts: 3,
        timeout_secs: 2,
    }
}

async fn app_with_provider(engine: Engine) -> (TestApp, Provider) {
    let (provider, base) = Provider::start().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("twilio-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let settings = sms_settings(&base, &token);
    let app = spawn_app_with(engine, move |s| {
        s.biller_name = "Riverbend Utilities".into();
        s.sms = Some(settings);
    })
    .await;
    // The token was read at start-up.
    drop(dir);
    (app, provider)
}

/// A customer with a phone who agreed to texts gets a bill at noon New York time: the job
/// runner queues the "bill ready" text. Returns the account number.
async fn texted_bill(app: &TestApp, phone: &str) -> String {
    let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
    let noon =
        billpay_domain::local_instant("2027-09-01".parse().unwrap(), "12:00".parse().unwrap(), &ny);
    let now = billpay_services::Clock::now(app.clock.as_ref());
    if noon > now {
        app.clock.advance(noon.duration_since(now));
    }
    let (s, a) = app
        .post(
            "/api/v1/accounts",
            json!({"name": "Pat Payer", "phone": phone, "postal_code": "10001", "timezone": "America/New_York"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let acct = a["account_number"].as_str().unwrap().to_string();
    let (s, c) = app
        .put(
            &format!("/api/v1/accounts/{acct}/consents/sms"),
            json!({"granted": true, "source": "web"}),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    let (s, b) = app
        .post(
            &format!("/api/v1/accounts/{acct}/statements"),
            json!({"statement_date": "2027-09-01", "due_date": "2027-09-15", "amount_due": 8410}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    app.app.drain_jobs("test").await.unwrap();
    acct
}

async fn text_row(app: &TestApp, phone: &str) -> oq::DeliveryRow {
    let mut c = app.app.store.read_conn().await.unwrap();
    let id: String = sqlx::query_scalar(
        "SELECT id FROM outbox WHERE kind = 'sms.reminder' AND recipient = $1 ORDER BY created_at DESC LIMIT 1",
    )
    .bind(phone)
    .fetch_one(&mut *c)
    .await
    .expect("a queued text");
    oq::by_id(&mut c, &id).await.unwrap().unwrap()
}

async fn deliver(app: &TestApp) -> billpay_services::email::DeliveryReport {
    app.app
        .drain_sms("test-sender")
        .await
        .expect("delivery pass")
}

/// Moves the clock past any retry delay.
fn later(app: &TestApp, minutes: i64) {
    app.clock.advance(jiff::SignedDuration::from_mins(minutes));
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
    reminder_is_texted_once,
    provider_outage_is_retried_then_delivered,
    stop_fails_the_text_and_withdraws_consent,
    attempts_run_out_and_an_operator_requeues,
    no_answer_after_sending_is_failed_not_resent,
    off_without_configuration,
);

async fn reminder_is_texted_once(engine: Engine) {
    let (app, provider) = app_with_provider(engine).await;
    texted_bill(&app, PHONE).await;
    assert_eq!(text_row(&app, PHONE).await.status, "queued");
    let r = deliver(&app).await;
    assert_eq!((r.leased, r.sent, r.failed), (1, 1, 0), "{r:?}");
    let got = provider.received();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert_eq!(m.account, ACCOUNT_SID);
    use base64::Engine as _;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{TOKEN}"))
    );
    assert_eq!(m.authorization, expected);
    assert_eq!(m.field("To"), Some(PHONE));
    assert_eq!(m.field("From"), Some(FROM));
    let body = m.field("Body").unwrap();
    assert!(
        body.starts_with(
            "Riverbend Utilities: Your Riverbend Utilities bill of $84.10 is ready, due 2027-09-15."
        ),
        "{body}"
    );
    assert!(body.ends_with("Reply STOP to opt out."), "{body}");
    let row = text_row(&app, PHONE).await;
    assert_eq!((row.status.as_str(), row.attempts), ("sent", 1));
    // Nothing is sent twice.
    assert_eq!(deliver(&app).await.leased, 0);
    assert_eq!(provider.received().len(), 1);
}

async fn provider_outage_is_retried_then_delivered(engine: Engine) {
    let (app, provider) = app_with_provider(engine).await;
    texted_bill(&app, PHONE).await;
    provider.then(
        503,
        json!({"code": 20500, "message": "Internal Server Error"}),
    );
    let r = deliver(&app).await;
    assert_eq!((r.retrying, r.sent), (1, 0), "{r:?}");
    let row = text_row(&app, PHONE).await;
    assert_eq!(row.status, "queued");
    let why = row.last_error.unwrap();
    assert!(why.contains("HTTP 503") && why.contains("20500"), "{why}");
    // Not before its retry time...
    assert_eq!(deliver(&app).await.leased, 0);
    // ...then sent.
    later(&app, 2);
    assert_eq!(deliver(&app).await.sent, 1);
    assert_eq!(provider.received().len(), 2);
    assert_eq!(text_row(&app, PHONE).await.status, "sent");
}

async fn stop_fails_the_text_and_withdraws_consent(engine: Engine) {
    let (app, provider) = app_with_provider(engine).await;
    let acct = texted_bill(&app, PHONE).await;
    provider.then(
        400,
        json!({"code": 21610, "message": "Attempt to send to unsubscribed recipient", "status": 400}),
    );
    let r = deliver(&app).await;
    assert_eq!((r.failed, r.retrying), (1, 0), "{r:?}");
    let row = text_row(&app, PHONE).await;
    assert_eq!(row.status, "failed");
    let why = row.last_error.unwrap();
    assert!(
        why.starts_with("the recipient replied STOP to texts from this number"),
        "{why}"
    );
    // The customer's choice is recorded: their consent is withdrawn, with where it came from.
    let (s, c) = app.get(&format!("/api/v1/accounts/{acct}/consents")).await;
    assert_eq!(s, 200, "{c}");
    let sms = c["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["channel"] == "sms")
        .cloned()
        .unwrap_or_default();
    assert_eq!(sms["status"], "revoked", "{c}");
    assert!(sms["source"].as_str().unwrap().contains("STOP"), "{c}");
    // A bad number fails with its own reason, and is not retried.
    texted_bill(&app, "+15555550124").await;
    provider.then(
        400,
        json!({"code": 21614, "message": "'To' number is not a valid mobile number"}),
    );
    assert_eq!(deliver(&app).await.failed, 1);
    let why = text_row(&app, "+15555550124").await.last_error.unwrap();
    assert!(why.contains("cannot receive text messages"), "{why}");
    assert_eq!(provider.received().len(), 2);
}

async fn attempts_run_out_and_an_operator_requeues(engine: Engine) {
    let (app, provider) = app_with_provider(engine).await;
    texted_bill(&app, PHONE).await;
    for _ in 0..3 {
        provider.then(401, json!({"code": 20003, "message": "Authenticate"}));
    }
    for _ in 0..3 {
        deliver(&app).await;
        later(&app, 180);
    }
    let row = text_row(&app, PHONE).await;
    assert_eq!((row.status.as_str(), row.attempts), ("failed", 3));
    let why = row.last_error.clone().unwrap();
    assert!(why.contains("refused our credentials (HTTP 401)"), "{why}");
    assert!(!why.contains(TOKEN));
    assert!(app.app.outbox_retry(&row.id).await.unwrap());
    assert_eq!(deliver(&app).await.sent, 1);
    assert_eq!(provider.received().len(), 4);
}

async fn no_answer_after_sending_is_failed_not_resent(engine: Engine) {
    let (app, provider) = app_with_provider(engine).await;
    texted_bill(&app, PHONE).await;
    // The provider takes the request and answers after our 2 s timeout.
    provider.then_stall(4);
    let r = deliver(&app).await;
    assert_eq!((r.failed, r.interrupted), (1, 1), "{r:?}");
    let row = text_row(&app, PHONE).await;
    assert_eq!(row.status, "failed");
    assert!(
        row.last_error
            .unwrap()
            .contains("the text may have been sent: check the provider's message log"),
    );
    later(&app, 600);
    assert_eq!(deliver(&app).await.leased, 0, "never re-sent on its own");
    assert_eq!(provider.received().len(), 1);
}

async fn off_without_configuration(engine: Engine) {
    let app = spawn_app(engine).await;
    texted_bill(&app, PHONE).await;
    assert_eq!(deliver(&app).await, Default::default());
    assert_eq!(text_row(&app, PHONE).await.status, "queued");
    assert_eq!(app.app.sms_queued().await.unwrap(), 1);
}

#[test]
fn configuration_mistakes_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("t");
    std::fs::write(&token, "tok\n").unwrap();
    let ok = sms_settings("https://api.twilio.com", &token);
    let cfg = ok.config().expect("valid");
    assert_eq!(cfg.auth_token.expose_secret(), "tok");
    assert!(!format!("{cfg:?}").contains("tok\""));
    let cases: Vec<(SmsSettings, &str)> = vec![
        (
            SmsSettings {
                api_base: "http://api.example.com".into(),
                ..ok.clone()
            },
            "api_base must start with https://",
        ),
        (
            SmsSettings {
                from: Some("8005550199".into()),
                ..ok.clone()
            },
            "from must be a number like",
        ),
        (
            SmsSettings {
                from: None,
                ..ok.clone()
            },
            "needs from",
        ),
        (
            SmsSettings {
                messaging_service_sid: Some("MG1".into()),
                ..ok.clone()
            },
            "not both",
        ),
        (
            SmsSettings {
                auth_token_file: None,
                ..ok.clone()
            },
            "needs the auth token",
        ),
        (
            SmsSettings {
                auth_token_file: Some(dir.path().join("missing")),
                ..ok.clone()
            },
            "reading auth_token_file",
        ),
        (
            SmsSettings {
                max_attempts: 0,
                ..ok.clone()
            },
            "max_attempts must be 1 to 50",
        ),
    ];
    for (settings, says) in cases {
        let e = format!("{:#}", settings.config().expect_err(says));
        assert!(e.contains(says), "{e} should say {says}");
    }
}
