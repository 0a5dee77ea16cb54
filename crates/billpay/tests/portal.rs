//! The customer portal over HTTP, as a browser without script would use it: CSRF refusal,
//! session fixation, idle and absolute timeouts, an account lookup that says the same thing
//! for an unknown account and a wrong ZIP, one payment per review form, and no page, receipt
//! or stored session that shows more than the last four digits. On SQLite and PostgreSQL.

mod common;

use std::time::{Duration, Instant};

use common::visitor::{Page, Visitor, card_form, hidden, without_tokens};
use common::*;

const CARD: &str = "4242424242424242";
const BANK_ACCOUNT: &str = "000123456789";

/// Looks the account up and chooses the amount; returns after the method page's redirect.
async fn start_payment(v: &mut Visitor, account: &str, amount: Option<&str>) {
    let p = v
        .submit(
            "/pay",
            "/pay",
            &[("account_number", account), ("postal_code", "10001")],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location.as_deref(), Some("/pay/amount"));
    let form: Vec<(&str, &str)> = match amount {
        None => vec![("choice", "full")],
        Some(a) => vec![("choice", "other"), ("amount", a)],
    };
    let p = v.submit("/pay/amount", "/pay/amount", &form).await;
    assert_eq!(p.location.as_deref(), Some("/pay/method"), "{}", p.body);
}

both_engines! {
    async fn forms_without_the_session_csrf_token_are_refused(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        let p = v.get("/pay").await;
        assert_eq!(p.status, 200);
        assert!(p.set_cookie.is_some(), "a first visit starts a session");
        let form = [("account_number", account.as_str()), ("postal_code", "10001")];
        // No token, a wrong token, and another session's token: all refused before any work.
        let p = v.post("/pay", &form).await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(p.body.contains("This form has expired"), "{}", p.body);
        let mut wrong = vec![("csrf", "0".repeat(64))];
        wrong.extend(form.iter().map(|(k, v)| (*k, v.to_string())));
        let wrong: Vec<(&str, &str)> = wrong.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let p = v.post("/pay", &wrong).await;
        assert_eq!(p.status, 403);
        let mut other = Visitor::new(&app);
        let theirs = hidden(&other.get("/pay").await.body, "csrf");
        let mut cross = vec![("csrf", theirs.as_str())];
        cross.extend_from_slice(&form);
        let p = v.post("/pay", &cross).await;
        assert_eq!(p.status, 403, "another session's token is not this one's");
        // A refused lookup verified nothing: the amount page still sends the visitor back.
        let p = v.get("/pay/amount").await;
        assert_eq!(p.location.as_deref(), Some("/pay"));
        // Every POST route is behind the same check.
        for path in ["/pay/amount", "/pay/method", "/pay/confirm"] {
            let p = v.post(path, &[("choice", "full")]).await;
            assert_eq!(p.status, 403, "{path}");
        }
        // With the token, the same form works.
        let p = v.submit("/pay", "/pay", &form).await;
        assert_eq!(p.status, 303, "{}", p.body);
    }

    async fn verifying_an_account_replaces_the_session_id(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        v.get("/pay").await;
        let planted = v.cookie.clone().unwrap();
        let p = v
            .submit("/pay", "/pay", &[("account_number", &account), ("postal_code", "10001")])
            .await;
        assert_eq!(p.status, 303);
        let fresh = v.cookie.clone().unwrap();
        assert_ne!(planted, fresh, "a new session id at the privilege change");
        assert_eq!(v.get("/pay/amount").await.status, 200);
        // Whoever knew the old id (it was planted, or seen) has nothing: no account, and a
        // new session of their own.
        let mut attacker = Visitor::new(&app);
        attacker.cookie = Some(planted.clone());
        let p = attacker.get("/pay/amount").await;
        assert_eq!(p.location.as_deref(), Some("/pay"));
        assert_ne!(attacker.cookie.as_deref(), Some(planted.as_str()));
        assert_ne!(attacker.cookie.as_deref(), Some(fresh.as_str()));
    }

    async fn sessions_end_when_idle_and_at_their_absolute_limit(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        start_payment(&mut v, &account, None).await;
        app.clock.advance(jiff::SignedDuration::from_mins(19));
        assert_eq!(v.get("/pay/method").await.status, 200, "19 minutes idle: still on");
        app.clock.advance(jiff::SignedDuration::from_mins(21));
        let p = v.get("/pay/method").await;
        assert_eq!(p.location.as_deref(), Some("/pay"), "21 minutes idle: ended");

        let mut busy = Visitor::new(&app);
        start_payment(&mut busy, &account, Some("1.00")).await;
        for _ in 0..47 {
            app.clock.advance(jiff::SignedDuration::from_mins(15));
            assert_eq!(busy.get("/pay/method").await.status, 200);
        }
        // 47 × 15 min + 16 min: never 20 minutes idle, but past 12 hours since the start.
        app.clock.advance(jiff::SignedDuration::from_mins(16));
        let p = busy.get("/pay/method").await;
        assert_eq!(p.location.as_deref(), Some("/pay"), "absolute limit");
        assert!(app.app.portal_sweep_sessions().await.unwrap() >= 1, "the sweep deletes ended sessions");
    }

    async fn the_lookup_answers_the_same_for_unknown_accounts_and_wrong_zips(app) {
        let account = app.account_with_bill(8410).await;
        // A valid account number (check digit and all) that no account has.
        let unknown = billpay_domain::AccountNumber::from_body("99999999991").unwrap().to_string();
        assert_ne!(unknown, account);
        let mut v = Visitor::new(&app);
        let wrong_zip = v
            .submit("/pay", "/pay", &[("account_number", &account), ("postal_code", "10002")])
            .await;
        let no_account = v
            .submit("/pay", "/pay", &[("account_number", &unknown), ("postal_code", "10002")])
            .await;
        assert_eq!(wrong_zip.status, 422);
        assert_eq!(no_account.status, wrong_zip.status);
        assert!(wrong_zip.body.contains("could not find an account with this account number and service ZIP code"));
        // Same page but for the typed account number echoed in its field.
        assert_eq!(
            without_tokens(&wrong_zip.body).replace(&account, "N"),
            without_tokens(&no_account.body).replace(&unknown, "N"),
        );
        assert_eq!(wrong_zip.set_cookie, None);
        assert_eq!(no_account.set_cookie, None);
        // And about the same time: interleaved, the medians are within a few milliseconds
        // (13 pairs: with the two above, within the default 30 lookups per address).
        let mut a = Vec::new();
        let mut b = Vec::new();
        let csrf = hidden(&v.get("/pay").await.body, "csrf");
        for _ in 0..13 {
            for (number, zip, times) in [(&account, "10002", &mut a), (&unknown, "10002", &mut b)] {
                let started = Instant::now();
                let p = v
                    .post("/pay", &[("csrf", &csrf), ("account_number", number), ("postal_code", zip)])
                    .await;
                times.push(started.elapsed());
                assert_eq!(p.status, 422);
            }
        }
        a.sort();
        b.sort();
        let (ma, mb) = (a[6], b[6]);
        let gap = ma.abs_diff(mb);
        assert!(gap < Duration::from_millis(15), "medians {ma:?} and {mb:?}");
    }

    async fn a_review_form_sent_twice_pays_once(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        start_payment(&mut v, &account, None).await;
        let p = v.submit("/pay/method", "/pay/method", &card_form(CARD)).await;
        assert_eq!(p.location.as_deref(), Some("/pay/review"), "{}", p.body);
        let review = v.get("/pay/review").await;
        let csrf = hidden(&review.body, "csrf");
        let key = hidden(&review.body, "form_key");
        let form = [("csrf", csrf.as_str()), ("form_key", key.as_str())];
        // Two at once (a double click), then once more later (back, resubmit).
        let mut v2 = Visitor { base: v.base.clone(), client: v.client.clone(), cookie: v.cookie.clone() };
        let (a, b) = tokio::join!(v.post("/pay/confirm", &form), v2.post("/pay/confirm", &form));
        let c = v.post("/pay/confirm", &form).await;
        for p in [&a, &b, &c] {
            assert_eq!(p.status, 303, "{}", p.body);
        }
        assert_eq!(a.location, b.location);
        assert_eq!(a.location, c.location);
        assert_eq!(app.balance(&account).await, 0);
        assert_eq!(app.processor_charges().await, 1, "one charge");
        let (_, list) = app.get(&format!("/api/v1/accounts/{account}/payments")).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "{list}");
        app.assert_verified().await;
    }

    async fn the_same_amount_again_is_asked_about_first(app) {
        let account = app.account_with_bill(8410).await;
        let (s, _) = app
            .pay(&new_key(), serde_json::json!({"account_number": account, "amount": 8410, "channel": "phone", "payment_method": card(CARD)}))
            .await;
        assert_eq!(s, 201);
        app.clock.advance(jiff::SignedDuration::from_mins(3));
        let mut v = Visitor::new(&app);
        start_payment(&mut v, &account, Some("84.10")).await;
        v.submit("/pay/method", "/pay/method", &card_form(CARD)).await;
        let review = v.get("/pay/review").await;
        let csrf = hidden(&review.body, "csrf");
        let key = hidden(&review.body, "form_key");
        let p = v.post("/pay/confirm", &[("csrf", &csrf), ("form_key", &key)]).await;
        assert_eq!(p.status, 409);
        assert!(p.body.contains("You paid $84.10 by phone 3 minutes ago. Pay again?"), "{}", p.body);
        let (_, list) = app.get(&format!("/api/v1/accounts/{account}/payments")).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 1, "nothing paid yet");
        let confirm_key = hidden(&p.body, "form_key");
        assert_eq!(confirm_key, key, "the confirmation resends the same form key");
        let p = v
            .post("/pay/confirm", &[("csrf", &csrf), ("form_key", &key), ("confirm_duplicate", "yes")])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let (_, list) = app.get(&format!("/api/v1/accounts/{account}/payments")).await;
        assert_eq!(list["data"].as_array().unwrap().len(), 2);
    }

    async fn no_page_receipt_or_stored_session_shows_more_than_the_last_four(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        start_payment(&mut v, &account, Some("40.00")).await;
        // A field error does not send the number back either.
        let mut bad = card_form(CARD);
        bad[4] = ("cvc", "1");
        let p = v.submit("/pay/method", "/pay/method", &bad).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("security code"), "{}", p.body);
        assert!(!p.body.contains(CARD));
        let p = v.submit("/pay/method", "/pay/method", &card_form(CARD)).await;
        assert_eq!(p.status, 303);
        // Between the method and the pay button the digits are sealed, not readable.
        let sessions = session_rows(&app).await;
        assert!(sessions.iter().any(|(_, sealed)| sealed.is_some()), "{sessions:?}");
        for (data, sealed) in &sessions {
            assert!(!data.contains(CARD) && !data.contains("4242424242"), "{data}");
            assert!(!sealed.as_deref().unwrap_or("").contains(CARD));
        }
        let review = v.get("/pay/review").await;
        let mut pages = vec![review.body.clone()];
        let csrf = hidden(&review.body, "csrf");
        let key = hidden(&review.body, "form_key");
        let done = v.post("/pay/confirm", &[("csrf", &csrf), ("form_key", &key)]).await;
        let done_path = done.location.clone().unwrap();
        let payment_id = done_path.rsplit('/').next().unwrap().to_string();
        let sessions = session_rows(&app).await;
        assert!(sessions.iter().all(|(_, sealed)| sealed.is_none()), "the digits are destroyed once paid");

        // A bank payment in the same session.
        start_payment(&mut v, &account, Some("44.10")).await;
        let p = v
            .submit(
                "/pay/method",
                "/pay/method",
                &[("method", "ach"), ("holder_name", "Pat Payer"), ("routing_number", "110000000"),
                  ("bank_account_number", BANK_ACCOUNT), ("account_type", "checking")],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let review = v.get("/pay/review").await;
        assert!(review.body.contains("checking account ending in 6789"));
        pages.push(review.body.clone());
        let csrf = hidden(&review.body, "csrf");
        let key = hidden(&review.body, "form_key");
        let bank_done = v.post("/pay/confirm", &[("csrf", &csrf), ("form_key", &key)]).await;
        let bank_path = bank_done.location.clone().unwrap();
        let bank_id = bank_path.rsplit('/').next().unwrap().to_string();

        let confirmation = v.get(&done_path).await;
        assert!(confirmation.body.contains("Visa ending in 4242"));
        pages.push(confirmation.body);
        pages.push(v.get(&bank_path).await.body);
        for id in [&payment_id, &bank_id] {
            let receipt = v.get(&format!("/receipts/{id}")).await;
            assert_eq!(receipt.status, 200);
            pages.push(receipt.body);
            let pdf = v.get(&format!("/receipts/{id}/pdf")).await;
            assert_eq!(pdf.status, 200);
            assert!(pdf.bytes.starts_with(b"%PDF-"), "a PDF");
            pages.push(String::from_utf8_lossy(&pdf.bytes).into_owned());
        }
        let receipt_pdf = String::from_utf8_lossy(&v.get(&format!("/receipts/{payment_id}/pdf")).await.bytes).into_owned();
        assert!(receipt_pdf.contains("Visa ending in 4242"), "the PDF says how it was paid");
        for page in &pages {
            assert!(!page.contains(CARD), "a full card number on a page");
            assert!(!page.contains(BANK_ACCOUNT) && !page.contains("0123456789"), "a bank account number on a page");
            assert!(!page.contains("424242424"), "more than the last four");
        }
        // Receipts are this session's only: another browser gets nothing.
        let mut stranger = Visitor::new(&app);
        assert_eq!(stranger.get(&format!("/receipts/{payment_id}")).await.status, 404);
        assert_eq!(stranger.get(&format!("/receipts/{payment_id}/pdf")).await.status, 404);
        assert_eq!(stranger.get(&done_path).await.status, 404);
        app.assert_verified().await;
    }

    async fn pages_send_a_strict_content_security_policy_and_no_script(app) {
        let mut v = Visitor::new(&app);
        let resp = http().build().unwrap().get(format!("{}/pay", app.base)).send().await.unwrap();
        let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("default-src 'none'") && csp.contains("style-src 'self'") && csp.contains("form-action 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(resp.headers()["x-frame-options"], "DENY");
        assert_eq!(resp.headers()["cache-control"], "no-store");
        for path in ["/", "/pay"] {
            let p = v.get(path).await;
            assert!(!p.body.contains("<script"), "{path}");
            assert!(!p.body.contains("style=\""), "{path}: an inline style the CSP would block");
        }
        // The demo mailbox exists only when configured (serve --demo).
        assert_eq!(v.get("/demo/mailbox").await.status, 404);
        let css = v.get("/assets/theme.css").await;
        assert!(css.body.contains("--brand: #0b5394"), "{}", css.body);
    }
}

/// Every portal session's readable state and sealed blob.
async fn session_rows(app: &TestApp) -> Vec<(String, Option<String>)> {
    let mut c = app.app.store.read_conn().await.unwrap();
    let rows: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT data_json, sealed_ciphertext FROM portal_sessions")
            .fetch_all(&mut *c)
            .await
            .unwrap();
    assert!(!rows.is_empty());
    rows
}

const PASSWORD: &str = "otter lamp river 42";

/// The payload of the newest `kind` email to `email` in the outbox. Some emails are made
/// after the answer (a reset link, so the answer's time says nothing about the address): it
/// waits up to 5 seconds for one.
async fn latest_email(app: &TestApp, kind: &str, email: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let mut c = app.app.store.read_conn().await.unwrap();
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT payload_json FROM outbox WHERE kind = $1 AND recipient = $2 \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(kind)
        .bind(email)
        .fetch_optional(&mut *c)
        .await
        .unwrap();
        drop(c);
        match row {
            Some((payload,)) => return serde_json::from_str(&payload).unwrap(),
            None if started.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None => panic!("no {kind} email to {email}"),
        }
    }
}

/// The newest sign-in code emailed to `email`.
async fn latest_code(app: &TestApp, email: &str) -> String {
    latest_email(app, "email.signin_code", email).await["code"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn enrol(app: &TestApp, v: &mut Visitor, account: &str) -> Page {
    v.submit(
        "/enrol",
        "/enrol",
        &[
            ("account_number", account),
            ("postal_code", "10001"),
            ("email", "Pat@Example.com"),
            ("password", PASSWORD),
            ("password_confirm", PASSWORD),
        ],
    )
    .await;
    let code = latest_code(app, "pat@example.com").await;
    v.submit("/signin/code", "/signin/code", &[("code", &code)])
        .await
}

async fn sign_in(app: &TestApp, v: &mut Visitor) -> Page {
    let p = v
        .submit(
            "/signin",
            "/signin",
            &[("email", "pat@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(p.location.as_deref(), Some("/signin/code"), "{}", p.body);
    let code = latest_code(app, "pat@example.com").await;
    v.submit("/signin/code", "/signin/code", &[("code", &code)])
        .await
}

both_engines! {
    async fn signing_in_takes_the_password_and_an_emailed_code_under_a_new_session_id(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        let p = enrol(&app, &mut v, &account).await;
        assert_eq!(p.location.as_deref(), Some("/account"), "{}", p.body);
        let p = v.get("/account").await;
        assert!(p.body.contains("Signed in as pat@example.com"), "{}", p.body);
        // The password is kept only as argon2id.
        let mut c = app.app.store.read_conn().await.unwrap();
        let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM portal_customers")
            .fetch_one(&mut *c).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{hash}");
        assert!(!hash.contains(PASSWORD));
        drop(c);

        let csrf = hidden(&v.get("/account").await.body, "csrf");
        v.post("/signout", &[("csrf", &csrf)]).await;
        assert_eq!(v.get("/account").await.location.as_deref(), Some("/signin"));

        // Password right, code not yet: not signed in, and the session id changes only
        // after the code.
        let p = v
            .submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)])
            .await;
        assert_eq!(p.location.as_deref(), Some("/signin/code"));
        let before = v.cookie.clone().unwrap();
        assert_eq!(v.get("/account").await.location.as_deref(), Some("/signin"));
        let code = latest_code(&app, "pat@example.com").await;
        let p = v.submit("/signin/code", "/signin/code", &[("code", &code)]).await;
        assert_eq!(p.location.as_deref(), Some("/account"));
        assert_ne!(v.cookie.as_deref(), Some(before.as_str()), "new session id at sign-in");
        let mut old = Visitor::new(&app);
        old.cookie = Some(before);
        assert_eq!(old.get("/account").await.location.as_deref(), Some("/signin"));
        // The used code is no longer readable in its email's outbox row, and works no more.
        assert_ne!(latest_code(&app, "pat@example.com").await, code);
        let mut again = Visitor::new(&app);
        again
            .submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)])
            .await;
        let p = again.submit("/signin/code", "/signin/code", &[("code", &code)]).await;
        assert_eq!(p.status, 422, "an old code does not sign in");
    }

    async fn a_wrong_password_and_an_unknown_email_get_the_same_answer(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        enrol(&app, &mut v, &account).await;
        let mut w = Visitor::new(&app);
        let wrong = w
            .submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", "not the password at all")])
            .await;
        let unknown = w
            .submit("/signin", "/signin", &[("email", "nobody@example.com"), ("password", "not the password at all")])
            .await;
        assert_eq!(wrong.status, 422);
        assert_eq!(unknown.status, 422);
        assert_eq!(
            without_tokens(&wrong.body).replace("pat@example.com", "E"),
            without_tokens(&unknown.body).replace("nobody@example.com", "E"),
        );
        assert!(wrong.body.contains("The email address or password is not right."));
        // Ten wrong passwords in a row lock the sign-in, even with the right one.
        for _ in 0..9 {
            w.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", "still not it at all")]).await;
        }
        let p = w
            .submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)])
            .await;
        assert_eq!(p.status, 429, "{}", p.body);
        app.clock.advance(jiff::SignedDuration::from_mins(16));
        let p = w
            .submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)])
            .await;
        assert_eq!(p.location.as_deref(), Some("/signin/code"), "unlocked after 15 minutes");
    }

    async fn a_code_takes_five_wrong_tries_and_ten_minutes_at_most(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        enrol(&app, &mut v, &account).await;
        let mut w = Visitor::new(&app);
        w.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
        let code = latest_code(&app, "pat@example.com").await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        for _ in 0..5 {
            let p = w.submit("/signin/code", "/signin/code", &[("code", wrong)]).await;
            assert_eq!(p.status, 422);
            assert!(p.body.contains("not right"), "{}", p.body);
        }
        let p = w.submit("/signin/code", "/signin/code", &[("code", &code)]).await;
        assert_eq!(p.status, 422, "the right code after five wrong ones");
        assert!(p.body.contains("Too many wrong codes"), "{}", p.body);
        // A new code works; one ten minutes old does not.
        let csrf = hidden(&w.get("/signin/code").await.body, "csrf");
        let p = w.post("/signin/code/resend", &[("csrf", &csrf)]).await;
        assert_eq!(p.location.as_deref(), Some("/signin/code"));
        let fresh = latest_code(&app, "pat@example.com").await;
        app.clock.advance(jiff::SignedDuration::from_mins(11));
        let p = w.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(p.location.as_deref(), Some("/signin/code"));
        let newest = latest_code(&app, "pat@example.com").await;
        assert_ne!(fresh, newest);
        let p = w.submit("/signin/code", "/signin/code", &[("code", &newest)]).await;
        assert_eq!(p.location.as_deref(), Some("/account"));
    }

    async fn signing_out_everywhere_ends_every_session_of_the_customer(app) {
        let account = app.account_with_bill(8410).await;
        let mut phone = Visitor::new(&app);
        enrol(&app, &mut phone, &account).await;
        let mut laptop = Visitor::new(&app);
        let p = sign_in(&app, &mut laptop).await;
        assert_eq!(p.location.as_deref(), Some("/account"));
        assert_eq!(phone.get("/account").await.status, 200);
        let csrf = hidden(&laptop.get("/account").await.body, "csrf");
        // Looking up another account from a signed-in session leaves the sign-in behind.
        let other = app.account_with_bill(100).await;
        let mut third = Visitor::new(&app);
        sign_in(&app, &mut third).await;
        let p = third
            .submit("/pay", "/pay", &[("account_number", &other), ("postal_code", "10001")])
            .await;
        assert_eq!(p.location.as_deref(), Some("/pay/amount"));
        assert_eq!(third.get("/account").await.location.as_deref(), Some("/signin"));
        let p = laptop.post("/signout/everywhere", &[("csrf", &csrf)]).await;
        assert_eq!(p.location.as_deref(), Some("/"));
        assert_eq!(phone.get("/account").await.location.as_deref(), Some("/signin"));
        assert_eq!(laptop.get("/account").await.location.as_deref(), Some("/signin"));
    }

    async fn enrolment_needs_the_email_on_file_and_a_strong_password(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        let form = |email: &'static str, zip: &'static str, pw: &'static str| {
            vec![("account_number", account.clone()), ("postal_code", zip.to_string()),
                 ("email", email.to_string()), ("password", pw.to_string()), ("password_confirm", pw.to_string())]
        };
        let send = |f: Vec<(&'static str, String)>| f;
        let other_email = send(form("someone@example.com", "10001", PASSWORD));
        let wrong_zip = send(form("pat@example.com", "10002", PASSWORD));
        let common = send(form("pat@example.com", "10001", "Password1234!"));
        let mut bodies = Vec::new();
        for f in [other_email, wrong_zip, common] {
            let f: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let p = v.submit("/enrol", "/enrol", &f).await;
            assert_eq!(p.status, 422);
            assert!(!p.body.contains(PASSWORD) && !p.body.contains("Password1234!"), "a password sent back");
            bodies.push(p.body);
        }
        assert!(bodies[0].contains("could not match these details"));
        assert!(bodies[1].contains("could not match these details"));
        assert!(bodies[2].contains("lists attackers try first"));
        let mut c = app.app.store.read_conn().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM portal_customers").fetch_one(&mut *c).await.unwrap();
        assert_eq!(n, 0);
    }
}

both_engines! {
    async fn saved_methods_and_autopay_act_only_on_the_signed_in_account(app) {
        let account = app.account_with_bill(8410).await;
        // Another account's saved card: its id must be useless here.
        let other = app.account_with_bill(100).await;
        let (s, theirs) = app
            .post(&format!("/api/v1/accounts/{other}/payment_methods"),
                  serde_json::json!({"type": "card", "number": "4000056655665556", "exp_month": 12, "exp_year": 2034}))
            .await;
        assert_eq!(s, 201, "{theirs}");
        let theirs = theirs["id"].as_str().unwrap().to_string();

        let mut v = Visitor::new(&app);
        // Signed out: the pages send the visitor to sign in.
        assert_eq!(v.get("/account/methods").await.location.as_deref(), Some("/signin"));
        assert_eq!(v.get("/account/autopay").await.location.as_deref(), Some("/signin"));
        enrol(&app, &mut v, &account).await;
        let p = v
            .submit("/account/methods", "/account/methods",
                    &[("card_number", CARD), ("exp_month", "12"), ("exp_year", "34"), ("postal_code", "10001"), ("make_default", "yes")])
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Saved Visa ending in 4242"), "{}", p.body);
        assert!(!p.body.contains(CARD));
        let csrf = hidden(&p.body, "csrf");
        for action in ["remove", "default"] {
            let p = v.post(&format!("/account/methods/{theirs}/{action}"), &[("csrf", &csrf)]).await;
            assert_eq!(p.status, 404, "{action} another account's method");
        }
        let p = v
            .post("/account/autopay/review", &[("csrf", &csrf), ("method", &theirs), ("timing", "due_date")])
            .await;
        assert_eq!(p.status, 422, "AutoPay from another account's method");
        assert!(p.body.contains("No such saved payment method"), "{}", p.body);
        let (_, methods) = app.get(&format!("/api/v1/accounts/{other}/payment_methods")).await;
        assert_eq!(methods["data"].as_array().unwrap().len(), 1, "untouched");
        // Nor can another account's scheduled payment be canceled from here.
        let today = billpay_services::Clock::now(app.clock.as_ref())
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let start = (today + jiff::Span::new().days(3)).to_string();
        let (s, sched) = app
            .post(&format!("/api/v1/accounts/{other}/scheduled_payments"),
                  serde_json::json!({"payment_method": theirs, "amount": 100, "start_date": start}))
            .await;
        assert_eq!(s, 201, "{sched}");
        let sched_id = sched["id"].as_str().unwrap();
        let p = v.post(&format!("/account/scheduled/{sched_id}/cancel"), &[("csrf", &csrf)]).await;
        assert_eq!(p.status, 404);
        let (_, list) = app.get(&format!("/api/v1/accounts/{other}/scheduled_payments")).await;
        assert_eq!(list["data"][0]["status"], "active", "{list}");

        // AutoPay from our own card, accepted: the stored authorization is the text shown.
        let (_, mine) = app.get(&format!("/api/v1/accounts/{account}/payment_methods")).await;
        let mine = mine["data"][0]["id"].as_str().unwrap().to_string();
        let review = v
            .post("/account/autopay/review", &[("csrf", &csrf), ("method", &mine), ("timing", "due_date"), ("maximum", "150.00")])
            .await;
        assert_eq!(review.status, 200, "{}", review.body);
        let start = review.body.find("id=\"terms\">").unwrap() + "id=\"terms\">".len();
        let shown = review.body[start..].split("</p>").next().unwrap().to_string();
        let p = v
            .post("/account/autopay", &[("csrf", &csrf), ("method", &mine), ("timing", "due_date"), ("maximum", "150.00")])
            .await;
        assert_eq!(p.status, 422, "not accepted");
        let p = v
            .post("/account/autopay", &[("csrf", &csrf), ("method", &mine), ("timing", "due_date"), ("maximum", "150.00"), ("accept", "yes")])
            .await;
        assert_eq!(p.location.as_deref(), Some("/account/autopay"), "{}", p.body);
        let (_, autopay) = app.get(&format!("/api/v1/accounts/{account}/autopay")).await;
        assert_eq!(autopay["status"], "active");
        assert_eq!(autopay["maximum"], 15000, "{autopay}");
        assert_eq!(autopay["authorization_text"].as_str().unwrap(), shown, "{autopay}");
        app.assert_emails_render(&["email.autopay_enrolled", "email.portal_enrolled", "email.signin_code"]).await;
        // Pay now from the saved card; another account's card is not on offer.
        let p = v.submit("/pay/amount", "/pay/amount", &[("choice", "full")]).await;
        assert_eq!(p.location.as_deref(), Some("/pay/method"));
        let page = v.get("/pay/method").await;
        assert!(page.body.contains("Saved: Visa ending in 4242"), "{}", page.body);
        assert!(!page.body.contains(&theirs));
        let theirs_value = format!("saved:{theirs}");
        let p = v.post("/pay/method", &[("csrf", &csrf), ("method", &theirs_value)]).await;
        assert_eq!(p.status, 422, "another account's saved card");
        let mine_value = format!("saved:{mine}");
        let p = v.post("/pay/method", &[("csrf", &csrf), ("method", &mine_value)]).await;
        assert_eq!(p.location.as_deref(), Some("/pay/review"), "{}", p.body);
        let review = v.get("/pay/review").await;
        assert!(review.body.contains("Visa ending in 4242"));
        let key = hidden(&review.body, "form_key");
        let p = v.post("/pay/confirm", &[("csrf", &csrf), ("form_key", &key)]).await;
        assert!(p.location.as_deref().unwrap().starts_with("/pay/done/"), "{}", p.body);
        assert_eq!(app.balance(&account).await, 0);

        // A saved bank account is paid from with its debit authorization on the review page.
        let (s, bank) = app
            .post(&format!("/api/v1/accounts/{account}/payment_methods"),
                  serde_json::json!({"type": "ach", "routing_number": "110000000", "account_number": "000123456789",
                                     "account_type": "checking", "holder_name": "Pat Payer"}))
            .await;
        assert_eq!(s, 201, "{bank}");
        let bank_value = format!("saved:{}", bank["id"].as_str().unwrap());
        let p = v.submit("/pay/amount", "/pay/amount", &[("choice", "other"), ("amount", "10.00")]).await;
        assert_eq!(p.location.as_deref(), Some("/pay/method"));
        let p = v.post("/pay/method", &[("csrf", &csrf), ("method", &bank_value)]).await;
        assert_eq!(p.location.as_deref(), Some("/pay/review"), "{}", p.body);
        let review = v.get("/pay/review").await;
        assert!(review.body.contains("checking account ending in 6789") && review.body.contains("you authorize"), "{}", review.body);
        assert!(!review.body.contains("000123456789"));

        let p = v.post("/account/autopay/cancel", &[("csrf", &csrf)]).await;
        assert_eq!(p.location.as_deref(), Some("/account/autopay"));
        let (_, autopay) = app.get(&format!("/api/v1/accounts/{account}/autopay")).await;
        assert_ne!(autopay["status"], "active", "{autopay}");
    }
}

async fn app_with_public_url(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.public_url = Some("https://pay.riverbend.example".into());
    })
    .await
}

/// The newest reset link emailed to `email`, as a path.
/// The newest reset link emailed to `email`, as a path.
async fn latest_reset_path(app: &TestApp, email: &str) -> String {
    latest_email(app, "email.password_reset", email).await["url"]
        .as_str()
        .unwrap()
        .trim_start_matches("https://pay.riverbend.example")
        .to_string()
}

both_engines! {
    with app_with_public_url;

    async fn a_reset_link_changes_the_password_once_and_signs_out_everywhere(app) {
        let account = app.account_with_bill(8410).await;
        let mut phone = Visitor::new(&app);
        enrol(&app, &mut phone, &account).await;
        assert_eq!(phone.get("/account").await.status, 200);
        let mut v = Visitor::new(&app);
        let known = v.submit("/reset", "/reset", &[("email", "pat@example.com")]).await;
        let unknown = v.submit("/reset", "/reset", &[("email", "nobody@example.com")]).await;
        assert_eq!(known.status, 200);
        assert_eq!(without_tokens(&known.body), without_tokens(&unknown.body), "the same answer");
        let path = latest_reset_path(&app, "pat@example.com").await;
        assert!(path.starts_with("/reset/rst_"), "{path}");
        // A link with a wrong token does not work.
        let forged = format!("{}0", &path[..path.len() - 1]);
        let forged = if forged == path { format!("{}1", &path[..path.len() - 1]) } else { forged };
        assert_eq!(v.get(&forged).await.status, 404);
        assert_eq!(v.get(&path).await.status, 200);
        let p = v.submit(&path, &path, &[("password", "Password1234!"), ("password_confirm", "Password1234!")]).await;
        assert_eq!(p.status, 422, "a common password");
        let new = "teapot meadow lantern 7";
        let p = v.submit(&path, &path, &[("password", new), ("password_confirm", new)]).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Your password is changed"));
        // Every session of the customer ended; the link is used up and no longer readable.
        assert_eq!(phone.get("/account").await.location.as_deref(), Some("/signin"));
        assert_eq!(v.get(&path).await.status, 404);
        let mut c = app.app.store.read_conn().await.unwrap();
        let (payload,): (String,) = sqlx::query_as("SELECT payload_json FROM outbox WHERE kind = 'email.password_reset'")
            .fetch_one(&mut *c).await.unwrap();
        assert!(!payload.contains(&path), "{payload}");
        drop(c);
        // The old password no longer signs in; the new one does.
        let mut w = Visitor::new(&app);
        let p = w.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(p.status, 422);
        let p = w.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", new)]).await;
        assert_eq!(p.location.as_deref(), Some("/signin/code"));
        app.assert_emails_render(&["email.password_reset"]).await;
    }
}

both_engines! {
    async fn without_a_public_url_no_reset_link_is_built_from_the_host_header(app) {
        let mut v = Visitor::new(&app);
        let p = v.get("/reset").await;
        let csrf = hidden(&p.body, "csrf");
        let req = v
            .client
            .post(format!("{}/reset", v.base))
            .header("host", "attacker.example")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string([("csrf", csrf.as_str()), ("email", "pat@example.com")]).unwrap());
        let p = v.send(req).await;
        assert_eq!(p.status, 503, "{}", p.body);
        let mut c = app.app.store.read_conn().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = 'email.password_reset'")
            .fetch_one(&mut *c).await.unwrap();
        assert_eq!(n, 0);
    }
}

both_engines! {
    async fn a_customer_asks_for_a_payment_arrangement_within_the_rules(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        enrol(&app, &mut v, &account).await;
        let today = billpay_services::Clock::now(app.clock.as_ref())
            .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
            .date();
        let in_a_week = (today + jiff::Span::new().days(7)).to_string();
        // Nothing is past due yet: refused, in plain words.
        let p = v
            .submit("/account/arrangement", "/account/arrangement",
                    &[("kind", "installments"), ("count", "3"), ("date", &in_a_week)])
            .await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(p.body.contains("There is no past-due amount to arrange."), "{}", p.body);
        // Three weeks on, the bill is past due (sign in again: the session timed out).
        app.clock.advance(jiff::SignedDuration::from_hours(24 * 21));
        let mut v = Visitor::new(&app);
        sign_in(&app, &mut v).await;
        let today = billpay_services::Clock::now(app.clock.as_ref())
            .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
            .date();
        let in_a_week = (today + jiff::Span::new().days(7)).to_string();
        let p = v
            .submit("/account/arrangement", "/account/arrangement",
                    &[("kind", "installments"), ("count", "3"), ("date", &in_a_week)])
            .await;
        assert_eq!(p.location.as_deref(), Some("/account/arrangement"), "{}", p.body);
        let page = v.get("/account/arrangement").await;
        assert!(page.body.contains("Your payment arrangement is in place"), "{}", page.body);
        assert!(page.body.contains("$28.04") && page.body.contains("$28.03"), "installments sum to $84.10: {}", page.body);
        let dash = v.get("/account").await;
        assert!(dash.body.contains("$84.10 past due in 3 payments"), "{}", dash.body);
        // One at a time: the page now shows it, and the service refuses a second.
        assert!(!page.body.contains("Ask for this arrangement"));
        let csrf = hidden(&page.body, "csrf");
        let p = v
            .post("/account/arrangement", &[("csrf", &csrf), ("kind", "extension"), ("date", &in_a_week)])
            .await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("This account already has a payment arrangement."), "{}", p.body);
    }
}

both_engines! {
    async fn security_questions_stand_in_for_the_code_case_and_spaces_ignored(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        enrol(&app, &mut v, &account).await;
        let p = v
            .submit("/account/security", "/account/security",
                    &[("question_1", "0"), ("answer_1", "Rex"), ("question_2", "0"), ("answer_2", "Ford")])
            .await;
        assert_eq!(p.status, 422, "the same question twice");
        let p = v
            .submit("/account/security", "/account/security",
                    &[("question_1", "0"), ("answer_1", "Rexington"), ("question_2", "2"), ("answer_2", "Ford Model T")])
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("What was the make of your first car?"));
        let mut c = app.app.store.read_conn().await.unwrap();
        let hashes: Vec<(String,)> = sqlx::query_as("SELECT answer_hash FROM portal_security_answers")
            .fetch_all(&mut *c).await.unwrap();
        assert_eq!(hashes.len(), 2);
        for (h,) in &hashes {
            assert!(h.starts_with("$argon2id$") && !h.to_lowercase().contains("rexington") && !h.to_lowercase().contains("fordmodel"), "{h}");
        }
        drop(c);

        let mut w = Visitor::new(&app);
        let p = w.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(p.location.as_deref(), Some("/signin/code"));
        let before = w.cookie.clone();
        let q = w.get("/signin/questions").await;
        assert!(q.body.contains("What was the name of your first pet?"), "{}", q.body);
        let p = w.submit("/signin/questions", "/signin/questions", &[("answer_1", "Rexington"), ("answer_2", "Chevrolet")]).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("do not match"), "{}", p.body);
        assert_eq!(w.get("/account").await.location.as_deref(), Some("/signin"));
        let p = w.submit("/signin/questions", "/signin/questions", &[("answer_1", "  rEXINGTON "), ("answer_2", "fordmodel   t")]).await;
        assert_eq!(p.location.as_deref(), Some("/account"), "{}", p.body);
        assert_ne!(w.cookie, before, "a new session id");
        assert_eq!(w.get("/account").await.status, 200);
        // Without a password first there is nothing to answer.
        let mut stranger = Visitor::new(&app);
        assert_eq!(stranger.get("/signin/questions").await.location.as_deref(), Some("/signin"));
    }
}

/// The text between `start` and `end` in `html`.
fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {html}"))
        + start.len();
    &html[i..i + html[i..].find(end).unwrap()]
}

/// The code an authenticator app holding `key` (as the page shows it) shows now.
fn app_code(app: &TestApp, key: &str) -> String {
    use billpay_services::Clock;
    let secret = billpay_services::totp::secret_from_text(key).expect("the key is base32");
    let now = u64::try_from(app.clock.now_micros() / 1_000_000).unwrap();
    billpay_services::totp::code_at(&secret, now)
}

async fn outbox_count(app: &TestApp, kind: &str) -> i64 {
    let mut c = app.app.store.read_conn().await.unwrap();
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM outbox WHERE kind = $1")
        .bind(kind)
        .fetch_one(&mut *c)
        .await
        .unwrap();
    n
}

/// The newest text message's 6-digit code to `phone`.
async fn latest_texted_code(app: &TestApp, phone: &str) -> String {
    let mut c = app.app.store.read_conn().await.unwrap();
    let (payload,): (String,) = sqlx::query_as(
        "SELECT payload_json FROM outbox WHERE kind = 'sms.signin_code' AND recipient = $1 \
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(phone)
    .fetch_one(&mut *c)
    .await
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&payload).unwrap();
    let text = v["message"].as_str().unwrap();
    let code: String = text
        .split_whitespace()
        .find(|w| {
            w.trim_end_matches('.').len() == 6
                && w.trim_end_matches('.').chars().all(|c| c.is_ascii_digit())
        })
        .unwrap_or_else(|| panic!("no code in {text}"))
        .trim_end_matches('.')
        .to_string();
    code
}

async fn app_with_texts(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| s.portal.demo_mailbox = true).await
}

both_engines! {
    async fn an_authenticator_app_replaces_emailed_codes_and_each_of_its_codes_works_once(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        enrol(&app, &mut v, &account).await;
        let p = v.get("/account/signin-codes").await;
        assert!(p.body.contains("Now it comes from <strong>an email"), "{}", p.body);
        let p = v.submit("/account/signin-codes", "/account/signin-codes/app", &[]).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("<svg role=\"img\" aria-label=\"QR code"), "{}", p.body);
        let key = between(&p.body, "<code class=\"secret-key\">", "</code>").to_string();
        assert_eq!(key.split(' ').count(), 8, "160 bits in groups of four: {key}");

        // The secret is sealed: no column holds it, as text or base32.
        let mut c = app.app.store.read_conn().await.unwrap();
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT state, wrapped_key, ciphertext FROM totp_secrets")
                .fetch_all(&mut *c).await.unwrap();
        drop(c);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].0, "pending");
        let compact = key.replace(' ', "");
        for (_, w, ct) in &rows {
            assert!(!w.contains(&compact) && !ct.contains(&compact) && !ct.contains(&key));
        }

        // A wrong code keeps the same key on the page; the right one turns the app on.
        let p = v.submit("/account/signin-codes", "/account/signin-codes/app", &[]).await;
        let key = between(&p.body, "<code class=\"secret-key\">", "</code>").to_string();
        let wrong = if app_code(&app, &key) == "000000" { "111111" } else { "000000" };
        let p = v.submit("/account/signin-codes", "/account/signin-codes/app/confirm", &[("code", wrong)]).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("That code is not right"), "{}", p.body);
        assert!(p.body.contains(&key), "the same key again");
        let code = app_code(&app, &key);
        let p = v.submit("/account/signin-codes", "/account/signin-codes/app/confirm", &[("code", &code)]).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Your authenticator app is set up"), "{}", p.body);
        assert!(p.body.contains("Now it comes from <strong>your authenticator app"), "{}", p.body);
        assert_eq!(outbox_count(&app, "email.signin_method_changed").await, 1);

        // Signing in now asks for the app's code; nothing is emailed.
        let csrf = hidden(&v.get("/account").await.body, "csrf");
        v.post("/signout", &[("csrf", &csrf)]).await;
        let emailed = outbox_count(&app, "email.signin_code").await;
        let mut w = Visitor::new(&app);
        let p = w.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(p.location.as_deref(), Some("/signin/code"));
        assert_eq!(outbox_count(&app, "email.signin_code").await, emailed);
        let page = w.get("/signin/code").await;
        assert!(page.body.contains("Open your authenticator app"), "{}", page.body);
        assert!(!page.body.contains("Send a new code"), "{}", page.body);
        // The code that turned the app on was used in this 30 seconds: it does not work again.
        let p = w.submit("/signin/code", "/signin/code", &[("code", &code)]).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("already used"), "{}", p.body);
        app.clock.advance(jiff::SignedDuration::from_secs(30));
        let fresh = app_code(&app, &key);
        let p = w.submit("/signin/code", "/signin/code", &[("code", &fresh)]).await;
        assert_eq!(p.location.as_deref(), Some("/account"), "{}", p.body);
        // ...and that one works once, even for another browser.
        let mut x = Visitor::new(&app);
        x.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
        let p = x.submit("/signin/code", "/signin/code", &[("code", &fresh)]).await;
        assert_eq!(p.status, 422);
        // An emailed code does not stand in for the app.
        x.submit("/signin/code", "/signin/code/resend", &[]).await;
        assert_eq!(outbox_count(&app, "email.signin_code").await, emailed);

        // Back to emailed codes takes the password; the app's secret is deleted.
        let p = w.submit("/account/signin-codes", "/account/signin-codes/email", &[("password", "not my password")]).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("not your current password"), "{}", p.body);
        let p = w.submit("/account/signin-codes", "/account/signin-codes/email", &[("password", PASSWORD)]).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Sign-in codes now come by email"), "{}", p.body);
        let mut c = app.app.store.read_conn().await.unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM totp_secrets").fetch_one(&mut *c).await.unwrap();
        assert_eq!(n, 0);
        let (audits,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM audit_log WHERE action = 'portal.signin_method'")
            .fetch_one(&mut *c).await.unwrap();
        assert_eq!(audits, 2);
        drop(c);
        let mut y = Visitor::new(&app);
        let p = sign_in(&app, &mut y).await;
        assert_eq!(p.location.as_deref(), Some("/account"), "{}", p.body);
    }

    async fn wrong_app_codes_lock_the_sign_in_like_wrong_passwords(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        enrol(&app, &mut v, &account).await;
        let p = v.submit("/account/signin-codes", "/account/signin-codes/app", &[]).await;
        let key = between(&p.body, "<code class=\"secret-key\">", "</code>").to_string();
        let code = app_code(&app, &key);
        v.submit("/account/signin-codes", "/account/signin-codes/app/confirm", &[("code", &code)]).await;
        app.clock.advance(jiff::SignedDuration::from_secs(60));
        let mut w = Visitor::new(&app);
        w.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
        let right = app_code(&app, &key);
        let wrong = if right == "123456" { "654321" } else { "123456" };
        for _ in 0..10 {
            let p = w.submit("/signin/code", "/signin/code", &[("code", wrong)]).await;
            assert_eq!(p.status, 422);
        }
        let p = w.submit("/signin/code", "/signin/code", &[("code", &right)]).await;
        assert_eq!(p.status, 422, "locked, even with the right code");
        assert!(p.body.contains("Sign-in is paused"), "{}", p.body);
        assert_eq!(w.get("/account").await.location.as_deref(), Some("/signin"));
    }
}

both_engines! {
    with app_with_texts;

    async fn texted_sign_in_codes_go_to_a_number_proven_with_a_code(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        enrol(&app, &mut v, &account).await;
        let p = v.submit("/account/signin-codes", "/account/signin-codes/text", &[("phone", "555-0134")]).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("Enter a mobile number that can receive texts"), "{}", p.body);
        let p = v.submit("/account/signin-codes", "/account/signin-codes/text", &[("phone", "(555) 201-0134")]).await;
        assert_eq!(p.location.as_deref(), Some("/account/signin-codes/text/confirm"), "{}", p.body);
        let confirm = v.get("/account/signin-codes/text/confirm").await;
        assert!(confirm.body.contains("your phone ending in 34"), "{}", confirm.body);
        assert!(!confirm.body.contains("5552010134"), "the number is not repeated in full");
        let code = latest_texted_code(&app, "+15552010134").await;
        let p = v.submit("/account/signin-codes/text/confirm", "/account/signin-codes/text/confirm", &[("code", "000000")]).await;
        if code != "000000" {
            assert_eq!(p.status, 422);
            assert!(p.body.contains("not right"), "{}", p.body);
        }
        let p = v.submit("/account/signin-codes/text/confirm", "/account/signin-codes/text/confirm", &[("code", &code)]).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Sign-in codes now come by text message"), "{}", p.body);

        // The next sign-in's code is texted, not emailed.
        let emailed = outbox_count(&app, "email.signin_code").await;
        let mut w = Visitor::new(&app);
        let p = w.submit("/signin", "/signin", &[("email", "pat@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(p.location.as_deref(), Some("/signin/code"));
        assert_eq!(outbox_count(&app, "email.signin_code").await, emailed);
        let page = w.get("/signin/code").await;
        assert!(page.body.contains("We texted a 6-digit code to your phone ending in 34"), "{}", page.body);
        let code = latest_texted_code(&app, "+15552010134").await;
        let p = w.submit("/signin/code", "/signin/code", &[("code", &code)]).await;
        assert_eq!(p.location.as_deref(), Some("/account"), "{}", p.body);
        // Once used, the text's stored copy no longer holds the code.
        let mut c = app.app.store.read_conn().await.unwrap();
        let payloads: Vec<(String,)> = sqlx::query_as("SELECT payload_json FROM outbox WHERE kind = 'sms.signin_code'")
            .fetch_all(&mut *c).await.unwrap();
        drop(c);
        assert!(payloads.iter().all(|(p,)| !p.contains(&code)), "{payloads:?}");
        // No provider took them here; a used code's text is not sent late.
        let mut c = app.app.store.read_conn().await.unwrap();
        let states: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT status, last_error FROM outbox WHERE kind = 'sms.signin_code'")
                .fetch_all(&mut *c).await.unwrap();
        drop(c);
        assert!(states.iter().all(|(s, e)| s == "failed" && e.as_deref().is_some_and(|e| e.starts_with("not sent"))), "{states:?}");
        // The demo mailbox shows texts too.
        let mailbox = w.get("/demo/mailbox").await;
        assert!(mailbox.body.contains("Text message") && mailbox.body.contains("+15552010134"), "{}", mailbox.body);
    }
}

both_engines! {
    async fn a_saved_bank_account_pays_a_weekly_schedule_that_can_be_changed_but_not_anyone_elses(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        enrol(&app, &mut v, &account).await;
        // Each bad field is named; the account number is never sent back.
        let p = v
            .submit("/account/methods", "/account/methods/bank",
                    &[("holder_name", ""), ("routing_number", "123456789"), ("bank_account_number", "12"), ("account_type", "")])
            .await;
        assert_eq!(p.status, 422, "{}", p.body);
        for msg in ["Enter the name on the bank account.", "not a valid routing number", "4 to 17 digits", "Choose checking or savings."] {
            assert!(p.body.contains(msg), "{msg}: {}", p.body);
        }
        let p = v
            .submit("/account/methods", "/account/methods/bank",
                    &[("holder_name", "Pat Payer"), ("routing_number", "110000000"), ("bank_account_number", BANK_ACCOUNT), ("account_type", "checking"), ("make_default", "yes")])
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Saved") && p.body.contains("6789"), "{}", p.body);
        assert!(!p.body.contains(BANK_ACCOUNT));
        assert!(p.body.contains("you authorize"), "the debit authorization is shown: {}", p.body);
        let (_, methods) = app.get(&format!("/api/v1/accounts/{account}/payment_methods")).await;
        let bank = methods["data"][0].clone();
        assert_eq!(bank["type"], "ach", "{methods}");
        assert_eq!(bank["is_default"], true, "{methods}");
        let bank_id = bank["id"].as_str().unwrap().to_string();
        let p = v
            .submit("/account/methods", "/account/methods",
                    &[("card_number", CARD), ("exp_month", "12"), ("exp_year", "34"), ("postal_code", "10001")])
            .await;
        assert_eq!(p.status, 200);
        let (_, methods) = app.get(&format!("/api/v1/accounts/{account}/payment_methods")).await;
        let card_id = methods["data"].as_array().unwrap().iter()
            .find(|m| m["type"] == "card").unwrap()["id"].as_str().unwrap().to_string();

        // A weekly payment from the bank account.
        let today = billpay_services::Clock::now(app.clock.as_ref())
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        let start = (today + jiff::Span::new().days(2)).to_string();
        let p = v
            .submit("/account/scheduled", "/account/scheduled",
                    &[("amount", "20.00"), ("date", &start), ("repeat", "weekly"), ("method", &bank_id)])
            .await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("every week, next on"), "{}", p.body);
        let (_, list) = app.get(&format!("/api/v1/accounts/{account}/scheduled_payments")).await;
        assert_eq!(list["data"][0]["frequency"], "weekly", "{list}");
        let id = list["data"][0]["id"].as_str().unwrap().to_string();

        // Changed to $25.50 from the card.
        let edit = v.get(&format!("/account/scheduled/{id}/edit")).await;
        assert_eq!(edit.status, 200, "{}", edit.body);
        assert!(edit.body.contains("value=\"20.00\""), "{}", edit.body);
        let path = format!("/account/scheduled/{id}/edit");
        let p = v.submit(&path, &path, &[("amount", "twenty"), ("method", &card_id)]).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("Enter an amount in dollars and cents"), "{}", p.body);
        let p = v.submit(&path, &path, &[("amount", "25.50"), ("method", &card_id)]).await;
        assert_eq!(p.status, 200, "{}", p.body);
        assert!(p.body.contains("Changed: $25.50 every week"), "{}", p.body);
        let (_, list) = app.get(&format!("/api/v1/accounts/{account}/scheduled_payments")).await;
        assert_eq!(list["data"][0]["amount"], 2550, "{list}");
        assert_eq!(list["data"][0]["payment_method"], card_id.as_str(), "{list}");

        // Another account's schedule can be neither seen nor changed from here.
        let other = app.account_with_bill(100).await;
        let (_, theirs) = app
            .post(&format!("/api/v1/accounts/{other}/payment_methods"),
                  serde_json::json!({"type": "card", "number": "4000056655665556", "exp_month": 12, "exp_year": 2034}))
            .await;
        let (s, sched) = app
            .post(&format!("/api/v1/accounts/{other}/scheduled_payments"),
                  serde_json::json!({"payment_method": theirs["id"], "amount": 100, "start_date": start}))
            .await;
        assert_eq!(s, 201, "{sched}");
        let their_path = format!("/account/scheduled/{}/edit", sched["id"].as_str().unwrap());
        assert_eq!(v.get(&their_path).await.status, 404);
        let csrf = hidden(&v.get("/account/scheduled").await.body, "csrf");
        let p = v.post(&their_path, &[("csrf", &csrf), ("amount", "1.00"), ("method", &card_id)]).await;
        assert_eq!(p.status, 404);
        let (_, list) = app.get(&format!("/api/v1/accounts/{other}/scheduled_payments")).await;
        assert_eq!(list["data"][0]["amount"], 100, "{list}");
    }
}

/// A quick-pay lookup from the address `ip` (as the trusted proxy's header says).
async fn lookup_from(v: &mut Visitor, ip: &str, account: &str) -> Page {
    let page = v.get("/pay").await;
    let csrf = hidden(&page.body, "csrf");
    let form = [
        ("csrf", csrf.as_str()),
        ("account_number", account),
        ("postal_code", "10001"),
    ];
    let req = v
        .client
        .post(format!("{}/pay", v.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-for", format!("10.9.9.9, {ip}"))
        .body(serde_urlencoded::to_string(form).unwrap());
    v.send(req).await
}

async fn app_behind_a_proxy(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.portal.lookups_per_window = 3;
        s.portal.client_ip_header = Some("X-Forwarded-For".into());
    })
    .await
}

async fn app_with_low_limits(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| s.portal.lookups_per_window = 3).await
}

both_engines! {
    with app_behind_a_proxy;

    async fn lookups_are_limited_per_client_address_and_others_are_unaffected(app) {
        let account = app.account_with_bill(8410).await;
        let mut attacker = Visitor::new(&app);
        for i in 0..3 {
            let p = lookup_from(&mut attacker, "203.0.113.5", &format!("99900000{i}")).await;
            assert_ne!(p.status, 429, "try {i}: {}", p.body);
        }
        let p = lookup_from(&mut attacker, "203.0.113.5", &account).await;
        assert_eq!(p.status, 429, "{}", p.body);
        assert!(p.body.contains("too many tries from your connection"), "{}", p.body);
        assert!(p.body.contains("1-800-555-0199"), "{}", p.body);
        // Even a new session from that address is refused...
        let mut again = Visitor::new(&app);
        assert_eq!(lookup_from(&mut again, "203.0.113.5", &account).await.status, 429);
        // ...while a customer at another address pays as usual.
        let mut customer = Visitor::new(&app);
        let p = lookup_from(&mut customer, "198.51.100.7", &account).await;
        assert_eq!(p.location.as_deref(), Some("/pay/amount"), "{}", p.body);
        // The next window lets the first address try again.
        app.clock.advance(jiff::SignedDuration::from_mins(15));
        let p = lookup_from(&mut attacker, "203.0.113.5", &account).await;
        assert_eq!(p.location.as_deref(), Some("/pay/amount"), "{}", p.body);
    }
}

both_engines! {
    with app_with_low_limits;

    async fn without_a_trusted_proxy_header_a_client_cannot_choose_its_address(app) {
        let account = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        for i in 0..3 {
            let p = lookup_from(&mut v, &format!("203.0.113.{i}"), &account).await;
            assert_ne!(p.status, 429, "{}", p.body);
        }
        let p = lookup_from(&mut v, "203.0.113.200", &account).await;
        assert_eq!(p.status, 429, "the header is ignored: every try came from 127.0.0.1");
        let retry: u64 = {
            let req = v.client.get(format!("{}/pay", v.base));
            let _ = v.send(req).await;
            let page = v.get("/pay").await;
            let csrf = hidden(&page.body, "csrf");
            let resp = v.client.post(format!("{}/pay", v.base))
                .header("cookie", format!("billpay_session={}", v.cookie.clone().unwrap()))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string([("csrf", csrf.as_str()), ("account_number", account.as_str()), ("postal_code", "10001")]).unwrap())
                .send().await.unwrap();
            assert_eq!(resp.status().as_u16(), 429);
            resp.headers()["retry-after"].to_str().unwrap().parse().unwrap()
        };
        assert!((1..=900).contains(&retry), "Retry-After {retry}");
    }
}
