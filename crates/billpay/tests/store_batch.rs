//! The store's multi-row statements (`billpay_store::batch`, used by the AutoPay run) agree with
//! their one-row counterparts on real data, on SQLite and PostgreSQL: balances owed and paid,
//! key claims, payment moves, finished jobs, and the sandbox recording a batch of charges once.

mod common;

use billpay_store::batch;
use billpay_store::rows::IdempotencyRow;
use common::*;
use serde_json::json;

async fn read<T>(
    app: &TestApp,
    f: impl AsyncFnOnce(&mut billpay_store::AnyConnection) -> Result<T, billpay_store::StoreError>,
) -> T {
    let mut c = app.app.store.read_conn().await.unwrap();
    f(&mut c).await.unwrap()
}

async fn account_id(app: &TestApp, number: &str) -> String {
    read(app, async |c| {
        billpay_store::queries::account_by_number(c, number).await
    })
    .await
    .unwrap()
    .id
}

both_engines! {
    async fn batch_reads_agree_with_the_one_row_queries(app) {
        // Four accounts in different states: unpaid, part paid, paid in full, a failed payment.
        let mut numbers = Vec::new();
        for _ in 0..4 {
            numbers.push(app.account_with_bill(10_000).await);
        }
        let (s, p) = app.pay_with(&numbers[1], 2_500, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        let (s, p) = app.pay_with(&numbers[2], 10_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        let (s, p) = app.pay_with(&numbers[3], 4_000, card("4000000000009995")).await;
        assert_eq!(s, 402, "{p}");
        let mut ids = Vec::new();
        for n in &numbers {
            ids.push(account_id(&app, n).await);
        }

        let owed = read(&app, async |c| batch::payable_balances(c, &ids).await).await;
        let since: Vec<(String, i64)> = ids.iter().map(|id| (id.clone(), 0)).collect();
        let paid = read(&app, async |c| batch::paid_since_many(c, &since).await).await;
        for (id, number) in ids.iter().zip(&numbers) {
            let one_owed = read(&app, async |c| {
                billpay_store::jobs::payable_balance(c, id, &format!("ar:{number}")).await
            })
            .await;
            let one_paid = read(&app, async |c| billpay_store::jobs::paid_since(c, id, 0).await).await;
            assert_eq!(owed[id], one_owed, "owed by {number}");
            assert_eq!(paid[id], one_paid, "paid by {number}");
        }
        assert_eq!(owed[&ids[0]], 10_000);
        assert_eq!(owed[&ids[1]], 7_500);
        assert_eq!(owed[&ids[2]], 0);
        assert_eq!(owed[&ids[3]], 10_000, "a declined payment pays nothing");
        assert_eq!(paid[&ids[1]], 2_500);

        let accounts = read(&app, async |c| batch::accounts_by_ids(c, &ids).await).await;
        assert_eq!(accounts.len(), 4);
        let missing = vec!["acct_missing".to_string()];
        assert!(read(&app, async |c| batch::accounts_by_ids(c, &missing).await).await.is_empty());
    }

    async fn batch_writes_claim_move_and_finish_only_what_is_theirs(app) {
        let now = app.app.clock.now_micros();
        let key = |k: &str| IdempotencyRow {
            scope: "autopay".into(),
            idem_key: k.into(),
            endpoint: "payments.create".into(),
            request_hash: "h".into(),
            state: "started".into(),
            resource_id: Some(format!("res-{k}")),
            response_status: None,
            response_body: None,
            created_at: now,
            completed_at: None,
        };
        let first = vec![key("a"), key("b")];
        let won = app.app.store.write(move |c| Box::pin(async move {
            batch::idempotency_claim_many(c, &first).await
        })).await.unwrap();
        assert_eq!(won.len(), 2);
        // "b" again with "c": only "c" is claimed, and "b" keeps its first claim.
        let second = vec![key("b"), key("c")];
        let won = app.app.store.write(move |c| Box::pin(async move {
            batch::idempotency_claim_many(c, &second).await
        })).await.unwrap();
        assert_eq!(won, ["c".to_string()].into_iter().collect());
        let keys: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let taken = read(&app, async |c| batch::idempotency_keys_taken(c, "autopay", &keys).await).await;
        assert_eq!(taken.len(), 3);
        let done = vec![("a".to_string(), 201, "{\"ok\":true}".to_string())];
        app.app.store.write(move |c| Box::pin(async move {
            batch::idempotency_complete_many(c, "autopay", &done, now).await
        })).await.unwrap();
        let a = read(&app, async |c| billpay_store::queries::idempotency_get(c, "autopay", "a").await).await.unwrap();
        assert_eq!((a.state.as_str(), a.response_status), ("completed", Some(201)));
        let b = read(&app, async |c| billpay_store::queries::idempotency_get(c, "autopay", "b").await).await.unwrap();
        assert_eq!(b.state, "started");

        // A payment moves only from the state the move names.
        let number = app.account_with_bill(5_000).await;
        let (s, p) = app.pay_with(&number, 5_000, card("4242424242424242")).await;
        assert_eq!(s, 201, "{p}");
        let pid = p["id"].as_str().unwrap().to_string();
        let mv = |from: &str| batch::PaymentMove {
            id: pid.clone(),
            from: from.into(),
            to: "failed".into(),
            processor_ref: None,
            decline_code: Some("generic_decline".into()),
            journal_id: None,
        };
        let wrong = vec![mv("processing")];
        let moved = app.app.store.write(move |c| Box::pin(async move {
            batch::move_payments(c, &wrong, now).await
        })).await.unwrap();
        assert!(moved.is_empty(), "a succeeded payment is not moved from processing");
        let (s, again) = app.get(&format!("/api/v1/payments/{pid}")).await;
        assert_eq!((s, again["status"].as_str()), (200, Some("succeeded")));

        // Jobs finish only under their own lease.
        let j = billpay_services::jobs::job(&app.app, "test.noop", "noop:1".into(), json!({}), now - 1);
        let engine = app.app.store.engine();
        let leased = app.app.store.write(move |c| Box::pin(async move {
            billpay_store::jobs::enqueue(c, &j).await?;
            billpay_store::jobs::lease(c, engine, "w1", now, now + 60_000_000, 10).await
        })).await.unwrap();
        let ids: Vec<String> = leased.iter().map(|j| j.id.clone()).collect();
        let ids2 = ids.clone();
        let by_other = app.app.store.write(move |c| Box::pin(async move {
            batch::finish_jobs(c, &ids2, "w2", now).await
        })).await.unwrap();
        assert_eq!(by_other, 0);
        let by_owner = app.app.store.write(move |c| Box::pin(async move {
            batch::finish_jobs(c, &ids, "w1", now).await
        })).await.unwrap();
        assert_eq!(by_owner, 1);
        app.assert_verified().await;
    }
}
