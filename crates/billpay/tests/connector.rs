//! The same connector suite (`common/connector_kit.rs`) passes on the sandbox and on the Stripe
//! connector (against the local fake Stripe): the proof that the `Processor` trait is the whole
//! interface a processor needs. On both engines (the sandbox keeps its records in the database).

mod common;
#[path = "common/stripe.rs"]
mod fake;
#[path = "common/connector_kit.rs"]
mod kit;

both_engines! {
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
