//! The daily payment posting file, through the REST API and the `billpay report posting`
//! command, on SQLite and PostgreSQL: one line per payment, refund and return the ledger posted
//! that day, totals that match the ledger, and the same bytes every time it is made.

mod common;

use common::*;
use serde_json::json;

fn billpay_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, Vec<u8>, String) {
    let out = billpay_process(args, env);
    (
        out.status.code().unwrap_or(-1),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn card(number: &str) -> serde_json::Value {
    json!({"type": "card", "number": number, "exp_month": 12, "exp_year": 2034, "cvc": "123", "postal_code": "10001"})
}

both_engines! {
    async fn the_posting_file_lists_the_days_payments_and_refunds_and_matches_the_ledger(app) {
        let a = app.account_with_bill(10_000).await;
        let b = app.account_with_bill(4_000).await;
        let (s, p1) = app.pay_with(&a, 5_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p1}");
        let (s, p2) = app.pay_with(&b, 2_500, card("5555555555554444")).await;
        assert_eq!(s, 201, "{p2}");
        let (s, declined) = app.pay_with(&a, 700, card("4000000000000002")).await;
        assert_ne!(s, 201, "{declined}");
        let id = p1["id"].as_str().unwrap();
        let (s, refund) = app
            .post_idem(&format!("/api/v1/payments/{id}/refunds"), "refund-1", json!({"amount": 1_000}))
            .await;
        assert_eq!(s, 201, "{refund}");

        let today = billpay_services::Clock::now(app.clock.as_ref())
            .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
            .date()
            .to_string();
        let (s, file) = app.get(&format!("/api/v1/reports/posting?date={today}")).await;
        assert_eq!(s, 200, "{file}");
        assert_eq!(file["date"], today.as_str());
        assert_eq!(file["timezone"], "America/New_York");
        assert_eq!(file["count"], 3, "{file}");
        let lines = file["lines"].as_array().unwrap();
        let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["payment", "payment", "refund"], "posting order: {file}");
        assert_eq!(lines[0]["account_number"], a.as_str());
        assert_eq!(lines[0]["amount"], 5_000);
        assert_eq!(lines[0]["confirmation_number"], p1["confirmation_number"]);
        assert_eq!(lines[0]["channel"], "web");
        assert_eq!(lines[0]["method_type"], "card");
        assert_eq!(lines[2]["amount"], -1_000);
        assert_eq!(lines[2]["payment_id"], id);
        // The total is what the customers' balances moved by.
        assert_eq!(file["totals"]["USD"], 6_500, "{file}");
        assert_eq!(app.balance(&a).await + app.balance(&b).await, 14_000 - 6_500);
        app.assert_verified().await;

        // CSV: the same lines, decimal amounts; a day with nothing posted has the header only.
        let (s, csv) = app.get(&format!("/api/v1/reports/posting?date={today}&format=csv")).await;
        assert_eq!(s, 200);
        let csv = csv.as_str().unwrap().to_string();
        let rows: Vec<&str> = csv.lines().collect();
        assert_eq!(rows[0], billpay_services::reports::POSTING_CSV_HEADER);
        assert_eq!(rows.len(), 4, "{csv}");
        assert!(rows[1].contains(&format!(",payment,{a},50.00,USD,")), "{csv}");
        assert!(rows[3].contains(",refund,") && rows[3].contains(",-10.00,USD,"), "{csv}");
        let (_, empty) = app.get("/api/v1/reports/posting?date=2020-01-01&format=csv").await;
        assert_eq!(empty.as_str().unwrap().lines().count(), 1);

        // Bad requests name the parameter.
        let (s, e) = app.get("/api/v1/reports/posting?date=12/04/2026").await;
        assert_eq!(s, 400, "{e}");
        assert!(e.to_string().contains("date"), "{e}");
        let (s, e) = app.get(&format!("/api/v1/reports/posting?date={today}&format=xml")).await;
        assert_eq!(s, 400, "{e}");
        assert!(e.to_string().contains("format"), "{e}");

        // The command gives the same bytes as the API, and again the next time.
        let keyring = app.db.dir.path().join("vault-keyring.toml");
        let env = [
            ("BILLPAY_DATABASE_URL", app.db.url.as_str()),
            ("BILLPAY_VAULT_KEYRING_FILE", keyring.to_str().unwrap()),
        ];
        let (code, first, err) = billpay_cli(&["report", "posting", "--date", &today], &env);
        assert_eq!(code, 0, "{err}");
        assert_eq!(String::from_utf8(first.clone()).unwrap(), csv);
        let out = app.db.dir.path().join("payments.json");
        let (code, _, err) = billpay_cli(
            &["report", "posting", "--date", &today, "--format", "json", "--output", out.to_str().unwrap()],
            &env,
        );
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("3 lines"), "{err}");
        let json_first = std::fs::read(&out).unwrap();
        let (_, again, _) = billpay_cli(&["report", "posting", "--date", &today], &env);
        assert_eq!(first, again, "byte-identical");
        billpay_cli(
            &["report", "posting", "--date", &today, "--format", "json", "--output", out.to_str().unwrap()],
            &env,
        );
        assert_eq!(json_first, std::fs::read(&out).unwrap(), "byte-identical");
        let parsed: serde_json::Value = serde_json::from_slice(&json_first).unwrap();
        assert_eq!(parsed, file);
        let (code, _, err) = billpay_cli(&["report", "posting", "--date", "tomorrow"], &env);
        assert_ne!(code, 0);
        assert!(err.contains("--date must be a day as YYYY-MM-DD"), "{err}");
    }
}

both_engines! {
    async fn the_aging_report_ages_what_is_owed_by_due_date_oldest_paid_first(app) {
        let today = billpay_services::Clock::now(app.clock.as_ref())
            .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
            .date();
        let (s, acct) = app
            .post("/api/v1/accounts", json!({"name": "Sam \"The Saver\" Lee", "email": "sam@example.com", "postal_code": "10001"}))
            .await;
        assert_eq!(s, 201, "{acct}");
        let n = acct["account_number"].as_str().unwrap().to_string();
        for (issued, due) in [(130, 111), (69, 50), (-2, -11)] {
            let statement_date = today.checked_sub(jiff::Span::new().days(issued)).unwrap();
            let due_date = today.checked_sub(jiff::Span::new().days(due)).unwrap();
            let (s, b) = app
                .post(&format!("/api/v1/accounts/{n}/statements"),
                      json!({"statement_date": statement_date.to_string(), "due_date": due_date.to_string(), "amount_due": 5_000}))
                .await;
            assert_eq!(s, 201, "{b}");
        }
        let (s, p) = app.pay_with(&n, 8_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        // Another account, all current.
        let other = app.account_with_bill(2_500).await;

        let (s, r) = app.get(&format!("/api/v1/reports/aging?as_of={today}")).await;
        assert_eq!(s, 200, "{r}");
        let lines = r["accounts"].as_array().unwrap();
        let mine = lines.iter().find(|l| l["account_number"] == n.as_str()).expect("the account");
        // 15,000 billed, 8,000 paid: the oldest bill and 3,000 of the second are paid; what is
        // left is 2,000 of a bill 50 days late and the bill not yet due.
        assert_eq!(mine["current"], 5_000, "{r}");
        assert_eq!(mine["days_31_60"], 2_000, "{r}");
        assert_eq!(mine["days_over_90"], 0, "{r}");
        assert_eq!(mine["total"], 7_000, "{r}");
        assert_eq!(mine["total"].as_i64().unwrap(), app.balance(&n).await, "the total is the balance");
        let theirs = lines.iter().find(|l| l["account_number"] == other.as_str()).expect("other");
        assert_eq!(theirs["current"], 2_500);
        assert_eq!(r["totals"][0]["total"], 9_500, "{r}");
        assert_eq!(r["totals"][0]["days_31_60"], 2_000, "{r}");

        // Sixty days on, the same balance has aged.
        let later = today.checked_add(jiff::Span::new().days(60)).unwrap();
        let (_, r) = app.get(&format!("/api/v1/reports/aging?as_of={later}")).await;
        let mine = r["accounts"].as_array().unwrap().iter().find(|l| l["account_number"] == n.as_str()).unwrap().clone();
        assert_eq!((mine["days_31_60"].as_i64(), mine["days_over_90"].as_i64()), (Some(5_000), Some(2_000)), "{r}");

        // CSV: names quoted, a TOTAL line; the command writes the same.
        let (_, csv) = app.get(&format!("/api/v1/reports/aging?as_of={today}&format=csv")).await;
        let csv = csv.as_str().unwrap().to_string();
        assert!(csv.starts_with(billpay_services::reports::AGING_CSV_HEADER), "{csv}");
        assert!(csv.contains(&format!("{n},\"Sam \"\"The Saver\"\" Lee\",USD,50.00,0.00,20.00,0.00,0.00,70.00,0.00")), "{csv}");
        assert!(csv.lines().last().unwrap().starts_with("TOTAL,\"\",USD,"), "{csv}");
        let keyring = app.db.dir.path().join("vault-keyring.toml");
        let env = [
            ("BILLPAY_DATABASE_URL", app.db.url.as_str()),
            ("BILLPAY_VAULT_KEYRING_FILE", keyring.to_str().unwrap()),
        ];
        let (code, out, err) = billpay_cli(&["report", "aging", "--as-of", &today.to_string()], &env);
        assert_eq!(code, 0, "{err}");
        assert_eq!(String::from_utf8(out).unwrap(), csv);
        let (s, e) = app.get("/api/v1/reports/aging?as_of=soon").await;
        assert_eq!(s, 400, "{e}");
        assert!(e.to_string().contains("as_of"), "{e}");
    }
}
