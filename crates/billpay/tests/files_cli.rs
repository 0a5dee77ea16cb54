//! The bank-file commands run as real processes against a live billpay's database: bank
//! payments taken over HTTP go out in a NACHA file (`billpay ach export`), the sandbox bank
//! answers it (`billpay ach sandbox-bank`), the returns are applied (`billpay ach returns`),
//! and mailed checks are posted (`billpay lockbox import|exceptions|resolve`). `billpay
//! verify` holds at the end. On SQLite and PostgreSQL.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;
use serde_json::json;

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "stdout: {out}\nstderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

async fn cli(app: &TestApp, args: &[&str]) -> Output {
    let app_args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let db = app.db.url.clone();
    let keyring = app.db.dir.path().join("vault-keyring.toml");
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_billpay"));
        for v in BILLPAY_ENV_VARS {
            cmd.env_remove(v);
        }
        cmd.arg("--keyring")
            .arg(keyring)
            .args(&app_args)
            .env("BILLPAY_DATABASE_URL", db)
            .env("BILLPAY_LOG", "warn");
        cmd.output().expect("run billpay")
    })
    .await
    .unwrap()
}

fn only_file(dir: &Path) -> std::path::PathBuf {
    let files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ach"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

async fn originating(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| s.ach.originate = true).await
}

both_engines! {
    with originating;

    async fn bank_payments_go_out_in_a_file_and_come_back_through_the_commands(app) {
        let acct = app.account_with_bill(20_000).await;
        let bank = |n: &str| json!({"type": "ach", "routing_number": "110000000", "account_number": n, "account_type": "checking", "holder_name": "Pat Payer"});
        let mut ids = Vec::new();
        for (cents, account) in [(8_410, "000123456789"), (5_000, "000111111116")] {
            let (s, p) = app.pay(&new_key(), json!({"account_number": acct, "amount": cents, "channel": "phone", "payment_method": bank(account)})).await;
            assert_eq!(s, 201, "{p}");
            ids.push(p["id"].as_str().unwrap().to_string());
        }
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("outgoing");
        let out = ok(&cli(&app, &["ach", "export", "--dir", out_dir.to_str().unwrap()]).await);
        assert!(out.contains("2 entries") && out.contains("debits $134.10"), "{out}");
        let out = ok(&cli(&app, &["ach", "export", "--dir", out_dir.to_str().unwrap()]).await);
        assert!(out.contains("no bank debits are ready"), "{out}");
        let file = only_file(&out_dir);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.lines().all(|l| l.len() == 94), "{text}");
        let listed = ok(&cli(&app, &["ach", "files"]).await);
        assert!(listed.contains("written") && listed.contains("2 entries"), "{listed}");

        let returns = dir.path().join("returns.ach");
        let out = ok(&cli(&app, &["ach", "sandbox-bank", file.to_str().unwrap(), "--out", returns.to_str().unwrap()]).await);
        assert!(out.contains("returned entries"), "{out}");
        let out = ok(&cli(&app, &["ach", "returns", returns.to_str().unwrap()]).await);
        assert!(out.contains("returns applied: 1"), "{out}");
        assert!(out.contains(&format!("payment {} returned (R03)", ids[1])), "{out}");
        let out = ok(&cli(&app, &["ach", "returns", returns.to_str().unwrap()]).await);
        assert!(out.contains("returns applied: 0") && out.contains("already applied before: 1"), "{out}");
        let (_, p) = app.get(&format!("/api/v1/payments/{}", ids[1])).await;
        assert_eq!(p["status"], "returned", "{p}");
        assert_eq!(app.balance(&acct).await, 20_000 - 8_410);

        // A file that is not NACHA is refused with the line at fault.
        std::fs::write(dir.path().join("junk.ach"), "hello\n").unwrap();
        let o = cli(&app, &["ach", "returns", dir.path().join("junk.ach").to_str().unwrap()]).await;
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("line 1"), "{:?}", o);

        // Pay by mail.
        let csv = dir.path().join("lockbox.csv");
        std::fs::write(&csv, format!(
            "deposit_date,lockbox,batch,sequence,check_number,amount,account_number,remitter\n\
             2026-12-01,4417,001,0001,10452,20.00,{acct},Pat Payer\n\
             2026-12-01,4417,001,0002,10453,15.00,,No Coupon\n")).unwrap();
        let out = ok(&cli(&app, &["lockbox", "import", csv.to_str().unwrap()]).await);
        assert!(out.contains("posted: 1") && out.contains("exceptions: 1"), "{out}");
        let out = ok(&cli(&app, &["lockbox", "import", csv.to_str().unwrap()]).await);
        assert!(out.contains("posted: 0") && out.contains("already imported: 2"), "{out}");
        let queue = ok(&cli(&app, &["lockbox", "exceptions"]).await);
        assert!(queue.contains("No Coupon") && queue.contains("$15.00"), "{queue}");
        let id = queue.split_whitespace().next().unwrap().to_string();
        let out = ok(&cli(&app, &["lockbox", "resolve", &id, "--account", &acct, "--by", "clerk 7"]).await);
        assert!(out.contains("posted $15.00"), "{out}");
        assert_eq!(app.balance(&acct).await, 20_000 - 8_410 - 2_000 - 1_500);
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "deposit_date,lockbox,batch,sequence,check_number,amount,account_number,remitter\n2026-12-01,4417,001,0009,1,12.3,,X\n").unwrap();
        let o = cli(&app, &["lockbox", "import", bad.to_str().unwrap()]).await;
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("line 2") && err.contains("nothing posted"), "{err}");

        let out = ok(&cli(&app, &["verify"]).await);
        assert!(out.contains("ledger verified"), "{out}");
    }
}

both_engines! {
    with originating;

    async fn serve_writes_the_daily_file_at_its_time(app) {
        let acct = app.account_with_bill(5_000).await;
        let (s, p) = app.pay(&new_key(), json!({"account_number": acct, "amount": 5_000, "channel": "phone",
            "payment_method": {"type": "ach", "routing_number": "110000000", "account_number": "000123456789", "account_type": "checking", "holder_name": "Pat Payer"}})).await;
        assert_eq!(s, 201, "{p}");
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("daily");
        let config = dir.path().join("billpay.toml");
        // 00:00: the time has passed whenever the test runs, so the first pass writes the file.
        std::fs::write(&config, format!(
            "database_url = \"{}\"\n[ach]\noriginate = true\nexport_dir = \"{}\"\nexport_at = \"00:00\"\n",
            app.db.url, out_dir.display())).unwrap();
        let keyring = app.db.dir.path().join("vault-keyring.toml");
        let server = ServerProcess::start(
            &[],
            &[("BILLPAY_CONFIG", config.to_str().unwrap()), ("BILLPAY_VAULT_KEYRING_FILE", keyring.to_str().unwrap())],
            dir.path().join("serve.log"),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let file = loop {
            let found = std::fs::read_dir(&out_dir).ok().and_then(|mut d| d.find_map(|e| {
                let p = e.ok()?.path();
                p.extension().is_some_and(|x| x == "ach").then_some(p)
            }));
            if let Some(f) = found {
                break f;
            }
            assert!(std::time::Instant::now() < deadline, "no daily file: {}", server.logs());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("000123456789"), "the entry is in the daily file");
        // Once a day: later passes of the same day write nothing more.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(std::fs::read_dir(&out_dir).unwrap().count(), 1);
        assert!(server.stop().success());
        let listed = ok(&cli(&app, &["ach", "files"]).await);
        assert!(listed.contains("1 entries") && listed.contains("written"), "{listed}");
    }
}

both_engines! {
    async fn statements_import_is_checked_whole_and_never_doubles(app) {
        let a = app.account_with_bill(1_000).await;
        let b = app.account_with_bill(1_000).await;
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("statements.csv");
        std::fs::write(&csv, format!(
            "account_number,statement_date,due_date,amount_due\n{a},2027-01-01,2027-01-21,84.10\n{b},2027-01-01,2027-01-21,127.45\n")).unwrap();
        let out = ok(&cli(&app, &["statements", "import", csv.to_str().unwrap()]).await);
        assert!(out.contains("statements created: 2"), "{out}");
        let out = ok(&cli(&app, &["statements", "import", csv.to_str().unwrap()]).await);
        assert!(out.contains("statements created: 0") && out.contains("already imported: 2"), "{out}");
        assert_eq!(app.balance(&a).await, 1_000 + 8_410);
        let json = dir.path().join("statements.json");
        std::fs::write(&json, format!("{{\"account_number\":\"{a}\",\"statement_date\":\"2027-02-01\",\"due_date\":\"2027-02-21\",\"amount_due\":9000}}\n{{\"account_number\":\"{b}\",\"statement_date\":\"2027-02-31\",\"due_date\":\"2027-03-21\",\"amount_due\":9000}}\n")).unwrap();
        let o = cli(&app, &["statements", "import", json.to_str().unwrap()]).await;
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("line 2") && err.contains("nothing was imported"), "{err}");
        assert_eq!(app.balance(&a).await, 1_000 + 8_410, "the good line was not imported either");
        let out = ok(&cli(&app, &["verify"]).await);
        assert!(out.contains("ledger verified"), "{out}");
    }
}

both_engines! {
    with originating;

    async fn the_daily_file_is_written_once_a_day_at_its_time(app) {
        let ny = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let at = |d: &str, t: &str| billpay_domain::local_instant(d.parse().unwrap(), t.parse().unwrap(), &ny);
        let set = |t: jiff::Timestamp| {
            let now = billpay_services::Clock::now(app.clock.as_ref());
            app.clock.advance(t.duration_since(now));
        };
        let acct = app.account_with_bill(9_000).await;
        let body = json!({"account_number": acct, "amount": 1_000, "channel": "phone", "confirm_duplicate": true,
            "payment_method": {"type": "ach", "routing_number": "110000000", "account_number": "000123456789", "account_type": "checking", "holder_name": "Pat Payer"}});
        let pay = || async { app.pay(&new_key(), body.clone()).await };
        let dir = tempfile::tempdir().unwrap();
        let files = || std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0);
        let export_at: jiff::civil::Time = "17:00".parse().unwrap();
        let mut exported_on = None;
        set(at("2027-03-02", "16:59"));
        assert_eq!(pay().await.0, 201);
        billpay::cli::daily_ach_export(&app.app, dir.path(), export_at, &mut exported_on).await;
        assert_eq!(files(), 0, "not before export_at");
        set(at("2027-03-02", "17:01"));
        billpay::cli::daily_ach_export(&app.app, dir.path(), export_at, &mut exported_on).await;
        assert_eq!(files(), 1, "at export_at");
        assert_eq!(pay().await.0, 201);
        set(at("2027-03-02", "23:30"));
        billpay::cli::daily_ach_export(&app.app, dir.path(), export_at, &mut exported_on).await;
        assert_eq!(files(), 1, "once a day: the later payment waits for tomorrow's file");
        // A few seconds past the hour: the test clock is the machine's plus an offset, and a
        // machine clock stepped back by NTP must not put "now" a hair before 17:00.
        set(at("2027-03-03", "17:00:05"));
        billpay::cli::daily_ach_export(&app.app, dir.path(), export_at, &mut exported_on).await;
        assert_eq!(files(), 2, "the next day's file carries it");
    }
}
