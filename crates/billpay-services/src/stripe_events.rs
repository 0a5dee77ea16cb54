//! Inbound Stripe webhooks: verified by `Stripe-Signature`, deduplicated by event id, and
//! order-independent — an event only says *which* object changed; its current state is always
//! fetched from Stripe before anything is recorded, so a late `payment_failed` cannot undo a
//! `succeeded`, and a redelivered event finds nothing left to do.
//!
//! What events drive:
//! - `payment_intent.*` and `charge.*` (not disputes): the payment named by
//!   `metadata[billpay_key]` — an in-doubt payment gets its outcome, an accepted bank debit
//!   settles or is returned (an ACH return reverses it in the ledger, as a NACHA return does);
//!   pending refunds of the payment are resolved.
//! - `refund.*`: the pending refunds of the refunded payment are resolved.
//! - `charge.dispute.*`: the dispute is recorded (table `disputes`); opening it reverses the
//!   payment in the ledger, winning it posts the payment again; losing it leaves the reversal.
//!
//! Anything else is acknowledged and ignored. The event row is written after the work, so an
//! event whose work failed (Stripe unreachable) is answered 503 and redelivered by Stripe.

use std::sync::Arc;

use billpay_domain::{EntryKind, JournalEntry, Money, PaymentStatus};
use billpay_store::disputes::{self as dq, DisputeRow, ProcessorEventRow};
use billpay_store::{StoreError, queries};
use serde_json::Value;

use crate::payments::{journal_row, ledger_error, postings_of};
use crate::processor::{Lookup, ProcessorError};
use crate::stripe::{SignatureError, StripeProcessor, verify_signature};
use crate::{Billpay, Payment, Refund, ServiceError};

/// Largest webhook body accepted (Stripe's events are a few kilobytes).
pub const WEBHOOK_BODY_BYTES_MAX: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("Stripe webhooks are not configured (processor = \"stripe\" and a webhook secret)")]
    NotConfigured,
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("the event is not valid: {0}")]
    Malformed(String),
    /// Stripe could not be asked for the object's current state: redeliver later.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl From<StoreError> for WebhookError {
    fn from(e: StoreError) -> Self {
        WebhookError::Service(e.into())
    }
}

/// What an accepted event did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookAnswer {
    pub event_id: String,
    /// The event was handled before; nothing was done this time.
    pub duplicate: bool,
    /// A short word for what happened ("recorded", "settled", "no_change", "ignored", …).
    pub outcome: String,
}

fn unavailable(e: ProcessorError) -> WebhookError {
    WebhookError::Unavailable(e.to_string())
}

/// A dispute as billpay shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dispute {
    pub id: String,
    pub processor: String,
    pub processor_dispute_id: String,
    pub payment_id: String,
    pub account_id: String,
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    pub status: String,
    /// Whether the payment is reversed in the ledger now (open or lost: yes; won: no).
    pub reversed: bool,
    pub created_at: jiff::Timestamp,
    pub updated_at: jiff::Timestamp,
}

impl Dispute {
    fn from_row(r: DisputeRow) -> Dispute {
        Dispute {
            reversed: r.journal_id.is_some() && r.closing_journal_id.is_none(),
            created_at: crate::clock::from_micros(r.created_at),
            updated_at: crate::clock::from_micros(r.updated_at),
            id: r.id,
            processor: r.processor,
            processor_dispute_id: r.processor_dispute_id,
            payment_id: r.payment_id,
            account_id: r.account_id,
            amount: r.amount,
            currency: r.currency,
            reason: r.reason,
            status: r.status,
        }
    }
}

/// Whether Stripe holds the disputed money in this status: yes for a dispute that is open or
/// lost; no once it is won, and never for an inquiry (`warning_…`), which withdraws nothing.
pub fn funds_withdrawn(status: &str) -> bool {
    status != "won" && !status.starts_with("warning_")
}

impl Billpay {
    fn stripe(&self) -> Result<Arc<StripeProcessor>, WebhookError> {
        self.config()
            .stripe
            .clone()
            .ok_or(WebhookError::NotConfigured)
    }

    /// One delivery of Stripe's webhook: checks the signature, skips an event seen before,
    /// brings the object it names up to date, and remembers the event.
    pub async fn stripe_webhook(
        &self,
        signature: Option<&str>,
        payload: &[u8],
    ) -> Result<WebhookAnswer, WebhookError> {
        let stripe = self.stripe()?;
        let secret = stripe
            .config()
            .webhook_secret
            .clone()
            .ok_or(WebhookError::NotConfigured)?;
        let now = self.clock.now();
        verify_signature(
            secret.expose_secret(),
            signature,
            payload,
            now.as_second(),
            stripe.config().webhook_tolerance_secs,
        )?;
        if payload.len() > WEBHOOK_BODY_BYTES_MAX {
            return Err(WebhookError::Malformed("the body is too large".into()));
        }
        let event: Value = serde_json::from_slice(payload)
            .map_err(|e| WebhookError::Malformed(format!("not JSON: {e}")))?;
        let event_id = event["id"]
            .as_str()
            .filter(|s| s.starts_with("evt_") && s.len() <= 255)
            .ok_or_else(|| WebhookError::Malformed("no event id (evt_…)".into()))?
            .to_string();
        let event_type = event["type"]
            .as_str()
            .filter(|s| s.len() <= 100)
            .ok_or_else(|| WebhookError::Malformed("no event type".into()))?
            .to_string();
        let object = &event["data"]["object"];
        let object_id = object["id"].as_str().unwrap_or_default().to_string();
        {
            let mut c = self.store.read_conn().await.map_err(ServiceError::from)?;
            if let Some(seen) = dq::event_get(&mut c, "stripe", &event_id).await? {
                metrics::counter!("billpay_processor_events_total", "processor" => "stripe", "result" => "duplicate").increment(1);
                return Ok(WebhookAnswer {
                    event_id,
                    duplicate: true,
                    outcome: seen.outcome,
                });
            }
        }
        let outcome = if event_type.starts_with("charge.dispute.") {
            self.stripe_sync_dispute(&stripe, &object_id).await?
        } else if event_type.starts_with("payment_intent.") {
            self.stripe_sync_payment(&stripe, &object_id).await?
        } else if event_type.starts_with("charge.") || event_type.starts_with("refund.") {
            match object["payment_intent"].as_str() {
                Some(pi) => self.stripe_sync_payment(&stripe, pi).await?,
                None => "ignored".to_string(),
            }
        } else {
            "ignored".to_string()
        };
        tracing::info!(%event_id, %event_type, %outcome, "Stripe event handled");
        metrics::counter!("billpay_processor_events_total", "processor" => "stripe", "result" => "handled").increment(1);
        let row = ProcessorEventRow {
            processor: "stripe".into(),
            event_id: event_id.clone(),
            event_type,
            object_id,
            outcome: outcome.clone(),
            received_at: now.as_microsecond(),
        };
        let fresh = self
            .store
            .write(move |c| Box::pin(async move { dq::event_insert(c, &row).await }))
            .await
            .map_err(ServiceError::from)?;
        Ok(WebhookAnswer {
            event_id,
            duplicate: !fresh,
            outcome,
        })
    }

    /// Brings the payment behind a PaymentIntent up to Stripe's current state.
    async fn stripe_sync_payment(
        &self,
        stripe: &StripeProcessor,
        pi_id: &str,
    ) -> Result<String, WebhookError> {
        let pi = stripe.payment_intent(pi_id).await.map_err(unavailable)?;
        let Some(key) = pi["metadata"]["billpay_key"].as_str() else {
            return Ok("not_ours".into());
        };
        let view = {
            let mut c = self.store.read_conn().await.map_err(ServiceError::from)?;
            queries::payment_by_processor_key(&mut c, key).await?
        };
        let Some(view) = view else {
            return Ok("unknown_payment".into());
        };
        let p = Payment::from_view(&view)?;
        let mut outcome = "no_change".to_string();
        if p.status == PaymentStatus::Processing {
            if p.processor_ref.is_none() {
                // In doubt: the charge call's answer was lost (or has not come back yet).
                if let Some(o) = StripeProcessor::outcome_of(&pi) {
                    let result = self.record_outcome(p.clone(), o).await?;
                    outcome = format!("recorded_{}", result.payment().status.as_str());
                }
            } else {
                outcome = match self.settle_one(&p).await? {
                    Some(crate::processor::Settlement::Settled) => "settled".into(),
                    Some(crate::processor::Settlement::Returned(code)) => {
                        format!("returned_{}", code.as_str())
                    }
                    _ => "no_change".into(),
                };
            }
        }
        let resolved = self.stripe_resolve_refunds(&p).await?;
        if resolved > 0 {
            outcome = format!("{outcome}+refunds_{resolved}");
        }
        let imported = self.stripe_import_refunds(stripe, &p).await?;
        if imported > 0 {
            outcome = format!("{outcome}+external_refunds_{imported}");
        }
        Ok(outcome)
    }

    /// Records refunds made at Stripe without billpay (in the dashboard): each becomes a
    /// billpay refund keyed `stripe:<re_…>` (unique, so a redelivered event cannot record it
    /// twice), posted to the ledger like any refund.
    async fn stripe_import_refunds(
        &self,
        stripe: &StripeProcessor,
        p: &Payment,
    ) -> Result<u64, WebhookError> {
        let Some(pi) = p.processor_ref.clone() else {
            return Ok(0);
        };
        if !matches!(
            p.status,
            PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded
        ) {
            return Ok(0);
        }
        let at_stripe = stripe.refunds_of(&pi).await.map_err(unavailable)?;
        let ours = {
            let mut c = self.store.read_conn().await.map_err(ServiceError::from)?;
            queries::refunds_for_payment(&mut c, &p.id).await?
        };
        let mut imported = 0;
        for r in at_stripe {
            let (Some(re_id), Some(amount)) = (r["id"].as_str(), r["amount"].as_i64()) else {
                continue;
            };
            if !matches!(r["status"].as_str(), Some("succeeded" | "pending")) || amount <= 0 {
                continue;
            }
            let key = format!("stripe:{re_id}");
            let billpays = r["metadata"]["billpay_key"]
                .as_str()
                .is_some_and(|k| ours.iter().any(|o| o.processor_key == k));
            let known = billpays
                || ours
                    .iter()
                    .any(|o| o.processor_key == key || o.processor_ref.as_deref() == Some(re_id));
            if known {
                continue;
            }
            let now = self.clock.now_micros();
            let row = billpay_store::rows::RefundRow {
                id: self.new_id("re"),
                payment_id: p.id.clone(),
                amount,
                currency: p.amount.currency().code().to_string(),
                status: "pending".into(),
                processor_key: key,
                processor_ref: None,
                failure_code: None,
                journal_id: None,
                created_at: now,
                updated_at: now,
            };
            let payment_id = p.id.clone();
            let claimed = self
                .store
                .write(move |c| {
                    Box::pin(async move {
                        queries::lock_payment(c, &payment_id, now).await?;
                        let view = queries::payment_by_id(c, &payment_id)
                            .await?
                            .ok_or(StoreError::NotFound)?;
                        // Under the payment's lock: a redelivery racing this one sees its row.
                        let existing = queries::refunds_for_payment(c, &payment_id).await?;
                        if existing
                            .iter()
                            .any(|r| r.processor_key == row.processor_key)
                        {
                            return Ok::<_, StoreError>(None);
                        }
                        let pending: i64 = existing
                            .iter()
                            .filter(|r| r.status == "pending")
                            .map(|r| r.amount)
                            .sum();
                        let left = view.payment.amount - view.payment.refunded_amount - pending;
                        if row.amount > left {
                            return Ok(None);
                        }
                        queries::insert_refund(c, &row).await?;
                        Ok(Some(row))
                    })
                })
                .await
                .map_err(ServiceError::from)?;
            let Some(row) = claimed else {
                tracing::warn!(payment_id = %p.id, refund = %re_id, "a Stripe refund billpay did not make could not be recorded (already recorded, or more than is left)");
                continue;
            };
            let refund = Refund::from_row(&row)?;
            let payment = self.payment(&p.id).await?;
            self.record_refund(
                refund,
                payment,
                crate::processor::RefundOutcome::Refunded {
                    reference: re_id.to_string(),
                },
            )
            .await?;
            tracing::info!(payment_id = %p.id, refund = %re_id, "recorded a refund made at Stripe");
            imported += 1;
        }
        Ok(imported)
    }

    /// Resolves the payment's refunds whose answer was lost, by asking Stripe.
    async fn stripe_resolve_refunds(&self, p: &Payment) -> Result<u64, WebhookError> {
        let Some(charge_ref) = p.processor_ref.clone() else {
            return Ok(0);
        };
        let pending: Vec<_> = {
            let mut c = self.store.read_conn().await.map_err(ServiceError::from)?;
            queries::refunds_for_payment(&mut c, &p.id)
                .await?
                .into_iter()
                .filter(|r| r.status == "pending")
                .collect()
        };
        let mut resolved = 0;
        for row in pending {
            let refund = Refund::from_row(&row)?;
            match self
                .processor
                .lookup_refund(&row.processor_key, &charge_ref)
                .await
            {
                Ok(Lookup::Refund(outcome)) => {
                    let payment = self.payment(&p.id).await?;
                    self.record_refund(refund, payment, outcome).await?;
                    resolved += 1;
                }
                // Not at Stripe (yet): the reconciler decides once the refund is old enough.
                Ok(_) => {}
                Err(e) => return Err(unavailable(e)),
            }
        }
        Ok(resolved)
    }

    /// Records a dispute as Stripe has it now: reverses the payment when it opens, posts it
    /// again when it is won.
    async fn stripe_sync_dispute(
        &self,
        stripe: &StripeProcessor,
        dp_id: &str,
    ) -> Result<String, WebhookError> {
        let d = stripe.dispute(dp_id).await.map_err(unavailable)?;
        let status = d["status"]
            .as_str()
            .filter(|s| s.len() <= 64)
            .ok_or_else(|| WebhookError::Malformed("the dispute has no status".into()))?
            .to_string();
        let reason = d["reason"].as_str().unwrap_or("general");
        let reason: String = reason.chars().take(64).collect();
        let pi = d["payment_intent"].as_str().unwrap_or_default();
        let view = {
            let mut c = self.store.read_conn().await.map_err(ServiceError::from)?;
            queries::payment_by_processor_ref(&mut c, "stripe", pi).await?
        };
        let Some(view) = view else {
            return Ok("unknown_payment".into());
        };
        let p = Payment::from_view(&view)?;
        let now = self.clock.now_micros();
        let disputed = d["amount"].as_i64().unwrap_or(0);
        if disputed <= 0 {
            return Err(WebhookError::Malformed("the dispute has no amount".into()));
        }
        // The receivable is reversed by what the customer paid on the bill, at most; a
        // convenience fee inside the disputed total stays with the card clearing account.
        let amount = Money::new(disputed.min(p.amount.minor_units()), p.amount.currency());
        let existing = {
            let mut c = self.store.read_conn().await.map_err(ServiceError::from)?;
            dq::dispute_by_processor_id(&mut c, "stripe", dp_id).await?
        };
        let Some(row) = existing else {
            let id = self.new_id("dsp");
            let reversal = JournalEntry::refund(&p.account_number, amount, p.method.kind)
                .map_err(ledger_error)?;
            let journal = journal_row(
                self,
                EntryKind::Adjustment,
                "dispute",
                &id,
                &p.account_id,
                amount.currency().code(),
                now,
            );
            let postings = postings_of(&reversal);
            // An inquiry, or a dispute first seen already won: nothing is taken back (yet).
            let withdrawn = funds_withdrawn(&status);
            let row = DisputeRow {
                id: id.clone(),
                processor: "stripe".into(),
                processor_dispute_id: dp_id.to_string(),
                payment_id: p.id.clone(),
                account_id: p.account_id.clone(),
                amount: amount.minor_units(),
                currency: amount.currency().code().to_string(),
                reason,
                status: status.clone(),
                journal_id: withdrawn.then(|| journal.id.clone()),
                closing_journal_id: None,
                created_at: now,
                updated_at: now,
            };
            let inserted = self
                .store
                .write(move |c| {
                    Box::pin(async move {
                        if !dq::dispute_insert(c, &row).await? {
                            return Ok::<_, StoreError>(false);
                        }
                        if row.journal_id.is_some() {
                            queries::insert_journal(c, &journal, &postings).await?;
                        }
                        Ok(true)
                    })
                })
                .await
                .map_err(ServiceError::from)?;
            if inserted {
                tracing::warn!(payment_id = %p.id, dispute_id = %id, "payment disputed; reversed in the ledger");
                metrics::counter!("billpay_disputes_total", "status" => "opened").increment(1);
            }
            return Ok(if inserted {
                "dispute_opened"
            } else {
                "no_change"
            }
            .into());
        };
        if row.status == status {
            return Ok("no_change".into());
        }
        let withdrawn = funds_withdrawn(&status);
        let reverse = withdrawn && row.journal_id.is_none();
        let reinstate = !withdrawn && row.journal_id.is_some() && row.closing_journal_id.is_none();
        let entry = if reverse {
            // An inquiry became a dispute: the money is taken back now.
            let e = JournalEntry::refund(&p.account_number, amount, p.method.kind)
                .map_err(ledger_error)?;
            Some((EntryKind::Adjustment, e))
        } else if reinstate {
            // Kind `payment` (the reversal is `adjustment`): one entry of each kind per dispute.
            let e = JournalEntry::payment(&p.account_number, amount, p.method.kind)
                .map_err(ledger_error)?;
            Some((EntryKind::Payment, e))
        } else {
            None
        };
        let posting = entry.map(|(kind, e)| {
            (
                journal_row(
                    self,
                    kind,
                    "dispute",
                    &row.id,
                    &p.account_id,
                    amount.currency().code(),
                    now,
                ),
                postings_of(&e),
            )
        });
        let (id, from) = (row.id.clone(), row.status.clone());
        let new_status = status.clone();
        let moved = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let journal = posting.as_ref().map(|(j, _)| j.id.as_str());
                    let moved = dq::dispute_update(
                        c,
                        &id,
                        &from,
                        &new_status,
                        if reverse { journal } else { None },
                        if reinstate { journal } else { None },
                        now,
                    )
                    .await?;
                    if moved && let Some((j, postings)) = &posting {
                        queries::insert_journal(c, j, postings).await?;
                    }
                    Ok::<_, StoreError>(moved)
                })
            })
            .await
            .map_err(ServiceError::from)?;
        if !moved {
            return Ok("no_change".into());
        }
        metrics::counter!("billpay_disputes_total", "status" => if reinstate { "won" } else { "updated" }).increment(1);
        Ok(if reinstate {
            "dispute_won".to_string()
        } else if reverse {
            "dispute_opened".to_string()
        } else {
            format!("dispute_{status}")
        })
    }

    /// Disputes, newest first; only those in `status` when given (the agent desk's queue).
    pub async fn disputes(
        &self,
        status: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Dispute>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(dq::disputes_list(&mut c, status, limit)
            .await?
            .into_iter()
            .map(Dispute::from_row)
            .collect())
    }

    /// The disputes of an account's payments, newest first (the agent desk's account panel).
    pub async fn disputes_of_account(
        &self,
        account_id: &str,
    ) -> Result<Vec<Dispute>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(dq::disputes_of_account(&mut c, account_id)
            .await?
            .into_iter()
            .map(Dispute::from_row)
            .collect())
    }

    /// The disputes of one payment.
    pub async fn disputes_of(&self, payment_id: &str) -> Result<Vec<Dispute>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(dq::disputes_of_payment(&mut c, payment_id)
            .await?
            .into_iter()
            .map(Dispute::from_row)
            .collect())
    }
}
