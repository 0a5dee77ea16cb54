//! No card number, security code, bank account number or API key reaches a response, a log line
//! or the database: pay with known secrets through every entry point, then scan everything.

mod common;
#[path = "common/stripe.rs"]
mod fake_stripe;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use billpay_services::sandbox::Fault;
use common::visitor::{Visitor, hidden};
use common::*;
use serde_json::{Value, json};

/// Every log line of this test binary, at TRACE level.
fn captured() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter("trace")
            .with_ansi(false)
            .with_writer(move || Writer(sink.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut v) = self.0.lock() {
            v.extend_from_slice(b);
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

const PANS: &[&str] = &[
    "4242424242424242",
    "5555555555554444",
    "378282246310005",
    "6011111111111117",
    "4000000000009995",
    "4000000000000002",
    "6011000990139424",
];
const CVCS: &[&str] = &["739", "615", "8142", "924", "358"];
const BANK_ACCOUNTS: &[&str] = &[
    "987650123456",
    "000246813579",
    "000123456789",
    "000777777771",
    "000111111116",
];

/// Part of a word: letters, digits, and the `.` and `-` inside decimals, dates and UUIDs.
fn wordy(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'.' || b == b'-'
}

/// Finds `needle` as a whole token (so a code like 924 is not found inside 22.924 or a UUID).
fn has_token(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).enumerate().any(|(i, w)| {
        w == n && (i == 0 || !wordy(hay[i - 1])) && hay.get(i + n.len()).is_none_or(|b| !wordy(*b))
    })
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// The vault's key material, as written in the keyring file (base64 values).
fn keyring_secrets(app: &TestApp) -> Vec<String> {
    let text = std::fs::read_to_string(app.db.dir.path().join("vault-keyring.toml")).unwrap();
    text.lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(_, v)| v.trim().trim_matches('"').to_string())
        })
        .filter(|v| v.len() >= 40)
        .collect()
}

fn assert_clean(what: &str, hay: &[u8], api_key: &str) {
    for s in PANS.iter().chain(BANK_ACCOUNTS) {
        assert!(!contains(hay, s), "{what} contains the secret number {s}");
    }
    for s in CVCS {
        if has_token(hay, s) {
            let text = String::from_utf8_lossy(hay);
            let line = text
                .lines()
                .find(|l| has_token(l.as_bytes(), s))
                .unwrap_or_default();
            panic!("{what} contains the security code {s}: {line}");
        }
    }
    assert!(!contains(hay, api_key), "{what} contains the API key");
    assert!(!contains(hay, "\"cvc\""), "{what} contains a cvc field");
}

/// The logs without sqlx's measured durations (`elapsed=358µs`, `elapsed_secs=0.000358`):
/// numbers made by the clock, which would otherwise match a 3-digit security code by chance.
fn without_timings(logs: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(logs);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_ref();
    while let Some(i) = rest.find("elapsed") {
        let (head, tail) = rest.split_at(i);
        out.push_str(head);
        let end = tail.find(|c: char| c.is_whitespace()).unwrap_or(tail.len());
        out.push_str("elapsed=<time>");
        rest = &tail[end..];
    }
    out.push_str(rest);
    out.into_bytes()
}

#[test]
fn timings_are_taken_out_and_nothing_else() {
    let logs =
        b"db.statement=\"\" rows_affected=1 elapsed=358\xc2\xb5s elapsed_secs=0.000358 cvc 358";
    let clean = String::from_utf8(without_timings(logs)).unwrap();
    assert_eq!(
        clean,
        "db.statement=\"\" rows_affected=1 elapsed=<time> elapsed=<time> cvc 358"
    );
}

const PHONE_TOKEN: &str = "leak-test-twilio-token";

async fn exercise(app: &TestApp) -> Vec<u8> {
    let mut bodies = Vec::new();
    let acct = app.account_with_bill(50_000).await;
    let card = |n: &str, cvc: &str| json!({"type": "card", "number": n, "exp_month": 11, "exp_year": 2031, "cvc": cvc, "postal_code": "10001"});
    let requests: Vec<Value> = vec![
        json!({"account_number": acct, "amount": 1001, "channel": "web", "payment_method": card("4242424242424242", "739")}),
        json!({"account_number": acct, "amount": 1002, "channel": "phone", "payment_method": card("5555555555554444", "615")}),
        json!({"account_number": acct, "amount": 1003, "channel": "chat", "payment_method": card("378282246310005", "8142")}),
        json!({"account_number": acct, "amount": 1004, "channel": "agent", "payment_method": card("6011111111111117", "924")}),
        json!({"account_number": acct, "amount": 1005, "payment_method": card("4000000000009995", "739")}),
        json!({"account_number": acct, "amount": 1006, "payment_method": {"type": "ach", "routing_number": "021000021", "account_number": "987650123456", "account_type": "savings", "holder_name": "Pat Payer"}}),
        json!({"account_number": acct, "amount": 1007, "payment_method": {"type": "ach", "routing_number": "110000000", "account_number": "000123456789", "account_type": "checking", "holder_name": "Pat Payer"}}),
        // Bad requests that carry secrets in odd places.
        json!({"account_number": acct, "amount": 1008, "payment_method": {"type": "card", "number": 4242424242424242u64, "exp_month": 11, "exp_year": 2031, "cvc": "739"}}),
        json!({"account_number": acct, "amount": 1009, "payment_method": {"type": "card", "number": "4242424242424242", "exp_month": 11, "exp_year": 2031, "cvc": 615}}),
        json!({"account_number": acct, "amount": 1010, "payment_method": {"type": "card", "number": "4242424242424242", "exp_month": 11, "exp_year": 2031, "cvc": "8142"}}),
        json!({"account_number": acct, "amount": 1011, "payment_method": {"type": "6011111111111117"}}),
        json!({"account_number": "4242424242424242", "amount": 1012, "payment_method": card("4242424242424242", "739")}),
    ];
    for (i, body) in requests.into_iter().enumerate() {
        let key = format!("leak-{i}");
        let (_, resp) = app.pay(&key, body.clone()).await;
        bodies.extend_from_slice(resp.to_string().as_bytes());
        // And the replay.
        let (_, resp) = app.pay(&key, body).await;
        bodies.extend_from_slice(resp.to_string().as_bytes());
    }
    // Saved methods: numbers go in once, tokens come out, and pay.
    let (_, m1) = app.post(&format!("/api/v1/accounts/{acct}/payment_methods"),
        json!({"type": "card", "number": "6011111111111117", "exp_month": 11, "exp_year": 2031, "cvc": "924", "nickname": "Discover"})).await;
    bodies.extend_from_slice(m1.to_string().as_bytes());
    let (_, m2) = app.post(&format!("/api/v1/accounts/{acct}/payment_methods"),
        json!({"type": "ach", "routing_number": "021000021", "account_number": "987650123456", "account_type": "savings", "holder_name": "Pat Payer"})).await;
    bodies.extend_from_slice(m2.to_string().as_bytes());
    for (i, m) in [&m1, &m2].into_iter().enumerate() {
        let token = m["id"].as_str().unwrap_or_else(|| panic!("saved: {m}"));
        let (s, resp) = app.pay(&format!("leak-token-{i}"), json!({"account_number": acct, "amount": 1020 + i as i64, "payment_method": {"type": "token", "token": token}})).await;
        assert_eq!(s, 201, "{resp}");
        bodies.extend_from_slice(resp.to_string().as_bytes());
    }
    let (_, list) = app
        .get(&format!("/api/v1/accounts/{acct}/payment_methods"))
        .await;
    bodies.extend_from_slice(list.to_string().as_bytes());

    // A duplicate, an in-doubt payment resolved later, a refund, lookups and receipts.
    let (_, resp) = app.pay("leak-dup", json!({"account_number": acct, "amount": 1001, "payment_method": card("5555555555554444", "615")})).await;
    bodies.extend_from_slice(resp.to_string().as_bytes());
    app.sandbox.inject(Fault::TimeoutAfterCharge);
    let doubt = json!({"account_number": acct, "amount": 1013, "payment_method": card("6011111111111117", "924")});
    let (_, resp) = app.pay("leak-doubt", doubt.clone()).await;
    bodies.extend_from_slice(resp.to_string().as_bytes());
    app.clock.advance(jiff::SignedDuration::from_mins(5));
    app.app.reconcile().await.unwrap();
    let (_, resp) = app.pay("leak-doubt", doubt).await;
    bodies.extend_from_slice(resp.to_string().as_bytes());
    let (_, list) = app.get(&format!("/api/v1/accounts/{acct}/payments")).await;
    bodies.extend_from_slice(list.to_string().as_bytes());
    let first = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["status"] == "succeeded")
        .unwrap()
        .clone();
    let (_, r) = app.get(first["receipt_url"].as_str().unwrap()).await;
    bodies.extend_from_slice(r.to_string().as_bytes());
    let (_, r) = app
        .post_idem(
            &format!("/api/v1/payments/{}/refunds", first["id"].as_str().unwrap()),
            "leak-refund",
            json!({"amount": 1}),
        )
        .await;
    bodies.extend_from_slice(r.to_string().as_bytes());
    // Bank debits originated in NACHA files: one returned, one corrected by a notice of change.
    let (_, noc) = app.post(&format!("/api/v1/accounts/{acct}/payment_methods"),
        json!({"type": "ach", "routing_number": "110000000", "account_number": "000777777771", "account_type": "checking", "holder_name": "Pat Payer"})).await;
    bodies.extend_from_slice(noc.to_string().as_bytes());
    let (s, resp) = app.pay("leak-noc", json!({"account_number": acct, "amount": 1030, "channel": "phone", "payment_method": {"type": "token", "token": noc["id"].as_str().unwrap()}})).await;
    assert_eq!(s, 201, "{resp}");
    bodies.extend_from_slice(resp.to_string().as_bytes());
    let (s, resp) = app.pay("leak-r03", json!({"account_number": acct, "amount": 1031, "channel": "phone", "payment_method": {"type": "ach", "routing_number": "110000000", "account_number": "000111111116", "account_type": "checking", "holder_name": "Pat Payer"}})).await;
    assert_eq!(s, 201, "{resp}");
    bodies.extend_from_slice(resp.to_string().as_bytes());
    let dir = tempfile::tempdir().unwrap();
    let files = app.app.export_ach(dir.path()).await.unwrap();
    assert_eq!(files.len(), 1);
    let nacha_file = std::fs::read_to_string(&files[0].path).unwrap();
    assert!(
        nacha_file.contains("000777777771"),
        "the bank's file carries the account number"
    );
    let returns = billpay_services::ach::sandbox_bank_returns(
        &nacha_file,
        "2026-12-02T09:00".parse().unwrap(),
    )
    .unwrap()
    .unwrap();
    let report = app.app.import_ach_returns(&returns).await.unwrap();
    assert_eq!(
        (report.returns_applied, report.corrections_applied),
        (1, 1),
        "{report:?}"
    );
    let (s, resp) = app
        .post("/api/v1/ach/returns", json!({"content": returns}))
        .await;
    assert_eq!(s, 200, "{resp}");
    bodies.extend_from_slice(resp.to_string().as_bytes());
    let (s, resp) = app
        .post(
            "/api/v1/ach/returns",
            json!({"content": returns.replace("000111111116", "0001111111160")}),
        )
        .await;
    assert_eq!(s, 400, "{resp}");
    bodies.extend_from_slice(resp.to_string().as_bytes());
    let (_, resp) = app.get("/api/v1/ach/files").await;
    bodies.extend_from_slice(resp.to_string().as_bytes());
    let (_, methods) = app
        .get(&format!("/api/v1/accounts/{acct}/payment_methods"))
        .await;
    bodies.extend_from_slice(methods.to_string().as_bytes());

    // By phone: a new card and a new bank account keyed on the keypad, through the signed
    // webhooks; what the simulated caller heard (and echoed) is scanned too.
    let caller = app.account_with_bill(20_000).await;
    let calls: [(&str, Vec<&str>); 2] = [
        (
            "CAleakcard",
            vec![
                "1",
                &caller,
                "10001",
                "2",
                "1006",
                "1",
                "1",
                "6011000990139424",
                "1131",
                "358",
                "10001",
                "1",
                "",
            ],
        ),
        (
            "CAleakbank",
            vec![
                "1",
                &caller,
                "10001",
                "2",
                "1007",
                "1",
                "2",
                "1",
                "110000000",
                "000246813579",
                "1",
                "",
            ],
        ),
    ];
    for (sid, keys) in calls {
        let phone = billpay::phone::Phone::new(&app.base, PHONE_TOKEN, "+15550001111", sid);
        let mut script: Vec<String> = keys.iter().rev().map(|k| k.to_string()).collect();
        let mut heard = String::new();
        phone
            .call(
                || script.pop(),
                |l| {
                    heard.push_str(l);
                    heard.push('\n');
                },
            )
            .await
            .unwrap();
        assert!(heard.contains("Your confirmation number is"), "{heard}");
        bodies.extend_from_slice(heard.as_bytes());
    }
    assert_eq!(app.balance(&caller).await, 20_000 - 1006 - 1007);

    // A customer types card numbers into the chat: masked before storage, pages and events.
    {
        let chat_acct = app.account_with_bill(3000).await;
        let client = http()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let first = client
            .get(format!("{}/chat", app.base))
            .send()
            .await
            .unwrap();
        let cookie = first.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let page = first.text().await.unwrap();
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let started = client
            .post(format!("{}/chat/start", app.base))
            .header("cookie", &cookie)
            .form(&[
                ("csrf", csrf.as_str()),
                ("name", "Pat"),
                ("account_number", chat_acct.as_str()),
                ("postal_code", "10001"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(started.status(), 303);
        let cookie = started.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let page = client
            .get(format!("{}/chat", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let csrf = page
            .split("name=\"csrf\" value=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        for text in [
            "my card is 4242 4242 4242 4242 cvc 739",
            "or 5555-5555-5555-4444",
            "378282246310005",
        ] {
            let said = client
                .post(format!("{}/chat/say", app.base))
                .header("cookie", &cookie)
                .form(&[("csrf", csrf.as_str()), ("message", text)])
                .send()
                .await
                .unwrap();
            assert_eq!(said.status(), 303);
        }
        let page = client
            .get(format!("{}/chat", app.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains("************4444"), "{page}");
        bodies.extend_from_slice(page.as_bytes());
    }

    app.clock.advance(jiff::SignedDuration::from_hours(72));
    app.app.reconcile().await.unwrap();
    app.assert_verified().await;
    assert!(
        list["data"].as_array().unwrap().len() >= 8,
        "the payments were made: {list}"
    );
    bodies
}

const PORTAL_PASSWORD: &str = "lantern Quiet 8 harbor";
const SECURITY_ANSWERS: [&str; 2] = ["Biscuitleak", "Leakmobile Zephyr"];

/// The newest outbox payload of `kind` to `recipient`.
async fn latest_payload(app: &TestApp, kind: &str, recipient: &str) -> String {
    let mut c = app.app.store.read_conn().await.unwrap();
    let (payload,): (String,) = sqlx::query_as(
        "SELECT payload_json FROM outbox WHERE kind = $1 AND recipient = $2 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(kind)
    .bind(recipient)
    .fetch_one(&mut *c)
    .await
    .unwrap();
    payload
}

/// The six digits in a one-time code message.
fn six_digits(text: &str) -> String {
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_string()
}

/// What the portal may never store or log (beyond the numbers of `assert_clean`).
struct PortalSecrets {
    /// The authenticator key as shown (grouped) and compact.
    totp_key: Vec<String>,
    /// Used one-time codes, as their messages said them.
    used_codes: Vec<String>,
}

/// The portal as customers use it: a guest card payment; an online account with a password,
/// an emailed code, security answers, a saved card and bank account, texted codes and an
/// authenticator app. Returns the pages (none of which may show a full number) and the
/// secrets typed.
async fn exercise_portal(app: &TestApp) -> (Vec<u8>, PortalSecrets) {
    let acct = app.account_with_bill(30_000).await;
    let mut bodies = Vec::new();
    let mut v = Visitor::new(app);
    v.submit(
        "/pay",
        "/pay",
        &[("account_number", &acct), ("postal_code", "10001")],
    )
    .await;
    v.submit(
        "/pay/amount",
        "/pay/amount",
        &[("choice", "other"), ("amount", "12.34")],
    )
    .await;
    let card = [
        ("method", "card"),
        ("card_number", "6011000990139424"),
        ("exp_month", "11"),
        ("exp_year", "31"),
        ("cvc", "358"),
        ("postal_code", "10001"),
    ];
    let p = v.submit("/pay/method", "/pay/method", &card).await;
    assert_eq!(p.status, 303, "{}", p.body);
    let review = v.get("/pay/review").await;
    let csrf = hidden(&review.body, "csrf");
    let key = hidden(&review.body, "form_key");
    let done = v
        .post("/pay/confirm", &[("csrf", &csrf), ("form_key", &key)])
        .await;
    let done = v.get(done.location.as_deref().expect("paid")).await;
    assert!(done.body.contains("ending in 9424"), "{}", done.body);
    bodies.extend_from_slice(&review.bytes);
    bodies.extend_from_slice(&done.bytes);

    let mut used_codes = Vec::new();
    v.submit(
        "/enrol",
        "/enrol",
        &[
            ("account_number", &acct),
            ("postal_code", "10001"),
            ("email", "pat@example.com"),
            ("password", PORTAL_PASSWORD),
            ("password_confirm", PORTAL_PASSWORD),
        ],
    )
    .await;
    let code = six_digits(&latest_payload(app, "email.signin_code", "pat@example.com").await);
    let p = v
        .submit("/signin/code", "/signin/code", &[("code", &code)])
        .await;
    assert_eq!(p.location.as_deref(), Some("/account"), "{}", p.body);
    used_codes.push(format!("\"code\":\"{code}\""));
    let p = v
        .submit(
            "/account/security",
            "/account/security",
            &[
                ("question_1", "0"),
                ("answer_1", SECURITY_ANSWERS[0]),
                ("question_2", "2"),
                ("answer_2", SECURITY_ANSWERS[1]),
            ],
        )
        .await;
    assert_eq!(p.status, 200, "{}", p.body);
    let p = v
        .submit(
            "/account/methods",
            "/account/methods",
            &[
                ("card_number", "378282246310005"),
                ("exp_month", "11"),
                ("exp_year", "31"),
                ("postal_code", "10001"),
            ],
        )
        .await;
    assert!(p.body.contains("ending in 0005"), "{}", p.body);
    let p = v
        .submit(
            "/account/methods",
            "/account/methods/bank",
            &[
                ("holder_name", "Pat Payer"),
                ("routing_number", "110000000"),
                ("bank_account_number", "000246813579"),
                ("account_type", "checking"),
            ],
        )
        .await;
    assert!(p.body.contains("ending in 3579"), "{}", p.body);
    bodies.extend_from_slice(&p.bytes);

    // Texted codes, then an authenticator app.
    v.submit(
        "/account/signin-codes",
        "/account/signin-codes/text",
        &[("phone", "555 201 0177")],
    )
    .await;
    let text = latest_payload(app, "sms.signin_code", "+15552010177").await;
    let code = six_digits(&text);
    let p = v
        .submit(
            "/account/signin-codes/text/confirm",
            "/account/signin-codes/text/confirm",
            &[("code", &code)],
        )
        .await;
    assert!(p.body.contains("now come by text message"), "{}", p.body);
    used_codes.push(format!("code is {code}"));
    let p = v
        .submit("/account/signin-codes", "/account/signin-codes/app", &[])
        .await;
    let start =
        p.body.find("<code class=\"secret-key\">").unwrap() + "<code class=\"secret-key\">".len();
    let grouped = p.body[start..].split("</code>").next().unwrap().to_string();
    let secret = billpay_services::totp::secret_from_text(&grouped).unwrap();
    let now = || u64::try_from(app.app.clock.now_micros() / 1_000_000).unwrap();
    let code = billpay_services::totp::code_at(&secret, now());
    let p = v
        .submit(
            "/account/signin-codes",
            "/account/signin-codes/app/confirm",
            &[("code", &code)],
        )
        .await;
    assert!(p.body.contains("authenticator app is set up"), "{}", p.body);
    let csrf = hidden(&p.body, "csrf");
    v.post("/signout", &[("csrf", &csrf)]).await;
    app.clock.advance(jiff::SignedDuration::from_secs(30));
    let mut w = Visitor::new(app);
    w.submit(
        "/signin",
        "/signin",
        &[("email", "pat@example.com"), ("password", PORTAL_PASSWORD)],
    )
    .await;
    let code = billpay_services::totp::code_at(&secret, now());
    let p = w
        .submit("/signin/code", "/signin/code", &[("code", &code)])
        .await;
    assert_eq!(p.location.as_deref(), Some("/account"), "{}", p.body);
    let account = w.get("/account").await;
    bodies.extend_from_slice(&account.bytes);
    let totp_key = vec![grouped.clone(), grouped.replace(' ', "")];
    (
        bodies,
        PortalSecrets {
            totp_key,
            used_codes,
        },
    )
}

/// Every text value of every table, via SQL.
/// Every row of every table: on SQLite, of the database and of its session database.
async fn dump_rows(app: &TestApp) -> Vec<u8> {
    let mut out = dump_database(app, app.app.store.read_conn().await.unwrap(), true).await;
    if app.db.engine == Engine::Sqlite {
        let sessions = dump_database(app, app.app.store.relaxed_conn().await.unwrap(), false).await;
        assert!(
            contains(&sessions, "CAleak"),
            "the session database holds the calls, so it really was read"
        );
        out.extend(sessions);
    }
    out
}

async fn dump_database(app: &TestApp, mut c: billpay_store::PoolConnection, main: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let tables: Vec<String> = match app.db.engine {
        Engine::Sqlite => sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut *c)
            .await
            .unwrap(),
        Engine::Postgres => sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut *c)
        .await
        .unwrap(),
    };
    let expected = if main { "payments" } else { "ivr_calls" };
    assert!(tables.iter().any(|t| t == expected), "{tables:?}");
    for t in tables {
        let text: String = match app.db.engine {
            Engine::Sqlite => {
                let cols: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                    "SELECT name FROM pragma_table_info('{t}')"
                )))
                .fetch_all(&mut *c)
                .await
                .unwrap();
                let expr = cols
                    .iter()
                    .map(|col| format!("quote(\"{col}\")"))
                    .collect::<Vec<_>>()
                    .join(" || ' ' || ");
                let rows: Vec<String> =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT {expr} FROM \"{t}\"")))
                        .fetch_all(&mut *c)
                        .await
                        .unwrap();
                rows.join("\n")
            }
            Engine::Postgres => sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COALESCE(json_agg(x)::text, '') FROM \"{t}\" x"
            )))
            .fetch_one(&mut *c)
            .await
            .unwrap(),
        };
        out.extend_from_slice(text.as_bytes());
        out.push(b'\n');
    }
    out
}

/// The SMTP relay's password: it must appear in no log, row or message.
const SMTP_PASSWORD: &str = "smtp-Pw-93a1Zq7";
/// The text-message provider's auth token: it too must appear in no log, row or error.
const SMS_TOKEN: &str = "sms-Tok-77c1e0Qz";

/// A text-message provider on loopback that refuses every request as Twilio does a wrong token.
async fn refusing_sms_provider() -> String {
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::UNAUTHORIZED,
            r#"{"code": 20003, "message": "Authenticate", "status": 401}"#,
        )
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

async fn scan(engine: Engine) {
    let logs = captured();
    let sink = common::smtp::SmtpSink::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("smtp-password");
    std::fs::write(&password_file, format!("{SMTP_PASSWORD}\n")).unwrap();
    let sms_token_file = secrets.path().join("sms-token");
    std::fs::write(&sms_token_file, format!("{SMS_TOKEN}\n")).unwrap();
    let sms_base = refusing_sms_provider().await;
    let port = sink.addr.port();
    let app = spawn_app_with(engine, move |s| {
        s.ach.originate = true;
        s.twilio_auth_token = Some(billpay::config::SecretSetting(PHONE_TOKEN.into()));
        s.agent_hours_start = 0;
        s.agent_hours_end = 24;
        s.email = Some(billpay::config::EmailSettings {
            smtp_host: "127.0.0.1".into(),
            smtp_port: Some(port),
            tls: "none".into(),
            username: Some("billpay".into()),
            password_file: Some(password_file),
            password_env: None,
            ca_file: None,
            from_address: "billing@riverbend.example".into(),
            from_name: None,
            reply_to: None,
            max_attempts: 3,
            timeout_secs: 5,
        });
        s.sms = Some(billpay::config::SmsSettings {
            api_base: sms_base,
            account_sid: "ACleak0123".into(),
            auth_token_file: Some(sms_token_file),
            auth_token_env: None,
            from: Some("+18005550199".into()),
            messaging_service_sid: None,
            max_attempts: 3,
            timeout_secs: 5,
        });
    })
    .await;
    let mut bodies = exercise(&app).await;
    let (pages, portal) = exercise_portal(&app).await;
    bodies.extend_from_slice(&pages);
    // A text whose send the provider refuses: its error is stored and logged, the token is not.
    let now = app.app.clock.now_micros();
    let text = billpay_store::rows::OutboxRow {
        id: "msg_leaktext".into(),
        kind: "sms.reminder".into(),
        dedupe_key: "leak:text".into(),
        recipient: "+15555550123".into(),
        payload_json: r#"{"what":"due_soon","message":"$84.10 is due soon."}"#.into(),
        created_at: now,
        sent_at: None,
        attempts: 0,
    };
    app.app
        .store
        .write(move |c| {
            Box::pin(async move { billpay_store::queries::insert_outbox(c, &text).await })
        })
        .await
        .unwrap();
    let texts = app.app.drain_sms("leak-sender").await.unwrap();
    assert_eq!(
        (texts.retrying, texts.sent),
        (1, 0),
        "the provider refused the token: {texts:?}"
    );
    // Every notice the payments caused is emailed: receipts, the returned payment.
    let sent = app.app.drain_email("leak-sender").await.unwrap();
    assert!(sent.sent >= 8, "{sent:?}");
    assert!(!sink.auth().is_empty(), "the sender logged in to the relay");
    let transcript = sink.transcript();
    assert!(
        contains(&transcript, "Confirmation number"),
        "the messages were read"
    );
    assert_clean("SMTP transcript", &transcript, &app.key);
    assert!(
        !contains(&transcript, SMTP_PASSWORD),
        "the password is only in AUTH, encoded"
    );
    assert!(!contains(&transcript, "\"cvc\""));
    assert_clean("HTTP responses", &bodies, &app.key);
    let rows = dump_rows(&app).await;
    assert!(
        contains(&rows, "4242"),
        "the dump holds last-four digits, so it really read the rows"
    );
    assert_clean("stored rows", &rows, &app.key);
    if engine == Engine::Sqlite {
        let path = app.db.sqlite_path();
        let sessions = path.with_extension("db-sessions");
        assert!(
            sessions.exists(),
            "the session database is beside the database"
        );
        for file in [
            path.clone(),
            path.with_extension("db-wal"),
            sessions,
            path.with_extension("db-sessions-wal"),
        ] {
            if let Ok(bytes) = std::fs::read(&file) {
                assert!(!bytes.is_empty());
                assert_clean(&format!("{}", file.display()), &bytes, &app.key);
            }
        }
    }
    let logs = logs.lock().unwrap().clone();
    assert!(
        logs.len() > 1000,
        "logs were captured ({} bytes)",
        logs.len()
    );
    assert_clean("log lines", &without_timings(&logs), &app.key);
    for (what, hay) in [("responses", &bodies), ("rows", &rows), ("logs", &logs)] {
        assert!(
            !contains(hay, SMTP_PASSWORD),
            "{what} contain the SMTP password"
        );
        assert!(!contains(hay, SMS_TOKEN), "{what} contain the SMS token");
    }
    assert!(
        contains(&rows, "refused our credentials"),
        "the text's failure was stored, so the rows really were scanned for the token"
    );
    assert!(
        !format!("{:?}", app.app.config()).contains(SMS_TOKEN),
        "the configuration's Debug hides the SMS token"
    );
    assert!(
        !format!("{:?}", app.app.config()).contains(SMTP_PASSWORD),
        "the configuration's Debug hides the SMTP password"
    );
    // The portal's secrets: a password and answers kept only as argon2 hashes, the
    // authenticator key only sealed, used codes overwritten.
    for (what, hay) in [("responses", &bodies), ("rows", &rows), ("logs", &logs)] {
        assert!(
            !contains(hay, PORTAL_PASSWORD),
            "{what} contain the portal password"
        );
        for a in SECURITY_ANSWERS {
            assert!(
                !contains(hay, a) && !contains(hay, &a.to_lowercase()),
                "{what} contain a security answer"
            );
        }
    }
    assert!(
        contains(&rows, "$argon2id$"),
        "the password's hash was in the rows scanned"
    );
    for (what, hay) in [("rows", &rows), ("logs", &logs)] {
        for k in &portal.totp_key {
            assert!(!contains(hay, k), "{what} contain the authenticator key");
        }
        for c in &portal.used_codes {
            assert!(
                !contains(hay, c),
                "{what} contain a used one-time code ({c})"
            );
        }
    }
    let keys = keyring_secrets(&app);
    assert!(
        keys.len() >= 2,
        "the keyring holds a KEK and the fingerprint key"
    );
    for k in &keys {
        for (what, hay) in [("responses", &bodies), ("rows", &rows), ("logs", &logs)] {
            assert!(!contains(hay, k), "{what} contain vault key material");
        }
    }
    for (what, hay) in [("responses", &bodies), ("rows", &rows), ("logs", &logs)] {
        assert!(
            !contains(hay, PHONE_TOKEN),
            "{what} contain the Twilio auth token"
        );
    }

    let (bodies, rows, stripe_app) = exercise_stripe(engine).await;
    assert_clean("Stripe responses", &bodies, &stripe_app.key);
    assert_clean("Stripe rows", &rows, &stripe_app.key);
    let logs = captured().lock().unwrap().clone();
    assert_clean(
        "log lines with Stripe",
        &without_timings(&logs),
        &stripe_app.key,
    );
    for (what, hay) in [("responses", &bodies), ("rows", &rows), ("logs", &logs)] {
        assert!(
            !contains(hay, fake_stripe::SECRET_KEY),
            "{what} contain the Stripe secret key"
        );
        assert!(
            !contains(hay, fake_stripe::WEBHOOK_SECRET),
            "{what} contain the Stripe webhook secret"
        );
    }
    let debug = format!("{:?}", stripe_app.app.config());
    assert!(debug.contains("StripeProcessor"), "{debug}");
    assert!(!debug.contains(fake_stripe::SECRET_KEY));
    assert!(!debug.contains(fake_stripe::WEBHOOK_SECRET));
}

/// Payments, a refund, an in-doubt payment, webhooks and a dispute through the Stripe
/// connector: card numbers and codes reach the (fake) Stripe, and neither they nor the secret
/// key or the webhook secret reach a response, a row or a log line. Returns the responses and
/// the rows.
async fn exercise_stripe(engine: Engine) -> (Vec<u8>, Vec<u8>, TestApp) {
    let stripe = fake_stripe::FakeStripe::start().await;
    let secrets = tempfile::tempdir().unwrap();
    let key_file = secrets.path().join("stripe-key");
    std::fs::write(&key_file, format!("{}\n", fake_stripe::SECRET_KEY)).unwrap();
    let whsec_file = secrets.path().join("stripe-whsec");
    std::fs::write(&whsec_file, format!("{}\n", fake_stripe::WEBHOOK_SECRET)).unwrap();
    let base = stripe.base.clone();
    let app = spawn_app_with(engine, move |s| {
        s.processor = "stripe".into();
        s.stripe = Some(billpay::config::StripeSettings {
            api_base: base,
            secret_key_file: Some(key_file),
            secret_key_env: None,
            webhook_secret_file: Some(whsec_file),
            webhook_secret_env: None,
            webhook_tolerance_secs: 300,
            bank_debits: true,
            request_timeout_secs: 1,
            max_attempts: 2,
            breaker_failures: 50,
            breaker_cooldown_secs: 30,
        });
    })
    .await;
    let mut bodies = Vec::new();
    let acct = app.account_with_bill(50_000).await;
    let card = |n: &str, cvc: &str| json!({"type": "card", "number": n, "exp_month": 11, "exp_year": 2031, "cvc": cvc, "postal_code": "10001"});
    let ach = json!({"type": "ach", "routing_number": "110000000", "account_number": "000111111116", "account_type": "checking", "holder_name": "Pat Payer"});
    let mut paid = Vec::new();
    for (i, method) in [
        card("4242424242424242", "739"),
        card("5555555555554444", "615"),
        card("4000000000009995", "8142"),
        card("4000000000000002", "924"),
        ach,
    ]
    .into_iter()
    .enumerate()
    {
        let body =
            json!({"account_number": acct, "amount": 2001 + i as i64, "payment_method": method});
        let (_, resp) = app.pay(&format!("stripe-leak-{i}"), body).await;
        bodies.extend_from_slice(resp.to_string().as_bytes());
        if let Some(id) = resp["id"].as_str() {
            paid.push(id.to_string());
        }
    }
    // An answer lost three times: in doubt, then resolved by a webhook.
    for _ in 0..2 {
        stripe.fault(fake_stripe::Fault::SlowAnswer(
            std::time::Duration::from_millis(1500),
        ));
    }
    let body = json!({"account_number": acct, "amount": 2100, "payment_method": card("6011111111111117", "358")});
    let (s, doubt) = app.pay("stripe-leak-doubt", body).await;
    assert_eq!(s, 202, "{doubt}");
    bodies.extend_from_slice(doubt.to_string().as_bytes());
    let first = &paid[0];
    let (_, r) = app
        .post_idem(
            &format!("/api/v1/payments/{first}/refunds"),
            "stripe-leak-refund",
            json!({"amount": 500}),
        )
        .await;
    bodies.extend_from_slice(r.to_string().as_bytes());
    let pis = stripe.inner.lock().unwrap().payment_intents.clone();
    let t = app.app.clock.now().as_second();
    let deliver = |event: String| {
        let sig = fake_stripe::sign(fake_stripe::WEBHOOK_SECRET, t, &event);
        app.client
            .post(format!("{}/webhooks/stripe", app.base))
            .header("Stripe-Signature", sig)
            .body(event)
            .send()
    };
    for pi in &pis {
        let resp = deliver(fake_stripe::event(
            &stripe.next_event_id(),
            "payment_intent.succeeded",
            pi,
        ))
        .await
        .unwrap();
        bodies.extend_from_slice(&resp.bytes().await.unwrap());
    }
    let d = stripe.open_dispute(pis[0]["id"].as_str().unwrap(), 2001, "fraudulent");
    let resp = deliver(fake_stripe::event(
        &stripe.next_event_id(),
        "charge.dispute.created",
        &d,
    ))
    .await
    .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    bodies.extend_from_slice(&resp.bytes().await.unwrap());
    let (_, list) = app.get("/api/v1/disputes").await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
    bodies.extend_from_slice(list.to_string().as_bytes());
    // The numbers really went to Stripe, at charge time.
    let seen = stripe.inner.lock().unwrap().card_numbers_seen.clone();
    assert!(seen.iter().any(|n| n == "4242424242424242"), "{seen:?}");
    let rows = dump_database(&app, app.app.store.read_conn().await.unwrap(), true).await;
    assert!(contains(&rows, "stripe"), "the rows name the processor");
    assert!(contains(&rows, "fraudulent"), "the dispute row was read");
    (bodies, rows, app)
}

// One test per engine in this binary: the log capture is process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_sqlite() {
    scan(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_leaks_postgres() {
    scan(Engine::Postgres).await;
}

#[test]
fn the_scanner_finds_what_it_looks_for() {
    assert!(has_token(br#"{"cvc":"739"}"#, "739"));
    assert!(has_token(b"cvc=739 next", "739"));
    assert!(!has_token(b"elapsed=22.739ms", "739"));
    assert!(!has_token(b"95afd04d-8142-419a", "8142"));
    assert!(contains(b"xx4242424242424242xx", "4242424242424242"));
    let result = std::panic::catch_unwind(|| {
        assert_clean("sample", br#"{"number":"5555555555554444"}"#, "bp_live_x")
    });
    assert!(result.is_err());
}
