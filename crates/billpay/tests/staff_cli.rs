//! `billpay staff add | list | disable`, run as the real binary against a running app's
//! database: the new member signs in on the desk with the printed temporary password and the
//! authenticator link's codes, must choose a password first, and once disabled can neither
//! use a session nor sign in again. Every step is audited. On SQLite and PostgreSQL.

mod common;

use common::desk::{Browser, now_secs};
use common::*;

fn cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let keyring = app.db.dir.path().join("vault-keyring.toml");
    let o = billpay_process(
        args,
        &[
            ("BILLPAY_DATABASE_URL", app.db.url.as_str()),
            ("BILLPAY_VAULT_KEYRING_FILE", keyring.to_str().unwrap()),
            ("USER", "ops-pat"),
        ],
    );
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn after<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label} in {text}"))
        .trim()
}

both_engines! {
    async fn staff_are_added_listed_and_disabled_from_the_command_line(app) {
        let (code, out, err) = cli(&app, &["staff", "add", "--email", "Nia@Example.com", "--name", "Nia Agent", "--role", "supervisor"]);
        assert_eq!(code, 0, "{out}{err}");
        let password = after(&out, "temporary password:").to_string();
        let uri = after(&out, "authenticator:").to_string();
        assert!(password.len() >= 20, "{password}");
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        // Nothing secret in the logs, and not on the command line it was given.
        assert!(!err.contains(&password), "{err}");
        let (code, _, err) = cli(&app, &["staff", "add", "--email", "nia@example.com", "--name", "Nia Again", "--role", "agent"]);
        assert_ne!(code, 0, "the email is taken: {err}");
        let (code, _, _) = cli(&app, &["staff", "add", "--email", "x@example.com", "--name", "X", "--role", "boss"]);
        assert_eq!(code, 2, "roles are agent, supervisor or admin");
        let (code, out, _) = cli(&app, &["staff", "list"]);
        assert_eq!(code, 0);
        assert!(out.contains("nia@example.com\tNia Agent\tsupervisor\tactive"), "{out}");
        // The first sign-in: the temporary password, then the authenticator the link holds.
        let secret_text = uri.split("secret=").nth(1).unwrap().split('&').next().unwrap();
        let secret = billpay_services::totp::secret_from_text(secret_text).expect("base32 secret");
        let mut nia = Browser::new(&app);
        let p = nia.submit("/desk/signin", "/desk/signin", &[("email", "nia@example.com"), ("password", &password)]).await;
        assert_eq!(p.location.as_deref(), Some("/desk/signin/code"), "{}", p.body);
        let code = billpay_services::totp::code_at(&secret, now_secs(&app));
        let p = nia.submit("/desk/signin/code", "/desk/signin/code", &[("code", &code)]).await;
        assert_eq!(p.location.as_deref(), Some("/desk"), "{}", p.body);
        // A temporary password must be changed before anything else.
        assert_eq!(nia.get("/desk").await.location.as_deref(), Some("/desk/password"));
        let p = nia.submit("/desk/password", "/desk/password", &[("password", &password), ("again", &password)]).await;
        assert_eq!(p.status, 422, "not the temporary one again: {}", p.body);
        let p = nia.submit("/desk/password", "/desk/password", &[("password", "Copper-Heron-Mill-42"), ("again", "Copper-Heron-Mill-41")]).await;
        assert_eq!(p.status, 422);
        let p = nia.submit("/desk/password", "/desk/password", &[("password", "Copper-Heron-Mill-42"), ("again", "Copper-Heron-Mill-42")]).await;
        assert_eq!(p.location.as_deref(), Some("/desk"), "{}", p.body);
        let inbox = nia.get("/desk").await;
        assert_eq!(inbox.status, 200);
        assert!(inbox.body.contains("Inbox"));
        // Disabled: the open session ends, and the password no longer signs in.
        let (code, out, err) = cli(&app, &["staff", "disable", "--email", "nia@example.com"]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(nia.get("/desk").await.location.as_deref(), Some("/desk/signin"));
        let mut again = Browser::new(&app);
        let p = again.submit("/desk/signin", "/desk/signin", &[("email", "nia@example.com"), ("password", "Copper-Heron-Mill-42")]).await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(p.body.contains("The email or password is not right."));
        let (_, out, _) = cli(&app, &["staff", "list"]);
        assert!(out.contains("nia@example.com\tNia Agent\tsupervisor\tdisabled"), "{out}");
        let (code, _, _) = cli(&app, &["staff", "disable", "--email", "nobody@example.com"]);
        assert_ne!(code, 0);
        let mut c = app.app.store.read_conn().await.unwrap();
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT actor, action FROM audit_log WHERE action LIKE 'staff.%' ORDER BY at, id",
        )
        .fetch_all(&mut *c)
        .await
        .unwrap();
        for (actor, action) in [("operator:ops-pat", "staff.created"), ("operator:ops-pat", "staff.disabled")] {
            assert!(rows.iter().any(|(a, b)| a == actor && b == action), "{action}: {rows:?}");
        }
        for action in ["staff.signin", "staff.password_changed", "staff.signin_disabled"] {
            assert!(rows.iter().any(|(_, b)| b == action), "{action}: {rows:?}");
        }
        // No column holds the temporary password or the authenticator secret readable.
        let hashes: Vec<String> = sqlx::query_scalar("SELECT password_hash FROM staff_users")
            .fetch_all(&mut *c)
            .await
            .unwrap();
        assert!(hashes.iter().all(|h| h.starts_with("$argon2id$") && !h.contains(&password)));
    }
}
