//! Quick pay, without signing in: account number and service ZIP → amount → card or bank
//! account → review → pay → confirmation.

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use billpay_domain::{AccountNumber, Language, Money, PostalCode};
use billpay_services::portal::{EnteredMethod, FieldError, PayOutcome, PortalSession};
use billpay_services::receipts::Receipt;
use billpay_services::{AccountSummary, Billpay, ServiceError};
use serde::Deserialize;

use super::{
    Field, Page, SecureCookie, error_for, html, see_other, service_error, with_session_cookie,
};

#[derive(Template)]
#[template(path = "portal/home.html")]
struct HomePage {
    page: Page,
}

pub async fn home(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    html(
        StatusCode::OK,
        &HomePage {
            page: Page::new(&app, &session),
        },
    )
}

#[derive(Template)]
#[template(path = "portal/pay_lookup.html")]
struct LookupPage {
    page: Page,
    errors: Vec<FieldError>,
    account_number: String,
    postal_code: String,
}

impl LookupPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        error_for(&self.errors, name)
    }
}

pub async fn lookup_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    html(
        StatusCode::OK,
        &LookupPage {
            page: Page::new(&app, &session),
            errors: Vec::new(),
            account_number: String::new(),
            postal_code: String::new(),
        },
    )
}

#[derive(Deserialize)]
pub struct LookupForm {
    #[serde(default)]
    account_number: String,
    #[serde(default)]
    postal_code: String,
}

/// The message for "no account with this number and ZIP": the same whichever was wrong.
pub const NO_MATCH: &str = "We could not find an account with this account number and service ZIP code. Check both against your bill and try again.";

pub async fn lookup(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Extension(SecureCookie(secure)): Extension<SecureCookie>,
    Form(form): Form<LookupForm>,
) -> Response {
    let mut errors = Vec::new();
    let digits: String = form
        .account_number
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    let number = if digits.is_empty() {
        errors.push(err("account_number", "Enter your account number."));
        None
    } else {
        AccountNumber::parse(&digits)
            .map_err(|_| {
                errors.push(err(
                    "account_number",
                    "This is not a valid account number. Check the 12 digits on your bill.",
                ))
            })
            .ok()
    };
    let zip = PostalCode::parse(&form.postal_code)
        .map_err(|_| {
            errors.push(err(
                "postal_code",
                "Enter the 5-digit ZIP code of your service address.",
            ))
        })
        .ok();
    let rerender = |errors: Vec<FieldError>| {
        html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &LookupPage {
                page: Page::new(&app, &session),
                errors,
                account_number: form.account_number.chars().take(20).collect(),
                postal_code: form.postal_code.chars().take(10).collect(),
            },
        )
    };
    let (Some(number), Some(zip)) = (number, zip) else {
        return rerender(errors);
    };
    match app.portal_find_account(&number, &zip).await {
        Ok(Some(summary)) => match app.portal_verify_guest(&session, &summary).await {
            Ok((token, _)) => with_session_cookie(see_other("/pay/amount"), &token, secure),
            Err(e) => service_error(&app, &session, e),
        },
        Ok(None) => rerender(vec![err("account_number", NO_MATCH)]),
        Err(e) => service_error(&app, &session, e),
    }
}

fn err(field: &'static str, message: &str) -> FieldError {
    FieldError {
        field,
        message: message.into(),
    }
}

/// The verified account's summary, or a redirect to the lookup form.
async fn verified(app: &Billpay, session: &PortalSession) -> Result<AccountSummary, Response> {
    let Some(number) = session.verified_account() else {
        return Err(see_other("/pay"));
    };
    app.account_summary(&number)
        .await
        .map_err(|e| service_error(app, session, e))
}

fn status_text(summary: &AccountSummary) -> &'static str {
    match summary.status {
        billpay_services::AccountStatus::Current => "Current",
        billpay_services::AccountStatus::PastDue => "Past due",
        billpay_services::AccountStatus::Suspended => "Service suspended",
    }
}

#[derive(Template)]
#[template(path = "portal/pay_amount.html")]
struct AmountPage {
    page: Page,
    errors: Vec<FieldError>,
    account_masked: String,
    balance: String,
    due_date: Option<String>,
    status: &'static str,
    has_balance: bool,
    choice: String,
    amount: String,
}

impl AmountPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        error_for(&self.errors, name)
    }
}

fn amount_page_for(
    app: &Billpay,
    session: &PortalSession,
    summary: &AccountSummary,
    errors: Vec<FieldError>,
    choice: String,
    amount: String,
) -> AmountPage {
    AmountPage {
        page: Page::new(app, session),
        errors,
        account_masked: summary.account.account_number.masked(),
        balance: summary.balance.format(),
        due_date: summary
            .current_statement
            .as_ref()
            .map(|s| s.due_date.strftime("%B %-d, %Y").to_string()),
        status: status_text(summary),
        has_balance: summary.balance.is_positive(),
        choice,
        amount,
    }
}

pub async fn amount_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    let summary = match verified(&app, &session).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let page = amount_page_for(
        &app,
        &session,
        &summary,
        Vec::new(),
        String::new(),
        String::new(),
    );
    html(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct AmountForm {
    #[serde(default)]
    choice: String,
    #[serde(default)]
    amount: String,
}

pub async fn set_amount(
    State(app): State<Billpay>,
    Extension(mut session): Extension<PortalSession>,
    Form(form): Form<AmountForm>,
) -> Response {
    let summary = match verified(&app, &session).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let currency = summary.account.currency;
    let amount = if form.choice == "full" && summary.balance.is_positive() {
        Ok(summary.balance)
    } else if form.amount.trim().is_empty() {
        Err("Enter the amount you want to pay, like 50.00.".to_string())
    } else {
        Money::parse(form.amount.trim(), currency)
            .map_err(|_| "Enter an amount in dollars and cents, like 50.00.".to_string())
    };
    let result = match amount {
        Ok(a) => app
            .portal_set_amount(&mut session, a)
            .await
            .map_err(|e| match e {
                ServiceError::Invalid { message, .. } => Ok(message),
                other => Err(other),
            }),
        Err(m) => Err(Ok(m)),
    };
    match result {
        Ok(()) => see_other("/pay/method"),
        Err(Ok(m)) => {
            let page = amount_page_for(
                &app,
                &session,
                &summary,
                vec![FieldError {
                    field: "amount",
                    message: m,
                }],
                "other".into(),
                form.amount.chars().take(20).collect(),
            );
            html(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(Err(e)) => service_error(&app, &session, e),
    }
}

#[derive(Template)]
#[template(path = "portal/pay_method.html")]
struct MethodPage {
    page: Page,
    saved: Vec<(String, String)>,
    errors: Vec<FieldError>,
    amount: String,
    account_masked: String,
    kind: String,
    account_type: String,
    card_fields: Vec<Field>,
    bank_fields: Vec<Field>,
}

impl MethodPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        error_for(&self.errors, name)
    }
}

#[derive(Deserialize, Default)]
pub struct MethodForm {
    #[serde(default)]
    method: String,
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    exp_month: String,
    #[serde(default)]
    exp_year: String,
    #[serde(default)]
    cvc: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    routing_number: String,
    #[serde(default)]
    bank_account_number: String,
    #[serde(default)]
    account_type: String,
    #[serde(default)]
    holder_name: String,
}

impl Drop for MethodForm {
    // The digits are copied into the sealed `EnteredMethod`; this copy is wiped.
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.card_number.zeroize();
        self.cvc.zeroize();
        self.bank_account_number.zeroize();
    }
}

/// The fields of a bank account (its type is a radio group: `account_type.html`). The account
/// number is never sent back.
pub(super) fn bank_fields(errors: &[FieldError], holder: &str, routing: &str) -> Vec<Field> {
    let e = |n: &str| error_for(errors, n).map(str::to_string);
    vec![
        Field {
            name: "holder_name",
            label: "Name on the bank account",
            hint: "",
            kind: "text",
            autocomplete: "name",
            inputmode: "",
            class: "",
            value: holder.chars().take(100).collect(),
            error: e("holder_name"),
        },
        Field {
            name: "routing_number",
            label: "Routing number",
            hint: "9 digits, at the bottom left of a check.",
            kind: "text",
            autocomplete: "off",
            inputmode: "numeric",
            class: "",
            value: routing.chars().take(9).collect(),
            error: e("routing_number"),
        },
        Field {
            name: "bank_account_number",
            label: "Account number",
            hint: "",
            kind: "text",
            autocomplete: "off",
            inputmode: "numeric",
            class: "",
            value: String::new(),
            error: e("bank_account_number"),
        },
    ]
}

fn method_page_for(
    saved: Vec<(String, String)>,
    app: &Billpay,
    session: &PortalSession,
    summary: &AccountSummary,
    errors: Vec<FieldError>,
    form: &MethodForm,
) -> MethodPage {
    let amount = session
        .data
        .checkout
        .as_ref()
        .and_then(|c| c.amount_minor)
        .map(|a| Money::new(a, summary.account.currency).format())
        .unwrap_or_default();
    let e = |name: &str| error_for(&errors, name).map(str::to_string);
    let card_fields = vec![
        Field {
            name: "card_number",
            label: "Card number",
            hint: "",
            kind: "text",
            autocomplete: "cc-number",
            inputmode: "numeric",
            class: "",
            value: String::new(),
            error: e("card_number"),
        },
        Field {
            name: "exp_month",
            label: "Expiration month (MM)",
            hint: "",
            kind: "text",
            autocomplete: "cc-exp-month",
            inputmode: "numeric",
            class: "short",
            value: form.exp_month.chars().take(2).collect(),
            error: e("exp_month"),
        },
        Field {
            name: "exp_year",
            label: "Expiration year (YY or YYYY)",
            hint: "",
            kind: "text",
            autocomplete: "cc-exp-year",
            inputmode: "numeric",
            class: "short",
            value: form.exp_year.chars().take(4).collect(),
            error: e("exp_year"),
        },
        Field {
            name: "cvc",
            label: "Security code",
            hint: "3 digits on the back, or 4 on the front of American Express cards.",
            kind: "text",
            autocomplete: "cc-csc",
            inputmode: "numeric",
            class: "short",
            value: String::new(),
            error: e("cvc"),
        },
        Field {
            name: "postal_code",
            label: "Billing ZIP code",
            hint: "",
            kind: "text",
            autocomplete: "postal-code",
            inputmode: "numeric",
            class: "short",
            value: form.postal_code.chars().take(10).collect(),
            error: e("postal_code"),
        },
    ];
    let bank_fields = bank_fields(&errors, &form.holder_name, &form.routing_number);
    MethodPage {
        saved,
        page: Page::new(app, session),
        errors,
        amount,
        account_masked: summary.account.account_number.masked(),
        kind: form.method.clone(),
        account_type: form.account_type.clone(),
        card_fields,
        bank_fields,
    }
}

/// The signed-in customer's saved methods as (form value, description); none for guests.
async fn saved_methods(app: &Billpay, session: &PortalSession) -> Vec<(String, String)> {
    if session.customer_id.is_none() {
        return Vec::new();
    }
    app.portal_methods(session)
        .await
        .map(|ms| {
            ms.into_iter()
                .map(|m| (format!("saved:{}", m.id), m.summary.describe()))
                .collect()
        })
        .unwrap_or_default()
}

fn has_amount(session: &PortalSession) -> bool {
    session
        .data
        .checkout
        .as_ref()
        .is_some_and(|c| c.amount_minor.is_some())
}

pub async fn method_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    let summary = match verified(&app, &session).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !has_amount(&session) {
        return see_other("/pay/amount");
    }
    let saved = saved_methods(&app, &session).await;
    let page = method_page_for(
        saved,
        &app,
        &session,
        &summary,
        Vec::new(),
        &MethodForm::default(),
    );
    html(StatusCode::OK, &page)
}

pub async fn set_method(
    State(app): State<Billpay>,
    Extension(mut session): Extension<PortalSession>,
    Form(form): Form<MethodForm>,
) -> Response {
    let summary = match verified(&app, &session).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !has_amount(&session) {
        return see_other("/pay/amount");
    }
    let (kind, saved_token) = match form.method.strip_prefix("saved:") {
        Some(token) => ("saved".to_string(), token.to_string()),
        None => (form.method.clone(), String::new()),
    };
    let entered = EnteredMethod {
        kind,
        saved_token,
        card_number: form.card_number.clone(),
        exp_month: form.exp_month.clone(),
        exp_year: form.exp_year.clone(),
        cvc: form.cvc.clone(),
        postal_code: form.postal_code.clone(),
        routing_number: form.routing_number.clone(),
        bank_account_number: form.bank_account_number.clone(),
        account_type: form.account_type.clone(),
        holder_name: form.holder_name.clone(),
    };
    match app.portal_set_method(&mut session, &entered).await {
        Ok(Ok(())) => see_other("/pay/review"),
        Ok(Err(errors)) => {
            let saved = saved_methods(&app, &session).await;
            let page = method_page_for(saved, &app, &session, &summary, errors, &form);
            html(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Template)]
#[template(path = "portal/pay_review.html")]
struct ReviewPage {
    page: Page,
    account_masked: String,
    amount: String,
    method: String,
    is_bank: bool,
    form_key: String,
}

pub async fn review_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    let summary = match verified(&app, &session).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(checkout) = session.data.checkout.clone() else {
        return see_other("/pay/amount");
    };
    let Some(amount) = checkout.amount_minor else {
        return see_other("/pay/amount");
    };
    let Some(method) = checkout.method_description.clone() else {
        return see_other("/pay/method");
    };
    html(
        StatusCode::OK,
        &ReviewPage {
            page: Page::new(&app, &session),
            account_masked: summary.account.account_number.masked(),
            amount: Money::new(amount, summary.account.currency).format(),
            method,
            is_bank: checkout.method_kind.as_deref() == Some("ach"),
            // This form's idempotency key: sending it twice pays once.
            form_key: app.new_id("form"),
        },
    )
}

#[derive(Deserialize)]
pub struct ConfirmForm {
    #[serde(default)]
    form_key: String,
    #[serde(default)]
    confirm_duplicate: String,
}

#[derive(Template)]
#[template(path = "portal/pay_declined.html")]
struct DeclinedPage {
    page: Page,
    amount: String,
    reason: &'static str,
    next_step: &'static str,
}

#[derive(Template)]
#[template(path = "portal/pay_duplicate.html")]
struct DuplicatePage {
    page: Page,
    question: String,
    amount: String,
    form_key: String,
}

pub async fn confirm(
    State(app): State<Billpay>,
    Extension(mut session): Extension<PortalSession>,
    super::ClientKey(client): super::ClientKey,
    Form(form): Form<ConfirmForm>,
) -> Response {
    if form.form_key.is_empty() || form.form_key.len() > 100 {
        return see_other("/pay/review");
    }
    let amount = session.data.checkout.as_ref().and_then(|c| c.amount_minor);
    match app
        .portal_pay(
            &mut session,
            &form.form_key,
            form.confirm_duplicate == "yes",
            client,
        )
        .await
    {
        Ok(PayOutcome::Paid(p) | PayOutcome::InDoubt(p)) => {
            see_other(&format!("/pay/done/{}", p.id))
        }
        Ok(PayOutcome::Declined(p, code)) => html(
            StatusCode::PAYMENT_REQUIRED,
            &DeclinedPage {
                page: Page::new(&app, &session),
                amount: p.amount.format(),
                reason: code.message(Language::En),
                next_step: code.next_step(Language::En),
            },
        ),
        Ok(PayOutcome::Duplicate { question }) => {
            let currency = match session.verified_account() {
                Some(n) => app.account(&n).await.map(|a| a.currency).ok(),
                None => None,
            };
            html(
                StatusCode::CONFLICT,
                &DuplicatePage {
                    page: Page::new(&app, &session),
                    question,
                    amount: match (amount, currency) {
                        (Some(a), Some(c)) => Money::new(a, c).format(),
                        _ => String::new(),
                    },
                    form_key: form.form_key,
                },
            )
        }
        Err(ServiceError::Invalid { param, .. }) if param == "method" || param == "amount" => {
            see_other("/pay/method")
        }
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Template)]
#[template(path = "portal/pay_done.html")]
struct DonePage {
    page: Page,
    r: Receipt,
    pending: bool,
    in_doubt: bool,
    emailed: bool,
}

pub async fn done_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Path(payment_id): Path<String>,
) -> Response {
    let payment = match app.portal_payment(&session, &payment_id).await {
        Ok(p) => p,
        Err(e) => return service_error(&app, &session, e),
    };
    if payment.status == billpay_domain::PaymentStatus::Failed {
        return see_other("/pay/method");
    }
    let emailed = app
        .account(&payment.account_number)
        .await
        .map(|a| a.email.is_some())
        .unwrap_or(false);
    let pending = payment.status == billpay_domain::PaymentStatus::Processing;
    let in_doubt = pending && payment.processor_ref.is_none();
    html(
        StatusCode::OK,
        &DonePage {
            page: Page::new(&app, &session),
            r: Receipt::for_payment(&payment, &app.config().biller),
            pending,
            in_doubt,
            emailed,
        },
    )
}
