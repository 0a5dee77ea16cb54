//! The Stripe connector end to end, against a local server that answers like Stripe
//! (`common/stripe.rs`): card payments and every decline family, retries with the same
//! idempotency key, timeouts and 5xx leaving payments in doubt and resolved without a second
//! charge, the circuit breaker, refunds, bank debits and their returns, signed webhooks
//! (bad signatures, duplicates, out of order), and disputes reaching the ledger and the
//! disputes list. Every test runs on SQLite and PostgreSQL. No network beyond 127.0.0.1.

mod common;
#[path = "common/stripe.rs"]
mod fake;

use std::time::Duration;

use billpay::config::StripeSettings;
use common::*;
use fake::{FakeStripe, Fault};
use serde_json::{Value, json};

fn secret_file(name: &str, value: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("billpay-stripe-{}", new_key()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join(name);
    std::fs::write(&path, format!("{value}\n")).expect("write secret");
    path
}

fn stripe_settings(api_base: &str) -> StripeSettings {
    StripeSettings {
        api_base: api_base.to_string(),
        secret_key_file: Some(secret_file("stripe-key", fake::SECRET_KEY)),
        secret_key_env: None,
        webhook_secret_file: Some(secret_file("stripe-whsec", fake::WEBHOOK_SECRET)),
        webhook_secret_env: None,
        webhook_tolerance_secs: 300,
        bank_debits: true,
        request_timeout_secs: 1,
        max_attempts: 3,
        breaker_failures: 3,
        breaker_cooldown_secs: 30,
    }
}

pub struct StripeApp {
    pub app: TestApp,
    pub stripe: FakeStripe,
}

impl std::ops::Deref for StripeApp {
    type Target = TestApp;
    fn deref(&self) -> &TestApp {
        &self.app
    }
}

async fn spawn_stripe(engine: Engine) -> StripeApp {
    let stripe = FakeStripe::start().await;
    let base = stripe.base.clone();
    let app = spawn_app_with(engine, move |s| {
        s.processor = "stripe".into();
        s.stripe = Some(stripe_settings(&base));
    })
    .await;
    StripeApp { app, stripe }
}

impl StripeApp {
    /// Posts a signed event to the webhook endpoint.
    async fn deliver(&self, event_id: &str, kind: &str, object: &Value) -> (u16, Value) {
        let body = fake::event(event_id, kind, object);
        let t = self.app.app.clock.now().as_second();
        let sig = fake::sign(fake::WEBHOOK_SECRET, t, &body);
        self.deliver_raw(&body, Some(&sig)).await
    }

    async fn deliver_raw(&self, body: &str, sig: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/webhooks/stripe", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(s) = sig {
            req = req.header("Stripe-Signature", s);
        }
        let resp = req.send().await.expect("webhook");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn payment(&self, id: &str) -> Value {
        let (s, p) = self.get(&format!("/api/v1/payments/{id}")).await;
        assert_eq!(s, 200, "{p}");
        p
    }

    /// The PaymentIntent billpay created for a payment (by the key in its metadata).
    fn pi_of(&self, payment_id: &str) -> Value {
        let key = format!("billpay-{payment_id}");
        let g = self.stripe.inner.lock().unwrap();
        g.payment_intents
            .iter()
            .find(|p| p["metadata"]["billpay_key"] == key.as_str())
            .cloned()
            .expect("a PaymentIntent for the payment")
    }

    fn charge_posts(&self) -> Vec<fake::Request> {
        self.stripe
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/payment_intents")
            .collect()
    }
}

macro_rules! stripe_tests {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($app: StripeApp) $body
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    run(spawn_stripe(Engine::Sqlite).await).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    run(spawn_stripe(Engine::Postgres).await).await
                }
            }
        )*
    };
}

stripe_tests! {
    async fn card_payment_goes_to_stripe_under_our_key(app) {
        let acct = app.account_with_bill(5000).await;
        let (s, p) = app.pay_with(&acct, 5000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(p["status"], "succeeded");
        let id = p["id"].as_str().unwrap();
        let posts = app.charge_posts();
        assert_eq!(posts.len(), 1);
        assert_eq!(posts[0].idempotency_key.as_deref(), Some(format!("billpay-{id}").as_str()));
        for f in ["amount", "currency", "confirm", "payment_method_data[card][number]",
                  "payment_method_data[card][cvc]", "metadata[billpay_key]"] {
            assert!(posts[0].fields.iter().any(|n| n == f), "{f} sent");
        }
        let pi = app.pi_of(id);
        assert_eq!(pi["amount"], 5000);
        assert_eq!(pi["currency"], "usd");
        assert_eq!(app.stripe.inner.lock().unwrap().card_numbers_seen, vec!["4242424242424242"]);
        assert_eq!(app.balance(&acct).await, 0);
        // The payment row names Stripe and its PaymentIntent.
        let mut c = app.app.app.store.read_conn().await.unwrap();
        let (processor, reference): (String, Option<String>) =
            sqlx::query_as("SELECT processor, processor_ref FROM payments WHERE id = $1")
                .bind(id).fetch_one(&mut *c).await.unwrap();
        assert_eq!(processor, "stripe");
        assert_eq!(reference.as_deref(), pi["id"].as_str());
        drop(c);
        app.assert_verified().await;
    }

    async fn each_decline_family_maps_onto_the_taxonomy(app) {
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
            ("4100000000000019", "card_declined", "fraudulent", "never_retry"),
            ("4000000000000036", "incorrect_zip", "incorrect_zip", "fix_and_retry"),
            ("4000002760003184", "card_declined", "authentication_required", "fix_and_retry"),
        ];
        // Five cards to an account: more cards on one account within a day is what the fraud
        // rules refuse (tests/risk.rs).
        let mut accts = vec![acct.clone()];
        for _ in 0..cases.len() / 5 {
            accts.push(app.account_with_bill(5000).await);
        }
        for (i, (number, code, decline, retry)) in cases.iter().enumerate() {
            let (s, body) = app.pay_with(&accts[i / 5], 100 + i as i64, card(number)).await;
            assert_eq!(s, 402, "{number}: {body}");
            assert_eq!(body["error"]["code"], *code, "{number}: {body}");
            assert_eq!(body["error"]["decline_code"], *decline, "{number}");
            assert_eq!(body["payment"]["status"], "failed");
            assert_eq!(body["payment"]["failure"]["retry"], *retry, "{number}");
        }
        for acct in &accts {
            assert_eq!(app.balance(acct).await, 5000, "declines move no money");
        }
        app.assert_verified().await;
    }

    async fn rate_limits_and_retryable_5xx_are_retried_under_the_same_key(app) {
        let acct = app.account_with_bill(5000).await;
        app.stripe.fault(Fault::Status(429, None));
        app.stripe.fault(Fault::Status(503, Some(true)));
        let (s, p) = app.pay_with(&acct, 5000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(p["status"], "succeeded");
        let posts = app.charge_posts();
        assert_eq!(posts.len(), 3, "two retries");
        assert!(posts.iter().all(|r| r.idempotency_key == posts[0].idempotency_key));
        assert_eq!(app.stripe.charges(), 1);
        app.assert_verified().await;
    }

    async fn a_lost_answer_is_replayed_by_stripe_not_charged_again(app) {
        let acct = app.account_with_bill(5000).await;
        // The first attempt charges but answers after the client's 1 s deadline; the retry
        // under the same key gets Stripe's stored answer.
        app.stripe.fault(Fault::SlowAnswer(Duration::from_millis(2500)));
        let (s, p) = app.pay_with(&acct, 5000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(p["status"], "succeeded");
        assert_eq!(app.charge_posts().len(), 2);
        assert_eq!(app.stripe.charges(), 1, "one PaymentIntent");
        assert_eq!(app.balance(&acct).await, 0);
        app.assert_verified().await;
    }

    async fn an_in_doubt_payment_is_resolved_by_key_without_a_second_charge(app) {
        let acct = app.account_with_bill(5000).await;
        for _ in 0..3 {
            app.stripe.fault(Fault::SlowAnswer(Duration::from_millis(2500)));
        }
        let (s, p) = app.pay_with(&acct, 5000, card("4242424242424242")).await;
        assert_eq!(s, 202, "{p}");
        assert_eq!(p["status"], "processing");
        assert_eq!(app.stripe.charges(), 1);
        let id = p["id"].as_str().unwrap().to_string();
        // Not yet: Stripe's search is given time to see the PaymentIntent.
        app.clock.advance(jiff::SignedDuration::from_mins(2));
        let r = app.app.app.reconcile().await.unwrap();
        assert_eq!(r.payments_resolved, 0);
        app.clock.advance(jiff::SignedDuration::from_mins(4));
        let r = app.app.app.reconcile().await.unwrap();
        assert_eq!(r.payments_resolved, 1, "{r:?}");
        assert_eq!(app.payment(&id).await["status"], "succeeded");
        assert_eq!(app.stripe.charges(), 1, "resolved without charging again");
        assert!(app.stripe.requests().iter().any(|r| r.path == "/v1/payment_intents/search"));
        assert_eq!(app.balance(&acct).await, 0);
        app.assert_verified().await;
    }

    async fn a_5xx_stripe_keeps_leaves_the_payment_in_doubt_then_failed_if_never_made(app) {
        let acct = app.account_with_bill(5000).await;
        app.stripe.fault(Fault::Status(500, None));
        let (s, p) = app.pay_with(&acct, 5000, card("4242424242424242")).await;
        assert_eq!(s, 202, "{p}");
        assert_eq!(app.charge_posts().len(), 1, "a 500 Stripe stores under the key is not retried");
        app.clock.advance(jiff::SignedDuration::from_mins(6));
        let r = app.app.app.reconcile().await.unwrap();
        assert_eq!(r.payments_resolved, 1);
        let now = app.payment(p["id"].as_str().unwrap()).await;
        assert_eq!(now["status"], "failed");
        assert_eq!(app.stripe.charges(), 0);
        assert_eq!(app.balance(&acct).await, 5000);
        app.assert_verified().await;
    }

    async fn the_circuit_opens_and_channels_say_so(app) {
        let acct = app.account_with_bill(5000).await;
        // Three calls that never get through (rate limited on every attempt) open the circuit.
        for i in 0..3 {
            for _ in 0..3 {
                app.stripe.fault(Fault::Status(429, Some(true)));
            }
            let (s, e) = app.pay_with(&acct, 1000 + i, card("4242424242424242")).await;
            assert_eq!(s, 503, "{e}");
            assert_eq!(e["error"]["code"], "processor_unavailable");
        }
        let before = app.stripe.requests().len();
        let (s, e) = app.pay_with(&acct, 2000, card("4242424242424242")).await;
        assert_eq!(s, 503, "{e}");
        let msg = e["error"]["message"].as_str().unwrap();
        assert!(msg.contains("nothing was charged") && msg.contains("schedule"), "{msg}");
        assert_eq!(app.stripe.requests().len(), before, "an open circuit sends nothing");
        assert_eq!(app.stripe.charges(), 0);
        // After the cooldown one trial call goes through, and closes the circuit.
        app.clock.advance(jiff::SignedDuration::from_secs(31));
        let (s, p) = app.pay_with(&acct, 2001, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        assert_eq!(app.balance(&acct).await, 2999);
        app.assert_verified().await;
    }

    async fn refunds_go_to_stripe_and_replay(app) {
        let acct = app.account_with_bill(5000).await;
        let (_, p) = app.pay_with(&acct, 5000, card("4242424242424242")).await;
        let id = p["id"].as_str().unwrap();
        let (s, r) = app.post_idem(&format!("/api/v1/payments/{id}/refunds"), "r1", json!({"amount": 1500})).await;
        assert_eq!(s, 201, "{r}");
        assert_eq!(r["status"], "succeeded");
        let refunds = app.stripe.inner.lock().unwrap().refunds.clone();
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0]["amount"], 1500);
        assert_eq!(refunds[0]["payment_intent"], app.pi_of(id)["id"]);
        let (s, again) = app.post_idem(&format!("/api/v1/payments/{id}/refunds"), "r1", json!({"amount": 1500})).await;
        assert_eq!((s, &again), (201, &r));
        assert_eq!(app.stripe.inner.lock().unwrap().refunds.len(), 1);
        assert_eq!(app.balance(&acct).await, 1500);
        app.assert_verified().await;
    }

    async fn a_refund_made_in_stripes_dashboard_is_recorded_once(app) {
        let acct = app.account_with_bill(6000).await;
        let (_, p) = app.pay_with(&acct, 6000, card("4242424242424242")).await;
        let id = p["id"].as_str().unwrap().to_string();
        // One refund through billpay, one made at Stripe directly.
        let (s, r) = app.post_idem(&format!("/api/v1/payments/{id}/refunds"), "r1", json!({"amount": 1000})).await;
        assert_eq!(s, 201, "{r}");
        let pi = app.pi_of(&id);
        let external = {
            let mut g = app.stripe.inner.lock().unwrap();
            let r = json!({
                "id": "re_000000000000000dashboard", "object": "refund", "amount": 2500,
                "currency": "usd", "payment_intent": pi["id"], "status": "succeeded",
                "metadata": {}, "created": 1_700_000_000,
            });
            g.refunds.push(r.clone());
            r
        };
        let (s, a) = app.deliver(&app.stripe.next_event_id(), "charge.refunded", &json!({"id": "ch_x", "object": "charge", "payment_intent": pi["id"]})).await;
        assert_eq!(s, 200, "{a}");
        assert_eq!(a["outcome"], "no_change+external_refunds_1", "{a}");
        let (_, a) = app.deliver(&app.stripe.next_event_id(), "refund.created", &external).await;
        assert!(!a["outcome"].as_str().unwrap().contains("external"), "recorded once: {a}");
        let now = app.payment(&id).await;
        assert_eq!(now["status"], "partially_refunded");
        assert_eq!(now["amount_refunded"], 3500);
        assert_eq!(app.balance(&acct).await, 3500);
        app.assert_verified().await;
    }

    async fn webhooks_need_a_valid_fresh_signature(app) {
        let body = fake::event("evt_bad", "payment_intent.succeeded", &json!({"id": "pi_x"}));
        let (s, e) = app.deliver_raw(&body, None).await;
        assert_eq!(s, 400, "{e}");
        let t = app.app.app.clock.now().as_second();
        let wrong = fake::sign("whsec_not_the_secret", t, &body);
        let (s, _) = app.deliver_raw(&body, Some(&wrong)).await;
        assert_eq!(s, 400);
        let stale = fake::sign(fake::WEBHOOK_SECRET, t - 301, &body);
        let (s, e) = app.deliver_raw(&body, Some(&stale)).await;
        assert_eq!(s, 400);
        assert!(e["error"]["message"].as_str().unwrap().contains("tolerance"), "{e}");
        let tampered = fake::sign(fake::WEBHOOK_SECRET, t, &body.replace("pi_x", "pi_y"));
        let (s, _) = app.deliver_raw(&body, Some(&tampered)).await;
        assert_eq!(s, 400);
        let (s, e) = app.deliver_raw("not json", Some(&fake::sign(fake::WEBHOOK_SECRET, t, "not json"))).await;
        assert_eq!(s, 400, "{e}");
        // An event of a kind billpay does not act on is acknowledged.
        let (s, ok) = app.deliver("evt_00000000000000000000000a", "customer.created", &json!({"id": "cus_1"})).await;
        assert_eq!(s, 200, "{ok}");
        assert_eq!(ok["outcome"], "ignored");
        // Handled event ids are remembered for 30 days (Stripe redelivers for 3), then pruned.
        let r = app.app.app.reconcile().await.unwrap();
        assert_eq!(r.processor_events_pruned, 0);
        app.clock.advance(jiff::SignedDuration::from_hours(31 * 24));
        let r = app.app.app.reconcile().await.unwrap();
        assert_eq!(r.processor_events_pruned, 1);
    }

    async fn a_webhook_resolves_an_in_doubt_payment_once_and_out_of_order_events_change_nothing(app) {
        let acct = app.account_with_bill(5000).await;
        for _ in 0..3 {
            app.stripe.fault(Fault::SlowAnswer(Duration::from_millis(2500)));
        }
        let (s, p) = app.pay_with(&acct, 5000, card("4242424242424242")).await;
        assert_eq!(s, 202, "{p}");
        let id = p["id"].as_str().unwrap().to_string();
        let pi = app.pi_of(&id);
        let evt = app.stripe.next_event_id();
        let (s, a) = app.deliver(&evt, "payment_intent.succeeded", &pi).await;
        assert_eq!(s, 200, "{a}");
        assert_eq!(a["outcome"], "recorded_succeeded");
        assert_eq!(app.payment(&id).await["status"], "succeeded");
        assert_eq!(app.balance(&acct).await, 0);
        // Stripe delivers the same event again.
        let (s, a) = app.deliver(&evt, "payment_intent.succeeded", &pi).await;
        assert_eq!(s, 200);
        assert_eq!(a["duplicate"], true);
        // An older event arrives late, claiming the payment is still processing; another says
        // it failed. The current state is fetched, so neither undoes the success.
        let mut old = pi.clone();
        old["status"] = json!("requires_payment_method");
        let (s, a) = app.deliver(&app.stripe.next_event_id(), "payment_intent.payment_failed", &old).await;
        assert_eq!(s, 200);
        assert_eq!(a["outcome"], "no_change");
        assert_eq!(app.payment(&id).await["status"], "succeeded");
        assert_eq!(app.balance(&acct).await, 0);
        assert_eq!(app.stripe.charges(), 1);
        app.assert_verified().await;
    }

    async fn a_webhook_naming_an_unknown_payment_intent_is_acknowledged(app) {
        // Stripe answers 404 for the PaymentIntent: billpay cannot confirm, Stripe redelivers.
        let (s, e) = app.deliver(&app.stripe.next_event_id(), "payment_intent.succeeded", &json!({"id": "pi_000000000000000000000999"})).await;
        assert_eq!(s, 503, "{e}");
    }

    async fn bank_debits_through_stripe_settle_or_come_back(app) {
        let acct = app.account_with_bill(9000).await;
        let (s, ok) = app.pay_with(&acct, 4000, ach("000123456789")).await;
        assert_eq!(s, 201, "{ok}");
        assert_eq!(ok["status"], "processing");
        let (s, bad) = app.pay_with(&acct, 5000, ach("000111111116")).await;
        assert_eq!(s, 201, "{bad}");
        assert_eq!(app.balance(&acct).await, 0, "accepted debits credit the account at once");
        let ok_pi = app.pi_of(ok["id"].as_str().unwrap());
        let bad_pi = app.pi_of(bad["id"].as_str().unwrap());
        assert_eq!(ok_pi["payment_method_types"][0], "us_bank_account");
        // The bank pays one and returns the other (no such account).
        let settled = app.stripe.set_pi_status(ok_pi["id"].as_str().unwrap(), "succeeded", None);
        let failed = app.stripe.set_pi_status(bad_pi["id"].as_str().unwrap(), "requires_payment_method", Some("no_account"));
        let (s, a) = app.deliver(&app.stripe.next_event_id(), "payment_intent.succeeded", &settled).await;
        assert_eq!((s, a["outcome"].as_str()), (200, Some("settled")), "{a}");
        let (s, a) = app.deliver(&app.stripe.next_event_id(), "payment_intent.payment_failed", &failed).await;
        assert_eq!((s, a["outcome"].as_str()), (200, Some("returned_R03")), "{a}");
        assert_eq!(app.payment(ok["id"].as_str().unwrap()).await["status"], "succeeded");
        let returned = app.payment(bad["id"].as_str().unwrap()).await;
        assert_eq!(returned["status"], "returned");
        assert_eq!(app.balance(&acct).await, 5000, "the returned debit is reversed");
        app.assert_verified().await;
    }

    async fn a_dispute_reverses_the_payment_and_shows_for_agents(app) {
        let acct = app.account_with_bill(7000).await;
        let (s, p) = app.pay_with(&acct, 7000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        let id = p["id"].as_str().unwrap().to_string();
        let pi = app.pi_of(&id);
        let d = app.stripe.open_dispute(pi["id"].as_str().unwrap(), 7000, "fraudulent");
        let evt = app.stripe.next_event_id();
        let (s, a) = app.deliver(&evt, "charge.dispute.created", &d).await;
        assert_eq!(s, 200, "{a}");
        assert_eq!(a["outcome"], "dispute_opened");
        assert_eq!(app.balance(&acct).await, 7000, "the disputed payment is reversed");
        app.assert_verified().await;
        // An agent sees it on the account panel.
        common::desk::staff(&app, "desk@riverbend.example", "Dee Skagent", billpay_services::staff::Role::Agent).await;
        let (mut desk, _) = common::desk::sign_in(&app, "desk@riverbend.example", None).await;
        let panel = desk.get(&format!("/desk/accounts/{acct}")).await;
        assert_eq!(panel.status, 200, "{}", panel.body);
        assert!(panel.body.contains("<h3>Disputes</h3>"), "{}", panel.body);
        assert!(panel.body.contains("$70.00 disputed on payment"), "{}", panel.body);
        assert!(panel.body.contains("(fraudulent)") && panel.body.contains("reversed on the account"), "{}", panel.body);
        let (s, list) = app.get("/api/v1/disputes?status=needs_response").await;
        assert_eq!(s, 200, "{list}");
        assert_eq!(list["data"].as_array().unwrap().len(), 1);
        assert_eq!(list["data"][0]["payment_id"], id.as_str());
        assert_eq!(list["data"][0]["reason"], "fraudulent");
        assert_eq!(list["data"][0]["reversed"], true);
        assert_eq!(list["data"][0]["processor_dispute_id"], d["id"]);
        // Redelivery and a stale update change nothing.
        let (_, a) = app.deliver(&evt, "charge.dispute.created", &d).await;
        assert_eq!(a["duplicate"], true);
        let (_, a) = app.deliver(&app.stripe.next_event_id(), "charge.dispute.updated", &d).await;
        assert_eq!(a["outcome"], "no_change");
        assert_eq!(app.balance(&acct).await, 7000);
        // The biller wins: the payment stands again.
        let won = app.stripe.set_dispute_status(d["id"].as_str().unwrap(), "won");
        let (_, a) = app.deliver(&app.stripe.next_event_id(), "charge.dispute.closed", &won).await;
        assert_eq!(a["outcome"], "dispute_won", "{a}");
        let (_, a) = app.deliver(&app.stripe.next_event_id(), "charge.dispute.closed", &won).await;
        assert_eq!(a["outcome"], "no_change");
        assert_eq!(app.balance(&acct).await, 0);
        let (s, mine) = app.get(&format!("/api/v1/payments/{id}/disputes")).await;
        assert_eq!(s, 200);
        assert_eq!(mine["data"][0]["status"], "won");
        assert_eq!(mine["data"][0]["reversed"], false);
        let (s, _) = app.get("/api/v1/payments/pay_nope/disputes").await;
        assert_eq!(s, 404);
        let (s, _) = app.get("/api/v1/disputes?limit=0").await;
        assert_eq!(s, 400);
        app.assert_verified().await;
    }

    async fn the_daily_settlement_report_compares_billpay_the_ledger_and_stripe(app) {
        let now = app.app.app.clock.now();
        app.stripe.set_created(now.as_second());
        let acct = app.account_with_bill(20_000).await;
        let (s, ok) = app.pay_with(&acct, 5000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{ok}");
        let (s, declined) = app.pay_with(&acct, 150, card("4000000000009995")).await;
        assert_eq!(s, 402, "{declined}");
        let (s, debit) = app.pay_with(&acct, 3000, ach("000123456789")).await;
        assert_eq!(s, 201, "{debit}");
        let today = now.to_zoned(jiff::tz::TimeZone::UTC).date();
        let r = app.app.app.settlement_report(today).await.unwrap();
        assert!(r.ok(), "{}", r.to_text());
        assert!(r.processor_listed);
        assert_eq!(r.processor_transactions, 3);
        assert_eq!(r.in_doubt, 1, "the bank debit awaits settlement");
        let line = |status: &str| {
            r.lines
                .iter()
                .find(|l| l.processor == "stripe" && l.status == status && l.channel == "web")
                .map(|l| (l.count, l.total))
        };
        assert_eq!(line("succeeded"), Some((1, 5000)));
        assert_eq!(line("failed"), Some((1, 150)));
        assert_eq!(line("processing"), Some((1, 3000)));
        assert!(r.to_text().contains("no differences"));
        // Stripe now says the declined payment went through, and lists a charge billpay never
        // made: both are listed for an operator.
        let declined_id = declined["payment"]["id"].as_str().unwrap();
        let pi = app.pi_of(declined_id);
        app.stripe.set_pi_status(pi["id"].as_str().unwrap(), "succeeded", None);
        app.stripe.inner.lock().unwrap().payment_intents.push(json!({
            "id": "pi_000000000000000000foreign", "object": "payment_intent", "amount": 999,
            "currency": "usd", "status": "succeeded", "metadata": {}, "created": now.as_second(),
            "payment_method_types": ["card"],
        }));
        let r = app.app.app.settlement_report(today).await.unwrap();
        assert_eq!(r.difference_count, 2, "{}", r.to_text());
        let text = r.to_text();
        assert!(text.contains(declined_id) && text.contains("succeeded at the processor"), "{text}");
        assert!(text.contains("pi_000000000000000000foreign"), "{text}");
        // Another day has nothing.
        let other = app.app.app.settlement_report(today.yesterday().unwrap()).await.unwrap();
        assert!(other.lines.is_empty() && other.ok(), "{}", other.to_text());
    }

    async fn an_inquiry_takes_nothing_back_until_it_becomes_a_dispute(app) {
        let acct = app.account_with_bill(4000).await;
        let (_, p) = app.pay_with(&acct, 4000, card("4242424242424242")).await;
        let pi = app.pi_of(p["id"].as_str().unwrap());
        let d = app.stripe.open_dispute(pi["id"].as_str().unwrap(), 4000, "general");
        let inquiry = app.stripe.set_dispute_status(d["id"].as_str().unwrap(), "warning_needs_response");
        let (_, a) = app.deliver(&app.stripe.next_event_id(), "charge.dispute.created", &inquiry).await;
        assert_eq!(a["outcome"], "dispute_opened", "{a}");
        assert_eq!(app.balance(&acct).await, 0, "an inquiry withdraws nothing");
        let (_, list) = app.get("/api/v1/disputes").await;
        assert_eq!(list["data"][0]["reversed"], false);
        app.assert_verified().await;
        let escalated = app.stripe.set_dispute_status(d["id"].as_str().unwrap(), "needs_response");
        let (_, a) = app.deliver(&app.stripe.next_event_id(), "charge.dispute.updated", &escalated).await;
        assert_eq!(a["outcome"], "dispute_opened", "{a}");
        assert_eq!(app.balance(&acct).await, 4000);
        let (_, list) = app.get("/api/v1/disputes").await;
        assert_eq!(list["data"][0]["reversed"], true);
        app.assert_verified().await;
        let won = app.stripe.set_dispute_status(d["id"].as_str().unwrap(), "won");
        let (_, a) = app.deliver(&app.stripe.next_event_id(), "charge.dispute.closed", &won).await;
        assert_eq!(a["outcome"], "dispute_won", "{a}");
        assert_eq!(app.balance(&acct).await, 0);
        app.assert_verified().await;
    }

    async fn a_lost_dispute_stays_reversed_and_verify_checks_it(app) {
        let acct = app.account_with_bill(3000).await;
        let (_, p) = app.pay_with(&acct, 3000, card("4242424242424242")).await;
        let pi = app.pi_of(p["id"].as_str().unwrap());
        let d = app.stripe.open_dispute(pi["id"].as_str().unwrap(), 3000, "product_not_received");
        let lost = app.stripe.set_dispute_status(d["id"].as_str().unwrap(), "lost");
        // The closing event arrives before the opening one: the dispute is recorded as lost.
        let (_, a) = app.deliver(&app.stripe.next_event_id(), "charge.dispute.closed", &lost).await;
        assert_eq!(a["outcome"], "dispute_opened");
        let (_, a) = app.deliver(&app.stripe.next_event_id(), "charge.dispute.created", &d).await;
        assert_eq!(a["outcome"], "no_change");
        assert_eq!(app.balance(&acct).await, 3000);
        app.assert_verified().await;
        // Tampering with the reversal is caught by `billpay verify`.
        let mut c = app.app.app.store.read_conn().await.unwrap();
        sqlx::query("UPDATE disputes SET status = 'won'").execute(&mut *c).await.unwrap();
        drop(c);
        let report = app.app.app.verify().await.unwrap();
        assert!(!report.ok());
        assert!(report.to_text().contains("dispute"), "{}", report.to_text());
    }
}

async fn spawn_stripe_cards_only(engine: Engine) -> TestApp {
    let stripe = FakeStripe::start().await;
    spawn_app_with(engine, move |s| {
        s.processor = "stripe".into();
        let mut t = stripe_settings(&stripe.base);
        t.bank_debits = false;
        s.stripe = Some(t);
    })
    .await
}

both_engines! {
    with spawn_stripe_cards_only;
    async fn a_biller_without_stripe_bank_debits_refuses_them_plainly(app) {
        let acct = app.account_with_bill(5000).await;
        let (s, e) = app.pay_with(&acct, 5000, ach("000123456789")).await;
        assert_eq!(s, 400, "{e}");
        assert_eq!(e["error"]["param"], "payment_method");
        assert!(e["error"]["message"].as_str().unwrap().contains("Please pay by card"), "{e}");
        let (s, p) = app.pay_with(&acct, 5000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        app.assert_verified().await;
    }
}

both_engines! {
    async fn bank_debits_are_refused_when_not_enabled_for_stripe(app) {
        // A sandbox app is unaffected by Stripe settings; this checks the refusal on Stripe.
        let stripe = FakeStripe::start().await;
        let mut settings = stripe_settings(&stripe.base);
        settings.bank_debits = false;
        let p = billpay_services::stripe::StripeProcessor::new(
            settings.config().unwrap(), app.app.clock.clone(), app.app.random.clone()).unwrap();
        use billpay_services::processor::*;
        let req = ChargeRequest {
            key: "billpay-test".into(),
            amount: billpay_domain::Money::new(100, billpay_domain::Currency::USD),
            method: ChargeMethod::Bank {
                routing: billpay_domain::RoutingNumber::parse("110000000").unwrap(),
                account: billpay_domain::BankAccountNumber::parse("000123456789").unwrap(),
                account_type: billpay_domain::BankAccountType::Checking,
                holder_name: "Pat".into(),
            },
            description: "t".into(),
            context: ChargeContext::default(),
        };
        assert!(matches!(p.charge(&req).await, Err(ProcessorError::Rejected(_))));
        assert!(stripe.requests().is_empty());
    }
}
