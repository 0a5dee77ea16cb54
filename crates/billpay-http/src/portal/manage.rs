//! A signed-in customer's saved payment methods and AutoPay.

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use billpay_domain::{Money, Timing};
use billpay_services::autopay::ScheduledPayment;
use billpay_services::portal::{FieldError, PortalSession};
use billpay_services::portal_account::Repeat;
use billpay_services::vault::SavedMethod;
use billpay_services::{Billpay, ServiceError};
use serde::Deserialize;
use zeroize::Zeroize;

use super::{Field, Page, error_for, html, see_other, service_error};

pub struct MethodRow {
    id: String,
    description: String,
    is_default: bool,
    expires: String,
    notice: Option<String>,
}

#[derive(Template)]
#[template(path = "portal/methods.html")]
struct MethodsPage {
    page: Page,
    notice: Option<String>,
    methods: Vec<MethodRow>,
    errors: Vec<FieldError>,
    fields: Vec<Field>,
    bank_fields: Vec<Field>,
    account_type: String,
    biller: String,
}

impl MethodsPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        error_for(&self.errors, name)
    }
}

/// What the customer typed into one of the page's two forms, to fill it in again.
enum Typed<'a> {
    Nothing,
    Card(&'a CardForm),
    Bank(&'a BankForm),
}

fn card_fields(errors: &[FieldError], form: Option<&CardForm>) -> Vec<Field> {
    let e = |n: &str| error_for(errors, n).map(str::to_string);
    let keep = |f: fn(&CardForm) -> &String, n: usize| {
        form.map(|c| f(c).chars().take(n).collect())
            .unwrap_or_default()
    };
    vec![
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
            value: keep(|c| &c.exp_month, 2),
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
            value: keep(|c| &c.exp_year, 4),
            error: e("exp_year"),
        },
        Field {
            name: "postal_code",
            label: "Billing ZIP code",
            hint: "",
            kind: "text",
            autocomplete: "postal-code",
            inputmode: "numeric",
            class: "short",
            value: keep(|c| &c.postal_code, 10),
            error: e("postal_code"),
        },
    ]
}

async fn methods_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    notice: Option<String>,
    errors: Vec<FieldError>,
    typed: Typed<'_>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    let methods = match app.portal_methods(session).await {
        Ok(m) => m,
        Err(e) => return service_error(app, session, e),
    };
    let today = app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
    let methods = methods
        .into_iter()
        .map(|m| MethodRow {
            expires: m.expiry().map(|e| e.format()).unwrap_or_default(),
            notice: m.expiry_notice(today),
            description: m.summary.describe(),
            is_default: m.is_default,
            id: m.id,
        })
        .collect();
    let (card, bank) = match typed {
        Typed::Card(c) => (Some(c), None),
        Typed::Bank(b) => (None, Some(b)),
        Typed::Nothing => (None, None),
    };
    let fields = card_fields(&errors, card);
    let bank_fields = super::quickpay::bank_fields(
        &errors,
        bank.map(|b| b.holder_name.as_str()).unwrap_or(""),
        bank.map(|b| b.routing_number.as_str()).unwrap_or(""),
    );
    html(
        status,
        &MethodsPage {
            page: Page::new(app, session),
            notice,
            methods,
            errors,
            fields,
            bank_fields,
            account_type: bank.map(|b| b.account_type.clone()).unwrap_or_default(),
            biller: app.config().biller.name.clone(),
        },
    )
}

pub async fn methods(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    methods_page(
        &app,
        &session,
        StatusCode::OK,
        None,
        Vec::new(),
        Typed::Nothing,
    )
    .await
}

#[derive(Deserialize)]
pub struct CardForm {
    #[serde(default)]
    card_number: String,
    #[serde(default)]
    exp_month: String,
    #[serde(default)]
    exp_year: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    make_default: String,
}

impl Drop for CardForm {
    fn drop(&mut self) {
        self.card_number.zeroize();
    }
}

pub async fn add_card(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<CardForm>,
) -> Response {
    let saved = app
        .portal_save_card(
            &session,
            &form.card_number,
            &form.exp_month,
            &form.exp_year,
            &form.postal_code,
            form.make_default == "yes",
        )
        .await;
    after_save(&app, &session, saved, Typed::Card(&form)).await
}

/// The methods page after saving one: a notice, or the form again with what is wrong.
async fn after_save(
    app: &Billpay,
    session: &PortalSession,
    saved: Result<Result<SavedMethod, Vec<FieldError>>, ServiceError>,
    typed: Typed<'_>,
) -> Response {
    match saved {
        Ok(Ok(saved)) => {
            let notice = format!("Saved {}.", saved.summary.describe());
            methods_page(
                app,
                session,
                StatusCode::OK,
                Some(notice),
                Vec::new(),
                Typed::Nothing,
            )
            .await
        }
        Ok(Err(errors)) => {
            methods_page(
                app,
                session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                errors,
                typed,
            )
            .await
        }
        Err(e) => service_error(app, session, e),
    }
}

#[derive(Deserialize)]
pub struct BankForm {
    #[serde(default)]
    holder_name: String,
    #[serde(default)]
    routing_number: String,
    #[serde(default)]
    bank_account_number: String,
    #[serde(default)]
    account_type: String,
    #[serde(default)]
    make_default: String,
}

impl Drop for BankForm {
    fn drop(&mut self) {
        self.bank_account_number.zeroize();
    }
}

pub async fn add_bank(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<BankForm>,
) -> Response {
    let mut entered = billpay_services::portal::EnteredMethod::default();
    entered.kind = "ach".into();
    entered.holder_name = form.holder_name.clone();
    entered.routing_number = form.routing_number.clone();
    entered.bank_account_number = form.bank_account_number.clone();
    entered.account_type = form.account_type.clone();
    let saved = app
        .portal_save_bank(&session, &entered, form.make_default == "yes")
        .await;
    after_save(&app, &session, saved, Typed::Bank(&form)).await
}

pub async fn remove(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Path(id): Path<String>,
) -> Response {
    match app.portal_remove_method(&session, &id).await {
        Ok(()) => see_other("/account/methods"),
        Err(ServiceError::Conflict { message, .. }) => {
            methods_page(
                &app,
                &session,
                StatusCode::CONFLICT,
                Some(message),
                Vec::new(),
                Typed::Nothing,
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}

pub async fn make_default(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Path(id): Path<String>,
) -> Response {
    match app.portal_make_default(&session, &id).await {
        Ok(_) => see_other("/account/methods"),
        Err(e) => service_error(&app, &session, e),
    }
}

// ---------------------------------------------------------------- AutoPay

pub struct CurrentAutopay {
    summary: String,
    terms: String,
}

#[derive(Template)]
#[template(path = "portal/autopay.html")]
struct AutopayPage {
    page: Page,
    current: Option<CurrentAutopay>,
    methods: Vec<MethodRow>,
    errors: Vec<FieldError>,
    days_before: String,
    maximum: String,
}

impl AutopayPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        error_for(&self.errors, name)
    }
}

#[derive(Template)]
#[template(path = "portal/autopay_review.html")]
struct AutopayReviewPage {
    page: Page,
    terms: String,
    errors: Vec<FieldError>,
    method: String,
    timing: String,
    days_before: String,
    maximum: String,
}

impl AutopayReviewPage {
    fn error_for(&self, name: &str) -> Option<&str> {
        error_for(&self.errors, name)
    }
}

#[derive(Deserialize, Default)]
pub struct AutopayForm {
    #[serde(default)]
    method: String,
    #[serde(default)]
    timing: String,
    #[serde(default)]
    days_before: String,
    #[serde(default)]
    maximum: String,
    #[serde(default)]
    accept: String,
}

async fn autopay_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: &AutopayForm,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    let (current, methods) = match (
        app.portal_autopay(session).await,
        app.portal_methods(session).await,
    ) {
        (Ok(a), Ok(m)) => (a, m),
        (Err(e), _) | (_, Err(e)) => return service_error(app, session, e),
    };
    let current = current.filter(|a| a.status == "active").map(|a| {
        let method = methods
            .iter()
            .find(|m| m.id == a.payment_method_id)
            .map(|m| m.summary.describe())
            .unwrap_or_else(|| "your saved payment method".into());
        let when = match a.timing {
            Timing::OnDueDate => "on each due date".to_string(),
            Timing::DaysBefore(n) => format!("{n} days before each due date"),
        };
        let cap = a
            .maximum
            .map(|m| format!(", up to {m}"))
            .unwrap_or_default();
        CurrentAutopay {
            summary: format!("the statement balance{cap}, {when}, from {method}"),
            terms: a.authorization_text,
        }
    });
    let methods = methods
        .into_iter()
        .map(|m| MethodRow {
            expires: String::new(),
            notice: None,
            description: m.summary.describe(),
            is_default: m.is_default,
            id: m.id,
        })
        .collect();
    html(
        status,
        &AutopayPage {
            page: Page::new(app, session),
            current,
            methods,
            errors,
            days_before: form.days_before.chars().take(3).collect(),
            maximum: form.maximum.chars().take(20).collect(),
        },
    )
}

pub async fn autopay(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    autopay_page(
        &app,
        &session,
        StatusCode::OK,
        Vec::new(),
        &AutopayForm::default(),
    )
    .await
}

/// The choices of the AutoPay form, or what is wrong with them.
fn autopay_choices(form: &AutopayForm) -> Result<(Timing, Option<Money>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let timing = if form.timing == "days_before" {
        match form
            .days_before
            .trim()
            .parse::<u8>()
            .ok()
            .map(Timing::DaysBefore)
        {
            Some(t) if t.validate().is_ok() => Some(t),
            _ => {
                errors.push(FieldError {
                    field: "days_before",
                    message: "Enter a number of days from 1 to 15.".into(),
                });
                None
            }
        }
    } else {
        Some(Timing::OnDueDate)
    };
    let maximum = if form.maximum.trim().is_empty() {
        None
    } else {
        match Money::parse(form.maximum.trim(), billpay_domain::Currency::USD) {
            Ok(m) if m.is_positive() => Some(m),
            _ => {
                errors.push(FieldError {
                    field: "maximum",
                    message: "Enter a maximum in dollars, like 200.00, or leave it empty.".into(),
                });
                None
            }
        }
    };
    match timing {
        Some(t) if errors.is_empty() => Ok((t, maximum)),
        _ => Err(errors),
    }
}

pub async fn autopay_review(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<AutopayForm>,
) -> Response {
    let (timing, maximum) = match autopay_choices(&form) {
        Ok(c) => c,
        Err(errors) => {
            return autopay_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                &form,
            )
            .await;
        }
    };
    match app
        .portal_autopay_terms(&session, &form.method, timing, maximum)
        .await
    {
        Ok(terms) => html(
            StatusCode::OK,
            &AutopayReviewPage {
                page: Page::new(&app, &session),
                terms,
                errors: Vec::new(),
                method: form.method.clone(),
                timing: form.timing.clone(),
                days_before: form.days_before.clone(),
                maximum: form.maximum.clone(),
            },
        ),
        Err(ServiceError::Invalid { message, .. }) => {
            let errors = vec![FieldError {
                field: "method",
                message,
            }];
            autopay_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                &form,
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}

pub async fn autopay_enroll(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<AutopayForm>,
) -> Response {
    let (timing, maximum) = match autopay_choices(&form) {
        Ok(c) => c,
        Err(errors) => {
            return autopay_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                &form,
            )
            .await;
        }
    };
    if form.accept != "yes" {
        let terms = match app
            .portal_autopay_terms(&session, &form.method, timing, maximum)
            .await
        {
            Ok(t) => t,
            Err(e) => return service_error(&app, &session, e),
        };
        return html(
            StatusCode::UNPROCESSABLE_ENTITY,
            &AutopayReviewPage {
                page: Page::new(&app, &session),
                terms,
                errors: vec![FieldError {
                    field: "accept",
                    message: "To turn on AutoPay, tick the box to accept the terms.".into(),
                }],
                method: form.method.clone(),
                timing: form.timing.clone(),
                days_before: form.days_before.clone(),
                maximum: form.maximum.clone(),
            },
        );
    }
    match app
        .portal_enroll_autopay(&session, &form.method, timing, maximum)
        .await
    {
        Ok(_) => see_other("/account/autopay"),
        Err(ServiceError::Invalid { message, .. }) => {
            let errors = vec![FieldError {
                field: "method",
                message,
            }];
            autopay_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                &form,
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}

pub async fn autopay_cancel(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    match app.portal_cancel_autopay(&session).await {
        Ok(()) => see_other("/account/autopay"),
        Err(e) => service_error(&app, &session, e),
    }
}

// ---------------------------------------------------------------- scheduled payments

pub struct ScheduledRow {
    id: String,
    amount: String,
    when: String,
    method: String,
    status: &'static str,
    active: bool,
}

#[derive(Template)]
#[template(path = "portal/scheduled.html")]
struct ScheduledPage {
    page: Page,
    notice: Option<String>,
    rows: Vec<ScheduledRow>,
    methods: Vec<MethodRow>,
    errors: Vec<FieldError>,
    fields: Vec<Field>,
    due_date: Option<String>,
}

#[derive(Deserialize, Default)]
pub struct ScheduleForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    repeat: String,
    #[serde(default)]
    method: String,
}

/// "on December 15, 2026", "every two weeks, next on December 29, 2026".
fn schedule_when(s: &ScheduledPayment) -> String {
    let every = match s.frequency.as_str() {
        "once" => return format!("on {}", long_date(&s.start_date)),
        "weekly" => "every week",
        "biweekly" => "every two weeks",
        _ => "every month",
    };
    match (&s.next_date, s.status.as_str()) {
        (Some(next), "active") => format!("{every}, next on {}", long_date(next)),
        _ => format!("{every} from {}", long_date(&s.start_date)),
    }
}

fn long_date(d: &str) -> String {
    d.parse::<jiff::civil::Date>()
        .map(|d| d.strftime("%B %-d, %Y").to_string())
        .unwrap_or_else(|_| d.to_string())
}

async fn scheduled_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    notice: Option<String>,
    errors: Vec<FieldError>,
    form: &ScheduleForm,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    let (list, methods) = match (
        app.portal_scheduled(session).await,
        app.portal_methods(session).await,
    ) {
        (Ok(l), Ok(m)) => (l, m),
        (Err(e), _) | (_, Err(e)) => return service_error(app, session, e),
    };
    let due_date = match session.verified_account() {
        Some(n) => app
            .account_summary(&n)
            .await
            .ok()
            .and_then(|s| s.current_statement)
            .map(|s| s.due_date.strftime("%B %-d, %Y").to_string()),
        None => None,
    };
    let describe = |id: &str| {
        methods
            .iter()
            .find(|m| m.id == id)
            .map(|m| m.summary.describe())
            .unwrap_or_else(|| "a removed payment method".into())
    };
    let rows = list
        .iter()
        .map(|s| ScheduledRow {
            id: s.id.clone(),
            amount: s.amount.format(),
            when: schedule_when(s),
            method: describe(&s.payment_method_id),
            status: match s.status.as_str() {
                "active" => "Scheduled",
                "completed" => "Done",
                _ => "Canceled",
            },
            active: s.status == "active",
        })
        .collect();
    let e = |n: &str| error_for(&errors, n).map(str::to_string);
    let fields = vec![
        Field {
            name: "amount",
            label: "Amount, in dollars",
            hint: "",
            kind: "text",
            autocomplete: "off",
            inputmode: "decimal",
            class: "short",
            value: form.amount.chars().take(20).collect(),
            error: e("amount"),
        },
        Field {
            name: "date",
            label: "Date",
            hint: "As YYYY-MM-DD, for example 2026-12-15.",
            kind: "date",
            autocomplete: "off",
            inputmode: "",
            class: "short",
            value: form.date.chars().take(10).collect(),
            error: e("date"),
        },
    ];
    let methods = methods
        .into_iter()
        .map(|m| MethodRow {
            expires: String::new(),
            notice: None,
            description: m.summary.describe(),
            is_default: m.is_default,
            id: m.id,
        })
        .collect();
    html(
        status,
        &ScheduledPage {
            page: Page::new(app, session),
            notice,
            rows,
            methods,
            errors,
            fields,
            due_date,
        },
    )
}

pub async fn scheduled(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    scheduled_page(
        &app,
        &session,
        StatusCode::OK,
        None,
        Vec::new(),
        &ScheduleForm::default(),
    )
    .await
}

pub async fn schedule(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<ScheduleForm>,
) -> Response {
    let mut errors = Vec::new();
    let amount = Money::parse(form.amount.trim(), billpay_domain::Currency::USD)
        .map_err(|_| {
            errors.push(FieldError {
                field: "amount",
                message: "Enter an amount in dollars and cents, like 50.00.".into(),
            })
        })
        .ok();
    let date = form
        .date
        .trim()
        .parse::<jiff::civil::Date>()
        .map_err(|_| {
            errors.push(FieldError {
                field: "date",
                message: "Enter the date as YYYY-MM-DD, for example 2026-12-15.".into(),
            })
        })
        .ok();
    let repeat = match form.repeat.as_str() {
        "weekly" => Repeat::Weekly,
        "biweekly" => Repeat::Biweekly,
        "monthly" => Repeat::Monthly,
        _ => Repeat::Once,
    };
    let (Some(amount), Some(date)) = (amount, date) else {
        return scheduled_page(
            &app,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            None,
            errors,
            &form,
        )
        .await;
    };
    match app
        .portal_schedule(&session, &form.method, amount, date, repeat)
        .await
    {
        Ok(Ok(s)) => {
            let notice = format!(
                "Scheduled {} on {}.",
                s.amount.format(),
                long_date(&s.start_date)
            );
            scheduled_page(
                &app,
                &session,
                StatusCode::OK,
                Some(notice),
                Vec::new(),
                &ScheduleForm::default(),
            )
            .await
        }
        Ok(Err(errors)) => {
            scheduled_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                errors,
                &form,
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}

pub async fn cancel_scheduled(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Path(id): Path<String>,
) -> Response {
    match app.portal_cancel_scheduled(&session, &id).await {
        Ok(()) => see_other("/account/scheduled"),
        Err(e) => service_error(&app, &session, e),
    }
}

// ---------------------------------------------------------------- statements and reminders

pub struct StatementView {
    date: String,
    due: String,
    amount: String,
    lines: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "portal/statements.html")]
struct StatementsPage {
    page: Page,
    statements: Vec<StatementView>,
}

pub async fn statements(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    match app.portal_statements(&session).await {
        Ok(list) => html(
            StatusCode::OK,
            &StatementsPage {
                page: Page::new(&app, &session),
                statements: list
                    .into_iter()
                    .map(|s| StatementView {
                        date: s.statement_date.strftime("%B %-d, %Y").to_string(),
                        due: s.due_date.strftime("%B %-d, %Y").to_string(),
                        amount: s.amount_due.format(),
                        lines: s
                            .lines
                            .into_iter()
                            .map(|l| (l.description, l.amount.format()))
                            .collect(),
                    })
                    .collect(),
            },
        ),
        Err(e) => service_error(&app, &session, e),
    }
}

#[derive(Template)]
#[template(path = "portal/notifications.html")]
struct NotificationsPage {
    page: Page,
    notice: Option<String>,
    choices: Vec<billpay_services::portal_account::NotificationChoice>,
}

async fn notifications_page(
    app: &Billpay,
    session: &PortalSession,
    notice: Option<String>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    match app.portal_notifications(session).await {
        Ok(choices) => html(
            StatusCode::OK,
            &NotificationsPage {
                page: Page::new(app, session),
                notice,
                choices,
            },
        ),
        Err(e) => service_error(app, session, e),
    }
}

pub async fn notifications(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    notifications_page(&app, &session, None).await
}

#[derive(Deserialize)]
pub struct NotificationsForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    sms: String,
}

pub async fn set_notifications(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<NotificationsForm>,
) -> Response {
    match app
        .portal_set_notifications(&session, form.email == "yes", form.sms == "yes")
        .await
    {
        Ok(()) => {
            notifications_page(
                &app,
                &session,
                Some("Your reminder choices are saved.".into()),
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}

// ---------------------------------------------------------------- payment arrangements

pub struct ArrangementShown {
    past_due: String,
    installments: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "portal/arrangement.html")]
struct ArrangementPage {
    page: Page,
    current: Option<ArrangementShown>,
    errors: Vec<FieldError>,
    fields: Vec<Field>,
}

#[derive(Deserialize, Default)]
pub struct ArrangementForm {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    count: String,
    #[serde(default)]
    date: String,
}

async fn arrangement_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    errors: Vec<FieldError>,
    form: &ArrangementForm,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    let current = match app.portal_arrangement(session).await {
        Ok(a) => a.map(|a| ArrangementShown {
            past_due: a.past_due.format(),
            installments: a
                .installments
                .iter()
                .map(|(d, m)| (d.strftime("%B %-d, %Y").to_string(), m.format()))
                .collect(),
        }),
        Err(e) => return service_error(app, session, e),
    };
    let e = |n: &str| error_for(&errors, n).map(str::to_string);
    let fields = vec![
        Field {
            name: "count",
            label: "How many monthly payments (for monthly parts)",
            hint: "",
            kind: "text",
            autocomplete: "off",
            inputmode: "numeric",
            class: "short",
            value: form.count.chars().take(3).collect(),
            error: e("count"),
        },
        Field {
            name: "date",
            label: "Date of the first payment, or of the whole amount",
            hint: "",
            kind: "date",
            autocomplete: "off",
            inputmode: "",
            class: "short",
            value: form.date.chars().take(10).collect(),
            error: e("date"),
        },
    ];
    html(
        status,
        &ArrangementPage {
            page: Page::new(app, session),
            current,
            errors,
            fields,
        },
    )
}

pub async fn arrangement(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
) -> Response {
    arrangement_page(
        &app,
        &session,
        StatusCode::OK,
        Vec::new(),
        &ArrangementForm::default(),
    )
    .await
}

pub async fn request_arrangement(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Form(form): Form<ArrangementForm>,
) -> Response {
    let mut errors = Vec::new();
    let date = form
        .date
        .trim()
        .parse::<jiff::civil::Date>()
        .map_err(|_| {
            errors.push(FieldError {
                field: "date",
                message: "Enter the date as YYYY-MM-DD, for example 2026-12-15.".into(),
            })
        })
        .ok();
    let kind = match (form.kind.as_str(), date) {
        ("extension", Some(pay_by)) => Some(billpay_domain::ArrangementKind::Extension { pay_by }),
        (_, Some(first)) => match form.count.trim().parse::<u32>() {
            Ok(count) => Some(billpay_domain::ArrangementKind::Installments {
                count,
                first,
                frequency: billpay_domain::Frequency::Monthly,
            }),
            Err(_) => {
                errors.push(FieldError {
                    field: "count",
                    message: "Enter how many monthly payments, like 3.".into(),
                });
                None
            }
        },
        _ => None,
    };
    let Some(kind) = kind else {
        return arrangement_page(
            &app,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            errors,
            &form,
        )
        .await;
    };
    match app.portal_request_arrangement(&session, kind).await {
        Ok(Ok(())) => see_other("/account/arrangement"),
        Ok(Err(why)) => {
            let errors = vec![FieldError {
                field: "arrangement",
                message: why,
            }];
            arrangement_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                errors,
                &form,
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}

// ---------------------------------------------------------------- changing a scheduled payment

#[derive(Template)]
#[template(path = "portal/scheduled_edit.html")]
struct ScheduledEditPage {
    page: Page,
    id: String,
    when: String,
    methods: Vec<MethodRow>,
    chosen: String,
    errors: Vec<FieldError>,
    fields: Vec<Field>,
}

#[derive(Deserialize, Default)]
pub struct ChangeForm {
    #[serde(default)]
    amount: String,
    #[serde(default)]
    method: String,
}

async fn scheduled_edit_page(
    app: &Billpay,
    session: &PortalSession,
    status: StatusCode,
    id: &str,
    errors: Vec<FieldError>,
    form: Option<&ChangeForm>,
) -> Response {
    if session.customer_id.is_none() {
        return see_other("/signin");
    }
    let (s, methods) = match (
        app.portal_my_scheduled(session, id).await,
        app.portal_methods(session).await,
    ) {
        (Ok(s), Ok(m)) => (s, m),
        (Err(e), _) | (_, Err(e)) => return service_error(app, session, e),
    };
    if s.status != "active" {
        return see_other("/account/scheduled");
    }
    let e = |n: &str| error_for(&errors, n).map(str::to_string);
    let amount = match form {
        Some(f) => f.amount.chars().take(20).collect(),
        None => s.amount.format().trim_start_matches('$').replace(',', ""),
    };
    let chosen = form
        .map(|f| f.method.clone())
        .unwrap_or_else(|| s.payment_method_id.clone());
    let fields = vec![Field {
        name: "amount",
        label: "Amount, in dollars",
        hint: "",
        kind: "text",
        autocomplete: "off",
        inputmode: "decimal",
        class: "short",
        value: amount,
        error: e("amount"),
    }];
    let methods = methods
        .into_iter()
        .map(|m| MethodRow {
            expires: String::new(),
            notice: None,
            description: m.summary.describe(),
            is_default: m.is_default,
            id: m.id,
        })
        .collect();
    html(
        status,
        &ScheduledEditPage {
            page: Page::new(app, session),
            id: s.id.clone(),
            when: schedule_when(&s),
            methods,
            chosen,
            errors,
            fields,
        },
    )
}

pub async fn edit_scheduled_page(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Path(id): Path<String>,
) -> Response {
    scheduled_edit_page(&app, &session, StatusCode::OK, &id, Vec::new(), None).await
}

pub async fn edit_scheduled(
    State(app): State<Billpay>,
    Extension(session): Extension<PortalSession>,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let Ok(amount) = Money::parse(form.amount.trim(), billpay_domain::Currency::USD) else {
        let errors = vec![FieldError {
            field: "amount",
            message: "Enter an amount in dollars and cents, like 50.00.".into(),
        }];
        return scheduled_edit_page(
            &app,
            &session,
            StatusCode::UNPROCESSABLE_ENTITY,
            &id,
            errors,
            Some(&form),
        )
        .await;
    };
    match app
        .portal_change_scheduled(&session, &id, &form.method, amount)
        .await
    {
        Ok(Ok(s)) => {
            let notice = format!("Changed: {} {}.", s.amount.format(), schedule_when(&s));
            scheduled_page(
                &app,
                &session,
                StatusCode::OK,
                Some(notice),
                Vec::new(),
                &ScheduleForm::default(),
            )
            .await
        }
        Ok(Err(errors)) => {
            scheduled_edit_page(
                &app,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                &id,
                errors,
                Some(&form),
            )
            .await
        }
        Err(e) => service_error(&app, &session, e),
    }
}
