//! Background work that keeps billpay's records in step with the processor:
//! resolving in-doubt payments and refunds by key, settling bank debits, pruning old keys.

use billpay_domain::{PaymentStatus, transition};
use billpay_store::{StoreError, queries};

use crate::processor::{Lookup, Settlement};
use crate::{Billpay, Payment, Refund, ServiceError};

/// Most records one pass looks at.
const PASS_LIMIT: i64 = 200;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    pub payments_resolved: u64,
    pub payments_still_in_doubt: u64,
    pub refunds_resolved: u64,
    pub debits_settled: u64,
    pub debits_returned: u64,
    /// Sealed bank account numbers of ACH entries past their return window, destroyed.
    pub ach_account_numbers_destroyed: u64,
    pub keys_pruned: u64,
    /// Calls silent too long whose sealed card or bank digits were destroyed.
    pub idle_call_digits_wiped: u64,
    /// Handled processor webhook events older than `PROCESSOR_EVENTS_KEPT`, forgotten.
    pub processor_events_pruned: u64,
    /// Payment attempts older than every fraud-rule window, forgotten (their decisions stay).
    pub risk_events_pruned: u64,
}

/// How long a handled webhook event id is remembered: Stripe redelivers for up to 3 days.
pub const PROCESSOR_EVENTS_KEPT: jiff::SignedDuration = jiff::SignedDuration::from_hours(30 * 24);

/// A call with no webhook for this long has been abandoned; its sealed digits are destroyed.
pub const CALL_DIGITS_IDLE_MAX: jiff::SignedDuration = jiff::SignedDuration::from_mins(15);

impl Billpay {
    /// One pass over everything that needs the processor's word. Safe to run on several
    /// instances at once: every change is conditional on the state it started from.
    pub async fn reconcile(&self) -> Result<ReconcileReport, ServiceError> {
        let mut report = ReconcileReport::default();
        let cutoff = self
            .clock
            .now()
            .checked_sub(self.config().in_doubt_after)
            .map(|t| t.as_microsecond())
            .unwrap_or(i64::MIN);
        let (payments, refunds) = {
            let mut c = self.store.read_conn().await?;
            (
                queries::in_doubt_payments(&mut c, cutoff, PASS_LIMIT).await?,
                queries::in_doubt_refunds(&mut c, cutoff, PASS_LIMIT).await?,
            )
        };
        for v in payments {
            let p = Payment::from_view(&v)?;
            match self.resolve_in_doubt(p).await? {
                crate::PaymentResult::InDoubt(_) => report.payments_still_in_doubt += 1,
                _ => report.payments_resolved += 1,
            }
        }
        for r in refunds {
            let refund = Refund::from_row(&r)?;
            let payment = self.payment(&refund.payment_id).await?;
            let charge_ref = payment.processor_ref.clone().unwrap_or_default();
            match self
                .processor
                .lookup_refund(&r.processor_key, &charge_ref)
                .await
            {
                Ok(Lookup::Refund(outcome)) => {
                    self.record_refund(refund, payment, outcome).await?;
                    report.refunds_resolved += 1;
                }
                Ok(Lookup::NotFound) => {
                    self.release_unsent_refund(&refund.id).await?;
                    report.refunds_resolved += 1;
                }
                _ => {}
            }
        }
        let (settled, returned) = self.settle_bank_debits().await?;
        report.debits_settled = settled;
        report.debits_returned = returned;
        let prune_before = self
            .clock
            .now()
            .checked_sub(self.config().idempotency_retention)
            .map(|t| t.as_microsecond())
            .unwrap_or(i64::MIN);
        let idle_before = self
            .clock
            .now()
            .checked_sub(CALL_DIGITS_IDLE_MAX)
            .map(|t| t.as_microsecond())
            .unwrap_or(i64::MIN);
        report.idle_call_digits_wiped = self
            .store
            .write_relaxed(move |c| {
                Box::pin(async move { queries::ivr_wipe_idle_digits(c, idle_before).await })
            })
            .await?;
        report.keys_pruned = self
            .store
            .write(move |c| {
                Box::pin(async move { queries::idempotency_prune(c, prune_before).await })
            })
            .await?;
        let events_before = self
            .clock
            .now()
            .checked_sub(PROCESSOR_EVENTS_KEPT)
            .map(|t| t.as_microsecond())
            .unwrap_or(i64::MIN);
        report.processor_events_pruned = self
            .store
            .write(move |c| {
                Box::pin(
                    async move { billpay_store::disputes::events_prune(c, events_before).await },
                )
            })
            .await?;
        report.ach_account_numbers_destroyed = self.forget_old_ach_accounts().await?;
        report.risk_events_pruned = self.prune_risk_events().await?;
        Ok(report)
    }

    /// Asks the processor about every accepted bank debit: settled ones succeed, returned ones
    /// are reversed in the ledger and the customer is told why.
    pub async fn settle_bank_debits(&self) -> Result<(u64, u64), ServiceError> {
        let pending = {
            let mut c = self.store.read_conn().await?;
            queries::unsettled_bank_debits(&mut c, PASS_LIMIT).await?
        };
        let (mut settled, mut returned) = (0, 0);
        for v in pending {
            let p = Payment::from_view(&v)?;
            match self.settle_one(&p).await? {
                Some(Settlement::Settled) => settled += 1,
                Some(Settlement::Returned(_)) => returned += 1,
                _ => {}
            }
        }
        Ok((settled, returned))
    }

    /// Asks the processor where one accepted bank debit stands and records it. Returns what
    /// changed: `Some(Settled)` or `Some(Returned)` when this call moved the payment.
    pub async fn settle_one(&self, p: &Payment) -> Result<Option<Settlement>, ServiceError> {
        let Some(reference) = p.processor_ref.clone() else {
            return Ok(None);
        };
        let now = self.clock.now_micros();
        match self.processor.settlement(&reference).await {
            Ok(Settlement::Settled) => {
                transition(p.status, PaymentStatus::Succeeded, p.method.kind)
                    .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
                let id = p.id.clone();
                let moved = self
                    .store
                    .write(move |c| {
                        Box::pin(async move {
                            queries::update_payment_state(
                                c,
                                &id,
                                "processing",
                                "succeeded",
                                None,
                                None,
                                None,
                                now,
                            )
                            .await
                        })
                    })
                    .await?;
                Ok(moved.then_some(Settlement::Settled))
            }
            Ok(Settlement::Returned(code)) => {
                let plan = self.plan_return(p, code.as_str())?;
                let moved = self
                    .store
                    .write(move |c| {
                        Box::pin(async move { crate::ach::apply_return_in(c, plan, now).await })
                    })
                    .await?;
                Ok(moved.then_some(Settlement::Returned(code)))
            }
            Ok(Settlement::Pending) => Ok(None),
            Err(e) => {
                tracing::warn!(payment_id = %p.id, error = %e, "settlement check failed; will retry");
                Ok(None)
            }
        }
    }
}
