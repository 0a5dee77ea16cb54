//! The agent desk as a staff member's browser: a cookie jar, no redirects followed, forms sent
//! with the page's CSRF token, and the sign-in with a password and an authenticator code.
#![allow(dead_code)]

use std::collections::HashMap;

pub use super::visitor::hidden;
use super::{TestApp, http};

/// A browser with a cookie jar, no redirects followed.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

impl Browser {
    pub fn new(app: &TestApp) -> Browser {
        Browser {
            base: app.base.clone(),
            client: http()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let jar: Vec<String> = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        let req = if jar.is_empty() {
            req
        } else {
            req.header("cookie", jar.join("; "))
        };
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_string());
        for sc in resp.headers().get_all("set-cookie") {
            let sc = sc.to_str().unwrap();
            if sc.starts_with("billpay_staff=") {
                assert!(
                    sc.contains("HttpOnly")
                        && sc.contains("Path=/desk")
                        && sc.contains("SameSite=Strict"),
                    "{sc}"
                );
            }
            let (k, v) = sc.split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.insert(k.to_string(), v.to_string());
        }
        Page {
            status,
            location,
            body: resp.text().await.unwrap(),
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let req = self
            .client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap());
        self.send(req).await
    }

    pub async fn submit(&mut self, page: &str, action: &str, form: &[(&str, &str)]) -> Page {
        let p = self.get(page).await;
        assert_eq!(p.status, 200, "{page}: {}", p.body);
        let csrf = hidden(&p.body, "csrf");
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(action, &fields).await
    }
}

pub const PASSWORD: &str = "Riverbend-Otter-Lamp-9";

pub fn now_secs(app: &TestApp) -> u64 {
    billpay_services::Clock::now(app.clock.as_ref()).as_second() as u64
}

/// Signs a staff member in: password, then enrolment (first time) or the authenticator code.
/// Returns the browser and the authenticator's secret.
pub async fn sign_in(app: &TestApp, email: &str, secret: Option<Vec<u8>>) -> (Browser, Vec<u8>) {
    let mut b = Browser::new(app);
    let p = b.get("/desk").await;
    assert_eq!(
        p.location.as_deref(),
        Some("/desk/signin"),
        "the desk needs a sign-in"
    );
    let p = b
        .submit(
            "/desk/signin",
            "/desk/signin",
            &[("email", email), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(
        p.location.as_deref(),
        Some("/desk/signin/code"),
        "{}",
        p.body
    );
    assert_eq!(
        b.get("/desk").await.location.as_deref(),
        Some("/desk/signin"),
        "a password alone is not a sign-in"
    );
    let page = b.get("/desk/signin/code").await.body;
    let secret = match secret {
        Some(s) => {
            assert!(
                !page.contains("<svg"),
                "an enrolled authenticator is not shown again"
            );
            s
        }
        None => {
            assert!(
                page.contains("<svg"),
                "first sign-in enrols an authenticator: {page}"
            );
            let text = page
                .split("<code class=\"secret-key\">")
                .nth(1)
                .unwrap()
                .split('<')
                .next()
                .unwrap();
            billpay_services::totp::secret_from_text(text).expect("a base32 key")
        }
    };
    let p = b
        .submit(
            "/desk/signin/code",
            "/desk/signin/code",
            &[("code", "000000")],
        )
        .await;
    assert_eq!(p.status, 422, "a wrong code is refused");
    let code = billpay_services::totp::code_at(&secret, now_secs(app));
    let p = b
        .submit("/desk/signin/code", "/desk/signin/code", &[("code", &code)])
        .await;
    assert_eq!(p.location.as_deref(), Some("/desk"), "{}", p.body);
    let inbox = b.get("/desk").await;
    assert_eq!(inbox.status, 200);
    assert!(inbox.body.contains("Inbox"));
    (b, secret)
}

pub async fn staff(app: &TestApp, email: &str, name: &str, role: billpay_services::staff::Role) {
    app.app
        .staff_create(email, name, role, PASSWORD)
        .await
        .expect("staff member");
}

/// A customer who starts a chat on `account` and asks for a person.
pub async fn customer_asking_for_agent(app: &TestApp, account: &str) -> Browser {
    let mut c = Browser::new(app);
    let p = c
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
    c.submit(
        "/chat",
        "/chat/say",
        &[("message", "my card 4242 4242 4242 4242 was declined")],
    )
    .await;
    c.submit("/chat", "/chat/say", &[("message", "I want an agent")])
        .await;
    c
}

/// The desk's audit records, (actor, action), oldest first.
pub async fn audit_actions(app: &TestApp) -> Vec<(String, String)> {
    let mut c = app.app.store.read_conn().await.unwrap();
    sqlx::query_as::<_, (String, String)>(
        "SELECT actor, action FROM audit_log WHERE channel = 'desk' ORDER BY at, id",
    )
    .fetch_all(&mut *c)
    .await
    .unwrap()
}
