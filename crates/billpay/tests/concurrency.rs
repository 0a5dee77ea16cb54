//! Concurrent requests: one key executes once; racing payments respect the duplicate guard.

mod common;

use common::*;
use serde_json::json;

both_engines! {
    async fn hundred_concurrent_requests_with_one_key_pay_once(app) {
        let acct = app.account_with_bill(8410).await;
        let body = json!({"account_number": acct, "amount": 8410, "channel": "web", "payment_method": card("4242424242424242")});
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let client = app.client.clone();
            let url = format!("{}/api/v1/payments", app.base);
            let key = app.key.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let resp = client.post(url).bearer_auth(key).header("Idempotency-Key", "one-key").json(&body).send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<serde_json::Value>().await.unwrap())
            }));
        }
        let mut ids = std::collections::HashSet::new();
        let mut in_progress = 0;
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                201 => { ids.insert(body["id"].as_str().unwrap().to_string()); }
                409 => {
                    assert_eq!(body["error"]["code"], "request_in_progress", "{body}");
                    in_progress += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(ids.len(), 1, "every success names the same payment");
        assert!(in_progress < 100);
        assert_eq!(app.processor_charges().await, 1, "one charge at the processor");
        let (_, list) = app.get(&format!("/api/v1/accounts/{acct}/payments")).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "one payment recorded");
        assert_eq!(app.balance(&acct).await, 0);
        app.assert_verified().await;
    }

    async fn racing_payments_of_the_same_amount_pay_once(app) {
        let acct = app.account_with_bill(8410).await;
        let mut tasks = Vec::new();
        for i in 0..20 {
            let client = app.client.clone();
            let url = format!("{}/api/v1/payments", app.base);
            let key = app.key.clone();
            let channel = ["web", "phone", "chat", "agent"][i % 4];
            let body = json!({"account_number": acct, "amount": 8410, "channel": channel, "payment_method": card("4242424242424242")});
            tasks.push(tokio::spawn(async move {
                let resp = client.post(url).bearer_auth(key).header("Idempotency-Key", format!("race-{i}")).json(&body).send().await.unwrap();
                let status = resp.status().as_u16();
                (status, resp.json::<serde_json::Value>().await.unwrap())
            }));
        }
        let mut paid = 0;
        for t in tasks {
            let (status, body) = t.await.unwrap();
            match status {
                201 => paid += 1,
                409 => assert_eq!(body["error"]["code"], "duplicate_payment", "{body}"),
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(paid, 1, "the duplicate guard holds under concurrency, across channels");
        assert_eq!(app.processor_charges().await, 1);
        assert_eq!(app.balance(&acct).await, 0);
        app.assert_verified().await;
    }

    async fn concurrent_refunds_never_exceed_the_payment(app) {
        let acct = app.account_with_bill(10_000).await;
        let (_, p) = app.pay_with(&acct, 10_000, card("4242424242424242")).await;
        let path = format!("/api/v1/payments/{}/refunds", p["id"].as_str().unwrap());
        let mut tasks = Vec::new();
        for i in 0..12 {
            let client = app.client.clone();
            let url = format!("{}{path}", app.base);
            let key = app.key.clone();
            tasks.push(tokio::spawn(async move {
                let resp = client.post(url).bearer_auth(key).header("Idempotency-Key", format!("refund-{i}"))
                    .json(&json!({"amount": 1000})).send().await.unwrap();
                (resp.status().as_u16(), resp.text().await.unwrap())
            }));
        }
        let mut ok = 0;
        for t in tasks {
            match t.await.unwrap() {
                (201, _) => ok += 1,
                (400 | 409, _) => {}
                (other, body) => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(ok, 10, "exactly the payment's amount is refunded");
        let (_, now) = app.get(&format!("/api/v1/payments/{}", p["id"].as_str().unwrap())).await;
        assert_eq!(now["status"], "refunded");
        assert_eq!(now["amount_refunded"], 10_000);
        app.assert_verified().await;
    }
}
