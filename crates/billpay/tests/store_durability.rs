//! How durable each kind of write is, on both engines: money is always committed durably; a
//! relaxed write (a phone call's place in the flow) goes to SQLite's session database
//! (synchronous=NORMAL) or skips only PostgreSQL's WAL-flush wait, for
//! its own transaction, and never changes the setting of the pooled connection it ran on.

mod common;

use common::*;

/// The durability setting of the transaction `c` is in.
async fn setting(
    c: &mut sqlx::AnyConnection,
    engine: billpay_store::Engine,
) -> Result<String, billpay_store::StoreError> {
    Ok(match engine {
        billpay_store::Engine::Postgres => {
            sqlx::query_scalar::<_, String>("SHOW synchronous_commit")
                .fetch_one(&mut *c)
                .await?
        }
        billpay_store::Engine::Sqlite => {
            let level: i64 = sqlx::query_scalar("PRAGMA synchronous")
                .fetch_one(&mut *c)
                .await?;
            format!("synchronous={level}")
        }
    })
}

/// The durability setting a write's own transaction runs under.
async fn setting_inside(app: &TestApp, relaxed: bool) -> String {
    let engine = app.app.store.engine();
    let store = &app.app.store;
    let r: Result<String, billpay_store::StoreError> = if relaxed {
        store
            .write_relaxed(move |c| Box::pin(setting(c, engine)))
            .await
    } else {
        store.write(move |c| Box::pin(setting(c, engine))).await
    };
    r.unwrap()
}

both_engines! {
    async fn relaxed_writes_relax_only_their_own_transaction(app) {
        let engine = app.app.store.engine();
        let (durable, relaxed) = match engine {
            billpay_store::Engine::Postgres => ("on", "off"),
            // The main database commits with synchronous=FULL (2); relaxed writes go to the
            // session database's own writer, synchronous=NORMAL (1).
            billpay_store::Engine::Sqlite => ("synchronous=2", "synchronous=1"),
        };
        assert_eq!(setting_inside(&app, false).await, durable);
        // Many times over, so that every pooled connection has run a relaxed write.
        for _ in 0..40 {
            assert_eq!(setting_inside(&app, true).await, relaxed);
            assert_eq!(setting_inside(&app, false).await, durable, "a relaxed write leaked its setting");
        }
    }
}
