//! The same connector suite (`common/connector_kit.rs`) passes on the sandbox and on the Stripe
//! connector (against the local fake Stripe): the proof that the `Processor` trait is the whole
//! interface a processor needs. On both engines (the sandbox keeps its records in the database).

mod common;
#[path = "common/stripe.rs"]
mod fake;
#[path = "common/connector_kit.rs"]
mod kit;

use common::{card, new_key};
use serde_json::json;

both_engines! {
    async fn the_sandbox_lists_its_side_for_the_settlement_report(app) {
        let acct = app.account_with_bill(9000).await;
        let (s, _) = app.pay_with(&acct, 4000, card("4242424242424242")).await;
        assert_eq!(s, 201);
        let (s, _) = app.pay_with(&acct, 120, card("4000000000000002")).await;
        assert_eq!(s, 402);
        let (s, _) = app
            .pay(&new_key(), json!({"account_number": acct, "amount": 500, "channel": "phone", "payment_method": card("5555555555554444")}))
            .await;
        assert_eq!(s, 201);
        let today = app.app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        let r = app.app.settlement_report(today).await.unwrap();
        assert!(r.ok(), "{}", r.to_text());
        assert!(r.processor_listed);
        assert_eq!(r.processor_transactions, 3);
        let phone = r.lines.iter().find(|l| l.channel == "phone").expect("phone line");
        assert_eq!((phone.processor.as_str(), phone.status.as_str(), phone.count, phone.total), ("sandbox", "succeeded", 1, 500));
        // A charge billpay recorded as failed that the processor kept is a difference.
        let mut c = app.app.store.read_conn().await.unwrap();
        sqlx::query("UPDATE payments SET status = 'failed', journal_id = NULL WHERE amount = 500")
            .execute(&mut *c).await.unwrap();
        drop(c);
        let r = app.app.settlement_report(today).await.unwrap();
        assert!(!r.ok());
        assert!(r.to_text().contains("succeeded at the processor"), "{}", r.to_text());
    }

    async fn the_sandbox_passes_the_connector_suite(app) {
        kit::run_suite(app.sandbox.as_ref(), &kit::Script::stripe_test_cards(), "sandbox").await;
    }

    async fn the_stripe_connector_passes_the_connector_suite(app) {
        let stripe = fake::FakeStripe::start().await;
        let mut config = billpay_services::stripe::StripeConfig::new(
            stripe.base.clone(),
            billpay_domain::SecretString::new(fake::SECRET_KEY.to_string()),
        );
        config.request_timeout = std::time::Duration::from_secs(2);
        let p = billpay_services::stripe::StripeProcessor::new(
            config,
            app.app.clock.clone(),
            app.app.random.clone(),
        )
        .expect("connector");
        kit::run_suite(&p, &kit::Script::stripe_test_cards(), "stripe").await;
        // Every charge went under its key; the replays made no second PaymentIntent.
        let posts: Vec<_> = stripe
            .requests()
            .into_iter()
            .filter(|r| r.method == "POST" && r.path == "/v1/payment_intents")
            .collect();
        assert!(posts.iter().all(|r| r.idempotency_key.is_some()));
        assert_eq!(stripe.charges(), posts.len() - 1, "the replayed key made no new charge");
    }
}
