//! The agent desk over HTTP: staff sign in with a password and, always, an authenticator code
//! (enrolled at the first sign-in); a customer's chat handed over by the bot reaches the least
//! busy available representative, who sees the conversation so far (card numbers masked) and
//! the account panel, replies, adds notes the customer never sees, and transfers; roles limit
//! fee waivers; every desk action on an account is audited. On SQLite and PostgreSQL.

mod common;

use common::desk::*;
use common::visitor::card_form;
use common::*;

/// The customer pays a pay request: follows its button, enters a card in billpay's form, pays.
async fn pay_in_form(c: &mut Browser, chat: &str, number: &str) -> Page {
    let i = chat
        .rfind("href=\"/chat/pay/")
        .expect("a pay request button")
        + 6;
    let link = chat[i..].split('"').next().unwrap().to_string();
    let p = c.get(&link).await;
    assert_eq!(p.location.as_deref(), Some("/pay/method"), "{}", p.body);
    let p = c
        .submit("/pay/method", "/pay/method", &card_form(number))
        .await;
    assert_eq!(p.location.as_deref(), Some("/pay/review"), "{}", p.body);
    let review = c.get("/pay/review").await;
    assert!(
        review.body.contains("$84.10"),
        "the requested amount: {}",
        review.body
    );
    let csrf = hidden(&review.body, "csrf");
    let key = hidden(&review.body, "form_key");
    c.post("/pay/confirm", &[("csrf", &csrf), ("form_key", &key)])
        .await
}

fn conversation_link(html: &str) -> String {
    let i = html
        .find("href=\"/desk/conversations/")
        .expect("a conversation link")
        + 6;
    html[i..].split('"').next().unwrap().to_string()
}

both_engines! {
    async fn staff_sign_in_needs_password_and_authenticator(app) {
        staff(&app, "ann@example.com", "Ann Agent", billpay_services::staff::Role::Agent).await;
        let mut b = Browser::new(&app);
        let p = b.submit("/desk/signin", "/desk/signin", &[("email", "ann@example.com"), ("password", "wrong password here")]).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("The email or password is not right."));
        let p = b.submit("/desk/signin", "/desk/signin", &[("email", "nobody@example.com"), ("password", PASSWORD)]).await;
        assert!(p.body.contains("The email or password is not right."), "the same answer for an unknown email");
        // A form without the session's token is refused.
        let p = b.post("/desk/signin", &[("email", "ann@example.com"), ("password", PASSWORD)]).await;
        assert_eq!(p.status, 403);
        let (_, secret) = sign_in(&app, "ann@example.com", None).await;
        // The second sign-in asks for the code of the enrolled app; a used code is refused.
        app.clock.advance(jiff::SignedDuration::from_secs(61));
        let (mut b, _) = sign_in(&app, "ann@example.com", Some(secret)).await;
        let csp = http().build().unwrap().get(format!("{}/desk/signin", app.base)).send().await.unwrap();
        let csp = csp.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"), "{csp}");
        let p = b.submit("/desk", "/desk/signout", &[]).await;
        assert_eq!(p.location.as_deref(), Some("/desk/signin"));
        assert_eq!(b.get("/desk").await.location.as_deref(), Some("/desk/signin"));
        let actions = audit_actions(&app).await;
        assert!(actions.iter().filter(|(_, a)| a == "staff.signin").count() == 2, "{actions:?}");
        assert!(actions.iter().any(|(_, a)| a == "staff.signin_failed"), "{actions:?}");
        assert!(actions.iter().any(|(_, a)| a == "staff.code_failed"), "{actions:?}");
    }

    async fn the_bot_hands_over_to_the_least_busy_available_agent(app) {
        use billpay_services::staff::Role;
        staff(&app, "ann@example.com", "Ann Agent", Role::Agent).await;
        staff(&app, "bob@example.com", "Bob Agent", Role::Agent).await;
        let (mut ann, _) = sign_in(&app, "ann@example.com", None).await;
        let (mut bob, _) = sign_in(&app, "bob@example.com", None).await;
        let first = app.account_with_bill(8410).await;
        let (s, p) = app.pay_with(&first, 8410, card("4000000000009995")).await;
        assert_eq!(s, 402, "{p}");
        let mut pat = customer_asking_for_agent(&app, &first).await;
        let page = pat.get("/chat").await.body;
        assert!(page.contains("You are number 1 in line"), "nobody is available yet: {page}");
        // Ann's inbox shows the waiting customer; she becomes available and gets it.
        assert!(ann.get("/desk").await.body.contains("Take Pat Payer"));
        let p = ann.submit("/desk", "/desk/availability", &[("available", "yes")]).await;
        assert_eq!(p.status, 303);
        let inbox = ann.get("/desk").await.body;
        let link = conversation_link(&inbox);
        let page = pat.get("/chat").await.body;
        assert!(page.contains("Ann, a representative, has joined"), "{page}");
        assert!(!page.contains("You are number"), "{page}");
        // The representative sees the conversation so far, masked, and the account panel.
        let view = ann.get(&link).await.body;
        assert!(view.contains("my card ************4242 was declined"), "{view}");
        assert!(!view.contains("4242 4242"), "{view}");
        assert!(view.contains("$84.10"), "balance on the panel: {view}");
        assert!(view.contains("Visa ending in 9995"), "{view}");
        assert!(view.to_lowercase().contains("insufficient funds"), "the decline reason: {view}");
        // Reply, canned reply and an internal note.
        let p = ann.submit(&link, &format!("{link}/reply"), &[("message", "Hi Pat, I see the declined card."), ("canned", "")]).await;
        assert_eq!(p.status, 303, "{}", p.body);
        ann.submit(&link, &format!("{link}/reply"), &[("message", ""), ("canned", "1")]).await;
        ann.submit(&link, &format!("{link}/note"), &[("message", "Customer sounds upset; offered card retry")]).await;
        let page = pat.get("/chat").await.body;
        assert!(page.contains("Hi Pat, I see the declined card."), "{page}");
        assert!(page.contains("Your bank declined the card, so nothing was charged."), "canned: {page}");
        assert!(!page.contains("sounds upset"), "notes are for staff only: {page}");
        pat.submit("/chat", "/chat/say", &[("message", "thanks, trying again 5555 5555 5555 4444")]).await;
        let view = ann.get(&link).await.body;
        assert!(view.contains("thanks, trying again ************4444"), "{view}");
        assert!(view.contains("sounds upset"), "{view}");
        // The bot stays out of a conversation a person has.
        let last = view.rfind("<li class=\"msg").unwrap();
        assert!(view[last..].contains("msg-customer"), "{view}");
        // A second customer goes to Bob once he is available: he has none, Ann has one.
        let second = app.account_with_bill(2000).await;
        bob.submit("/desk", "/desk/availability", &[("available", "yes")]).await;
        let _sam = customer_asking_for_agent(&app, &second).await;
        let bob_inbox = bob.get("/desk").await.body;
        assert!(bob_inbox.contains("My conversations (1)"), "{bob_inbox}");
        // Bob cannot read or answer Ann's conversation; Ann can transfer it to him.
        let p = bob.get(&link).await;
        assert_eq!(p.status, 403);
        let p = ann.submit(&link, &format!("{link}/transfer"), &[("to", "bob@example.com")]).await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert!(bob.get("/desk").await.body.contains("My conversations (2)"));
        assert_eq!(ann.get(&link).await.status, 403, "no longer Ann's");
        let page = pat.get("/chat").await.body;
        assert!(page.contains("You are now talking with Bob"), "{page}");
        let p = bob.submit(&link, &format!("{link}/close"), &[]).await;
        assert_eq!(p.status, 303);
        assert!(pat.get("/chat").await.body.contains("This conversation has ended."));
        let actions: Vec<String> = audit_actions(&app).await.into_iter().map(|(_, a)| a).collect();
        for a in ["desk.available", "chat.assigned", "desk.account_viewed", "chat.reply", "chat.note", "chat.transferred", "chat.closed"] {
            assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
        }
    }
}

both_engines! {
    async fn a_secure_pay_request_shows_the_agent_only_the_result(app) {
        use billpay_services::staff::Role;
        staff(&app, "ann@example.com", "Ann Agent", Role::Agent).await;
        let (mut ann, _) = sign_in(&app, "ann@example.com", None).await;
        ann.submit("/desk", "/desk/availability", &[("available", "yes")]).await;
        let acct = app.account_with_bill(8410).await;
        let mut pat = customer_asking_for_agent(&app, &acct).await;
        let link = conversation_link(&ann.get("/desk").await.body);
        let p = ann.submit(&link, &format!("{link}/payrequest"), &[("amount", "abc")]).await;
        assert_eq!(p.status, 409, "a bad amount is refused: {}", p.body);
        let p = ann.submit(&link, &format!("{link}/payrequest"), &[("amount", "84.10")]).await;
        assert_eq!(p.status, 303, "{}", p.body);
        let chat = pat.get("/chat").await.body;
        assert!(chat.contains("Here is a secure payment form for $84.10"), "{chat}");
        // Another browser cannot open the request.
        let i = chat.rfind("href=\"/chat/pay/").unwrap() + 6;
        let request = chat[i..].split('"').next().unwrap().to_string();
        assert_eq!(Browser::new(&app).get(&request).await.status, 404);
        // A declined card first: the agent sees the reason, the request stays open.
        let p = pay_in_form(&mut pat, &chat, "4000000000009995").await;
        assert_eq!(p.status, 402, "the decline page: {}", p.body);
        let view = ann.get(&link).await.body;
        assert!(view.contains("Secure payment of $84.10 with Visa ending in 9995 was declined"), "{view}");
        let p = pay_in_form(&mut pat, &chat, "4242424242424242").await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(app.balance(&acct).await, 0);
        let view = ann.get(&link).await.body;
        assert!(view.contains("Secure payment of $84.10 with Visa ending in 4242 was approved. Confirmation number"), "{view}");
        for pan in ["4242424242424242", "4000000000009995"] {
            assert!(!view.contains(pan), "{view}");
        }
        assert!(pat.get("/chat").await.body.contains("was approved"), "the customer sees it too");
        // A paid request cannot be paid again.
        assert_eq!(pat.get(&request).await.status, 404);
        let actions: Vec<String> = audit_actions(&app).await.into_iter().map(|(_, a)| a).collect();
        assert!(actions.iter().any(|a| a == "chat.pay_requested"), "{actions:?}");
        app.assert_verified().await;
    }
}

async fn with_late_fees(engine: Engine) -> TestApp {
    spawn_app_with(engine, |s| {
        s.collections.late_fee_cents = 2500;
        s.collections.grace_days = 1;
    })
    .await
}

both_engines! {
    with with_late_fees;

    async fn only_a_supervisor_waives_a_fee_above_the_agent_limit(app) {
        use billpay_services::staff::Role;
        staff(&app, "ann@example.com", "Ann Agent", Role::Agent).await;
        staff(&app, "sue@example.com", "Sue Supervisor", Role::Supervisor).await;
        let (s, a) = app
            .post("/api/v1/accounts", serde_json::json!({"name": "Pat Payer", "email": "pat@example.com", "postal_code": "10001"}))
            .await;
        assert_eq!(s, 201, "{a}");
        let acct = a["account_number"].as_str().unwrap().to_string();
        let today = billpay_services::Clock::now(app.clock.as_ref()).to_zoned(jiff::tz::TimeZone::UTC).date();
        let (s, b) = app
            .post(&format!("/api/v1/accounts/{acct}/statements"), serde_json::json!({
                "statement_date": today.checked_sub(jiff::Span::new().days(30)).unwrap().to_string(),
                "due_date": today.checked_sub(jiff::Span::new().days(5)).unwrap().to_string(),
                "amount_due": 6000}))
            .await;
        assert_eq!(s, 201, "{b}");
        app.app.drain_jobs("test").await.unwrap();
        let (_, charges) = app.get(&format!("/api/v1/accounts/{acct}/charges")).await;
        let fee = charges["data"].as_array().unwrap().iter().find(|c| c["kind"] == "late_fee").expect("a late fee").clone();
        assert_eq!(fee["amount"], 2500);
        let fee_id = fee["id"].as_str().unwrap().to_string();
        let panel = format!("/desk/accounts/{acct}");
        let waive = format!("/desk/accounts/{acct}/fees/{fee_id}/waive");
        let (mut ann, _) = sign_in(&app, "ann@example.com", None).await;
        let page = ann.get(&panel).await.body;
        assert!(page.contains("$85.00"), "balance with the fee: {page}");
        let p = ann.submit(&panel, &waive, &[("reason", "first time"), ("back", &panel)]).await;
        assert_eq!(p.status, 403, "{}", p.body);
        assert!(p.body.contains("Only a supervisor can waive a fee above $10.00."), "{}", p.body);
        assert_eq!(app.balance(&acct).await, 8500, "nothing waived");
        let (mut sue, _) = sign_in(&app, "sue@example.com", None).await;
        let p = sue.submit(&panel, &waive, &[("reason", "first time"), ("back", &panel)]).await;
        assert_eq!(p.location.as_deref(), Some(panel.as_str()), "{}", p.body);
        assert_eq!(app.balance(&acct).await, 6000, "the supervisor's waiver posted");
        assert!(sue.get(&panel).await.body.contains("(waived)"));
        app.assert_verified().await;
        let actions = audit_actions(&app).await;
        assert!(actions.iter().any(|(_, a)| a == "desk.waiver_refused"), "{actions:?}");
        assert!(actions.iter().any(|(_, a)| a == "desk.fee_waived"), "{actions:?}");
        assert!(actions.iter().any(|(_, a)| a == "desk.account_viewed"), "{actions:?}");
    }
}

/// A second `billpay` instance on the same database (its own process state: hub, caches).
async fn second_instance(app: &TestApp) -> String {
    let settings = billpay::config::Settings {
        database_url: app.db.url.clone(),
        keyring_file: Some(app.db.dir.path().join("vault-keyring.toml")),
        ..billpay::config::Settings::default()
    };
    let (b, _) = billpay::build_with_clock(&settings, false, app.clock.clone())
        .await
        .expect("second instance");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = billpay_http::router(b);
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{addr}")
}

/// Reads an event stream until `want` appears (or fails after 10 s).
async fn read_until(resp: &mut reqwest::Response, seen: &mut String, want: &str) {
    while !seen.contains(want) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk())
            .await
            .unwrap_or_else(|_| panic!("{want} did not arrive; got {seen}"))
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// A customer on one instance and a representative on another, both on PostgreSQL, talk in
/// real time: each instance's event stream wakes on the other's messages (LISTEN/NOTIFY).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_postgres_relay_messages() {
    use billpay_services::staff::Role;
    let app = spawn_app(Engine::Postgres).await;
    let other = second_instance(&app).await;
    staff(&app, "ann@example.com", "Ann Agent", Role::Agent).await;
    let acct = app.account_with_bill(8410).await;
    // The customer uses instance A; the representative instance B.
    let mut pat = customer_asking_for_agent(&app, &acct).await;
    let (mut ann, _) = {
        let mut b = Browser::new(&app);
        b.base = other.clone();
        let p = b
            .submit(
                "/desk/signin",
                "/desk/signin",
                &[("email", "ann@example.com"), ("password", PASSWORD)],
            )
            .await;
        assert_eq!(p.location.as_deref(), Some("/desk/signin/code"));
        let page = b.get("/desk/signin/code").await.body;
        let text = page
            .split("<code class=\"secret-key\">")
            .nth(1)
            .unwrap()
            .split('<')
            .next()
            .unwrap();
        let secret = billpay_services::totp::secret_from_text(text).unwrap();
        let code = billpay_services::totp::code_at(&secret, now_secs(&app));
        let p = b
            .submit("/desk/signin/code", "/desk/signin/code", &[("code", &code)])
            .await;
        assert_eq!(p.location.as_deref(), Some("/desk"));
        (b, secret)
    };
    ann.submit("/desk", "/desk/availability", &[("available", "yes")])
        .await;
    let link = conversation_link(&ann.get("/desk").await.body);
    let (state, last_seq): (String, i64) = {
        let mut c = app.app.store.read_conn().await.unwrap();
        sqlx::query_as("SELECT state, last_seq FROM chat_conversations")
            .fetch_one(&mut *c)
            .await
            .unwrap()
    };
    assert_eq!(state, "assigned");
    let cookies = |b: &Browser| {
        b.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    };
    let client = http().build().unwrap();
    // The representative's stream on B, from now on.
    let mut desk_stream = client
        .get(format!("{other}{link}/events?after={last_seq}"))
        .header("cookie", cookies(&ann))
        .send()
        .await
        .unwrap();
    assert_eq!(desk_stream.status(), 200);
    // The customer's stream on A, from now on.
    let mut customer_stream = client
        .get(format!("{}/chat/events?after={last_seq}", app.base))
        .header("cookie", cookies(&pat))
        .send()
        .await
        .unwrap();
    assert_eq!(customer_stream.status(), 200);
    let started = std::time::Instant::now();
    pat.submit(
        "/chat",
        "/chat/say",
        &[("message", "are you there? it is instance A")],
    )
    .await;
    let mut seen_b = String::new();
    read_until(&mut desk_stream, &mut seen_b, "it is instance A").await;
    let p = ann
        .submit(
            &link,
            &format!("{link}/reply"),
            &[
                ("message", "yes, answering from instance B"),
                ("canned", ""),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let mut seen_a = String::new();
    read_until(
        &mut customer_stream,
        &mut seen_a,
        "answering from instance B",
    )
    .await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "real time: {:?}",
        started.elapsed()
    );
    // A reconnect on either side gets what it missed, by number.
    let missed = client
        .get(format!("{other}{link}/events"))
        .header("cookie", cookies(&ann))
        .header("last-event-id", last_seq.to_string())
        .send()
        .await
        .unwrap();
    let mut missed = missed;
    let mut seen = String::new();
    read_until(&mut missed, &mut seen, "answering from instance B").await;
    assert!(seen.contains("it is instance A"), "{seen}");
}
