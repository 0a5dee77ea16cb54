//! Reports for the biller's back office: the daily payment posting file.

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use billpay_services::Billpay;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;
use crate::wire::{ErrorBody, parse_date};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct AgingQuery {
    /// The day, YYYY-MM-DD, in the biller's time zone (default: today).
    pub as_of: Option<String>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// What customers owe as of the end of a day, by how long past due (current, 1-30, 31-60,
/// 61-90, over 90 days; payments pay the oldest charges first), one line per account with a
/// balance, and totals per currency. Amounts in minor units in JSON, decimal in CSV.
#[utoipa::path(get, path = "/reports/aging", tag = "reports", params(AgingQuery),
    responses(
        (status = 200, description = "The aging report: JSON `{as_of, timezone, accounts, totals}`, or CSV with a header line and TOTAL lines", content_type = "application/json"),
        (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn aging_report(
    State(app): State<Billpay>,
    Query(q): Query<AgingQuery>,
) -> Result<Response, ApiError> {
    let csv = wants_csv(q.format.as_deref())?;
    let day = match q.as_of.as_deref() {
        Some(d) => parse_date("as_of", d)?,
        None => app.today_for_biller(),
    };
    let report = app.aging_report(day).await?;
    let name = format!("aging-{}", report.as_of);
    Ok(if csv {
        download(&name, true, report.to_csv())
    } else {
        download(&name, false, report.to_json())
    })
}

fn wants_csv(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(_) => Err(ApiError::invalid("format", "format must be json or csv")),
    }
}

/// A report as a download named `<name>.csv` or `<name>.json`.
fn download(name: &str, csv: bool, body: String) -> Response {
    let (ext, kind) = if csv {
        ("csv", "text/csv; charset=utf-8")
    } else {
        ("json", "application/json")
    };
    (
        [
            (header::CONTENT_TYPE, kind.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.{ext}\""),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PostingQuery {
    /// The day, YYYY-MM-DD, in the biller's time zone.
    pub date: String,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

/// Every payment, refund and return the ledger posted on the day: one line each, with the
/// account, signed amount (minor units in JSON, decimal in CSV), method type, channel,
/// confirmation number and time. The same day always gives the same bytes.
#[utoipa::path(get, path = "/reports/posting", tag = "reports", params(PostingQuery),
    responses(
        (status = 200, description = "The posting file: JSON `{date, timezone, count, totals, lines}`, or CSV with a header line", content_type = "application/json"),
        (status = 400, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn posting_file(
    State(app): State<Billpay>,
    Query(q): Query<PostingQuery>,
) -> Result<Response, ApiError> {
    let day = parse_date("date", &q.date)?;
    let csv = wants_csv(q.format.as_deref())?;
    let file = app.posting_file(day).await?;
    let name = format!("payments-{}", file.date);
    Ok(if csv {
        download(&name, true, file.to_csv())
    } else {
        download(&name, false, file.to_json())
    })
}
