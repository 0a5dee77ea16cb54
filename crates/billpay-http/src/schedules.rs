//! REST handlers for AutoPay enrollment and scheduled (one-time and recurring) payments.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use billpay_domain::{Currency, End, Frequency, Money, Timing};
use billpay_services::autopay::{Autopay, NewScheduledPayment, ScheduledPayment};
use billpay_services::{Billpay, ServiceError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::ApiJson;
use crate::error::ApiError;
use crate::wire::{ErrorBody, parse_account_number, parse_date as date};

/// Enroll in AutoPay (or change the enrollment).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutopayIn {
    /// A saved payment method of the account (`pm_…`).
    pub payment_method: String,
    /// "due_date" (default) or "days_before".
    pub timing: Option<String>,
    /// With "days_before": 1 to 15.
    pub days_before: Option<u8>,
    /// Never charge more than this (minor units); a larger bill is left for the customer.
    pub maximum: Option<i64>,
    /// The channel the customer enrolled through (default "api").
    pub channel: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AutopayOut {
    pub object: &'static str,
    pub account_number: String,
    pub payment_method: String,
    pub timing: String,
    pub days_before: Option<u8>,
    pub maximum: Option<i64>,
    /// active or canceled
    pub status: String,
    /// What the customer agreed to.
    pub authorization_text: String,
    pub enrolled_at: String,
}

impl From<Autopay> for AutopayOut {
    fn from(a: Autopay) -> Self {
        let (timing, days_before) = match a.timing {
            Timing::OnDueDate => ("due_date", None),
            Timing::DaysBefore(n) => ("days_before", Some(n)),
        };
        AutopayOut {
            object: "autopay",
            account_number: a.account_number,
            payment_method: a.payment_method_id,
            timing: timing.into(),
            days_before,
            maximum: a.maximum.map(|m| m.minor_units()),
            status: a.status,
            authorization_text: a.authorization_text,
            enrolled_at: a.enrolled_at.to_string(),
        }
    }
}

/// A payment on a later date, once or repeating.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledIn {
    pub payment_method: String,
    /// Minor units.
    pub amount: i64,
    /// YYYY-MM-DD, in the account's time zone; today or later.
    pub start_date: String,
    /// once (default), weekly, biweekly or monthly.
    pub frequency: Option<String>,
    /// Repeating payments stop after this date...
    pub end_date: Option<String>,
    /// ...or after this many payments (neither: until canceled).
    pub count: Option<u32>,
    pub channel: Option<String>,
}

/// Change the next payments of a schedule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduledUpdate {
    pub amount: Option<i64>,
    pub payment_method: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledOut {
    pub id: String,
    pub object: &'static str,
    pub account_number: String,
    pub payment_method: String,
    pub amount: i64,
    pub amount_display: String,
    pub frequency: String,
    pub start_date: String,
    pub end_date: Option<String>,
    pub count: Option<i64>,
    pub payments_made: i64,
    pub next_date: Option<String>,
    /// active, completed or canceled
    pub status: String,
}

impl From<ScheduledPayment> for ScheduledOut {
    fn from(s: ScheduledPayment) -> Self {
        ScheduledOut {
            id: s.id,
            object: "scheduled_payment",
            account_number: s.account_number,
            payment_method: s.payment_method_id,
            amount: s.amount.minor_units(),
            amount_display: s.amount.format(),
            frequency: s.frequency,
            start_date: s.start_date,
            end_date: s.end_date,
            count: s.count,
            payments_made: s.payments_made,
            next_date: s.next_date,
            status: s.status,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduledList {
    pub object: &'static str,
    pub data: Vec<ScheduledOut>,
}

fn channel(c: Option<&str>) -> Result<billpay_domain::Channel, ServiceError> {
    match c {
        None => Ok(billpay_domain::Channel::Api),
        Some(s) => billpay_domain::Channel::parse(s).ok_or_else(|| {
            ServiceError::invalid(
                "channel",
                "channel must be one of web, phone, chat, agent, api",
            )
        }),
    }
}

#[utoipa::path(put, path = "/accounts/{account_number}/autopay", tag = "autopay",
    params(("account_number" = String, Path)), request_body = AutopayIn,
    responses((status = 200, body = AutopayOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn enroll_autopay(
    State(app): State<Billpay>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<AutopayIn>,
) -> Result<Json<AutopayOut>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let timing = match (body.timing.as_deref(), body.days_before) {
        (None | Some("due_date"), None) => Timing::OnDueDate,
        (Some("days_before"), Some(n)) => Timing::DaysBefore(n),
        (Some("days_before"), None) => {
            return Err(ServiceError::invalid("days_before", "give days_before, 1 to 15").into());
        }
        (None | Some("due_date"), Some(_)) => {
            return Err(ServiceError::invalid(
                "days_before",
                "days_before goes with \"timing\": \"days_before\"",
            )
            .into());
        }
        (Some(_), _) => {
            return Err(ServiceError::invalid(
                "timing",
                "timing must be \"due_date\" or \"days_before\"",
            )
            .into());
        }
    };
    let maximum = body.maximum.map(|m| Money::new(m, Currency::USD));
    let a = app
        .enroll_autopay(
            &number,
            &body.payment_method,
            timing,
            maximum,
            channel(body.channel.as_deref())?,
        )
        .await?;
    Ok(Json(a.into()))
}

#[utoipa::path(get, path = "/accounts/{account_number}/autopay", tag = "autopay",
    params(("account_number" = String, Path)),
    responses((status = 200, body = AutopayOut), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_autopay(
    State(app): State<Billpay>,
    Path(number): Path<String>,
) -> Result<Json<AutopayOut>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let a = app.autopay(&number).await?.ok_or(ServiceError::NotFound {
        what: "AutoPay enrollment",
    })?;
    Ok(Json(a.into()))
}

#[utoipa::path(delete, path = "/accounts/{account_number}/autopay", tag = "autopay",
    params(("account_number" = String, Path)),
    responses((status = 200, body = AutopayOut), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn cancel_autopay(
    State(app): State<Billpay>,
    Path(number): Path<String>,
) -> Result<Json<AutopayOut>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    Ok(Json(app.cancel_autopay(&number).await?.into()))
}

#[utoipa::path(post, path = "/accounts/{account_number}/scheduled_payments", tag = "autopay",
    params(("account_number" = String, Path)), request_body = ScheduledIn,
    responses((status = 201, body = ScheduledOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_scheduled(
    State(app): State<Billpay>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<ScheduledIn>,
) -> Result<(StatusCode, Json<ScheduledOut>), ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let frequency = match body.frequency.as_deref() {
        None | Some("once") => None,
        Some("weekly") => Some(Frequency::Weekly),
        Some("biweekly") => Some(Frequency::Biweekly),
        Some("monthly") => Some(Frequency::Monthly),
        Some(_) => {
            return Err(ServiceError::invalid(
                "frequency",
                "frequency must be once, weekly, biweekly or monthly",
            )
            .into());
        }
    };
    let end = match (&body.end_date, body.count) {
        (Some(_), Some(_)) => {
            return Err(ServiceError::invalid("count", "give end_date or count, not both").into());
        }
        (Some(d), None) => End::Until(date("end_date", d)?),
        (None, Some(n)) => End::Count(n),
        (None, None) => End::Never,
    };
    let s = app
        .schedule_payment(
            &number,
            NewScheduledPayment {
                payment_method: body.payment_method,
                amount: Money::new(body.amount, Currency::USD),
                start: date("start_date", &body.start_date)?,
                frequency,
                end,
            },
            channel(body.channel.as_deref())?,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(s.into())))
}

#[utoipa::path(get, path = "/accounts/{account_number}/scheduled_payments", tag = "autopay",
    params(("account_number" = String, Path)),
    responses((status = 200, body = ScheduledList), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_scheduled(
    State(app): State<Billpay>,
    Path(number): Path<String>,
) -> Result<Json<ScheduledList>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let data = app
        .scheduled_payments(&number)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(ScheduledList {
        object: "list",
        data,
    }))
}

#[utoipa::path(patch, path = "/scheduled_payments/{id}", tag = "autopay",
    params(("id" = String, Path)), request_body = ScheduledUpdate,
    responses((status = 200, body = ScheduledOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_scheduled(
    State(app): State<Billpay>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ScheduledUpdate>,
) -> Result<Json<ScheduledOut>, ApiError> {
    let s = app
        .update_scheduled_payment(
            &id,
            body.amount.map(|a| Money::new(a, Currency::USD)),
            body.payment_method,
        )
        .await?;
    Ok(Json(s.into()))
}

#[utoipa::path(delete, path = "/scheduled_payments/{id}", tag = "autopay",
    params(("id" = String, Path)),
    responses((status = 200, body = ScheduledOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn cancel_scheduled(
    State(app): State<Billpay>,
    Path(id): Path<String>,
) -> Result<Json<ScheduledOut>, ApiError> {
    Ok(Json(app.cancel_scheduled_payment(&id).await?.into()))
}

/// A built-in monthly bill for billers without a billing system.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingPlanIn {
    /// Minor units billed each month.
    pub amount: i64,
    /// 1–31; the month's last day when shorter.
    pub cycle_day: i8,
    /// Days from the bill to its due date.
    pub due_days: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BillingPlanOut {
    pub amount: i64,
    pub cycle_day: i8,
    pub due_days: i64,
    /// The date of the next bill.
    pub next_bill: String,
}

#[utoipa::path(put, path = "/accounts/{account_number}/billing_plan", tag = "autopay",
    params(("account_number" = String, Path)), request_body = BillingPlanIn,
    responses((status = 200, body = BillingPlanOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_billing_plan(
    State(app): State<Billpay>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<BillingPlanIn>,
) -> Result<Json<BillingPlanOut>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let next = app
        .set_billing_plan(
            &number,
            Money::new(body.amount, Currency::USD),
            body.cycle_day,
            body.due_days,
        )
        .await?;
    Ok(Json(BillingPlanOut {
        amount: body.amount,
        cycle_day: body.cycle_day,
        due_days: body.due_days,
        next_bill: next.to_string(),
    }))
}
