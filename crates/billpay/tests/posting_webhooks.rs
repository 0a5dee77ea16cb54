//! Payment posting webhooks, on SQLite and PostgreSQL: every payment, refund and bank-debit
//! return the ledger posts becomes one signed event with a stable id, delivered to a loopback
//! receiver and retried after a failure; a declined payment sends nothing; relaying again
//! makes nothing twice.

mod common;

use common::hooks::receiver;
use common::*;
use serde_json::{Value, json};

both_engines! {
    async fn payments_refunds_and_returns_are_signed_events_with_stable_ids(app) {
        let (url, got) = receiver().await;
        let (s, hook) = app.post("/api/v1/webhook_endpoints", json!({"url": url})).await;
        assert_eq!(s, 201, "{hook}");
        let secret = hook["secret"].as_str().unwrap().to_string();

        let acct = app.account_with_bill(20_000).await;
        let (s, paid) = app.pay_with(&acct, 5_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{paid}");
        let (s, declined) = app.pay_with(&acct, 700, card("4000000000000002")).await;
        assert_ne!(s, 201, "{declined}");
        let id = paid["id"].as_str().unwrap();
        let (s, refund) = app
            .post_idem(&format!("/api/v1/payments/{id}/refunds"), "refund-1", json!({"amount": 1_500}))
            .await;
        assert_eq!(s, 201, "{refund}");
        let (s, debit) = app.pay_with(&acct, 3_000, ach("000222222227")).await;
        assert_eq!(s, 201, "{debit}");
        // Past the sandbox's settlement window, the bank debit comes back R01.
        app.clock.advance(jiff::SignedDuration::from_hours(49));
        let (_, returned) = app.app.settle_bank_debits().await.unwrap();
        assert_eq!(returned, 1);

        assert_eq!(app.app.relay_ledger_events().await.unwrap(), 4, "payment, refund, bank debit, return");
        assert_eq!(app.app.relay_ledger_events().await.unwrap(), 0, "each movement once");

        // Delivered, signed, the first failure retried.
        for _ in 0..30 {
            app.app.drain_jobs("test").await.unwrap();
            if got.lock().unwrap().len() >= 4 { break; }
            app.clock.advance(jiff::SignedDuration::from_mins(5));
        }
        let got = got.lock().unwrap().clone();
        assert_eq!(got.len(), 4, "{got:?}");
        let mut kinds = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for (event_id, sig, body) in &got {
            let t: i64 = sig.split(',').next().unwrap().trim_start_matches("t=").parse().unwrap();
            assert_eq!(*sig, billpay_services::webhooks::signature(secret.as_bytes(), t, body), "the signature verifies");
            let v: Value = serde_json::from_str(body).unwrap();
            assert_eq!(v["id"].as_str().unwrap(), event_id, "the header and the body name the event");
            assert_eq!(*event_id, format!("evt_{}", v["data"]["entry_id"].as_str().unwrap()), "the id is the ledger entry's");
            assert!(ids.insert(event_id.clone()), "one delivery per event: {got:?}");
            assert_eq!(v["data"]["account_number"], acct.as_str());
            assert!(!body.contains("4242424242424242") && !body.contains("000222222227"), "no card or bank number: {body}");
            kinds.push((v["type"].as_str().unwrap().to_string(), v["data"]["amount"].as_i64().unwrap(), v["data"]["return_code"].clone()));
        }
        kinds.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        assert_eq!(kinds, vec![
            ("payment.posted".to_string(), 3_000, Value::Null),
            ("payment.posted".to_string(), 5_000, Value::Null),
            ("payment.returned".to_string(), -3_000, json!("R01")),
            ("refund.posted".to_string(), -1_500, Value::Null),
        ]);
        // The events are in the API's event list too, and match the posting file's entries.
        let (_, events) = app.get("/api/v1/events").await;
        let listed: Vec<&str> = events["data"].as_array().unwrap().iter().filter_map(|e| e["id"].as_str()).collect();
        for id in &ids {
            assert!(listed.contains(&id.as_str()), "{id} in {events}");
        }
        app.assert_verified().await;
    }
}

both_engines! {
    async fn every_metric_of_the_grafana_dashboard_is_exported(app) {
        let (url, _got) = receiver().await;
        let (s, _) = app.post("/api/v1/webhook_endpoints", json!({"url": url})).await;
        assert_eq!(s, 201);
        let acct = app.account_with_bill(20_000).await;
        let (s, p) = app.pay_with(&acct, 2_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        let (s, _) = app.pay_with(&acct, 700, card("4000000000000002")).await;
        assert_ne!(s, 201);
        assert!(app.app.relay_ledger_events().await.unwrap() >= 1);
        app.app.drain_jobs("test").await.unwrap();

        let resp = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        assert!(text.contains("billpay_payments_total{channel=\"web\",method=\"card\",outcome=\"succeeded\"}"), "{text}");
        assert!(text.contains("billpay_payments_total{channel=\"web\",method=\"card\",outcome=\"declined\"}"), "{text}");
        assert!(text.contains("billpay_outbox_queued{channel=\"email\"}"), "{text}");
        assert!(text.contains("billpay_chat_conversations_open{state=\"queued\"} 0"), "{text}");

        let grafana: Value = serde_json::from_str(include_str!("../../../ops/grafana/billpay.json")).unwrap();
        let mut names = std::collections::BTreeSet::new();
        for panel in grafana["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let expr = target["expr"].as_str().unwrap();
                for (i, _) in expr.match_indices("billpay_") {
                    let name: String = expr[i..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                    names.insert(name);
                }
            }
        }
        assert!(names.len() >= 10, "{names:?}");
        for name in &names {
            assert!(
                text.lines().any(|l| !l.starts_with('#') && l.starts_with(name.as_str())),
                "{name} is on the Grafana dashboard but not in /metrics:\n{text}"
            );
        }
    }
}
