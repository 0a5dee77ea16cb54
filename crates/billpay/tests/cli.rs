//! The `billpay` command line, run as a real process.

mod common;

use std::process::{Command, Output};

use common::{Engine, TestDb};

fn billpay(args: &[&str], database: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_billpay"));
    cmd.args(args)
        .env_remove("BILLPAY_DATABASE_URL")
        .env("BILLPAY_LOG", "warn");
    if let Some(url) = database {
        cmd.env("BILLPAY_DATABASE_URL", url);
    }
    cmd.output().expect("run billpay")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn every_subcommand_has_help() {
    let (out, _) = text(&billpay(&["--help"], None));
    for sub in [
        "serve",
        "migrate",
        "verify",
        "reconcile",
        "apikey",
        "bench",
        "staff",
        "report",
        "demo",
    ] {
        assert!(out.contains(sub), "--help lists {sub}: {out}");
    }
    for args in [
        &["serve", "--help"][..],
        &["migrate", "--help"],
        &["verify", "--help"],
        &["reconcile", "--help"],
        &["apikey", "--help"],
        &["apikey", "create", "--help"],
        &["apikey", "list", "--help"],
        &["apikey", "revoke", "--help"],
        &["bench", "--help"],
        &["bench", "payments", "--help"],
        &["bench", "ivr", "--help"],
        &["staff", "--help"],
        &["staff", "add", "--help"],
        &["staff", "list", "--help"],
        &["staff", "disable", "--help"],
        &["report", "reconciliation", "--help"],
        &["demo", "traffic", "--help"],
    ] {
        let o = billpay(args, None);
        assert!(o.status.success(), "{args:?}: {:?}", text(&o));
        let (out, _) = text(&o);
        assert!(out.contains("Usage:"), "{args:?}: {out}");
    }
}

#[test]
fn demo_traffic_refuses_limits_before_opening_anything() {
    for (args, message) in [
        (
            &["demo", "traffic", "--days", "0"][..],
            "--days must be 1 to 31; got 0",
        ),
        (
            &["demo", "traffic", "--per-day", "501"],
            "--per-day must be 1 to 500; got 501",
        ),
    ] {
        let o = billpay(args, Some("sqlite:///nonexistent-dir/never.db"));
        assert!(!o.status.success(), "{args:?}");
        let (_, err) = text(&o);
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

#[test]
fn unknown_command_and_bad_database_url_fail_clearly() {
    let o = billpay(&["frobnicate"], None);
    assert!(!o.status.success());
    let o = billpay(&["verify", "--database", "mysql://x"], None);
    assert_eq!(o.status.code(), Some(2));
    let (_, err) = text(&o);
    assert!(err.contains("sqlite: or postgres:"), "{err}");
}

#[test]
fn a_bad_representatives_number_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("billpay.toml");
    for bad in ["18005550100", "+1800555CALL", "+1"] {
        std::fs::write(&path, format!("agent_number = \"{bad}\"\n")).unwrap();
        let o = billpay(&["--config", path.to_str().unwrap(), "verify"], None);
        assert_eq!(o.status.code(), Some(2), "{bad}");
        let (_, err) = text(&o);
        assert!(
            err.contains("agent_number must be a phone number in E.164 form"),
            "{bad}: {err}"
        );
    }
}

/// Each configuration file is refused at start-up with a message containing its text.
fn refused_by_name(cases: &[(String, &str)]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("billpay.toml");
    for (file, named) in cases {
        std::fs::write(&path, format!("{file}\n")).unwrap();
        let o = billpay(&["--config", path.to_str().unwrap(), "verify"], None);
        assert_eq!(o.status.code(), Some(2), "{file}");
        let (_, err) = text(&o);
        assert!(err.contains(named), "{file}: {err}");
    }
}

#[test]
fn bad_fraud_rule_settings_are_refused_by_name() {
    let cases = [
        (
            "card_declines = -1",
            "risk.card_declines must be 0 (off) to 100000, not -1",
        ),
        (
            "window_minutes = 0",
            "risk.window_minutes must be 1 to 1440",
        ),
        (
            "blocked_callers = [\"555-0100\"]",
            "risk.blocked_callers: \"555-0100\" is not a phone number in E.164 form",
        ),
        (
            "review_amount_factor = 1000",
            "risk.review_amount_factor must be 0 (off) to 100, not 1000",
        ),
        (
            "review_amount_floor_cents = -5",
            "risk.review_amount_floor_cents must be 0 to 100000000 (minor units), not -5",
        ),
        (
            "review_first_use_cents = 100000001",
            "risk.review_first_use_cents must be 0 to 100000000 (minor units), not 100000001",
        ),
    ];
    let cases: Vec<(String, &str)> = cases
        .iter()
        .map(|(bad, named)| (format!("[risk]\n{bad}"), *named))
        .collect();
    refused_by_name(&cases);
}

#[test]
fn bad_reminder_and_branding_settings_are_refused_by_name() {
    let cases = [
        (
            "[reminders]\nquiet_start = \"22:00\"",
            "[reminders] quiet_start must be from 12:00 to 21:00",
        ),
        (
            "[reminders]\nquiet_end = \"07:30\"",
            "[reminders] quiet_end must be from 08:00 to 11:59",
        ),
        (
            "[reminders]\nsend_at = \"7pm\"",
            "[reminders] send_at must be a time like \"08:00\"",
        ),
        (
            "[reminders]\nsend_at = \"22:30\"",
            "[reminders] send_at must be outside quiet hours",
        ),
        (
            "[reminders]\ndue_soon_days = 0",
            "[reminders] due_soon_days must be 1 to 14",
        ),
        (
            "biller_name = \"\"",
            "biller_name must be 1 to 80 characters",
        ),
        (
            "agent_hours_start = 20\nagent_hours_end = 8",
            "agent_hours_start must be before agent_hours_end",
        ),
    ];
    let cases: Vec<(String, &str)> = cases.iter().map(|(f, n)| (f.to_string(), *n)).collect();
    refused_by_name(&cases);
}

#[test]
fn a_bad_config_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("billpay.toml");
    std::fs::write(&path, "listen = 42\nsurprise = true\n").unwrap();
    let o = billpay(&["--config", path.to_str().unwrap(), "verify"], None);
    assert_eq!(o.status.code(), Some(2));
    let (_, err) = text(&o);
    assert!(err.contains("billpay.toml"), "{err}");
}

async fn lifecycle(engine: Engine) {
    let db = TestDb::new(engine).await;
    let url = db.url.clone();
    let url2 = url.clone();
    // The commands block; run them off the async runtime.
    tokio::task::spawn_blocking(move || {
        let url = url.as_str();
        let o = billpay(&["migrate"], Some(url));
        assert!(o.status.success(), "{:?}", text(&o));

        let o = billpay(&["apikey", "create", "--name", "billing system"], Some(url));
        assert!(o.status.success(), "{:?}", text(&o));
        let (key, err) = text(&o);
        let key = key.trim().to_string();
        assert!(key.starts_with("bp_live_") && key.len() == 8 + 64, "{key}");
        assert!(!err.contains(&key), "the key is printed once, on stdout");

        let (list, _) = text(&billpay(&["apikey", "list"], Some(url)));
        assert!(
            list.contains("billing system") && list.contains("active"),
            "{list}"
        );
        assert!(!list.contains(&key[8..]), "list never shows a secret");
        let id = list.split_whitespace().next().unwrap().to_string();
        let o = billpay(&["apikey", "revoke", &id], Some(url));
        assert!(o.status.success());
        let (list, _) = text(&billpay(&["apikey", "list"], Some(url)));
        assert!(list.contains("revoked"), "{list}");
        let o = billpay(&["apikey", "revoke", &id], Some(url));
        assert_eq!(o.status.code(), Some(2), "revoking twice says so");

        let o = billpay(&["verify"], Some(url));
        let (out, _) = text(&o);
        assert!(o.status.success(), "{out}");
        assert!(out.contains("ledger verified"), "{out}");

        let o = billpay(&["reconcile"], Some(url));
        assert!(o.status.success(), "{:?}", text(&o));
        let o = billpay(&["reconcile", "--report", "2026-01-01"], Some(url));
        let (out, _) = text(&o);
        assert!(o.status.success(), "{out}");
        assert!(out.contains("settlement report for 2026-01-01"), "{out}");
        assert!(out.contains("processor transactions compared: 0"), "{out}");
        assert!(out.contains("no differences"), "{out}");
        let o = billpay(&["reconcile", "--report", "01/01/2026"], Some(url));
        let (_, err) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(
            err.contains("--report must be a day as YYYY-MM-DD"),
            "{err}"
        );
    })
    .await
    .unwrap();

    // Break the ledger behind billpay's back: verify must fail with a report.
    let store = billpay_store::Store::open(billpay_store::StoreOptions::new(&url2))
        .await
        .unwrap();
    store
        .write(|c| {
            Box::pin(async move {
                sqlx::query("INSERT INTO accounts (id, account_number, name, postal_code, timezone, currency, service_status, created_at, updated_at) VALUES ('acct_x', '100000000017', 'X', '10001', 'UTC', 'USD', 'active', 0, 0)")
                    .execute(&mut *c).await?;
                sqlx::query("INSERT INTO journal_entries (id, kind, source_type, source_id, account_id, currency, created_at) VALUES ('je_x', 'adjustment', 'statement', 'stmt_missing', 'acct_x', 'USD', 0)")
                    .execute(&mut *c).await?;
                sqlx::query("INSERT INTO postings (journal_id, seq, ledger_account, amount, currency) VALUES ('je_x', 0, 'ar:100000000017', 500, 'USD')")
                    .execute(&mut *c).await?;
                Ok::<_, billpay_store::StoreError>(())
            })
        })
        .await
        .unwrap();
    store.close().await;
    let o = tokio::task::spawn_blocking(move || billpay(&["verify"], Some(&url2)))
        .await
        .unwrap();
    let (out, _) = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("FAIL every journal entry has two or more postings"),
        "{out}"
    );
    assert!(
        out.contains("FAIL no journal entry without its source document"),
        "{out}"
    );
    assert!(out.contains("FAIL each account's balance equals"), "{out}");
    assert!(out.contains("LEDGER VERIFICATION FAILED"), "{out}");
}

#[tokio::test]
async fn migrate_apikey_verify_reconcile_sqlite() {
    lifecycle(Engine::Sqlite).await;
}

#[tokio::test]
async fn migrate_apikey_verify_reconcile_postgres() {
    lifecycle(Engine::Postgres).await;
}

/// The configuration examples in the README are valid configuration.
#[test]
fn readme_configuration_examples_parse() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```toml")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(
        blocks.len() >= 2,
        "the README has its configuration examples"
    );
    for block in blocks {
        let parsed: Result<billpay::config::Settings, _> = toml::from_str(block);
        let settings =
            parsed.unwrap_or_else(|e| panic!("README example does not parse: {e}\n{block}"));
        settings
            .collections
            .config()
            .expect("the collections example is valid");
    }
}
