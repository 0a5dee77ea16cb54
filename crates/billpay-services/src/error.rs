//! Errors a channel can act on. Each maps to one HTTP status and one stable code.

use billpay_store::StoreError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ServiceError {
    /// Bad input; `param` names the field.
    #[error("{message}")]
    Invalid { param: String, message: String },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The same idempotency key was used with different parameters.
    #[error("this Idempotency-Key was already used with different parameters")]
    IdempotencyMismatch,
    /// Another request with this key is still running.
    #[error("a request with this Idempotency-Key is still being processed; retry shortly")]
    IdempotencyInProgress,
    /// The cross-channel duplicate guard.
    #[error("{message}")]
    Duplicate {
        message: String,
        previous_payment_id: String,
    },
    /// The request conflicts with the resource's state.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error(
        "the payment processor is unavailable; nothing was charged. Please try again shortly, or schedule the payment for a later date"
    )]
    ProcessorUnavailable,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl ServiceError {
    pub fn invalid(param: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            param: param.into(),
            message: message.into(),
        }
    }
}
