//! `billpay serve` and `billpay keys` as real processes: the keyring rules, TLS, security
//! headers, and the log mask.

mod common;

use std::process::Command;

use common::{Engine, ServerProcess, TestDb};

fn billpay(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_billpay"));
    cmd.args(args)
        .env_remove("BILLPAY_DATABASE_URL")
        .env_remove("BILLPAY_VAULT_KEYRING_FILE")
        .env("BILLPAY_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run billpay")
}

fn out(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn serve_refuses_to_start_without_a_keyring() {
    let db = TestDb::new(Engine::Sqlite).await;
    let err = ServerProcess::start(
        &[],
        &[("BILLPAY_DATABASE_URL", &db.url)],
        db.dir.path().join("log"),
    )
    .err()
    .expect("must not start");
    assert!(err.contains("no vault keyring"), "{err}");
    let missing = db.dir.path().join("nope.toml");
    let err = ServerProcess::start(
        &["--keyring", missing.to_str().unwrap()],
        &[("BILLPAY_DATABASE_URL", &db.url)],
        db.dir.path().join("log2"),
    )
    .err()
    .expect("must not start");
    assert!(
        err.contains("does not exist") && err.contains("billpay keys init"),
        "{err}"
    );
}

#[tokio::test]
async fn demo_creates_its_keyring_beside_the_database_and_says_so() {
    let db = TestDb::new(Engine::Sqlite).await;
    let server = ServerProcess::start(
        &["--demo"],
        &[("BILLPAY_DATABASE_URL", &db.url)],
        db.dir.path().join("log"),
    )
    .expect("demo starts");
    let keyring = db.dir.path().join("vault-keyring.toml");
    assert!(keyring.exists());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&keyring).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    assert!(server.stop().success());
}

#[tokio::test]
async fn keys_init_rotate_retire_status() {
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let db = TestDb::new(engine).await;
        let keyring = db.dir.path().join("keys.toml");
        let k = keyring.to_str().unwrap().to_string();
        let env = [
            ("BILLPAY_DATABASE_URL", db.url.as_str()),
            ("BILLPAY_VAULT_KEYRING_FILE", k.as_str()),
        ];
        let o = billpay(&["keys", "init"], &env);
        assert!(o.status.success(), "{}", out(&o));
        let o = billpay(&["keys", "init"], &env);
        assert!(
            !o.status.success() && out(&o).contains("never overwrites"),
            "{}",
            out(&o)
        );
        // Save a method through the API so there is something to re-wrap.
        let server = ServerProcess::start(&[], &env, db.dir.path().join("log")).expect("serve");
        let base = format!("http://{}", server.addr);
        let key = String::from_utf8(billpay(&["apikey", "create", "--name", "t"], &env).stdout)
            .unwrap()
            .trim()
            .to_string();
        let client = common::http().build().unwrap();
        let acct: serde_json::Value = client
            .post(format!("{base}/api/v1/accounts"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"name": "K", "postal_code": "10001"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let n = acct["account_number"].as_str().unwrap();
        let m: serde_json::Value = client.post(format!("{base}/api/v1/accounts/{n}/payment_methods")).bearer_auth(&key)
            .json(&serde_json::json!({"type": "card", "number": "4242424242424242", "exp_month": 12, "exp_year": 2034})).send().await.unwrap().json().await.unwrap();
        let token = m["id"].as_str().unwrap().to_string();

        let o = billpay(&["keys", "rotate"], &env);
        assert!(o.status.success(), "{}", out(&o));
        let text = out(&o);
        assert!(
            text.contains("key version 2 is now active") && text.contains("re-wrapped 1"),
            "{text}"
        );
        let o = billpay(&["keys", "retire", "--version", "2"], &env);
        assert!(!o.status.success(), "the active version cannot be retired");
        let o = billpay(&["keys", "retire", "--version", "1"], &env);
        assert!(o.status.success(), "{}", out(&o));
        let status = out(&billpay(&["keys", "status"], &env));
        assert!(
            status.contains("active key version: 2") && status.contains("version 2: 1 saved"),
            "{status}"
        );
        assert!(!status.contains("version 1"), "{status}");

        // The running server picked up the new keyring: the saved card still pays.
        client.post(format!("{base}/api/v1/accounts/{n}/statements")).bearer_auth(&key)
            .json(&serde_json::json!({"statement_date": "2026-11-01", "due_date": "2026-11-30", "amount_due": 500})).send().await.unwrap();
        let resp = client.post(format!("{base}/api/v1/payments")).bearer_auth(&key).header("Idempotency-Key", "after-rotate")
            .json(&serde_json::json!({"account_number": n, "amount": 500, "payment_method": {"type": "token", "token": token}})).send().await.unwrap();
        assert_eq!(
            resp.status().as_u16(),
            201,
            "{}",
            resp.text().await.unwrap()
        );
        assert!(server.stop().success());
    }
}

#[tokio::test]
async fn card_numbers_in_paths_are_masked_in_the_logs() {
    let db = TestDb::new(Engine::Sqlite).await;
    let keyring = db.dir.path().join("keys.toml");
    let k = keyring.to_str().unwrap().to_string();
    let env = [
        ("BILLPAY_DATABASE_URL", db.url.as_str()),
        ("BILLPAY_VAULT_KEYRING_FILE", k.as_str()),
        ("BILLPAY_LOG", "debug"),
    ];
    assert!(billpay(&["keys", "init"], &env).status.success());
    let server = ServerProcess::start(&[], &env, db.dir.path().join("log")).expect("serve");
    let client = common::http().build().unwrap();
    for path in [
        "/api/v1/accounts/4242424242424242",
        "/api/v1/confirmations/5555555555554444",
        "/api/v1/payments/4242-4242-4242-4242",
    ] {
        let resp = client
            .get(format!("http://{}{path}", server.addr))
            .bearer_auth("bp_live_nope")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
    }
    let resp = client
        .get(format!("http://{}/nowhere/6011111111111117", server.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let logs = server.logs();
    assert!(server.stop().success());
    assert!(
        logs.contains("path=/api/v1/accounts/************4242"),
        "{logs}"
    );
    for pan in [
        "4242424242424242",
        "5555555555554444",
        "4242-4242-4242-4242",
        "6011111111111117",
    ] {
        assert!(!logs.contains(pan), "log holds {pan}: {logs}");
    }
}

/// A self-signed certificate for localhost: (cert file, key file, the certificate's DER).
fn self_signed(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    rustls::pki_types::CertificateDer<'static>,
) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&c, cert.cert.pem()).unwrap();
    std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
    (c, k, cert.cert.der().clone())
}

#[tokio::test]
async fn serves_https_with_hsts_and_security_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new(Engine::Sqlite).await;
    let (cert, key, der) = self_signed(db.dir.path());
    let server = ServerProcess::start(
        &[
            "--demo",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
        &[("BILLPAY_DATABASE_URL", &db.url)],
        db.dir.path().join("log"),
    )
    .expect("serve over TLS");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("TLS handshake");
    tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    tls.read_to_end(&mut buf).await.ok();
    let resp = String::from_utf8_lossy(&buf).to_lowercase();
    assert!(resp.starts_with("http/1.1 200"), "{resp}");
    assert!(
        resp.contains("strict-transport-security: max-age=63072000"),
        "{resp}"
    );
    for h in [
        "x-content-type-options: nosniff",
        "x-frame-options: deny",
        "referrer-policy: no-referrer",
        "content-security-policy: default-src 'none'; frame-ancestors 'none'",
    ] {
        assert!(resp.contains(h), "missing {h}: {resp}");
    }
    // Plain HTTP on the TLS port gets nowhere.
    let plain = common::http()
        .build()
        .unwrap()
        .get(format!("http://{}/healthz", server.addr))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    assert!(server.stop().success());
}
