//! REST handlers for the files a biller's bank exchanges with billpay: lockbox files of mailed
//! checks and the exceptions queue a person works, and ACH returns files and the NACHA files
//! written. The same operations as `billpay lockbox` and `billpay ach` on the command line.

use axum::Json;
use axum::extract::{Path, State};
use billpay_domain::{Currency, Money};
use billpay_services::Billpay;
use billpay_services::apikeys::ApiKey;
use billpay_services::lockbox::{LockboxFormat, Resolution};
use billpay_store::ach::{AchFileRow, LockboxItemRow};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::api::ApiJson;
use crate::error::ApiError;
use crate::wire::{ErrorBody, PaymentOut};

/// A file's content, sent as a JSON string.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileUpload {
    /// For lockbox files: "csv" or "bai2" (guessed from the content when absent).
    pub format: Option<String>,
    /// The whole file, as text.
    pub content: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PostedCheck {
    pub item_key: String,
    pub account_number: String,
    pub confirmation_number: String,
    pub amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueuedCheck {
    pub item_key: String,
    pub reason: String,
}

/// What importing a lockbox file did.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockboxImportOut {
    pub items: usize,
    pub posted: Vec<PostedCheck>,
    pub exceptions: Vec<QueuedCheck>,
    /// Items posted or queued by an earlier import of the same file.
    pub already_imported: usize,
}

/// A mailed check from a lockbox file.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockboxItemOut {
    pub id: String,
    pub item_key: String,
    /// exception, posted or rejected
    pub status: String,
    pub reason: Option<String>,
    pub deposit_date: String,
    pub check_number: String,
    pub amount: i64,
    pub amount_display: String,
    /// As printed on the remittance coupon.
    pub account_reference: String,
    pub remitter: String,
    pub line_number: i64,
    pub payment_id: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution_note: Option<String>,
}

impl From<LockboxItemRow> for LockboxItemOut {
    fn from(i: LockboxItemRow) -> Self {
        LockboxItemOut {
            amount_display: Money::new(i.amount, Currency::USD).format(),
            id: i.id,
            item_key: i.item_key,
            status: i.status,
            reason: i.reason,
            deposit_date: i.deposit_date,
            check_number: i.check_number,
            amount: i.amount,
            account_reference: i.account_reference,
            remitter: i.remitter,
            line_number: i.line_number,
            payment_id: i.payment_id,
            resolved_by: i.resolved_by,
            resolution_note: i.resolution_note,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LockboxItemList {
    pub data: Vec<LockboxItemOut>,
}

/// Post the check to an account, or reject it with a reason: exactly one of the two.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveException {
    pub account_number: Option<String>,
    pub reject_reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResolvedOut {
    pub item: LockboxItemOut,
    pub payment: Option<PaymentOut>,
}

/// What applying an ACH returns file did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnsImportOut {
    pub returns_applied: u64,
    pub corrections_applied: u64,
    pub already_applied: u64,
    /// Items that need a person, with the reason.
    pub needs_attention: Vec<String>,
    /// Payment ids reversed, with their R-code.
    pub payments_returned: Vec<(String, String)>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AchFileOut {
    pub id: String,
    pub file_name: String,
    /// building (bound, not yet written) or written
    pub status: String,
    pub entry_count: i64,
    pub debit_total: i64,
    pub credit_total: i64,
    pub sha256: Option<String>,
}

impl From<AchFileRow> for AchFileOut {
    fn from(f: AchFileRow) -> Self {
        AchFileOut {
            id: f.id,
            file_name: f.file_name,
            status: f.status,
            entry_count: f.entry_count,
            debit_total: f.debit_total,
            credit_total: f.credit_total,
            sha256: f.sha256,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AchFileList {
    pub data: Vec<AchFileOut>,
}

#[utoipa::path(post, path = "/lockbox/imports", tag = "files",
    request_body = FileUpload,
    responses((status = 200, body = LockboxImportOut),
        (status = 400, description = "Malformed file: nothing was posted", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn import_lockbox(
    State(app): State<Billpay>,
    ApiJson(body): ApiJson<FileUpload>,
) -> Result<Json<LockboxImportOut>, ApiError> {
    let format = LockboxFormat::detect(body.format.as_deref(), &body.content)?;
    let r = app.import_lockbox(&body.content, format).await?;
    Ok(Json(LockboxImportOut {
        items: r.items,
        posted: r
            .posted
            .into_iter()
            .map(
                |(item_key, account_number, confirmation_number, amount)| PostedCheck {
                    item_key,
                    account_number,
                    confirmation_number,
                    amount: amount.minor_units(),
                },
            )
            .collect(),
        exceptions: r
            .exceptions
            .into_iter()
            .map(|(item_key, reason)| QueuedCheck { item_key, reason })
            .collect(),
        already_imported: r.already_imported,
    }))
}

#[utoipa::path(get, path = "/lockbox/exceptions", tag = "files",
    responses((status = 200, body = LockboxItemList)),
    security(("api_key" = [])))]
pub async fn list_lockbox_exceptions(
    State(app): State<Billpay>,
) -> Result<Json<LockboxItemList>, ApiError> {
    let data = app
        .lockbox_exceptions()
        .await?
        .into_iter()
        .map(LockboxItemOut::from)
        .collect();
    Ok(Json(LockboxItemList { data }))
}

#[utoipa::path(post, path = "/lockbox/exceptions/{id}/resolve", tag = "files",
    params(("id" = String, Path)),
    request_body = ResolveException,
    responses((status = 200, body = ResolvedOut), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn resolve_lockbox_exception(
    State(app): State<Billpay>,
    axum::Extension(caller): axum::Extension<ApiKey>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ResolveException>,
) -> Result<Json<ResolvedOut>, ApiError> {
    let resolution = match (body.account_number, body.reject_reason) {
        (Some(account_number), None) => Resolution::Post { account_number },
        (None, Some(reason)) => Resolution::Reject { reason },
        _ => {
            return Err(billpay_services::ServiceError::invalid(
                "account_number",
                "give exactly one of account_number (post the check) or reject_reason",
            )
            .into());
        }
    };
    let payment = app
        .resolve_lockbox_exception(&id, resolution, &format!("apikey:{}", caller.id))
        .await?;
    let item = app.lockbox_item(&id).await?;
    Ok(Json(ResolvedOut {
        item: item.into(),
        payment: payment.as_ref().map(PaymentOut::from),
    }))
}

#[utoipa::path(post, path = "/ach/returns", tag = "files",
    request_body = FileUpload,
    responses((status = 200, body = ReturnsImportOut),
        (status = 400, description = "Not a valid NACHA file: nothing was applied", body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn import_ach_returns(
    State(app): State<Billpay>,
    ApiJson(body): ApiJson<FileUpload>,
) -> Result<Json<ReturnsImportOut>, ApiError> {
    let r = app.import_ach_returns(&body.content).await?;
    Ok(Json(ReturnsImportOut {
        returns_applied: r.returns_applied,
        corrections_applied: r.corrections_applied,
        already_applied: r.already_applied,
        needs_attention: r.unmatched,
        payments_returned: r.payments_returned,
    }))
}

#[utoipa::path(get, path = "/ach/files", tag = "files",
    responses((status = 200, body = AchFileList)),
    security(("api_key" = [])))]
pub async fn list_ach_files(State(app): State<Billpay>) -> Result<Json<AchFileList>, ApiError> {
    let data = app
        .ach_files(100)
        .await?
        .into_iter()
        .map(AchFileOut::from)
        .collect();
    Ok(Json(AchFileList { data }))
}
