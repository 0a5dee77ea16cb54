//! Taking a payment, and refunding one.
//!
//! A payment is three steps, after brandur's "idempotency keys" design:
//! 1. One transaction claims the idempotency key, locks the account, applies the duplicate
//!    guard, and records the payment as `processing` (the recovery point). A business error here
//!    rolls the whole step back, so the key is free to be used again.
//! 2. The processor is called with a key derived from the payment id, under a deadline.
//! 3. One transaction records the outcome, posts the ledger entry, queues the receipt, and
//!    stores the response on the idempotency key. Only then is the caller answered.
//!
//! If step 2 times out the payment stays `processing` with no processor reference: it is in
//! doubt, the key stays open, and the reconciler later asks the processor by key. It never
//! charges again.

use std::time::Duration;

use billpay_domain::{
    AccountNumber, BankAccountNumber, BankAccountType, CardExpiry, CardNumber, Channel,
    ConfirmationNumber, Cvc, DeclineCode, EntryKind, JournalEntry, Language, MethodKind, Money,
    PaymentStatus, PostalCode, Posting, RoutingNumber, receivable_account, transition,
};
use billpay_store::rows::{IdempotencyRow, JournalRow, OutboxRow, PaymentRow, RefundRow};
use billpay_store::{AnyConnection, StoreError, queries};
use sha2::{Digest, Sha256};

use crate::processor::{ChargeMethod, ChargeOutcome, ChargeRequest, ProcessorError, RefundOutcome};
use crate::receipts::Receipt;
use crate::{Billpay, MethodSummary, Payment, Refund, ServiceError, StoredResponse};

/// Largest single payment accepted, in minor units ($1,000,000.00).
pub const PAYMENT_AMOUNT_MAX_MINOR: i64 = 100_000_000;
/// How often a request polls for another request with the same key.
const IDEMPOTENCY_POLL: Duration = Duration::from_millis(20);

/// A new card or bank account, with the secrets for this one payment.
#[derive(Clone, Debug)]
pub enum NewMethod {
    Card {
        number: CardNumber,
        expiry: CardExpiry,
        cvc: Cvc,
        postal_code: Option<PostalCode>,
    },
    Ach {
        routing: RoutingNumber,
        account: BankAccountNumber,
        account_type: BankAccountType,
        holder_name: String,
    },
    /// A method saved in the vault (`pm_…`); it must belong to the paying account.
    Saved { token: String },
}

#[derive(Clone, Debug)]
pub struct PaymentRequest {
    pub account_number: AccountNumber,
    pub amount: Money,
    pub channel: Channel,
    pub method: NewMethod,
    pub confirm_duplicate: bool,
    /// A bank debit authorized orally by phone (NACHA TEL): stored in the same transaction as
    /// the payment, so a debit never exists without its authorization.
    pub tel_authorization: Option<TelAuthorization>,
    /// Refuse the payment if it is more than the account owes (balance less payments still in
    /// flight), checked under the account lock: automatic payments never overpay, even when a
    /// manual payment races them.
    pub limit_to_balance: bool,
    /// Where a payment the customer (or an agent for them) is making now came from: it passes
    /// the risk rules ([`crate::risk`]). None for payments set up earlier (AutoPay, scheduled).
    pub risk: Option<crate::risk::RiskSource>,
}

/// What the caller heard and agreed to, and on which call.
#[derive(Clone, Debug)]
pub struct TelAuthorization {
    pub call_sid: String,
    pub text: String,
    /// When the caller consented (microseconds); None: now, on this call.
    pub authorized_at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct RefundRequest {
    pub payment_id: String,
    /// None refunds everything that remains.
    pub amount: Option<Money>,
}

/// Who is asking, and their key for this request.
#[derive(Clone, Debug)]
pub struct Idempotency {
    /// The caller the key belongs to (an API key id, a call, a portal session).
    pub scope: String,
    pub key: String,
}

/// Longest idempotency key accepted.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 255;

impl Idempotency {
    pub fn new(scope: impl Into<String>, key: impl Into<String>) -> Result<Self, ServiceError> {
        let key = key.into();
        if key.trim().is_empty() || key.len() > IDEMPOTENCY_KEY_LEN_MAX {
            return Err(ServiceError::invalid(
                "Idempotency-Key",
                "the Idempotency-Key header must be 1 to 255 characters",
            ));
        }
        Ok(Idempotency {
            scope: scope.into(),
            key,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentResult {
    /// Card payments: succeeded. Bank debits: accepted and processing until they settle.
    Completed(Payment),
    Declined(Payment, DeclineCode),
    /// The processor's answer was lost; the payment will be resolved by asking for it.
    InDoubt(Payment),
}

impl PaymentResult {
    pub fn payment(&self) -> &Payment {
        match self {
            PaymentResult::Completed(p)
            | PaymentResult::Declined(p, _)
            | PaymentResult::InDoubt(p) => p,
        }
    }

    /// The result a payment in its current state stands for.
    pub fn of(payment: Payment) -> PaymentResult {
        match (payment.status, payment.decline) {
            (PaymentStatus::Failed, code) => {
                PaymentResult::Declined(payment, code.unwrap_or(DeclineCode::ProcessingError))
            }
            (PaymentStatus::Processing, _) if payment.processor_ref.is_none() => {
                PaymentResult::InDoubt(payment)
            }
            _ => PaymentResult::Completed(payment),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundResult {
    Completed(Refund, Payment),
    Declined(Refund, Payment, DeclineCode),
    InDoubt(Refund, Payment),
}

/// A payment just taken, or the stored answer to an earlier request with the same key (and
/// the payment it is about).
enum Taken {
    Fresh(Box<PaymentResult>),
    Replay(StoredResponse, Option<String>),
}

enum Claim {
    /// The key was used before.
    Existing(IdempotencyRow),
    /// Go on to the processor; true when the risk rules sent the payment to review.
    Proceed(Box<Payment>, bool),
    /// The risk rules refused the attempt (recorded; the key is free again).
    Blocked,
}

enum RefundClaim {
    Existing(IdempotencyRow),
    Proceed(Box<(Refund, Payment, String)>),
}

fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    hex::encode(h.finalize())
}

/// The request's parameters as far as idempotency compares them. It holds no secret: card and
/// bank numbers enter only as brand and last four.
pub(crate) fn payment_fingerprint(req: &PaymentRequest) -> String {
    let amount = req.amount.minor_units().to_string();
    let dup = if req.confirm_duplicate { "1" } else { "0" };
    match &req.method {
        NewMethod::Card {
            number,
            expiry,
            postal_code,
            ..
        } => fingerprint(&[
            "payment",
            req.account_number.as_str(),
            &amount,
            req.amount.currency().code(),
            req.channel.as_str(),
            "card",
            number.brand().as_str(),
            &number.last4(),
            &expiry.format(),
            postal_code.as_ref().map(|p| p.as_str()).unwrap_or(""),
            dup,
        ]),
        NewMethod::Ach {
            routing,
            account,
            account_type,
            holder_name,
        } => fingerprint(&[
            "payment",
            req.account_number.as_str(),
            &amount,
            req.amount.currency().code(),
            req.channel.as_str(),
            "ach",
            routing.as_str(),
            &account.last4(),
            account_type.as_str(),
            holder_name,
            dup,
        ]),
        NewMethod::Saved { token } => fingerprint(&[
            "payment",
            req.account_number.as_str(),
            &amount,
            req.amount.currency().code(),
            req.channel.as_str(),
            "token",
            token,
            dup,
        ]),
    }
}

fn minutes_ago(now: jiff::Timestamp, then: jiff::Timestamp) -> String {
    let mins = now.duration_since(then).as_secs().max(0) / 60;
    match mins {
        0 => "less than a minute ago".to_string(),
        1 => "1 minute ago".to_string(),
        n => format!("{n} minutes ago"),
    }
}

/// What [`Billpay::plan_outcome`] decided for one payment, to be written in one transaction.
pub(crate) struct OutcomePlan {
    pub payment_id: String,
    pub account_id: String,
    pub from: PaymentStatus,
    pub status: PaymentStatus,
    pub reference: Option<String>,
    pub decline: Option<DeclineCode>,
    pub journal: Option<(JournalRow, Vec<(String, i64)>)>,
    pub receipt: Option<Receipt>,
    pub restore: Option<billpay_store::jobs::JobRow>,
    pub result: PaymentResult,
    pub response: StoredResponse,
}

/// Counts a payment the processor answered in `billpay_payments_total`.
pub(crate) fn count_payment(result: &PaymentResult) {
    let p = result.payment();
    let outcome = match result {
        PaymentResult::Completed(_) => "succeeded",
        PaymentResult::Declined(..) => "declined",
        PaymentResult::InDoubt(_) => "in_doubt",
    };
    metrics::counter!("billpay_payments_total",
        "channel" => p.channel.as_str(), "method" => p.method.kind.as_str(), "outcome" => outcome)
    .increment(1);
}

pub(crate) fn journal_row(
    b: &Billpay,
    kind: EntryKind,
    source_type: &str,
    source_id: &str,
    account_id: &str,
    currency: &str,
    now: i64,
) -> JournalRow {
    JournalRow {
        id: b.new_id("je"),
        kind: kind.as_str().into(),
        source_type: source_type.into(),
        source_id: source_id.into(),
        account_id: account_id.into(),
        currency: currency.into(),
        created_at: now,
    }
}

pub(crate) fn postings_of(entry: &JournalEntry) -> Vec<(String, i64)> {
    entry
        .postings()
        .iter()
        .map(|p| (p.ledger_account.clone(), p.amount.minor_units()))
        .collect()
}

pub(crate) fn ledger_error(e: billpay_domain::LedgerError) -> ServiceError {
    ServiceError::Store(StoreError::Internal(format!("ledger rule: {e}")))
}

/// Completes every open idempotency key that waits on this resource.
async fn complete_keys(
    c: &mut AnyConnection,
    resource_id: &str,
    response: &StoredResponse,
    now: i64,
) -> Result<(), StoreError> {
    queries::idempotency_complete_for_resource(
        c,
        resource_id,
        i64::from(response.status),
        &response.body,
        now,
    )
    .await?;
    Ok(())
}

impl Billpay {
    /// Whether a card has expired. Lenient by a day: a card is good through the last day of its
    /// month wherever the customer is.
    pub fn card_expired(&self, expiry: &billpay_domain::CardExpiry) -> bool {
        let today = self.clock.now().to_zoned(jiff::tz::TimeZone::UTC).date();
        expiry.is_expired(today.yesterday().unwrap_or(today))
    }

    /// The convenience fee for a payment on this channel (zero unless configured).
    pub fn convenience_fee(&self, amount: Money, channel: Channel) -> Money {
        if channel == Channel::Autopay || self.config().convenience_fee_minor <= 0 {
            return Money::zero(amount.currency());
        }
        Money::new(self.config().convenience_fee_minor, amount.currency())
    }

    /// Takes a payment. Returns the response to send, which is also what a retry with the same
    /// key will get. Errors are for requests that were not executed (nothing stored).
    #[tracing::instrument(skip_all, fields(channel = req.channel.as_str()))]
    pub async fn create_payment(
        &self,
        idem: Idempotency,
        req: PaymentRequest,
    ) -> Result<StoredResponse, ServiceError> {
        match self.take_payment(idem, req).await? {
            Taken::Fresh(result) => Ok(self.render.payment(&result)),
            Taken::Replay(stored, _) => Ok(stored),
        }
    }

    /// Takes a payment and returns its result as a value, for channels that speak rather than
    /// render JSON (the phone line). A retry with the same key returns the first payment's
    /// result as it stands now, and never pays twice.
    #[tracing::instrument(skip_all, fields(channel = req.channel.as_str()))]
    pub async fn create_payment_result(
        &self,
        idem: Idempotency,
        req: PaymentRequest,
    ) -> Result<PaymentResult, ServiceError> {
        match self.take_payment(idem, req).await? {
            Taken::Fresh(result) => Ok(*result),
            Taken::Replay(_, Some(payment_id)) => {
                Ok(PaymentResult::of(self.payment(&payment_id).await?))
            }
            Taken::Replay(_, None) => Err(ServiceError::IdempotencyInProgress),
        }
    }

    async fn take_payment(
        &self,
        idem: Idempotency,
        req: PaymentRequest,
    ) -> Result<Taken, ServiceError> {
        if !req.amount.is_positive() {
            return Err(ServiceError::invalid(
                "amount",
                "the amount must be greater than zero",
            ));
        }
        if req.amount.minor_units() > PAYMENT_AMOUNT_MAX_MINOR {
            return Err(ServiceError::invalid(
                "amount",
                format!(
                    "the amount is more than the {} limit for one payment",
                    Money::new(PAYMENT_AMOUNT_MAX_MINOR, req.amount.currency())
                ),
            ));
        }
        let hash = payment_fingerprint(&req);
        let account_number = req.account_number.clone();
        let (method, summary, saved_id) = self.resolve_method(&account_number, req.method).await?;
        if matches!(method, ChargeMethod::Bank { .. }) && !self.processor.accepts_bank_debits() {
            return Err(ServiceError::invalid(
                "payment_method",
                "Payments from a bank account are not accepted here. Please pay by card.",
            ));
        }
        let now = self.clock.now();
        let now_us = now.as_microsecond();
        let payment_id = self.new_id("pay");
        let candidates: Vec<String> = (0..8)
            .map(|_| {
                ConfirmationNumber::from_random(self.random.next_u64())
                    .as_str()
                    .to_string()
            })
            .collect();
        let fee = self.convenience_fee(req.amount, req.channel);
        let charge_amount = req
            .amount
            .checked_add(fee)
            .map_err(|e| ServiceError::invalid("amount", e.to_string()))?;
        let row = self.new_payment_row(
            payment_id.clone(),
            req.amount,
            fee,
            req.channel,
            &method,
            &summary,
            saved_id.clone(),
            now_us,
        );
        let key_row = IdempotencyRow {
            scope: idem.scope.clone(),
            idem_key: idem.key.clone(),
            endpoint: "payments.create".into(),
            request_hash: hash.clone(),
            state: "started".into(),
            resource_id: Some(payment_id.clone()),
            response_status: None,
            response_body: None,
            created_at: now_us,
            completed_at: None,
        };
        let account_number = account_number.as_str().to_string();
        let currency = req.amount.currency();
        let amount = req.amount;
        let confirm_duplicate = req.confirm_duplicate;
        let limit_to_balance = req.limit_to_balance;
        let tel_authorization = req.tel_authorization.clone();
        let authorization_text = req.tel_authorization.as_ref().map(|t| t.text.clone());
        let audit_id = self.new_id("aud");
        let actor = crate::vault::Actor {
            id: idem.scope.clone(),
            channel: req.channel,
        };
        let window_start = now
            .checked_sub(self.config().duplicate_window)
            .unwrap_or(now)
            .as_microsecond();
        let probe = self.risk_probe(
            req.channel,
            req.risk.as_ref(),
            &method,
            saved_id.as_deref(),
            amount,
            now_us,
        );
        let rules = self.config().risk.clone();

        let claim = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    // Claim first: a key seen before is read only when the claim loses.
                    if !queries::idempotency_claim(c, &key_row).await? {
                        let existing =
                            queries::idempotency_get(c, &key_row.scope, &key_row.idem_key)
                                .await?
                                .ok_or(StoreError::NotFound)?;
                        return Ok(Claim::Existing(existing));
                    }
                    let account = queries::account_by_number(c, &account_number)
                        .await?
                        .ok_or(ServiceError::NotFound { what: "account" })?;
                    if account.currency != currency.code() {
                        return Err(ServiceError::invalid(
                            "currency",
                            format!(
                                "this account is billed in {}, not {}",
                                account.currency,
                                currency.code()
                            ),
                        ));
                    }
                    queries::lock_account(c, &account.id, now_us).await?;
                    if limit_to_balance {
                        let owed = billpay_store::jobs::payable_balance(
                            c,
                            &account.id,
                            &format!("ar:{}", account.account_number),
                        )
                        .await?;
                        if amount.minor_units() > owed {
                            return Err(ServiceError::Conflict {
                                code: "amount_over_balance",
                                message: format!(
                                    "the account owes {} now, less than this automatic payment of {}",
                                    Money::new(owed.max(0), currency),
                                    amount
                                ),
                            });
                        }
                    }
                    // A refused source hears the refusal first, never a question.
                    let mut review = false;
                    if let Some(probe) = &probe {
                        let decision = crate::risk::assess_in(
                            c,
                            &rules,
                            probe,
                            &account.id,
                            &account.account_number,
                            &row.id,
                        )
                        .await?;
                        match decision.action {
                            billpay_domain::risk::RiskAction::Block => {
                                queries::idempotency_release_resource(c, &row.id).await?;
                                return Ok(Claim::Blocked);
                            }
                            billpay_domain::risk::RiskAction::Review => review = true,
                            billpay_domain::risk::RiskAction::Allow => {}
                        }
                    }
                    if !confirm_duplicate
                        && let Some(prev) = queries::recent_same_amount_payment(
                            c,
                            &account.id,
                            amount.minor_units(),
                            currency.code(),
                            window_start,
                        )
                        .await?
                        {
                            let prev = Payment::from_view(&prev)?;
                            return Err(ServiceError::Duplicate {
                                message: format!(
                                    "A {} payment was made {} {}. To make another payment of the same amount, confirm that it is not a duplicate.",
                                    prev.amount,
                                    prev.channel.describe(Language::En),
                                    minutes_ago(now, prev.created_at)
                                ),
                                previous_payment_id: prev.id,
                            });
                        }
                    let mut confirmation = None;
                    for candidate in candidates {
                        if !queries::confirmation_exists(c, &candidate).await? {
                            confirmation = Some(candidate);
                            break;
                        }
                    }
                    let mut row = row;
                    row.account_id = account.id.clone();
                    row.confirmation_number = confirmation.ok_or_else(|| {
                        StoreError::Internal("no free confirmation number".into())
                    })?;
                    queries::insert_payment(c, &row).await?;
                    if let Some(auth) = tel_authorization
                        && row.method_type == MethodKind::Ach.as_str()
                    {
                        queries::insert_tel_authorization(
                            c,
                            &billpay_store::rows::TelAuthorizationRow {
                                payment_id: row.id.clone(),
                                call_sid: auth.call_sid,
                                text: auth.text,
                                authorized_at: auth.authorized_at.unwrap_or(now_us),
                            },
                        )
                        .await?;
                    }
                    if let Some(pm) = &row.payment_method_id {
                        crate::vault::audit(
                            c,
                            audit_id,
                            now_us,
                            &actor,
                            "vault.use",
                            pm,
                            &account.id,
                            serde_json::json!({"payment_id": row.id}),
                        )
                        .await?;
                    }
                    let view = billpay_store::rows::PaymentView {
                        payment: row,
                        account_number: account.account_number,
                        account_timezone: account.timezone,
                    };
                    Ok(Claim::Proceed(Box::new(Payment::from_view(&view)?), review))
                })
            })
            .await?;

        let (payment, review) = match claim {
            Claim::Existing(row) => {
                let resource = row.resource_id.clone();
                return Ok(Taken::Replay(self.replay(row, &hash).await?, resource));
            }
            Claim::Proceed(p, review) => (*p, review),
            Claim::Blocked => {
                tracing::info!(
                    channel = req.channel.as_str(),
                    "payment refused by the risk rules"
                );
                return Err(crate::risk::refused());
            }
        };

        let charge = self.charge_request(
            &payment,
            charge_amount,
            method,
            saved_id,
            authorization_text,
        );
        let answer = tokio::time::timeout(
            self.config().processor_timeout,
            self.processor.charge(&charge),
        )
        .await
        .unwrap_or(Err(ProcessorError::Timeout));
        drop(charge);
        let result = match answer {
            Ok(outcome) => self.record_outcome_of(payment, outcome, review).await?,
            Err(ProcessorError::Timeout) => {
                tracing::warn!(payment_id = %payment.id, "processor timed out; payment is in doubt");
                metrics::counter!("billpay_payments_in_doubt_total").increment(1);
                PaymentResult::InDoubt(payment)
            }
            Err(e @ (ProcessorError::Unavailable(_) | ProcessorError::Rejected(_))) => {
                tracing::error!(payment_id = %payment.id, error = %e, "processor refused the call");
                self.cancel_unsent(payment).await?;
                return Err(ServiceError::ProcessorUnavailable);
            }
        };
        count_payment(&result);
        Ok(Taken::Fresh(Box::new(result)))
    }

    /// A new payment's row, `processing` until the processor answers; the account and the
    /// confirmation number are filled in when it is claimed.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new_payment_row(
        &self,
        payment_id: String,
        amount: Money,
        fee: Money,
        channel: Channel,
        method: &ChargeMethod,
        summary: &MethodSummary,
        saved_id: Option<String>,
        now_us: i64,
    ) -> PaymentRow {
        let (routing, holder) = match method {
            ChargeMethod::Bank {
                routing,
                holder_name,
                ..
            } => (
                Some(routing.as_str().to_string()),
                Some(holder_name.clone()),
            ),
            ChargeMethod::Card { .. } => (None, None),
        };
        PaymentRow {
            processor_key: format!("billpay-{payment_id}"),
            id: payment_id,
            account_id: String::new(),
            confirmation_number: String::new(),
            amount: amount.minor_units(),
            currency: amount.currency().code().to_string(),
            fee_amount: fee.minor_units(),
            refunded_amount: 0,
            status: PaymentStatus::Processing.as_str().into(),
            channel: channel.as_str().into(),
            method_type: summary.kind.as_str().into(),
            brand: summary.brand.map(|b| b.as_str().to_string()),
            last4: summary.last4.clone(),
            exp_month: summary.exp_month.map(i64::from),
            exp_year: summary.exp_year.map(i64::from),
            bank_account_type: summary.bank_account_type.map(|t| t.as_str().to_string()),
            routing_number: routing,
            holder_name: holder,
            processor: self.processor.name().into(),
            processor_ref: None,
            decline_code: None,
            journal_id: None,
            created_at: now_us,
            updated_at: now_us,
            payment_method_id: saved_id,
        }
    }

    /// What the processor is asked to do for a claimed payment.
    pub(crate) fn charge_request(
        &self,
        payment: &Payment,
        amount: Money,
        method: ChargeMethod,
        saved_id: Option<String>,
        authorization: Option<String>,
    ) -> ChargeRequest {
        ChargeRequest {
            key: payment.processor_key.clone(),
            amount,
            method,
            description: format!(
                "{} bill payment {}",
                self.config().biller.name,
                payment.confirmation_number
            ),
            context: crate::processor::ChargeContext {
                payment_id: payment.id.clone(),
                account_id: payment.account_id.clone(),
                account_number: payment.account_number.as_str().to_string(),
                channel: Some(payment.channel),
                payment_method_id: saved_id,
                authorization,
            },
        }
    }

    /// Turns the request's method into what the processor needs and what may be shown.
    async fn resolve_method(
        &self,
        account: &AccountNumber,
        method: NewMethod,
    ) -> Result<(ChargeMethod, MethodSummary, Option<String>), ServiceError> {
        match method {
            NewMethod::Card {
                number,
                expiry,
                cvc,
                postal_code,
            } => {
                if self.card_expired(&expiry) {
                    return Err(ServiceError::invalid(
                        "payment_method[exp_month]",
                        "That card has expired. Please use a card with a later expiration date.",
                    ));
                }
                let summary = MethodSummary {
                    kind: MethodKind::Card,
                    brand: Some(number.brand()),
                    last4: number.last4(),
                    exp_month: Some(expiry.month()),
                    exp_year: Some(expiry.year()),
                    bank_account_type: None,
                };
                Ok((
                    ChargeMethod::Card {
                        number,
                        expiry,
                        cvc: Some(cvc),
                        postal_code,
                    },
                    summary,
                    None,
                ))
            }
            NewMethod::Ach {
                routing,
                account,
                account_type,
                holder_name,
            } => {
                let summary = MethodSummary {
                    kind: MethodKind::Ach,
                    brand: None,
                    last4: account.last4(),
                    exp_month: None,
                    exp_year: None,
                    bank_account_type: Some(account_type),
                };
                Ok((
                    ChargeMethod::Bank {
                        routing,
                        account,
                        account_type,
                        holder_name,
                    },
                    summary,
                    None,
                ))
            }
            NewMethod::Saved { token } => {
                let (saved, charge) =
                    self.open_saved(account, &token)
                        .await
                        .map_err(|e| match e {
                            ServiceError::NotFound { .. } => ServiceError::invalid(
                                "payment_method[token]",
                                "No such saved payment method on this account.",
                            ),
                            other => other,
                        })?;
                Ok((charge, saved.summary, Some(saved.id)))
            }
        }
    }

    /// A key that was used before: replay its response, or wait for it, or resolve it.
    async fn replay(
        &self,
        mut row: IdempotencyRow,
        hash: &str,
    ) -> Result<StoredResponse, ServiceError> {
        let deadline = tokio::time::Instant::now() + self.config().idempotency_wait;
        loop {
            if row.request_hash != hash {
                return Err(ServiceError::IdempotencyMismatch);
            }
            if let (Some(status), Some(body)) = (row.response_status, row.response_body.clone()) {
                metrics::counter!("billpay_idempotent_replays_total").increment(1);
                return Ok(StoredResponse {
                    status: u16::try_from(status).unwrap_or(500),
                    body,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(IDEMPOTENCY_POLL).await;
            let mut c = self.store.read_conn().await?;
            row = queries::idempotency_get(&mut c, &row.scope, &row.idem_key)
                .await?
                .ok_or(ServiceError::IdempotencyInProgress)?;
        }
        // Still open: if its payment is in doubt and old enough that no call can still be in
        // flight, resolve it now by asking the processor.
        if let Some(resource) = row.resource_id.clone() {
            let cutoff = self
                .clock
                .now()
                .checked_sub(self.config().in_doubt_after)
                .map(|t| t.as_microsecond())
                .unwrap_or(i64::MIN);
            if resource.starts_with("pay_") {
                let mut c = self.store.read_conn().await?;
                if let Some(v) = queries::payment_by_id(&mut c, &resource).await? {
                    drop(c);
                    let p = Payment::from_view(&v)?;
                    if p.status == PaymentStatus::Processing
                        && p.processor_ref.is_none()
                        && p.created_at.as_microsecond() < cutoff
                    {
                        let result = self.resolve_in_doubt(p).await?;
                        return Ok(self.render.payment(&result));
                    }
                }
            }
        }
        Err(ServiceError::IdempotencyInProgress)
    }

    /// The processor certainly did nothing: the attempt is canceled and the key released, so
    /// the same request can be retried with the same key.
    pub(crate) async fn cancel_unsent(&self, payment: Payment) -> Result<(), ServiceError> {
        transition(
            PaymentStatus::Processing,
            PaymentStatus::Canceled,
            payment.method.kind,
        )
        .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
        let now = self.clock.now_micros();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    queries::update_payment_state(
                        c,
                        &payment.id,
                        "processing",
                        "canceled",
                        None,
                        None,
                        None,
                        now,
                    )
                    .await?;
                    queries::idempotency_release_resource(c, &payment.id).await?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await
    }

    /// What recording the processor's answer for `payment` writes: the move of its state, and,
    /// when the money moves, the journal entry, receipt and a restoration of service.
    pub(crate) fn plan_outcome(
        &self,
        payment: &Payment,
        outcome: ChargeOutcome,
        now: i64,
    ) -> Result<OutcomePlan, ServiceError> {
        let kind = payment.method.kind;
        let (status, reference, decline, posts) = match outcome {
            ChargeOutcome::Approved { reference } => {
                (PaymentStatus::Succeeded, Some(reference), None, true)
            }
            ChargeOutcome::Accepted { reference } => {
                (PaymentStatus::Processing, Some(reference), None, true)
            }
            ChargeOutcome::Declined { code, reference } => {
                (PaymentStatus::Failed, reference, Some(code), false)
            }
        };
        if status != PaymentStatus::Processing {
            transition(payment.status, status, kind)
                .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
        }
        let mut updated = payment.clone();
        updated.status = status;
        updated.processor_ref = reference.clone();
        updated.decline = decline;
        updated.updated_at = crate::clock::from_micros(now);
        let result = match decline {
            Some(code) => PaymentResult::Declined(updated.clone(), code),
            None => PaymentResult::Completed(updated.clone()),
        };
        let response = self.render.payment(&result);
        let journal = if posts {
            let entry = payment_entry(&payment.account_number, payment.amount, payment.fee, kind)
                .map_err(ledger_error)?;
            Some((
                journal_row(
                    self,
                    EntryKind::Payment,
                    "payment",
                    &payment.id,
                    &payment.account_id,
                    payment.amount.currency().code(),
                    now,
                ),
                postings_of(&entry),
            ))
        } else {
            None
        };
        Ok(OutcomePlan {
            payment_id: payment.id.clone(),
            account_id: payment.account_id.clone(),
            from: payment.status,
            status,
            reference,
            decline,
            receipt: posts.then(|| Receipt::for_payment(&updated, &self.config().biller)),
            // A payment on a suspended account queues its restoration with it.
            restore: posts.then(|| {
                crate::collections::restore_job(self, &payment.account_id, &payment.id, now)
            }),
            journal,
            result,
            response,
        })
    }

    /// Records what the processor did with a payment: state, ledger, receipt, stored response,
    /// and the review of a payment the risk rules sent to review.
    pub(crate) async fn record_outcome(
        &self,
        payment: Payment,
        outcome: ChargeOutcome,
    ) -> Result<PaymentResult, ServiceError> {
        // Whether the rules sent it to review is in `risk_decisions`: look (a payment resolved
        // later, by the reconciler or a webhook, has no one to tell us).
        self.record_outcome_of(payment, outcome, true).await
    }

    /// [`Billpay::record_outcome`], told whether the payment may be held for review: false
    /// (the rules allowed it, as for most payments) skips looking for its review decision.
    pub(crate) async fn record_outcome_of(
        &self,
        payment: Payment,
        outcome: ChargeOutcome,
        may_be_reviewed: bool,
    ) -> Result<PaymentResult, ServiceError> {
        let now = self.clock.now_micros();
        let OutcomePlan {
            payment_id,
            account_id,
            from,
            status,
            reference,
            decline,
            journal,
            receipt,
            restore,
            result,
            response,
        } = self.plan_outcome(&payment, outcome, now)?;
        let outbox_id = self.new_id("msg");
        let from = from.as_str();
        let wrote = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let moved = queries::update_payment_state(
                        c,
                        &payment_id,
                        from,
                        status.as_str(),
                        reference.as_deref(),
                        decline.map(|d| d.as_str()),
                        journal.as_ref().map(|(j, _)| j.id.as_str()),
                        now,
                    )
                    .await?;
                    if !moved {
                        return Ok(false);
                    }
                    crate::risk::record_answer(c, &payment_id, decline.is_some()).await?;
                    if let Some((j, postings)) = &journal {
                        queries::insert_journal(c, j, postings).await?;
                        // The money moved: a payment sent to review is now held for a person.
                        if may_be_reviewed
                            && billpay_store::risk::open_review(c, &payment_id, now).await?
                        {
                            tracing::info!(payment_id = %payment_id, "payment held for review");
                        }
                    }
                    if let Some(r) = &restore
                        && queries::account_by_id(c, &account_id)
                            .await?
                            .is_some_and(|a| a.service_status == "suspended")
                    {
                        billpay_store::jobs::enqueue(c, r).await?;
                    }
                    if let Some(receipt) = receipt
                        && let Some(email) = queries::account_by_id(c, &account_id)
                            .await?
                            .and_then(|a| a.email)
                    {
                        queries::insert_outbox(
                            c,
                            &OutboxRow {
                                id: outbox_id,
                                kind: "email.receipt".into(),
                                dedupe_key: format!("receipt:{payment_id}"),
                                recipient: email,
                                payload_json: receipt.to_json(),
                                created_at: now,
                                sent_at: None,
                                attempts: 0,
                            },
                        )
                        .await?;
                    }
                    complete_keys(c, &payment_id, &response, now).await?;
                    Ok::<_, ServiceError>(true)
                })
            })
            .await?;
        if wrote {
            return Ok(result);
        }
        // Someone else (the reconciler, another instance) recorded the outcome first.
        let current = self.payment(&payment.id).await?;
        Ok(PaymentResult::of(current))
    }

    /// Asks the processor what happened to an in-doubt payment and records it. Never charges.
    pub async fn resolve_in_doubt(&self, payment: Payment) -> Result<PaymentResult, ServiceError> {
        use crate::processor::Lookup;
        let found = tokio::time::timeout(
            self.config().processor_timeout,
            self.processor.lookup(&payment.processor_key),
        )
        .await
        .unwrap_or(Err(ProcessorError::Timeout));
        match found {
            Ok(Lookup::Charge(outcome)) => self.record_outcome(payment, outcome).await,
            Ok(Lookup::NotFound) => {
                // The processor never saw it: nothing was charged.
                tracing::info!(payment_id = %payment.id, "in-doubt payment never reached the processor");
                self.record_outcome(
                    payment,
                    ChargeOutcome::Declined {
                        code: DeclineCode::ProcessingError,
                        reference: None,
                    },
                )
                .await
            }
            Ok(Lookup::Refund(_)) => Err(ServiceError::Store(StoreError::Corrupt(format!(
                "processor key of payment {} names a refund",
                payment.id
            )))),
            Err(_) => Ok(PaymentResult::InDoubt(payment)),
        }
    }

    pub async fn payment(&self, id: &str) -> Result<Payment, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let v = queries::payment_by_id(&mut c, id)
            .await?
            .ok_or(ServiceError::NotFound { what: "payment" })?;
        Ok(Payment::from_view(&v)?)
    }

    pub async fn payment_by_confirmation(
        &self,
        confirmation: &ConfirmationNumber,
    ) -> Result<Payment, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let v = queries::payment_by_confirmation(&mut c, confirmation.as_str())
            .await?
            .ok_or(ServiceError::NotFound {
                what: "confirmation number",
            })?;
        Ok(Payment::from_view(&v)?)
    }

    /// An account's payments, newest first; `after` is the last payment of the previous page.
    pub async fn account_payments(
        &self,
        account: &AccountNumber,
        after: Option<&Payment>,
        limit: i64,
    ) -> Result<Vec<Payment>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let a = queries::account_by_number(&mut c, account.as_str())
            .await?
            .ok_or(ServiceError::NotFound { what: "account" })?;
        let rows = queries::payments_for_account(
            &mut c,
            &a.id,
            after.map(|p| (p.created_at.as_microsecond(), p.id.as_str())),
            limit,
        )
        .await?;
        rows.iter()
            .map(|v| Payment::from_view(v).map_err(ServiceError::from))
            .collect()
    }

    pub async fn refunds_of(&self, payment_id: &str) -> Result<Vec<Refund>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let rows = queries::refunds_for_payment(&mut c, payment_id).await?;
        rows.iter()
            .map(|r| Refund::from_row(r).map_err(ServiceError::from))
            .collect()
    }

    /// Refunds part or all of a payment.
    #[tracing::instrument(skip_all, fields(payment_id = %req.payment_id))]
    pub async fn create_refund(
        &self,
        idem: Idempotency,
        req: RefundRequest,
    ) -> Result<StoredResponse, ServiceError> {
        if let Some(a) = req.amount
            && !a.is_positive()
        {
            return Err(ServiceError::invalid(
                "amount",
                "the refund amount must be greater than zero",
            ));
        }
        let amount_text = req
            .amount
            .map(|a| a.minor_units().to_string())
            .unwrap_or_default();
        let hash = fingerprint(&["refund", &req.payment_id, &amount_text]);
        let now = self.clock.now_micros();
        let refund_id = self.new_id("re");
        let key_row = IdempotencyRow {
            scope: idem.scope.clone(),
            idem_key: idem.key.clone(),
            endpoint: "refunds.create".into(),
            request_hash: hash.clone(),
            state: "started".into(),
            resource_id: Some(refund_id.clone()),
            response_status: None,
            response_body: None,
            created_at: now,
            completed_at: None,
        };
        let payment_id = req.payment_id.clone();
        let requested = req.amount;
        let claim = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if !queries::idempotency_claim(c, &key_row).await? {
                        let existing =
                            queries::idempotency_get(c, &key_row.scope, &key_row.idem_key)
                                .await?
                                .ok_or(StoreError::NotFound)?;
                        return Ok(RefundClaim::Existing(existing));
                    }
                    if !queries::lock_payment(c, &payment_id, now).await? {
                        return Err(ServiceError::NotFound { what: "payment" });
                    }
                    let view = queries::payment_by_id(c, &payment_id)
                        .await?
                        .ok_or(ServiceError::NotFound { what: "payment" })?;
                    let payment = Payment::from_view(&view)?;
                    let why = match payment.status {
                        PaymentStatus::Succeeded | PaymentStatus::PartiallyRefunded => None,
                        PaymentStatus::Processing => Some("This payment is still processing. It can be refunded once it has completed."),
                        PaymentStatus::Refunded => Some("This payment has already been refunded in full."),
                        PaymentStatus::Returned => Some("This payment was returned by the bank, so there is nothing to refund."),
                        _ => Some("This payment did not go through, so there is nothing to refund."),
                    };
                    if let Some(message) = why {
                        return Err(ServiceError::Conflict {
                            code: "payment_not_refundable",
                            message: message.into(),
                        });
                    }
                    let pending: i64 = queries::refunds_for_payment(c, &payment.id)
                        .await?
                        .iter()
                        .filter(|r| r.status == "pending")
                        .map(|r| r.amount)
                        .sum();
                    let remaining = payment.amount.minor_units() - payment.refunded.minor_units() - pending;
                    let amount = match requested {
                        Some(a) if a.currency() != payment.amount.currency() => {
                            return Err(ServiceError::invalid(
                                "currency",
                                format!("this payment was made in {}", payment.amount.currency()),
                            ));
                        }
                        Some(a) => a,
                        None => Money::new(remaining, payment.amount.currency()),
                    };
                    if remaining <= 0 || amount.minor_units() > remaining {
                        return Err(ServiceError::invalid(
                            "amount",
                            format!(
                                "the refund amount is more than the {} that remains refundable",
                                Money::new(remaining.max(0), payment.amount.currency())
                            ),
                        ));
                    }
                    let row = RefundRow {
                        id: key_row.resource_id.clone().unwrap_or_default(),
                        payment_id: payment.id.clone(),
                        amount: amount.minor_units(),
                        currency: amount.currency().code().into(),
                        status: "pending".into(),
                        processor_key: format!("billpay-{}", key_row.resource_id.clone().unwrap_or_default()),
                        processor_ref: None,
                        failure_code: None,
                        journal_id: None,
                        created_at: now,
                        updated_at: now,
                    };
                    queries::insert_refund(c, &row).await?;
                    let refund = Refund::from_row(&row)?;
                    Ok(RefundClaim::Proceed(Box::new((refund, payment, row.processor_key))))
                })
            })
            .await?;
        let (refund, payment, processor_key) = match claim {
            RefundClaim::Existing(row) => return self.replay(row, &hash).await,
            RefundClaim::Proceed(b) => *b,
        };
        let Some(charge_ref) = payment.processor_ref.clone() else {
            return Err(ServiceError::Store(StoreError::Corrupt(format!(
                "payment {} succeeded without a processor reference",
                payment.id
            ))));
        };
        let answer = tokio::time::timeout(
            self.config().processor_timeout,
            self.processor
                .refund(&processor_key, &charge_ref, refund.amount),
        )
        .await
        .unwrap_or(Err(ProcessorError::Timeout));
        let result = match answer {
            Ok(outcome) => self.record_refund(refund, payment, outcome).await?,
            Err(ProcessorError::Timeout) => RefundResult::InDoubt(refund, payment),
            Err(_) => {
                self.release_unsent_refund(&refund.id).await?;
                return Err(ServiceError::ProcessorUnavailable);
            }
        };
        Ok(self.render.refund(&result))
    }

    /// The processor certainly never refunded: the refund is canceled and its key released, so
    /// the same request can be retried with the same key.
    pub(crate) async fn release_unsent_refund(&self, refund_id: &str) -> Result<(), ServiceError> {
        let id = refund_id.to_string();
        let now = self.clock.now_micros();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    queries::update_refund_state(
                        c, &id, "pending", "canceled", None, None, None, now,
                    )
                    .await?;
                    queries::idempotency_release_resource(c, &id).await?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await
    }

    /// Records what the processor did with a refund. The payment's new state is computed from
    /// the payment as it stands inside the write, so concurrent refunds add up.
    pub(crate) async fn record_refund(
        &self,
        refund: Refund,
        payment: Payment,
        outcome: RefundOutcome,
    ) -> Result<RefundResult, ServiceError> {
        let now = self.clock.now_micros();
        let mut done = refund.clone();
        let (journal, reference, failure) = match &outcome {
            RefundOutcome::Refunded { reference } => {
                done.status = "succeeded".into();
                let entry = JournalEntry::refund(
                    &payment.account_number,
                    refund.amount,
                    payment.method.kind,
                )
                .map_err(ledger_error)?;
                let j = journal_row(
                    self,
                    EntryKind::Refund,
                    "refund",
                    &refund.id,
                    &payment.account_id,
                    refund.amount.currency().code(),
                    now,
                );
                (
                    Some((j, postings_of(&entry))),
                    Some(reference.clone()),
                    None,
                )
            }
            RefundOutcome::Declined { code } => {
                done.status = "failed".into();
                done.failure = Some(*code);
                (None, None, Some(*code))
            }
        };
        let render = self.render.clone();
        let msg_id = self.new_id("msg");
        let outcome = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    // Serializes concurrent refunds of one payment (a row lock on PostgreSQL).
                    queries::lock_payment(c, &payment.id, now).await?;
                    let view = queries::payment_by_id(c, &payment.id)
                        .await?
                        .ok_or(ServiceError::NotFound { what: "payment" })?;
                    let mut paid = Payment::from_view(&view)?;
                    let internal = |e: String| ServiceError::Store(StoreError::Internal(e));
                    if journal.is_some() {
                        let refunded = paid
                            .refunded
                            .checked_add(done.amount)
                            .map_err(|e| internal(e.to_string()))?;
                        if refunded.minor_units() > paid.amount.minor_units() {
                            return Err(internal(format!(
                                "refunds of payment {} would exceed it",
                                paid.id
                            )));
                        }
                        let to = if refunded == paid.amount {
                            PaymentStatus::Refunded
                        } else {
                            PaymentStatus::PartiallyRefunded
                        };
                        transition(paid.status, to, paid.method.kind)
                            .map_err(|e| internal(e.to_string()))?;
                        let from = paid.status;
                        paid.status = to;
                        paid.refunded = refunded;
                        paid.updated_at = crate::clock::from_micros(now);
                        if !queries::set_payment_refunded(
                            c,
                            &paid.id,
                            from.as_str(),
                            to.as_str(),
                            refunded.minor_units(),
                            now,
                        )
                        .await?
                        {
                            return Err(internal(
                                "payment changed while its refund was recorded".into(),
                            ));
                        }
                    }
                    let moved = queries::update_refund_state(
                        c,
                        &done.id,
                        "pending",
                        &done.status,
                        reference.as_deref(),
                        failure.map(|f| f.as_str()),
                        journal.as_ref().map(|(j, _)| j.id.as_str()),
                        now,
                    )
                    .await?;
                    if !moved {
                        return Ok(None);
                    }
                    if let Some((j, postings)) = &journal {
                        queries::insert_journal(c, j, postings).await?;
                        // The customer is told, with the refund, if the account has an address.
                        if let Some(email) = queries::account_by_id(c, &paid.account_id)
                            .await?
                            .and_then(|a| a.email)
                        {
                            let notice = serde_json::json!({
                                "refund_id": done.id,
                                "payment_id": paid.id,
                                "confirmation_number": paid.confirmation_number.grouped(),
                                "amount_minor": done.amount.minor_units(),
                                "currency": done.amount.currency().code(),
                                "payment_amount_minor": paid.amount.minor_units(),
                                "refunded_minor": paid.refunded.minor_units(),
                                "method": paid.method.describe(),
                            });
                            queries::insert_outbox(
                                c,
                                &OutboxRow {
                                    id: msg_id,
                                    kind: "email.refund".into(),
                                    dedupe_key: format!("refund:{}", done.id),
                                    recipient: email,
                                    payload_json: notice.to_string(),
                                    created_at: now,
                                    sent_at: None,
                                    attempts: 0,
                                },
                            )
                            .await?;
                        }
                    }
                    let result = match failure {
                        Some(code) => RefundResult::Declined(done, paid, code),
                        None => RefundResult::Completed(done, paid),
                    };
                    let response = render.refund(&result);
                    complete_keys(c, &result_refund_id(&result), &response, now).await?;
                    Ok::<_, ServiceError>(Some(result))
                })
            })
            .await?;
        outcome.ok_or_else(|| ServiceError::Conflict {
            code: "refund_already_recorded",
            message: "this refund's outcome was already recorded".into(),
        })
    }
}

fn result_refund_id(r: &RefundResult) -> String {
    match r {
        RefundResult::Completed(refund, _)
        | RefundResult::Declined(refund, _, _)
        | RefundResult::InDoubt(refund, _) => refund.id.clone(),
    }
}

/// The ledger entry for a payment: the customer's receivable is credited with what they paid
/// toward the bill; any convenience fee is revenue; the clearing account receives the total.
pub fn payment_entry(
    account: &AccountNumber,
    amount: Money,
    fee: Money,
    kind: MethodKind,
) -> Result<JournalEntry, billpay_domain::LedgerError> {
    if fee.is_zero() {
        return JournalEntry::payment(account, amount, kind);
    }
    let clearing = match kind {
        MethodKind::Card => billpay_domain::LEDGER_CARD_CLEARING,
        MethodKind::Ach => billpay_domain::LEDGER_ACH_CLEARING,
        MethodKind::Check => billpay_domain::LEDGER_LOCKBOX_CLEARING,
        MethodKind::Pledge => billpay_domain::LEDGER_PLEDGES,
    };
    let total = amount.checked_add(fee)?;
    JournalEntry::new(
        EntryKind::Payment,
        vec![
            Posting {
                ledger_account: clearing.into(),
                amount: total,
            },
            Posting {
                ledger_account: receivable_account(account),
                amount: amount.checked_neg()?,
            },
            Posting {
                ledger_account: billpay_domain::LEDGER_FEES.into(),
                amount: fee.checked_neg()?,
            },
        ],
    )
}
