//! AutoPay and scheduled payments over simulated months, on SQLite and PostgreSQL: every
//! statement is charged at most once, net of manual payments; DST changes in three time zones
//! fire each charge exactly once; soft declines retry on schedule and hard ones never; a manual
//! payment racing AutoPay never makes the account overpay; `billpay verify` holds every day.

mod common;

use common::*;
use jiff::civil::{Date, Time};
use serde_json::{Value, json};

/// Moves the app's clock to `at`.
fn set_clock(app: &TestApp, at: jiff::Timestamp) {
    let now = billpay_services::Clock::now(app.clock.as_ref());
    app.clock.advance(at.duration_since(now));
}

fn local(date: &str, time: &str, tz: &str) -> jiff::Timestamp {
    let d: Date = date.parse().unwrap();
    let t: Time = time.parse().unwrap();
    billpay_domain::local_instant(d, t, &jiff::tz::TimeZone::get(tz).unwrap())
}

async fn account_in(app: &TestApp, tz: &str) -> String {
    let (s, a) = app
        .post("/api/v1/accounts", json!({"name": "Pat Payer", "email": "pat@example.com", "postal_code": "10001", "timezone": tz}))
        .await;
    assert_eq!(s, 201, "{a}");
    a["account_number"].as_str().unwrap().to_string()
}

async fn save(app: &TestApp, acct: &str, method: Value) -> String {
    let (s, m) = app
        .post(&format!("/api/v1/accounts/{acct}/payment_methods"), method)
        .await;
    assert!(s == 201 || s == 200, "{m}");
    m["id"].as_str().unwrap().to_string()
}

async fn bill(app: &TestApp, acct: &str, statement_date: Date, due: Date, cents: i64) {
    let (s, b) = app
        .post(
            &format!("/api/v1/accounts/{acct}/statements"),
            json!({"statement_date": statement_date.to_string(), "due_date": due.to_string(), "amount_due": cents}),
        )
        .await;
    assert_eq!(s, 201, "{b}");
}

async fn enroll(app: &TestApp, acct: &str, body: Value) -> Value {
    let (s, v) = app
        .put(&format!("/api/v1/accounts/{acct}/autopay"), body)
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

async fn payments(app: &TestApp, acct: &str) -> Vec<Value> {
    let (s, list) = app
        .get(&format!("/api/v1/accounts/{acct}/payments?limit=100"))
        .await;
    assert_eq!(s, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

fn sum_paid(ps: &[Value], channel: &str) -> i64 {
    ps.iter()
        .filter(|p| {
            p["channel"] == channel && (p["status"] == "succeeded" || p["status"] == "processing")
        })
        .map(|p| p["amount"].as_i64().unwrap())
        .sum()
}

async fn outbox_count(app: &TestApp, kind: &str) -> i64 {
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM outbox WHERE kind = $1")
        .bind(kind)
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

async fn drain(app: &TestApp) -> billpay_services::jobs::RunReport {
    app.app.drain_jobs("test-worker").await.unwrap()
}

both_engines! {
    async fn six_months_of_autopay_charge_every_bill_once(app) {
        let tz = "America/New_York";
        set_clock(&app, local("2027-01-01", "09:00", tz));
        let card = || json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123", "postal_code": "10001"});
        let on_due = account_in(&app, tz).await;
        let early = account_in(&app, "America/Los_Angeles").await;
        let capped = account_in(&app, tz).await;
        let manual = account_in(&app, "America/Chicago").await;
        let bank = account_in(&app, tz).await;
        for (acct, body) in [
            (&on_due, json!({})),
            (&early, json!({"timing": "days_before", "days_before": 3})),
            (&capped, json!({"maximum": 5_000})),
            (&manual, json!({})),
        ] {
            let pm = save(&app, acct, card()).await;
            let mut body = body;
            body["payment_method"] = json!(pm);
            enroll(&app, acct, body).await;
        }
        let pm = save(&app, &bank, json!({"type": "ach", "routing_number": "110000000", "account_number": "000123456789", "account_type": "checking", "holder_name": "Pat Payer"})).await;
        enroll(&app, &bank, json!({"payment_method": pm, "timing": "days_before", "days_before": 5})).await;

        let mut billed = std::collections::HashMap::<String, i64>::new();
        let mut day: Date = "2027-01-01".parse().unwrap();
        let end: Date = "2027-07-05".parse().unwrap();
        while day < end {
            if day.day() == 1 && day.month() <= 6 {
                let due = billpay_domain::day_in_month(day.year(), day.month(), 31);
                for (i, acct) in [&on_due, &early, &capped, &manual, &bank].into_iter().enumerate() {
                    let cents = 6_000 + 100 * i64::from(day.month()) + i as i64;
                    bill(&app, acct, day, due, cents).await;
                    *billed.entry(acct.clone()).or_default() += cents;
                }
            }
            // The manual payer pays $20 by phone the day before each due date.
            if day.tomorrow().unwrap().month() != day.month() {
                let (s, p) = app.pay(&new_key(), json!({"account_number": manual, "amount": 2_000, "channel": "phone", "payment_method": card()})).await;
                assert_eq!(s, 201, "{p}");
            }
            set_clock(&app, local(&day.to_string(), "12:00", tz));
            drain(&app).await;
            app.app.reconcile().await.unwrap();
            app.assert_verified().await;
            day = day.tomorrow().unwrap();
        }
        for acct in [&on_due, &early, &bank] {
            let ps = payments(&app, acct).await;
            let summary: Vec<String> = ps.iter().map(|p| format!("{} {} {} {}", &p["created_at"].as_str().unwrap()[..16], p["channel"], p["status"], p["amount"])).collect();
            assert_eq!(ps.iter().filter(|p| p["channel"] == "autopay").count(), 6, "{acct}: {summary:#?}");
            assert_eq!(sum_paid(&ps, "autopay"), billed[acct], "{acct}: every bill paid once, exactly");
            assert_eq!(app.balance(acct).await, 0);
        }
        // Over the $50 maximum: never charged, the customer told each month.
        assert!(payments(&app, &capped).await.iter().all(|p| p["channel"] != "autopay"));
        assert_eq!(outbox_count(&app, "email.autopay_over_maximum").await, 6);
        // A manual payment the day before: AutoPay charges only the rest.
        let ps = payments(&app, &manual).await;
        assert_eq!(sum_paid(&ps, "phone"), 6 * 2_000);
        assert_eq!(sum_paid(&ps, "autopay"), billed[&manual] - 6 * 2_000);
        assert_eq!(app.balance(&manual).await, 0);
        // Notices: one pre-debit notice and one receipt notice per charge.
        assert_eq!(outbox_count(&app, "email.autopay_paid").await, 4 * 6);
        assert!(outbox_count(&app, "email.autopay_upcoming").await >= 4 * 6);
        app.assert_emails_render(&["email.autopay_paid", "email.autopay_upcoming", "email.autopay_over_maximum", "email.receipt"]).await;
        // Everything ran; nothing failed.
        let counts = app.app.job_counts().await.unwrap();
        assert!(counts.iter().all(|(_, status, _)| status == "done" || status == "canceled"), "{counts:?}");
    }

    async fn a_soft_decline_retries_on_schedule_and_a_hard_one_never(app) {
        let tz = "America/New_York";
        set_clock(&app, local("2027-02-01", "09:00", tz));
        let soft = account_in(&app, tz).await;
        let hard = account_in(&app, tz).await;
        for (acct, number) in [(&soft, "4000000000009995"), (&hard, "4000000000009987")] {
            let pm = save(&app, acct, json!({"type": "card", "number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123", "postal_code": "10001"})).await;
            enroll(&app, acct, json!({"payment_method": pm})).await;
            bill(&app, acct, "2027-02-01".parse().unwrap(), "2027-02-10".parse().unwrap(), 4_200).await;
        }
        let mut day: Date = "2027-02-01".parse().unwrap();
        while day < "2027-03-10".parse().unwrap() {
            set_clock(&app, local(&day.to_string(), "12:00", tz));
            drain(&app).await;
            day = day.tomorrow().unwrap();
        }
        let attempts = |ps: &[Value]| ps.iter().filter(|p| p["channel"] == "autopay").map(|p| p["created_at"].as_str().unwrap()[..10].to_string()).collect::<Vec<_>>();
        let mut soft_days = attempts(&payments(&app, &soft).await);
        soft_days.sort();
        assert_eq!(soft_days, vec!["2027-02-10", "2027-02-11", "2027-02-14", "2027-02-21"], "first attempt, then days 1, 4 and 11");
        assert!(payments(&app, &soft).await.iter().all(|p| p["status"] == "failed" && p["failure"]["code"] == "insufficient_funds"));
        assert_eq!(attempts(&payments(&app, &hard).await), vec!["2027-02-10"], "a lost card is never retried");
        assert_eq!(outbox_count(&app, "email.autopay_failed").await, 5);
        app.assert_emails_render(&["email.autopay_failed"]).await;
        app.assert_verified().await;
    }

    async fn scheduled_payments_run_on_their_dates_and_can_be_changed_or_canceled(app) {
        let tz = "America/Chicago";
        set_clock(&app, local("2027-01-20", "09:00", tz));
        let acct = account_in(&app, tz).await;
        bill(&app, &acct, "2027-01-01".parse().unwrap(), "2027-01-31".parse().unwrap(), 50_000).await;
        let pm = save(&app, &acct, json!({"type": "card", "number": "5555555555554444", "exp_month": 12, "exp_year": 2034, "cvc": "123", "postal_code": "10001"})).await;
        let (s, monthly) = app.post(&format!("/api/v1/accounts/{acct}/scheduled_payments"),
            json!({"payment_method": pm, "amount": 5_000, "start_date": "2027-01-31", "frequency": "monthly", "count": 3})).await;
        assert_eq!(s, 201, "{monthly}");
        let (s, once) = app.post(&format!("/api/v1/accounts/{acct}/scheduled_payments"),
            json!({"payment_method": pm, "amount": 1_234, "start_date": "2027-02-15"})).await;
        assert_eq!(s, 201, "{once}");
        let (s, weekly) = app.post(&format!("/api/v1/accounts/{acct}/scheduled_payments"),
            json!({"payment_method": pm, "amount": 700, "start_date": "2027-01-25", "frequency": "weekly", "end_date": "2027-02-10"})).await;
        assert_eq!(s, 201, "{weekly}");
        let (s, bad) = app.post(&format!("/api/v1/accounts/{acct}/scheduled_payments"),
            json!({"payment_method": pm, "amount": 100, "start_date": "2027-01-01"})).await;
        assert_eq!(s, 400, "{bad}");
        assert!(bad["error"]["message"].as_str().unwrap().contains("past"), "{bad}");
        // Change the one-time payment before it runs; cancel the weekly one after two payments.
        let (s, changed) = app.send_patch(&format!("/api/v1/scheduled_payments/{}", once["id"].as_str().unwrap()), json!({"amount": 1_500})).await;
        assert_eq!(s, 200, "{changed}");
        let mut day: Date = "2027-01-20".parse().unwrap();
        while day < "2027-04-05".parse().unwrap() {
            set_clock(&app, local(&day.to_string(), "12:00", tz));
            drain(&app).await;
            if day == "2027-02-02".parse().unwrap() {
                let (s, c) = app.send_delete(&format!("/api/v1/scheduled_payments/{}", weekly["id"].as_str().unwrap())).await;
                assert_eq!(s, 200, "{c}");
                assert_eq!(c["status"], "canceled");
                assert_eq!(c["payments_made"], 2);
            }
            day = day.tomorrow().unwrap();
        }
        let ps = payments(&app, &acct).await;
        let mut made: Vec<(String, i64)> = ps.iter().map(|p| (p["created_at"].as_str().unwrap()[..10].to_string(), p["amount"].as_i64().unwrap())).collect();
        made.sort();
        assert_eq!(made, vec![
            ("2027-01-25".to_string(), 700), ("2027-01-31".to_string(), 5_000), ("2027-02-01".to_string(), 700),
            ("2027-02-15".to_string(), 1_500), ("2027-02-28".to_string(), 5_000), ("2027-03-31".to_string(), 5_000),
        ], "Jan 31, then the last day of February, then Mar 31");
        let (_, list) = app.get(&format!("/api/v1/accounts/{acct}/scheduled_payments")).await;
        let statuses: Vec<&str> = list["data"].as_array().unwrap().iter().map(|s| s["status"].as_str().unwrap()).collect();
        assert_eq!(statuses, vec!["completed", "completed", "canceled"], "{list}");
        app.assert_emails_render(&["email.scheduled_paid"]).await;
        app.assert_verified().await;
    }

    async fn a_manual_payment_racing_autopay_never_overpays(app) {
        let tz = "America/New_York";
        set_clock(&app, local("2027-05-01", "09:00", tz));
        let card = json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123", "postal_code": "10001"});
        let mut accounts = Vec::new();
        for _ in 0..6 {
            let acct = account_in(&app, tz).await;
            let pm = save(&app, &acct, card.clone()).await;
            enroll(&app, &acct, json!({"payment_method": pm})).await;
            bill(&app, &acct, "2027-05-01".parse().unwrap(), "2027-05-10".parse().unwrap(), 9_999).await;
            accounts.push(acct);
        }
        set_clock(&app, local("2027-05-10", "06:00", tz));
        // At the moment AutoPay runs, each customer also pays in full by phone.
        let manual = accounts.iter().map(|acct| {
            let base = app.base.clone();
            let key = app.key.clone();
            let body = json!({"account_number": acct, "amount": 9_999, "channel": "phone", "payment_method": card.clone()});
            tokio::spawn(async move {
                common::http().build().unwrap().post(format!("{base}/api/v1/payments")).bearer_auth(key).header("Idempotency-Key", new_key()).json(&body).send().await.unwrap().status().as_u16()
            })
        }).collect::<Vec<_>>();
        let auto = { let a = app.app.clone(); tokio::spawn(async move { a.drain_jobs("racer").await.unwrap() }) };
        // Whichever goes first pays; the other finds nothing owed (AutoPay) or is stopped by
        // the duplicate guard (the caller hears that the bill was just paid).
        for m in manual {
            let status = m.await.unwrap();
            assert!(status == 201 || status == 409, "{status}");
        }
        auto.await.unwrap();
        set_clock(&app, local("2027-05-10", "09:00", tz));
        drain(&app).await;
        for acct in &accounts {
            let ps = payments(&app, acct).await;
            let paid = sum_paid(&ps, "phone") + sum_paid(&ps, "autopay");
            assert_eq!(paid, 9_999, "{acct} paid exactly the bill: {ps:?}");
            assert_eq!(app.balance(acct).await, 0);
        }
        app.assert_verified().await;
    }
}

async fn at_0230(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| s.autopay.run_time = "02:30".into()).await
}

both_engines! {
    with at_0230;

    async fn autopay_at_0230_fires_once_across_both_dst_changes_in_three_zones(app) {
        let zones = ["America/New_York", "America/Chicago", "America/Los_Angeles"];
        let card = json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123", "postal_code": "10001"});
        set_clock(&app, local("2027-03-01", "09:00", "America/New_York"));
        let mut accounts = Vec::new();
        for tz in zones {
            let acct = account_in(&app, tz).await;
            let pm = save(&app, &acct, card.clone()).await;
            enroll(&app, &acct, json!({"payment_method": pm})).await;
            accounts.push((tz, acct));
        }
        // Due on the spring-forward day (02:30 does not exist) and the fall-back day (it
        // happens twice).
        for (statement, due, from, to) in [
            ("2027-03-01", "2027-03-14", "2027-03-13T00:00:00Z", "2027-03-15T18:00:00Z"),
            ("2027-11-01", "2027-11-07", "2027-11-06T00:00:00Z", "2027-11-08T18:00:00Z"),
        ] {
            set_clock(&app, local(statement, "09:00", "America/New_York"));
            for (_, acct) in &accounts {
                bill(&app, acct, statement.parse().unwrap(), due.parse().unwrap(), 3_100).await;
            }
            // Step through the two days a quarter-hour at a time, running due jobs each step.
            let mut t: jiff::Timestamp = from.parse().unwrap();
            let stop: jiff::Timestamp = to.parse().unwrap();
            while t < stop {
                set_clock(&app, t);
                drain(&app).await;
                t = t.checked_add(jiff::SignedDuration::from_mins(15)).unwrap();
            }
            for (tz, acct) in &accounts {
                let ps = payments(&app, acct).await;
                let on_due: Vec<&Value> = ps.iter().filter(|p| p["channel"] == "autopay" && {
                    let at: jiff::Timestamp = p["created_at"].as_str().unwrap().parse().unwrap();
                    billpay_domain::local_date(at, &jiff::tz::TimeZone::get(tz).unwrap()).to_string() == due
                }).collect();
                assert_eq!(on_due.len(), 1, "{tz} {due}: exactly one charge: {ps:?}");
                let at: jiff::Timestamp = on_due[0]["created_at"].as_str().unwrap().parse().unwrap();
                let expected = local(due, "02:30", tz);
                assert!(at >= expected && at < expected.checked_add(jiff::SignedDuration::from_mins(16)).unwrap(),
                    "{tz} {due}: charged at {at}, due at {expected}");
            }
        }
        for (_, acct) in &accounts {
            assert_eq!(app.balance(acct).await, 0);
        }
        app.assert_verified().await;
    }
}

async fn originating(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| s.ach.originate = true).await
}

both_engines! {
    with originating;

    async fn autopay_from_a_closed_bank_account_stops_on_its_return(app) {
        let tz = "America/New_York";
        set_clock(&app, local("2027-08-01", "09:00", tz));
        let acct = account_in(&app, tz).await;
        let pm = save(&app, &acct, json!({"type": "ach", "routing_number": "110000000", "account_number": "000111111113", "account_type": "checking", "holder_name": "Pat Payer"})).await;
        let enrolled = enroll(&app, &acct, json!({"payment_method": pm})).await;
        assert!(enrolled["authorization_text"].as_str().unwrap().contains("recurring ACH debit"), "{enrolled}");
        bill(&app, &acct, "2027-08-01".parse().unwrap(), "2027-08-10".parse().unwrap(), 4_000).await;
        set_clock(&app, local("2027-08-10", "12:00", tz));
        drain(&app).await;
        let dir = tempfile::tempdir().unwrap();
        let files = app.app.export_ach(dir.path()).await.unwrap();
        let text = std::fs::read_to_string(&files[0].path).unwrap();
        let parsed = billpay_ach::nacha::parse_file(&text).unwrap();
        assert_eq!(parsed.batches[0].sec, billpay_ach::nacha::SecCode::Ppd, "AutoPay debits are PPD");
        let returns = billpay_services::ach::sandbox_bank_returns(&text, "2027-08-12T09:00".parse().unwrap()).unwrap().unwrap();
        app.app.import_ach_returns(&returns).await.unwrap();
        let (_, a) = app.get(&format!("/api/v1/accounts/{acct}/autopay")).await;
        assert_eq!(a["status"], "stopped", "R02: AutoPay from the closed account stops: {a}");
        app.assert_emails_render(&["email.payment_returned"]).await;
        // The next bill is not charged.
        bill(&app, &acct, "2027-09-01".parse().unwrap(), "2027-09-10".parse().unwrap(), 4_000).await;
        set_clock(&app, local("2027-09-11", "12:00", tz));
        drain(&app).await;
        assert_eq!(payments(&app, &acct).await.iter().filter(|p| p["channel"] == "autopay").count(), 1);
        app.assert_verified().await;
    }
}

both_engines! {
    async fn a_monthly_plan_bills_on_its_cycle_day_and_autopay_pays_it(app) {
        let tz = "America/Los_Angeles";
        set_clock(&app, local("2027-01-15", "09:00", tz));
        let acct = account_in(&app, tz).await;
        let (s, plan) = app.put(&format!("/api/v1/accounts/{acct}/billing_plan"), json!({"amount": 4_999, "cycle_day": 31, "due_days": 20})).await;
        assert_eq!(s, 200, "{plan}");
        assert_eq!(plan["next_bill"], "2027-01-31");
        let pm = save(&app, &acct, json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123", "postal_code": "10001"})).await;
        enroll(&app, &acct, json!({"payment_method": pm})).await;
        let mut day: Date = "2027-01-15".parse().unwrap();
        while day < "2027-06-01".parse::<Date>().unwrap() {
            set_clock(&app, local(&day.to_string(), "12:00", tz));
            drain(&app).await;
            day = day.tomorrow().unwrap();
        }
        let (_, statements) = app.get(&format!("/api/v1/accounts/{acct}/statements")).await;
        let mut dates: Vec<&str> = statements["data"].as_array().unwrap().iter().map(|s| s["statement_date"].as_str().unwrap()).collect();
        dates.sort();
        assert_eq!(dates, vec!["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]);
        let ps = payments(&app, &acct).await;
        assert_eq!(ps.iter().filter(|p| p["channel"] == "autopay").count(), 4, "four bills fell due by June 1");
        assert_eq!(app.balance(&acct).await, 4_999, "May's bill is not due yet");
        app.assert_verified().await;
    }
}
