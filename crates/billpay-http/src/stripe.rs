//! Stripe's webhook endpoint (`POST /webhooks/stripe`, verified by `Stripe-Signature`, not by an
//! API key) and the disputes an agent desk shows (`GET /disputes`,
//! `GET /payments/{id}/disputes`). The work is in `billpay_services::stripe_events`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use billpay_services::Billpay;
use billpay_services::stripe_events::{Dispute, WebhookError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::wire::ErrorBody;

/// Receives one Stripe event. 200 when handled (or seen before), 400 when the signature or the
/// event is bad (Stripe shows it failed), 503 when Stripe itself could not be asked for the
/// object's state (Stripe redelivers), 404 when Stripe is not this billpay's processor.
pub async fn webhook(State(app): State<Billpay>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    // The work runs to the end even if Stripe hangs up, like every money-moving handler.
    let task = tokio::spawn(async move { app.stripe_webhook(signature.as_deref(), &body).await });
    let answer = match task.await {
        Ok(a) => a,
        Err(_) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "internal_error",
                "The event could not be handled.",
            )
            .into_response();
        }
    };
    match answer {
        Ok(a) => Json(serde_json::json!({
            "received": true,
            "event": a.event_id,
            "duplicate": a.duplicate,
            "outcome": a.outcome,
        }))
        .into_response(),
        Err(WebhookError::NotConfigured) => ApiError::not_found("route").into_response(),
        Err(e @ (WebhookError::Signature(_) | WebhookError::Malformed(_))) => {
            tracing::warn!(error = %e, "Stripe webhook refused");
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "webhook_invalid",
                e.to_string(),
            )
            .into_response()
        }
        Err(WebhookError::Unavailable(cause)) => {
            tracing::warn!(%cause, "Stripe webhook: Stripe unavailable; it will redeliver");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "processor_unavailable",
                "Stripe could not be reached to confirm the event; deliver it again later.",
            )
            .into_response()
        }
        Err(WebhookError::Service(e)) => ApiError::from(e).into_response(),
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisputeOut {
    pub id: String,
    pub object: &'static str,
    pub payment_id: String,
    /// The processor's own id of the dispute (Stripe: `dp_…`).
    pub processor: String,
    pub processor_dispute_id: String,
    /// Minor units reversed from the account's receivable while the dispute stands.
    pub amount: i64,
    pub currency: String,
    /// The processor's reason, e.g. `fraudulent`, `product_not_received`.
    pub reason: String,
    /// The processor's status: `warning_needs_response`, `needs_response`, `under_review`,
    /// `won`, `lost`, …
    pub status: String,
    /// Whether the payment is reversed in the ledger now (open or lost).
    pub reversed: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Dispute> for DisputeOut {
    fn from(d: &Dispute) -> Self {
        DisputeOut {
            id: d.id.clone(),
            object: "dispute",
            payment_id: d.payment_id.clone(),
            processor: d.processor.clone(),
            processor_dispute_id: d.processor_dispute_id.clone(),
            amount: d.amount,
            currency: d.currency.clone(),
            reason: d.reason.clone(),
            status: d.status.clone(),
            reversed: d.reversed,
            created_at: d.created_at.to_string(),
            updated_at: d.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DisputeList {
    pub object: &'static str,
    pub data: Vec<DisputeOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct DisputeQuery {
    /// Only disputes in this status (e.g. `needs_response`).
    pub status: Option<String>,
    /// 1 to 500; default 100.
    pub limit: Option<i64>,
}

#[utoipa::path(get, path = "/disputes", tag = "disputes", params(DisputeQuery),
    responses((status = 200, body = DisputeList), (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_disputes(
    State(app): State<Billpay>,
    Query(q): Query<DisputeQuery>,
) -> Result<Json<DisputeList>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1 to 500"));
    }
    if q.status.as_deref().is_some_and(|s| {
        s.is_empty() || s.len() > 64 || !s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
    }) {
        return Err(ApiError::invalid(
            "status",
            "status must be a dispute status such as needs_response",
        ));
    }
    let list = app.disputes(q.status.as_deref(), limit).await?;
    Ok(Json(DisputeList {
        object: "list",
        data: list.iter().map(DisputeOut::from).collect(),
    }))
}

#[utoipa::path(get, path = "/payments/{id}/disputes", tag = "disputes",
    params(("id" = String, Path)),
    responses((status = 200, body = DisputeList), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn payment_disputes(
    State(app): State<Billpay>,
    Path(id): Path<String>,
) -> Result<Json<DisputeList>, ApiError> {
    // 404 for a payment that does not exist.
    app.payment(&id).await?;
    let list = app.disputes_of(&id).await?;
    Ok(Json(DisputeList {
        object: "list",
        data: list.iter().map(DisputeOut::from).collect(),
    }))
}
