//! The audit log for supervisors: records filtered and newest first, each with its place in the
//! hash chain (`billpay audit verify` proves the chain).

use axum::Json;
use axum::extract::{Query, State};
use billpay_services::Billpay;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;
use crate::wire::{ErrorBody, parse_account_number, parse_date};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Who acted (an API key name, `system`, a staff member...).
    pub actor: Option<String>,
    /// What was done, e.g. `vault.save`.
    pub action: Option<String>,
    /// Records about this account.
    pub account_number: Option<String>,
    /// Records about this subject (a payment method id, a payment id...).
    pub subject_id: Option<String>,
    /// From this day (YYYY-MM-DD, UTC), inclusive.
    pub since: Option<String>,
    /// Up to this day (YYYY-MM-DD, UTC), inclusive.
    pub until: Option<String>,
    /// 1 to 1000; default 100.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditRecordOut {
    pub id: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subject_type: String,
    pub subject_id: String,
    pub channel: Option<String>,
    /// JSON text: what changed, never a card or account number.
    pub detail: String,
    /// Its number in the hash chain; null until sealed (seconds after it was written).
    pub seq: Option<i64>,
    pub hash: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AuditList {
    pub object: &'static str,
    pub data: Vec<AuditRecordOut>,
}

fn day_start(param: &str, day: &str) -> Result<jiff::Timestamp, ApiError> {
    let d = parse_date(param, day)?;
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .map(|z| z.timestamp())
        .map_err(|_| ApiError::invalid(param, "the day is out of range"))
}

#[utoipa::path(get, path = "/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = AuditList), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_audit(
    State(app): State<Billpay>,
    Query(q): Query<AuditQuery>,
) -> Result<Json<AuditList>, ApiError> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1 to 1000"));
    }
    let account = q
        .account_number
        .as_deref()
        .map(|n| parse_account_number("account_number", n))
        .transpose()?;
    let from = match q.since.as_deref() {
        Some(d) => day_start("since", d)?,
        None => jiff::Timestamp::MIN,
    };
    let to = match q.until.as_deref() {
        Some(d) => {
            let next = parse_date("until", d)?
                .tomorrow()
                .map_err(|_| ApiError::invalid("until", "the day is out of range"))?;
            day_start("until", &next.to_string())?
        }
        None => jiff::Timestamp::MAX,
    };
    if from >= to {
        return Err(ApiError::invalid("until", "until must not be before since"));
    }
    let data = app
        .audit_records(
            q.actor.as_deref(),
            q.action.as_deref(),
            account.as_ref(),
            q.subject_id.as_deref(),
            from,
            to,
            limit,
        )
        .await?
        .into_iter()
        .map(|r| AuditRecordOut {
            at: billpay_services::clock::from_micros(r.at).to_string(),
            id: r.id,
            actor: r.actor,
            action: r.action,
            subject_type: r.subject_type,
            subject_id: r.subject_id,
            channel: r.channel,
            detail: r.detail,
            seq: r.seq,
            hash: r.hash,
        })
        .collect();
    Ok(Json(AuditList {
        object: "list",
        data,
    }))
}
