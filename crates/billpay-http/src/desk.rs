//! The agent desk: web pages for staff (`/desk`). Its own session cookie (`billpay_staff`,
//! path `/desk`) and session table, apart from customers'; the same CSRF rule (every POST
//! carries the session's token, checked before a handler runs) and the same strict CSP as
//! the portal. Every page but sign-in needs a session that passed both the password and the
//! authenticator code. Handlers parse, call one service function, render.

use std::time::Duration;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{Form, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use billpay_domain::AccountNumber;
use billpay_services::chat::{ConversationState, Sender, Side};
use billpay_services::portal::SessionToken;
use billpay_services::staff::{AccountPanel, PasswordOutcome, Staff, StaffSession};
use billpay_services::{Billpay, ServiceError};
use serde::Deserialize;

use crate::portal::chat::{MessageView, mark_read, message_stream};

/// The desk's session cookie.
pub const STAFF_COOKIE: &str = "billpay_staff";

/// Canned responses: (title, text).
pub const CANNED: &[(&str, &str)] = &[
    (
        "Greeting",
        "Hello, thank you for waiting. I have your account open and the conversation so far. How can I help?",
    ),
    (
        "Declined card",
        "Your bank declined the card, so nothing was charged. You can try another card or a bank account with the secure pay form, or call your bank about the decline.",
    ),
    (
        "Returned bank payment",
        "Your bank returned the payment, so the amount is owed again. Please pay with another method, or make sure the funds are available before trying the same account again.",
    ),
    (
        "Closing",
        "Is there anything else I can help you with today? Thank you for contacting us.",
    ),
];

pub fn routes(app: Billpay, secure_cookie: bool) -> Router<Billpay> {
    let mut r = Router::new()
        .route("/desk", get(inbox))
        .route("/desk/signin", get(signin_page).post(signin))
        .route("/desk/signin/code", get(code_page).post(check_code))
        .route("/desk/signout", post(sign_out))
        .route("/desk/availability", post(availability))
        .route("/desk/accounts", get(account_lookup))
        .route("/desk/accounts/{number}", get(account))
        .route(
            "/desk/accounts/{number}/fees/{charge}/waive",
            post(waive_fee),
        )
        .route("/desk/accounts/{number}/pay/review", post(pay_review))
        .route("/desk/accounts/{number}/pay", post(pay_confirm))
        .route("/desk/accounts/{number}/schedule", post(schedule))
        .route("/desk/accounts/{number}/autopay", post(autopay_enroll))
        .route(
            "/desk/accounts/{number}/autopay/cancel",
            post(autopay_cancel),
        )
        .route("/desk/accounts/{number}/phone-handoff", post(phone_handoff))
        .route("/desk/password", get(password_page).post(change_password))
        .route("/desk/conversations/{id}/typing", post(typing))
        .route("/desk/conversations/{id}/read", post(read))
        .route("/desk/conversations/{id}", get(conversation))
        .route("/desk/conversations/{id}/events", get(events))
        .route("/desk/conversations/{id}/take", post(take))
        .route("/desk/conversations/{id}/reply", post(reply))
        .route("/desk/conversations/{id}/note", post(note))
        .route("/desk/conversations/{id}/transfer", post(transfer))
        .route("/desk/conversations/{id}/close", post(close))
        .route("/desk/conversations/{id}/payrequest", post(pay_request))
        .merge(crate::console::routes())
        .merge(crate::reviews::routes());
    if app.config().portal.demo_mailbox {
        r = r.route("/desk/demo-code", get(demo_code));
    }
    r.layer(middleware::from_fn_with_state(
        (app, secure_cookie),
        desk_layer,
    ))
}

/// What every desk page's layout shows.
pub struct Desk {
    pub name: Option<String>,
    pub role: &'static str,
    pub csrf: String,
}

impl Desk {
    pub(crate) fn of(s: &StaffSession) -> Desk {
        Desk {
            name: s.staff.as_ref().map(|s| s.name.clone()),
            role: s.staff.as_ref().map(|s| s.role.as_str()).unwrap_or(""),
            csrf: s.csrf_token.clone(),
        }
    }
}

pub(crate) fn html<T: Template>(status: StatusCode, t: &T) -> Response {
    crate::portal::html(status, t)
}

#[derive(Template)]
#[template(path = "desk/message.html")]
struct MessagePage {
    desk: Desk,
    title: String,
    message: String,
    link: String,
}

pub(crate) fn message(
    s: &StaffSession,
    status: StatusCode,
    title: &str,
    text: &str,
    link: &str,
) -> Response {
    html(
        status,
        &MessagePage {
            desk: Desk::of(s),
            title: title.into(),
            message: text.into(),
            link: link.into(),
        },
    )
}

pub(crate) fn service_error(s: &StaffSession, e: ServiceError) -> Response {
    match e {
        ServiceError::NotFound { what } => message(
            s,
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("No such {what}."),
            "/desk",
        ),
        ServiceError::Conflict {
            code: "forbidden",
            message: m,
        } => message(s, StatusCode::FORBIDDEN, "Not allowed", &m, "/desk"),
        ServiceError::Conflict { message: m, .. } | ServiceError::Invalid { message: m, .. } => {
            message(s, StatusCode::CONFLICT, "Not done", &m, "/desk")
        }
        other => {
            tracing::error!(error = %other, "desk request failed");
            message(
                s,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Please try again.",
                "/desk",
            )
        }
    }
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn cookie(token: &SessionToken, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{STAFF_COOKIE}={}; Path=/desk; HttpOnly; SameSite=Strict{secure}",
        token.expose()
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Clone, Copy)]
struct Secure(bool);

/// The signed-in staff member (None: the page redirects to sign in).
pub(crate) fn signed_in(s: &StaffSession) -> Option<Staff> {
    s.staff.clone()
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

async fn desk_layer(
    State((app, secure)): State<(Billpay, bool)>,
    req: Request,
    next: Next,
) -> Response {
    let token = cookie_value(req.headers(), STAFF_COOKIE).map(str::to_string);
    let found = match token {
        Some(t) => app.staff_session(&t).await,
        None => Ok(None),
    };
    let (session, new_token) = match found {
        Ok(Some(s)) => (s, None),
        Ok(None) => match app.staff_start_session().await {
            Ok((t, s)) => (s, Some(t)),
            Err(e) => {
                tracing::error!(error = %e, "desk session could not be started");
                return (StatusCode::SERVICE_UNAVAILABLE, "Please try again shortly.")
                    .into_response();
            }
        },
        Err(e) => {
            tracing::error!(error = %e, "desk session could not be read");
            return (StatusCode::SERVICE_UNAVAILABLE, "Please try again shortly.").into_response();
        }
    };
    let (mut parts, body) = req.into_parts();
    let body = if parts.method == Method::POST {
        let Ok(bytes) = axum::body::to_bytes(body, crate::REQUEST_BODY_MAX_BYTES).await else {
            return (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response();
        };
        let sent = crate::portal::form_field(&bytes, crate::portal::CSRF_FIELD);
        if !sent.as_deref().is_some_and(|t| session.csrf_matches(t)) {
            tracing::warn!("desk form refused: missing or wrong CSRF token");
            let resp = message(
                &session,
                StatusCode::FORBIDDEN,
                "This form has expired",
                "Nothing was changed. Open the page again and try once more.",
                "/desk",
            );
            return finish(resp, new_token.as_ref(), secure);
        }
        Body::from(bytes)
    } else {
        body
    };
    // A temporary password is changed before anything else is possible.
    let must_change = session
        .staff
        .as_ref()
        .is_some_and(|s| s.password_change_required);
    if must_change && !matches!(parts.uri.path(), "/desk/password" | "/desk/signout") {
        return finish(see_other("/desk/password"), new_token.as_ref(), secure);
    }
    parts.extensions.insert(session);
    parts.extensions.insert(Secure(secure));
    let resp = next.run(Request::from_parts(parts, body)).await;
    finish(resp, new_token.as_ref(), secure)
}

fn finish(resp: Response, new_token: Option<&SessionToken>, secure: bool) -> Response {
    crate::portal::page_headers(resp, new_token.map(|t| cookie(t, secure)))
}

pub(crate) type S = axum::Extension<StaffSession>;

// ---------------------------------------------------------------- sign-in

#[derive(Template)]
#[template(path = "desk/signin.html")]
struct SigninPage {
    desk: Desk,
    error: Option<String>,
    email: String,
}

async fn signin_page(axum::Extension(s): S) -> Response {
    html(
        StatusCode::OK,
        &SigninPage {
            desk: Desk::of(&s),
            error: None,
            email: String::new(),
        },
    )
}

#[derive(Deserialize)]
struct SigninForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn signin(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Form(f): Form<SigninForm>,
) -> Response {
    let error = match app.staff_check_password(&s, &f.email, &f.password).await {
        Ok(PasswordOutcome::Code | PasswordOutcome::Enrol) => {
            return see_other("/desk/signin/code");
        }
        Ok(PasswordOutcome::Wrong) => "The email or password is not right.".to_string(),
        Ok(PasswordOutcome::Locked(m)) => {
            format!("Too many failed sign-ins. Try again in {m} minutes.")
        }
        Err(e) => return service_error(&s, e),
    };
    html(
        StatusCode::UNPROCESSABLE_ENTITY,
        &SigninPage {
            desk: Desk::of(&s),
            error: Some(error),
            email: f.email.chars().take(100).collect(),
        },
    )
}

#[derive(Template)]
#[template(path = "desk/code.html")]
struct CodePage {
    desk: Desk,
    error: Option<String>,
    qr_svg: Option<String>,
    secret_text: String,
    demo: bool,
}

async fn code_page_with(
    app: &Billpay,
    s: &StaffSession,
    status: StatusCode,
    error: Option<String>,
) -> Response {
    if s.pending_staff_id.is_none() {
        return see_other("/desk/signin");
    }
    let enrolment = match app.staff_enrolment(s).await {
        Ok(e) => e,
        Err(e) => return service_error(s, e),
    };
    html(
        status,
        &CodePage {
            desk: Desk::of(s),
            error,
            secret_text: enrolment
                .as_ref()
                .map(|e| e.secret_text.expose_secret().to_string())
                .unwrap_or_default(),
            qr_svg: enrolment.map(|e| e.qr_svg),
            demo: app.config().portal.demo_mailbox,
        },
    )
}

async fn code_page(State(app): State<Billpay>, axum::Extension(s): S) -> Response {
    code_page_with(&app, &s, StatusCode::OK, None).await
}

#[derive(Deserialize)]
struct CodeForm {
    #[serde(default)]
    code: String,
}

async fn check_code(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    axum::Extension(Secure(secure)): axum::Extension<Secure>,
    Form(f): Form<CodeForm>,
) -> Response {
    match app.staff_check_code(&s, &f.code).await {
        Ok(Some((token, _))) => {
            let mut resp = see_other("/desk");
            resp.headers_mut()
                .insert(header::SET_COOKIE, cookie(&token, secure));
            resp
        }
        Ok(None) => code_page_with(
            &app,
            &s,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some(
                "That code is not right, or was used already. Enter the code your app shows now."
                    .into(),
            ),
        )
        .await,
        Err(e) => service_error(&s, e),
    }
}

async fn sign_out(State(app): State<Billpay>, axum::Extension(s): S) -> Response {
    match app.staff_sign_out(&s).await {
        Ok(()) => see_other("/desk/signin"),
        Err(e) => service_error(&s, e),
    }
}

/// `serve --demo` only: the demo agent's current authenticator code.
async fn demo_code(State(app): State<Billpay>, axum::Extension(s): S) -> Response {
    let staff = match app.staff_by_email(crate::DEMO_AGENT_EMAIL).await {
        Ok(Some(st)) => st,
        Ok(None) => return message(&s, StatusCode::NOT_FOUND, "No demo agent", "", "/desk"),
        Err(e) => return service_error(&s, e),
    };
    match app.totp_demo_code(&Staff::totp_owner(&staff.id)).await {
        Ok(Some(code)) => message(
            &s,
            StatusCode::OK,
            "Demo authenticator code",
            &format!(
                "The demo agent's code right now is {code} (it changes every 30 seconds). Demo mode only."
            ),
            "/desk/signin/code",
        ),
        Ok(None) => message(&s, StatusCode::NOT_FOUND, "Not enrolled", "", "/desk"),
        Err(e) => service_error(&s, e),
    }
}

// ---------------------------------------------------------------- inbox

pub struct ConvRow {
    pub id: String,
    pub name: String,
    pub since: String,
}

#[derive(Template)]
#[template(path = "desk/inbox.html")]
struct InboxPage {
    desk: Desk,
    available: bool,
    queued: Vec<ConvRow>,
    offline: Vec<ConvRow>,
    mine: Vec<ConvRow>,
    others: Vec<ConvRow>,
}

fn conv_rows(list: Vec<billpay_services::chat::Conversation>) -> Vec<ConvRow> {
    list.into_iter()
        .map(|c| ConvRow {
            since: c
                .queued_at
                .unwrap_or(c.created_at)
                .strftime("%H:%M UTC")
                .to_string(),
            id: c.id,
            name: c.customer_name,
        })
        .collect()
}

async fn inbox(State(app): State<Billpay>, axum::Extension(s): S) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    match app.desk_inbox(&staff).await {
        Ok(i) => html(
            StatusCode::OK,
            &InboxPage {
                desk: Desk::of(&s),
                available: staff.available,
                queued: conv_rows(i.queued),
                offline: conv_rows(i.offline),
                mine: conv_rows(i.mine),
                others: conv_rows(i.others),
            },
        ),
        Err(e) => service_error(&s, e),
    }
}

#[derive(Deserialize)]
struct AvailabilityForm {
    available: String,
}

async fn availability(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Form(f): Form<AvailabilityForm>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    match app.desk_set_available(&staff, f.available == "yes").await {
        Ok(()) => see_other("/desk"),
        Err(e) => service_error(&s, e),
    }
}

// ---------------------------------------------------------------- account panel

pub struct PaymentLine {
    pub date: String,
    pub amount: String,
    pub method: String,
    pub status: String,
    pub reason: String,
    pub confirmation: String,
}

pub struct FeeLine {
    pub id: String,
    pub text: String,
    pub waivable: bool,
}

pub struct PanelView {
    pub number: String,
    pub name: String,
    pub balance: String,
    pub status: &'static str,
    pub autopay: String,
    pub payments: Vec<PaymentLine>,
    pub methods: Vec<String>,
    pub statements: Vec<String>,
    pub fees: Vec<FeeLine>,
    pub arrangements: Vec<String>,
    pub disputes: Vec<String>,
    /// Saved cards a desk action may use: (id, "Visa ending in 4242").
    pub cards: Vec<(String, String)>,
    pub autopay_on: bool,
    pub handoffs: Vec<String>,
    /// Fraud-rule decisions: refusals first-class, with the reasons staff may read.
    pub risk: Vec<String>,
    /// Payments held for review and how each was decided.
    pub reviews: Vec<String>,
}

fn panel_view(p: AccountPanel) -> PanelView {
    let currency = p.summary.account.currency;
    let waived: Vec<&str> = p
        .charges
        .iter()
        .filter(|c| c.kind == "waiver")
        .map(|c| c.source_id.as_str())
        .collect();
    PanelView {
        cards: p
            .methods
            .iter()
            .filter(|m| m.summary.kind == billpay_domain::MethodKind::Card)
            .map(|m| (m.id.clone(), m.summary.describe()))
            .collect(),
        autopay_on: p.autopay.as_ref().is_some_and(|a| a.status == "active"),
        handoffs: p
            .handoffs
            .iter()
            .map(|h| {
                let state = match h.status.as_str() {
                    "open" => format!(
                        "waiting for the call until {}",
                        h.expires_at.strftime("%H:%M UTC")
                    ),
                    "in_call" => "the caller is keying the card".into(),
                    other => other.replace('_', " "),
                };
                match &h.result {
                    Some(r) => format!("Code {}, {}: {state}. {r}", h.code, h.amount),
                    None => format!("Code {}, {}: {state}.", h.code, h.amount),
                }
            })
            .collect(),
        number: p.summary.account.account_number.as_str().to_string(),
        name: p.summary.account.name.clone(),
        balance: p.summary.balance.to_string(),
        status: p.summary.status.as_str(),
        autopay: match &p.autopay {
            Some(a) if a.status == "active" => {
                let method = p
                    .methods
                    .iter()
                    .find(|m| m.id == a.payment_method_id)
                    .map(|m| m.summary.describe())
                    .unwrap_or_else(|| "a saved method".into());
                format!("On, with {method}")
            }
            _ => "Off".into(),
        },
        payments: p
            .payments
            .iter()
            .map(|x| PaymentLine {
                date: x.local_time().strftime("%Y-%m-%d %H:%M").to_string(),
                amount: x.amount.to_string(),
                method: x.method.describe(),
                status: x.status.as_str().to_string(),
                reason: x
                    .decline
                    .map(|d| {
                        format!(
                            "{} ({}). {}",
                            d.message(billpay_domain::Language::En),
                            d.as_str(),
                            d.next_step(billpay_domain::Language::En)
                        )
                    })
                    .unwrap_or_default(),
                confirmation: x.confirmation_number.to_string(),
            })
            .collect(),
        methods: p
            .methods
            .iter()
            .map(|m| {
                let default = if m.is_default { " (default)" } else { "" };
                format!("{}{default}", m.summary.describe())
            })
            .collect(),
        statements: p
            .statements
            .iter()
            .map(|s| format!("{}: {} due {}", s.statement_date, s.amount_due, s.due_date))
            .collect(),
        fees: p
            .charges
            .iter()
            .filter(|c| c.kind != "waiver")
            .map(|c| {
                let is_waived = waived.contains(&c.id.as_str());
                FeeLine {
                    id: c.id.clone(),
                    text: format!(
                        "{}: {}{}",
                        c.description,
                        billpay_domain::Money::new(c.amount, currency),
                        if is_waived { " (waived)" } else { "" }
                    ),
                    waivable: !is_waived
                        && (c.kind == "late_fee" || c.kind == "returned_payment_fee"),
                }
            })
            .collect(),
        arrangements: p.arrangements,
        reviews: p.reviews.iter().map(crate::reviews::review_line).collect(),
        risk: p
            .risk
            .iter()
            .map(|d| {
                let at = billpay_services::clock::from_micros(d.at).strftime("%Y-%m-%d %H:%M UTC");
                let what = match d.action {
                    billpay_domain::risk::RiskAction::Block => "refused",
                    billpay_domain::risk::RiskAction::Review => "sent to review",
                    billpay_domain::risk::RiskAction::Allow => "allowed",
                };
                let reasons: Vec<&str> = d.reasons.iter().map(|r| r.describe()).collect();
                if reasons.is_empty() {
                    format!("{at}: {} {} payment {what}.", d.amount, d.channel)
                } else {
                    format!(
                        "{at}: {} {} payment {what} (score {}): {}.",
                        d.amount,
                        d.channel,
                        d.score,
                        reasons.join("; ")
                    )
                }
            })
            .collect(),
        disputes: p
            .disputes
            .iter()
            .map(|d| {
                let confirmation = p
                    .payments
                    .iter()
                    .find(|x| x.id == d.payment_id)
                    .map(|x| format!(" on payment {}", x.confirmation_number))
                    .unwrap_or_default();
                format!(
                    "{} disputed{confirmation} ({}), opened {}: {}{}",
                    billpay_domain::Money::new(
                        d.amount,
                        billpay_domain::Currency::parse(&d.currency).unwrap_or(currency)
                    ),
                    d.reason.replace('_', " "),
                    d.created_at.strftime("%Y-%m-%d"),
                    d.status.replace('_', " "),
                    if d.reversed {
                        "; the payment is reversed on the account until it is resolved"
                    } else {
                        ""
                    }
                )
            })
            .collect(),
    }
}

#[derive(Template)]
#[template(path = "desk/account.html")]
struct AccountPage {
    desk: Desk,
    p: PanelView,
    back: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct LookupQuery {
    #[serde(default)]
    number: String,
}

async fn account_lookup(axum::Extension(s): S, Query(q): Query<LookupQuery>) -> Response {
    if signed_in(&s).is_none() {
        return see_other("/desk/signin");
    }
    let digits: String = q.number.chars().filter(char::is_ascii_digit).collect();
    match AccountNumber::parse(&digits) {
        Ok(n) => see_other(&format!("/desk/accounts/{}", n.as_str())),
        Err(_) => message(
            &s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Not an account number",
            "Enter the 12-digit account number.",
            "/desk",
        ),
    }
}

async fn account(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(number): Path<String>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let Ok(number) = AccountNumber::parse(&number) else {
        return service_error(&s, ServiceError::NotFound { what: "account" });
    };
    match app.desk_account_panel(&staff, &number).await {
        Ok(p) => html(
            StatusCode::OK,
            &AccountPage {
                desk: Desk::of(&s),
                back: format!("/desk/accounts/{}", number.as_str()),
                p: panel_view(p),
                error: None,
            },
        ),
        Err(e) => service_error(&s, e),
    }
}

#[derive(Deserialize)]
struct WaiveForm {
    #[serde(default)]
    reason: String,
    #[serde(default)]
    back: String,
}

async fn waive_fee(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path((number, charge)): Path<(String, String)>,
    Form(f): Form<WaiveForm>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let Ok(number) = AccountNumber::parse(&number) else {
        return service_error(&s, ServiceError::NotFound { what: "account" });
    };
    match app
        .desk_waive_fee(&staff, &number, &charge, &f.reason)
        .await
    {
        Ok(_) => {
            // Back to the page the form was on: only a desk path.
            let back = if f.back.starts_with("/desk/") && !f.back.contains("//") {
                f.back
            } else {
                format!("/desk/accounts/{}", number.as_str())
            };
            see_other(&back)
        }
        Err(e) => service_error(&s, e),
    }
}

// ---------------------------------------------------------------- conversations

#[derive(Template)]
#[template(path = "desk/conversation.html")]
struct ConversationPage {
    desk: Desk,
    id: String,
    name: String,
    state: &'static str,
    queued: bool,
    open: bool,
    offline: bool,
    last_seq: i64,
    messages: Vec<MessageView>,
    /// The customer typed in the last few seconds.
    typing: bool,
    canned: &'static [(&'static str, &'static str)],
    panel: Option<PanelView>,
    back: String,
    error: Option<String>,
}

async fn conversation(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(id): Path<String>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let conv = match app.desk_conversation(&staff, &id).await {
        Ok(c) => c,
        Err(e) => return service_error(&s, e),
    };
    let messages = match app.chat_messages(&conv.id, 0, true).await {
        Ok(m) => m,
        Err(e) => return service_error(&s, e),
    };
    // Showing the conversation to its representative is reading it.
    if let Some(last) = messages.last()
        && let Err(e) = app.desk_read(&staff, &conv.id, last.seq).await
    {
        return service_error(&s, e);
    }
    let mut views: Vec<MessageView> = messages.iter().map(desk_view).collect();
    mark_read(&mut views, "agent", conv.customer_read_seq);
    let typing = app.chat.is_typing(&conv.id, Side::Customer);
    let panel = match &conv.account_number {
        Some(n) => match app.desk_account_panel(&staff, n).await {
            Ok(p) => Some(panel_view(p)),
            Err(e) => return service_error(&s, e),
        },
        None => None,
    };
    html(
        StatusCode::OK,
        &ConversationPage {
            desk: Desk::of(&s),
            back: format!("/desk/conversations/{}", conv.id),
            name: conv.customer_name.clone(),
            state: conv.state.as_str(),
            queued: conv.state == ConversationState::Queued,
            open: conv.state == ConversationState::Assigned,
            offline: conv.state == ConversationState::Offline,
            last_seq: messages.last().map(|m| m.seq).unwrap_or(0),
            messages: views,
            typing,
            canned: CANNED,
            panel,
            id: conv.id,
            error: None,
        },
    )
}

/// A message as staff see it: the customer by name, notes marked.
fn desk_view(m: &billpay_services::chat::ChatMessage) -> MessageView {
    let mut v = MessageView::of(m);
    v.who = match m.sender {
        Sender::Customer => "Customer".into(),
        Sender::Note => format!("Note by {}", m.author.as_deref().unwrap_or("staff")),
        Sender::Agent => m.author.clone().unwrap_or_else(|| "Agent".into()),
        _ => v.who,
    };
    v
}

async fn events(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let conv = match app.desk_conversation(&staff, &id).await {
        Ok(c) => c,
        Err(e) => return service_error(&s, e),
    };
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok())
        .or(q.after)
        .unwrap_or(0);
    let stream = message_stream(app, conv.id, after, Side::Agent, |m| {
        let v = desk_view(m);
        Event::default()
            .id(v.seq.to_string())
            .event("message")
            .data(
                serde_json::json!({"seq": v.seq, "sender": v.sender, "who": v.who,
                    "body": v.body, "link": serde_json::Value::Null, "link_text": ""})
                .to_string(),
            )
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: Option<i64>,
}

async fn take(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(id): Path<String>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    match app.desk_take(&staff, &id).await {
        Ok(()) => see_other(&format!("/desk/conversations/{id}")),
        Err(e) => service_error(&s, e),
    }
}

#[derive(Deserialize)]
struct SayForm {
    #[serde(default)]
    message: String,
    #[serde(default)]
    canned: String,
}

async fn reply(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(id): Path<String>,
    Form(f): Form<SayForm>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let text = if f.message.trim().is_empty() {
        f.canned
            .parse::<usize>()
            .ok()
            .and_then(|i| CANNED.get(i))
            .map(|c| c.1.to_string())
            .unwrap_or_default()
    } else {
        f.message
    };
    match app.desk_say(&staff, &id, &text, false).await {
        Ok(()) => see_other(&format!("/desk/conversations/{id}#chat-form")),
        Err(e) => service_error(&s, e),
    }
}

async fn note(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(id): Path<String>,
    Form(f): Form<SayForm>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    match app.desk_say(&staff, &id, &f.message, true).await {
        Ok(()) => see_other(&format!("/desk/conversations/{id}")),
        Err(e) => service_error(&s, e),
    }
}

#[derive(Deserialize)]
struct TransferForm {
    #[serde(default)]
    to: String,
}

async fn transfer(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(id): Path<String>,
    Form(f): Form<TransferForm>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let to = match app.staff_by_email(&f.to).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return service_error(
                &s,
                ServiceError::invalid("to", "No staff member has this email."),
            );
        }
        Err(e) => return service_error(&s, e),
    };
    match app.desk_transfer(&staff, &id, &to.id).await {
        Ok(()) => see_other("/desk"),
        Err(e) => service_error(&s, e),
    }
}

async fn close(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(id): Path<String>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    match app.desk_close(&staff, &id).await {
        Ok(()) => see_other("/desk"),
        Err(e) => service_error(&s, e),
    }
}

#[derive(Deserialize)]
struct PayRequestForm {
    #[serde(default)]
    amount: String,
}

async fn pay_request(
    State(app): State<Billpay>,
    axum::Extension(s): S,
    Path(id): Path<String>,
    Form(f): Form<PayRequestForm>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    let currency = match app.chat_conversation(&id).await {
        Ok(c) => match &c.account_number {
            Some(n) => match app.account(n).await {
                Ok(a) => a.currency,
                Err(e) => return service_error(&s, e),
            },
            None => billpay_domain::Currency::USD,
        },
        Err(e) => return service_error(&s, e),
    };
    let Ok(amount) = billpay_domain::Money::parse(f.amount.trim(), currency) else {
        return service_error(
            &s,
            ServiceError::invalid("amount", "Enter the amount to request, like 84.10."),
        );
    };
    match app.desk_pay_request(&staff, &id, amount).await {
        Ok(_) => see_other(&format!("/desk/conversations/{id}#chat-form")),
        Err(e) => service_error(&s, e),
    }
}

// ---------------------------------------------------------------- typing and read receipts

async fn typing(
    State(app): State<Billpay>,
    axum::extract::Extension(s): S,
    Path(id): Path<String>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match app.desk_typing(&staff, &id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&s, e),
    }
}

#[derive(Deserialize)]
struct SeqForm {
    #[serde(default)]
    seq: i64,
}

async fn read(
    State(app): State<Billpay>,
    axum::extract::Extension(s): S,
    Path(id): Path<String>,
    Form(f): Form<SeqForm>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    match app.desk_read(&staff, &id, f.seq).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => service_error(&s, e),
    }
}

// ---------------------------------------------------------------- a temporary password

#[derive(Template)]
#[template(path = "desk/password.html")]
struct PasswordPage {
    desk: Desk,
    error: Option<String>,
}

async fn password_page(axum::extract::Extension(s): S) -> Response {
    if signed_in(&s).is_none() {
        return see_other("/desk/signin");
    }
    html(
        StatusCode::OK,
        &PasswordPage {
            desk: Desk::of(&s),
            error: None,
        },
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    again: String,
}

async fn change_password(
    State(app): State<Billpay>,
    axum::extract::Extension(s): S,
    Form(f): Form<PasswordForm>,
) -> Response {
    let Some(staff) = signed_in(&s) else {
        return see_other("/desk/signin");
    };
    match app
        .staff_change_password(&staff, &f.password, &f.again)
        .await
    {
        Ok(()) => see_other("/desk"),
        Err(ServiceError::Invalid { message, .. }) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &PasswordPage {
                desk: Desk::of(&s),
                error: Some(message),
            },
        ),
        Err(e) => service_error(&s, e),
    }
}

// ---------------------------------------------------------------- account panel actions

/// Back to the page a panel form was on: only a desk path.
fn back_to(back: &str, number: &AccountNumber) -> String {
    if back.starts_with("/desk/") && !back.contains("//") {
        back.to_string()
    } else {
        format!("/desk/accounts/{}", number.as_str())
    }
}

/// The account of a panel form, and its currency.
async fn panel_account(
    app: &Billpay,
    s: &StaffSession,
    number: &str,
) -> Result<(Staff, AccountNumber, billpay_domain::Currency), Response> {
    let Some(staff) = signed_in(s) else {
        return Err(see_other("/desk/signin"));
    };
    let Ok(number) = AccountNumber::parse(number) else {
        return Err(service_error(s, ServiceError::NotFound { what: "account" }));
    };
    match app.account(&number).await {
        Ok(a) => Ok((staff, number, a.currency)),
        Err(e) => Err(service_error(s, e)),
    }
}

fn parse_amount(
    text: &str,
    currency: billpay_domain::Currency,
) -> Result<billpay_domain::Money, ServiceError> {
    billpay_domain::Money::parse(text.trim(), currency)
        .map_err(|_| ServiceError::invalid("amount", "Enter the amount, like 84.10."))
}

#[derive(Deserialize)]
struct PanelPayForm {
    #[serde(default)]
    method: String,
    #[serde(default)]
    amount: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    form_key: String,
    #[serde(default)]
    back: String,
}

#[derive(Template)]
#[template(path = "desk/confirm_payment.html")]
struct ConfirmPaymentPage {
    desk: Desk,
    number: String,
    method_id: String,
    method: String,
    amount: String,
    amount_text: String,
    form_key: String,
    back: String,
}

/// Take a payment, step 1: the representative reads back the amount and the masked card
/// before anything is charged.
async fn pay_review(
    State(app): State<Billpay>,
    axum::extract::Extension(s): S,
    Path(number): Path<String>,
    Form(f): Form<PanelPayForm>,
) -> Response {
    let (_, number, currency) = match panel_account(&app, &s, &number).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let amount = match parse_amount(&f.amount, currency) {
        Ok(a) => a,
        Err(e) => return service_error(&s, e),
    };
    let method = match app.payment_methods(&number).await {
        Ok(ms) => ms.into_iter().find(|m| m.id == f.method),
        Err(e) => return service_error(&s, e),
    };
    let Some(method) = method else {
        return service_error(
            &s,
            ServiceError::NotFound {
                what: "saved payment method",
            },
        );
    };
    html(
        StatusCode::OK,
        &ConfirmPaymentPage {
            desk: Desk::of(&s),
            number: number.as_str().to_string(),
            method_id: method.id,
            method: method.summary.describe(),
            amount: amount.to_string(),
            amount_text: f.amount.trim().to_string(),
            form_key: app.new_id("dpay"),
            back: back_to(&f.back, &number),
        },
    )
}

/// Take a payment, step 2: confirmed; charged once per confirmation page.
async fn pay_confirm(
    State(app): State<Billpay>,
    axum::extract::Extension(s): S,
    Path(number): Path<String>,
    Form(f): Form<PanelPayForm>,
) -> Response {
    let (staff, number, currency) = match panel_account(&app, &s, &number).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let amount = match parse_amount(&f.amount, currency) {
        Ok(a) => a,
        Err(e) => return service_error(&s, e),
    };
    if f.form_key.is_empty() || f.form_key.len() > 64 {
        return service_error(
            &s,
            ServiceError::invalid("form_key", "Open the confirmation page again."),
        );
    }
    let back = back_to(&f.back, &number);
    // In its own task: a browser closing mid-request cannot cut a payment short.
    let work = {
        let (app, staff, number, method, key) = (
            app.clone(),
            staff.clone(),
            number.clone(),
            f.method.clone(),
            f.form_key.clone(),
        );
        tokio::spawn(async move {
            app.desk_take_payment(&staff, &number, &method, amount, &key)
                .await
        })
    };
    let result = match work.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "desk payment task failed");
            return service_error(&s, ServiceError::invalid("amount", "Please try again."));
        }
    };
    use billpay_services::payments::PaymentResult;
    match result {
        Ok(PaymentResult::Completed(p)) => message(
            &s,
            StatusCode::OK,
            "Payment approved",
            &format!(
                "{} with {} was approved. Confirmation number {}.",
                p.amount,
                p.method.describe(),
                p.confirmation_number
            ),
            &back,
        ),
        Ok(PaymentResult::Declined(p, code)) => message(
            &s,
            StatusCode::PAYMENT_REQUIRED,
            "Payment declined",
            &format!(
                "{} with {} was declined: {} ({}). {} Nothing was charged.",
                p.amount,
                p.method.describe(),
                code.message(billpay_domain::Language::En),
                code.as_str(),
                code.next_step(billpay_domain::Language::En)
            ),
            &back,
        ),
        Ok(PaymentResult::InDoubt(p)) => message(
            &s,
            StatusCode::ACCEPTED,
            "Payment pending",
            &format!(
                "{} with {} is waiting for the processor's answer; it resolves by itself. Do not take it again. Confirmation number {}.",
                p.amount,
                p.method.describe(),
                p.confirmation_number
            ),
            &back,
        ),
        Err(e) => service_error(&s, e),
    }
}

async fn schedule(
    State(app): State<Billpay>,
    axum::extract::Extension(s): S,
    Path(number): Path<String>,
    Form(f): Form<PanelPayForm>,
) -> Response {
    let (staff, number, currency) = match panel_account(&app, &s, &number).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let amount = match parse_amount(&f.amount, currency) {
        Ok(a) => a,
        Err(e) => return service_error(&s, e),
    };
    let Ok(date) = f.date.trim().parse::<jiff::civil::Date>() else {
        return service_error(
            &s,
            ServiceError::invalid("date", "Enter the date as YYYY-MM-DD."),
        );
    };
    match app
        .desk_schedule_payment(&staff, &number, &f.method, amount, date)
        .await
    {
        Ok(p) => message(
            &s,
            StatusCode::OK,
            "Payment scheduled",
            &format!("{} is scheduled for {}.", p.amount, p.start_date),
            &back_to(&f.back, &number),
        ),
        Err(e) => service_error(&s, e),
    }
}

async fn autopay_enroll(
    State(app): State<Billpay>,
    axum::extract::Extension(s): S,
    Path(number): Path<String>,
    Form(f): Form<PanelPayForm>,
) -> Response {
    let (staff, number, _) = match panel_account(&app, &s, &number).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match app.desk_enroll_autopay(&staff, &number, &f.method).await {
        Ok(_) => see_other(&back_to(&f.back, &number)),
        Err(e) => service_error(&s, e),
    }
}

async fn autopay_cancel(
    State(app): State<Billpay>,
    axum::extract::Extension(s): S,
    Path(number): Path<String>,
    Form(f): Form<PanelPayForm>,
) -> Response {
    let (staff, number, _) = match panel_account(&app, &s, &number).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    match app.desk_cancel_autopay(&staff, &number).await {
        Ok(()) => see_other(&back_to(&f.back, &number)),
        Err(e) => service_error(&s, e),
    }
}

/// Sends a phone caller to the keypad card entry: the code (and the URL the phone system
/// redirects the call to) is shown once; the outcome appears on the panel.
async fn phone_handoff(
    State(app): State<Billpay>,
    axum::extract::Extension(s): S,
    Path(number): Path<String>,
    Form(f): Form<PanelPayForm>,
) -> Response {
    let (staff, number, currency) = match panel_account(&app, &s, &number).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let amount = match parse_amount(&f.amount, currency) {
        Ok(a) => a,
        Err(e) => return service_error(&s, e),
    };
    match app.desk_phone_handoff(&staff, &number, amount).await {
        Ok(h) => message(
            &s,
            StatusCode::OK,
            "Send the caller to card entry",
            &format!(
                "Transfer code {code} for {amount}, valid until {until}. Redirect the call to {path}?code={code}: the caller keys the card on the phone line, which you do not hear, and comes back to a representative. The outcome appears on the account panel.",
                code = h.code,
                amount = h.amount,
                until = h.expires_at.strftime("%H:%M UTC"),
                path = billpay_services::ivr::HANDOFF_PATH
            ),
            &back_to(&f.back, &number),
        ),
        Err(e) => service_error(&s, e),
    }
}
