//! REST handlers for collections: fees and waivers, holds, payment arrangements, account events
//! and webhook endpoints.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use billpay_domain::{ArrangementKind, Frequency};
use billpay_services::{Billpay, ServiceError};
use billpay_store::ach::ChargeRow;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::api::ApiJson;
use crate::error::ApiError;
use crate::wire::{ErrorBody, parse_account_number, parse_date as date};

#[derive(Debug, Serialize, ToSchema)]
pub struct ChargeOut {
    pub id: String,
    pub object: &'static str,
    /// late_fee, returned_payment_fee or waiver
    pub kind: String,
    /// Minor units; a waiver is negative.
    pub amount: i64,
    pub currency: String,
    pub description: String,
    /// The statement, payment or fee it is about.
    pub source_id: String,
    pub created_at: String,
}

impl From<ChargeRow> for ChargeOut {
    fn from(c: ChargeRow) -> Self {
        ChargeOut {
            id: c.id,
            object: "charge",
            kind: c.kind,
            amount: c.amount,
            currency: c.currency.to_ascii_lowercase(),
            description: c.description,
            source_id: c.source_id,
            created_at: billpay_services::clock::from_micros(c.created_at).to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ChargeList {
    pub object: &'static str,
    pub data: Vec<ChargeOut>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiveIn {
    /// The supervisor who decided.
    pub supervisor: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldIn {
    /// medical, weather or hardship
    pub kind: String,
    /// No suspension through this date (YYYY-MM-DD).
    pub until: String,
    pub reason: String,
    pub created_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HoldOut {
    pub id: String,
    pub kind: String,
    pub until: String,
    pub reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArrangementIn {
    /// extension (pay the past-due amount by `pay_by`) or installments.
    pub kind: String,
    pub pay_by: Option<String>,
    pub count: Option<u32>,
    pub first_date: Option<String>,
    /// weekly, biweekly or monthly (default)
    pub frequency: Option<String>,
    pub created_by: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct InstallmentOut {
    pub due_date: String,
    pub amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ArrangementOut {
    pub id: String,
    pub object: &'static str,
    pub kind: String,
    pub past_due: i64,
    /// active, kept or broken
    pub status: String,
    pub installments: Vec<InstallmentOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    pub id: String,
    /// service.suspended, service.restored
    #[serde(rename = "type")]
    pub kind: String,
    pub created: String,
    pub data: serde_json::Value,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub object: &'static str,
    pub data: Vec<EventOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct EventsQuery {
    /// Events after this event id (oldest first).
    pub after: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    pub url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookOut {
    pub id: String,
    pub url: String,
    /// Shown only now: verify each delivery's `Billpay-Signature` with it.
    pub secret: String,
}

#[utoipa::path(get, path = "/accounts/{account_number}/charges", tag = "collections",
    params(("account_number" = String, Path)),
    responses((status = 200, body = ChargeList), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_charges(
    State(app): State<Billpay>,
    Path(number): Path<String>,
) -> Result<Json<ChargeList>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let data = app
        .charges(&number)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(ChargeList {
        object: "list",
        data,
    }))
}

#[utoipa::path(post, path = "/charges/{id}/waive", tag = "collections",
    params(("id" = String, Path)), request_body = WaiveIn,
    responses((status = 201, body = ChargeOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn waive_charge(
    State(app): State<Billpay>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<WaiveIn>,
) -> Result<(StatusCode, Json<ChargeOut>), ApiError> {
    let w = app
        .waive_charge(&id, &body.supervisor, &body.reason)
        .await?;
    Ok((StatusCode::CREATED, Json(w.into())))
}

#[utoipa::path(post, path = "/accounts/{account_number}/holds", tag = "collections",
    params(("account_number" = String, Path)), request_body = HoldIn,
    responses((status = 201, body = HoldOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn place_hold(
    State(app): State<Billpay>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<HoldIn>,
) -> Result<(StatusCode, Json<HoldOut>), ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let by = body.created_by.unwrap_or_else(|| "api".into());
    let h = app
        .place_hold(
            &number,
            &body.kind,
            date("until", &body.until)?,
            &body.reason,
            &by,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(HoldOut {
            id: h.id,
            kind: h.kind,
            until: h.until_date,
            reason: h.reason,
        }),
    ))
}

#[utoipa::path(post, path = "/accounts/{account_number}/arrangements", tag = "collections",
    params(("account_number" = String, Path)), request_body = ArrangementIn,
    responses((status = 201, body = ArrangementOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_arrangement(
    State(app): State<Billpay>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<ArrangementIn>,
) -> Result<(StatusCode, Json<ArrangementOut>), ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let kind = match body.kind.as_str() {
        "extension" => ArrangementKind::Extension {
            pay_by: date("pay_by", body.pay_by.as_deref().unwrap_or_default())?,
        },
        "installments" => ArrangementKind::Installments {
            count: body
                .count
                .ok_or_else(|| ServiceError::invalid("count", "give the number of installments"))?,
            first: date("first_date", body.first_date.as_deref().unwrap_or_default())?,
            frequency: match body.frequency.as_deref() {
                None | Some("monthly") => Frequency::Monthly,
                Some("weekly") => Frequency::Weekly,
                Some("biweekly") => Frequency::Biweekly,
                Some(_) => {
                    return Err(ServiceError::invalid(
                        "frequency",
                        "frequency must be weekly, biweekly or monthly",
                    )
                    .into());
                }
            },
        },
        _ => {
            return Err(
                ServiceError::invalid("kind", "kind must be extension or installments").into(),
            );
        }
    };
    let by = body.created_by.unwrap_or_else(|| "api".into());
    let a = app.create_arrangement(&number, kind, &by).await?;
    Ok((
        StatusCode::CREATED,
        Json(ArrangementOut {
            id: a.row.id,
            object: "arrangement",
            kind: a.row.kind,
            past_due: a.row.past_due,
            status: a.row.status,
            installments: a
                .installments
                .into_iter()
                .map(|i| InstallmentOut {
                    due_date: i.due_date,
                    amount: i.amount,
                })
                .collect(),
        }),
    ))
}

#[utoipa::path(get, path = "/events", tag = "collections", params(EventsQuery),
    responses((status = 200, body = EventList)),
    security(("api_key" = [])))]
pub async fn list_events(
    State(app): State<Billpay>,
    Query(q): Query<EventsQuery>,
) -> Result<Json<EventList>, ApiError> {
    let data = app
        .events_after(q.after.as_deref().unwrap_or(""), q.limit.unwrap_or(100))
        .await?
        .into_iter()
        .map(|e| EventOut {
            created: billpay_services::clock::from_micros(e.created_at).to_string(),
            data: serde_json::from_str(&e.payload).unwrap_or_default(),
            id: e.id,
            kind: e.kind,
        })
        .collect();
    Ok(Json(EventList {
        object: "list",
        data,
    }))
}

#[utoipa::path(post, path = "/webhook_endpoints", tag = "collections", request_body = WebhookIn,
    responses((status = 201, body = WebhookOut), (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn add_webhook_endpoint(
    State(app): State<Billpay>,
    ApiJson(body): ApiJson<WebhookIn>,
) -> Result<(StatusCode, Json<WebhookOut>), ApiError> {
    let (e, secret) = app.add_webhook_endpoint(&body.url).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookOut {
            id: e.id,
            url: e.url,
            secret: secret.expose_secret().to_string(),
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentIn {
    /// true: the customer agrees to reminders over this channel; false: withdraws.
    pub granted: bool,
    /// Where the customer said so: web, phone, agent, paper...
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentOut {
    pub channel: String,
    /// granted or revoked
    pub status: String,
    pub source: String,
    /// What the customer agreed to.
    pub consent_text: String,
}

#[utoipa::path(put, path = "/accounts/{account_number}/consents/{channel}", tag = "collections",
    params(("account_number" = String, Path), ("channel" = String, Path, description = "email or sms")),
    request_body = ConsentIn,
    responses((status = 200, body = ConsentOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn set_consent(
    State(app): State<Billpay>,
    Path((number, channel)): Path<(String, String)>,
    ApiJson(body): ApiJson<ConsentIn>,
) -> Result<Json<ConsentOut>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let c = app
        .set_consent(&number, &channel, body.granted, &body.source)
        .await?;
    Ok(Json(ConsentOut {
        channel: c.channel,
        status: c.status,
        source: c.source,
        consent_text: c.consent_text,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentList {
    pub data: Vec<ConsentOut>,
}

/// What the customer agreed to be contacted by, and where they said so (a withdrawal by
/// replying STOP to a text is recorded here too).
#[utoipa::path(get, path = "/accounts/{account_number}/consents", tag = "collections",
    params(("account_number" = String, Path)),
    responses((status = 200, body = ConsentList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn consents(
    State(app): State<Billpay>,
    Path(number): Path<String>,
) -> Result<Json<ConsentList>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let data = app
        .consents(&number)
        .await?
        .into_iter()
        .map(|c| ConsentOut {
            channel: c.channel,
            status: c.status,
            source: c.source,
            consent_text: c.consent_text,
        })
        .collect();
    Ok(Json(ConsentList { data }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HardshipIn {
    /// One of the biller's configured programs.
    pub program: String,
    /// Enrolled through this date (YYYY-MM-DD).
    pub until: String,
    pub enrolled_by: String,
}

#[utoipa::path(post, path = "/accounts/{account_number}/hardship", tag = "collections",
    params(("account_number" = String, Path)), request_body = HardshipIn,
    responses((status = 201, body = HoldOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn enroll_hardship(
    State(app): State<Billpay>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<HardshipIn>,
) -> Result<(StatusCode, Json<HoldOut>), ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let h = app
        .enroll_hardship(
            &number,
            &body.program,
            date("until", &body.until)?,
            &body.enrolled_by,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(HoldOut {
            id: h.id,
            kind: h.kind,
            until: h.until_date,
            reason: h.reason,
        }),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PledgeIn {
    pub agency: String,
    /// The agency's pledge reference (a pledge posts once).
    pub reference: String,
    /// Minor units.
    pub amount: i64,
}

#[utoipa::path(post, path = "/accounts/{account_number}/pledges", tag = "collections",
    params(("account_number" = String, Path)), request_body = PledgeIn,
    responses((status = 201, body = crate::wire::PaymentOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn post_pledge(
    State(app): State<Billpay>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<PledgeIn>,
) -> Result<(StatusCode, Json<crate::wire::PaymentOut>), ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let p = app
        .post_pledge(
            &number,
            billpay_domain::Money::new(body.amount, billpay_domain::Currency::USD),
            &body.agency,
            &body.reference,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(crate::wire::PaymentOut::from(&p))))
}
