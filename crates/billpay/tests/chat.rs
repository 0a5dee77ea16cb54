//! Live chat over HTTP as a browser without script uses it, and over the event stream the
//! script reads: a guest verifies an account to start; the bot answers from the account's
//! real state (a card declined for insufficient funds, a bank debit returned R01, AutoPay on);
//! asking for an agent, or something the bot cannot answer, queues the conversation with its
//! place in line; card numbers typed in the chat are masked before they are stored or shown.
//! On SQLite and PostgreSQL.

mod common;

use common::*;
use serde_json::json;

/// A browser: one cookie, no redirects followed.
struct Visitor {
    base: String,
    client: reqwest::Client,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    body: String,
}

impl Visitor {
    fn new(app: &TestApp) -> Visitor {
        Visitor {
            base: app.base.clone(),
            client: http()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", format!("billpay_session={c}")),
            None => req,
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        if let Some(sc) = resp.headers().get("set-cookie") {
            let sc = sc.to_str().unwrap();
            let value = sc
                .strip_prefix("billpay_session=")
                .and_then(|v| v.split(';').next())
                .unwrap();
            self.cookie = Some(value.to_string());
        }
        let body = resp.text().await.unwrap();
        Page {
            status,
            location,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    async fn submit(&mut self, page: &str, action: &str, form: &[(&str, &str)]) -> Page {
        let p = self.get(page).await;
        assert_eq!(p.status, 200, "{page}: {}", p.body);
        let csrf = hidden(&p.body, "csrf");
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        let req = self
            .client
            .post(format!("{}{action}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&fields).unwrap());
        self.send(req).await
    }

    /// Starts a chat as a guest of `account`.
    async fn start_chat(&mut self, account: &str) {
        let p = self
            .submit(
                "/chat",
                "/chat/start",
                &[
                    ("name", "Pat Payer"),
                    ("account_number", account),
                    ("postal_code", "10001"),
                ],
            )
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = self.get("/chat").await;
        assert!(page.body.contains("Hello Pat"), "{}", page.body);
    }

    /// Sends a message and returns the chat page after it.
    async fn say(&mut self, text: &str) -> String {
        let p = self
            .submit("/chat", "/chat/say", &[("message", text)])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        assert_eq!(p.location.as_deref(), Some("/chat#chat-form"));
        let page = self.get("/chat").await;
        assert_eq!(page.status, 200);
        page.body
    }
}

fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The text of the last message of the chat page (HTML entities for quotes left as they are).
fn last_message(html: &str) -> String {
    let i = html.rfind("<li class=\"msg").expect("a message");
    let rest = &html[i..];
    rest[..rest.find("</li>").unwrap()].to_string()
}

async fn conversation_state(app: &TestApp, account: &str) -> (String, i64) {
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query_as::<_, (String, i64)>(
        "SELECT state, last_seq FROM chat_conversations WHERE account_number = $1",
    )
    .bind(account)
    .fetch_one(&mut *c)
    .await
    .unwrap()
}

both_engines! {
    async fn a_guest_must_verify_the_account_to_chat(app) {
        let acct = app.account_with_bill(8410).await;
        let mut v = Visitor::new(&app);
        let p = v.get("/").await;
        assert!(p.body.contains("href=\"/chat\""), "every portal page leads to the chat");
        let p = v
            .submit("/chat", "/chat/start", &[("name", "Pat"), ("account_number", &acct), ("postal_code", "99999")])
            .await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("We could not find an account"), "{}", p.body);
        let p = v
            .submit("/chat", "/chat/start", &[("name", ""), ("account_number", "12"), ("postal_code", "1")])
            .await;
        assert_eq!(p.status, 422);
        for field in ["Enter your name", "12-digit account number", "5-digit ZIP"] {
            assert!(p.body.contains(field), "{field}: {}", p.body);
        }
        // Saying something without a conversation leads to the start form.
        let p = v.submit("/chat", "/chat/say", &[("message", "hi")]).await;
        assert_eq!(p.location.as_deref(), Some("/chat"));
        v.start_chat(&acct).await;
        // The page's only script is a same-origin file the CSP allows; nothing inline.
        let resp = http().build().unwrap().get(format!("{}/chat", app.base)).send().await.unwrap();
        let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
        let page = v.get("/chat").await.body;
        assert_eq!(page.matches("<script").count(), 1, "{page}");
        assert!(page.contains("<script src=\"/assets/chat.js\" defer></script>"), "{page}");
        let js = http().build().unwrap().get(format!("{}/assets/chat.js", app.base)).send().await.unwrap();
        assert_eq!(js.headers()["content-type"], "text/javascript; charset=utf-8");
        assert!(js.text().await.unwrap().contains("EventSource"));
        let page = v.say("what is my balance?").await;
        assert!(last_message(&page).contains("Your balance is $84.10"), "{page}");
        assert!(last_message(&page).contains("href=\"/pay/amount\""), "a pay link: {page}");
        // Another browser does not see this conversation.
        let mut other = Visitor::new(&app);
        assert!(!other.get("/chat").await.body.contains("Your balance"));
        // An empty message is refused with a clear error.
        let p = v.submit("/chat", "/chat/say", &[("message", "   ")]).await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("Type a message first."));
    }

    async fn the_bot_explains_a_card_declined_for_insufficient_funds(app) {
        let acct = app.account_with_bill(5000).await;
        let (s, p) = app.pay_with(&acct, 5000, card("4000000000009995")).await;
        assert_eq!(s, 402, "{p}");
        let mut v = Visitor::new(&app);
        v.start_chat(&acct).await;
        let page = v.say("Why did my payment fail?").await;
        let answer = last_message(&page);
        assert!(answer.contains("$50.00"), "{answer}");
        assert!(answer.contains("Visa ending in 9995"), "{answer}");
        assert!(answer.contains("was declined"), "{answer}");
        assert!(answer.to_lowercase().contains("insufficient funds"), "{answer}");
        assert!(answer.contains("href=\"/pay/amount\""), "{answer}");
        assert_eq!(conversation_state(&app, &acct).await.0, "bot", "the bot answered it");
    }

    async fn the_bot_explains_an_ach_return_r01_and_the_last_payment(app) {
        let acct = app.account_with_bill(6200).await;
        let (s, p) = app.pay_with(&acct, 6200, ach("000222222227")).await;
        assert_eq!(s, 201, "{p}");
        app.clock.advance(jiff::SignedDuration::from_hours(49));
        assert_eq!(app.app.reconcile().await.unwrap().debits_returned, 1);
        let mut v = Visitor::new(&app);
        v.start_chat(&acct).await;
        let page = v.say("my bank payment bounced, why?").await;
        let answer = last_message(&page);
        assert!(answer.contains("was returned by the bank"), "{answer}");
        assert!(answer.contains("R01"), "{answer}");
        assert!(answer.to_lowercase().contains("insufficient"), "{answer}");
        let page = v.say("what was my last payment?").await;
        let answer = last_message(&page);
        let confirmation = p["confirmation_number"].as_str().unwrap();
        assert!(answer.contains(confirmation), "{answer} should name {confirmation}");
        assert!(answer.contains("$62.00"), "{answer}");
        let page = v.say("what do I owe").await;
        assert!(last_message(&page).contains("$62.00"), "the return re-opened the balance");
    }

    async fn the_bot_reads_autopay_and_fees(app) {
        let acct = app.account_with_bill(4000).await;
        let (s, m) = app
            .post(&format!("/api/v1/accounts/{acct}/payment_methods"), card("4242424242424242"))
            .await;
        assert!(s == 201 || s == 200, "{m}");
        let (s, a) = app
            .put(&format!("/api/v1/accounts/{acct}/autopay"), json!({"payment_method": m["id"], "timing": "days_before", "days_before": 3}))
            .await;
        assert_eq!(s, 200, "{a}");
        let mut v = Visitor::new(&app);
        v.start_chat(&acct).await;
        let answer = last_message(&v.say("Is autopay on?").await);
        assert!(answer.contains("AutoPay is on"), "{answer}");
        assert!(answer.contains("Visa ending in 4242"), "{answer}");
        assert!(answer.contains("3 days before each due date"), "{answer}");
        let answer = last_message(&v.say("are there fees?").await);
        assert!(answer.contains("no fee"), "{answer}");
        let answer = last_message(&v.say("which cards do you accept").await);
        assert!(answer.contains("American Express"), "{answer}");
        let answer = last_message(&v.say("I need more time to pay").await);
        assert!(answer.contains("/account/arrangement"), "{answer}");
        assert_eq!(conversation_state(&app, &acct).await.0, "bot");
    }

    async fn asking_for_an_agent_hands_over_with_a_place_in_line(app) {
        let first = app.account_with_bill(1000).await;
        let second = app.account_with_bill(2000).await;
        let mut a = Visitor::new(&app);
        a.start_chat(&first).await;
        let page = a.say("I want a representative").await;
        assert!(page.contains("You are number 1 in line"), "{page}");
        assert!(page.contains("Estimated wait: about 4 minutes"), "{page}");
        assert_eq!(conversation_state(&app, &first).await.0, "queued");
        // Something the bot cannot answer hands over too.
        let mut b = Visitor::new(&app);
        b.start_chat(&second).await;
        let page = b.say("my meter is making a strange noise").await;
        assert!(page.contains("connecting you with a representative"), "{page}");
        assert!(page.contains("You are number 2 in line"), "{page}");
        // In the queue the bot is silent: the message waits for the person.
        let (_, seq) = conversation_state(&app, &second).await;
        b.say("hello?").await;
        assert_eq!(conversation_state(&app, &second).await, ("queued".to_string(), seq + 1));
    }

    async fn card_numbers_typed_in_the_chat_are_masked_before_storage(app) {
        let acct = app.account_with_bill(1000).await;
        let mut v = Visitor::new(&app);
        v.start_chat(&acct).await;
        let page = v.say("can I pay with 4242 4242 4242 4242 exp 12/30?").await;
        assert!(!page.contains("4242 4242"), "{page}");
        assert!(page.contains("************4242"), "{page}");
        v.say("or amex 378282246310005").await;
        let mut c = app.app.store.read_conn().await.unwrap();
        let bodies: Vec<String> = sqlx::query_scalar("SELECT body FROM chat_messages")
            .fetch_all(&mut *c)
            .await
            .unwrap();
        let all = bodies.join("\n");
        for pan in ["4242424242424242", "4242 4242 4242 4242", "378282246310005"] {
            assert!(!all.contains(pan), "{pan} stored: {all}");
        }
        assert!(all.contains("***********0005"), "{all}");
        // The event stream a script reads shows the masked text too.
        let resp = http()
            .build()
            .unwrap()
            .get(format!("{}/chat/events?after=0", app.base))
            .header("cookie", format!("billpay_session={}", v.cookie.clone().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["content-type"], "text/event-stream");
        let mut resp = resp;
        let mut seen = String::new();
        while !seen.contains("***********0005") {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk())
                .await
                .expect("events arrive")
                .unwrap()
                .expect("stream open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!seen.contains("4242 4242"), "{seen}");
        assert!(seen.contains("id: 1\n"), "each event carries its number: {seen}");
    }

    async fn the_event_stream_resumes_after_the_last_event_id(app) {
        let acct = app.account_with_bill(1000).await;
        let mut v = Visitor::new(&app);
        v.start_chat(&acct).await;
        v.say("balance").await;
        let (_, seq) = conversation_state(&app, &acct).await;
        assert_eq!(seq, 3);
        let client = http().build().unwrap();
        let mut resp = client
            .get(format!("{}/chat/events", app.base))
            .header("cookie", format!("billpay_session={}", v.cookie.clone().unwrap()))
            .header("last-event-id", "2")
            .send()
            .await
            .unwrap();
        let mut seen = String::new();
        while !seen.contains("id: 3\n") {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk())
                .await
                .expect("missed message arrives")
                .unwrap()
                .expect("open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(!seen.contains("id: 1\n") && !seen.contains("id: 2\n"), "{seen}");
        // A message stored now arrives live on the open stream.
        v.say("fees").await;
        while !seen.contains("id: 5\n") {
            let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), resp.chunk())
                .await
                .expect("live message arrives")
                .unwrap()
                .expect("open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
        assert!(seen.contains("no fee"), "{seen}");
    }
}

/// Chat hours that exclude the present hour in the biller's zone (New York).
async fn closed_now(engine: Engine) -> TestApp {
    #[allow(clippy::disallowed_methods)]
    let hour = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
        .hour() as u8;
    let (start, end) = if hour < 23 { (hour + 1, 24) } else { (0, 23) };
    spawn_app_with(engine, move |s| {
        s.portal.chat_hours_start = Some(start);
        s.portal.chat_hours_end = Some(end);
    })
    .await
}

both_engines! {
    with closed_now;

    async fn outside_business_hours_the_customer_leaves_a_message(app) {
        let acct = app.account_with_bill(1000).await;
        let mut v = Visitor::new(&app);
        v.start_chat(&acct).await;
        // The bot still answers; a person is not available.
        assert!(last_message(&v.say("balance").await).contains("$10.00"));
        let page = v.say("I want an agent").await;
        assert!(page.contains("Our representatives answer chat from"), "{page}");
        assert!(page.contains("href=\"/chat/offline\""), "{page}");
        assert!(!page.contains("in line"), "{page}");
        assert_eq!(conversation_state(&app, &acct).await.0, "bot");
        let p = v
            .submit("/chat/offline", "/chat/offline", &[("email", "not an email"), ("message", "call me")])
            .await;
        assert_eq!(p.status, 422);
        assert!(p.body.contains("Enter the email address for our reply."), "{}", p.body);
        let p = v
            .submit("/chat/offline", "/chat/offline", &[("email", "pat@example.com"), ("message", "Please call me about card 4242424242424242")])
            .await;
        assert_eq!(p.status, 303, "{}", p.body);
        let page = v.get("/chat").await.body;
        assert!(page.contains("reply to pat@example.com"), "{page}");
        assert!(page.contains("************4242") && !page.contains("4242424242424242"), "{page}");
        assert!(page.contains("A representative will reply by email"), "{page}");
        assert_eq!(conversation_state(&app, &acct).await.0, "offline");
    }
}
