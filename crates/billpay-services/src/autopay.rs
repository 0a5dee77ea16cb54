//! AutoPay and scheduled (one-time and recurring) payments, run by the job runner.
//!
//! AutoPay: when a statement arrives for an enrolled account (or an account enrolls with a bill
//! still to pay), one charge job and one pre-debit notice job are scheduled for it, in the same
//! transaction, under the keys `autopay:<account>:<statement>:<attempt>` and
//! `autopay-notice:<account>:<statement>`. The charge job computes what is still owed on that
//! statement at the moment it runs (a manual payment the day before leaves only the rest, or
//! nothing), pays with the enrolled saved method under an idempotency key equal to its business
//! key, and never pays more than the account owes (checked under the account lock, so a manual
//! payment racing it cannot make it overpay). A soft card decline schedules the next attempt by
//! the retry rules; a hard decline never retries. The customer hears of every outcome.
//!
//! Times: each job runs at `run_time` (06:00 by default) on its local date in the account's
//! time zone, converted by [`billpay_domain::local_instant`]: exactly one instant per local
//! date, so a DST change never fires a job twice or skips it.

use billpay_domain::{
    AccountNumber, AutopayAmount, BusinessCalendar, Channel, DeclineCode, End, Frequency, Language,
    Money, Recurrence, RetryRules, Timing, charge_date, local_date, local_instant, next_attempt,
    pre_debit_notice_date,
};
use billpay_store::jobs::{self as q, AutopayRow, JobRow, ScheduledPaymentRow};
use billpay_store::rows::{AccountRow, StatementRow};
use billpay_store::{AnyConnection, StoreError, queries};
use jiff::civil::{Date, Time};

use crate::accounts::account_tz as tz_of;
use crate::jobs::{JobError, job};
use crate::payments::{Idempotency, NewMethod, PaymentRequest};
use crate::{Billpay, Payment, PaymentResult, ServiceError};

pub const JOB_CHARGE: &str = "autopay.charge";
pub const JOB_NOTICE: &str = "autopay.notice";
pub const JOB_SCHEDULED: &str = "scheduled.charge";

/// AutoPay and schedule settings.
#[derive(Clone, Debug)]
pub struct AutopayConfig {
    /// Local time of day automatic payments run.
    pub run_time: Time,
    /// Days before the charge the pre-debit notice is sent.
    pub notice_days: u8,
    pub retry: RetryRules,
    /// Business days: AutoPay "N days before" moves back over weekends and holidays.
    pub calendar: BusinessCalendar,
    /// The customer's page for fixing a failed payment (linked in notices).
    pub fix_url: String,
    /// AutoPay charges a worker leases and charges as one batch.
    pub charge_batch: u32,
}

/// The default [`AutopayConfig::charge_batch`].
pub const CHARGE_BATCH_DEFAULT: u32 = 1000;

impl Default for AutopayConfig {
    fn default() -> Self {
        AutopayConfig {
            run_time: Time::constant(6, 0, 0, 0),
            notice_days: 3,
            retry: RetryRules::default(),
            calendar: BusinessCalendar::us_federal(2024..=2045),
            fix_url: "/pay".into(),
            charge_batch: CHARGE_BATCH_DEFAULT,
        }
    }
}

/// An account's AutoPay enrollment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Autopay {
    pub account_number: String,
    pub payment_method_id: String,
    pub timing: Timing,
    pub maximum: Option<Money>,
    /// active or canceled
    pub status: String,
    pub authorization_text: String,
    pub enrolled_at: jiff::Timestamp,
}

fn timing_of(row: &AutopayRow) -> Timing {
    match row.timing.as_str() {
        "days_before" => Timing::DaysBefore(u8::try_from(row.days_before).unwrap_or(1))
            .validate()
            .unwrap_or(Timing::OnDueDate),
        _ => Timing::OnDueDate,
    }
}

fn autopay_out(row: &AutopayRow, account: &AccountRow) -> Autopay {
    Autopay {
        account_number: account.account_number.clone(),
        payment_method_id: row.payment_method_id.clone(),
        timing: timing_of(row),
        maximum: row.maximum.map(|m| {
            Money::new(
                m,
                billpay_domain::Currency::parse(&account.currency)
                    .unwrap_or(billpay_domain::Currency::USD),
            )
        }),
        status: row.status.clone(),
        authorization_text: row.authorization_text.clone(),
        enrolled_at: crate::clock::from_micros(row.enrolled_at),
    }
}

/// The charge and notice jobs of one statement under an enrollment.
fn statement_jobs(
    b: &Billpay,
    cfg: &AutopayConfig,
    account: &AccountRow,
    enrollment: &AutopayRow,
    statement: &StatementRow,
) -> Option<(JobRow, JobRow)> {
    let due: Date = statement.due_date.parse().ok()?;
    let tz = tz_of(account);
    let charge = charge_date(due, timing_of(enrollment), &cfg.calendar);
    let notice = pre_debit_notice_date(charge, cfg.notice_days);
    let at = |d: Date| local_instant(d, cfg.run_time, &tz).as_microsecond();
    let payload = serde_json::json!({
        "account_id": account.id,
        "statement_id": statement.id,
        "attempt": 1,
        "first_attempt": charge.to_string(),
    });
    Some((
        job(
            b,
            JOB_CHARGE,
            format!("autopay:{}:{}:1", account.id, statement.id),
            payload.clone(),
            at(charge),
        ),
        job(
            b,
            JOB_NOTICE,
            format!("autopay-notice:{}:{}", account.id, statement.id),
            payload,
            at(notice),
        ),
    ))
}

/// Queues (or moves) the AutoPay jobs of a statement, in the caller's transaction. Statements
/// already past their charge date get their charge job at once (a late enrollment still pays).
pub(crate) async fn schedule_statement_in(
    c: &mut AnyConnection,
    jobs: Option<(JobRow, JobRow)>,
) -> Result<(), StoreError> {
    if let Some((charge, notice)) = jobs {
        q::schedule(c, &charge).await?;
        q::schedule(c, &notice).await?;
    }
    Ok(())
}

/// Tells the account's customer, by email, if the account has an address.
async fn notify(
    c: &mut AnyConnection,
    id: String,
    account_id: &str,
    kind: &str,
    dedupe_key: String,
    payload: serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    match queries::account_by_id(c, account_id).await? {
        Some(account) => {
            crate::collections::notify(c, id, &account, kind, dedupe_key, payload, now).await
        }
        None => Ok(()),
    }
}

/// The date of an AutoPay job's first attempt, which its retries count from.
pub(crate) fn first_attempt(payload: &serde_json::Value) -> Result<Date, JobError> {
    payload["first_attempt"]
        .as_str()
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| JobError::Fatal("the job has no first attempt date".into()))
}

/// The customer's notice of a paid AutoPay charge: (kind, dedupe key, payload).
pub(crate) fn paid_notice(p: &Payment) -> (&'static str, String, serde_json::Value) {
    (
        "email.autopay_paid",
        format!("autopay-paid:{}", p.id),
        serde_json::json!({"payment_id": p.id, "amount": p.amount.format(),
            "confirmation_number": p.confirmation_number.grouped()}),
    )
}

impl Billpay {
    /// What follows a declined AutoPay charge: the next attempt's job, if the decline and the
    /// retry rules allow one, and the customer's notice (kind, dedupe key, payload).
    pub(crate) fn declined_followup(
        &self,
        payload: &serde_json::Value,
        account: &AccountRow,
        statement: &StatementRow,
        p: &Payment,
        code: DeclineCode,
    ) -> (Option<JobRow>, &'static str, String, serde_json::Value) {
        let attempt = payload["attempt"].as_u64().unwrap_or(1) as u32;
        let next = first_attempt(payload)
            .ok()
            .filter(|_| !p.method.kind.posts_on_acceptance())
            .and_then(|first| next_attempt(code, attempt, first, &self.autopay_cfg().retry));
        let retry_job = next.map(|d| {
            let mut next_payload = payload.clone();
            next_payload["attempt"] = serde_json::json!(attempt + 1);
            job(
                self,
                JOB_CHARGE,
                format!("autopay:{}:{}:{}", account.id, statement.id, attempt + 1),
                next_payload,
                local_instant(d, self.autopay_cfg().run_time, &tz_of(account)).as_microsecond(),
            )
        });
        let notice = serde_json::json!({
            "payment_id": p.id, "amount": p.amount.format(), "reason": code.message(Language::En),
            "next_step": code.next_step(Language::En), "fix_url": self.autopay_cfg().fix_url,
            "next_attempt": next.map(|d| d.to_string()),
        });
        (
            retry_job,
            "email.autopay_failed",
            format!("autopay-failed:{}", p.id),
            notice,
        )
    }
}

impl Billpay {
    fn autopay_cfg(&self) -> AutopayConfig {
        self.config().autopay.clone()
    }

    /// A saved method of this account that can pay.
    async fn usable_method(
        &self,
        account: &AccountRow,
        token: &str,
    ) -> Result<billpay_store::rows::PaymentMethodRow, ServiceError> {
        let mut c = self.store.read_conn().await?;
        queries::payment_method_by_id(&mut c, token)
            .await?
            .filter(|m| m.account_id == account.id && m.status == "active")
            .ok_or_else(|| {
                ServiceError::invalid(
                    "payment_method",
                    "No such saved payment method on this account.",
                )
            })
    }

    /// The AutoPay authorization as shown or read to the customer and stored with the
    /// enrollment.
    fn autopay_authorization(
        &self,
        method: &billpay_store::rows::PaymentMethodRow,
        timing: Timing,
        maximum: Option<Money>,
    ) -> String {
        let when = match timing {
            Timing::OnDueDate => "on each due date".to_string(),
            Timing::DaysBefore(n) => format!("{n} days before each due date"),
        };
        let what = if method.kind == "ach" {
            format!(
                "a recurring ACH debit from the bank account ending in {}",
                method.last4
            )
        } else {
            format!("a recurring charge to the card ending in {}", method.last4)
        };
        let cap = maximum
            .map(|m| format!(", up to {m} each month"))
            .unwrap_or_default();
        format!(
            "You authorize {} to make {what} for the amount of each bill{cap}, {when}, until you cancel AutoPay. \
             You will be notified {} days before each payment. To cancel, turn AutoPay off or call {} at least 3 days before a payment.",
            self.config().biller.name,
            self.autopay_cfg().notice_days,
            self.config().biller.support_phone
        )
    }

    /// Enrolls (or re-enrolls, with new settings) an account in AutoPay and schedules its
    /// current bill if one is still to be paid.
    /// The AutoPay terms a customer would accept for these choices: the very text stored with
    /// the enrollment (shown before the customer accepts it).
    pub async fn autopay_terms(
        &self,
        number: &AccountNumber,
        token: &str,
        timing: Timing,
        maximum: Option<Money>,
    ) -> Result<String, ServiceError> {
        let timing = timing
            .validate()
            .map_err(|e| ServiceError::invalid("timing", e.to_string()))?;
        let account = self.account_row(number).await?;
        let method = self.usable_method(&account, token).await?;
        Ok(self.autopay_authorization(&method, timing, maximum))
    }

    pub async fn enroll_autopay(
        &self,
        number: &AccountNumber,
        token: &str,
        timing: Timing,
        maximum: Option<Money>,
        channel: Channel,
    ) -> Result<Autopay, ServiceError> {
        self.enroll_autopay_as(number, token, timing, maximum, channel, None)
            .await
    }

    /// Enrolls by phone, on each due date: `terms` is the authorization read to the caller
    /// (in their language), stored as what they agreed to.
    pub async fn enroll_autopay_by_phone(
        &self,
        number: &AccountNumber,
        token: &str,
        terms: String,
    ) -> Result<Autopay, ServiceError> {
        self.enroll_autopay_as(
            number,
            token,
            Timing::OnDueDate,
            None,
            Channel::Phone,
            Some(terms),
        )
        .await
    }

    async fn enroll_autopay_as(
        &self,
        number: &AccountNumber,
        token: &str,
        timing: Timing,
        maximum: Option<Money>,
        channel: Channel,
        terms: Option<String>,
    ) -> Result<Autopay, ServiceError> {
        let timing = timing
            .validate()
            .map_err(|e| ServiceError::invalid("timing", e.to_string()))?;
        if maximum.is_some_and(|m| !m.is_positive()) {
            return Err(ServiceError::invalid(
                "maximum",
                "the maximum must be greater than zero",
            ));
        }
        let account = self.account_row(number).await?;
        let method = self.usable_method(&account, token).await?;
        let now = self.clock.now_micros();
        if terms.is_some() && method.kind == "ach" {
            return Err(ServiceError::invalid(
                "payment_method",
                "AutoPay from a bank account needs an authorization the customer receives in writing; enroll it on the website or through the API",
            ));
        }
        let authorization_text =
            terms.unwrap_or_else(|| self.autopay_authorization(&method, timing, maximum));
        let (kind, days) = match timing {
            Timing::OnDueDate => ("due_date", 0),
            Timing::DaysBefore(n) => ("days_before", i64::from(n)),
        };
        let row = AutopayRow {
            account_id: account.id.clone(),
            payment_method_id: method.id.clone(),
            timing: kind.into(),
            days_before: days,
            maximum: maximum.map(|m| m.minor_units()),
            status: "active".into(),
            channel: channel.as_str().into(),
            authorization_text,
            enrolled_at: now,
            updated_at: now,
        };
        let statement = {
            let mut c = self.store.read_conn().await?;
            queries::latest_statement(&mut c, &account.id).await?
        };
        let today = local_date(self.clock.now(), &tz_of(&account));
        let jobs = statement
            .filter(|s| s.due_date.parse::<Date>().is_ok_and(|d| d >= today))
            .and_then(|s| statement_jobs(self, &self.autopay_cfg(), &account, &row, &s));
        let row_w = row.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::upsert_autopay(c, &row_w).await?;
                    schedule_statement_in(c, jobs).await
                })
            })
            .await?;
        Ok(autopay_out(&row, &account))
    }

    pub async fn autopay(&self, number: &AccountNumber) -> Result<Option<Autopay>, ServiceError> {
        let account = self.account_row(number).await?;
        let mut c = self.store.read_conn().await?;
        Ok(q::autopay(&mut c, &account.id)
            .await?
            .map(|r| autopay_out(&r, &account)))
    }

    /// Turns AutoPay off; charges not yet started are canceled.
    pub async fn cancel_autopay(&self, number: &AccountNumber) -> Result<Autopay, ServiceError> {
        let account = self.account_row(number).await?;
        let now = self.clock.now_micros();
        let id = account.id.clone();
        let row = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if !q::set_autopay_status(c, &id, "canceled", now).await? {
                        return Err(ServiceError::NotFound {
                            what: "AutoPay enrollment",
                        });
                    }
                    q::cancel_queued(c, &format!("autopay:{id}:"), now).await?;
                    q::cancel_queued(c, &format!("autopay-notice:{id}:"), now).await?;
                    q::autopay(c, &id).await?.ok_or(ServiceError::NotFound {
                        what: "AutoPay enrollment",
                    })
                })
            })
            .await?;
        Ok(autopay_out(&row, &account))
    }

    /// The AutoPay jobs a new statement needs, for [`Billpay::create_statement`]'s transaction.
    pub(crate) fn autopay_jobs_for(
        &self,
        account: &AccountRow,
        enrollment: &AutopayRow,
        statement: &StatementRow,
    ) -> Option<(JobRow, JobRow)> {
        statement_jobs(self, &self.autopay_cfg(), account, enrollment, statement)
    }

    pub(crate) async fn run_autopay_notice(
        &self,
        j: &JobRow,
        payload: &serde_json::Value,
    ) -> Result<(), JobError> {
        let Some((account, enrollment, statement)) = self.autopay_context(payload).await? else {
            return Ok(());
        };
        let amount = self
            .statement_due(&account, &statement, enrollment.maximum)
            .await?;
        let AutopayAmount::Charge(m) = amount else {
            return Ok(());
        };
        let first = payload["first_attempt"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let now = self.clock.now_micros();
        let msg_id = self.new_id("msg");
        let key = format!("{}:{}", j.kind, j.business_key);
        let account_id = account.id.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    notify(
                        c,
                        msg_id,
                        &account_id,
                        "email.autopay_upcoming",
                        key,
                        serde_json::json!({"amount": m.format(), "date": first}),
                        now,
                    )
                    .await
                })
            })
            .await
            .map_err(ServiceError::from)?;
        Ok(())
    }

    /// The enrollment, account and statement of an AutoPay job; None when AutoPay is off.
    async fn autopay_context(
        &self,
        payload: &serde_json::Value,
    ) -> Result<Option<(AccountRow, AutopayRow, StatementRow)>, JobError> {
        let account_id = payload["account_id"].as_str().unwrap_or_default();
        let statement_id = payload["statement_id"].as_str().unwrap_or_default();
        let mut c = self.store.read_conn().await.map_err(ServiceError::from)?;
        let account = queries::account_by_id(&mut c, account_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| JobError::Fatal(format!("no account {account_id}")))?;
        let statement = q::statement_by_id(&mut c, statement_id)
            .await
            .map_err(ServiceError::from)?
            .ok_or_else(|| JobError::Fatal(format!("no statement {statement_id}")))?;
        let enrollment = q::autopay(&mut c, account_id)
            .await
            .map_err(ServiceError::from)?
            .filter(|e| e.status == "active");
        Ok(enrollment.map(|e| (account, e, statement)))
    }

    /// What AutoPay would charge for `statement` right now.
    /// The payment an earlier run of this job made, if any: settled, or resolved by its key
    /// once the processor's deadline has passed (a retry until then).
    async fn earlier_attempt(
        &self,
        business_key: &str,
    ) -> Result<Option<Result<PaymentResult, ServiceError>>, JobError> {
        let row = {
            let mut c = self.store.read_conn().await.map_err(ServiceError::from)?;
            queries::idempotency_get(&mut c, "autopay", business_key)
                .await
                .map_err(ServiceError::from)?
        };
        let Some(payment_id) = row.and_then(|r| r.resource_id) else {
            return Ok(None);
        };
        let payment = match self.payment(&payment_id).await {
            Ok(p) => p,
            // The claim rolled back with its payment: nothing was made.
            Err(ServiceError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if payment.status == billpay_domain::PaymentStatus::Processing
            && payment.processor_ref.is_none()
        {
            let age = self.clock.now().duration_since(payment.created_at);
            if age
                < jiff::SignedDuration::try_from(self.config().processor_timeout)
                    .unwrap_or_default()
            {
                return Err(JobError::Retry(
                    "an earlier run's payment may still be with the processor".into(),
                ));
            }
            return Ok(Some(self.resolve_in_doubt(payment).await));
        }
        Ok(Some(Ok(PaymentResult::of(payment))))
    }

    pub(crate) async fn run_autopay_charge(
        &self,
        j: &JobRow,
        payload: &serde_json::Value,
    ) -> Result<(), JobError> {
        let Some((account, enrollment, statement)) = self.autopay_context(payload).await? else {
            return Ok(());
        };
        first_attempt(payload)?;
        let now = self.clock.now_micros();
        // A run before this one may have been cut off mid-charge (a worker killed while its
        // processor call was in flight). Its payment, found by the job's key, decides: the
        // amount is not worked out again, and nothing is charged twice.
        let result = match self.earlier_attempt(&j.business_key).await? {
            Some(result) => result,
            None => {
                let amount = match self
                    .statement_due(&account, &statement, enrollment.maximum)
                    .await?
                {
                    AutopayAmount::NothingDue => return Ok(()),
                    AutopayAmount::OverMaximum { due, maximum } => {
                        let msg_id = self.new_id("msg");
                        let account_id = account.id.clone();
                        let key = format!("autopay-over-max:{}", j.business_key);
                        self.store
                            .write(move |c| {
                                Box::pin(async move {
                                    notify(c, msg_id, &account_id, "email.autopay_over_maximum", key,
                                        serde_json::json!({"due": due.format(), "maximum": maximum.format(),
                                            "message": "Your bill is more than your AutoPay maximum, so AutoPay did not pay it. Please pay it another way before the due date."}), now).await
                                })
                            })
                            .await
                            .map_err(ServiceError::from)?;
                        return Ok(());
                    }
                    AutopayAmount::Charge(m) => m,
                };
                let idem = Idempotency::new("autopay", j.business_key.clone())?;
                let number = AccountNumber::parse(&account.account_number)
                    .map_err(|e| JobError::Fatal(e.to_string()))?;
                self.create_payment_result(
                    idem,
                    PaymentRequest {
                        account_number: number,
                        amount,
                        channel: Channel::Autopay,
                        method: NewMethod::Saved {
                            token: enrollment.payment_method_id.clone(),
                        },
                        // AutoPay means to pay; the balance guard stops it paying twice.
                        confirm_duplicate: true,
                        tel_authorization: None,
                        limit_to_balance: true,
                        risk: None,
                    },
                )
                .await
            }
        };
        let account_id = account.id.clone();
        let msg_id = self.new_id("msg");
        match result {
            Ok(PaymentResult::Completed(p)) => {
                let (kind, key, notice) = paid_notice(&p);
                self.store
                    .write(move |c| {
                        Box::pin(async move {
                            notify(c, msg_id, &account_id, kind, key, notice, now).await
                        })
                    })
                    .await
                    .map_err(ServiceError::from)?;
                Ok(())
            }
            Ok(PaymentResult::Declined(p, code)) => {
                let (retry_job, kind, key, notice) =
                    self.declined_followup(payload, &account, &statement, &p, code);
                self.store
                    .write(move |c| {
                        Box::pin(async move {
                            if let Some(r) = &retry_job {
                                q::enqueue(c, r).await?;
                            }
                            notify(c, msg_id, &account_id, kind, key, notice, now).await
                        })
                    })
                    .await
                    .map_err(ServiceError::from)?;
                Ok(())
            }
            Ok(PaymentResult::InDoubt(_)) => Err(JobError::Retry(
                "the processor did not answer; the payment is resolved by its key".into(),
            )),
            Err(ServiceError::Conflict {
                code: "amount_over_balance",
                message,
            }) => {
                // A payment made meanwhile: work out again what is left.
                Err(JobError::Retry(message))
            }
            Err(e @ ServiceError::Invalid { .. }) => {
                // The saved method is gone or can no longer pay: tell the customer.
                let key = format!("autopay-failed:{}", j.business_key);
                let fix = self.autopay_cfg().fix_url.clone();
                let message = e.to_string();
                self.store
                    .write(move |c| {
                        Box::pin(async move {
                            notify(c, msg_id, &account_id, "email.autopay_failed", key,
                                serde_json::json!({"statement_id": statement.id, "reason": message,
                                    "next_step": "Update your AutoPay payment method, or pay this bill another way.", "fix_url": fix}), now).await
                        })
                    })
                    .await
                    .map_err(ServiceError::from)?;
                Ok(())
            }
            Err(e) => Err(JobError::Retry(e.to_string())),
        }
    }

    // ------------------------------------------------------------ scheduled payments

    /// Schedules a payment on a later date, once or repeating.
    pub async fn schedule_payment(
        &self,
        number: &AccountNumber,
        new: NewScheduledPayment,
        channel: Channel,
    ) -> Result<ScheduledPayment, ServiceError> {
        self.schedule_payment_as(number, new, channel, None).await
    }

    /// Schedules a payment taken on a phone call: `key` (the call and its step) makes a
    /// redelivered webhook find the schedule it already made instead of making a second one,
    /// and a bank debit carries the TEL authorization the caller consented to.
    pub async fn schedule_payment_by_phone(
        &self,
        number: &AccountNumber,
        new: NewScheduledPayment,
        key: &str,
        call_sid: &str,
        authorization: Option<String>,
    ) -> Result<ScheduledPayment, ServiceError> {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(key.as_bytes());
        let id = format!("sch_{}", hex::encode(&digest[..16]));
        let phone = PhoneSchedule {
            id,
            call_sid: call_sid.to_string(),
            authorization,
        };
        self.schedule_payment_as(number, new, Channel::Phone, Some(phone))
            .await
    }

    async fn schedule_payment_as(
        &self,
        number: &AccountNumber,
        new: NewScheduledPayment,
        channel: Channel,
        phone: Option<PhoneSchedule>,
    ) -> Result<ScheduledPayment, ServiceError> {
        let account = self.account_row(number).await?;
        if let Some(p) = &phone {
            let mut c = self.store.read_conn().await?;
            if let Some(existing) = q::scheduled(&mut c, &p.id).await? {
                return scheduled_out(&existing, &account);
            }
        }
        let method = self.usable_method(&account, &new.payment_method).await?;
        if !new.amount.is_positive()
            || new.amount.minor_units() > crate::payments::PAYMENT_AMOUNT_MAX_MINOR
        {
            return Err(ServiceError::invalid(
                "amount",
                "the amount must be greater than zero and at most $1,000,000.00",
            ));
        }
        if new.amount.currency().code() != account.currency {
            return Err(ServiceError::invalid(
                "currency",
                format!("this account is billed in {}", account.currency),
            ));
        }
        let tz = tz_of(&account);
        let today = local_date(self.clock.now(), &tz);
        if new.start < today {
            return Err(ServiceError::invalid(
                "start_date",
                "the first payment date is in the past",
            ));
        }
        if new.start
            > today
                .checked_add(jiff::Span::new().days(366))
                .unwrap_or(today)
        {
            return Err(ServiceError::invalid(
                "start_date",
                "the first payment date is more than a year away",
            ));
        }
        let (frequency, end) = match new.frequency {
            None => (Frequency::Monthly, End::Count(1)),
            Some(f) => (f, new.end),
        };
        Recurrence::new(new.start, frequency, end)
            .map_err(|e| ServiceError::invalid("end", e.to_string()))?;
        let now = self.clock.now_micros();
        let id = match &phone {
            Some(p) => p.id.clone(),
            None => self.new_id("sch"),
        };
        let keyed = phone.is_some();
        let (authorization_text, authorization_call_sid, authorization_at) = match phone {
            Some(p) if method.kind == "ach" => (p.authorization, Some(p.call_sid), Some(now)),
            _ => (None, None, None),
        };
        let row = ScheduledPaymentRow {
            id: id.clone(),
            account_id: account.id.clone(),
            payment_method_id: method.id,
            amount: new.amount.minor_units(),
            currency: account.currency.clone(),
            channel: channel.as_str().into(),
            frequency: match new.frequency {
                None => "once",
                Some(Frequency::Weekly) => "weekly",
                Some(Frequency::Biweekly) => "biweekly",
                Some(Frequency::Monthly) => "monthly",
            }
            .into(),
            start_date: new.start.to_string(),
            end_date: match end {
                End::Until(d) => Some(d.to_string()),
                _ => None,
            },
            max_count: match end {
                End::Count(n) => Some(i64::from(n)),
                _ => None,
            },
            made_count: 0,
            next_date: Some(new.start.to_string()),
            status: "active".into(),
            created_at: now,
            updated_at: now,
            authorization_text,
            authorization_call_sid,
            authorization_at,
        };
        let first = self.occurrence_job(&row, &account, 0, new.start);
        let row_w = row.clone();
        let written = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    q::insert_scheduled(c, &row_w).await?;
                    q::enqueue(c, &first).await?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await;
        if let Err(e) = written {
            // A keyed schedule another instance made at the same moment is the same schedule.
            if keyed {
                let mut c = self.store.read_conn().await?;
                if let Some(existing) = q::scheduled(&mut c, &row.id).await? {
                    return scheduled_out(&existing, &account);
                }
            }
            return Err(e);
        }
        scheduled_out(&row, &account)
    }

    fn occurrence_job(
        &self,
        row: &ScheduledPaymentRow,
        account: &AccountRow,
        n: u32,
        date: Date,
    ) -> JobRow {
        job(
            self,
            JOB_SCHEDULED,
            format!("scheduled:{}:{n}", row.id),
            serde_json::json!({"scheduled_id": row.id, "n": n, "date": date.to_string()}),
            local_instant(date, self.autopay_cfg().run_time, &tz_of(account)).as_microsecond(),
        )
    }

    pub async fn scheduled_payments(
        &self,
        number: &AccountNumber,
    ) -> Result<Vec<ScheduledPayment>, ServiceError> {
        let account = self.account_row(number).await?;
        let mut c = self.store.read_conn().await?;
        q::scheduled_of_account(&mut c, &account.id)
            .await?
            .iter()
            .map(|r| scheduled_out(r, &account))
            .collect()
    }

    async fn scheduled_with_account(
        &self,
        id: &str,
    ) -> Result<(ScheduledPaymentRow, AccountRow), ServiceError> {
        let mut c = self.store.read_conn().await?;
        let row = q::scheduled(&mut c, id)
            .await?
            .ok_or(ServiceError::NotFound {
                what: "scheduled payment",
            })?;
        let account = queries::account_by_id(&mut c, &row.account_id)
            .await?
            .ok_or(ServiceError::NotFound { what: "account" })?;
        Ok((row, account))
    }

    /// Changes the amount or method of a scheduled payment's next occurrences.
    pub async fn update_scheduled_payment(
        &self,
        id: &str,
        amount: Option<Money>,
        payment_method: Option<String>,
    ) -> Result<ScheduledPayment, ServiceError> {
        let (row, account) = self.scheduled_with_account(id).await?;
        if row.status != "active" {
            return Err(ServiceError::Conflict {
                code: "schedule_not_active",
                message: format!("this scheduled payment is {}", row.status),
            });
        }
        let method = match &payment_method {
            Some(t) => self.usable_method(&account, t).await?.id,
            None => row.payment_method_id.clone(),
        };
        let changes_debit = method != row.payment_method_id
            || amount.is_some_and(|a| a.minor_units() != row.amount);
        if row.authorization_text.is_some() && changes_debit {
            return Err(ServiceError::Conflict {
                code: "reauthorization_required",
                message: "this bank debit was authorized on a phone call for its amount and account; cancel it and schedule a new one to change them".into(),
            });
        }
        let amount = match amount {
            Some(a)
                if !a.is_positive()
                    || a.minor_units() > crate::payments::PAYMENT_AMOUNT_MAX_MINOR =>
            {
                return Err(ServiceError::invalid(
                    "amount",
                    "the amount must be greater than zero and at most $1,000,000.00",
                ));
            }
            Some(a) => a.minor_units(),
            None => row.amount,
        };
        let now = self.clock.now_micros();
        let (idw, made, next) = (row.id.clone(), row.made_count, row.next_date.clone());
        let methodw = method.clone();
        let moved = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    q::update_scheduled(
                        c,
                        &idw,
                        made,
                        made,
                        next.as_deref(),
                        "active",
                        amount,
                        &methodw,
                        now,
                    )
                    .await
                })
            })
            .await?;
        if !moved {
            return Err(ServiceError::Conflict {
                code: "schedule_changed",
                message: "the payment started or changed meanwhile; look again".into(),
            });
        }
        let (row, account) = self.scheduled_with_account(id).await?;
        scheduled_out(&row, &account)
    }

    /// Cancels a scheduled payment's occurrences not yet started.
    pub async fn cancel_scheduled_payment(
        &self,
        id: &str,
    ) -> Result<ScheduledPayment, ServiceError> {
        let (row, _) = self.scheduled_with_account(id).await?;
        if row.status != "active" {
            return Err(ServiceError::Conflict {
                code: "schedule_not_active",
                message: format!("this scheduled payment is already {}", row.status),
            });
        }
        let now = self.clock.now_micros();
        let r = row.clone();
        let moved = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let ok = q::update_scheduled(
                        c,
                        &r.id,
                        r.made_count,
                        r.made_count,
                        None,
                        "canceled",
                        r.amount,
                        &r.payment_method_id,
                        now,
                    )
                    .await?;
                    if ok {
                        q::cancel_queued(c, &format!("scheduled:{}:", r.id), now).await?;
                    }
                    Ok::<_, StoreError>(ok)
                })
            })
            .await?;
        if !moved {
            return Err(ServiceError::Conflict {
                code: "schedule_changed",
                message: "the payment started meanwhile; look again".into(),
            });
        }
        let (row, account) = self.scheduled_with_account(id).await?;
        scheduled_out(&row, &account)
    }

    pub(crate) async fn run_scheduled_payment(
        &self,
        j: &JobRow,
        payload: &serde_json::Value,
    ) -> Result<(), JobError> {
        let id = payload["scheduled_id"].as_str().unwrap_or_default();
        let n = payload["n"].as_u64().unwrap_or(0) as u32;
        let (row, account) = self.scheduled_with_account(id).await?;
        if row.status != "active" || row.made_count != i64::from(n) {
            return Ok(()); // canceled, or this occurrence was already recorded
        }
        let currency = billpay_domain::Currency::parse(&row.currency)
            .map_err(|e| JobError::Fatal(e.to_string()))?;
        let number = AccountNumber::parse(&account.account_number)
            .map_err(|e| JobError::Fatal(e.to_string()))?;
        let channel = Channel::parse(&row.channel).unwrap_or(Channel::Web);
        // A payment scheduled by phone pays the bill: never more than is still owed (AutoPay or
        // a manual payment may have paid it meanwhile), and nothing when nothing is.
        let bill_payment = channel == Channel::Phone;
        let mut amount = row.amount;
        if bill_payment {
            let mut c = self
                .store
                .read_conn()
                .await
                .map_err(crate::jobs::store_err)?;
            let owed = q::payable_balance(
                &mut c,
                &account.id,
                &format!("ar:{}", account.account_number),
            )
            .await
            .map_err(crate::jobs::store_err)?;
            amount = amount.min(owed);
        }
        let result = if amount <= 0 {
            Err(ServiceError::Conflict {
                code: "nothing_owed",
                message: "the bill was already paid, so this scheduled payment was not made".into(),
            })
        } else {
            self.create_payment_result(
                Idempotency::new("scheduled", j.business_key.clone())?,
                PaymentRequest {
                    account_number: number,
                    amount: Money::new(amount, currency),
                    channel,
                    method: NewMethod::Saved {
                        token: row.payment_method_id.clone(),
                    },
                    confirm_duplicate: true,
                    tel_authorization: row.authorization_text.clone().map(|text| {
                        crate::payments::TelAuthorization {
                            call_sid: row.authorization_call_sid.clone().unwrap_or_default(),
                            text,
                            authorized_at: row.authorization_at,
                        }
                    }),
                    limit_to_balance: bill_payment,
                    risk: None,
                },
            )
            .await
        };
        let now = self.clock.now_micros();
        let msg_id = self.new_id("msg");
        let notice = match &result {
            Ok(PaymentResult::Completed(p)) => (
                "email.scheduled_paid",
                serde_json::json!({"payment_id": p.id, "amount": p.amount.format(), "confirmation_number": p.confirmation_number.grouped()}),
            ),
            Ok(PaymentResult::Declined(p, code)) => (
                "email.scheduled_failed",
                serde_json::json!({"payment_id": p.id, "amount": p.amount.format(), "reason": code.message(Language::En), "next_step": code.next_step(Language::En), "fix_url": self.autopay_cfg().fix_url}),
            ),
            Ok(PaymentResult::InDoubt(_)) => {
                return Err(JobError::Retry(
                    "the processor did not answer; the payment is resolved by its key".into(),
                ));
            }
            Err(e @ ServiceError::Invalid { .. }) => (
                "email.scheduled_failed",
                serde_json::json!({"amount": Money::new(row.amount, currency).format(), "reason": e.to_string(), "next_step": "Update the payment method of your scheduled payment, or pay another way.", "fix_url": self.autopay_cfg().fix_url}),
            ),
            Err(ServiceError::Conflict {
                code: "nothing_owed",
                message,
            }) => (
                "email.scheduled_failed",
                serde_json::json!({"amount": Money::new(row.amount, currency).format(), "reason": message, "next_step": "Nothing to do: nothing was charged.", "fix_url": self.autopay_cfg().fix_url}),
            ),
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        // Record the occurrence and queue the next one.
        let (frequency, end) = schedule_shape(&row)?;
        let start: Date = row
            .start_date
            .parse()
            .map_err(|_| JobError::Fatal("bad start date".into()))?;
        let rec =
            Recurrence::new(start, frequency, end).map_err(|e| JobError::Fatal(e.to_string()))?;
        let next = rec.occurrence(n + 1);
        let next_job = next.map(|d| self.occurrence_job(&row, &account, n + 1, d));
        let status = if next.is_some() {
            "active"
        } else {
            "completed"
        };
        let key = format!("{}:{}", notice.0, j.business_key);
        let account_id = account.id.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    if q::update_scheduled(
                        c,
                        &row.id,
                        i64::from(n),
                        i64::from(n) + 1,
                        next.map(|d| d.to_string()).as_deref(),
                        status,
                        row.amount,
                        &row.payment_method_id,
                        now,
                    )
                    .await?
                    {
                        if let Some(nj) = &next_job {
                            q::enqueue(c, nj).await?;
                        }
                        notify(c, msg_id, &account_id, notice.0, key, notice.1, now).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .map_err(ServiceError::from)?;
        Ok(())
    }
}

fn schedule_shape(row: &ScheduledPaymentRow) -> Result<(Frequency, End), JobError> {
    let frequency = match row.frequency.as_str() {
        "weekly" => Frequency::Weekly,
        "biweekly" => Frequency::Biweekly,
        _ => Frequency::Monthly,
    };
    let end = match (row.frequency.as_str(), &row.end_date, row.max_count) {
        ("once", _, _) => End::Count(1),
        (_, Some(d), _) => End::Until(
            d.parse()
                .map_err(|_| JobError::Fatal("bad end date".into()))?,
        ),
        (_, None, Some(n)) => End::Count(u32::try_from(n).unwrap_or(1)),
        _ => End::Never,
    };
    Ok((frequency, end))
}

/// What a schedule made on a phone call carries.
struct PhoneSchedule {
    /// Derived from the call and its step.
    id: String,
    call_sid: String,
    authorization: Option<String>,
}

/// A payment to make later.
#[derive(Clone, Debug)]
pub struct NewScheduledPayment {
    pub payment_method: String,
    pub amount: Money,
    pub start: Date,
    /// None: once, on `start`.
    pub frequency: Option<Frequency>,
    pub end: End,
}

/// A scheduled payment as shown to the customer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScheduledPayment {
    pub id: String,
    pub account_number: String,
    pub payment_method_id: String,
    pub amount: Money,
    /// once, weekly, biweekly or monthly
    pub frequency: String,
    pub start_date: String,
    pub end_date: Option<String>,
    pub count: Option<i64>,
    pub payments_made: i64,
    pub next_date: Option<String>,
    /// active, completed or canceled
    pub status: String,
}

fn scheduled_out(
    r: &ScheduledPaymentRow,
    account: &AccountRow,
) -> Result<ScheduledPayment, ServiceError> {
    let currency = billpay_domain::Currency::parse(&r.currency)
        .map_err(|e| ServiceError::Store(StoreError::Corrupt(e.to_string())))?;
    Ok(ScheduledPayment {
        id: r.id.clone(),
        account_number: account.account_number.clone(),
        payment_method_id: r.payment_method_id.clone(),
        amount: Money::new(r.amount, currency),
        frequency: r.frequency.clone(),
        start_date: r.start_date.clone(),
        end_date: r.end_date.clone(),
        count: r.max_count,
        payments_made: r.made_count,
        next_date: r.next_date.clone(),
        status: r.status.clone(),
    })
}
