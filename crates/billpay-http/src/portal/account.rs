//! Registered customers: enrol, sign in (password, then an emailed code), the account page
//! with its payment history, sign out here or everywhere.

use askama::Template;
use axum::Extension;
use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use billpay_domain::{AccountNumber, PaymentStatus, PostalCode, SecretString};
use billpay_services::portal::{FieldError, PortalSession};
use billpay_services::{Billpay, ServiceError};
use serde::Deserialize;
use zeroize::Zeroize;

use super::{
    Field, Page, SecureCookie, error_for, html, message, see_other, service_error,
    with_session_cookie,
};

#[derive(Template)]
#[template(path = "portal/form_page.html")]
pub(super) struct FormPage {
    pub page: Page,
    pub title: &'static str,
    pub intro: String,
    pub action: &'static str,
    pub submit: &'static str,
    pub errors: Vec<FieldError>,
    pub fields: Vec<Field>,
    pub after: Vec<(&'static str, &'static str)>,
    pub resend: Option<&'static str>,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn input(
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    inputmode: &'static str,
    value: String,
    errors: &[FieldError],
) -> Field {
    Field {
        name,
        label,
        hint,
        kind,
        autocomplete,
        inputmode,
        class: if inputmode == "numeric" { "short" } else { "" },
        value,
        error: error_for(errors, name).map(str::to_string),
    }
}

// ---------------------------------------------------------------- enrol

#[derive(Deserialize, Default)]
pub struct EnrolForm {
    #[serde(default)]
    account_number: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

impl Drop for EnrolForm {
    fn drop(&mut self) {
        self.password.zeroize();
        self.password_confirm.zeroize();
    }
}

fn enrol_form(
    app: &Billpay,
    session: &PortalSession,
    form: &EnrolForm,
    errors: Vec<FieldError>,
) -> FormPage {
    let fields = vec![
        input(
            "account_number",
            "Account number",
            "The 12-digit number at the top of your bill.",
            "text",
            "off",
            "numeric",
            form.account_number.chars().take(20).collect(),
            &errors,
        ),
        input(
            "postal_code",
            "Service ZIP code",
            "",
            "text",
            "postal-code",
            "numeric",
            form.postal_code.chars().take(10).collect(),
            &errors,
        ),
        input(
            "email",
            "Email address",
            "The email address on your account. Sign-in codes and receipts go here.",
            "email",
            "email",
            "",
            form.email.chars().take(254).collect(),
            &errors,
        ),
        input(
            "password",
            "Password",
            "At least 12 characters. A few unrelated words are strong and easy to remember.",
            "password",
            "new-password",
            "",
            String::new(),
            &errors,
        ),
        input(
            "password_confirm",
            "Password again",
            "",
            "password",
            "new-password",
            "",
            String::new(),
            &errors,
        ),
    ];
    FormPage {
        page: Page::new(app, session),
        title: "Create an online account",
        intro: "You need your bill: the account number and the ZIP code where you receive service."
            .into(),
        action: "/enrol",
        submit: "Create account",
        errors,
        fields,
        after: vec![("/signin", "Already have an online account? Sign in")],
        resend: None,
    }
}

pub async fn enrol_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    html(
        StatusCode::OK,
        &enrol_form(&app, &session, &EnrolForm::default(), Vec::new()),
    )
}

pub async fn enrol(
    State(app): State<Billpay>,
    Extension(mut session): Extension<PortalSession>,
    Form(form): Form<EnrolForm>,
) -> Response {
    let mut errors = Vec::new();
    let digits: String = form
        .account_number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let number = AccountNumber::parse(&digits)
        .map_err(|_| {
            errors.push(FieldError {
                field: "account_number",
                message: "Enter the 12-digit account number from your bill.".into(),
            })
        })
        .ok();
    let zip = PostalCode::parse(&form.postal_code)
        .map_err(|_| {
            errors.push(FieldError {
                field: "postal_code",
                message: "Enter the 5-digit ZIP code of your service address.".into(),
            })
        })
        .ok();
    if form.password != form.password_confirm {
        errors.push(FieldError {
            field: "password_confirm",
            message: "The two passwords are not the same.".into(),
        });
    }
    let refuse = |errors: Vec<FieldError>| {
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &enrol_form(&app, &session, &form, errors),
        )
    };
    let (Some(number), Some(zip)) = (number, zip) else {
        return refuse(errors);
    };
    if !errors.is_empty() {
        return refuse(errors);
    }
    let password = SecretString::new(form.password.clone());
    match app
        .portal_enrol(&number, &zip, &form.email, &password)
        .await
    {
        Ok(Ok(customer_id)) => {
            // Enrolled: straight on to the code, as at every sign-in.
            if let Err(e) = app.portal_resend_code(&customer_id).await {
                return service_error(&app, &session, e);
            }
            match app.portal_await_code(&mut session, customer_id).await {
                Ok(()) => see_other("/signin/code"),
                Err(e) => service_error(&app, &session, e),
            }
        }
        Ok(Err(errors)) => refuse(errors),
        Err(e) => service_error(&app, &session, e),
    }
}

// ---------------------------------------------------------------- sign in

#[derive(Deserialize, Default)]
pub struct SigninForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

impl Drop for SigninForm {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

fn signin_form(
    app: &Billpay,
    session: &PortalSession,
    email: &str,
    errors: Vec<FieldError>,
) -> FormPage {
    let fields = vec![
        input(
            "email",
            "Email address",
            "",
            "email",
            "username",
            "",
            email.chars().take(254).collect(),
            &errors,
        ),
        input(
            "password",
            "Password",
            "",
            "password",
            "current-password",
            "",
            String::new(),
            &errors,
        ),
    ];
    FormPage {
        page: Page::new(app, session),
        title: "Sign in",
        intro: "After your password we email you a one-time code.".into(),
        action: "/signin",
        submit: "Continue",
        errors,
        fields,
        after: vec![
            ("/reset", "Forgot your password?"),
            ("/enrol", "No online account yet? Create one"),
        ],
        resend: None,
    }
}

/// The answer to a wrong email or a wrong password: the same for both.
pub const SIGNIN_NO_MATCH: &str = "The email address or password is not right.";

pub async fn signin_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    if session.customer_id.is_some() {
        return see_other("/account");
    }
    html(StatusCode::OK, &signin_form(&app, &session, "", Vec::new()))
}

pub async fn signin(
    State(app): State<Billpay>,
    Extension(mut session): Extension<PortalSession>,
    Form(form): Form<SigninForm>,
) -> Response {
    let password = SecretString::new(form.password.clone());
    match app.portal_check_password(&form.email, &password).await {
        Ok(Some(customer_id)) => match app.portal_await_code(&mut session, customer_id).await {
            Ok(()) => see_other("/signin/code"),
            Err(e) => service_error(&app, &session, e),
        },
        Ok(None) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &signin_form(
                &app,
                &session,
                &form.email,
                vec![FieldError {
                    field: "email",
                    message: SIGNIN_NO_MATCH.into(),
                }],
            ),
        ),
        Err(ServiceError::Conflict { message: m, .. }) => message(
            StatusCode::TOO_MANY_REQUESTS,
            Page::new(&app, &session),
            "Sign-in is paused",
            &m,
            "/pay",
            "Pay without signing in",
        ),
        Err(e) => service_error(&app, &session, e),
    }
}

fn code_form(app: &Billpay, session: &PortalSession, errors: Vec<FieldError>) -> FormPage {
    use billpay_services::portal::SecondFactor;
    let factor = session.data.pending_factor.unwrap_or(SecondFactor::Email);
    let (hint, intro) = match factor {
        SecondFactor::Totp => (
            "6 digits, from your authenticator app.",
            format!(
                "Open your authenticator app and enter the code it shows for {}.",
                app.config().biller.name
            ),
        ),
        SecondFactor::Sms => (
            "6 digits, from the text we just sent.",
            format!(
                "We texted a 6-digit code to {}. It works once, for 10 minutes.",
                session.data.pending_hint.as_deref().unwrap_or("your phone")
            ),
        ),
        SecondFactor::Email => (
            "6 digits, from the email we just sent.",
            "We emailed you a 6-digit code. It works once, for 10 minutes.".to_string(),
        ),
    };
    let fields = vec![input(
        "code",
        "Sign-in code",
        hint,
        "text",
        "one-time-code",
        "numeric",
        String::new(),
        &errors,
    )];
    FormPage {
        page: Page::new(app, session),
        title: "Enter your sign-in code",
        intro,
        action: "/signin/code",
        submit: "Sign in",
        errors,
        fields,
        after: vec![(
            "/signin/questions",
            if factor == SecondFactor::Totp {
                "No access to the app? Answer your security questions"
            } else {
                "Cannot get the code? Answer your security questions"
            },
        )],
        resend: (factor != SecondFactor::Totp).then_some("/signin/code/resend"),
    }
}

pub async fn code_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    if session.data.pending_customer.is_none() {
        return see_other("/signin");
    }
    html(StatusCode::OK, &code_form(&app, &session, Vec::new()))
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

impl Drop for CodeForm {
    fn drop(&mut self) {
        self.code.zeroize();
    }
}

pub async fn check_code(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Extension(SecureCookie(secure)): Extension<SecureCookie>,
    Form(form): Form<CodeForm>,
) -> Response {
    if session.data.pending_customer.is_none() {
        return see_other("/signin");
    }
    match app.portal_check_code(&session, &form.code).await {
        Ok(Ok((token, _))) => with_session_cookie(see_other("/account"), &token, secure),
        Ok(Err(why)) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &code_form(
                &app,
                &session,
                vec![FieldError {
                    field: "code",
                    message: why,
                }],
            ),
        ),
        Err(e) => service_error(&app, &session, e),
    }
}

pub async fn resend_code(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    let Some(customer_id) = session.data.pending_customer.clone() else {
        return see_other("/signin");
    };
    match app.portal_resend_code(&customer_id).await {
        Ok(()) => see_other("/signin/code"),
        Err(e) => service_error(&app, &session, e),
    }
}

// ---------------------------------------------------------------- the account page

pub struct HistoryRow {
    id: String,
    date: String,
    amount: String,
    method: String,
    status: &'static str,
    confirmation: String,
    receipt: bool,
}

#[derive(Template)]
#[template(path = "portal/account.html")]
struct AccountPage {
    page: Page,
    email: String,
    account_masked: String,
    balance: String,
    due_date: Option<String>,
    status: &'static str,
    last_payment: String,
    autopay: String,
    arrangement: String,
    has_arrangement: bool,
    payments: Vec<HistoryRow>,
}

fn payment_status(s: PaymentStatus) -> &'static str {
    match s {
        PaymentStatus::Succeeded => "Paid",
        PaymentStatus::Processing | PaymentStatus::Pending => "Pending",
        PaymentStatus::Failed => "Not completed",
        PaymentStatus::Canceled => "Canceled",
        PaymentStatus::Returned => "Returned by the bank",
        PaymentStatus::PartiallyRefunded => "Partly refunded",
        PaymentStatus::Refunded => "Refunded",
    }
}

pub async fn dashboard(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    let d = match app.portal_dashboard(&session).await {
        Ok(d) => d,
        Err(e) => return service_error(&app, &session, e),
    };
    let last_payment = d
        .payments
        .iter()
        .find(|p| p.status != PaymentStatus::Failed && p.status != PaymentStatus::Canceled)
        .map(|p| {
            format!(
                "{} on {} ({})",
                p.amount,
                p.local_time().strftime("%B %-d, %Y"),
                p.method.describe()
            )
        })
        .unwrap_or_else(|| "None yet".into());
    let autopay = match &d.autopay {
        Some(a) if a.status == "active" => match a.timing {
            billpay_domain::Timing::OnDueDate => "On: pays on each due date".to_string(),
            billpay_domain::Timing::DaysBefore(n) => {
                format!("On: pays {n} days before each due date")
            }
        },
        Some(_) | None => "Off".to_string(),
    };
    let payments = d
        .payments
        .iter()
        .map(|p| HistoryRow {
            id: p.id.clone(),
            date: p.local_time().strftime("%b %-d, %Y").to_string(),
            amount: p.amount.format(),
            method: p.method.describe(),
            status: payment_status(p.status),
            confirmation: p.confirmation_number.grouped(),
            receipt: p.status != PaymentStatus::Failed,
        })
        .collect();
    let arrangement = match app.portal_arrangement(&session).await {
        Ok(a) => a,
        Err(e) => return service_error(&app, &session, e),
    };
    let has_arrangement = arrangement.is_some();
    let arrangement = match arrangement {
        Some(a) => {
            let next = a
                .installments
                .iter()
                .map(|(d, m)| format!("{m} by {}", d.strftime("%B %-d, %Y")))
                .next()
                .unwrap_or_default();
            format!(
                "{} past due in {} payments; first: {next}.",
                a.past_due,
                a.installments.len()
            )
        }
        None => "None.".to_string(),
    };
    let status = match d.summary.status {
        billpay_services::AccountStatus::Current => "Current",
        billpay_services::AccountStatus::PastDue => "Past due",
        billpay_services::AccountStatus::Suspended => "Service suspended",
    };
    html(
        StatusCode::OK,
        &AccountPage {
            page: Page::new(&app, &session),
            email: d.email,
            account_masked: d.summary.account.account_number.masked(),
            balance: d.summary.balance.format(),
            due_date: d
                .summary
                .current_statement
                .as_ref()
                .map(|s| s.due_date.strftime("%B %-d, %Y").to_string()),
            status,
            last_payment,
            autopay,
            arrangement,
            has_arrangement,
            payments,
        },
    )
}

// ---------------------------------------------------------------- sign out

/// A cookie that deletes the session cookie.
fn cleared_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        super::SESSION_COOKIE
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn sign_out(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Extension(SecureCookie(secure)): Extension<SecureCookie>,
) -> Response {
    if let Err(e) = app.portal_end_session(&session).await {
        return service_error(&app, &session, e);
    }
    let mut resp = see_other("/");
    resp.headers_mut()
        .insert(header::SET_COOKIE, cleared_cookie(secure));
    resp
}

pub async fn sign_out_everywhere(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Extension(SecureCookie(secure)): Extension<SecureCookie>,
) -> Response {
    let Some(customer_id) = session.customer_id.clone() else {
        return see_other("/signin");
    };
    if let Err(e) = app.portal_sign_out_everywhere(&customer_id).await {
        return service_error(&app, &session, e);
    }
    let mut resp = see_other("/");
    resp.headers_mut()
        .insert(header::SET_COOKIE, cleared_cookie(secure));
    resp
}

// ---------------------------------------------------------------- password reset

/// The site's address for links in emails: the configured public URL; in the demo (and only
/// there) the address the browser used. Never the Host header of a real deployment, which an
/// attacker could set to send a victim a link to their own site.
fn public_base(app: &Billpay, headers: &axum::http::HeaderMap) -> Option<String> {
    if let Some(url) = &app.config().ivr.public_url {
        return Some(url.clone());
    }
    if app.config().portal.demo_mailbox {
        let host = headers.get(header::HOST)?.to_str().ok()?;
        return Some(format!("http://{host}"));
    }
    None
}

fn reset_request_form(app: &Billpay, session: &PortalSession, errors: Vec<FieldError>) -> FormPage {
    let fields = vec![input(
        "email",
        "Email address",
        "The email address of your online account.",
        "email",
        "email",
        "",
        String::new(),
        &errors,
    )];
    FormPage {
        page: Page::new(app, session),
        title: "Reset your password",
        intro: "We will email you a link to choose a new password.".into(),
        action: "/reset",
        submit: "Email me a link",
        errors,
        fields,
        after: vec![("/signin", "Back to sign in")],
        resend: None,
    }
}

pub async fn reset_request_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    html(
        StatusCode::OK,
        &reset_request_form(&app, &session, Vec::new()),
    )
}

#[derive(Deserialize)]
pub struct ResetRequestForm {
    #[serde(default)]
    email: String,
}

/// The answer to every reset request: the same whether or not the email has an account.
pub const RESET_SENT: &str = "If an online account uses this email address, we have sent it a link to choose a new password. The link works for 30 minutes.";

pub async fn reset_request(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    headers: axum::http::HeaderMap,
    Form(form): Form<ResetRequestForm>,
) -> Response {
    let Some(base) = public_base(&app, &headers) else {
        tracing::error!("password reset needs the public URL (BILLPAY_PUBLIC_URL) for its link");
        return message(
            StatusCode::SERVICE_UNAVAILABLE,
            Page::new(&app, &session),
            "Password reset is not available",
            "Please call us to reset your password.",
            "/signin",
            "Back to sign in",
        );
    };
    match app.portal_request_reset(&form.email, &base).await {
        Ok(()) => message(
            StatusCode::OK,
            Page::new(&app, &session),
            "Check your email",
            RESET_SENT,
            "/signin",
            "Back to sign in",
        ),
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Template)]
#[template(path = "portal/form_page.html")]
struct ResetPage {
    page: Page,
    title: &'static str,
    intro: String,
    action: String,
    submit: &'static str,
    errors: Vec<FieldError>,
    fields: Vec<Field>,
    after: Vec<(&'static str, &'static str)>,
    resend: Option<&'static str>,
}

fn reset_form(
    app: &Billpay,
    session: &PortalSession,
    link: &str,
    errors: Vec<FieldError>,
) -> ResetPage {
    let fields = vec![
        input(
            "password",
            "New password",
            "At least 12 characters. A few unrelated words are strong and easy to remember.",
            "password",
            "new-password",
            "",
            String::new(),
            &errors,
        ),
        input(
            "password_confirm",
            "New password again",
            "",
            "password",
            "new-password",
            "",
            String::new(),
            &errors,
        ),
    ];
    ResetPage {
        page: Page::new(app, session),
        title: "Choose a new password",
        intro: "Changing your password signs you out everywhere.".into(),
        action: format!("/reset/{link}"),
        submit: "Change password",
        errors,
        fields,
        after: Vec::new(),
        resend: None,
    }
}

fn dead_link(app: &Billpay, session: &PortalSession) -> Response {
    message(
        StatusCode::NOT_FOUND,
        Page::new(app, session),
        "This link does not work any more",
        "Reset links work once, for 30 minutes. Ask for a new one.",
        "/reset",
        "Reset your password",
    )
}

pub async fn reset_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    axum::extract::Path(link): axum::extract::Path<String>,
) -> Response {
    match app.portal_reset_link_ok(&link).await {
        Ok(true) => html(
            StatusCode::OK,
            &reset_form(&app, &session, &link, Vec::new()),
        ),
        Ok(false) => dead_link(&app, &session),
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Deserialize)]
pub struct NewPasswordForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

impl Drop for NewPasswordForm {
    fn drop(&mut self) {
        self.password.zeroize();
        self.password_confirm.zeroize();
    }
}

pub async fn reset_password(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    axum::extract::Path(link): axum::extract::Path<String>,
    Form(form): Form<NewPasswordForm>,
) -> Response {
    if form.password != form.password_confirm {
        let errors = vec![FieldError {
            field: "password_confirm",
            message: "The two passwords are not the same.".into(),
        }];
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &reset_form(&app, &session, &link, errors),
        );
    }
    let password = SecretString::new(form.password.clone());
    match app.portal_reset_password(&link, &password).await {
        Ok(Ok(())) => message(
            StatusCode::OK,
            Page::new(&app, &session),
            "Your password is changed",
            "Sign in with your new password. Every other session was signed out.",
            "/signin",
            "Sign in",
        ),
        Ok(Err(e)) if e.message.starts_with("This link") => dead_link(&app, &session),
        Ok(Err(e)) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &reset_form(&app, &session, &link, vec![e]),
        ),
        Err(e) => service_error(&app, &session, e),
    }
}

// ---------------------------------------------------------------- security questions

#[derive(Template)]
#[template(path = "portal/security.html")]
struct SecurityPage {
    page: Page,
    notice: Option<String>,
    current: Vec<String>,
    questions: &'static [&'static str],
    errors: Vec<FieldError>,
}

async fn security_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    notice: Option<String>,
    errors: Vec<FieldError>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    match app.portal_my_security_questions(session).await {
        Ok(current) => html(
            status,
            &SecurityPage {
                page: Page::new(app, session),
                notice,
                current,
                questions: billpay_services::portal_auth::SECURITY_QUESTIONS,
                errors,
            },
        ),
        Err(e) => service_error(app, session, e),
    }
}

pub async fn security(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    security_page(&app, &session, StatusCode::OK, None, Vec::new()).await
}

#[derive(Deserialize)]
pub struct SecurityForm {
    #[serde(default)]
    question_1: String,
    #[serde(default)]
    answer_1: String,
    #[serde(default)]
    question_2: String,
    #[serde(default)]
    answer_2: String,
}

impl Drop for SecurityForm {
    fn drop(&mut self) {
        self.answer_1.zeroize();
        self.answer_2.zeroize();
    }
}

pub async fn set_security(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<SecurityForm>,
) -> Response {
    let q1 = form.question_1.parse::<usize>().unwrap_or(usize::MAX);
    let q2 = form.question_2.parse::<usize>().unwrap_or(usize::MAX);
    match app
        .portal_set_security_questions(&session, [(q1, &form.answer_1), (q2, &form.answer_2)])
        .await
    {
        Ok(Ok(())) => {
            security_page(
                &app,
                &session,
                StatusCode::OK,
                Some("Your security questions are saved.".into()),
                Vec::new(),
            )
            .await
        }
        Ok(Err(errors)) => {
            security_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                errors,
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Template)]
#[template(path = "portal/signin_questions.html")]
struct QuestionsPage {
    page: Page,
    questions: Vec<String>,
    errors: Vec<FieldError>,
}

async fn questions_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    errors: Vec<FieldError>,
) -> Response {
    if session.data.pending_customer.is_none() {
        return see_other("/signin");
    }
    match app.portal_pending_questions(session).await {
        Ok(questions) => html(
            status,
            &QuestionsPage {
                page: Page::new(app, session),
                questions,
                errors,
            },
        ),
        Err(e) => service_error(app, session, e),
    }
}

pub async fn signin_questions(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    questions_page(&app, &session, StatusCode::OK, Vec::new()).await
}

#[derive(Deserialize)]
pub struct AnswersForm {
    #[serde(default)]
    answer_1: String,
    #[serde(default)]
    answer_2: String,
}

impl Drop for AnswersForm {
    fn drop(&mut self) {
        self.answer_1.zeroize();
        self.answer_2.zeroize();
    }
}

pub async fn check_answers(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Extension(SecureCookie(secure)): Extension<SecureCookie>,
    Form(form): Form<AnswersForm>,
) -> Response {
    if session.data.pending_customer.is_none() {
        return see_other("/signin");
    }
    let answers = [form.answer_1.clone(), form.answer_2.clone()];
    match app.portal_check_answers(&session, &answers).await {
        Ok(Ok((token, _))) => with_session_cookie(see_other("/account"), &token, secure),
        Ok(Err(why)) => {
            let errors = vec![FieldError {
                field: "answer_1",
                message: why,
            }];
            questions_page(&app, &session, StatusCode::UNPROCESSABLE_ENTITY, errors).await
        }
        Err(e) => service_error(&app, &session, e),
    }
}
