//! The job queue's lease on PostgreSQL under concurrent workers: each lease takes at most its
//! limit, and no job is leased twice.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_leases_respect_their_limit_and_never_share_a_job() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let app = spawn_app(engine).await;
        const JOBS: usize = 60;
        const LIMIT: i64 = 8;
        let now = app.app.clock.now_micros();
        for i in 0..JOBS {
            let j = billpay_services::jobs::job(
                &app.app,
                "test.noop",
                format!("noop:{i}"),
                serde_json::json!({}),
                now - 1,
            );
            app.app
                .store
                .write(move |c| Box::pin(async move { billpay_store::jobs::enqueue(c, &j).await }))
                .await
                .unwrap();
        }
        let engine_kind = app.app.store.engine();
        let lease = |owner: String| {
            let store = app.app.store.clone();
            async move {
                store
                    .write(move |c| {
                        Box::pin(async move {
                            billpay_store::jobs::lease(
                                c,
                                engine_kind,
                                &owner,
                                now,
                                now + 60_000_000,
                                LIMIT,
                            )
                            .await
                        })
                    })
                    .await
                    .unwrap()
            }
        };
        let results = futures::future::join_all((0..10).map(|i| lease(format!("w{i}")))).await;
        let mut ids: Vec<String> = Vec::new();
        for r in &results {
            assert!(
                r.len() as i64 <= LIMIT,
                "{engine:?}: one lease took {} jobs",
                r.len()
            );
            ids.extend(r.iter().map(|j| j.id.clone()));
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "{engine:?}: a job leased twice");
    }
}

/// The same for outbox rows leased by email senders.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_outbox_leases_respect_their_limit_and_never_share_a_row() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let app = spawn_app(engine).await;
        const ROWS: usize = 60;
        const LIMIT: i64 = 8;
        let now = app.app.clock.now_micros();
        for i in 0..ROWS {
            let r = billpay_store::rows::OutboxRow {
                id: format!("msg_{i:03}"),
                kind: "email.service_restored".into(),
                dedupe_key: format!("lease-test:{i}"),
                recipient: "pat@example.com".into(),
                payload_json: "{\"message\": \"ok\"}".into(),
                created_at: now,
                sent_at: None,
                attempts: 0,
            };
            app.app
                .store
                .write(move |c| {
                    Box::pin(async move { billpay_store::queries::insert_outbox(c, &r).await })
                })
                .await
                .unwrap();
        }
        let engine_kind = app.app.store.engine();
        let lease = |owner: String| {
            let store = app.app.store.clone();
            async move {
                store
                    .write(move |c| {
                        Box::pin(async move {
                            billpay_store::outbox::lease(
                                c,
                                engine_kind,
                                "email.",
                                &owner,
                                now,
                                now + 60_000_000,
                                LIMIT,
                            )
                            .await
                        })
                    })
                    .await
                    .unwrap()
            }
        };
        let results = futures::future::join_all((0..10).map(|i| lease(format!("s{i}")))).await;
        let mut ids: Vec<String> = Vec::new();
        for r in &results {
            assert!(
                r.len() as i64 <= LIMIT,
                "{engine:?}: one lease took {} rows",
                r.len()
            );
            assert!(r.iter().all(|m| m.status == "sending" && m.attempts == 1));
            ids.extend(r.iter().map(|m| m.id.clone()));
        }
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "{engine:?}: a row leased twice");
        assert_eq!(n, ROWS, "{engine:?}: ten leases of 8 take all 60 rows");
    }
}
