//! The authorization matrix, on SQLite and PostgreSQL: every route of the REST API (read from
//! the OpenAPI document, so a new route is covered the day it is added) without a key, with a
//! made-up key and with a revoked key; every page of the agent desk for a visitor who is not
//! signed in, with a valid form token of their own; and the customer portal's payment pages
//! and receipts for another customer's payment. Nothing answers with data or changes anything.

mod common;

use common::desk::{Browser, hidden};
use common::visitor::Visitor;
use common::*;
use serde_json::Value;

/// The API document's operations: (method, path with every `{param}` filled in).
fn api_operations(account: &str, payment: &str) -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(&billpay_http::openapi_json()).unwrap();
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let mut concrete = String::new();
            let mut rest = path.as_str();
            while let Some(open) = rest.find('{') {
                concrete.push_str(&rest[..open]);
                let close = rest[open..].find('}').unwrap() + open;
                let name = &rest[open + 1..close];
                concrete.push_str(if name.contains("account") || name == "number" {
                    account
                } else if name.contains("payment") {
                    payment
                } else {
                    "x_1"
                });
                rest = &rest[close + 1..];
            }
            concrete.push_str(rest);
            ops.push((method.to_uppercase(), concrete));
        }
    }
    ops
}

both_engines! {
    async fn every_api_route_needs_a_live_key(app) {
        let account = app.account_with_bill(5_000).await;
        let (s, paid) = app.pay_with(&account, 5_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{paid}");
        let payment = paid["id"].as_str().unwrap().to_string();
        let (_, revoked) = app.app.create_api_key("old integration").await.unwrap();
        let id = app.app.list_api_keys().await.unwrap().into_iter().find(|k| k.name == "old integration").unwrap().id;
        app.app.revoke_api_key(&id).await.unwrap();

        let public = ["/api/v1/openapi.json"];
        let ops = api_operations(&account, &payment);
        assert!(ops.len() >= 20, "only {} operations in the document", ops.len());
        for (method, path) in &ops {
            if public.contains(&path.as_str()) {
                continue;
            }
            for key in [None, Some("bp_live_0000000000000000"), Some(revoked.expose_secret())] {
                let mut req = app
                    .client
                    .request(method.parse().unwrap(), format!("{}{path}", app.base))
                    .header("content-type", "application/json")
                    .header("idempotency-key", new_key())
                    .body("{}");
                if let Some(k) = key {
                    req = req.bearer_auth(k);
                }
                let resp = req.send().await.unwrap();
                assert_eq!(resp.status().as_u16(), 401, "{method} {path} with {key:?}");
                let body = resp.text().await.unwrap();
                assert!(body.contains("authentication_error"), "{method} {path}: {body}");
                assert!(!body.contains(&account) && !body.contains(&payment), "{method} {path} leaked: {body}");
            }
        }
        // Nothing was changed by any of them.
        let (_, list) = app.get(&format!("/api/v1/accounts/{account}/payments")).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        assert_eq!(app.balance(&account).await, 0);
    }

    async fn desk_pages_need_a_signed_in_representative(app) {
        let account = app.account_with_bill(5_000).await;
        let (s, _) = app.post(&format!("/api/v1/accounts/{account}/payment_methods"), serde_json::json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034})).await;
        assert!(s == 201 || s == 200);
        let _customer = common::desk::customer_asking_for_agent(&app, &account).await;
        let conversation: String = {
            let mut c = app.app.store.read_conn().await.unwrap();
            sqlx::query_scalar("SELECT id FROM chat_conversations").fetch_one(&mut *c).await.unwrap()
        };

        // A visitor who is not signed in, with a valid form token of their own session.
        let mut stranger = Browser::new(&app);
        let signin = stranger.get("/desk/signin").await;
        assert_eq!(signin.status, 200);
        let csrf = hidden(&signin.body, "csrf");
        let acct = format!("/desk/accounts/{account}");
        let conv = format!("/desk/conversations/{conversation}");
        for path in ["/desk".to_string(), "/desk/accounts?number=100000000017".into(), acct.clone(), conv.clone(), format!("{conv}/events"), "/desk/password".into(),
            "/desk/dashboard".into(), "/desk/reports".into(), "/desk/reports/posting?date=2026-12-01&format=csv".into(),
            "/desk/reports/aging?date=2026-12-01".into(), "/desk/reports/reconciliation?date=2026-12-01".into(),
            "/desk/reviews".into(), "/desk/settings".into()] {
            let p = stranger.get(&path).await;
            // Pages send the visitor to the sign-in; the event stream answers 401.
            assert!(p.status == 303 || p.status == 401, "GET {path}: {} {}", p.status, p.body);
            if p.status == 303 {
                assert!(p.location.as_deref().unwrap_or("").starts_with("/desk/signin"), "GET {path} → {:?}", p.location);
            }
            assert!(!p.body.contains(&account), "GET {path} leaked the account");
        }
        let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
            (format!("{acct}/pay/review"), vec![("amount", "50.00"), ("method", "x")]),
            (format!("{acct}/pay"), vec![("amount", "50.00"), ("method", "x"), ("form_key", "k1")]),
            (format!("{acct}/schedule"), vec![("amount", "50.00"), ("date", "2031-01-01")]),
            (format!("{acct}/autopay"), vec![("method", "x")]),
            (format!("{acct}/autopay/cancel"), vec![]),
            (format!("{acct}/phone-handoff"), vec![("amount", "50.00")]),
            (format!("{conv}/take"), vec![]),
            (format!("{conv}/reply"), vec![("text", "hello")]),
            (format!("{conv}/note"), vec![("text", "note")]),
            (format!("{conv}/transfer"), vec![]),
            (format!("{conv}/close"), vec![]),
            (format!("{conv}/payrequest"), vec![("amount", "50.00")]),
            (format!("{conv}/typing"), vec![]),
            (format!("{conv}/read"), vec![]),
            ("/desk/availability".into(), vec![("available", "on")]),
            ("/desk/reviews/pay_x/approve".into(), vec![("reason", "fine")]),
            ("/desk/reviews/pay_x/reject".into(), vec![("reason", "stolen")]),
            ("/desk/password".into(), vec![("password", "x"), ("new_password", "Another-Long-Pass-42")]),
            ("/desk/settings".into(), vec![("biller_name", "Mallory Power"), ("reason", "because")]),
        ];
        for (path, fields) in &forms {
            let mut form = vec![("csrf", csrf.as_str())];
            form.extend_from_slice(fields);
            let p = stranger.post(path, &form).await;
            assert!(p.status == 303 || p.status == 401 || p.status == 403, "POST {path}: {} {}", p.status, p.body);
            if p.status == 303 {
                assert!(p.location.as_deref().unwrap_or("").starts_with("/desk/signin"), "POST {path} → {:?}", p.location);
            }
        }
        // Nothing happened: no payment, no schedule, no AutoPay, no staff action recorded.
        assert_eq!(app.balance(&account).await, 5_000);
        let (_, list) = app.get(&format!("/api/v1/accounts/{account}/payments")).await;
        assert!(list["data"].as_array().unwrap().is_empty(), "{list}");
        let actions = common::desk::audit_actions(&app).await;
        assert!(actions.iter().all(|(a, _)| !a.starts_with("desk.")), "{actions:?}");
    }

    async fn a_staff_password_is_refused_for_thirty_minutes_after_ten_wrong_tries(app) {
        common::desk::staff(&app, "sue@example.com", "Sue Supervisor", billpay_services::staff::Role::Supervisor).await;
        let mut b = Browser::new(&app);
        for i in 0..10 {
            let p = b.submit("/desk/signin", "/desk/signin", &[("email", "sue@example.com"), ("password", "not-the-password")]).await;
            assert_eq!(p.status, 422, "try {i}");
            assert!(p.body.contains("The email or password is not right."), "try {i}");
        }
        // The right password is refused now, and still 29 minutes later (PCI DSS 8.3.4).
        for wait in [0, 29] {
            app.clock.advance(jiff::SignedDuration::from_mins(wait));
            let p = b.submit("/desk/signin", "/desk/signin", &[("email", "sue@example.com"), ("password", common::desk::PASSWORD)]).await;
            assert_eq!(p.status, 422, "after {wait} more minutes");
            assert!(p.body.contains("Too many failed sign-ins."), "{}", p.body);
        }
        app.clock.advance(jiff::SignedDuration::from_mins(2));
        common::desk::sign_in(&app, "sue@example.com", None).await;
        let actions = common::desk::audit_actions(&app).await;
        assert!(actions.iter().filter(|(_, a)| a == "staff.signin_failed").count() >= 10, "{actions:?}");
    }

    async fn a_customer_never_reaches_another_customers_payment(app) {
        let theirs = app.account_with_bill(8_410).await;
        let (s, paid) = app.pay_with(&theirs, 8_410, card("4242424242424242")).await;
        assert_eq!(s, 201, "{paid}");
        let payment = paid["id"].as_str().unwrap().to_string();
        let confirmation = paid["confirmation_number"].as_str().unwrap().to_string();

        // Another customer, verified for their own account in quick pay.
        let mine = app.account_with_bill(1_000).await;
        let mut v = Visitor::new(&app);
        let p = v.submit("/pay", "/pay", &[("account_number", mine.as_str()), ("postal_code", "10001")]).await;
        assert_eq!(p.location.as_deref(), Some("/pay/amount"), "{}", p.body);
        let mut anonymous = Visitor::new(&app);
        for who in [&mut v, &mut anonymous] {
            for path in [format!("/pay/done/{payment}"), format!("/receipts/{payment}"), format!("/receipts/{payment}/pdf"), format!("/chat/pay/{payment}")] {
                let p = who.get(&path).await;
                assert!(p.status == 404 || p.status == 303, "GET {path}: {}", p.status);
                assert!(!p.body.contains(&confirmation) && !p.body.contains(&theirs) && !p.body.contains("84.10"), "GET {path} leaked: {}", p.body);
            }
            for path in ["/account", "/account/statements", "/account/methods"] {
                let p = who.get(path).await;
                assert!(p.status == 303 || p.status == 404, "GET {path}: {}", p.status);
                assert!(!p.body.contains(&theirs));
            }
        }
    }
}
