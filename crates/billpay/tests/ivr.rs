//! The phone line end to end: signed webhooks into the real router, on SQLite and PostgreSQL,
//! driven by the same simulated phone as `billpay phone`. Transcripts are golden (insta), with
//! the confirmation number and today's date masked.

mod common;

use billpay::phone::Phone;
use common::{Engine, TestApp, line, spawn_app_with};
use serde_json::json;

const TOKEN: &str = common::TWILIO_TOKEN;
const CALLER: &str = "+15555550101";

/// An account with caller id CALLER, ZIP 10001, $84.10 due 2031-01-15.
async fn account(t: &TestApp) -> String {
    let (s, a) = t
        .post(
            "/api/v1/accounts",
            json!({"name": "Pat Payer", "phone": CALLER, "postal_code": "10001"}),
        )
        .await;
    assert_eq!(s, 201, "{a}");
    let number = a["account_number"].as_str().expect("number").to_string();
    let (s, b) = t
        .post(
            &format!("/api/v1/accounts/{number}/statements"),
            json!({"statement_date": "2030-12-20", "due_date": "2031-01-15", "amount_due": 8410}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    number
}

async fn save_card(t: &TestApp, number: &str) {
    let (s, b) = t
        .post(
            &format!("/api/v1/accounts/{number}/payment_methods"),
            json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034}),
        )
        .await;
    assert!(s == 201 || s == 200, "{b}");
}

/// Places a call with these keys and returns the transcript, masked.
async fn dial(t: &TestApp, sid: &str, from: &str, account: &str, keys: &[&str]) -> String {
    let phone = Phone::new(&t.base, TOKEN, from, sid);
    let mut script: Vec<String> = keys
        .iter()
        .map(|k| k.replace("{account}", account))
        .collect();
    script.reverse();
    let mut lines = Vec::new();
    phone
        .call(|| script.pop(), |l| lines.push(l.to_string()))
        .await
        .expect("call");
    mask(t, &lines.join("\n"), account)
}

fn mask(t: &TestApp, text: &str, account: &str) -> String {
    let today = t
        .app
        .clock
        .now()
        .to_zoned(jiff::tz::TimeZone::get("America/New_York").expect("tz"))
        .date();
    let mut out = text
        .replace(
            &billpay_ivr::spoken_date(today, billpay_domain::Language::En),
            "<today>",
        )
        .replace(
            &billpay_ivr::spoken_date(today, billpay_domain::Language::Es),
            "<today>",
        )
        .replace(account, "<account>");
    let last4 = &account[account.len() - 4..];
    out = out.replace(&billpay_ivr::spoken_digits(last4), "<account last 4>");
    for marker in ["confirmation number is ", "número de confirmación es "] {
        let mut result = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(marker) {
            let (head, tail) = rest.split_at(i + marker.len());
            result.push_str(head);
            let end = tail.find('.').unwrap_or(tail.len());
            result.push_str("<confirmation>");
            rest = &tail[end..];
        }
        result.push_str(rest);
        out = result;
    }
    out
}

/// A second billpay on the same database and keyring, started now, serving on its own port.
async fn second_instance(t: &TestApp) -> String {
    let settings = billpay::config::Settings {
        database_url: t.db.url.clone(),
        keyring_file: Some(t.db.dir.path().join("vault-keyring.toml")),
        twilio_auth_token: Some(billpay::config::SecretSetting(TOKEN.into())),
        agent_hours_start: 0,
        agent_hours_end: 24,
        ..billpay::config::Settings::default()
    };
    let (app, _) = billpay::build_with_clock(&settings, true, t.clock.clone())
        .await
        .expect("second instance");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, billpay_http::router(app)).await;
    });
    format!("http://{addr}")
}

/// Sets the clock to this New York local time.
fn at(t: &TestApp, date: &str, time: &str) {
    let tz = jiff::tz::TimeZone::get("America/New_York").expect("tz");
    let when = billpay_domain::local_instant(
        date.parse().expect("date"),
        time.parse().expect("time"),
        &tz,
    );
    let now = billpay_services::Clock::now(t.clock.as_ref());
    t.clock.advance(when.duration_since(now));
}

async fn save_bank(t: &TestApp, number: &str) {
    let (s, b) = t
        .post(
            &format!("/api/v1/accounts/{number}/payment_methods"),
            json!({"type": "ach", "routing_number": "110000000", "account_number": "000123456789",
                   "account_type": "checking", "holder_name": "Pat Payer"}),
        )
        .await;
    assert!(s == 201 || s == 200, "{b}");
}

/// The line with representatives reached by dialing a number (with a whisper), not a queue.
async fn dialing_line(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.twilio_auth_token = Some(billpay::config::SecretSetting(TOKEN.into()));
        s.agent_hours_start = 0;
        s.agent_hours_end = 24;
        s.agent_number = Some("+15555550100".into());
    })
    .await
}

both_engines! {
    with dialing_line;
    async fn transfer_dials_the_representatives_who_hear_the_verified_account(t) {
        let n = account(&t).await;
        let text = dial(&t, "CAwhisper", CALLER, &n, &["2", "1", "10001", "0"]).await;
        insta::assert_snapshot!("agent_dial_whisper", text);
        let (s, call) = t.get("/api/v1/ivr/calls/CAwhisper").await;
        assert_eq!(s, 200, "{call}");
        assert_eq!(call["verified_account"], n.as_str());
        assert_eq!(call["language"], "es");
        assert_eq!(call["transfer_reason"], "caller_asked");
        assert_eq!(call["from"], CALLER);
        let (s, _) = t.get("/api/v1/ivr/calls/CAnosuchcall").await;
        assert_eq!(s, 404);
        // Nobody answers the representatives' number: the caller is told, a call back noted.
        let p = Phone::new(&t.base, TOKEN, CALLER, "CAwhisper");
        let (s, xml) = p.post("/ivr/twilio/dial-status?call=CAwhisper", &[("DialCallStatus", "no-answer")]).await.expect("post");
        assert_eq!(s, 200);
        assert!(xml.contains("Todos nuestros representantes están ocupados"), "{xml}");
        assert!(xml.ends_with("<Hangup/></Response>"), "{xml}");
        let (_, call) = t.get("/api/v1/ivr/calls/CAwhisper").await;
        assert_eq!(call["callback_requested"], true, "{call}");
        let (_, xml) = p.post("/ivr/twilio/dial-status?call=CAwhisper", &[("DialCallStatus", "completed")]).await.expect("post");
        assert!(!xml.contains("<Say"), "after a conversation the call just ends: {xml}");
    }
}

both_engines! {
    with line;
    async fn saved_card_in_english(t) {
        let n = account(&t).await;
        save_card(&t, &n).await;
        let text = dial(&t, "CAsaved", CALLER, &n, &["1", "1", "10001", "1", "1", "1", "1", ""]).await;
        insta::assert_snapshot!("saved_card_en", text);
        assert_eq!(t.balance(&n).await, 0);
        t.assert_verified().await;
    }

    async fn new_card_in_spanish(t) {
        let n = account(&t).await;
        let text = dial(
            &t, "CAnewes", "+15550000000", &n,
            &["2", "{account}", "10001", "2", "2500", "1", "1", "378282246310005", "1234", "1234", "10001", "1", "2", "0"],
        ).await;
        insta::assert_snapshot!("new_card_es", text);
        assert_eq!(t.balance(&n).await, 8410 - 2500);
    }

    async fn ach_with_tel_authorization(t) {
        let n = account(&t).await;
        let text = dial(
            &t, "CAach", CALLER, &n,
            &["1", "1", "10001", "1", "2", "1", "110000000", "000123456789", "1"],
        ).await;
        insta::assert_snapshot!("ach_tel_en", text);
        let (_, list) = t.get(&format!("/api/v1/accounts/{n}/payments")).await;
        let id = list["data"][0]["id"].as_str().expect("payment").to_string();
        let auth = t.app.tel_authorization(&id).await.expect("read").expect("stored");
        assert_eq!(auth.call_sid, "CAach");
        assert!(auth.text.contains("single ACH debit of 84 dollars and 10 cents"));
        assert!(auth.text.contains("ending in 6, 7, 8, 9"));
        assert!(!auth.text.contains("123456789"));
    }

    async fn decline_then_another_card(t) {
        let n = account(&t).await;
        let text = dial(
            &t, "CAdecline", CALLER, &n,
            &["2", "1", "10001", "1", "1", "4000000000009995", "1234", "123", "10001", "1",
              "1", "1", "5555555555554444", "1234", "123", "10001", "1"],
        ).await;
        insta::assert_snapshot!("decline_then_retry_es", text);
        assert_eq!(t.balance(&n).await, 0);
    }

    async fn mistyped_account_number(t) {
        let n = account(&t).await;
        // Swap two adjacent digits: the check digit catches it before any lookup.
        let mut typo: Vec<char> = n.chars().collect();
        let i = typo.iter().zip(typo.iter().skip(1)).position(|(a, b)| a != b).expect("two different digits");
        typo.swap(i, i + 1);
        let typo: String = typo.into_iter().collect();
        let text = dial(&t, "CAtypo", "+15550000000", &n, &["1", &typo, "{account}", "10001", "0"])
            .await
            .replace(&typo, "<account with two digits swapped>");
        insta::assert_snapshot!("mistyped_account_en", text);
    }

    async fn wrong_zip_three_times(t) {
        let n = account(&t).await;
        let text = dial(&t, "CAzip", CALLER, &n, &["1", "1", "11111", "22222", "33333"]).await;
        insta::assert_snapshot!("wrong_zip_en", text);
    }

    async fn no_input(t) {
        let n = account(&t).await;
        let text = dial(&t, "CAsilent", CALLER, &n, &["", ""]).await;
        insta::assert_snapshot!("no_input", text);
    }

    async fn transfer_to_an_agent_in_spanish(t) {
        let n = account(&t).await;
        let text = dial(&t, "CAagent", CALLER, &n, &["2", "1", "10001", "0"]).await;
        insta::assert_snapshot!("agent_es", text);
        let row = t.app.ivr_call("CAagent").await.expect("read").expect("row");
        assert!(row.state.contains(&format!("\"verified_account\":\"{n}\"")));
    }

    async fn scheduled_payment_with_a_saved_card(t) {
        at(&t, "2030-12-22", "10:00");
        let n = account(&t).await;
        save_card(&t, &n).await;
        let text = dial(
            &t, "CAsched", CALLER, &n,
            &["1", "1", "10001", "4", "0231", "0110", "2", "5000", "1", "1", "1", ""],
        ).await;
        insta::assert_snapshot!("scheduled_card_en", text);
        assert_eq!(t.balance(&n).await, 8410, "nothing is charged today");
        let (_, list) = t.get(&format!("/api/v1/accounts/{n}/scheduled_payments")).await;
        assert_eq!(list["data"].as_array().map(Vec::len), Some(1), "{list}");
        assert_eq!(list["data"][0]["start_date"], "2031-01-10");
        assert_eq!(list["data"][0]["amount"], 5000);
        at(&t, "2031-01-10", "07:00");
        t.app.drain_jobs("test").await.expect("jobs");
        assert_eq!(t.balance(&n).await, 8410 - 5000);
        let (_, payments) = t.get(&format!("/api/v1/accounts/{n}/payments")).await;
        assert_eq!(payments["data"][0]["channel"], "phone");
        t.assert_verified().await;
    }

    async fn scheduled_bank_debit_keeps_its_tel_authorization(t) {
        at(&t, "2030-12-22", "10:00");
        let n = account(&t).await;
        save_bank(&t, &n).await;
        let text = dial(
            &t, "CAschedbank", CALLER, &n,
            &["2", "1", "10001", "4", "0110", "1", "1", "1", ""],
        ).await;
        insta::assert_snapshot!("scheduled_bank_es", text);
        // The debit was authorized for its amount and account: changing them needs a new call.
        let (_, list) = t.get(&format!("/api/v1/accounts/{n}/scheduled_payments")).await;
        let sched = list["data"][0]["id"].as_str().expect("scheduled").to_string();
        let (s, e) = t.send_patch(&format!("/api/v1/scheduled_payments/{sched}"), json!({"amount": 100})).await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["error"]["code"], "reauthorization_required");
        at(&t, "2031-01-10", "07:00");
        t.app.drain_jobs("test").await.expect("jobs");
        let (_, list) = t.get(&format!("/api/v1/accounts/{n}/payments")).await;
        let id = list["data"][0]["id"].as_str().expect("payment").to_string();
        let auth = t.app.tel_authorization(&id).await.expect("read").expect("stored");
        assert_eq!(auth.call_sid, "CAschedbank");
        assert!(auth.text.contains("un único débito ACH de 84 dólares con 10 centavos"), "{}", auth.text);
        assert!(auth.text.contains("el 10 de enero de 2031"), "{}", auth.text);
        assert!(!auth.text.contains("123456789"));
        // Authorized on the call, not when the debit ran.
        let consented = jiff::Timestamp::from_microsecond(auth.authorized_at).expect("time");
        let tz = jiff::tz::TimeZone::get("America/New_York").expect("tz");
        assert_eq!(consented.to_zoned(tz).date(), jiff::civil::date(2030, 12, 22));
    }

    async fn a_payment_scheduled_by_phone_never_pays_a_bill_already_paid(t) {
        at(&t, "2030-12-22", "10:00");
        let n = account(&t).await;
        save_card(&t, &n).await;
        dial(&t, "CAschedpaid", CALLER, &n, &["1", "1", "10001", "4", "0110", "1", "1", "1", ""]).await;
        // The customer pays the bill another way before the scheduled date.
        let (s, p) = t.pay("paid-early", json!({"account_number": n, "amount": 8410, "channel": "web",
            "payment_method": {"type": "card", "number": "5555555555554444", "exp_month": 12, "exp_year": 2034, "cvc": "123", "postal_code": "10001"}})).await;
        assert_eq!(s, 201, "{p}");
        at(&t, "2031-01-10", "07:00");
        t.app.drain_jobs("test").await.expect("jobs");
        assert_eq!(t.balance(&n).await, 0);
        assert_eq!(t.processor_charges().await, 1, "the scheduled payment charged nothing");
        let (_, list) = t.get(&format!("/api/v1/accounts/{n}/scheduled_payments")).await;
        assert_eq!(list["data"][0]["status"], "completed", "{list}");
        t.assert_verified().await;
    }

    async fn autopay_enrollment_by_phone(t) {
        at(&t, "2030-12-22", "10:00");
        let n = account(&t).await;
        save_card(&t, &n).await;
        let text = dial(&t, "CAautopay", CALLER, &n, &["1", "1", "10001", "5", "1", "1", "5", "2", ""]).await;
        insta::assert_snapshot!("autopay_enroll_en", text);
        let (s, a) = t.get(&format!("/api/v1/accounts/{n}/autopay")).await;
        assert_eq!(s, 200, "{a}");
        assert_eq!(a["status"], "active");
        assert!(a["authorization_text"].as_str().unwrap_or("").starts_with("Today, December 22, 2030, you authorize"), "{a}");
        // AutoPay pays the bill on its due date.
        at(&t, "2031-01-15", "07:00");
        t.app.drain_jobs("test").await.expect("jobs");
        assert_eq!(t.balance(&n).await, 0);
        t.assert_verified().await;
    }

    async fn autopay_turned_off_by_phone_in_spanish(t) {
        at(&t, "2030-12-22", "10:00");
        let n = account(&t).await;
        save_card(&t, &n).await;
        dial(&t, "CAapon", CALLER, &n, &["2", "1", "10001", "5", "1", "1", ""]).await;
        let text = dial(&t, "CAapoff", CALLER, &n, &["2", "1", "10001", "5", "1", ""]).await;
        insta::assert_snapshot!("autopay_off_es", text);
        let (_, a) = t.get(&format!("/api/v1/accounts/{n}/autopay")).await;
        assert_eq!(a["status"], "canceled", "{a}");
        at(&t, "2031-01-15", "07:00");
        t.app.drain_jobs("test").await.expect("jobs");
        assert_eq!(t.balance(&n).await, 8410, "AutoPay was turned off");
    }

    async fn saved_bank_account_with_tel_authorization(t) {
        let n = account(&t).await;
        save_bank(&t, &n).await;
        let text = dial(&t, "CAsavedbank", CALLER, &n, &["1", "1", "10001", "1", "1", "1", ""]).await;
        insta::assert_snapshot!("saved_bank_en", text);
        assert_eq!(t.balance(&n).await, 0);
    }

    async fn with_the_processor_down_the_caller_schedules_the_payment_instead(t) {
        let n = account(&t).await;
        save_card(&t, &n).await;
        t.sandbox.inject(billpay_services::sandbox::Fault::Unavailable);
        let tomorrow = t.app.clock.now()
            .to_zoned(jiff::tz::TimeZone::get("America/New_York").expect("tz"))
            .date()
            .tomorrow()
            .expect("tomorrow");
        let mmdd = tomorrow.strftime("%m%d").to_string();
        let text = dial(&t, "CAdown", CALLER, &n, &["1", "1", "10001", "1", "1", "1", "1", &mmdd, "1", "1", "1"]).await;
        assert!(text.contains("Our payment system is not answering right now. Nothing was charged."), "{text}");
        assert!(text.contains("To schedule this payment for a later date with a saved payment method, press 1."), "{text}");
        assert_eq!(t.processor_charges().await, 0, "nothing reached the processor");
        assert_eq!(t.balance(&n).await, 8410);
        let (_, list) = t.get(&format!("/api/v1/accounts/{n}/scheduled_payments")).await;
        let scheduled = list["data"].as_array().expect("list");
        assert_eq!(scheduled.len(), 1, "{text}\n{list}");
        assert_eq!(scheduled[0]["start_date"], tomorrow.to_string());
        assert_eq!(scheduled[0]["amount"], 8410);
        t.assert_verified().await;
    }

    async fn in_doubt_payment_is_not_taken_twice(t) {
        let n = account(&t).await;
        save_card(&t, &n).await;
        t.sandbox.inject(billpay_services::sandbox::Fault::TimeoutAfterCharge);
        let text = dial(&t, "CAdoubt", CALLER, &n, &["1", "1", "10001", "1", "1", "1"]).await;
        insta::assert_snapshot!("in_doubt_en", text);
        let (_, call) = t.get("/api/v1/ivr/calls/CAdoubt").await;
        assert_eq!(call["transfer_reason"], "in_doubt");
        assert_eq!(t.processor_charges().await, 1);
        assert_eq!(t.balance(&n).await, 8410, "not yet known to be paid");
        // The provider redelivers the confirming keypress: answered from storage, no charge.
        let p = Phone::new(&t.base, TOKEN, CALLER, "CAdoubt");
        let (s, again) = p.post("/ivr/twilio/gather?turn=6", &[("Digits", "1")]).await.expect("redeliver");
        assert_eq!(s, 200);
        assert!(!again.contains("was approved"), "{again}");
        // Reconciliation asks the processor by the call's key and finds the one charge.
        t.clock.advance(jiff::SignedDuration::from_mins(5));
        t.app.reconcile().await.expect("reconcile");
        assert_eq!(t.balance(&n).await, 0, "the in-doubt payment resolved as paid");
        assert_eq!(t.processor_charges().await, 1, "never charged a second time");
        t.assert_verified().await;
    }

    async fn unsigned_or_wrongly_signed_webhooks_are_refused(t) {
        let good = Phone::new(&t.base, TOKEN, CALLER, "CAsig");
        let bad = Phone::new(&t.base, "not-the-token", CALLER, "CAsig");
        let (s, body) = bad.post("/ivr/twilio/voice", &[]).await.expect("post");
        assert_eq!((s, body.as_str()), (403, ""));
        let r = t.client.post(format!("{}/ivr/twilio/voice", t.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("CallSid=CAsig&From=%2B15555550101").send().await.expect("post");
        assert_eq!(r.status().as_u16(), 403);
        assert_eq!(r.text().await.expect("body"), "");
        assert!(t.app.ivr_call("CAsig").await.expect("read").is_none());
        let (s, body) = good.post("/ivr/twilio/voice", &[]).await.expect("post");
        assert_eq!(s, 200);
        assert!(body.contains("Para español, oprima 2."));
    }

    async fn redelivered_webhook_never_pays_twice(t) {
        let n = account(&t).await;
        save_card(&t, &n).await;
        let p = Phone::new(&t.base, TOKEN, CALLER, "CAredeliver");
        let mut last = String::new();
        let (s, _) = p.post("/ivr/twilio/voice", &[]).await.expect("voice");
        assert_eq!(s, 200);
        for (turn, d) in ["1", "1", "10001", "1", "1"].iter().enumerate() {
            let (s, body) = p.post(&format!("/ivr/twilio/gather?turn={}", turn + 1), &[("Digits", d)]).await.expect("gather");
            assert_eq!(s, 200);
            last = body;
        }
        assert!(last.contains("To make this payment, press 1."), "{last}");
        let (_, first) = p.post("/ivr/twilio/gather?turn=6", &[("Digits", "1")]).await.expect("pay");
        let (_, again) = p.post("/ivr/twilio/gather?turn=6", &[("Digits", "1")]).await.expect("pay again");
        assert!(first.contains("was approved"), "{first}");
        assert_eq!(first, again);
        assert_eq!(t.processor_charges().await, 1);
        assert_eq!(t.balance(&n).await, 0);
    }

    async fn a_call_goes_on_at_another_instance_after_a_restart(t) {
        let n = account(&t).await;
        let first = Phone::new(&t.base, TOKEN, "+15550000000", "CAmoved");
        let (s, _) = first.post("/ivr/twilio/voice", &[]).await.expect("voice");
        assert_eq!(s, 200);
        let keys = ["2", n.as_str(), "10001", "2", "2500", "1", "1", "378282246310005", "1234", "1234", "10001", "1"];
        // The first instance hears the card number and expiry...
        for (turn, d) in keys[..9].iter().enumerate() {
            let (s, _) = first.post(&format!("/ivr/twilio/gather?turn={}", turn + 1), &[("Digits", d)]).await.expect("gather");
            assert_eq!(s, 200);
        }
        // ...and a freshly started second instance on the same database takes the rest: the
        // security code, the ZIP and the confirmation, with the sealed digits from the first.
        let second = second_instance(&t).await;
        let phone = Phone::new(&second, TOKEN, "+15550000000", "CAmoved");
        let mut last = String::new();
        for (turn, d) in keys.iter().enumerate().skip(9) {
            let (s, body) = phone.post(&format!("/ivr/twilio/gather?turn={}", turn + 1), &[("Digits", d)]).await.expect("gather");
            assert_eq!(s, 200);
            last = body;
        }
        assert!(last.contains("aprobado"), "{last}");
        assert_eq!(t.balance(&n).await, 8410 - 2500);
        assert!(t.app.ivr_call("CAmoved").await.expect("read").expect("row").sealed_ciphertext.is_none());
        t.assert_verified().await;
    }

    async fn no_card_digits_in_stored_call_state(t) {
        let n = account(&t).await;
        // A call that goes silent mid-capture (no status callback) loses its digits to the sweep.
        let q = Phone::new(&t.base, TOKEN, CALLER, "CAabandoned");
        q.post("/ivr/twilio/voice", &[]).await.expect("voice");
        for (turn, d) in ["1", "1", "10001", "1", "1", "5555555555554444"].iter().enumerate() {
            q.post(&format!("/ivr/twilio/gather?turn={}", turn + 1), &[("Digits", d)]).await.expect("gather");
        }
        assert!(t.app.ivr_call("CAabandoned").await.expect("read").expect("row").sealed_ciphertext.is_some());
        let early = t.app.reconcile().await.expect("reconcile");
        assert_eq!(early.idle_call_digits_wiped, 0, "live calls keep their digits");
        t.clock.advance(jiff::SignedDuration::from_mins(16));
        let swept = t.app.reconcile().await.expect("reconcile");
        assert!(swept.idle_call_digits_wiped >= 1);
        assert!(t.app.ivr_call("CAabandoned").await.expect("read").expect("row").sealed_ciphertext.is_none());
        let p = Phone::new(&t.base, TOKEN, CALLER, "CAleak");
        p.post("/ivr/twilio/voice", &[]).await.expect("voice");
        for (turn, d) in ["1", "1", "10001", "1", "1", "4242424242424242", "1234", "123"].iter().enumerate() {
            p.post(&format!("/ivr/twilio/gather?turn={}", turn + 1), &[("Digits", d)]).await.expect("gather");
        }
        // Mid-capture: the digits wait sealed, never in the readable state.
        let row = t.app.ivr_call("CAleak").await.expect("read").expect("row");
        assert!(row.sealed_ciphertext.is_some());
        let row = t.app.ivr_call("CAleak").await.expect("read").expect("row");
        let readable = format!("{} {}", row.state, row.last_twiml.clone().unwrap_or_default());
        assert!(!readable.contains("4242424242424242"), "{readable}");
        assert!(!readable.contains("\"123\""));
        assert!(!row.sealed_ciphertext.clone().unwrap_or_default().contains("4242"));
        p.post("/ivr/twilio/gather?turn=9", &[("Digits", "10001")]).await.expect("zip");
        p.post("/ivr/twilio/gather?turn=10", &[("Digits", "1")]).await.expect("pay");
        let row = t.app.ivr_call("CAleak").await.expect("read").expect("row");
        assert!(row.sealed_ciphertext.is_none(), "digits must be gone once the payment is made");
        assert!(!format!("{row:?}").contains("4242424242424242"));
        let (_, list) = t.get(&format!("/api/v1/accounts/{n}/payments")).await;
        assert!(!list.to_string().contains("4242424242424242"));
        assert_eq!(list["data"][0]["channel"], "phone");
        p.post("/ivr/twilio/status", &[("CallStatus", "completed")]).await.expect("status");
        let row = t.app.ivr_call("CAleak").await.expect("read").expect("row");
        assert_eq!(row.status, "completed");
    }
}

/// The line with a low per-number limit on failed account verifications.
async fn strict_line(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.twilio_auth_token = Some(billpay::config::SecretSetting(TOKEN.into()));
        s.agent_hours_start = 0;
        s.agent_hours_end = 24;
        s.ivr_verify_failures_per_hour = 2;
    })
    .await
}

both_engines! {
    with strict_line;

    async fn a_number_guessing_accounts_over_several_calls_is_handed_to_a_representative(t) {
        let n = account(&t).await;
        let guesser = "+15550004444";
        // Two misses on a first call (the third would end that call anyway).
        let text = dial(&t, "CAguess1", guesser, &n, &["1", "{account}", "11111", "{account}", "22222", "0"]).await;
        assert_eq!(text.matches("account number and ZIP code do not match our records").count(), 2, "{text}");
        assert!(!text.contains("cannot take more account entries"), "{text}");
        // A new call, on any instance: the number is over its limit at its first miss.
        let text = dial(&t, "CAguess2", guesser, &n, &["1", "{account}", "33333"]).await;
        assert!(text.contains("cannot take more account entries from this phone number"), "{text}");
        // Another caller is unaffected and pays.
        let text = dial(&t, "CAother", "+15550005555", &n, &["1", "{account}", "10001"]).await;
        assert!(!text.contains("cannot take more"), "{text}");
        assert!(text.contains("Your balance is"), "{text}");
    }
}
