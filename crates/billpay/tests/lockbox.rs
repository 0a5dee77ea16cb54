//! Pay by mail: lockbox files posted through the REST API, on SQLite and PostgreSQL. Matched
//! checks become payments with confirmation numbers and receipts; the rest wait in the
//! exceptions queue; a malformed file posts nothing; a file imported twice posts nothing the
//! second time; the ledger verifies throughout.

mod common;

use common::*;
use serde_json::{Value, json};

const HEADER: &str =
    "deposit_date,lockbox,batch,sequence,check_number,amount,account_number,remitter";

async fn import(app: &TestApp, content: &str) -> (u16, Value) {
    app.post("/api/v1/lockbox/imports", json!({"content": content}))
        .await
}

async fn payments_of(app: &TestApp, account: &str) -> Vec<Value> {
    let (s, list) = app
        .get(&format!("/api/v1/accounts/{account}/payments"))
        .await;
    assert_eq!(s, 200, "{list}");
    list["data"].as_array().unwrap().clone()
}

/// An account number with a valid check digit that no account has.
fn unknown_account() -> String {
    let n = billpay_domain::AccountNumber::from_body("99999999").unwrap();
    n.as_str().to_string()
}

fn bad_check_digit(n: &str) -> String {
    let mut d: Vec<char> = n.chars().collect();
    let last = d.len() - 1;
    d[last] = if d[last] == '0' { '1' } else { '0' };
    d.into_iter().collect()
}

both_engines! {
    async fn checks_post_to_their_accounts_and_the_rest_wait_for_a_person(app) {
        let a = app.account_with_bill(8410).await;
        let b = app.account_with_bill(20_000).await;
        let c = app.account_with_bill(5_000).await;
        let file = format!(
            "{HEADER}\n\
             2026-12-01,4417,001,0001,10452,84.10,{a},\"Doe, Jane\"\n\
             2026-12-01,4417,001,0002,2231,125,Acct {b},ACME HARDWARE INC\n\
             2026-12-01,4417,001,0003,3001,50.00,{unknown},Someone Else\n\
             2026-12-01,4417,001,0004,3002,50.00,{bad},Typo Person\n\
             2026-12-01,4417,002,0001,881,76.00,,\"Smith, Robert\"\n\
             2026-12-01,4417,002,0002,882,10.00,{a} {b},Two Coupons\n",
            unknown = unknown_account(),
            bad = bad_check_digit(&c),
        );
        let (s, r) = import(&app, &file).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["items"], 6);
        assert_eq!(r["posted"].as_array().unwrap().len(), 2, "{r}");
        assert_eq!(r["exceptions"].as_array().unwrap().len(), 4, "{r}");
        let reasons: Vec<&str> = r["exceptions"].as_array().unwrap().iter().map(|e| e["reason"].as_str().unwrap()).collect();
        assert!(reasons.iter().any(|r| r.contains("no account has the number")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("check digit")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("no account number on the remittance coupon")), "{reasons:?}");
        assert!(reasons.iter().any(|r| r.contains("2 different account numbers")), "{reasons:?}");

        // A posted check is a payment like any other.
        assert_eq!(app.balance(&a).await, 0);
        assert_eq!(app.balance(&b).await, 20_000 - 12_500);
        let paid = payments_of(&app, &a).await;
        assert_eq!(paid.len(), 1);
        assert_eq!(paid[0]["channel"], "mail");
        assert_eq!(paid[0]["status"], "succeeded");
        assert_eq!(paid[0]["payment_method"]["type"], "check", "{}", paid[0]);
        assert_eq!(paid[0]["payment_method"]["last4"], "0452");
        assert!(paid[0]["confirmation_number"].as_str().unwrap().len() == 12);
        let (s, receipt) = app.get(paid[0]["receipt_url"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{receipt}");

        // The same file again posts nothing.
        let (s, again) = import(&app, &file).await;
        assert_eq!(s, 200, "{again}");
        assert_eq!((again["posted"].as_array().unwrap().len(), again["already_imported"].as_u64()), (0, Some(6)), "{again}");
        assert_eq!(app.balance(&b).await, 7_500);

        // A person works the queue: posts one to the right account, rejects another.
        let (s, queue) = app.get("/api/v1/lockbox/exceptions").await;
        assert_eq!(s, 200, "{queue}");
        let queue = queue["data"].as_array().unwrap().clone();
        assert_eq!(queue.len(), 4);
        let typo = queue.iter().find(|i| i["remitter"] == "Typo Person").unwrap();
        let (s, done) = app.post(&format!("/api/v1/lockbox/exceptions/{}/resolve", typo["id"].as_str().unwrap()), json!({"account_number": c})).await;
        assert_eq!(s, 200, "{done}");
        assert_eq!(done["item"]["status"], "posted");
        assert_eq!(done["payment"]["amount"], 5_000);
        assert_eq!(app.balance(&c).await, 0);
        let (s, twice) = app.post(&format!("/api/v1/lockbox/exceptions/{}/resolve", typo["id"].as_str().unwrap()), json!({"account_number": c})).await;
        assert_eq!(s, 409, "posted once only: {twice}");
        let other = queue.iter().find(|i| i["remitter"] == "Someone Else").unwrap();
        let (s, rejected) = app.post(&format!("/api/v1/lockbox/exceptions/{}/resolve", other["id"].as_str().unwrap()), json!({"reject_reason": "not our customer; returned to sender"})).await;
        assert_eq!(s, 200, "{rejected}");
        assert_eq!(rejected["item"]["status"], "rejected");
        let (s, both) = app.post(&format!("/api/v1/lockbox/exceptions/{}/resolve", queue[0]["id"].as_str().unwrap()), json!({"account_number": c, "reject_reason": "x"})).await;
        assert_eq!(s, 400, "{both}");
        let (_, queue) = app.get("/api/v1/lockbox/exceptions").await;
        assert_eq!(queue["data"].as_array().unwrap().len(), 2);
        app.assert_verified().await;
    }

    async fn the_daily_reconciliation_checks_the_lockbox_items(app) {
        let a = app.account_with_bill(8410).await;
        let file = format!(
            "{HEADER}\n\
             2026-12-01,4417,001,0001,10452,84.10,{a},\"Doe, Jane\"\n\
             2026-12-01,4417,001,0002,10453,20.00,,No Coupon\n",
        );
        let (s, r) = import(&app, &file).await;
        assert_eq!(s, 200, "{r}");
        let day = app.app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
        let report = || cli(&app, &["report", "reconciliation", "--date", &day, "--format", "csv"]);
        let (code, csv, err) = report();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(code, 0, "{err}{csv}");
        assert!(csv.contains("\nlockbox,lockbox,exception,mail,1,20.00,\n"), "{csv}");
        assert!(csv.contains("\nlockbox,lockbox,posted,mail,1,84.10,\n"), "{csv}");
        // A posted check whose payment says another amount is listed.
        let paid = payments_of(&app, &a).await;
        let mut c = app.app.store.read_conn().await.unwrap();
        sqlx::query("UPDATE payments SET amount = 8000 WHERE id = $1")
            .bind(paid[0]["id"].as_str().unwrap()).execute(&mut *c).await.unwrap();
        drop(c);
        let (code, csv, _) = report();
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(code, 1, "{csv}");
        assert!(csv.contains(&format!("lockbox check 10452 deposited 2026-12-01 is for 84.10 but its payment {} is for 80.00", paid[0]["id"].as_str().unwrap())), "{csv}");
    }

    async fn a_malformed_file_is_refused_with_its_line_and_posts_nothing(app) {
        let a = app.account_with_bill(8410).await;
        for (bad_line, why) in [
            ("2026-12-01,4417,001,0002,2231,12.3,{a},X", "amount"),
            ("2026-13-01,4417,001,0002,2231,12.30,{a},X", "date"),
            ("2026-12-01,4417,001,0002,2231,1e5,{a},X", "amount"),
            ("2026-12-01,4417,001,0002,2231,-5.00,{a},X", "amount"),
            ("2026-12-01,4417,001,0002", "column"),
            ("2026-12-01,4417,001,0001,2231,12.30,{a},Duplicate key", "line 2"),
        ] {
            let file = format!(
                "{HEADER}\n2026-12-01,4417,001,0001,10452,84.10,{a},Fine\n{}\n",
                bad_line.replace("{a}", &a)
            );
            let (s, r) = import(&app, &file).await;
            assert_eq!(s, 400, "{bad_line}: {r}");
            let msg = r["error"]["message"].as_str().unwrap();
            assert!(msg.contains("line 3"), "{bad_line}: {msg}");
            assert!(msg.to_lowercase().contains(why), "{bad_line}: {msg}");
            assert!(msg.contains("nothing posted"), "{msg}");
        }
        let (s, r) = import(&app, "not,a,lockbox,file\n1,2,3,4\n").await;
        assert_eq!(s, 400, "{r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("line 1"), "{r}");
        assert!(payments_of(&app, &a).await.is_empty(), "nothing was posted");
        assert_eq!(app.balance(&a).await, 8410);
        app.assert_verified().await;
    }

    async fn a_bai2_lockbox_report_posts_its_items(app) {
        let a = app.account_with_bill(8410).await;
        let b = app.account_with_bill(12_500).await;
        let items = [(8410, "10452", a.as_str(), "DOE JANE"), (12_500, "2231", b.as_str(), "ACME")];
        let deposit: i64 = items.iter().map(|i| i.0).sum();
        let mut lines = vec![
            "01,021000021,CITYUTIL,261201,0600,1,80,,2/".to_string(),
            "02,CITYUTIL,021000021,1,261201,0600,USD,2/".to_string(),
            format!("03,4417,USD,110,{deposit},2,0/"),
            format!("16,115,{deposit},0,DEP001,,LOCKBOX 4417 DEPOSIT/"),
        ];
        for (amount, check, account, name) in items {
            lines.push(format!("16,116,{amount},0,{check},{account},{name}/"));
        }
        lines.push("88,HARDWARE INC/".into());
        let total = deposit * 3;
        let account_records = lines.len() - 2 + 1;
        lines.push(format!("49,{total},{account_records}/"));
        lines.push(format!("98,{total},1,{}/", account_records + 2));
        lines.push(format!("99,{total},1,{}/", account_records + 4));
        let file = lines.join("\n") + "\n";
        let (s, r) = app.post("/api/v1/lockbox/imports", json!({"format": "bai2", "content": file})).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["posted"].as_array().unwrap().len(), 2, "{r}");
        assert_eq!(app.balance(&a).await, 0);
        assert_eq!(app.balance(&b).await, 0);
        let paid = payments_of(&app, &b).await;
        assert_eq!(paid[0]["payment_method"]["description"], "check ending in 2231");
        // A wrong control total: refused, nothing posted.
        let broken = file.replace(&format!("99,{total},"), &format!("99,{},", total + 1));
        let (s, r) = app.post("/api/v1/lockbox/imports", json!({"format": "bai2", "content": broken})).await;
        assert_eq!(s, 400, "{r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("line"), "{r}");
        app.assert_verified().await;
    }
}
