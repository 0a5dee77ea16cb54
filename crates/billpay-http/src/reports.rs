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
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::invalid("format", "format must be json or csv")),
    };
    let file = app.posting_file(day).await?;
    let disposition = format!(
        "attachment; filename=\"payments-{}.{}\"",
        file.date,
        if csv { "csv" } else { "json" }
    );
    Ok(if csv {
        (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            file.to_csv(),
        )
            .into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, "application/json".to_string()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            file.to_json(),
        )
            .into_response()
    })
}
