//! Account enumeration, on SQLite and PostgreSQL: every place a stranger can name an account or
//! a person — quick pay, enrolment, live chat, sign-in, password reset, the agent desk's
//! sign-in and the phone line — answers an existing one with a wrong detail exactly as it
//! answers one that does not exist: the same status, the same page (but for what was typed),
//! about the same time (the medians of interleaved tries within a few milliseconds, one lookup
//! timed at a time), and the same lockout after repeated failures.

mod common;

use std::time::{Duration, Instant};

use billpay::phone::Phone;
use billpay_services::staff::Role;
use common::visitor::{Visitor, without_tokens};
use common::*;
use serde_json::json;

/// Timed pairs per lookup (after the first, compared pair).
const PAIRS: usize = 15;
/// The tests of this file run one at a time: side by side, one test's password hashing
/// (tens of milliseconds of CPU each) on a small machine would be timed as another's lookup.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// How far apart the two medians may be (one durable commit more is about as much).
const TOLERANCE: Duration = Duration::from_millis(15);
const PASSWORD: &str = "Riverbend-Otter-Lamp-9";

/// An app whose rate limits stay out of the way of the timed pairs.
async fn roomy(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.portal.lookups_per_window = 10_000;
        s.portal.signins_per_window = 10_000;
        s.portal.resets_per_window = 10_000;
        s.portal.enrolments_per_window = 10_000;
        s.portal.codes_per_window = 10_000;
        s.ivr_verify_failures_per_hour = 1_000;
        s.twilio_auth_token = Some(billpay::config::SecretSetting(TWILIO_TOKEN.into()));
        s.agent_hours_start = 0;
        s.agent_hours_end = 24;
    })
    .await
}

/// Asks once about an existing account (`true`) and once about a missing one and compares the
/// answers (`ask` returns them with what was typed already replaced), then times [`PAIRS`]
/// interleaved pairs; `ask` gets the pair's number to vary what it types.
async fn alike(what: &str, mut ask: impl AsyncFnMut(bool, usize) -> (u16, String)) {
    let (s1, b1) = ask(true, 0).await;
    let (s2, b2) = ask(false, 0).await;
    assert_eq!(s1, s2, "{what}: the status tells an existing account apart");
    assert_eq!(b1, b2, "{what}: the answer tells an existing account apart");
    let mut times = [Vec::new(), Vec::new()];
    for i in 1..=PAIRS {
        for (k, existing) in [(0, true), (1, false)] {
            let started = Instant::now();
            let (s, _) = ask(existing, i).await;
            times[k].push(started.elapsed());
            assert_eq!(s, s1, "{what}: pair {i}");
        }
    }
    for t in &mut times {
        t.sort();
    }
    let (a, b) = (times[0][PAIRS / 2], times[1][PAIRS / 2]);
    assert!(
        a.abs_diff(b) < TOLERANCE,
        "{what}: existing {a:?}, missing {b:?} (medians of {PAIRS}; fastest {:?} and {:?})",
        times[0][0],
        times[1][0],
    );
}

/// An account with this email on file, and its number.
async fn account_with_email(app: &TestApp, email: &str) -> String {
    let (s, a) = app
        .post(
            "/api/v1/accounts",
            json!({"name": "Pat Payer", "email": email, "postal_code": "10001"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    a["account_number"].as_str().unwrap().to_string()
}

/// A valid account number (check digit and all) that no account has.
fn missing_account(i: usize) -> String {
    billpay_domain::AccountNumber::from_body(&format!("9999999{:04}", 1000 + i))
        .unwrap()
        .to_string()
}

async fn submit(v: &mut Visitor, page: &str, action: &str, form: &[(&str, &str)]) -> (u16, String) {
    let p = v.submit(page, action, form).await;
    (p.status, without_tokens(&p.body))
}

both_engines! {
    with roomy;

    async fn quick_pay_enrolment_and_chat_answer_alike(app) {
        let _alone = ONE_AT_A_TIME.lock().await;
        let account = app.account_with_bill(8_410).await;
        let mut v = Visitor::new(&app);
        alike("quick pay", async |existing, i| {
            let number = if existing { account.clone() } else { missing_account(i) };
            let (s, body) = submit(&mut v, "/pay", "/pay", &[("account_number", &number), ("postal_code", "10002")]).await;
            (s, body.replace(&number, "N"))
        })
        .await;
        let mut v = Visitor::new(&app);
        alike("enrolment", async |existing, i| {
            let number = if existing { account.clone() } else { missing_account(i) };
            let (s, body) = submit(&mut v, "/enrol", "/enrol", &[
                ("account_number", &number), ("postal_code", "10002"), ("email", "pat@example.com"),
                ("password", PASSWORD), ("password_confirm", PASSWORD),
            ]).await;
            (s, body.replace(&number, "N"))
        })
        .await;
        let mut v = Visitor::new(&app);
        alike("live chat", async |existing, i| {
            let number = if existing { account.clone() } else { missing_account(i) };
            let (s, body) = submit(&mut v, "/chat", "/chat/start", &[
                ("name", "Pat Payer"), ("account_number", &number), ("postal_code", "10002"),
            ]).await;
            (s, body.replace(&number, "N"))
        })
        .await;
    }

    async fn sign_in_and_reset_answer_alike_and_lock_alike(app) {
        let _alone = ONE_AT_A_TIME.lock().await;
        // Customers with an online sign-in, one per timed pair.
        let mut emails = Vec::new();
        for i in 0..=PAIRS + 1 {
            let email = format!("pat{i}@example.com");
            let number = account_with_email(&app, &email).await;
            let outcome = app.app.portal_enrol(
                &billpay_domain::AccountNumber::parse(&number).unwrap(),
                &billpay_domain::PostalCode::parse("10001").unwrap(),
                &email,
                &billpay_domain::SecretString::new(PASSWORD.into()),
            ).await.unwrap();
            assert!(outcome.is_ok(), "{outcome:?}");
            emails.push(email);
        }
        let mut v = Visitor::new(&app);
        alike("sign-in", async |existing, i| {
            let email = if existing { emails[i].clone() } else { format!("nobody{i}@example.com") };
            let (s, body) = submit(&mut v, "/signin", "/signin", &[("email", &email), ("password", "not the password at all")]).await;
            (s, body.replace(&email, "E"))
        })
        .await;
        let mut v = Visitor::new(&app);
        alike("password reset", async |existing, i| {
            let email = if existing { emails[i].clone() } else { format!("nobody{i}@example.com") };
            let (s, body) = submit(&mut v, "/reset", "/reset", &[("email", &email)]).await;
            (s, body.replace(&email, "E"))
        })
        .await;
        // Wrong passwords lock an email's sign-in whether or not it has one.
        let last = emails.last().unwrap().clone();
        let mut answers = Vec::new();
        for email in [last.as_str(), "nobody-at-all@example.com"] {
            let mut w = Visitor::new(&app);
            let mut answer = (0, String::new());
            for _ in 0..11 {
                answer = submit(&mut w, "/signin", "/signin", &[("email", email), ("password", "still not it at all")]).await;
            }
            answers.push((answer.0, answer.1.replace(email, "E")));
        }
        assert_eq!(answers[0].0, 429, "{}", answers[0].1);
        assert_eq!(answers[0], answers[1], "the lockout tells an existing email apart");
    }

    async fn the_desk_sign_in_answers_alike_and_locks_alike(app) {
        let _alone = ONE_AT_A_TIME.lock().await;
        let mut emails = Vec::new();
        for i in 0..=PAIRS + 1 {
            let email = format!("agent{i}@example.com");
            common::desk::staff(&app, &email, "Ann Agent", Role::Agent).await;
            emails.push(email);
        }
        let mut b = common::desk::Browser::new(&app);
        let ask = async |b: &mut common::desk::Browser, email: &str| {
            let p = b.submit("/desk/signin", "/desk/signin", &[("email", email), ("password", "not the password at all")]).await;
            (p.status, without_tokens(&p.body).replace(email, "E"))
        };
        alike("desk sign-in", async |existing, i| {
            let email = if existing { emails[i].clone() } else { format!("nobody{i}@example.com") };
            ask(&mut b, &email).await
        })
        .await;
        let mut answers = Vec::new();
        for email in [emails.last().unwrap().as_str(), "nobody-at-all@example.com"] {
            let mut w = common::desk::Browser::new(&app);
            let mut answer = (0, String::new());
            for _ in 0..11 {
                answer = ask(&mut w, email).await;
            }
            answers.push(answer);
        }
        assert!(answers[0].1.contains("Too many failed sign-ins"), "{}", answers[0].1);
        assert_eq!(answers[0], answers[1], "the lockout tells an existing staff email apart");
    }

    async fn the_phone_line_answers_alike(app) {
        let _alone = ONE_AT_A_TIME.lock().await;
        let account = app.account_with_bill(8_410).await;
        // A caller the line does not know, typing an account number and a wrong ZIP.
        let call = |sid: String, number: String| {
            let base = app.base.clone();
            async move {
                let phone = Phone::new(&base, TWILIO_TOKEN, "+15555550177", &sid);
                let mut keys: Vec<String> = ["1", number.as_str(), "11111", "22222", "33333"].iter().map(|k| k.to_string()).collect();
                keys.reverse();
                let mut lines = Vec::new();
                phone.call(|| keys.pop(), |l| lines.push(l.to_string())).await.expect("call");
                lines.join("\n").replace(&number, "N")
                    .replace(&billpay_ivr::spoken_digits(&number), "<N>")
                    .replace(&billpay_ivr::spoken_digits(&number[number.len() - 4..]), "<last 4>")
            }
        };
        alike("phone line", async |existing, i| {
            let number = if existing { account.clone() } else { missing_account(i) };
            (200, call(format!("CAenum{existing}{i}"), number).await)
        })
        .await;
    }
}
