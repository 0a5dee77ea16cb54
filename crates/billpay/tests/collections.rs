//! Collections over simulated weeks, on SQLite and PostgreSQL: a late fee once per statement and
//! its waiver; a disconnection notice, then suspension on a business day, delivered to the
//! biller as signed webhook events; restoration as soon as the past-due amount is paid; holds
//! and payment arrangements that pause collections, and a broken arrangement that resumes them.

mod common;

use common::hooks::receiver;
use common::*;
use jiff::civil::Date;
use serde_json::{Value, json};

fn set_clock(app: &TestApp, at: jiff::Timestamp) {
    let now = billpay_services::Clock::now(app.clock.as_ref());
    app.clock.advance(at.duration_since(now));
}

fn noon(date: Date) -> jiff::Timestamp {
    billpay_domain::local_instant(
        date,
        "12:00".parse().unwrap(),
        &jiff::tz::TimeZone::get("America/New_York").unwrap(),
    )
}

async fn account(app: &TestApp) -> String {
    let (s, a) = app
        .post("/api/v1/accounts", json!({"name": "Pat Payer", "email": "pat@example.com", "postal_code": "10001", "timezone": "America/New_York"}))
        .await;
    assert_eq!(s, 201, "{a}");
    a["account_number"].as_str().unwrap().to_string()
}

async fn bill(app: &TestApp, acct: &str, statement_date: &str, due: &str, cents: i64) {
    let (s, b) = app
        .post(
            &format!("/api/v1/accounts/{acct}/statements"),
            json!({"statement_date": statement_date, "due_date": due, "amount_due": cents}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

/// Days from `from` to `to` (exclusive): set the clock to noon, run due jobs, check the ledger.
async fn live(app: &TestApp, from: &str, to: &str, mut each_day: impl FnMut(Date)) {
    let mut day: Date = from.parse().unwrap();
    let end: Date = to.parse().unwrap();
    while day < end {
        set_clock(app, noon(day));
        each_day(day);
        app.app.drain_jobs("test").await.unwrap();
        app.assert_verified().await;
        day = day.tomorrow().unwrap();
    }
}

async fn status(app: &TestApp, acct: &str) -> String {
    let (_, a) = app.get(&format!("/api/v1/accounts/{acct}")).await;
    a["status"].as_str().unwrap_or_default().to_string()
}

async fn outbox(app: &TestApp, kind: &str) -> Vec<String> {
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query_scalar::<_, String>(
        "SELECT payload_json FROM outbox WHERE kind = $1 ORDER BY created_at",
    )
    .bind(kind)
    .fetch_all(&mut *c)
    .await
    .unwrap()
}

async fn collecting(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.collections.late_fee_cents = 500;
        s.collections.grace_days = 5;
        s.collections.suspend_after_days = 20;
        s.collections.disconnect_notice_days = 10;
        s.collections.no_suspension_dates = vec!["2027-03-22".into()];
    })
    .await
}

both_engines! {
    with collecting;

    async fn late_fee_notice_suspension_and_restoration(app) {
        let (url, got) = receiver().await;
        let (s, hook) = app.post("/api/v1/webhook_endpoints", json!({"url": url})).await;
        assert_eq!(s, 201, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_string();
        set_clock(&app, noon("2027-02-20".parse().unwrap()));
        let acct = account(&app).await;
        // Due Feb 27 (Saturday): late fee after 5 days of grace (Mar 5); 20 days past due is
        // Mar 19 (Friday)... a no-suspension day is configured for Mar 22, so use a due date
        // whose suspension day falls on a weekend: due Mar 1 + 20 = Mar 21 (Sunday) -> Mar 22
        // (configured) -> Mar 23 (Tuesday).
        bill(&app, &acct, "2027-02-20", "2027-03-01", 10_000).await;
        live(&app, "2027-02-20", "2027-03-26", |_| {}).await;

        let (_, charges) = app.get(&format!("/api/v1/accounts/{acct}/charges")).await;
        let fees: Vec<&Value> = charges["data"].as_array().unwrap().iter().filter(|c| c["kind"] == "late_fee").collect();
        assert_eq!(fees.len(), 1, "one late fee for the statement: {charges}");
        assert_eq!(fees[0]["amount"], 500);
        assert_eq!(fees[0]["created_at"].as_str().unwrap()[..10], *"2027-03-07", "the day after 5 days of grace");
        assert_eq!(outbox(&app, "email.past_due").await.len(), 1);
        let notices = outbox(&app, "email.disconnect_notice").await;
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert!(notices[0].contains("2027-03-23"), "{notices:?}");
        assert_eq!(status(&app, &acct).await, "suspended");
        let (_, events) = app.get("/api/v1/events").await;
        let kinds: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, vec!["service.suspended"]);
        let suspended_at = events["data"][0]["created"].as_str().unwrap().to_string();
        assert!(suspended_at.starts_with("2027-03-23"), "not on the weekend or the configured day: {suspended_at}");

        // A supervisor waives the fee; a second waiver is refused.
        let fee_id = fees[0]["id"].as_str().unwrap().to_string();
        let (s, w) = app.post(&format!("/api/v1/charges/{fee_id}/waive"), json!({"supervisor": "sam", "reason": "first time late"})).await;
        assert_eq!(s, 201, "{w}");
        assert_eq!(w["amount"], -500);
        let (s, again) = app.post(&format!("/api/v1/charges/{fee_id}/waive"), json!({"supervisor": "sam", "reason": "again"})).await;
        assert_eq!(s, 409, "{again}");
        assert_eq!(app.balance(&acct).await, 10_000);

        // Paying the past-due amount restores service at once.
        let (s, p) = app.pay_with(&acct, 10_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        app.app.drain_jobs("test").await.unwrap();
        assert_eq!(status(&app, &acct).await, "current");
        let (_, events) = app.get("/api/v1/events").await;
        let kinds: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, vec!["service.suspended", "service.restored"]);

        // The webhook deliveries: retried after the receiver's first failure, signed.
        for _ in 0..20 {
            app.clock.advance(jiff::SignedDuration::from_mins(5));
            app.app.drain_jobs("test").await.unwrap();
            if got.lock().unwrap().len() >= 2 { break; }
        }
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 2, "{got:?}");
        for (_, sig, body) in &got {
            let t: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
            assert_eq!(*sig, billpay_services::webhooks::signature(secret.as_bytes(), t, body), "the signature verifies");
        }
        assert!(got[0].2.contains("service.suspended") && got[1].2.contains("service.restored"));
        app.assert_emails_render(&["email.past_due", "email.disconnect_notice", "email.service_suspended", "email.service_restored"]).await;
        app.assert_verified().await;
    }

    async fn holds_and_arrangements_pause_collections_and_a_broken_one_resumes_them(app) {
        set_clock(&app, noon("2027-04-01".parse().unwrap()));
        let held = account(&app).await;
        let arranged = account(&app).await;
        let broken = account(&app).await;
        for acct in [&held, &arranged, &broken] {
            bill(&app, acct, "2027-04-01", "2027-04-05", 30_000).await;
        }
        // Past due from Apr 6. On Apr 8: a medical hold, and two arrangements.
        live(&app, "2027-04-01", "2027-04-08", |_| {}).await;
        let (s, h) = app.post(&format!("/api/v1/accounts/{held}/holds"), json!({"kind": "medical", "until": "2027-05-15", "reason": "medical certificate on file"})).await;
        assert_eq!(s, 201, "{h}");
        let (s, a) = app.post(&format!("/api/v1/accounts/{arranged}/arrangements"), json!({"kind": "installments", "count": 3, "first_date": "2027-04-15", "frequency": "weekly"})).await;
        assert_eq!(s, 201, "{a}");
        assert_eq!(a["installments"].as_array().unwrap().iter().map(|i| i["amount"].as_i64().unwrap()).sum::<i64>(), 30_000);
        let (s, b) = app.post(&format!("/api/v1/accounts/{broken}/arrangements"), json!({"kind": "extension", "pay_by": "2027-04-20"})).await;
        assert_eq!(s, 201, "{b}");
        let (s, twice) = app.post(&format!("/api/v1/accounts/{broken}/arrangements"), json!({"kind": "extension", "pay_by": "2027-04-21"})).await;
        assert_eq!(s, 409, "{twice}");

        // Neither arranged account pays: both arrangements break after their grace period.
        live(&app, "2027-04-08", "2027-05-10", |_| {}).await;
        assert_eq!(status(&app, &held).await, "past_due", "the hold stops the suspension");
        assert_eq!(status(&app, &broken).await, "suspended", "a broken extension resumes collections");
        let (_, charges) = app.get(&format!("/api/v1/accounts/{held}/charges")).await;
        assert!(charges["data"].as_array().unwrap().iter().any(|c| c["kind"] == "late_fee"), "{charges}");
        let (_, charges) = app.get(&format!("/api/v1/accounts/{broken}/charges")).await;
        assert!(charges["data"].as_array().unwrap().iter().all(|c| c["kind"] != "late_fee"), "the arrangement came before the late fee: {charges}");
        assert_eq!(status(&app, &arranged).await, "suspended", "a missed installment breaks the plan");
        assert_eq!(outbox(&app, "email.arrangement_broken").await.len(), 2);
        app.assert_emails_render(&["email.arrangement_broken"]).await;
        app.assert_verified().await;
    }

    async fn a_kept_installment_plan_holds_off_suspension(app) {
        set_clock(&app, noon("2027-06-01".parse().unwrap()));
        let acct = account(&app).await;
        bill(&app, &acct, "2027-06-01", "2027-06-04", 30_000).await;
        live(&app, "2027-06-01", "2027-06-08", |_| {}).await;
        let (s, a) = app.post(&format!("/api/v1/accounts/{acct}/arrangements"), json!({"kind": "installments", "count": 3, "first_date": "2027-06-14", "frequency": "weekly"})).await;
        assert_eq!(s, 201, "{a}");
        let mut day: Date = "2027-06-08".parse().unwrap();
        while day < "2027-07-20".parse::<Date>().unwrap() {
            set_clock(&app, noon(day));
            if let Some(i) = a["installments"].as_array().unwrap().iter().find(|i| i["due_date"] == day.to_string()) {
                let (s, p) = app.pay(&new_key(), json!({"account_number": acct, "amount": i["amount"], "channel": "phone", "payment_method": card("4242424242424242"), "confirm_duplicate": true})).await;
                assert_eq!(s, 201, "{p}");
            }
            app.app.drain_jobs("test").await.unwrap();
            app.assert_verified().await;
            day = day.tomorrow().unwrap();
        }
        assert_eq!(status(&app, &acct).await, "current");
        assert_eq!(app.balance(&acct).await, 0);
        let (_, charges) = app.get(&format!("/api/v1/accounts/{acct}/charges")).await;
        assert!(charges["data"].as_array().unwrap().iter().all(|c| c["kind"] != "late_fee"), "{charges}");
        assert!(outbox(&app, "email.arrangement_broken").await.is_empty());
    }
}

both_engines! {
    async fn reminders_need_consent_and_wait_out_quiet_hours(app) {
        let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let at = |d: &str, t: &str| billpay_domain::local_instant(d.parse().unwrap(), t.parse().unwrap(), &ny);
        set_clock(&app, at("2027-09-01", "02:00"));
        let (s, a) = app
            .post("/api/v1/accounts", json!({"name": "Pat Payer", "email": "pat@example.com", "phone": "+15555550123", "postal_code": "10001", "timezone": "America/New_York"}))
            .await;
        assert_eq!(s, 201, "{a}");
        let acct = a["account_number"].as_str().unwrap().to_string();
        let silent = account(&app).await;
        let (s, c) = app.put(&format!("/api/v1/accounts/{acct}/consents/email"), json!({"granted": true, "source": "web"})).await;
        assert_eq!(s, 200, "{c}");
        assert!(c["consent_text"].as_str().unwrap().contains("emails"), "{c}");
        let (s, bad) = app.put(&format!("/api/v1/accounts/{silent}/consents/sms"), json!({"granted": true, "source": "web"})).await;
        assert_eq!(s, 400, "no phone number: {bad}");
        // Bills arrive at 02:00 local: the "bill ready" reminder waits for 08:00.
        bill(&app, &acct, "2027-09-01", "2027-09-15", 7_500).await;
        bill(&app, &silent, "2027-09-01", "2027-09-15", 7_500).await;
        app.app.drain_jobs("test").await.unwrap();
        assert!(outbox(&app, "email.reminder").await.is_empty(), "nothing in quiet hours");
        set_clock(&app, at("2027-09-01", "08:05"));
        app.app.drain_jobs("test").await.unwrap();
        let sent = outbox(&app, "email.reminder").await;
        assert_eq!(sent.len(), 1, "{sent:?}");
        assert!(sent[0].contains("is ready"), "{sent:?}");
        // Text messages too, once the customer agrees to them.
        let (s, _) = app.put(&format!("/api/v1/accounts/{acct}/consents/sms"), json!({"granted": true, "source": "phone"})).await;
        assert_eq!(s, 200);
        let mut day: Date = "2027-09-02".parse().unwrap();
        while day < "2027-09-20".parse::<Date>().unwrap() {
            set_clock(&app, at(&day.to_string(), "12:00"));
            app.app.drain_jobs("test").await.unwrap();
            day = day.tomorrow().unwrap();
        }
        let email: Vec<String> = outbox(&app, "email.reminder").await;
        let sms: Vec<String> = outbox(&app, "sms.reminder").await;
        assert_eq!(email.len(), 3, "ready, due soon, past due: {email:?}");
        assert!(email[1].contains("is due 2027-09-15") && email[2].contains("was due"), "{email:?}");
        assert_eq!(sms.len(), 2, "due soon and past due: {sms:?}");
        // The account without consent heard nothing.
        let mut c = app.app.store.read_conn().await.unwrap();
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE kind LIKE '%.reminder' AND recipient <> 'pat@example.com' AND recipient <> '+15555550123'")
            .fetch_one(&mut *c).await.unwrap();
        assert_eq!(n, 0);
        drop(c);
        // A paid bill gets no reminder; a withdrawn consent stops them.
        let (s, _) = app.put(&format!("/api/v1/accounts/{acct}/consents/sms"), json!({"granted": false, "source": "sms STOP"})).await;
        assert_eq!(s, 200);
        bill(&app, &acct, "2027-10-01", "2027-10-15", 3_000).await;
        let (s, p) = app.pay_with(&acct, 10_500, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        let mut day: Date = "2027-10-01".parse().unwrap();
        while day < "2027-10-20".parse::<Date>().unwrap() {
            set_clock(&app, at(&day.to_string(), "12:00"));
            app.app.drain_jobs("test").await.unwrap();
            day = day.tomorrow().unwrap();
        }
        assert_eq!(outbox(&app, "email.reminder").await.len(), 4, "only the October bill-ready email");
        assert_eq!(outbox(&app, "sms.reminder").await.len(), 2);
        app.assert_emails_render(&["email.reminder"]).await;
    }
}

async fn with_programs(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.collections.late_fee_cents = 500;
        s.collections.grace_days = 2;
        s.collections.suspend_after_days = 10;
        s.collections.disconnect_notice_days = 5;
        s.collections.hardship_programs = vec!["LIHEAP".into(), "Medical baseline".into()];
    })
    .await
}

both_engines! {
    with with_programs;

    async fn a_hardship_program_stops_fees_and_suspension_and_pledges_post_once(app) {
        set_clock(&app, noon("2027-10-01".parse().unwrap()));
        let acct = account(&app).await;
        bill(&app, &acct, "2027-10-01", "2027-10-05", 20_000).await;
        let (s, bad) = app.post(&format!("/api/v1/accounts/{acct}/hardship"), json!({"program": "Unknown", "until": "2027-12-31", "enrolled_by": "agent 7"})).await;
        assert_eq!(s, 400, "{bad}");
        assert!(bad["error"]["message"].as_str().unwrap().contains("LIHEAP"), "{bad}");
        let (s, h) = app.post(&format!("/api/v1/accounts/{acct}/hardship"), json!({"program": "LIHEAP", "until": "2027-12-31", "enrolled_by": "agent 7"})).await;
        assert_eq!(s, 201, "{h}");
        // The agency pledges $150.00: posted as a payment, once.
        let pledge = json!({"agency": "County Energy Assistance", "reference": "P-2027-0042", "amount": 15_000});
        let (s, p) = app.post(&format!("/api/v1/accounts/{acct}/pledges"), pledge.clone()).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(p["payment_method"]["type"], "pledge");
        assert_eq!(p["channel"], "agent");
        let (s, again) = app.post(&format!("/api/v1/accounts/{acct}/pledges"), pledge).await;
        assert_eq!(s, 409, "{again}");
        live(&app, "2027-10-01", "2027-11-01", |_| {}).await;
        assert_eq!(app.balance(&acct).await, 5_000, "no late fee while enrolled");
        assert_ne!(status(&app, &acct).await, "suspended");
        assert!(outbox(&app, "email.disconnect_notice").await.is_empty());
    }
}
