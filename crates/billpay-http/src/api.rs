//! REST handlers under `/api/v1`. Each one parses, calls one service function, and renders.

use axum::Json;
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use billpay_domain::{ConfirmationNumber, Money};
use billpay_services::apikeys::ApiKey;
use billpay_services::payments::{Idempotency, RefundRequest};
use billpay_services::receipts::Receipt;
use billpay_services::vault::Actor;
use billpay_services::{Billpay, StoredResponse};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::wire::*;

/// A JSON body whose errors name the field that is wrong.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                "content_type_invalid",
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError::new(
                    e.status(),
                    "invalid_request_error",
                    "body_invalid",
                    e.body_text(),
                )
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body; an error names the field at fault (`payment_method[exp_month]`).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("the body is not valid JSON: {inner}")
        } else {
            inner.to_string()
        };
        let message = mask_quoted_digits(&message);
        let param = if path == "." {
            "body".to_string()
        } else {
            bracket_path(&path)
        };
        ApiError::invalid(&param, message)
    })
}

/// serde quotes the offending value in its messages (`invalid type: integer `4242...``): a card
/// number or security code sent as the wrong type would come back in the error. Every digit
/// inside quotes or backticks is masked.
pub fn mask_quoted_digits(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for ch in message.chars() {
        match (open, ch) {
            (None, '`' | '"') => open = Some(ch),
            (Some(q), c) if c == q => open = None,
            (Some(_), c) if c.is_ascii_digit() => {
                out.push('*');
                continue;
            }
            _ => {}
        }
        out.push(ch);
    }
    out
}

/// "payment_method.number" -> "payment_method[number]" (Stripe's way of naming fields).
fn bracket_path(path: &str) -> String {
    let mut parts = path.split('.');
    let mut out = parts.next().unwrap_or_default().to_string();
    for p in parts {
        out.push('[');
        out.push_str(p);
        out.push(']');
    }
    out
}

/// The request's idempotency key, scoped to the API key. Like Stripe's, the header is optional:
/// without one the request runs once under a key of its own, and a retry is a new request (the
/// duplicate guard still refuses a second payment of the same amount within minutes).
fn idempotency(
    app: &Billpay,
    caller: &ApiKey,
    headers: &HeaderMap,
) -> Result<Idempotency, ApiError> {
    let scope = format!("apikey:{}", caller.id);
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(Idempotency::new(
            scope,
            format!("auto:{}", app.new_id("idem")),
        )?);
    };
    let key = value.to_str().map_err(|_| {
        ApiError::invalid(
            "Idempotency-Key",
            "the Idempotency-Key header must be printable ASCII",
        )
    })?;
    Ok(Idempotency::new(scope, key)?)
}

fn stored(r: StoredResponse) -> Response {
    let status = StatusCode::from_u16(r.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, "application/json")], r.body).into_response()
}

/// Runs money-moving work in its own task: a client that hangs up cannot cut a payment short.
async fn detached<F>(work: F) -> Result<StoredResponse, ApiError>
where
    F: std::future::Future<Output = Result<StoredResponse, billpay_services::ServiceError>>
        + Send
        + 'static,
{
    match tokio::spawn(work).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(e) => {
            tracing::error!(error = %e, "payment task failed");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "api_error",
                "internal_error",
                "Something went wrong on our side. Check the payment history before trying again.",
            ))
        }
    }
}

#[utoipa::path(post, path = "/accounts", tag = "accounts",
    request_body = CreateAccount,
    responses((status = 201, body = AccountOut), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_account(
    State(app): State<Billpay>,
    ApiJson(body): ApiJson<CreateAccount>,
) -> Result<(StatusCode, Json<AccountOut>), ApiError> {
    let account = app.create_account(body.into_domain()?).await?;
    let summary = app.account_summary(&account.account_number).await?;
    Ok((StatusCode::CREATED, Json(AccountOut::from(&summary))))
}

#[utoipa::path(get, path = "/accounts/{account_number}", tag = "accounts",
    params(("account_number" = String, Path)),
    responses((status = 200, body = AccountOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_account(
    State(app): State<Billpay>,
    Path(number): Path<String>,
) -> Result<Json<AccountOut>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    Ok(Json(AccountOut::from(&app.account_summary(&number).await?)))
}

#[utoipa::path(post, path = "/accounts/{account_number}/statements", tag = "accounts",
    params(("account_number" = String, Path)),
    request_body = CreateStatement,
    responses((status = 201, body = StatementOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_statement(
    State(app): State<Billpay>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<CreateStatement>,
) -> Result<(StatusCode, Json<StatementOut>), ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let s = app.create_statement(&number, body.into_domain()?).await?;
    Ok((StatusCode::CREATED, Json(StatementOut::from(&s))))
}

#[utoipa::path(get, path = "/accounts/{account_number}/statements", tag = "accounts",
    params(("account_number" = String, Path)),
    responses((status = 200, body = StatementList), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_statements(
    State(app): State<Billpay>,
    Path(number): Path<String>,
) -> Result<Json<StatementList>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let list = app.statements(&number).await?;
    Ok(Json(StatementList {
        object: "list",
        data: list.iter().map(StatementOut::from).collect(),
    }))
}

/// Page size for lists.
const PAGE_DEFAULT: i64 = 25;
const PAGE_MAX: i64 = 100;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ListParams {
    /// 1 to 100, default 25.
    pub limit: Option<i64>,
    /// A payment id: list payments older than it.
    pub starting_after: Option<String>,
}

#[utoipa::path(get, path = "/accounts/{account_number}/payments", tag = "payments",
    params(("account_number" = String, Path), ListParams),
    responses((status = 200, body = PaymentList), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_payments(
    State(app): State<Billpay>,
    Path(number): Path<String>,
    Query(q): Query<ListParams>,
) -> Result<Json<PaymentList>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let limit = q.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::invalid("limit", "limit must be 1 to 100"));
    }
    let after = match q.starting_after {
        Some(id) => Some(
            app.payment(&id)
                .await
                .map_err(|_| ApiError::invalid("starting_after", "no such payment"))?,
        ),
        None => None,
    };
    let mut page = app
        .account_payments(&number, after.as_ref(), limit + 1)
        .await?;
    let has_more = page.len() as i64 > limit;
    page.truncate(limit as usize);
    Ok(Json(PaymentList {
        object: "list",
        data: page.iter().map(PaymentOut::from).collect(),
        has_more,
    }))
}

#[utoipa::path(post, path = "/payments", tag = "payments",
    request_body = CreatePayment,
    params(("Idempotency-Key" = Option<String>, Header, description = "A unique key per payment (recommended): a retry with the same key returns the first answer and never pays twice")),
    responses(
        (status = 201, description = "Succeeded (cards) or accepted and processing (bank debits)", body = PaymentOut),
        (status = 202, description = "The processor's answer was lost; the payment is being confirmed", body = PaymentOut),
        (status = 400, body = ErrorBody), (status = 402, description = "Declined", body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_payment(
    State(app): State<Billpay>,
    axum::Extension(caller): axum::Extension<ApiKey>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<CreatePayment>,
) -> Result<Response, ApiError> {
    let idem = idempotency(&app, &caller, &headers)?;
    let req = body.into_domain()?;
    Ok(stored(
        detached(async move { app.create_payment(idem, req).await }).await?,
    ))
}

#[utoipa::path(get, path = "/payments/{id}", tag = "payments",
    params(("id" = String, Path)),
    responses((status = 200, body = PaymentOut), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_payment(
    State(app): State<Billpay>,
    Path(id): Path<String>,
) -> Result<Json<PaymentOut>, ApiError> {
    Ok(Json(PaymentOut::from(&app.payment(&id).await?)))
}

#[utoipa::path(get, path = "/payments/{id}/receipt", tag = "payments",
    params(("id" = String, Path)),
    responses((status = 200, body = ReceiptOut), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_receipt(
    State(app): State<Billpay>,
    Path(id): Path<String>,
) -> Result<Json<ReceiptOut>, ApiError> {
    let p = app.payment(&id).await?;
    use billpay_domain::PaymentStatus::*;
    if matches!(p.status, Failed | Canceled | Pending)
        || (p.status == Processing && p.processor_ref.is_none())
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_request_error",
            "no_receipt",
            "This payment did not go through, so it has no receipt.",
        ));
    }
    Ok(Json(ReceiptOut::from(&Receipt::for_payment(
        &p,
        &app.config().biller,
    ))))
}

#[utoipa::path(get, path = "/confirmations/{confirmation_number}", tag = "payments",
    params(("confirmation_number" = String, Path, description = "With or without dashes")),
    responses((status = 200, body = PaymentOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_confirmation(
    State(app): State<Billpay>,
    Path(number): Path<String>,
) -> Result<Json<PaymentOut>, ApiError> {
    let c = ConfirmationNumber::parse(&number).map_err(|e| {
        ApiError::invalid(
            "confirmation_number",
            format!("the confirmation number is not valid: {e}"),
        )
    })?;
    Ok(Json(PaymentOut::from(
        &app.payment_by_confirmation(&c).await?,
    )))
}

#[utoipa::path(post, path = "/payments/{id}/refunds", tag = "payments",
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header, description = "A unique key per refund (recommended)")),
    request_body(content = CreateRefund, description = "Leave out amount for a full refund"),
    responses((status = 201, body = RefundWithPayment), (status = 202, body = RefundWithPayment),
        (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn create_refund(
    State(app): State<Billpay>,
    axum::Extension(caller): axum::Extension<ApiKey>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let idem = idempotency(&app, &caller, &headers)?;
    let body: CreateRefund = if body.iter().all(|b| b.is_ascii_whitespace()) {
        CreateRefund::default()
    } else {
        parse_json(&body)?
    };
    let payment = app.payment(&id).await?;
    let req = RefundRequest {
        payment_id: id,
        amount: body
            .amount
            .map(|a| Money::new(a, payment.amount.currency())),
    };
    Ok(stored(
        detached(async move { app.create_refund(idem, req).await }).await?,
    ))
}

fn today(app: &Billpay) -> jiff::civil::Date {
    app.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date()
}

fn api_actor(caller: &ApiKey) -> Actor {
    Actor {
        id: format!("apikey:{}", caller.id),
        channel: billpay_domain::Channel::Api,
    }
}

#[utoipa::path(post, path = "/accounts/{account_number}/payment_methods", tag = "payment methods",
    params(("account_number" = String, Path)),
    request_body = SavePaymentMethod,
    responses((status = 201, description = "Saved", body = SavedMethodOut),
        (status = 200, description = "Already saved on this account: the existing method, updated", body = SavedMethodOut),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn save_payment_method(
    State(app): State<Billpay>,
    axum::Extension(caller): axum::Extension<ApiKey>,
    Path(number): Path<String>,
    ApiJson(body): ApiJson<SavePaymentMethod>,
) -> Result<(StatusCode, Json<SavedMethodOut>), ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let (method, update) = body.into_domain()?;
    let (saved, created) = app
        .save_payment_method(&number, method, update, api_actor(&caller))
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(SavedMethodOut::new(&saved, today(&app)))))
}

#[utoipa::path(get, path = "/accounts/{account_number}/payment_methods", tag = "payment methods",
    params(("account_number" = String, Path)),
    responses((status = 200, body = SavedMethodList), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn list_payment_methods(
    State(app): State<Billpay>,
    Path(number): Path<String>,
) -> Result<Json<SavedMethodList>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let list = app.payment_methods(&number).await?;
    let today = today(&app);
    Ok(Json(SavedMethodList {
        object: "list",
        data: list.iter().map(|m| SavedMethodOut::new(m, today)).collect(),
    }))
}

#[utoipa::path(get, path = "/accounts/{account_number}/payment_methods/{id}", tag = "payment methods",
    params(("account_number" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = SavedMethodOut), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn get_payment_method(
    State(app): State<Billpay>,
    Path((number, id)): Path<(String, String)>,
) -> Result<Json<SavedMethodOut>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    Ok(Json(SavedMethodOut::new(
        &app.payment_method(&number, &id).await?,
        today(&app),
    )))
}

#[utoipa::path(patch, path = "/accounts/{account_number}/payment_methods/{id}", tag = "payment methods",
    params(("account_number" = String, Path), ("id" = String, Path)),
    request_body = UpdatePaymentMethod,
    responses((status = 200, body = SavedMethodOut), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn update_payment_method(
    State(app): State<Billpay>,
    axum::Extension(caller): axum::Extension<ApiKey>,
    Path((number, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<UpdatePaymentMethod>,
) -> Result<Json<SavedMethodOut>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    let saved = app
        .update_payment_method(&number, &id, body.into_domain()?, api_actor(&caller))
        .await?;
    Ok(Json(SavedMethodOut::new(&saved, today(&app))))
}

#[utoipa::path(delete, path = "/accounts/{account_number}/payment_methods/{id}", tag = "payment methods",
    params(("account_number" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = Deleted), (status = 404, body = ErrorBody)),
    security(("api_key" = [])))]
pub async fn delete_payment_method(
    State(app): State<Billpay>,
    axum::Extension(caller): axum::Extension<ApiKey>,
    Path((number, id)): Path<(String, String)>,
) -> Result<Json<Deleted>, ApiError> {
    let number = parse_account_number("account_number", &number)?;
    app.delete_payment_method(&number, &id, api_actor(&caller))
        .await?;
    Ok(Json(Deleted {
        id,
        object: "payment_method",
        deleted: true,
    }))
}
