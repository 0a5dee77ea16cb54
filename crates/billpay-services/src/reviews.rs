//! The review queue: payments the risk rules sent to review ([`billpay_domain::risk`]) went to
//! the processor as usual and, once they went through, are held here until a supervisor or an
//! administrator decides. Approving closes the review; rejecting refunds the payment in full
//! through the ordinary refund path (processor, ledger, the customer's refund email) and then
//! closes it. This is card processors' manual review (Stripe Radar's "review"): the customer is
//! never kept waiting at the till, and a person looks at the unusual ones the same day.
//!
//! A rejection is started before its refund is asked for (`start_rejection`), so an approval
//! racing it is refused and a payment is never both approved and refunded; the refund's
//! idempotency key comes from the payment and the refunds it already has, so a resent form or
//! two supervisors at once make one refund. If the processor refuses the refund, the rejection
//! is withdrawn and the review is open again; if its answer is lost, the rejection stays
//! started until the reconciler resolves the refund and someone rejects again.
//!
//! Every decision writes, in one transaction, the review's outcome, a `risk_decisions` row
//! (action `approve` or `reject`, with the rules' reasons and score) and an audit record
//! (actor `staff:<id>`, channel `desk`) sealed into the hash chain like every other.

use billpay_domain::risk::{ReviewDecision, RiskReason};
use billpay_domain::{AccountNumber, CardBrand, Channel, MethodKind, Money, PaymentStatus};
use billpay_store::StoreError;
use billpay_store::risk::{self as q, PaymentReviewRow, RiskDecisionRow};
use billpay_store::rows::AuditRow;
use jiff::Timestamp;

use crate::payments::{Idempotency, RefundRequest};
use crate::staff::{Role, Staff};
use crate::{Billpay, MethodSummary, ServiceError};

/// Open reviews shown in the queue at once (the oldest first; the page says how many more).
pub const REVIEW_QUEUE_MAX: i64 = 100;
/// Reviews shown on an account's panel.
pub const PANEL_REVIEWS_MAX: i64 = 10;
/// Longest reason a reviewer may give, in characters.
pub const REVIEW_REASON_CHARS_MAX: usize = 500;

/// A payment held for review, or decided, as staff see it: the method as brand and last four
/// at most, the reasons in plain words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentReview {
    pub payment_id: String,
    pub account_id: String,
    pub account_number: AccountNumber,
    pub amount: Money,
    pub refunded: Money,
    pub status: PaymentStatus,
    pub channel: Channel,
    /// "Visa ending in 4242", "checking account ending in 6789".
    pub method: String,
    pub confirmation_number: String,
    pub reasons: Vec<RiskReason>,
    pub score: i64,
    pub opened_at: Timestamp,
    /// Set once decided.
    pub decided_at: Option<Timestamp>,
    /// `staff:<id>` of whoever decided, or started a rejection, and their name.
    pub decided_by: Option<String>,
    pub decided_by_name: Option<String>,
    /// The decision, or a rejection started whose refund is pending (`decided_at` None).
    pub decision: Option<ReviewDecision>,
    pub decision_reason: Option<String>,
}

impl PaymentReview {
    fn from_row(r: PaymentReviewRow) -> Result<PaymentReview, StoreError> {
        let corrupt = |what: &str, v: &str| {
            StoreError::Corrupt(format!("payment review {}: {what} {v:?}", r.payment_id))
        };
        let currency = billpay_domain::Currency::parse(&r.currency)
            .map_err(|_| corrupt("currency", &r.currency))?;
        let kind =
            MethodKind::parse(&r.method_type).ok_or_else(|| corrupt("method", &r.method_type))?;
        let method = MethodSummary {
            kind,
            brand: r.brand.as_deref().and_then(CardBrand::parse),
            last4: r.last4.clone(),
            exp_month: None,
            exp_year: None,
            bank_account_type: None,
        }
        .describe();
        Ok(PaymentReview {
            account_number: AccountNumber::parse(&r.account_number)
                .map_err(|_| corrupt("account number", &r.account_number))?,
            amount: Money::new(r.amount, currency),
            refunded: Money::new(r.refunded_amount, currency),
            status: PaymentStatus::parse(&r.status).ok_or_else(|| corrupt("status", &r.status))?,
            channel: Channel::parse(&r.channel).ok_or_else(|| corrupt("channel", &r.channel))?,
            method,
            reasons: r.reasons.split(',').filter_map(RiskReason::parse).collect(),
            score: r.score,
            opened_at: crate::clock::from_micros(r.opened_at),
            decided_at: r.decided_at.map(crate::clock::from_micros),
            decision: r.decision.as_deref().and_then(ReviewDecision::parse),
            decided_by: r.decided_by,
            decided_by_name: r.decided_by_name,
            decision_reason: r.decision_reason,
            confirmation_number: r.confirmation_number,
            payment_id: r.payment_id,
            account_id: r.account_id,
        })
    }

    /// Open: nobody has decided yet (a rejection may be started, its refund pending).
    pub fn is_open(&self) -> bool {
        self.decided_at.is_none()
    }
}

/// The open reviews, oldest first, and how many are open in all.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReviewQueue {
    pub reviews: Vec<PaymentReview>,
    pub open: i64,
}

/// Deciding reviews, and reading the queue, is for supervisors and administrators.
fn reviewer(staff: &Staff) -> Result<(), ServiceError> {
    if staff.role < Role::Supervisor {
        return Err(ServiceError::Conflict {
            code: "forbidden",
            message: "Payments held for review are approved or rejected by a supervisor or an \
                      administrator."
                .into(),
        });
    }
    Ok(())
}

/// The reviewer's reason, trimmed: required to reject, at most [`REVIEW_REASON_CHARS_MAX`].
fn reason_of(decision: ReviewDecision, reason: &str) -> Result<String, ServiceError> {
    let reason = reason.trim();
    if decision == ReviewDecision::Reject && reason.is_empty() {
        return Err(ServiceError::invalid(
            "reason",
            "Enter the reason for rejecting this payment. Nothing was changed: the payment is \
             still held for review.",
        ));
    }
    if reason.chars().count() > REVIEW_REASON_CHARS_MAX {
        return Err(ServiceError::invalid(
            "reason",
            format!("Keep the reason to {REVIEW_REASON_CHARS_MAX} characters or fewer."),
        ));
    }
    Ok(reason.to_string())
}

/// What one decision writes after its refund (if any): the review's outcome, the decision in
/// `risk_decisions`, the audit record.
struct Decided {
    review: PaymentReview,
    decision: ReviewDecision,
    actor: String,
    reason: String,
    refund_id: Option<String>,
    decision_id: String,
    audit_id: String,
    now: i64,
}

impl Billpay {
    /// The review queue: open reviews, oldest first.
    pub async fn desk_review_queue(&self, staff: &Staff) -> Result<ReviewQueue, ServiceError> {
        reviewer(staff)?;
        let mut c = self.store.read_conn().await?;
        let rows = q::open_reviews(&mut c, REVIEW_QUEUE_MAX).await?;
        let open = q::open_review_count(&mut c).await?;
        let reviews = rows
            .into_iter()
            .map(PaymentReview::from_row)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ReviewQueue { reviews, open })
    }

    /// An account's reviews, newest first (its panel; every representative may read them).
    pub async fn reviews_of_account(
        &self,
        account_id: &str,
        limit: i64,
    ) -> Result<Vec<PaymentReview>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let rows = q::reviews_of_account(&mut c, account_id, limit).await?;
        Ok(rows
            .into_iter()
            .map(PaymentReview::from_row)
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// One payment's review.
    pub async fn payment_review(&self, payment_id: &str) -> Result<PaymentReview, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let row = q::review_of(&mut c, payment_id)
            .await?
            .ok_or(ServiceError::NotFound {
                what: "payment held for review",
            })?;
        Ok(PaymentReview::from_row(row)?)
    }

    /// Approves or rejects a payment held for review, with the reviewer's reason (required to
    /// reject). A rejection refunds what remains of the payment first. Returns the review as
    /// decided. An agent is refused, and the refusal audited.
    #[tracing::instrument(skip_all, fields(payment_id = %payment_id, decision = decision.as_str()))]
    pub async fn desk_decide_review(
        &self,
        staff: &Staff,
        payment_id: &str,
        decision: ReviewDecision,
        reason: &str,
    ) -> Result<PaymentReview, ServiceError> {
        if let Err(e) = reviewer(staff) {
            let account_id = self
                .payment_review(payment_id)
                .await
                .ok()
                .map(|r| r.account_id);
            self.review_audit(
                staff,
                "desk.review_refused",
                payment_id,
                account_id,
                serde_json::json!({"decision": decision.as_str(), "role": staff.role.as_str()}),
            )
            .await?;
            return Err(e);
        }
        let reason = reason_of(decision, reason)?;
        let review = self.payment_review(payment_id).await?;
        if let Some(done) = review.decision.filter(|_| !review.is_open()) {
            return Err(already_decided(done));
        }
        let actor = format!("staff:{}", staff.id);
        let refund_id = match decision {
            ReviewDecision::Approve => {
                if review.decision == Some(ReviewDecision::Reject) {
                    return Err(ServiceError::Conflict {
                        code: "review_rejection_started",
                        message: "A rejection of this payment was started and its refund is \
                                  waiting for the processor's answer, so it cannot be approved. \
                                  Reject it again in a few minutes to finish."
                            .into(),
                    });
                }
                None
            }
            ReviewDecision::Reject => self.refund_rejected(&review, &actor, &reason).await?,
        };
        let decided = Decided {
            decision,
            actor,
            reason,
            refund_id,
            decision_id: self.new_id("rkd"),
            audit_id: self.new_id("aud"),
            now: self.clock.now_micros(),
            review,
        };
        let payment_id = decided.review.payment_id.clone();
        let channel = decided.review.channel;
        self.store
            .write(move |c| Box::pin(async move { record_decision(c, decided).await }))
            .await?;
        metrics::counter!("billpay_risk_decisions_total",
            "channel" => channel.as_str(), "action" => decision.as_str())
        .increment(1);
        self.payment_review(&payment_id).await
    }

    /// The refund of a rejected payment: everything that remains of it, through the ordinary
    /// refund path. None when nothing remains to refund (already refunded, returned by the
    /// bank, never posted). A bank debit that has not settled cannot be refunded yet.
    async fn refund_rejected(
        &self,
        review: &PaymentReview,
        actor: &str,
        reason: &str,
    ) -> Result<Option<String>, ServiceError> {
        let payment = self.payment(&review.payment_id).await?;
        match payment.status {
            PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded => {}
            PaymentStatus::Processing => {
                return Err(ServiceError::Conflict {
                    code: "review_not_settled",
                    message: "This bank payment has not settled yet, so it cannot be refunded. \
                              It stays held for review: reject it once it settles (usually \
                              within a few business days), or approve it now."
                        .into(),
                });
            }
            _ => return Ok(None),
        }
        let (pid, by, why) = (
            review.payment_id.clone(),
            actor.to_string(),
            reason.to_string(),
        );
        let started = self
            .store
            .write(move |c| Box::pin(async move { q::start_rejection(c, &pid, &by, &why).await }))
            .await?;
        if !started {
            let now = self.payment_review(&review.payment_id).await?;
            return Err(now.decision.map(already_decided).unwrap_or_else(|| {
                ServiceError::Conflict {
                    code: "review_changed",
                    message: "This review changed while you were deciding. Open it again.".into(),
                }
            }));
        }
        // One key per refund attempt: a resent form, or two reviewers at once, make one refund;
        // after a refused refund the next attempt is a new one.
        let attempts = self.refunds_of(&review.payment_id).await?.len();
        let idem = Idempotency::new(
            format!("review:{}", review.payment_id),
            format!("reject-{attempts}"),
        )?;
        let refunded = self
            .create_refund(
                idem,
                RefundRequest {
                    payment_id: review.payment_id.clone(),
                    amount: None,
                },
            )
            .await;
        let refunds = self.refunds_of(&review.payment_id).await?;
        let after = self.payment(&review.payment_id).await?;
        if after.status == PaymentStatus::Refunded {
            let id = refunds
                .iter()
                .rev()
                .find(|r| r.status == "succeeded")
                .map(|r| r.id.clone());
            return Ok(id);
        }
        if refunds.iter().any(|r| r.status == "pending") {
            return Err(ServiceError::Conflict {
                code: "review_refund_pending",
                message: "The refund was sent and the processor's answer has not come back yet. \
                          The payment stays held for review: reject it again in a few minutes \
                          to finish."
                    .into(),
            });
        }
        // The processor refused the refund, or was not reached: the review is open again.
        let pid = review.payment_id.clone();
        self.store
            .write(move |c| Box::pin(async move { q::cancel_rejection(c, &pid).await }))
            .await?;
        let why = match refunded {
            Err(e) => e.to_string(),
            Ok(_) => "the processor declined the refund".into(),
        };
        Err(ServiceError::Conflict {
            code: "review_refund_failed",
            message: format!(
                "The payment could not be refunded ({why}). Nothing was changed: it is still \
                 held for review. Try again later."
            ),
        })
    }

    /// One audit record of a review action by `staff`.
    async fn review_audit(
        &self,
        staff: &Staff,
        action: &str,
        payment_id: &str,
        account_id: Option<String>,
        detail: serde_json::Value,
    ) -> Result<(), ServiceError> {
        self.desk_audit(
            format!("staff:{}", staff.id),
            action,
            "payment",
            payment_id,
            account_id,
            &detail.to_string(),
        )
        .await
    }
}

fn already_decided(done: ReviewDecision) -> ServiceError {
    ServiceError::Conflict {
        code: "review_decided",
        message: match done {
            ReviewDecision::Approve => "This payment was already approved.",
            ReviewDecision::Reject => "This payment was already rejected and refunded.",
        }
        .into(),
    }
}

/// The review's outcome, its `risk_decisions` row and its audit record, in one transaction.
async fn record_decision(
    c: &mut billpay_store::AnyConnection,
    d: Decided,
) -> Result<(), ServiceError> {
    let r = &d.review;
    let codes = r
        .reasons
        .iter()
        .map(|x| x.code())
        .collect::<Vec<_>>()
        .join(",");
    if !q::decide_review(
        c,
        &r.payment_id,
        d.now,
        &d.actor,
        d.decision.as_str(),
        &d.reason,
    )
    .await?
    {
        return Err(ServiceError::Conflict {
            code: "review_decided",
            message: "Someone else decided this payment's review first. Open it again.".into(),
        });
    }
    q::insert_decision(
        c,
        &RiskDecisionRow {
            id: d.decision_id,
            at: d.now,
            account_id: r.account_id.clone(),
            channel: r.channel.as_str().into(),
            payment_id: Some(r.payment_id.clone()),
            action: d.decision.as_str().into(),
            score: r.score,
            reasons: codes.clone(),
            amount: r.amount.minor_units(),
            currency: r.amount.currency().code().into(),
        },
    )
    .await?;
    let action = match d.decision {
        ReviewDecision::Approve => "desk.review_approved",
        ReviewDecision::Reject => "desk.review_rejected",
    };
    billpay_store::queries::insert_audit(
        c,
        &AuditRow {
            id: d.audit_id,
            at: d.now,
            actor: d.actor,
            action: action.into(),
            subject_type: "payment".into(),
            subject_id: r.payment_id.clone(),
            account_id: Some(r.account_id.clone()),
            channel: Some("desk".into()),
            detail: serde_json::json!({
                "reasons": codes,
                "reason": d.reason,
                "amount": r.amount.minor_units(),
                "currency": r.amount.currency().code(),
                "refund_id": d.refund_id,
            })
            .to_string(),
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejection_needs_a_reason_and_an_approval_does_not() {
        let e = reason_of(ReviewDecision::Reject, "   ").unwrap_err();
        assert!(e.to_string().contains("Enter the reason"), "{e}");
        assert_eq!(reason_of(ReviewDecision::Approve, "").unwrap(), "");
        assert_eq!(
            reason_of(ReviewDecision::Reject, "  card reported stolen ").unwrap(),
            "card reported stolen"
        );
        let long = "x".repeat(REVIEW_REASON_CHARS_MAX + 1);
        assert!(reason_of(ReviewDecision::Approve, &long).is_err());
    }
}
