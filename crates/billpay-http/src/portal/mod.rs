//! The customer portal: server-rendered pages (askama templates compiled into the binary), a
//! small stylesheet, and one script file for the live chat's progressive enhancement. Every page
//! works with JavaScript off, on a phone screen, with a keyboard and a screen reader.
//!
//! Every portal request goes through [`session_layer`]: it finds the browser's server-side
//! session by its cookie (or starts one), and refuses any POST whose `csrf` field is not the
//! session's token, before a handler runs. Handlers are thin: parse the form, call one service
//! function, render a template. Pages send a content security policy that allows only this
//! origin's stylesheet, script file and forms: nothing inline.

mod account;
pub mod chat;
mod factors;
mod mailbox;
mod manage;
mod quickpay;
mod receipts;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use billpay_services::portal::{FieldError, PortalSession, SessionToken};
use billpay_services::{Billpay, ServiceError};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "billpay_session";
/// The form field every POST must carry.
pub const CSRF_FIELD: &str = "csrf";

/// Scripts only from this origin's files (the chat's progressive enhancement): nothing inline.
pub const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
     style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const STYLESHEET: &str = include_str!("../../assets/portal.css");
const CHAT_SCRIPT: &str = include_str!("../../assets/chat.js");

/// The portal's routes, with the session and CSRF layer around all but the stylesheets.
pub fn routes(app: Billpay, secure_cookie: bool) -> Router<Billpay> {
    let mut pages = Router::new()
        .route("/", get(quickpay::home))
        .route(
            "/pay",
            get(quickpay::lookup_page)
                .post(quickpay::lookup)
                .route_layer(limited(&app, Kind::Lookup)),
        )
        .route(
            "/pay/amount",
            get(quickpay::amount_page).post(quickpay::set_amount),
        )
        .route(
            "/pay/method",
            get(quickpay::method_page).post(quickpay::set_method),
        )
        .route("/pay/review", get(quickpay::review_page))
        .route(
            "/enrol",
            get(account::enrol_page)
                .post(account::enrol)
                .route_layer(limited(&app, Kind::Enrol)),
        )
        .route(
            "/signin",
            get(account::signin_page)
                .post(account::signin)
                .route_layer(limited(&app, Kind::Signin)),
        )
        .route(
            "/signin/code",
            get(account::code_page)
                .post(account::check_code)
                .route_layer(limited(&app, Kind::Code)),
        )
        .route(
            "/signin/code/resend",
            axum::routing::post(account::resend_code).route_layer(limited(&app, Kind::Code)),
        )
        .route(
            "/signin/questions",
            get(account::signin_questions)
                .post(account::check_answers)
                .route_layer(limited(&app, Kind::Code)),
        )
        .route(
            "/account/security",
            get(account::security).post(account::set_security),
        )
        .route("/account", get(account::dashboard))
        .route("/chat", get(chat::page))
        .route("/chat/start", axum::routing::post(chat::start))
        .route("/chat/say", axum::routing::post(chat::say))
        .route("/chat/events", get(chat::events))
        .route("/chat/typing", axum::routing::post(chat::typing))
        .route("/chat/read", axum::routing::post(chat::read))
        .route("/chat/transcript", axum::routing::post(chat::transcript))
        .route("/chat/pay/{id}", get(chat::pay_request))
        .route(
            "/chat/offline",
            get(chat::offline).post(chat::leave_message),
        )
        .route("/account/signin-codes", get(factors::page))
        .route(
            "/account/signin-codes/app",
            axum::routing::post(factors::app_begin),
        )
        .route(
            "/account/signin-codes/app/confirm",
            axum::routing::post(factors::app_confirm).route_layer(limited(&app, Kind::Code)),
        )
        .route(
            "/account/signin-codes/text",
            axum::routing::post(factors::text_begin).route_layer(limited(&app, Kind::Code)),
        )
        .route(
            "/account/signin-codes/text/confirm",
            get(factors::text_confirm_page)
                .post(factors::text_confirm)
                .route_layer(limited(&app, Kind::Code)),
        )
        .route(
            "/account/signin-codes/email",
            axum::routing::post(factors::email_codes),
        )
        .route(
            "/reset",
            get(account::reset_request_page)
                .post(account::reset_request)
                .route_layer(limited(&app, Kind::Reset)),
        )
        .route(
            "/reset/{link}",
            get(account::reset_page)
                .post(account::reset_password)
                .route_layer(limited(&app, Kind::Code)),
        )
        .route(
            "/account/methods",
            get(manage::methods).post(manage::add_card),
        )
        .route(
            "/account/methods/bank",
            axum::routing::post(manage::add_bank),
        )
        .route(
            "/account/methods/{id}/remove",
            axum::routing::post(manage::remove),
        )
        .route(
            "/account/methods/{id}/default",
            axum::routing::post(manage::make_default),
        )
        .route(
            "/account/autopay",
            get(manage::autopay).post(manage::autopay_enroll),
        )
        .route(
            "/account/scheduled",
            get(manage::scheduled).post(manage::schedule),
        )
        .route(
            "/account/scheduled/{id}/edit",
            get(manage::edit_scheduled_page).post(manage::edit_scheduled),
        )
        .route(
            "/account/scheduled/{id}/cancel",
            axum::routing::post(manage::cancel_scheduled),
        )
        .route("/account/statements", get(manage::statements))
        .route(
            "/account/arrangement",
            get(manage::arrangement).post(manage::request_arrangement),
        )
        .route(
            "/account/notifications",
            get(manage::notifications).post(manage::set_notifications),
        )
        .route(
            "/account/autopay/review",
            axum::routing::post(manage::autopay_review),
        )
        .route(
            "/account/autopay/cancel",
            axum::routing::post(manage::autopay_cancel),
        )
        .route("/signout", axum::routing::post(account::sign_out))
        .route(
            "/signout/everywhere",
            axum::routing::post(account::sign_out_everywhere),
        )
        .route("/pay/confirm", axum::routing::post(quickpay::confirm))
        .route("/pay/done/{payment_id}", get(quickpay::done_page))
        .route("/receipts/{payment_id}", get(receipts::receipt_page))
        .route("/receipts/{payment_id}/pdf", get(receipts::receipt_pdf));
    if app.config().portal.demo_mailbox {
        pages = pages
            .route("/demo/mailbox", get(mailbox::list))
            .route("/demo/mailbox/{id}", get(mailbox::message));
    }
    let pages = pages.layer(middleware::from_fn_with_state(
        (app, secure_cookie),
        session_layer,
    ));
    Router::new()
        .route(
            "/assets/portal.css",
            get(|| async { css_response(STYLESHEET.to_string()) }),
        )
        .route("/assets/theme.css", get(theme_css))
        .route(
            "/assets/chat.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=300"),
                    ],
                    CHAT_SCRIPT,
                )
                    .into_response()
            }),
        )
        .route("/assets/icon.svg", get(icon_svg))
        .merge(pages)
}

fn css_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}

async fn theme_css(State(app): State<Billpay>) -> Response {
    // Checked to be #rrggbb when the configuration is loaded; checked again here because it is
    // written into a stylesheet.
    let brand = &app.config().portal.brand_color;
    let brand = if billpay_services::portal::is_hex_color(brand) {
        brand.as_str()
    } else {
        "#0b5394"
    };
    css_response(format!(":root {{ --brand: {brand}; }}\n"))
}

/// The tab icon: a disc in the biller's colour.
async fn icon_svg(State(app): State<Billpay>) -> Response {
    let brand = &app.config().portal.brand_color;
    let brand = if billpay_services::portal::is_hex_color(brand) {
        brand.as_str()
    } else {
        "#0b5394"
    };
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\"><circle cx=\"16\" cy=\"16\" r=\"15\" fill=\"{brand}\"/></svg>"
        ),
    )
        .into_response()
}

/// What every page's layout shows: the biller's branding and the form token.
pub struct Page {
    pub biller: String,
    pub initials: String,
    pub phone: String,
    pub phone_tel: String,
    pub hours: String,
    pub csrf: String,
    pub signed_in: bool,
}

impl Page {
    pub fn new(app: &Billpay, session: &PortalSession) -> Page {
        let biller = app.config().biller.name.clone();
        let initials: String = biller
            .split_whitespace()
            .filter(|w| w.chars().next().is_some_and(char::is_alphanumeric))
            .filter_map(|w| w.chars().next())
            .take(2)
            .collect::<String>()
            .to_uppercase();
        let phone = app.config().biller.support_phone.clone();
        let phone_tel: String = phone
            .chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect();
        Page {
            biller,
            initials,
            phone,
            phone_tel,
            hours: app.config().portal.support_hours.clone(),
            csrf: session.csrf_token.clone(),
            signed_in: session.customer_id.is_some(),
        }
    }
}

/// One input of a form (`field.html`).
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub hint: &'static str,
    pub kind: &'static str,
    pub autocomplete: &'static str,
    pub inputmode: &'static str,
    pub class: &'static str,
    /// Never a card or bank account number: those are not sent back to the browser.
    pub value: String,
    pub error: Option<String>,
}

/// Renders a template as an HTML response.
pub fn html<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(body) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "portal template failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.").into_response()
        }
    }
}

/// A page with one message and one way on.
#[derive(Template)]
#[template(path = "portal/message.html")]
pub struct MessagePage {
    pub page: Page,
    pub title: String,
    pub message: String,
    pub link: String,
    pub link_text: String,
}

pub fn message(
    status: StatusCode,
    page: Page,
    title: &str,
    message: &str,
    link: &str,
    link_text: &str,
) -> Response {
    html(
        status,
        &MessagePage {
            page,
            title: title.into(),
            message: message.into(),
            link: link.into(),
            link_text: link_text.into(),
        },
    )
}

/// A service error as a page. Causes are logged once here, never shown.
pub fn service_error(app: &Billpay, session: &PortalSession, e: ServiceError) -> Response {
    let page = Page::new(app, session);
    match e {
        ServiceError::NotFound { .. } => message(
            StatusCode::NOT_FOUND,
            page,
            "Page not found",
            "We could not find what you were looking for.",
            "/",
            "Go to the start",
        ),
        ServiceError::ProcessorUnavailable => message(
            StatusCode::SERVICE_UNAVAILABLE,
            page,
            "Payments are briefly unavailable",
            "We could not reach the payment network, and nothing was charged. Please try again in a few minutes, or sign in and schedule the payment for a later date.",
            "/pay/review",
            "Try again",
        ),
        ServiceError::IdempotencyInProgress => message(
            StatusCode::CONFLICT,
            page,
            "Your payment is still being processed",
            "This payment is still in progress. Do not pay again: wait a moment and check again.",
            "/pay/review",
            "Check again",
        ),
        ServiceError::Invalid { message: m, .. } => message(
            StatusCode::BAD_REQUEST,
            page,
            "Something needs to be fixed",
            &m,
            "/pay",
            "Start again",
        ),
        ServiceError::Conflict {
            code: "payment_refused",
            message: m,
        } => message(
            StatusCode::FORBIDDEN,
            page,
            "We can't take this payment",
            &m,
            "/",
            "Go to the start",
        ),
        other => {
            tracing::error!(error = %other, "portal request failed");
            message(
                StatusCode::INTERNAL_SERVER_ERROR,
                page,
                "Something went wrong on our side",
                "Please try again in a few minutes. If you were paying, check your email for a receipt before paying again.",
                "/",
                "Go to the start",
            )
        }
    }
}

/// Looks a field's error up in a list (for templates).
pub fn error_for<'a>(errors: &'a [FieldError], name: &str) -> Option<&'a str> {
    errors
        .iter()
        .find(|e| e.field == name)
        .map(|e| e.message.as_str())
}

/// The cookie that carries a session token.
pub fn session_cookie(token: &SessionToken, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    // The token is 64 hex digits: always a valid header value.
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax{secure}",
        token.expose()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Whether the portal is served over HTTPS (the cookie is then `Secure`).
#[derive(Clone, Copy)]
pub struct SecureCookie(pub bool);

/// A session that a handler replaced (a new id after a privilege change): the response must
/// carry the new cookie.
pub fn with_session_cookie(mut resp: Response, token: &SessionToken, secure: bool) -> Response {
    resp.headers_mut()
        .insert(header::SET_COOKIE, session_cookie(token, secure));
    resp
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Finds or starts the session, checks the CSRF token of every POST, and sets page headers.
/// The kinds of request limited per client address (`[portal] *_per_window`).
#[derive(Clone, Copy, Debug)]
enum Kind {
    Lookup,
    Signin,
    Code,
    Reset,
    Enrol,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Lookup => "portal.lookup",
            Kind::Signin => "portal.signin",
            Kind::Code => "portal.code",
            Kind::Reset => "portal.reset",
            Kind::Enrol => "portal.enrol",
        }
    }

    fn limit(self, l: &billpay_services::limits::PortalLimits) -> billpay_services::limits::Limit {
        match self {
            Kind::Lookup => l.lookup,
            Kind::Signin => l.signin,
            Kind::Code => l.code,
            Kind::Reset => l.reset,
            Kind::Enrol => l.enrol,
        }
    }
}

/// The limit middleware as a plain function pointer (so the layer's type can be named).
type LimitFn = fn(
    State<(Billpay, Kind)>,
    Request,
    Next,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;
type LimitLayer =
    axum::middleware::FromFnLayer<LimitFn, (Billpay, Kind), (State<(Billpay, Kind)>, Request)>;

/// A layer that counts the route's POSTs per client address and refuses those over the limit.
fn limited(app: &Billpay, kind: Kind) -> LimitLayer {
    let f: LimitFn = |state, req, next| Box::pin(rate_limited(state, req, next));
    middleware::from_fn_with_state((app.clone(), kind), f)
}

/// The client's address: with `[portal] client_ip_header`, the right-most entry of that header
/// (the one the trusted proxy added); else the connection's peer.
fn client_ip(app: &Billpay, req: &Request) -> Option<std::net::IpAddr> {
    client_ip_of(app, req.headers(), req.extensions())
}

fn client_ip_of(
    app: &Billpay,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Option<std::net::IpAddr> {
    if let Some(name) = &app.config().portal.client_ip_header {
        let last = headers
            .get_all(name.as_str())
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim);
        if let Some(v) = last {
            let parsed = v
                .parse::<std::net::IpAddr>()
                .ok()
                .or_else(|| v.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()));
            if parsed.is_some() {
                return parsed;
            }
        }
    }
    extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address as the rate limits and the risk rules count it (an IPv6 address's
/// /64), when there is one.
pub(crate) struct ClientKey(pub Option<String>);

impl axum::extract::FromRequestParts<Billpay> for ClientKey {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        app: &Billpay,
    ) -> Result<Self, Self::Rejection> {
        Ok(ClientKey(
            client_ip_of(app, &parts.headers, &parts.extensions)
                .map(billpay_services::limits::client_key),
        ))
    }
}

async fn rate_limited(
    State((app, kind)): State<(Billpay, Kind)>,
    req: Request,
    next: Next,
) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let client = client_ip(&app, &req)
        .map(billpay_services::limits::client_key)
        .unwrap_or_else(|| "unknown".into());
    let limit = kind.limit(&app.config().portal.limits);
    match app.rate_limit(kind.name(), &client, limit).await {
        Ok(None) => next.run(req).await,
        Ok(Some(wait)) => {
            let Some(session) = req.extensions().get::<PortalSession>().cloned() else {
                return StatusCode::TOO_MANY_REQUESTS.into_response();
            };
            let minutes = (wait.as_secs() + 59) / 60;
            let mut resp = message(
                StatusCode::TOO_MANY_REQUESTS,
                Page::new(&app, &session),
                "Too many tries",
                &format!(
                    "There have been too many tries from your connection. Please wait {minutes} minute{} and try again, or call us at {}.",
                    if minutes == 1 { "" } else { "s" },
                    app.config().biller.support_phone
                ),
                "/",
                "Home",
            );
            if let Ok(v) = HeaderValue::from_str(&wait.as_secs().max(1).to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Err(e) => {
            // Counting failed (the database is in trouble): let the request through; the
            // per-account lockouts still hold.
            tracing::error!(error = %e, "rate limit could not be counted");
            next.run(req).await
        }
    }
}

async fn session_layer(
    State((app, secure)): State<(Billpay, bool)>,
    req: Request,
    next: Next,
) -> Response {
    let token = cookie_value(req.headers(), SESSION_COOKIE).map(str::to_string);
    let found = match token {
        Some(t) => app.portal_session(&t).await,
        None => Ok(None),
    };
    let (session, new_token) = match found {
        Ok(Some(s)) => (s, None),
        Ok(None) => match app.portal_start_session().await {
            Ok((t, s)) => (s, Some(t)),
            Err(e) => {
                tracing::error!(error = %e, "portal session could not be started");
                return (StatusCode::SERVICE_UNAVAILABLE, "Please try again shortly.")
                    .into_response();
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "portal session could not be read");
            return (StatusCode::SERVICE_UNAVAILABLE, "Please try again shortly.").into_response();
        }
    };
    let (mut parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        let bytes = match axum::body::to_bytes(body, crate::REQUEST_BODY_MAX_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response();
            }
        };
        let sent = form_field(&bytes, CSRF_FIELD);
        if !sent.as_deref().is_some_and(|t| session.csrf_matches(t)) {
            tracing::warn!("portal form refused: missing or wrong CSRF token");
            let resp = message(
                StatusCode::FORBIDDEN,
                Page::new(&app, &session),
                "This form has expired",
                "For your security, this form can no longer be sent. Nothing was paid or changed. Open the page again and try once more.",
                "/",
                "Go to the start",
            );
            return finish(resp, new_token.as_ref(), secure);
        }
        Body::from(bytes)
    } else {
        body
    };
    parts.extensions.insert(session);
    parts.extensions.insert(SecureCookie(secure));
    let resp = next.run(Request::from_parts(parts, body)).await;
    finish(resp, new_token.as_ref(), secure)
}

fn finish(resp: Response, new_token: Option<&SessionToken>, secure: bool) -> Response {
    page_headers(resp, new_token.map(|t| session_cookie(t, secure)))
}

/// What every page of the portal and the desk carries: a new session's cookie (unless the
/// handler set one), the content security policy, and no caching.
pub(crate) fn page_headers(mut resp: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie
        && !resp.headers().contains_key(header::SET_COOKIE)
    {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// One field of a urlencoded form body.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// See Other: the answer to every successful form (post, redirect, get).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
