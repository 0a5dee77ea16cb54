//! Sign-in codes: how a signed-in customer confirms sign-ins (email, text message, or an
//! authenticator app added by QR code).

use askama::Template;
use axum::Extension;
use axum::extract::{Form, State};
use axum::http::StatusCode;
use axum::response::Response;
use billpay_domain::SecretString;
use billpay_services::portal::{FieldError, PortalSession, SecondFactor};
use billpay_services::{Billpay, ServiceError};
use serde::Deserialize;
use zeroize::Zeroize;

use super::account::{FormPage, input};
use super::{Field, Page, html, see_other, service_error};

#[derive(Template)]
#[template(path = "portal/signin_codes.html")]
struct CodesPage {
    page: Page,
    notice: Option<String>,
    current: String,
    factor: &'static str,
    texts_available: bool,
    phone_fields: Vec<Field>,
    password_fields: Vec<Field>,
    errors: Vec<FieldError>,
}

async fn codes_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    notice: Option<String>,
    phone: &str,
    errors: Vec<FieldError>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    let method = match app.portal_signin_method(session).await {
        Ok(m) => m,
        Err(e) => return service_error(app, session, e),
    };
    let current = match method.factor {
        SecondFactor::Totp => "your authenticator app".to_string(),
        SecondFactor::Sms => format!(
            "a text message to {}",
            method.phone_hint.as_deref().unwrap_or("your phone")
        ),
        SecondFactor::Email => "an email to the address you signed up with".to_string(),
    };
    html(
        status,
        &CodesPage {
            page: Page::new(app, session),
            notice,
            current,
            factor: method.factor.as_str(),
            texts_available: method.texts_available,
            phone_fields: vec![input(
                "phone",
                "Mobile number",
                "We text a code to it now, to check it is yours. Message and data rates may apply.",
                "tel",
                "tel",
                "tel",
                phone.to_string(),
                &errors,
            )],
            password_fields: vec![input(
                "password",
                "Your password",
                "To confirm it is you.",
                "password",
                "current-password",
                "",
                String::new(),
                &errors,
            )],
            errors,
        },
    )
}

pub async fn page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    codes_page(&app, &session, StatusCode::OK, None, "", Vec::new()).await
}

// ---------------------------------------------------------------- authenticator app

#[derive(Template)]
#[template(path = "portal/authenticator.html")]
struct AppPage {
    page: Page,
    biller: String,
    key: String,
    qr: String,
    fields: Vec<Field>,
    errors: Vec<FieldError>,
}

fn app_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    enrolment: billpay_services::totp::Enrolment,
    errors: Vec<FieldError>,
) -> Response {
    html(
        status,
        &AppPage {
            page: Page::new(app, session),
            biller: app.config().biller.name.clone(),
            key: enrolment.secret_text.expose_secret().to_string(),
            qr: enrolment.qr_svg,
            fields: vec![input(
                "code",
                "Code from the app",
                "6 digits.",
                "text",
                "one-time-code",
                "numeric",
                String::new(),
                &errors,
            )],
            errors,
        },
    )
}

pub async fn app_begin(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    match app.portal_totp_begin(&session).await {
        Ok(enrolment) => app_page(&app, &session, StatusCode::OK, enrolment, Vec::new()),
        Err(e) => service_error(&app, &session, e),
    }
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

pub async fn app_confirm(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<CodeForm>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    match app.portal_totp_confirm(&session, &form.code).await {
        Ok(Ok(())) => {
            codes_page(
                &app,
                &session,
                StatusCode::OK,
                Some("Your authenticator app is set up. Sign-ins now ask for its code.".into()),
                "",
                Vec::new(),
            )
            .await
        }
        Ok(Err(why)) => match app.portal_totp_pending(&session).await {
            Ok(Some(enrolment)) => app_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                enrolment,
                vec![FieldError {
                    field: "code",
                    message: why,
                }],
            ),
            Ok(None) => {
                codes_page(
                    &app,
                    &session,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    None,
                    "",
                    vec![FieldError {
                        field: "code",
                        message: "That key is no longer good (keys last 30 minutes). Start again."
                            .into(),
                    }],
                )
                .await
            }
            Err(e) => service_error(&app, &session, e),
        },
        Err(e) => service_error(&app, &session, e),
    }
}

// ---------------------------------------------------------------- text messages

#[derive(Deserialize)]
pub struct PhoneForm {
    #[serde(default)]
    phone: String,
}

fn text_code_form(app: &Billpay, session: &PortalSession, errors: Vec<FieldError>) -> FormPage {
    let hint = app
        .portal_text_codes_pending(session)
        .unwrap_or_else(|| "your phone".into());
    FormPage {
        page: Page::new(app, session),
        title: "Check your phone number",
        intro: format!("We texted a 6-digit code to {hint}. It works once, for 10 minutes."),
        action: "/account/signin-codes/text/confirm",
        submit: "Text my sign-in codes to this number",
        fields: vec![input(
            "code",
            "Code from the text",
            "6 digits.",
            "text",
            "one-time-code",
            "numeric",
            String::new(),
            &errors,
        )],
        errors,
        after: vec![("/account/signin-codes", "Use another number")],
        resend: None,
    }
}

pub async fn text_begin(
    State(app): State<Billpay>,
    Extension(mut session): Extension<PortalSession>,
    Form(form): Form<PhoneForm>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    match app.portal_text_codes_begin(&mut session, &form.phone).await {
        Ok(Ok(())) => see_other("/account/signin-codes/text/confirm"),
        Ok(Err(e)) => {
            codes_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                &form.phone,
                vec![e],
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}

pub async fn text_confirm_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    if app.portal_text_codes_pending(&session).is_none() {
        return see_other("/account/signin-codes");
    }
    html(StatusCode::OK, &text_code_form(&app, &session, Vec::new()))
}

pub async fn text_confirm(
    State(app): State<Billpay>,
    Extension(mut session): Extension<PortalSession>,
    Form(form): Form<CodeForm>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    match app
        .portal_text_codes_confirm(&mut session, &form.code)
        .await
    {
        Ok(Ok(())) => {
            codes_page(
                &app,
                &session,
                StatusCode::OK,
                Some("Done. Sign-in codes now come by text message.".into()),
                "",
                Vec::new(),
            )
            .await
        }
        Ok(Err(why)) => html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &text_code_form(
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

// ---------------------------------------------------------------- back to email

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

impl Drop for PasswordForm {
    fn drop(&mut self) {
        self.password.zeroize();
    }
}

pub async fn email_codes(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<PasswordForm>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    let password = SecretString::new(form.password.clone());
    let (status, notice, errors) = match app.portal_email_codes(&session, &password).await {
        Ok(Ok(())) => (
            StatusCode::OK,
            Some("Done. Sign-in codes now come by email.".to_string()),
            Vec::new(),
        ),
        Ok(Err(e)) => (StatusCode::UNPROCESSABLE_ENTITY, None, vec![e]),
        Err(ServiceError::NotFound { .. }) => return see_other("/signin"),
        Err(e) => return service_error(&app, &session, e),
    };
    codes_page(&app, &session, status, notice, "", errors).await
}
