//! Live chat between a customer and a representative beyond the messages: typing indicators
//! (relayed, never stored, rate-limited, gone after a few seconds), read receipts (stored, so a
//! reconnecting page shows them) over the event stream and the plain-HTTP pages, on two
//! instances over PostgreSQL; the transcript emailed on request (card numbers masked, internal
//! notes left out); and the per-conversation fan-out (a conversation's stream hears only its
//! own conversation). On SQLite and PostgreSQL.

mod common;

use billpay_services::chat::Side;
use billpay_services::staff::Role;
use common::desk::*;
use common::*;

fn conversation_link(html: &str) -> String {
    let i = html
        .find("href=\"/desk/conversations/")
        .expect("a conversation link")
        + 6;
    html[i..].split('"').next().unwrap().to_string()
}

fn cookies(b: &Browser) -> String {
    b.cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ")
}

async fn open_stream(base: &str, path: &str, b: &Browser) -> reqwest::Response {
    let r = http()
        .build()
        .unwrap()
        .get(format!("{base}{path}"))
        .header("cookie", cookies(b))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r
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

/// The `<li>` of the last message of this sender on a page.
fn last_of(html: &str, sender: &str) -> String {
    let i = html
        .rfind(&format!("<li class=\"msg msg-{sender}\""))
        .unwrap_or_else(|| panic!("no {sender} message in {html}"));
    let rest = &html[i..];
    rest[..rest.find("</li>").unwrap()].to_string()
}

async fn conversation_id(app: &TestApp) -> String {
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query_scalar("SELECT id FROM chat_conversations ORDER BY created_at LIMIT 1")
        .fetch_one(&mut *c)
        .await
        .unwrap()
}

/// A customer talking with Ann, who is available and has the conversation.
async fn assigned(app: &TestApp) -> (Browser, Browser, String) {
    staff(app, "ann@example.com", "Ann Agent", Role::Agent).await;
    let (mut ann, _) = sign_in(app, "ann@example.com", None).await;
    ann.submit("/desk", "/desk/availability", &[("available", "yes")])
        .await;
    let acct = app.account_with_bill(8410).await;
    let pat = customer_asking_for_agent(app, &acct).await;
    let link = conversation_link(&ann.get("/desk").await.body);
    (pat, ann, link)
}

both_engines! {
    async fn typing_and_read_receipts_reach_the_other_side(app) {
        let (mut pat, mut ann, link) = assigned(&app).await;
        let conv = conversation_id(&app).await;
        let mut to_customer = open_stream(&app.base, "/chat/events", &pat).await;
        let mut to_desk = open_stream(&app.base, &format!("{link}/events"), &ann).await;
        let (mut seen_c, mut seen_d) = (String::new(), String::new());
        // Both streams start with the stored read receipts.
        read_until(&mut to_customer, &mut seen_c, "event: read").await;
        read_until(&mut to_desk, &mut seen_d, "event: read").await;
        // The representative types: the customer's stream shows it; it is not a message.
        let p = ann.submit(&link, &format!("{link}/typing"), &[]).await;
        assert_eq!(p.status, 204, "{}", p.body);
        read_until(&mut to_customer, &mut seen_c, "event: typing").await;
        assert!(seen_c.contains("\"side\":\"agent\""), "{seen_c}");
        let (_, seq): (String, i64) = {
            let mut c = app.app.store.read_conn().await.unwrap();
            sqlx::query_as("SELECT id, last_seq FROM chat_conversations").fetch_one(&mut *c).await.unwrap()
        };
        let messages = app.app.chat_messages(&conv, 0, true).await.unwrap();
        assert_eq!(messages.last().unwrap().seq, seq, "typing stores no message");
        // The page without script shows it too, for a few seconds.
        let page = pat.get("/chat").await.body;
        assert!(page.contains("The representative is typing…"), "{page}");
        // Rate-limited: a second event right away is dropped.
        assert!(!app.app.chat_typing(&conv, Side::Agent).await, "at most one per 2 s");
        // Without the session's token the typing form is refused.
        let p = pat.post("/chat/typing", &[]).await;
        assert_eq!(p.status, 403);
        let p = pat.submit("/chat", "/chat/typing", &[]).await;
        assert_eq!(p.status, 204);
        read_until(&mut to_desk, &mut seen_d, "event: typing").await;
        assert!(seen_d.contains("\"side\":\"customer\""), "{seen_d}");
        assert!(ann.get(&link).await.body.contains("The customer is typing…"));
        // Ann replies; the customer's page shows it (and reading it is a receipt).
        ann.submit(&link, &format!("{link}/reply"), &[("message", "Hi Pat, I am looking at it."), ("canned", "")]).await;
        read_until(&mut to_customer, &mut seen_c, "I am looking at it.").await;
        let page = pat.get("/chat").await.body;
        assert!(page.contains("I am looking at it."));
        let last = app.app.chat_conversation(&conv).await.unwrap().last_seq;
        read_until(&mut to_desk, &mut seen_d, &format!("\"customer\":{last}")).await;
        let view = ann.get(&link).await.body;
        let mine = last_of(&view, "agent");
        assert!(mine.contains("I am looking at it.") && mine.contains("<span class=\"receipt\">Read</span>"), "{mine}");
        // Ann viewing the conversation read the customer's messages: the customer sees "Read".
        let page = pat.get("/chat").await.body;
        let theirs = last_of(&page, "customer");
        assert!(theirs.contains("<span class=\"receipt\">Read</span>"), "{theirs}");
        // The receipts are stored: a reconnecting stream starts with them.
        let (customer_read, agent_read): (i64, i64) = {
            let mut c = app.app.store.read_conn().await.unwrap();
            sqlx::query_as("SELECT customer_read_seq, agent_read_seq FROM chat_conversations").fetch_one(&mut *c).await.unwrap()
        };
        assert!(customer_read > 0 && agent_read > 0);
        let mut again = open_stream(&app.base, "/chat/events", &pat).await;
        let mut seen = String::new();
        read_until(&mut again, &mut seen, &format!("\"customer\":{customer_read}")).await;
        assert!(seen.contains(&format!("\"agent\":{agent_read}")), "{seen}");
    }

    async fn the_transcript_is_emailed_masked_and_without_notes(app) {
        let (mut pat, mut ann, link) = assigned(&app).await;
        ann.submit(&link, &format!("{link}/note"), &[("message", "Customer sounds upset; internal only")]).await;
        ann.submit(&link, &format!("{link}/reply"), &[("message", "Your bank declined it."), ("canned", "")]).await;
        let p = pat.submit("/chat", "/chat/transcript", &[("email", "not an email")]).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("Enter the email address for the transcript."), "{}", p.body);
        let p = pat.post("/chat/transcript", &[("email", "pat@example.com")]).await;
        assert_eq!(p.status, 403, "CSRF-checked");
        let p = pat.submit("/chat", "/chat/transcript", &[("email", "pat@example.com")]).await;
        assert_eq!(p.location.as_deref(), Some("/chat?sent=1#transcript"), "{}", p.body);
        assert!(pat.get("/chat?sent=1").await.body.contains("We are emailing you the transcript."));
        // Asked again for the same conversation and address: queued once.
        pat.submit("/chat", "/chat/transcript", &[("email", "pat@example.com")]).await;
        let rows: Vec<(String, String)> = {
            let mut c = app.app.store.read_conn().await.unwrap();
            sqlx::query_as("SELECT recipient, payload_json FROM outbox WHERE kind = 'email.chat_transcript'")
                .fetch_all(&mut *c).await.unwrap()
        };
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].0, "pat@example.com");
        let email = app.app.render_outbox_row("email.chat_transcript", &rows[0].1).unwrap();
        for body in [&email.text, &email.html] {
            assert!(body.contains("my card ************4242 was declined"), "{body}");
            assert!(body.contains("Ann: Your bank declined it."), "{body}");
            assert!(!body.contains("4242 4242") && !body.contains("4242424242424242"), "{body}");
            assert!(!body.contains("sounds upset"), "no internal note: {body}");
        }
        assert!(email.subject.contains("your chat transcript"), "{}", email.subject);
        app.assert_emails_render(&["email.chat_transcript"]).await;
        // At the close the customer can still ask for it; at most three per conversation.
        ann.submit(&link, &format!("{link}/close"), &[]).await;
        let page = pat.get("/chat").await.body;
        assert!(page.contains("This conversation has ended.") && page.contains("Email the transcript"), "{page}");
        pat.submit("/chat", "/chat/transcript", &[("email", "pat2@example.com")]).await;
        pat.submit("/chat", "/chat/transcript", &[("email", "pat3@example.com")]).await;
        let p = pat.submit("/chat", "/chat/transcript", &[("email", "pat4@example.com")]).await;
        assert_eq!(p.status, 422, "{}", p.body);
        assert!(p.body.contains("already sent 3 times"), "{}", p.body);
    }

    async fn a_conversations_stream_hears_only_its_own_conversation(app) {
        staff(&app, "ann@example.com", "Ann Agent", Role::Agent).await;
        let first = app.account_with_bill(1000).await;
        let second = app.account_with_bill(2000).await;
        let mut a = customer_asking_for_agent(&app, &first).await;
        let mut b = customer_asking_for_agent(&app, &second).await;
        assert_eq!(app.app.chat.conversations_listened(), 0);
        let mut stream_a = open_stream(&app.base, "/chat/events", &a).await;
        let mut stream_b = open_stream(&app.base, "/chat/events", &b).await;
        let (mut seen_a, mut seen_b) = (String::new(), String::new());
        read_until(&mut stream_a, &mut seen_a, "I want an agent").await;
        read_until(&mut stream_b, &mut seen_b, "I want an agent").await;
        assert_eq!(app.app.chat.conversations_listened(), 2, "one channel per conversation");
        a.submit("/chat", "/chat/say", &[("message", "only for conversation A")]).await;
        b.submit("/chat", "/chat/say", &[("message", "only for conversation B")]).await;
        read_until(&mut stream_a, &mut seen_a, "only for conversation A").await;
        read_until(&mut stream_b, &mut seen_b, "only for conversation B").await;
        a.submit("/chat", "/chat/say", &[("message", "A again")]).await;
        read_until(&mut stream_a, &mut seen_a, "A again").await;
        assert!(!seen_a.contains("conversation B"), "{seen_a}");
        assert!(!seen_b.contains("conversation A") && !seen_b.contains("A again"), "{seen_b}");
        // The last listener of a conversation leaving drops its channel.
        drop(stream_a);
        drop(stream_b);
        let ids: Vec<String> = {
            let mut c = app.app.store.read_conn().await.unwrap();
            sqlx::query_scalar("SELECT id FROM chat_conversations").fetch_all(&mut *c).await.unwrap()
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while app.app.chat.conversations_listened() != 0 {
            assert!(std::time::Instant::now() < deadline, "channels not dropped");
            // A stream notices its client left when it next writes: give it something to say.
            for id in &ids {
                app.app.chat.publish(billpay_services::chat::ChatEvent {
                    conversation_id: id.clone(),
                    seq: 0,
                    kind: billpay_services::chat::ChatEventKind::Typing(Side::Agent),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

/// A second `billpay` instance on the same database (its own hub).
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

/// The customer on instance A, the representative's stream on instance B: typing and read
/// receipts cross between them (LISTEN/NOTIFY), like messages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_read_receipts_cross_instances_on_postgres() {
    let app = spawn_app(Engine::Postgres).await;
    let other = second_instance(&app).await;
    let (mut pat, ann, link) = assigned(&app).await;
    // Ann's session lives in the shared database: her browser works on B too.
    let mut on_b = Browser::new(&app);
    on_b.base = other.clone();
    on_b.cookies = ann.cookies.clone();
    let mut to_desk = open_stream(&other, &format!("{link}/events"), &on_b).await;
    let mut to_customer = open_stream(&app.base, "/chat/events", &pat).await;
    let (mut seen_d, mut seen_c) = (String::new(), String::new());
    read_until(&mut to_desk, &mut seen_d, "event: read").await;
    read_until(&mut to_customer, &mut seen_c, "event: read").await;
    let p = pat.submit("/chat", "/chat/typing", &[]).await;
    assert_eq!(p.status, 204);
    read_until(&mut to_desk, &mut seen_d, "event: typing").await;
    let p = on_b.submit(&link, &format!("{link}/typing"), &[]).await;
    assert_eq!(p.status, 204, "{}", p.body);
    read_until(&mut to_customer, &mut seen_c, "event: typing").await;
    // Ann reads on B: the customer's stream on A gets the new receipt.
    let last = app
        .app
        .chat_conversation(&conversation_id(&app).await)
        .await
        .unwrap()
        .last_seq;
    on_b.get(&link).await;
    read_until(&mut to_customer, &mut seen_c, &format!("\"agent\":{last}")).await;
}
