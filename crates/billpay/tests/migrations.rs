//! The migrations folder: versions are unique (two branches once both added a version 3, and
//! only the test database noticed).

#[test]
fn migration_versions_are_unique_and_ordered() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../billpay-store/migrations");
    let mut versions: Vec<u64> = std::fs::read_dir(&dir)
        .expect("migrations folder")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.split('_').next())
                .and_then(|v| v.parse().ok())
        })
        .collect();
    let n = versions.len();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(
        versions.len(),
        n,
        "two migrations share a version: {versions:?}"
    );
    assert!(n >= 4, "{versions:?}");
}

/// The migrations in order, as (version, SQL).
fn migration_files() -> Vec<(u64, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../billpay-store/migrations");
    let mut files: Vec<(u64, String)> = std::fs::read_dir(&dir)
        .expect("migrations folder")
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let v = name.split('_').next()?.parse().ok()?;
            Some((v, std::fs::read_to_string(e.path()).ok()?))
        })
        .collect();
    files.sort();
    files
}

/// Upgrading a database whose outbox already holds messages (written before email delivery
/// existed) must not mail them all: they are marked not sent, with the reason.
async fn upgrade_leaves_old_messages_unsent(engine: common::Engine) {
    use sqlx::Connection as _;
    let db = common::TestDb::new(engine).await;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&db.url)
        .await
        .expect("connect");
    let files = migration_files();
    let delivery = 20261201000009;
    for (_, sql) in files.iter().filter(|(v, _)| *v < delivery) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut c)
            .await
            .expect("older migration");
    }
    sqlx::query(
        "INSERT INTO outbox (id, kind, dedupe_key, recipient, payload_json, created_at, sent_at, attempts) \
         VALUES ('msg_old', 'email.reminder_due_soon', 'old', 'pat@example.com', '{}', 1, NULL, 0), \
                ('msg_sms', 'sms.reminder', 'sms', '+15555550101', '{}', 1, NULL, 0)",
    )
    .execute(&mut c)
    .await
    .expect("old rows");
    for (_, sql) in files.iter().filter(|(v, _)| *v >= delivery) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()))
            .execute(&mut c)
            .await
            .expect("newer migration");
    }
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT id, status, last_error FROM outbox ORDER BY id")
            .fetch_all(&mut c)
            .await
            .expect("rows");
    assert_eq!(rows[0].0, "msg_old");
    assert_eq!(rows[0].1, "failed", "{rows:?}");
    assert!(
        rows[0]
            .2
            .as_deref()
            .unwrap_or("")
            .contains("written before email delivery existed")
    );
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        ("msg_sms", "queued")
    );
    let _ = c.close().await;
}

mod common;

#[tokio::test]
async fn upgrade_leaves_old_messages_unsent_sqlite() {
    upgrade_leaves_old_messages_unsent(common::Engine::Sqlite).await;
}

#[tokio::test]
async fn upgrade_leaves_old_messages_unsent_postgres() {
    upgrade_leaves_old_messages_unsent(common::Engine::Postgres).await;
}

/// A SQLite database from before the session database: its calls (one in progress, with sealed
/// digits) move to `<database>-sessions` when the new billpay opens it, and leave the main file.
#[tokio::test]
async fn calls_move_to_the_sqlite_session_database() {
    let db = common::TestDb::new(common::Engine::Sqlite).await;
    let store = billpay_store::Store::open(billpay_store::StoreOptions::new(&db.url))
        .await
        .expect("open");
    sqlx::query(
        "INSERT INTO ivr_calls (call_sid, from_number, status, turn, state, last_twiml, \
         sealed_kek_version, sealed_wrapped_key, sealed_ciphertext, created_at, updated_at) \
         VALUES ('CAold', '+15555550101', 'active', 3, '{}', '<Response/>', 1, 'wrapped', 'sealed', 1, 2)",
    )
    .execute(store.reader())
    .await
    .expect("an old call in the main database");
    store.close().await;
    let store = billpay_store::Store::open(billpay_store::StoreOptions::new(&db.url))
        .await
        .expect("reopen");
    let main: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ivr_calls")
        .fetch_one(store.reader())
        .await
        .expect("count");
    assert_eq!(main, 0, "the call left the main database");
    let mut c = store.relaxed_conn().await.expect("session database");
    let row = billpay_store::queries::ivr_call(&mut c, "CAold")
        .await
        .expect("read")
        .expect("the call is in the session database");
    assert_eq!((row.turn, row.status.as_str()), (3, "active"));
    assert_eq!(row.sealed_ciphertext.as_deref(), Some("sealed"));
}
