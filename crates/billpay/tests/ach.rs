//! Bank debits originated in NACHA files, end to end: payments taken over HTTP become entries
//! with their SEC code and authorization; files are exported once; the bank's returns file
//! reverses payments and its notices of change correct saved accounts; WEB debits wait for a
//! prenote. Every test runs on SQLite and PostgreSQL, and the ledger verifies throughout.

mod common;

use billpay_ach::nacha::{self, SecCode, TransactionCode};
use common::*;
use serde_json::{Value, json};

async fn originating(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.ach.originate = true;
        s.ach.returned_payment_fee_cents = 2500;
    })
    .await
}

fn bank(account: &str) -> Value {
    json!({"type": "ach", "routing_number": "110000000", "account_number": account,
           "account_type": "checking", "holder_name": "Pat Payer"})
}

async fn pay_by(app: &TestApp, account: &str, cents: i64, channel: &str, method: Value) -> Value {
    let (s, p) = app
        .pay(
            &new_key(),
            json!({"account_number": account, "amount": cents, "channel": channel, "payment_method": method}),
        )
        .await;
    assert_eq!(s, 201, "{p}");
    p
}

async fn payment(app: &TestApp, id: &str) -> Value {
    let (s, p) = app.get(&format!("/api/v1/payments/{id}")).await;
    assert_eq!(s, 200, "{p}");
    p
}

/// Exports and parses back every file written.
async fn export(app: &TestApp, dir: &std::path::Path) -> Vec<(String, nacha::AchFile)> {
    let files = app.app.export_ach(dir).await.expect("export");
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f.path).expect("file written");
            let parsed = nacha::parse_file(&text).expect("our own file parses");
            assert_eq!(
                parsed
                    .batches
                    .iter()
                    .map(|b| b.entries.len() as i64)
                    .sum::<i64>(),
                f.entries
            );
            (text, parsed)
        })
        .collect()
}

fn entries(file: &nacha::AchFile) -> Vec<(SecCode, &nacha::Entry)> {
    file.batches
        .iter()
        .flat_map(|b| b.entries.iter().map(move |e| (b.sec, e)))
        .collect()
}

both_engines! {
    with originating;

    async fn phone_debit_goes_to_a_file_once_and_settles(app) {
        let acct = app.account_with_bill(8410).await;
        let p = pay_by(&app, &acct, 8410, "phone", bank("000123456789")).await;
        assert_eq!(p["status"], "processing", "{p}");
        assert_eq!(app.balance(&acct).await, 0, "credited on acceptance");
        let entries_of = app.app.ach_entries_of_payment(p["id"].as_str().unwrap()).await.unwrap();
        assert_eq!(entries_of.len(), 1);
        assert_eq!(entries_of[0].sec_code, "TEL");
        assert!(entries_of[0].authorization_text.contains("single ACH debit"), "{}", entries_of[0].authorization_text);
        assert!(entries_of[0].ciphertext.is_some() && !entries_of[0].ciphertext.as_ref().unwrap().contains("000123456789"));

        let dir = tempfile::tempdir().unwrap();
        let files = export(&app, dir.path()).await;
        assert_eq!(files.len(), 1);
        let (text, file) = &files[0];
        let es = entries(file);
        assert_eq!(es.len(), 1);
        assert_eq!(es[0].0, SecCode::Tel);
        assert_eq!(es[0].1.amount, 8410);
        assert_eq!(es[0].1.account_number.trim(), "000123456789");
        assert_eq!(es[0].1.transaction_code, TransactionCode::CheckingDebit);
        assert_eq!(es[0].1.individual_id.trim(), acct);
        assert!(text.lines().all(|l| l.len() == 94));
        assert_eq!(text.lines().count() % 10, 0);

        // Nothing is exported twice.
        assert!(export(&app, dir.path()).await.is_empty());
        assert_eq!(app.app.ach_files(10).await.unwrap().len(), 1);

        // No return within the settlement window: the debit settles.
        app.clock.advance(jiff::SignedDuration::from_hours(24 * 6));
        let r = app.app.reconcile().await.unwrap();
        assert_eq!(r.debits_settled, 1, "{r:?}");
        assert_eq!(payment(&app, p["id"].as_str().unwrap()).await["status"], "succeeded");
        app.assert_verified().await;
    }

    async fn returns_reverse_payments_once_and_notices_correct_saved_accounts(app) {
        let acct = app.account_with_bill(30_000).await;
        // A saved account that the bank says is closed, one with a notice of change, and a
        // one-time debit with insufficient funds.
        let (s, closed) = app.post(&format!("/api/v1/accounts/{acct}/payment_methods"), bank("000111111113")).await;
        assert_eq!(s, 201, "{closed}");
        let (s, noc) = app.post(&format!("/api/v1/accounts/{acct}/payment_methods"), bank("000777777771")).await;
        assert_eq!(s, 201, "{noc}");
        let token = |m: &Value| json!({"type": "token", "token": m["id"].as_str().unwrap()});
        let p_closed = pay_by(&app, &acct, 10_000, "phone", token(&closed)).await;
        let p_noc = pay_by(&app, &acct, 5_000, "phone", token(&noc)).await;
        let p_nsf = pay_by(&app, &acct, 7_000, "agent", bank("000222222227")).await;
        let p_ok = pay_by(&app, &acct, 1_000, "phone", bank("000123456789")).await;
        assert_eq!(app.balance(&acct).await, 30_000 - 23_000);

        let dir = tempfile::tempdir().unwrap();
        let files = export(&app, dir.path()).await;
        assert_eq!(files.len(), 1);
        assert_eq!(entries(&files[0].1).len(), 4);

        let returns = billpay_services::ach::sandbox_bank_returns(&files[0].0, "2026-12-02T09:00".parse().unwrap())
            .unwrap()
            .expect("the sandbox bank returns three entries");
        let parsed = nacha::parse_file(&returns).unwrap();
        assert_eq!(parsed.returns().len(), 2);
        assert_eq!(parsed.corrections().len(), 1);

        let r = app.app.import_ach_returns(&returns).await.unwrap();
        assert_eq!((r.returns_applied, r.corrections_applied, r.already_applied), (2, 1, 0), "{r:?}");
        assert!(r.unmatched.is_empty(), "{r:?}");

        let closed_p = payment(&app, p_closed["id"].as_str().unwrap()).await;
        assert_eq!(closed_p["status"], "returned");
        assert_eq!(closed_p["failure"]["code"], "R02", "{closed_p}");
        let nsf = payment(&app, p_nsf["id"].as_str().unwrap()).await;
        assert_eq!(nsf["status"], "returned");
        assert_eq!(nsf["failure"]["code"], "R01");
        assert_eq!(payment(&app, p_noc["id"].as_str().unwrap()).await["status"], "processing");
        assert_eq!(payment(&app, p_ok["id"].as_str().unwrap()).await["status"], "processing");
        // Both returned amounts are owed again, plus a $25 fee for each return.
        assert_eq!(app.balance(&acct).await, 30_000 - 6_000 + 2 * 2500);

        // R02 stops the saved account; the notice of change corrected the other one.
        let (_, methods) = app.get(&format!("/api/v1/accounts/{acct}/payment_methods")).await;
        let ids: Vec<&str> = methods["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
        assert!(!ids.contains(&closed["id"].as_str().unwrap()), "{methods}");
        let corrected = methods["data"].as_array().unwrap().iter().find(|m| m["id"] == noc["id"]).unwrap();
        assert_eq!(corrected["last4"], "6789", "{corrected}");
        let (s, again) = app.pay(&new_key(), json!({"account_number": acct, "amount": 1234, "channel": "phone", "payment_method": token(&closed)})).await;
        assert_eq!(s, 400, "a stopped account cannot be debited: {again}");

        // The customer is told why, in plain words.
        let mut c = app.app.store.read_conn().await.unwrap();
        let notices: Vec<String> = sqlx::query_scalar("SELECT payload_json FROM outbox WHERE kind = 'email.payment_returned' ORDER BY payload_json")
            .fetch_all(&mut *c).await.unwrap();
        drop(c);
        assert_eq!(notices.len(), 2);
        assert!(notices.iter().any(|n| n.contains("R02") && n.contains("returned_payment_fee")), "{notices:?}");

        // The same file again changes nothing.
        let before = app.balance(&acct).await;
        let r = app.app.import_ach_returns(&returns).await.unwrap();
        assert_eq!((r.returns_applied, r.corrections_applied, r.already_applied), (0, 0, 3), "{r:?}");
        assert_eq!(app.balance(&acct).await, before);
        app.assert_verified().await;

        // The corrected account is what the next file carries.
        let p_next = pay_by(&app, &acct, 2_000, "phone", token(&noc)).await;
        let files = export(&app, dir.path()).await;
        let es = entries(&files[0].1);
        assert_eq!(es.len(), 1);
        assert_eq!(es[0].1.account_number.trim(), "000123456789");
        assert_eq!(payment(&app, p_next["id"].as_str().unwrap()).await["payment_method"]["last4"], "6789");
        app.assert_verified().await;
    }

    async fn the_daily_reconciliation_checks_the_nacha_files_and_returns(app) {
        let acct = app.account_with_bill(30_000).await;
        let ok = pay_by(&app, &acct, 1_000, "phone", bank("000123456789")).await;
        pay_by(&app, &acct, 7_000, "agent", bank("000222222227")).await;
        let dir = tempfile::tempdir().unwrap();
        let files = export(&app, dir.path()).await;
        assert_eq!(files.len(), 1);
        let returns = billpay_services::ach::sandbox_bank_returns(&files[0].0, "2026-12-02T09:00".parse().unwrap())
            .unwrap()
            .expect("the sandbox bank returns the NSF debit");
        app.app.import_ach_returns(&returns).await.unwrap();
        let day = app.app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date().to_string();
        let report = |format: &str| cli(&app, &["report", "reconciliation", "--date", &day, "--format", format]);
        let (code, csv, err) = report("csv");
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(code, 0, "{err}{csv}");
        let file_name = csv.lines().find(|l| l.starts_with("ach_file,")).unwrap_or_else(|| panic!("{csv}"));
        assert!(file_name.starts_with("ach_file,nacha,written,,2,80.00,"), "{file_name}");
        assert!(csv.contains("\nach_returns,nacha,,,1,,\n"), "{csv}");
        let (_, text, _) = report("text");
        let text = String::from_utf8(text).unwrap();
        assert!(text.contains("no differences"), "{text}");
        assert!(text.contains("bank returns applied: 1"), "{text}");

        // A file whose control totals no longer match its entries, and an entry whose payment
        // says another amount, are listed; the command exits 1.
        let mut c = app.app.store.read_conn().await.unwrap();
        sqlx::query("UPDATE ach_files SET debit_total = debit_total + 1").execute(&mut *c).await.unwrap();
        sqlx::query("UPDATE payments SET amount = amount + 5 WHERE id = $1")
            .bind(ok["id"].as_str().unwrap()).execute(&mut *c).await.unwrap();
        drop(c);
        let (code, text, _) = report("text");
        let text = String::from_utf8(text).unwrap();
        assert_eq!(code, 1, "{text}");
        assert!(text.contains("says 2 entries, debits 80.01, credits 0.00; its entries are 2, debits 80.00, credits 0.00"), "{text}");
        assert!(text.contains(&format!("debits 10.00 but its payment {} charged 10.05", ok["id"].as_str().unwrap())), "{text}");
    }

    async fn a_late_return_reverses_a_settled_debit(app) {
        let acct = app.account_with_bill(5_000).await;
        let p = pay_by(&app, &acct, 5_000, "phone", bank("000333333335")).await;
        let dir = tempfile::tempdir().unwrap();
        let files = export(&app, dir.path()).await;
        app.clock.advance(jiff::SignedDuration::from_hours(24 * 7));
        app.app.reconcile().await.unwrap();
        assert_eq!(payment(&app, p["id"].as_str().unwrap()).await["status"], "succeeded");
        // The customer tells their bank the debit was not authorized, weeks later (R10).
        let returns = billpay_services::ach::sandbox_bank_returns(&files[0].0, "2026-12-20T09:00".parse().unwrap()).unwrap().unwrap();
        let r = app.app.import_ach_returns(&returns).await.unwrap();
        assert_eq!(r.payments_returned.len(), 1, "{r:?}");
        let back = payment(&app, p["id"].as_str().unwrap()).await;
        assert_eq!(back["status"], "returned");
        assert_eq!(back["failure"]["code"], "R10");
        assert_eq!(app.balance(&acct).await, 5_000 + 2500);
        app.assert_verified().await;
    }

    async fn web_debits_wait_for_a_prenote_and_a_bad_account_never_reaches_a_file(app) {
        let acct = app.account_with_bill(20_000).await;
        let dir = tempfile::tempdir().unwrap();
        // A good account: the first WEB debit waits while the prenote goes out.
        let good = pay_by(&app, &acct, 4_000, "web", bank("000123456789")).await;
        assert_eq!(good["status"], "processing");
        let files = export(&app, dir.path()).await;
        let es = entries(&files[0].1);
        assert_eq!(es.len(), 1, "only the prenote goes out first");
        assert_eq!(es[0].0, SecCode::Web);
        assert_eq!(es[0].1.transaction_code, TransactionCode::CheckingDebitPrenote);
        assert_eq!(es[0].1.amount, 0);
        assert!(export(&app, dir.path()).await.is_empty(), "the debit is still held");

        // A bad account: its prenote comes back R03, and the held debit is returned unsent.
        let bad = pay_by(&app, &acct, 3_000, "web", bank("000111111116")).await;
        let files = export(&app, dir.path()).await;
        assert_eq!(entries(&files[0].1).len(), 1);
        let returns = billpay_services::ach::sandbox_bank_returns(&files[0].0, "2026-12-02T09:00".parse().unwrap()).unwrap().unwrap();
        let r = app.app.import_ach_returns(&returns).await.unwrap();
        assert_eq!(r.payments_returned, vec![(bad["id"].as_str().unwrap().to_string(), "R03".to_string())]);
        assert_eq!(payment(&app, bad["id"].as_str().unwrap()).await["status"], "returned");
        // The next WEB debit from that account is refused at once, with the reason.
        let (s, refused) = app.pay(&new_key(), json!({"account_number": acct, "amount": 3_001, "channel": "web", "payment_method": bank("000111111116")})).await;
        assert_eq!(s, 402, "{refused}");
        assert_eq!(refused["error"]["decline_code"], "R03", "{refused}");

        // Three days on, the good account's prenote has not come back: its debit goes out,
        // and later debits from it are not held.
        app.clock.advance(jiff::SignedDuration::from_hours(24 * 3 + 1));
        let later = pay_by(&app, &acct, 1_500, "web", bank("000123456789")).await;
        let files = export(&app, dir.path()).await;
        let amounts: Vec<i64> = entries(&files[0].1).iter().map(|(_, e)| e.amount).collect();
        assert_eq!(amounts.len(), 2, "{amounts:?}");
        assert!(amounts.contains(&4_000) && amounts.contains(&1_500));
        assert_eq!(payment(&app, later["id"].as_str().unwrap()).await["status"], "processing");
        app.assert_verified().await;
    }

    async fn an_interrupted_export_is_finished_with_the_same_entries(app) {
        let acct = app.account_with_bill(9_000).await;
        for cents in [1_000, 2_000, 3_000] {
            pay_by(&app, &acct, cents, "phone", bank("000123456789")).await;
        }
        // The export binds the entries, then cannot write the file (the directory is a file).
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("not-a-dir");
        std::fs::write(&blocked, b"x").unwrap();
        let err = app.app.export_ach(&blocked).await.unwrap_err();
        assert!(err.to_string().contains("could not write"), "{err}");
        // A payment taken meanwhile goes to the next file, not the interrupted one.
        pay_by(&app, &acct, 500, "phone", bank("000123456789")).await;
        let out = dir.path().join("out");
        let files = app.app.export_ach(&out).await.unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[0].recovered && !files[1].recovered);
        assert_eq!(files[0].entries, 3);
        assert_eq!(files[0].debit_total.minor_units(), 6_000);
        assert_eq!(files[1].entries, 1);
        // Rebuilt files are byte-for-byte what the first run would have written.
        let a = std::fs::read_to_string(&files[0].path).unwrap();
        assert_eq!(nacha::parse_file(&a).unwrap().header.file_id_modifier, 'A');
        let b = std::fs::read_to_string(&files[1].path).unwrap();
        assert_eq!(nacha::parse_file(&b).unwrap().header.file_id_modifier, 'B');
        let traces: std::collections::HashSet<String> = [&a, &b]
            .iter()
            .flat_map(|t| nacha::parse_file(t).unwrap().batches.into_iter().flat_map(|b| b.entries).map(|e| e.trace_number))
            .collect();
        assert_eq!(traces.len(), 4, "four entries, four distinct traces");
        assert!(app.app.export_ach(&out).await.unwrap().is_empty());
        app.assert_verified().await;
    }

    async fn a_refund_of_a_settled_debit_is_a_credit_in_the_next_file(app) {
        let acct = app.account_with_bill(9_000).await;
        let p = pay_by(&app, &acct, 3_000, "phone", bank("000123456789")).await;
        let id = p["id"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(entries(&export(&app, dir.path()).await[0].1).len(), 1);
        let (s, r) = app.post_idem(&format!("/api/v1/payments/{id}/refunds"), &new_key(), json!({"amount": 1_200})).await;
        assert_eq!(s, 409, "a debit still settling cannot be refunded yet: {r}");
        app.clock.advance(jiff::SignedDuration::from_hours(24 * 6));
        app.app.reconcile().await.unwrap();
        let key = new_key();
        let (s, r) = app.post_idem(&format!("/api/v1/payments/{id}/refunds"), &key, json!({"amount": 1_200})).await;
        assert_eq!(s, 201, "{r}");
        let (s, again) = app.post_idem(&format!("/api/v1/payments/{id}/refunds"), &key, json!({"amount": 1_200})).await;
        assert_eq!((s, &again["id"]), (201, &r["id"]), "replayed, not refunded twice");
        let files = export(&app, dir.path()).await;
        let es = entries(&files[0].1);
        assert_eq!(es.len(), 1, "one credit");
        assert_eq!(es[0].1.transaction_code, TransactionCode::CheckingCredit);
        assert_eq!(es[0].1.amount, 1_200);
        assert_eq!(app.balance(&acct).await, 9_000 - 3_000 + 1_200);
        app.assert_verified().await;
    }
}

/// A bank-account validation service for the test: answers from a table, like a real one
/// answers from the banks' data.
struct TableValidator;

#[async_trait::async_trait]
impl billpay_services::ach::AccountValidator for TableValidator {
    async fn validate(
        &self,
        _routing: &billpay_domain::RoutingNumber,
        account: &billpay_domain::BankAccountNumber,
        _account_type: billpay_domain::BankAccountType,
    ) -> billpay_services::ach::AccountValidation {
        use billpay_services::ach::AccountValidation::*;
        match account.expose_secret() {
            "000123456789" => Valid,
            "000111111116" => Invalid { code: "R03".into() },
            _ => Unknown,
        }
    }
}

async fn plain(engine: Engine) -> TestApp {
    spawn_app(engine).await
}

both_engines! {
    with plain;

    async fn a_validation_service_answers_instead_of_a_prenote(app) {
        use billpay_services::payments::{Idempotency, NewMethod, PaymentRequest};
        use billpay_services::PaymentResult;
        let acct = app.account_with_bill(9_000).await;
        let mut cfg = (*app.app.config()).clone();
        cfg.ach.originate = true;
        let b = app.app.clone().with_config(cfg);
        let b = b.with_ach_origination_using(Some(std::sync::Arc::new(TableValidator)));
        let pay = |account: &'static str, cents: i64| {
            let b = b.clone();
            let acct = acct.clone();
            async move {
                b.create_payment_result(
                    Idempotency::new("test", new_key()).unwrap(),
                    PaymentRequest {
                        account_number: billpay_domain::AccountNumber::parse(&acct).unwrap(),
                        amount: billpay_domain::Money::new(cents, billpay_domain::Currency::USD),
                        channel: billpay_domain::Channel::Web,
                        method: NewMethod::Ach {
                            routing: billpay_domain::RoutingNumber::parse("110000000").unwrap(),
                            account: billpay_domain::BankAccountNumber::parse(account).unwrap(),
                            account_type: billpay_domain::BankAccountType::Checking,
                            holder_name: "Pat Payer".into(),
                        },
                        confirm_duplicate: false,
                        tel_authorization: None,
                        limit_to_balance: false,
                        risk: None,
                    },
                )
                .await
                .unwrap()
            }
        };
        // Valid: no prenote, the debit goes in the next file.
        let ok = pay("000123456789", 2_000).await;
        assert!(matches!(ok, PaymentResult::Completed(_)), "{ok:?}");
        // Invalid: declined at once with the service's reason.
        let bad = pay("000111111116", 2_001).await;
        match &bad {
            PaymentResult::Declined(_, code) => assert_eq!(code.as_str(), "R03"),
            other => panic!("{other:?}"),
        }
        // Unknown: the prenote goes out and the debit waits.
        let unknown = pay("000222222227", 2_002).await;
        assert!(matches!(unknown, PaymentResult::Completed(_)), "{unknown:?}");
        let dir = tempfile::tempdir().unwrap();
        let files = b.export_ach(dir.path()).await.unwrap();
        let text = std::fs::read_to_string(&files[0].path).unwrap();
        let file = nacha::parse_file(&text).unwrap();
        let mut got: Vec<(u8, i64)> = entries(&file).iter().map(|(_, e)| (e.transaction_code.code(), e.amount)).collect();
        got.sort();
        assert_eq!(got, vec![(27, 2_000), (28, 0)], "the valid debit and the unknown account's prenote");
        app.assert_verified().await;
    }
}

both_engines! {
    with originating;

    async fn every_return_family_reverses_the_payment_and_says_why(app) {
        // Insufficient funds, account problems, unauthorized, administrative.
        let codes = ["R01", "R09", "R02", "R03", "R04", "R16", "R20", "R05", "R07", "R10", "R11", "R29", "R06", "R08", "R24"];
        let acct = app.account_with_bill(100_000).await;
        let mut methods = Vec::new();
        let mut payments = Vec::new();
        for (i, _) in codes.iter().enumerate() {
            let (s, m) = app.post(&format!("/api/v1/accounts/{acct}/payment_methods"), bank(&format!("0009{i:08}"))).await;
            assert_eq!(s, 201, "{m}");
            let p = pay_by(&app, &acct, 1_000 + i as i64, "phone", json!({"type": "token", "token": m["id"]})).await;
            methods.push(m["id"].as_str().unwrap().to_string());
            payments.push(p["id"].as_str().unwrap().to_string());
        }
        let dir = tempfile::tempdir().unwrap();
        let files = export(&app, dir.path()).await;
        let (_, file) = &files[0];
        let es = entries(file);
        assert_eq!(es.len(), codes.len());
        let outcomes: Vec<(String, nacha::Outcome)> = es
            .iter()
            .map(|(_, e)| {
                let i = (e.amount - 1_000) as usize;
                (e.trace_number.clone(), nacha::Outcome::Return { code: codes[i].to_string() })
            })
            .collect();
        let header = nacha::FileHeader {
            immediate_destination: file.header.immediate_destination.clone(),
            immediate_origin: "110000000".into(),
            creation: "2026-12-03T08:00".parse().unwrap(),
            file_id_modifier: 'A',
            destination_name: "RIVERBEND".into(),
            origin_name: "TEST RDFI".into(),
            reference_code: String::new(),
        };
        let returns = nacha::build_returns_file(file, header, &outcomes, "11000000").unwrap();
        let r = app.app.import_ach_returns(&returns).await.unwrap();
        assert_eq!(r.returns_applied as usize, codes.len(), "{r:?}");
        assert_eq!(app.balance(&acct).await, 100_000 + 15 * 2500, "every debit reversed, one fee each");

        let (_, listed) = app.get(&format!("/api/v1/accounts/{acct}/payment_methods")).await;
        let active: Vec<String> = listed["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_string()).collect();
        let mut c = app.app.store.read_conn().await.unwrap();
        let notices: Vec<String> = sqlx::query_scalar("SELECT payload_json FROM outbox WHERE kind = 'email.payment_returned'")
            .fetch_all(&mut *c).await.unwrap();
        drop(c);
        for (i, code) in codes.iter().enumerate() {
            let p = payment(&app, &payments[i]).await;
            assert_eq!(p["status"], "returned", "{code}: {p}");
            assert_eq!(p["failure"]["code"], *code, "{p}");
            let expected = billpay_domain::DeclineCode::parse(code).unwrap().message(billpay_domain::Language::En);
            assert_eq!(p["failure"]["message"], expected, "{p}");
            let notice = notices.iter().find(|n| n.contains(&payments[i])).unwrap_or_else(|| panic!("no notice for {code}"));
            assert!(notice.contains(expected), "{notice}");
            let stopped = billpay_services::ach::stops_account(code);
            assert_eq!(!active.contains(&methods[i]), stopped, "{code}: saved account stopped = {stopped}");
        }
        app.assert_verified().await;
    }
}
