//! A browser without script, for the portal's pages: one session cookie, no redirects followed
//! (so each 303 can be checked), forms sent with the page's CSRF token.

use super::{TestApp, http};

/// A browser: one cookie, no redirects followed (so each 303 can be checked).
pub struct Visitor {
    pub base: String,
    pub client: reqwest::Client,
    pub cookie: Option<String>,
}

pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub set_cookie: Option<String>,
    pub body: String,
    pub bytes: Vec<u8>,
}

impl Visitor {
    pub fn new(app: &TestApp) -> Visitor {
        Visitor {
            base: app.base.clone(),
            client: http()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
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
        let set_cookie = resp
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_string());
        if let Some(sc) = &set_cookie {
            assert!(
                sc.contains("HttpOnly") && sc.contains("SameSite=Lax"),
                "{sc}"
            );
            let value = sc
                .strip_prefix("billpay_session=")
                .and_then(|v| v.split(';').next())
                .unwrap();
            self.cookie = Some(value.to_string());
        }
        let bytes = resp.bytes().await.unwrap().to_vec();
        Page {
            status,
            location,
            set_cookie,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
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

    /// Loads `page` and sends its form with the session's CSRF token added.
    pub async fn submit(&mut self, page: &str, action: &str, form: &[(&str, &str)]) -> Page {
        let p = self.get(page).await;
        assert_eq!(p.status, 200, "{page}: {}", p.body);
        let csrf = hidden(&p.body, "csrf");
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(action, &fields).await
    }
}

/// The portal's card form for `number` (expiry 12/34, CVC 123, ZIP 10001).
pub fn card_form(number: &str) -> Vec<(&str, &str)> {
    vec![
        ("method", "card"),
        ("card_number", number),
        ("exp_month", "12"),
        ("exp_year", "34"),
        ("cvc", "123"),
        ("postal_code", "10001"),
    ]
}

/// The value of a hidden input.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

/// The page without its per-session form tokens, to compare two answers.
pub fn without_tokens(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let mut out = String::new();
    let mut rest = html;
    while let Some(i) = rest.find(marker) {
        let end = i + marker.len();
        out.push_str(&rest[..end]);
        rest = &rest[end..];
        rest = &rest[rest.find('"').unwrap()..];
    }
    out.push_str(rest);
    out
}
