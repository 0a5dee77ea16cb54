//! How payment and refund results look on the wire. The services store exactly this with the
//! idempotency key, so a replay is byte-for-byte the first answer.

use billpay_domain::{DeclineCode, Language, MethodKind};
use billpay_services::{PaymentResult, RefundResult, Render, StoredResponse};
use serde::Serialize;

use crate::wire::{ErrorBody, ErrorDetail, PaymentOut, RefundOut, RefundWithPayment};

pub struct JsonRender;

fn json<T: Serialize>(status: u16, body: &T) -> StoredResponse {
    match serde_json::to_string(body) {
        Ok(body) => StoredResponse { status, body },
        Err(_) => StoredResponse {
            status: 500,
            body: r#"{"error":{"type":"api_error","code":"internal_error","message":"could not render the response"}}"#.into(),
        },
    }
}

fn decline_detail(kind: &str, code: DeclineCode) -> ErrorDetail {
    let mut d = ErrorDetail::new(kind, code.error_code(), code.message(Language::En));
    d.decline_code = Some(code.as_str().into());
    d.next_step = Some(code.next_step(Language::En).into());
    d.message_es = Some(code.message(Language::Es).into());
    d.next_step_es = Some(code.next_step(Language::Es).into());
    d
}

/// Shown with a payment whose processor answer was lost.
pub const IN_DOUBT_MESSAGE: &str = "We are confirming this payment with the payment processor. It will not be charged twice: check its status in a few minutes.";

#[derive(Serialize)]
struct InDoubt<'a, T: Serialize> {
    #[serde(flatten)]
    inner: &'a T,
    message: &'static str,
}

impl Render for JsonRender {
    fn payment(&self, result: &PaymentResult) -> StoredResponse {
        match result {
            PaymentResult::Completed(p) => json(201, &PaymentOut::from(p)),
            PaymentResult::Declined(p, code) => {
                let kind = match p.method.kind {
                    MethodKind::Card => "card_error",
                    MethodKind::Ach | MethodKind::Check | MethodKind::Pledge => {
                        "bank_account_error"
                    }
                };
                json(
                    402,
                    &ErrorBody {
                        error: decline_detail(kind, *code),
                        payment: Some(PaymentOut::from(p)),
                        refund: None,
                    },
                )
            }
            PaymentResult::InDoubt(p) => json(
                202,
                &InDoubt {
                    inner: &PaymentOut::from(p),
                    message: IN_DOUBT_MESSAGE,
                },
            ),
        }
    }

    fn refund(&self, result: &RefundResult) -> StoredResponse {
        match result {
            RefundResult::Completed(r, p) => json(
                201,
                &RefundWithPayment {
                    refund: RefundOut::from(r),
                    payment: PaymentOut::from(p),
                },
            ),
            RefundResult::Declined(r, p, code) => json(
                402,
                &ErrorBody {
                    error: decline_detail("refund_error", *code),
                    payment: Some(PaymentOut::from(p)),
                    refund: Some(RefundOut::from(r)),
                },
            ),
            RefundResult::InDoubt(r, p) => json(
                202,
                &InDoubt {
                    inner: &RefundWithPayment {
                        refund: RefundOut::from(r),
                        payment: PaymentOut::from(p),
                    },
                    message: IN_DOUBT_MESSAGE,
                },
            ),
        }
    }
}
