//! Errors as the API shows them: an honest status code and a stable JSON body. The cause of a
//! server-side failure is logged once, here, and never shown.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use billpay_services::ServiceError;
use billpay_store::StoreError;

use crate::wire::{ErrorBody, ErrorDetail};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub detail: Box<ErrorDetail>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &str, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            detail: Box::new(ErrorDetail::new(kind, code, message)),
        }
    }

    pub fn invalid(param: &str, message: impl Into<String>) -> Self {
        let mut e = ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "parameter_invalid",
            message,
        );
        e.detail.param = Some(param.to_string());
        e
    }

    pub fn unauthorized(message: &str) -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "unauthorized",
            message,
        )
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "resource_missing",
            format!("No such {what}."),
        )
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Invalid { param, message } => ApiError::invalid(&param, message),
            ServiceError::NotFound { what } => ApiError::not_found(what),
            ServiceError::IdempotencyMismatch => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_error",
                "idempotency_key_reused",
                e.to_string(),
            ),
            ServiceError::IdempotencyInProgress => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_error",
                "request_in_progress",
                e.to_string(),
            ),
            ServiceError::Duplicate {
                message,
                previous_payment_id,
            } => {
                let mut err = ApiError::new(
                    StatusCode::CONFLICT,
                    "invalid_request_error",
                    "duplicate_payment",
                    message,
                );
                err.detail.param = Some("confirm_duplicate".into());
                err.detail.previous_payment = Some(previous_payment_id);
                err
            }
            ServiceError::Conflict { code, message } => {
                ApiError::new(StatusCode::CONFLICT, "invalid_request_error", code, message)
            }
            ServiceError::ProcessorUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "api_error",
                "processor_unavailable",
                e.to_string(),
            ),
            ServiceError::Store(StoreError::Unavailable(cause)) => {
                tracing::error!(%cause, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "api_error",
                    "service_unavailable",
                    "The service is briefly unavailable. Nothing was charged. Please try again.",
                )
            }
            ServiceError::Store(cause) => {
                tracing::error!(%cause, "internal error");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "api_error",
                    "internal_error",
                    "Something went wrong on our side. If you were paying, check your payment history before trying again.",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: *self.detail,
            payment: None,
            refund: None,
        };
        (self.status, axum::Json(body)).into_response()
    }
}
