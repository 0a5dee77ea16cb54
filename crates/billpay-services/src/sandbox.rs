//! The built-in sandbox processor: answers like the card networks and the ACH network do on
//! the well-known test numbers, and keeps its own records (table `sandbox_transactions`) so
//! that lookups by key work after a restart, as they would at a real processor.
//!
//! Card outcomes follow Stripe's test cards; any other valid card is approved. Bank debits on
//! routing number 110000000 follow Stripe's ACH test accounts: accepted at once, then settled
//! or returned with an R-code when the settlement window has passed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use billpay_domain::{DeclineCode, Money};
use billpay_store::{Store, StoreError, batch, queries, rows::SandboxTxRow};

use crate::clock::{Clock, Random, new_id};
use crate::processor::*;

/// A fault the sandbox injects into its next call, for tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call never reaches the processor; the caller waits, then times out.
    TimeoutBeforeCharge,
    /// The processor does the work, but the answer is lost.
    TimeoutAfterCharge,
    /// Connection refused before anything happened.
    Unavailable,
}

#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Added to every call, to imitate a network round trip.
    pub latency: Duration,
    /// How long accepted bank debits take to settle.
    pub settlement_window: jiff::SignedDuration,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            latency: Duration::ZERO,
            settlement_window: jiff::SignedDuration::from_hours(48),
        }
    }
}

pub struct SandboxProcessor {
    store: Store,
    clock: Arc<dyn Clock>,
    random: Arc<dyn Random>,
    config: SandboxConfig,
    faults: Mutex<VecDeque<Fault>>,
}

/// The test routing number whose accounts have scripted outcomes.
pub const TEST_ROUTING: &str = "110000000";

impl SandboxProcessor {
    pub fn new(
        store: Store,
        clock: Arc<dyn Clock>,
        random: Arc<dyn Random>,
        config: SandboxConfig,
    ) -> Self {
        SandboxProcessor {
            store,
            clock,
            random,
            config,
            faults: Mutex::new(VecDeque::new()),
        }
    }

    /// Queues a fault for the next call.
    pub fn inject(&self, fault: Fault) {
        if let Ok(mut q) = self.faults.lock() {
            q.push_back(fault);
        }
    }

    fn next_fault(&self) -> Option<Fault> {
        self.faults.lock().ok().and_then(|mut q| q.pop_front())
    }

    /// Takes the next injected fault and waits the configured latency. Faults that stop the
    /// call before the processor does anything are returned as errors here.
    async fn before_call(&self) -> Result<Option<Fault>, ProcessorError> {
        let fault = self.next_fault();
        self.delay().await;
        match fault {
            Some(Fault::TimeoutBeforeCharge) => Err(ProcessorError::Timeout),
            Some(Fault::Unavailable) => {
                Err(ProcessorError::Unavailable("connection refused".into()))
            }
            other => Ok(other),
        }
    }

    async fn delay(&self) {
        if !self.config.latency.is_zero() {
            tokio::time::sleep(self.config.latency).await;
        }
    }

    /// Records a transaction, or returns the one already recorded under the key.
    async fn record(&self, row: SandboxTxRow) -> Result<SandboxTxRow, ProcessorError> {
        let stored: Result<SandboxTxRow, StoreError> = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if !queries::sandbox_insert(c, &row).await? {
                        return queries::sandbox_by_key(c, &row.processor_key)
                            .await?
                            .ok_or(StoreError::NotFound);
                    }
                    Ok(row)
                })
            })
            .await;
        stored.map_err(|e| ProcessorError::Unavailable(format!("sandbox storage: {e}")))
    }

    /// The transaction a charge request makes, as the sandbox decides it.
    fn sale_row(&self, req: &ChargeRequest, now: i64) -> SandboxTxRow {
        let (kind, prefix, decline, return_code, settle_at) = match &req.method {
            ChargeMethod::Card { number, .. } => (
                "sale",
                "ch",
                card_outcome(number.expose_secret()),
                None,
                None,
            ),
            ChargeMethod::Bank {
                routing, account, ..
            } => {
                let settle = now.saturating_add(self.config.settlement_window.as_micros() as i64);
                match bank_outcome(routing.as_str(), account.expose_secret()) {
                    BankScript::Settles => ("debit", "py", None, None, Some(settle)),
                    BankScript::Returns(code) => (
                        "debit",
                        "py",
                        None,
                        Some(code.as_str().to_string()),
                        Some(settle),
                    ),
                    BankScript::RefusedNow(code) => ("debit", "py", Some(code), None, None),
                }
            }
        };
        SandboxTxRow {
            processor_key: req.key.clone(),
            kind: kind.into(),
            reference: self.reference(prefix),
            parent_reference: None,
            amount: req.amount.minor_units(),
            currency: req.amount.currency().code().to_string(),
            outcome: if decline.is_some() {
                "declined"
            } else {
                "succeeded"
            }
            .into(),
            decline_code: decline.map(|d| d.as_str().to_string()),
            settle_at,
            return_code,
            created_at: now,
        }
    }

    async fn find(&self, key: &str) -> Result<Option<SandboxTxRow>, ProcessorError> {
        let mut c = self
            .store
            .reader()
            .acquire()
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        queries::sandbox_by_key(&mut c, key)
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))
    }

    fn reference(&self, prefix: &str) -> String {
        new_id(prefix, self.clock.as_ref(), self.random.as_ref())
    }
}

/// The scripted outcome of a card number (Stripe's test cards).
pub fn card_outcome(number: &str) -> Option<DeclineCode> {
    Some(match number {
        "4000000000000002" => DeclineCode::GenericDecline,
        "4000000000009995" => DeclineCode::InsufficientFunds,
        "4000000000009987" => DeclineCode::LostCard,
        "4000000000009979" => DeclineCode::StolenCard,
        "4000000000000069" => DeclineCode::ExpiredCard,
        "4000000000000127" => DeclineCode::IncorrectCvc,
        "4000000000000119" => DeclineCode::ProcessingError,
        "4000000000006975" => DeclineCode::CardVelocityExceeded,
        "4100000000000019" => DeclineCode::Fraudulent,
        "4000000000000036" => DeclineCode::IncorrectZip,
        _ => return None,
    })
}

/// What a bank account on the test routing number does.
pub enum BankScript {
    Settles,
    Returns(DeclineCode),
    RefusedNow(DeclineCode),
}

pub fn bank_outcome(routing: &str, account: &str) -> BankScript {
    if routing != TEST_ROUTING {
        return BankScript::Settles;
    }
    match account {
        "000111111116" => BankScript::Returns(DeclineCode::AchR03),
        "000111111113" => BankScript::Returns(DeclineCode::AchR02),
        "000222222227" => BankScript::Returns(DeclineCode::AchR01),
        "000333333335" => BankScript::Returns(DeclineCode::AchR10),
        "000444444440" => BankScript::RefusedNow(DeclineCode::CurrencyNotSupported),
        _ => BankScript::Settles,
    }
}

fn outcome_of(row: &SandboxTxRow) -> Lookup {
    let declined = row
        .decline_code
        .as_deref()
        .and_then(DeclineCode::parse)
        .unwrap_or(DeclineCode::ProcessingError);
    match (row.kind.as_str(), row.outcome.as_str()) {
        ("refund", "succeeded") => Lookup::Refund(RefundOutcome::Refunded {
            reference: row.reference.clone(),
        }),
        ("refund", _) => Lookup::Refund(RefundOutcome::Declined { code: declined }),
        ("sale", "succeeded") => Lookup::Charge(ChargeOutcome::Approved {
            reference: row.reference.clone(),
        }),
        ("debit", "succeeded") => Lookup::Charge(ChargeOutcome::Accepted {
            reference: row.reference.clone(),
        }),
        _ => Lookup::Charge(ChargeOutcome::Declined {
            code: declined,
            reference: Some(row.reference.clone()),
        }),
    }
}

#[async_trait]
impl Processor for SandboxProcessor {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, ProcessorError> {
        let fault = self.before_call().await?;
        let row = self.sale_row(req, self.clock.now_micros());
        let stored = self.record(row).await?;
        if fault == Some(Fault::TimeoutAfterCharge) {
            return Err(ProcessorError::Timeout);
        }
        match outcome_of(&stored) {
            Lookup::Charge(outcome) => Ok(outcome),
            _ => Err(ProcessorError::Rejected(
                "this key was already used for a refund".into(),
            )),
        }
    }

    /// One stored write for the whole batch, as a processor's batch API would take one request.
    /// With faults queued (tests), every request is a call of its own so each takes its fault.
    async fn charge_many(
        &self,
        reqs: &[ChargeRequest],
        timeout: Duration,
    ) -> Vec<Result<ChargeOutcome, ProcessorError>> {
        let faults_queued = self.faults.lock().map(|q| !q.is_empty()).unwrap_or(true);
        if faults_queued || reqs.is_empty() {
            return charge_each(self, reqs, timeout).await;
        }
        let now = self.clock.now_micros();
        let rows: Vec<SandboxTxRow> = reqs.iter().map(|r| self.sale_row(r, now)).collect();
        let store = self.store.clone();
        let work = async move {
            self.delay().await;
            store
                .write(move |c| {
                    Box::pin(async move {
                        let recorded = batch::sandbox_insert_many(c, &rows).await?;
                        let earlier: Vec<String> = rows
                            .iter()
                            .filter(|r| !recorded.contains(&r.processor_key))
                            .map(|r| r.processor_key.clone())
                            .collect();
                        let mut stored: HashMap<String, SandboxTxRow> = rows
                            .into_iter()
                            .filter(|r| recorded.contains(&r.processor_key))
                            .map(|r| (r.processor_key.clone(), r))
                            .collect();
                        if !earlier.is_empty() {
                            for r in batch::sandbox_by_keys(c, &earlier).await? {
                                stored.insert(r.processor_key.clone(), r);
                            }
                        }
                        Ok::<_, StoreError>(stored)
                    })
                })
                .await
        };
        match tokio::time::timeout(timeout, work).await {
            Err(_) => reqs.iter().map(|_| Err(ProcessorError::Timeout)).collect(),
            Ok(Err(e)) => reqs
                .iter()
                .map(|_| Err(ProcessorError::Unavailable(format!("sandbox storage: {e}"))))
                .collect(),
            Ok(Ok(stored)) => reqs
                .iter()
                .map(|r| match stored.get(&r.key).map(outcome_of) {
                    Some(Lookup::Charge(outcome)) => Ok(outcome),
                    Some(_) => Err(ProcessorError::Rejected(
                        "this key was already used for a refund".into(),
                    )),
                    None => Err(ProcessorError::Unavailable(
                        "sandbox storage lost a transaction".into(),
                    )),
                })
                .collect(),
        }
    }

    async fn refund(
        &self,
        key: &str,
        charge_reference: &str,
        amount: Money,
    ) -> Result<RefundOutcome, ProcessorError> {
        let fault = self.before_call().await?;
        if let Some(existing) = self.find(key).await? {
            return match outcome_of(&existing) {
                Lookup::Refund(r) => Ok(r),
                _ => Err(ProcessorError::Rejected(
                    "this key was used for a charge".into(),
                )),
            };
        }
        let mut c = self
            .store
            .reader()
            .acquire()
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        let charge = queries::sandbox_by_reference(&mut c, charge_reference)
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?
            .ok_or_else(|| ProcessorError::Rejected("no such charge".into()))?;
        let already = queries::sandbox_refunded_total(&mut c, charge_reference)
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        drop(c);
        let refundable = charge.outcome == "succeeded"
            && charge.currency == amount.currency().code()
            && already.saturating_add(amount.minor_units()) <= charge.amount;
        let row = SandboxTxRow {
            processor_key: key.to_string(),
            kind: "refund".into(),
            reference: self.reference("re"),
            parent_reference: Some(charge_reference.to_string()),
            amount: amount.minor_units(),
            currency: amount.currency().code().to_string(),
            outcome: if refundable { "succeeded" } else { "declined" }.into(),
            decline_code: (!refundable)
                .then(|| DeclineCode::TransactionNotAllowed.as_str().to_string()),
            settle_at: None,
            return_code: None,
            created_at: self.clock.now_micros(),
        };
        let stored = self.record(row).await?;
        if fault == Some(Fault::TimeoutAfterCharge) {
            return Err(ProcessorError::Timeout);
        }
        match outcome_of(&stored) {
            Lookup::Refund(r) => Ok(r),
            _ => Err(ProcessorError::Rejected(
                "this key was used for a charge".into(),
            )),
        }
    }

    async fn void(
        &self,
        key: &str,
        charge_reference: &str,
    ) -> Result<RefundOutcome, ProcessorError> {
        let mut c = self
            .store
            .reader()
            .acquire()
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        let charge = queries::sandbox_by_reference(&mut c, charge_reference)
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?
            .ok_or_else(|| ProcessorError::Rejected("no such charge".into()))?;
        drop(c);
        let currency = billpay_domain::Currency::parse(&charge.currency)
            .map_err(|e| ProcessorError::Rejected(e.to_string()))?;
        self.refund(key, charge_reference, Money::new(charge.amount, currency))
            .await
    }

    async fn lookup(&self, key: &str) -> Result<Lookup, ProcessorError> {
        Ok(match self.find(key).await? {
            Some(row) => outcome_of(&row),
            None => Lookup::NotFound,
        })
    }

    async fn transactions(
        &self,
        from_micros: i64,
        to_micros: i64,
    ) -> Result<Option<Vec<ProcessorTx>>, ProcessorError> {
        let mut c = self
            .store
            .reader()
            .acquire()
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        let rows = queries::sandbox_charges_between(&mut c, from_micros, to_micros)
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        Ok(Some(
            rows.into_iter()
                .map(|r| ProcessorTx {
                    key: Some(r.processor_key),
                    reference: r.reference,
                    amount: r.amount,
                    currency: r.currency,
                    status: if r.outcome == "succeeded" {
                        "succeeded".into()
                    } else {
                        "failed".into()
                    },
                })
                .collect(),
        ))
    }

    async fn settlement(&self, reference: &str) -> Result<Settlement, ProcessorError> {
        let mut c = self
            .store
            .reader()
            .acquire()
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        let row = queries::sandbox_by_reference(&mut c, reference)
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?
            .ok_or_else(|| ProcessorError::Rejected("no such debit".into()))?;
        let due = row.settle_at.unwrap_or(i64::MAX);
        if self.clock.now_micros() < due {
            return Ok(Settlement::Pending);
        }
        Ok(
            match row.return_code.as_deref().and_then(DeclineCode::parse) {
                Some(code) => Settlement::Returned(code),
                None => Settlement::Settled,
            },
        )
    }
}
