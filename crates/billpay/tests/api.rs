//! The REST API through HTTP, on SQLite and PostgreSQL.

mod common;

use billpay_services::sandbox::Fault;
use common::*;
use serde_json::{Value, json};

fn card_with(number: &str, cvc: &str) -> Value {
    json!({"type": "card", "number": number, "exp_month": 12, "exp_year": 2034, "cvc": cvc})
}

both_engines! {
    async fn card_payment_succeeds_with_receipt(app) {
        let acct = app.account_with_bill(8410).await;
        assert_eq!(app.balance(&acct).await, 8410);
        let (s, p) = app.pay_with(&acct, 8410, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(p["status"], "succeeded");
        assert_eq!(p["amount"], 8410);
        assert_eq!(p["payment_method"]["brand"], "visa");
        assert_eq!(p["payment_method"]["last4"], "4242");
        let conf = p["confirmation_number"].as_str().unwrap();
        assert_eq!(conf.len(), 12, "3-3-4 grouped: {conf}");
        assert!(billpay_domain::ConfirmationNumber::parse(conf).is_ok());
        assert_eq!(app.balance(&acct).await, 0);

        let (s, by_conf) = app.get(&format!("/api/v1/confirmations/{}", conf.replace('-', ""))).await;
        assert_eq!(s, 200);
        assert_eq!(by_conf["id"], p["id"]);

        let (s, r) = app.get(p["receipt_url"].as_str().unwrap()).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(r["confirmation_number"], conf);
        assert_eq!(r["amount"], "$84.10");
        assert_eq!(r["method"], "Visa ending in 4242");
        let text = r["text"].as_str().unwrap();
        assert!(text.contains(conf) && text.contains("$84.10"), "{text}");
        assert!(!text.contains("4242424242424242"));

        // The receipt email waits in the outbox, written with the payment.
        let mut c = app.app.store.read_conn().await.unwrap();
        let msg = billpay_store::queries::outbox_for_dedupe(&mut c, &format!("receipt:{}", p["id"].as_str().unwrap()))
            .await
            .unwrap()
            .expect("receipt queued");
        assert_eq!(msg.recipient, "pat@example.com");
        assert!(msg.payload_json.contains(conf));
        app.assert_verified().await;
    }


    async fn ach_payment_settles_after_the_window(app) {
        let acct = app.account_with_bill(6200).await;
        let (s, p) = app.pay_with(&acct, 6200, ach("000123456789")).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(p["status"], "processing");
        assert_eq!(p["payment_method"]["type"], "ach");
        assert_eq!(p["payment_method"]["last4"], "6789");
        assert_eq!(app.balance(&acct).await, 0, "an accepted bank debit credits the account at once");
        let (s, r) = app.get(p["receipt_url"].as_str().unwrap()).await;
        assert_eq!(s, 200);
        assert!(r["note"].as_str().unwrap().contains("1 to 3 business days"));
        app.assert_verified().await;

        // Not yet settled.
        app.app.reconcile().await.unwrap();
        let (_, now) = app.get(&format!("/api/v1/payments/{}", p["id"].as_str().unwrap())).await;
        assert_eq!(now["status"], "processing");

        app.clock.advance(jiff::SignedDuration::from_hours(49));
        let report = app.app.reconcile().await.unwrap();
        assert_eq!(report.debits_settled, 1);
        let (_, now) = app.get(&format!("/api/v1/payments/{}", p["id"].as_str().unwrap())).await;
        assert_eq!(now["status"], "succeeded");
        app.assert_verified().await;
    }

    async fn ach_return_reopens_the_balance_and_tells_the_customer(app) {
        let acct = app.account_with_bill(6200).await;
        let (s, p) = app.pay_with(&acct, 6200, ach("000222222227")).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(app.balance(&acct).await, 0);
        app.clock.advance(jiff::SignedDuration::from_hours(49));
        let report = app.app.reconcile().await.unwrap();
        assert_eq!(report.debits_returned, 1);
        let id = p["id"].as_str().unwrap();
        let (_, now) = app.get(&format!("/api/v1/payments/{id}")).await;
        assert_eq!(now["status"], "returned");
        assert_eq!(now["failure"]["code"], "R01");
        assert!(now["failure"]["message"].as_str().unwrap().to_lowercase().contains("insufficient"));
        assert_eq!(app.balance(&acct).await, 6200, "the return re-opens the balance");
        let mut c = app.app.store.read_conn().await.unwrap();
        let notice = billpay_store::queries::outbox_for_dedupe(&mut c, &format!("returned:{id}")).await.unwrap();
        assert!(notice.expect("return notice queued").payload_json.contains("R01"));
        // Running the settlement again changes nothing.
        let again = app.app.reconcile().await.unwrap();
        assert_eq!(again.debits_returned, 0);
        app.assert_verified().await;
    }

    async fn ach_refused_currency_is_a_402(app) {
        let acct = app.account_with_bill(6200).await;
        let (s, body) = app.pay_with(&acct, 6200, ach("000444444440")).await;
        assert_eq!(s, 402, "{body}");
        assert_eq!(body["error"]["type"], "bank_account_error");
        assert_eq!(app.balance(&acct).await, 6200);
    }

    async fn replay_returns_the_first_response_and_charges_once(app) {
        let acct = app.account_with_bill(8410).await;
        let body = json!({"account_number": acct, "amount": 8410, "channel": "web", "payment_method": card("4242424242424242")});
        let (s1, p1) = app.pay("same-key", body.clone()).await;
        let (s2, p2) = app.pay("same-key", body.clone()).await;
        assert_eq!((s1, s2), (201, 201));
        assert_eq!(p1, p2, "the replay is the stored first response");
        assert_eq!(app.processor_charges().await, 1);

        // Declines are replayed too.
        let decline = json!({"account_number": acct, "amount": 77, "payment_method": card("4000000000009995")});
        let (d1, b1) = app.pay("decline-key", decline.clone()).await;
        let (d2, b2) = app.pay("decline-key", decline).await;
        assert_eq!((d1, d2), (402, 402));
        assert_eq!(b1, b2);
        app.assert_verified().await;
    }

    async fn same_key_different_parameters_is_409(app) {
        let acct = app.account_with_bill(8410).await;
        let (s, _) = app.pay("k", json!({"account_number": acct, "amount": 8410, "payment_method": card("4242424242424242")})).await;
        assert_eq!(s, 201);
        let (s, e) = app.pay("k", json!({"account_number": acct, "amount": 8411, "payment_method": card("4242424242424242")})).await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["error"]["type"], "idempotency_error");
        assert_eq!(e["error"]["code"], "idempotency_key_reused");
        assert_eq!(app.processor_charges().await, 1);
    }

    async fn the_idempotency_key_is_optional(app) {
        let acct = app.account_with_bill(8410).await;
        let body = json!({"account_number": acct, "amount": 8410, "payment_method": card("4242424242424242")});
        let send = || app.client.post(format!("{}/api/v1/payments", app.base)).bearer_auth(&app.key).json(&body).send();
        let resp = send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 201, "a payment without a key runs once");
        // Without a key a retry is a new request, and the duplicate guard catches it.
        let resp = send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 409);
        let e: Value = resp.json().await.unwrap();
        assert_eq!(e["error"]["code"], "duplicate_payment");
        assert_eq!(app.processor_charges().await, 1);
        app.assert_verified().await;
    }

    async fn keys_belong_to_their_api_key(app) {
        let acct = app.account_with_bill(8410).await;
        let body = json!({"account_number": acct, "amount": 100, "payment_method": card("4242424242424242"), "confirm_duplicate": true});
        let (s, p1) = app.pay("shared", body.clone()).await;
        assert_eq!(s, 201);
        let (_, other) = app.app.create_api_key("other client").await.unwrap();
        let resp = app.client.post(format!("{}/api/v1/payments", app.base))
            .bearer_auth(other.expose_secret())
            .header("Idempotency-Key", "shared")
            .json(&body).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let p2: Value = resp.json().await.unwrap();
        assert_ne!(p1["id"], p2["id"], "another client's key space is its own");
    }

    async fn cross_channel_duplicate_is_refused_unless_confirmed(app) {
        let acct = app.account_with_bill(8410).await;
        let (s, first) = app.pay(&new_key(), json!({"account_number": acct, "amount": 8410, "channel": "phone", "payment_method": card("4242424242424242")})).await;
        assert_eq!(s, 201);
        let body = json!({"account_number": acct, "amount": 8410, "channel": "web", "payment_method": card("5555555555554444")});
        let (s, e) = app.pay("dup-key", body.clone()).await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["error"]["code"], "duplicate_payment");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("A $84.10 payment was made by phone"), "{msg}");
        assert_eq!(e["error"]["previous_payment"], first["id"]);
        // The refusal stored nothing: the same key may be used to confirm.
        let mut confirmed = body.clone();
        confirmed["confirm_duplicate"] = json!(true);
        let (s, p) = app.pay("dup-key", confirmed).await;
        assert_eq!(s, 201, "{p}");
        // A different amount is not a duplicate.
        let (s, _) = app.pay_with(&acct, 8409, card("4242424242424242")).await;
        assert_eq!(s, 201);
        // A failed payment does not count.
        let acct2 = app.account_with_bill(500).await;
        let (s, _) = app.pay_with(&acct2, 500, card("4000000000009995")).await;
        assert_eq!(s, 402);
        let (s, _) = app.pay_with(&acct2, 500, card("4242424242424242")).await;
        assert_eq!(s, 201);
        // After the window it is allowed again.
        app.clock.advance(jiff::SignedDuration::from_mins(11));
        let (s, _) = app.pay(&new_key(), json!({"account_number": acct, "amount": 8410, "payment_method": card("4242424242424242")})).await;
        assert_eq!(s, 201);
        app.assert_verified().await;
    }

    async fn in_doubt_payment_is_resolved_by_key_never_charged_twice(app) {
        let acct = app.account_with_bill(8410).await;
        app.sandbox.inject(Fault::TimeoutAfterCharge);
        let body = json!({"account_number": acct, "amount": 8410, "payment_method": card("4242424242424242")});
        let (s, p) = app.pay("doubt", body.clone()).await;
        assert_eq!(s, 202, "{p}");
        assert_eq!(p["status"], "processing");
        assert!(p["message"].as_str().unwrap().contains("will not be charged twice"));
        assert_eq!(app.processor_charges().await, 1);
        app.assert_verified().await;

        // A retry right away cannot know yet.
        let (s, e) = app.pay("doubt", body.clone()).await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["error"]["code"], "request_in_progress");

        // Later the retry asks the processor by key and gets the real outcome.
        app.clock.advance(jiff::SignedDuration::from_mins(2));
        let (s, done) = app.pay("doubt", body.clone()).await;
        assert_eq!(s, 201, "{done}");
        assert_eq!(done["id"], p["id"]);
        assert_eq!(done["status"], "succeeded");
        assert_eq!(app.processor_charges().await, 1, "resolved without charging again");
        assert_eq!(app.balance(&acct).await, 0);
        let (s, again) = app.pay("doubt", body).await;
        assert_eq!((s, &again), (201, &done));
        app.assert_verified().await;
    }

    async fn in_doubt_that_never_reached_the_processor_fails_cleanly(app) {
        let acct = app.account_with_bill(8410).await;
        app.sandbox.inject(Fault::TimeoutBeforeCharge);
        let (s, p) = app.pay_with(&acct, 8410, card("4242424242424242")).await;
        assert_eq!(s, 202);
        app.clock.advance(jiff::SignedDuration::from_mins(2));
        let r = app.app.reconcile().await.unwrap();
        assert_eq!(r.payments_resolved, 1);
        let (_, now) = app.get(&format!("/api/v1/payments/{}", p["id"].as_str().unwrap())).await;
        assert_eq!(now["status"], "failed");
        assert_eq!(now["failure"]["code"], "processing_error");
        assert_eq!(app.processor_charges().await, 0);
        assert_eq!(app.balance(&acct).await, 8410);
        // The failed attempt does not block paying again.
        let (s, _) = app.pay_with(&acct, 8410, card("4242424242424242")).await;
        assert_eq!(s, 201);
        app.assert_verified().await;
    }

    async fn processor_unavailable_is_503_and_the_key_can_be_retried(app) {
        let acct = app.account_with_bill(8410).await;
        app.sandbox.inject(Fault::Unavailable);
        let body = json!({"account_number": acct, "amount": 8410, "payment_method": card("4242424242424242")});
        let (s, e) = app.pay("retry-me", body.clone()).await;
        assert_eq!(s, 503, "{e}");
        assert_eq!(e["error"]["code"], "processor_unavailable");
        assert!(e["error"]["message"].as_str().unwrap().contains("nothing was charged"));
        assert_eq!(app.balance(&acct).await, 8410);
        let (s, p) = app.pay("retry-me", body).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(app.processor_charges().await, 1);
        app.assert_verified().await;
    }

    async fn refunds_partial_then_full_and_never_more(app) {
        let acct = app.account_with_bill(10_000).await;
        let (_, p) = app.pay_with(&acct, 10_000, card("4242424242424242")).await;
        let id = p["id"].as_str().unwrap();
        let path = format!("/api/v1/payments/{id}/refunds");
        let (s, r) = app.post_idem(&path, "r1", json!({"amount": 2500})).await;
        assert_eq!(s, 201, "{r}");
        assert_eq!(r["status"], "succeeded");
        assert_eq!(r["payment"]["status"], "partially_refunded");
        assert_eq!(r["payment"]["amount_refunded"], 2500);
        assert_eq!(app.balance(&acct).await, 2500);
        // Replay.
        let (s, again) = app.post_idem(&path, "r1", json!({"amount": 2500})).await;
        assert_eq!((s, &again), (201, &r));
        // Too much.
        let (s, e) = app.post_idem(&path, "r2", json!({"amount": 7501})).await;
        assert_eq!(s, 400, "{e}");
        assert_eq!(e["error"]["param"], "amount");
        assert!(e["error"]["message"].as_str().unwrap().contains("$75.00"));
        // The rest, by leaving the amount out.
        let resp = app.client.post(format!("{}{path}", app.base)).bearer_auth(&app.key)
            .header("Idempotency-Key", "r3").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let full: Value = resp.json().await.unwrap();
        assert_eq!(full["amount"], 7500);
        assert_eq!(full["payment"]["status"], "refunded");
        assert_eq!(app.balance(&acct).await, 10_000);
        let (s, e) = app.post_idem(&path, "r4", json!({"amount": 1})).await;
        assert_eq!(s, 409, "{e}");
        assert_eq!(e["error"]["code"], "payment_not_refundable");
        // Refunding a failed payment.
        let (_, d) = app.pay_with(&acct, 55, card("4000000000000002")).await;
        let (s, e) = app.post_idem(&format!("/api/v1/payments/{}/refunds", d["payment"]["id"].as_str().unwrap()), "r5", json!({})).await;
        assert_eq!(s, 409, "{e}");
        let (s, _) = app.post_idem("/api/v1/payments/pay_nope/refunds", "r6", json!({})).await;
        assert_eq!(s, 404);
        app.assert_verified().await;
    }

    async fn validation_errors_name_the_field(app) {
        let acct = app.account_with_bill(1000).await;
        let base = json!({"account_number": acct, "amount": 1000, "payment_method": card("4242424242424242")});
        let mut cases: Vec<(Value, &str)> = Vec::new();
        let mut v = base.clone(); v["amount"] = json!(0); cases.push((v, "amount"));
        let mut v = base.clone(); v["amount"] = json!(-5); cases.push((v, "amount"));
        let mut v = base.clone(); v["amount"] = json!(10.5); cases.push((v, "amount"));
        let mut v = base.clone(); v["amount"] = json!(100_000_001); cases.push((v, "amount"));
        let mut v = base.clone(); v["currency"] = json!("xyz"); cases.push((v, "currency"));
        let mut v = base.clone(); v["currency"] = json!("cad"); cases.push((v, "currency"));
        let mut v = base.clone(); v["channel"] = json!("pigeon"); cases.push((v, "channel"));
        let mut v = base.clone(); v["account_number"] = json!("100000000018"); cases.push((v, "account_number"));
        let mut v = base.clone(); v["payment_method"]["number"] = json!("4242424242424241"); cases.push((v, "payment_method[number]"));
        let mut v = base.clone(); v["payment_method"]["number"] = json!("3530111333300000"); cases.push((v, "payment_method[number]"));
        let mut v = base.clone(); v["payment_method"]["exp_month"] = json!(13); cases.push((v, "payment_method[exp_month]"));
        let mut v = base.clone(); v["payment_method"]["exp_year"] = json!(2020); cases.push((v, "payment_method[exp_month]"));
        let mut v = base.clone(); v["payment_method"]["cvc"] = json!("12"); cases.push((v, "payment_method[cvc]"));
        let mut v = base.clone(); v["payment_method"]["postal_code"] = json!("ABCDE"); cases.push((v, "payment_method[postal_code]"));
        let mut v = base.clone(); v["payment_method"] = card_with("378282246310005", "123"); cases.push((v, "payment_method[cvc]"));
        let mut v = base.clone(); v["payment_method"]["type"] = json!("bitcoin"); cases.push((v, "payment_method[type]"));
        let mut v = base.clone(); v["payment_method"].as_object_mut().unwrap().remove("cvc"); cases.push((v, "payment_method[cvc]"));
        let mut v = base.clone(); v["payment_method"]["routing_number"] = json!("110000000"); cases.push((v, "payment_method[routing_number]"));
        let mut v = base.clone(); v["payment_method"] = ach("000123456789"); v["payment_method"]["routing_number"] = json!("021000022"); cases.push((v, "payment_method[routing_number]"));
        let mut v = base.clone(); v["payment_method"] = ach("123"); cases.push((v, "payment_method[account_number]"));
        let mut v = base.clone(); v["payment_method"] = ach("000123456789"); v["payment_method"]["account_type"] = json!("money market"); cases.push((v, "payment_method[account_type]"));
        let mut v = base.clone(); v["surprise"] = json!(1); cases.push((v, "surprise"));
        for (body, param) in cases {
            let (s, e) = app.pay(&new_key(), body.clone()).await;
            assert_eq!(s, 400, "{body} -> {e}");
            assert_eq!(e["error"]["type"], "invalid_request_error", "{e}");
            assert_eq!(e["error"]["param"], param, "{body} -> {e}");
            assert!(!e["error"]["message"].as_str().unwrap().is_empty());
        }
        let (s, e) = app.pay(&new_key(), json!({"account_number": "100000000017", "amount": 5, "payment_method": card("4242424242424242")})).await;
        assert_eq!(s, 404, "{e}");
        // Bad JSON, wrong content type.
        let resp = app.client.post(format!("{}/api/v1/payments", app.base)).bearer_auth(&app.key)
            .header("Idempotency-Key", "x").header("Content-Type", "application/json").body("{\"amount\": ").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 400);
        let resp = app.client.post(format!("{}/api/v1/payments", app.base)).bearer_auth(&app.key)
            .header("Idempotency-Key", "x").body("amount=5").send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 415);
        // Nothing was written by any of this.
        assert_eq!(app.processor_charges().await, 0);
        assert_eq!(app.balance(&acct).await, 1000);
        app.assert_verified().await;
    }

    async fn errors_never_echo_card_numbers_or_codes(app) {
        let acct = app.account_with_bill(1000).await;
        let bodies = [
            json!({"account_number": acct, "amount": 1000, "payment_method": {"type": "card", "number": 4242424242424242u64, "exp_month": 12, "exp_year": 2034, "cvc": "987"}}),
            json!({"account_number": acct, "amount": 1000, "payment_method": {"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": 987}}),
            json!({"account_number": acct, "amount": "4242424242424242", "payment_method": card("4242424242424242")}),
            json!({"account_number": acct, "amount": 1000, "payment_method": {"type": "4242424242424242"}}),
            json!({"account_number": acct, "amount": 1000, "payment_method": {"type": "ach", "routing_number": "110000000", "account_number": 987654321012u64, "account_type": "checking", "holder_name": "X"}}),
        ];
        for body in bodies {
            let (s, e) = app.pay(&new_key(), body).await;
            assert_eq!(s, 400, "{e}");
            let text = e.to_string();
            for secret in ["4242424242424242", "987", "987654321012"] {
                assert!(!text.contains(secret), "error leaked {secret}: {text}");
            }
        }
    }

    async fn authentication_is_required(app) {
        for (method, path) in [("GET", "/api/v1/accounts/100000000017"), ("POST", "/api/v1/payments"), ("GET", "/api/v1/payments/x")] {
            let req = app.client.request(method.parse().unwrap(), format!("{}{path}", app.base));
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 401, "{method} {path}");
            let e: Value = resp.json().await.unwrap();
            assert_eq!(e["error"]["type"], "authentication_error");
            let resp = app.client.request(method.parse().unwrap(), format!("{}{path}", app.base))
                .bearer_auth("bp_live_0000").send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 401);
        }
        let (_, key) = app.app.create_api_key("revoked").await.unwrap();
        let id = app.app.list_api_keys().await.unwrap().into_iter().find(|k| k.name == "revoked").unwrap().id;
        app.app.revoke_api_key(&id).await.unwrap();
        let resp = app.client.get(format!("{}/api/v1/accounts/100000000017", app.base)).bearer_auth(key.expose_secret()).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        // Health, readiness, metrics and the OpenAPI document are public.
        for path in ["/healthz", "/readyz", "/metrics", "/api/v1/openapi.json"] {
            let resp = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{path}");
        }
    }

    async fn accounts_and_statements(app) {
        let (s, a) = app.post("/api/v1/accounts", json!({"name": "Lin Chen", "postal_code": "60601-1234", "timezone": "America/Chicago", "phone": "(312) 555-0100"})).await;
        assert_eq!(s, 201, "{a}");
        let n = a["account_number"].as_str().unwrap().to_string();
        assert!(billpay_domain::AccountNumber::parse(&n).is_ok());
        assert_eq!(a["phone"], "+13125550100");
        assert_eq!(a["status"], "current");
        assert_eq!(a["balance"]["amount"], 0);
        let (s, _) = app.post("/api/v1/accounts", json!({"account_number": n, "name": "Again", "postal_code": "60601"})).await;
        assert_eq!(s, 409);
        let (s, e) = app.post("/api/v1/accounts", json!({"name": "X", "postal_code": "60601", "timezone": "Mars/Olympus"})).await;
        assert_eq!((s, e["error"]["param"].as_str()), (400, Some("timezone")));
        let (s, e) = app.post("/api/v1/accounts", json!({"name": "X", "postal_code": "606"})).await;
        assert_eq!((s, e["error"]["param"].as_str()), (400, Some("postal_code")));
        let (s, e) = app.post("/api/v1/accounts", json!({"name": "X", "postal_code": "60601", "email": "nope"})).await;
        assert_eq!((s, e["error"]["param"].as_str()), (400, Some("email")));

        let stmt = json!({"statement_date": "2026-10-01", "due_date": "2026-10-25", "amount_due": 9900,
            "lines": [{"description": "Internet 300", "amount": 7900}, {"description": "Modem", "amount": 2000}]});
        let (s, st) = app.post(&format!("/api/v1/accounts/{n}/statements"), stmt.clone()).await;
        assert_eq!(s, 201, "{st}");
        let (s, _) = app.post(&format!("/api/v1/accounts/{n}/statements"), stmt).await;
        assert_eq!(s, 409, "one statement per date");
        let (s, e) = app.post(&format!("/api/v1/accounts/{n}/statements"), json!({"statement_date": "2026-11-01", "due_date": "2026-11-25", "amount_due": 100, "lines": [{"description": "a", "amount": 99}]})).await;
        assert_eq!((s, e["error"]["param"].as_str()), (400, Some("lines")));
        let (s, e) = app.post(&format!("/api/v1/accounts/{n}/statements"), json!({"statement_date": "2026-11-01", "due_date": "2026-10-25", "amount_due": 100})).await;
        assert_eq!((s, e["error"]["param"].as_str()), (400, Some("due_date")));
        let (s, e) = app.post(&format!("/api/v1/accounts/{n}/statements"), json!({"statement_date": "2026-02-30", "due_date": "2026-10-25", "amount_due": 100})).await;
        assert_eq!((s, e["error"]["param"].as_str()), (400, Some("statement_date")));

        let (_, a) = app.get(&format!("/api/v1/accounts/{n}")).await;
        assert_eq!(a["balance"]["amount"], 9900);
        assert_eq!(a["due_date"], "2026-10-25");
        assert_eq!(a["status"], "past_due", "the due date has passed with a balance");
        let (_, list) = app.get(&format!("/api/v1/accounts/{n}/statements")).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        let (s, _) = app.get("/api/v1/accounts/100000000018").await;
        assert_eq!(s, 400, "a typo is caught by the check digit before any lookup");
        let (s, _) = app.get("/api/v1/accounts/100000000017").await;
        assert_eq!(s, 404);
        app.assert_verified().await;
    }

    async fn payment_history_pages_newest_first(app) {
        let acct = app.account_with_bill(100_000).await;
        let mut ids = Vec::new();
        for i in 0..7 {
            let (s, p) = app.pay_with(&acct, 100 + i, card("4242424242424242")).await;
            assert_eq!(s, 201);
            ids.push(p["id"].as_str().unwrap().to_string());
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        ids.reverse();
        let (_, page1) = app.get(&format!("/api/v1/accounts/{acct}/payments?limit=4")).await;
        assert_eq!(page1["has_more"], true);
        let got: Vec<&str> = page1["data"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
        assert_eq!(got, ids[..4].iter().map(String::as_str).collect::<Vec<_>>());
        let (_, page2) = app.get(&format!("/api/v1/accounts/{acct}/payments?limit=4&starting_after={}", got[3])).await;
        assert_eq!(page2["has_more"], false);
        assert_eq!(page2["data"].as_array().unwrap().len(), 3);
        let (s, _) = app.get(&format!("/api/v1/accounts/{acct}/payments?limit=0")).await;
        assert_eq!(s, 400);
    }

    async fn verify_detects_tampering(app) {
        let acct = app.account_with_bill(8410).await;
        let (_, p) = app.pay_with(&acct, 8410, card("4242424242424242")).await;
        app.assert_verified().await;
        let id = p["id"].as_str().unwrap().to_string();
        app.app.store.write(move |c| Box::pin(async move {
            sqlx::query("UPDATE postings SET amount = amount + 1 WHERE journal_id = (SELECT journal_id FROM payments WHERE id = $1) AND seq = 0")
                .bind(id).execute(c).await?;
            Ok::<_, billpay_store::StoreError>(())
        })).await.unwrap();
        let report = app.app.verify().await.unwrap();
        assert!(!report.ok());
        let text = report.to_text();
        assert!(text.contains("FAIL every journal entry"), "{text}");
    }
}

#[tokio::test]
async fn openapi_document_matches_the_committed_copy() {
    let generated = billpay_http::openapi_json();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    if std::env::var("BILLPAY_UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path)
        .expect("docs/openapi.json is missing: run BILLPAY_UPDATE_OPENAPI=1 cargo test -p billpay --test api openapi");
    assert_eq!(
        committed, generated,
        "docs/openapi.json is stale: run BILLPAY_UPDATE_OPENAPI=1 cargo test -p billpay --test api openapi"
    );
    let doc: Value = serde_json::from_str(&generated).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for path in [
        "/api/v1/payments",
        "/api/v1/payments/{id}/refunds",
        "/api/v1/accounts/{account_number}",
        "/api/v1/confirmations/{confirmation_number}",
    ] {
        assert!(
            doc["paths"][path].is_object(),
            "{path} missing from OpenAPI"
        );
    }
}

/// With a convenience fee configured, the card is charged the bill plus the fee, the customer's
/// balance drops by the bill only, and the fee is revenue; AutoPay never pays a fee.
async fn convenience_fee(engine: Engine) {
    let app = spawn_app_with(engine, |s| s.convenience_fee_cents = 195).await;
    let acct = app.account_with_bill(8410).await;
    let (s, p) = app.pay_with(&acct, 8410, card("4242424242424242")).await;
    assert_eq!(s, 201, "{p}");
    assert_eq!(p["fee_amount"], 195);
    assert_eq!(app.balance(&acct).await, 0);
    let mut c = app.app.store.read_conn().await.unwrap();
    assert_eq!(
        billpay_store::queries::ledger_balance(&mut c, "revenue:fees")
            .await
            .unwrap(),
        -195
    );
    assert_eq!(
        billpay_store::queries::ledger_balance(&mut c, "clearing:card")
            .await
            .unwrap(),
        8605
    );
    drop(c);
    let (_, r) = app.get(p["receipt_url"].as_str().unwrap()).await;
    assert!(
        r["text"]
            .as_str()
            .unwrap()
            .contains("Convenience fee: $1.95"),
        "{r}"
    );
    let (s, auto) = app.pay(&new_key(), json!({"account_number": acct, "amount": 100, "channel": "autopay", "payment_method": card("4242424242424242")})).await;
    assert_eq!(s, 201);
    assert_eq!(auto["fee_amount"], 0);
    app.assert_verified().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convenience_fee_sqlite() {
    convenience_fee(Engine::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn convenience_fee_postgres() {
    convenience_fee(Engine::Postgres).await;
}

/// Runs many cards through one account, which the fraud rules' `account_cards` rule would
/// refuse by the sixth card (tests/risk.rs tests that rule); here it is off.
async fn app_for_many_cards(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| s.risk.account_cards = 0).await
}

both_engines! {
    with app_for_many_cards;

    async fn every_brand_is_accepted(app) {
        let acct = app.account_with_bill(100_000).await;
        let cards = [
            ("4242424242424242", "visa"), ("4000056655665556", "visa"),
            ("5555555555554444", "mastercard"), ("2223003122003222", "mastercard"),
            ("5200828282828210", "mastercard"), ("378282246310005", "amex"),
            ("371449635398431", "amex"), ("6011111111111117", "discover"),
            ("6011981111111113", "discover"),
        ];
        for (i, (number, brand)) in cards.iter().enumerate() {
            let (s, p) = app.pay_with(&acct, 1000 + i as i64, card(number)).await;
            assert_eq!(s, 201, "{number}: {p}");
            assert_eq!(p["payment_method"]["brand"], *brand);
        }
        assert_eq!(app.balance(&acct).await, 100_000 - (0..9).map(|i| 1000 + i).sum::<i64>());
        app.assert_verified().await;
    }

    async fn declines_are_402_with_plain_reasons(app) {
        let acct = app.account_with_bill(5000).await;
        let cases = [
            ("4000000000000002", "card_declined", "generic_decline", "retryable"),
            ("4000000000009995", "card_declined", "insufficient_funds", "retryable"),
            ("4000000000009987", "card_declined", "lost_card", "never_retry"),
            ("4000000000009979", "card_declined", "stolen_card", "never_retry"),
            ("4000000000000069", "expired_card", "expired_card", "fix_and_retry"),
            ("4000000000000127", "incorrect_cvc", "incorrect_cvc", "fix_and_retry"),
            ("4000000000000119", "processing_error", "processing_error", "retryable"),
            ("4000000000006975", "card_declined", "card_velocity_exceeded", "retryable"),
        ];
        for (i, (number, code, decline, retry)) in cases.iter().enumerate() {
            let (s, body) = app.pay_with(&acct, 100 + i as i64, card(number)).await;
            assert_eq!(s, 402, "{number}: {body}");
            assert_eq!(body["error"]["type"], "card_error");
            assert_eq!(body["error"]["code"], *code, "{number}");
            assert_eq!(body["error"]["decline_code"], *decline);
            assert!(body["error"]["message"].as_str().unwrap().len() > 10);
            assert!(body["error"]["next_step"].as_str().unwrap().len() > 10);
            assert!(body["error"]["message_es"].as_str().unwrap().len() > 10);
            assert_eq!(body["payment"]["status"], "failed");
            assert_eq!(body["payment"]["failure"]["retry"], *retry);
        }
        let (_, body) = app.pay_with(&acct, 99, card("4000000000009995")).await;
        assert_eq!(body["error"]["message"], "Your bank declined this payment for insufficient funds.");
        assert_eq!(app.balance(&acct).await, 5000, "declines move no money");
        // A failed payment has no receipt.
        let (s, _) = app.get(&format!("/api/v1/payments/{}/receipt", body["payment"]["id"].as_str().unwrap())).await;
        assert_eq!(s, 409);
        app.assert_verified().await;
    }
}
