//! The tamper-evident audit log, on SQLite and PostgreSQL: records written by real actions
//! (cards saved and removed over HTTP) are sealed into the hash chain, and `billpay audit
//! verify` — the real command, as a process — passes, then names every record edited, deleted
//! or added behind the sealer's back in the database.

mod common;

use common::*;
use serde_json::json;

fn billpay_cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let out = billpay_process(args, env);
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn verify(app: &TestApp) -> (i32, String) {
    let keyring = app.db.dir.path().join("vault-keyring.toml");
    billpay_cli(
        &["audit", "verify"],
        &[
            ("BILLPAY_DATABASE_URL", app.db.url.as_str()),
            ("BILLPAY_VAULT_KEYRING_FILE", keyring.to_str().unwrap()),
        ],
    )
}

async fn sql(app: &TestApp, statement: &str) {
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(statement.to_string()))
        .execute(&mut *c)
        .await
        .unwrap();
}

async fn saved_cards(app: &TestApp, n: usize) -> String {
    let account = app.account_with_bill(5_000).await;
    for number in ["4242424242424242", "5555555555554444", "378282246310005"]
        .iter()
        .take(n)
    {
        let (s, m) = app
            .post(
                &format!("/api/v1/accounts/{account}/payment_methods"),
                json!({"type": "card", "number": number, "exp_month": 12, "exp_year": 2034}),
            )
            .await;
        assert_eq!(s, 201, "{m}");
    }
    account
}

both_engines! {
    async fn the_chain_holds_then_names_what_was_tampered_with(app) {
        saved_cards(&app, 3).await;
        let sealed = app.app.seal_audit().await.unwrap();
        assert!(sealed >= 3, "{sealed}");
        assert_eq!(app.app.seal_audit().await.unwrap(), 0, "nothing left to seal");
        let (code, out) = verify(&app);
        assert_eq!(code, 0, "{out}");
        assert!(out.contains("audit chain: ok"), "{out}");
        assert!(out.contains(&format!("sealed records checked: {sealed}")), "{out}");

        // An edited record.
        let actor: String = {
            let mut c = app.app.store.read_conn().await.unwrap();
            sqlx::query_scalar("SELECT actor FROM audit_log WHERE seq = 2").fetch_one(&mut *c).await.unwrap()
        };
        sql(&app, "UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2").await;
        let (code, out) = verify(&app);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("audit chain: TAMPERED"), "{out}");
        assert!(out.contains("record 2 (") && out.contains("was altered after it was sealed"), "{out}");
        assert!(!out.contains("record 1 ("), "only record 2 is named: {out}");
        sql(&app, &format!("UPDATE audit_log SET actor = '{actor}' WHERE seq = 2")).await;
        let (code, out) = verify(&app);
        assert_eq!(code, 0, "restored: {out}");

        // A deleted record in the middle.
        sql(&app, "DELETE FROM audit_log WHERE seq = 2").await;
        let (code, out) = verify(&app);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains("record 2 is missing (deleted)"), "{out}");
    }

    async fn deleting_the_newest_records_or_forging_a_link_is_found(app) {
        saved_cards(&app, 3).await;
        let sealed = app.app.seal_audit().await.unwrap() as i64;
        sql(&app, &format!("DELETE FROM audit_log WHERE seq = {sealed}")).await;
        let (code, out) = verify(&app);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("the chain ends at {}, its head says {sealed}", sealed - 1)), "{out}");
        // A record given a number by hand, not by the sealer.
        sql(&app, &format!(
            "UPDATE audit_log SET seq = {sealed}, prev_hash = 'x', hash = 'y' WHERE seq IS NULL"
        )).await;
        sql(&app, &format!("INSERT INTO audit_log (id, at, actor, action, subject_type, subject_id, detail, seq, prev_hash, hash) \
            VALUES ('aud_forged', 1, 'api', 'refund', 'payment', 'pay_x', '{{}}', {sealed}, 'x', 'y')")).await;
        let (code, out) = verify(&app);
        assert_eq!(code, 1, "{out}");
        assert!(out.contains(&format!("record {sealed} (aud_forged) does not link to record {}", sealed - 1)), "{out}");
    }

    async fn new_records_wait_for_the_sealer_and_then_join(app) {
        let account = saved_cards(&app, 1).await;
        app.app.seal_audit().await.unwrap();
        saved_cards(&app, 2).await;
        let (code, out) = verify(&app);
        assert_eq!(code, 0, "unsealed records are not a fault: {out}");
        assert!(out.contains("not sealed yet: 2"), "{out}");
        assert_eq!(app.app.seal_audit().await.unwrap(), 2);
        let (code, out) = verify(&app);
        assert_eq!(code, 0, "{out}");
        assert!(!out.contains("not sealed yet"), "{out}");
        // Supervisors find an account's records.
        let keyring = app.db.dir.path().join("vault-keyring.toml");
        let (code, out) = billpay_cli(
            &["audit", "list", "--account", &account],
            &[
                ("BILLPAY_DATABASE_URL", app.db.url.as_str()),
                ("BILLPAY_VAULT_KEYRING_FILE", keyring.to_str().unwrap()),
            ],
        );
        assert_eq!(code, 0, "{out}");
        assert_eq!(out.matches("vault.save").count(), 1, "{out}");
        assert!(!out.contains("4242424242424242"), "{out}");
    }
}

both_engines! {
    async fn supervisors_filter_the_log_over_the_api(app) {
        let account = saved_cards(&app, 2).await;
        let other = saved_cards(&app, 1).await;
        app.app.seal_audit().await.unwrap();
        let (s, list) = app.get(&format!("/api/v1/audit?account_number={account}")).await;
        assert_eq!(s, 200, "{list}");
        let data = list["data"].as_array().unwrap();
        assert_eq!(data.len(), 2, "{list}");
        assert!(data.iter().all(|r| r["action"] == "vault.save" && r["seq"].as_i64().is_some()), "{list}");
        assert!(data[0]["seq"].as_i64() > data[1]["seq"].as_i64(), "newest first: {list}");
        assert!(!list.to_string().contains("4242424242424242"));
        let (_, all) = app.get("/api/v1/audit?action=vault.save&limit=10").await;
        assert_eq!(all["data"].as_array().unwrap().len(), 3, "{all}");
        let (_, none) = app.get(&format!("/api/v1/audit?account_number={other}&since=2099-01-01")).await;
        assert_eq!(none["data"].as_array().unwrap().len(), 0, "{none}");
        for (query, param) in [
            ("limit=0", "limit"),
            ("since=2026-13-01", "since"),
            ("since=2027-01-02&until=2027-01-01", "until"),
            ("account_number=123", "account_number"),
        ] {
            let (s, e) = app.get(&format!("/api/v1/audit?{query}")).await;
            assert_eq!(s, 400, "{query}: {e}");
            assert_eq!(e["error"]["param"], param, "{query}: {e}");
        }
        // Without an API key: nothing.
        let r = app.client.get(format!("{}/api/v1/audit", app.base)).send().await.unwrap();
        assert_eq!(r.status(), 401);
    }
}

both_engines! {
    async fn a_running_worker_seals_new_records(app) {
        saved_cards(&app, 2).await;
        let keyring = app.db.dir.path().join("vault-keyring.toml");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_billpay"));
        cmd.arg("worker");
        for v in BILLPAY_ENV_VARS {
            cmd.env_remove(v);
        }
        let mut worker = cmd
            .env("BILLPAY_LOG", "warn")
            .env("BILLPAY_DATABASE_URL", &app.db.url)
            .env("BILLPAY_VAULT_KEYRING_FILE", &keyring)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("billpay worker");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let sealed = loop {
            let (code, out) = verify(&app);
            if code == 0 && out.contains("sealed records checked: 2") && !out.contains("not sealed yet") {
                break true;
            }
            if std::time::Instant::now() > deadline {
                break false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        let _ = worker.kill();
        let _ = worker.wait();
        assert!(sealed, "the worker sealed both records within 60 s: {}", verify(&app).1);
    }
}
