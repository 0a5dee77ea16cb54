//! The portal in a real browser: Debian's headless Chromium driven by Playwright
//! (`browser-tests/*.mjs`, playwright-core and axe-core from npm), against the real app on
//! port 0. Each script runs axe-core on every page it visits (no serious or critical
//! violation), fails on any console error, and saves screenshots under
//! `target/browser-artifacts/<test>/`.
//!
//! Needs `node`, `/usr/bin/chromium` (or BILLPAY_CHROMIUM) and `npm ci` in `browser-tests/`;
//! `scripts/test.sh` installs them. Without them these tests fail and say what is missing:
//! they never skip.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;

/// Longest one browser script may run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repository root")
}

/// Runs `node browser-tests/<script> <args>`; panics with its output unless it exits 0.
async fn run_script(test: &str, script: &str, args: &[&str]) -> String {
    let root = repo_root();
    let chromium = std::env::var("BILLPAY_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "the browser tests need Chromium at {chromium}: `apt-get install -y chromium` (scripts/test.sh does it), or set BILLPAY_CHROMIUM"
    );
    let node_ok = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        node_ok,
        "the browser tests need Node.js (`node`): `apt-get install -y nodejs npm` (scripts/test.sh does it)"
    );
    assert!(
        root.join("browser-tests/node_modules/playwright-core")
            .exists()
            && root.join("browser-tests/node_modules/axe-core").exists(),
        "the browser tests need playwright-core and axe-core: `npm ci --prefix browser-tests` (scripts/test.sh does it)"
    );
    let artifacts = root.join("target/browser-artifacts").join(test);
    let _ = std::fs::remove_dir_all(&artifacts);
    let child = tokio::process::Command::new("node")
        .arg(root.join("browser-tests").join(script))
        .args(args)
        .current_dir(&root)
        .env("BILLPAY_CHROMIUM", &chromium)
        .env("BILLPAY_BROWSER_ARTIFACTS", &artifacts)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start node");
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} ran longer than {SCRIPT_TIMEOUT:?}"))
        .expect("node ran");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{script} failed ({}):\n{stdout}\n{stderr}\nscreenshots: {}",
        out.status,
        artifacts.display()
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_quick_pay_in_chromium() {
    let app = spawn_app_with(Engine::Sqlite, |s| s.portal.demo_mailbox = true).await;
    let account = app.account_with_bill(8410).await;
    let out = run_script("guest", "guest.mjs", &[&app.base, &account, "10001"]).await;
    assert!(out.contains("guest flows passed"), "{out}");
    // Every page of the flow was checked by axe.
    for page in [
        "01-home",
        "02-lookup",
        "03-lookup-errors",
        "04-amount",
        "05-method",
        "06-method-errors",
        "07-review",
        "08-declined",
        "09-confirmation",
        "10-receipt",
        "11-mailbox",
        "12-mailbox-receipt",
        "13-phone-review-bank",
        "14-phone-duplicate",
        "15-phone-confirmation",
    ] {
        assert!(
            out.contains(&format!("ok page {page} (axe")),
            "{page} not checked:\n{out}"
        );
        assert!(
            repo_root()
                .join(format!("target/browser-artifacts/guest/{page}.png"))
                .exists(),
            "screenshot {page}"
        );
    }
    // What the browser did, as the ledger sees it: a decline, the card payment (once, though
    // its button was double-clicked), the bank payment confirmed as not a duplicate, and the
    // payment made with JavaScript off.
    let (_, list) = app
        .get(&format!("/api/v1/accounts/{account}/payments?limit=100"))
        .await;
    let mut seen: Vec<(String, i64, String)> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["status"].as_str().unwrap().to_string(),
                p["amount"].as_i64().unwrap(),
                p["payment_method"]["last4"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let expected: Vec<(String, i64, String)> = vec![
        ("failed".into(), 8410, "9995".into()),
        ("processing".into(), 8410, "6789".into()),
        ("succeeded".into(), 500, "4242".into()),
        ("succeeded".into(), 8410, "4242".into()),
    ];
    assert_eq!(seen, expected, "{list}");
    app.assert_verified().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customer_sign_up_code_sign_in_and_history_in_chromium() {
    let app = spawn_app_with(Engine::Sqlite, |s| s.portal.demo_mailbox = true).await;
    let account = app.account_with_bill(8410).await;
    let out = run_script(
        "customer",
        "customer.mjs",
        &[&app.base, &account, "10001", "pat@example.com"],
    )
    .await;
    assert!(out.contains("customer flows passed"), "{out}");
    for page in [
        "20-enrol",
        "21-enrol-weak-password",
        "22-code",
        "23-code-wrong",
        "24-account",
        "25-account-history",
        "26-history-receipt",
        "27-signed-out",
    ] {
        assert!(
            out.contains(&format!("ok page {page} (axe")),
            "{page} not checked:\n{out}"
        );
    }
    assert_eq!(
        app.balance(&account).await,
        0,
        "the signed-in payment was made"
    );
    app.assert_verified().await;
}

/// A customer and a representative in two pages: the bot, the handover, messages both ways
/// live, a card number masked, and a secure pay request completed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_customer_and_agent_in_chromium() {
    let app = spawn_app(Engine::Sqlite).await;
    let account = app.account_with_bill(8410).await;
    let (s, p) = app.pay_with(&account, 8410, card("4000000000009995")).await;
    assert_eq!(s, 402, "{p}");
    let password = "Riverbend-Otter-Lamp-9";
    let code = enrolled_staff(
        &app,
        "ann@example.com",
        billpay_services::staff::Role::Agent,
        password,
    )
    .await;
    let out = run_script(
        "chat",
        "chat.mjs",
        &[
            &app.base,
            &account,
            "10001",
            "ann@example.com",
            password,
            &code,
        ],
    )
    .await;
    assert!(out.contains("chat flows passed"), "{out}");
    for page in [
        "30-chat-start",
        "31-chat-bot",
        "32-chat-joined",
        "33-chat-pay-request",
        "40-desk-signin",
        "41-desk-code",
        "42-desk-inbox",
        "43-desk-conversation",
        "44-desk-paid",
    ] {
        assert!(
            out.contains(&format!("ok page {page} (axe")),
            "{page} not checked:\n{out}"
        );
    }
    assert_eq!(
        app.balance(&account).await,
        0,
        "the pay request paid the bill"
    );
    app.assert_verified().await;
}

/// A staff member whose authenticator is enrolled as at a first sign-in; returns the code of
/// the current step, for a script to type.
async fn enrolled_staff(
    app: &TestApp,
    email: &str,
    role: billpay_services::staff::Role,
    password: &str,
) -> String {
    let staff = app
        .app
        .staff_create(email, "Ann Example", role, password)
        .await
        .unwrap();
    let owner = billpay_services::staff::Staff::totp_owner(&staff.id);
    let enrolment = app.app.totp_begin(&owner, email).await.unwrap();
    let secret =
        billpay_services::totp::secret_from_text(enrolment.secret_text.expose_secret()).unwrap();
    let now = billpay_services::Clock::now(app.clock.as_ref()).as_second() as u64;
    assert!(
        app.app
            .totp_confirm(&owner, &billpay_services::totp::code_at(&secret, now - 30))
            .await
            .unwrap()
    );
    billpay_services::totp::code_at(&secret, now)
}

/// An administrator opens the dashboard filled by `billpay demo traffic`: the SVG charts are
/// drawn, a bad filter is refused with a clear message, the reports and reconciliation pages
/// open, and a setting is refused, then saved; every page passes axe and is saved as a
/// screenshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_dashboard_with_data_in_chromium() {
    let app = spawn_app(Engine::Sqlite).await;
    let password = "Riverbend-Otter-Lamp-9";
    let code = enrolled_staff(
        &app,
        "sue@example.com",
        billpay_services::staff::Role::Admin,
        password,
    )
    .await;
    let keyring = app.db.dir.path().join("vault-keyring.toml");
    let out = billpay_process(
        &["demo", "traffic", "--days", "5", "--per-day", "20"],
        &[
            ("BILLPAY_DATABASE_URL", app.db.url.as_str()),
            ("BILLPAY_VAULT_KEYRING_FILE", keyring.to_str().unwrap()),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A payment far above its bill, held for review.
    let acct = app.account_with_bill(8_410).await;
    let (s, held) = app.pay_with(&acct, 90_000, card("4242424242424242")).await;
    assert_eq!(s, 201, "{held}");
    let out = run_script(
        "dashboard",
        "dashboard.mjs",
        &[&app.base, "sue@example.com", password, &code],
    )
    .await;
    assert!(out.contains("dashboard flows passed"), "{out}");
    for page in [
        "50-desk-dashboard",
        "51-desk-dashboard-phone",
        "52-desk-dashboard-bad-filter",
        "53-desk-reports",
        "54-desk-reconciliation",
        "55-desk-settings",
        "56-desk-settings-refused",
        "57-desk-settings-saved",
        "58-desk-reviews",
    ] {
        assert!(
            out.contains(&format!("ok page {page} (axe")),
            "{page} not checked:\n{out}"
        );
    }
    let shot = repo_root().join("target/browser-artifacts/dashboard/50-desk-dashboard.png");
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "no screenshot at {}",
        shot.display()
    );
}
