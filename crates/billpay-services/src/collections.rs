//! Collections: what happens when a bill goes unpaid, and how the customer gets out of it.
//!
//! A statement schedules its own collections jobs in the transaction that records it: the late
//! fee (after the grace period), the disconnection notice (a lead time before suspension) and
//! the suspension (the first business day after the configured days past due). Each job looks
//! again when it runs: a bill paid meanwhile, a kept payment arrangement, a hardship program or
//! a medical or weather hold stops it. A late fee is charged at most once per statement (a
//! unique charge per statement) and a supervisor can waive it with a reason. A suspended
//! account is restored as soon as its past-due amount is paid: the payment itself queues the
//! restoration. Suspension and restoration are account events the biller's systems read from
//! the API or receive as signed webhooks, retried until they answer.

use billpay_domain::{
    ArrangementKind, ArrangementRules, AutopayAmount, BusinessCalendar, EntryKind, JournalEntry,
    LateFeePolicy, Money, Posting, SuspensionPolicy, check_eligibility, disconnect_notice_date,
    installment_missed, installments, late_fee, late_fee_date, local_date, local_instant,
    may_suspend_on, suspension_applies, suspension_date,
};
use billpay_store::ach::ChargeRow;
use billpay_store::collections::{self as q, ArrangementRow, EventRow, HoldRow, InstallmentRow};
use billpay_store::jobs::{self as jq, JobRow};
use billpay_store::rows::{AccountRow, JournalRow, OutboxRow, StatementRow};
use billpay_store::{AnyConnection, StoreError, queries};
use jiff::civil::Date;

use crate::accounts::account_tz as tz_of;
use crate::jobs::{JobError, job, store_err as store};
use crate::{Billpay, ServiceError};

pub const JOB_LATE_FEE: &str = "collections.late_fee";
pub const JOB_DISCONNECT_NOTICE: &str = "collections.disconnect_notice";
pub const JOB_SUSPEND: &str = "collections.suspend";
pub const JOB_RESTORE: &str = "collections.restore";
pub const JOB_INSTALLMENT: &str = "arrangement.installment_due";
pub const JOB_WEBHOOK: &str = "webhook.deliver";

/// The biller's collections rules; `None` turns a step off.
#[derive(Clone, Debug)]
pub struct CollectionsConfig {
    pub late_fee: Option<LateFeePolicy>,
    pub suspension: Option<SuspensionPolicy>,
    pub arrangements: ArrangementRules,
    /// No suspension on weekends, US federal holidays and these extra days.
    pub calendar: BusinessCalendar,
    /// Hardship programs an agent can enroll an account in (fees and suspension pause while
    /// enrolled); pledges from assistance agencies are posted as payments.
    pub hardship_programs: Vec<String>,
}

impl Default for CollectionsConfig {
    fn default() -> Self {
        let usd = billpay_domain::Currency::USD;
        CollectionsConfig {
            late_fee: None,
            suspension: None,
            arrangements: ArrangementRules {
                minimum_past_due: Money::new(1_000, usd),
                max_installments: 6,
                max_extension_days: 30,
                max_broken_last_12_months: 1,
                grace_days: 3,
            },
            calendar: BusinessCalendar::us_federal(2024..=2045),
            hardship_programs: Vec::new(),
        }
    }
}

fn currency_of(account: &AccountRow) -> billpay_domain::Currency {
    billpay_domain::Currency::parse(&account.currency).unwrap_or(billpay_domain::Currency::USD)
}

/// An event for the biller's systems, and one delivery job per webhook endpoint.
pub(crate) async fn emit_in(
    c: &mut AnyConnection,
    b: &Billpay,
    event: EventRow,
) -> Result<(), StoreError> {
    q::insert_event(c, &event).await?;
    enqueue_deliveries(c, b, &event).await
}

/// One delivery job per active webhook endpoint for `event` (keyed by event and endpoint, so
/// never two).
pub(crate) async fn enqueue_deliveries(
    c: &mut AnyConnection,
    b: &Billpay,
    event: &EventRow,
) -> Result<(), StoreError> {
    for endpoint in q::webhook_endpoints(c).await? {
        let j = job(
            b,
            JOB_WEBHOOK,
            format!("webhook:{}:{}", event.id, endpoint.id),
            serde_json::json!({"event_id": event.id, "endpoint_id": endpoint.id}),
            event.created_at,
        );
        jq::enqueue(c, &j).await?;
    }
    Ok(())
}

/// Tells the customer, by email, if the account has an address.
pub(crate) async fn notify(
    c: &mut AnyConnection,
    id: String,
    account: &AccountRow,
    kind: &str,
    dedupe_key: String,
    payload: serde_json::Value,
    now: i64,
) -> Result<(), StoreError> {
    if let Some(email) = &account.email {
        queries::insert_outbox(
            c,
            &OutboxRow {
                id,
                kind: kind.into(),
                dedupe_key,
                recipient: email.clone(),
                payload_json: payload.to_string(),
                created_at: now,
                sent_at: None,
                attempts: 0,
            },
        )
        .await?;
    }
    Ok(())
}

impl Billpay {
    fn collections(&self) -> CollectionsConfig {
        self.config().collections.clone()
    }

    fn at_run_time(&self, account: &AccountRow, d: Date) -> i64 {
        local_instant(d, self.config().autopay.run_time, &tz_of(account)).as_microsecond()
    }

    /// The collections jobs a new statement schedules, for `create_statement`'s transaction.
    pub(crate) fn collections_jobs_for(
        &self,
        account: &AccountRow,
        statement: &StatementRow,
    ) -> Vec<JobRow> {
        let Ok(due) = statement.due_date.parse::<Date>() else {
            return Vec::new();
        };
        let payload = serde_json::json!({"account_id": account.id, "statement_id": statement.id});
        let mut jobs = Vec::new();
        if let Some(policy) = &self.collections().late_fee {
            jobs.push(job(
                self,
                JOB_LATE_FEE,
                format!("late-fee:{}", statement.id),
                payload.clone(),
                self.at_run_time(account, late_fee_date(due, policy.grace_days)),
            ));
        }
        if let Some(policy) = &self.collections().suspension {
            let suspend = suspension_date(due, policy, &self.collections().calendar);
            jobs.push(job(
                self,
                JOB_DISCONNECT_NOTICE,
                format!("disconnect-notice:{}", statement.id),
                payload.clone(),
                self.at_run_time(account, disconnect_notice_date(suspend, policy)),
            ));
            let mut p = payload.clone();
            p["suspend_on"] = serde_json::json!(suspend.to_string());
            jobs.push(job(
                self,
                JOB_SUSPEND,
                format!("suspend:{}", statement.id),
                p,
                self.at_run_time(account, suspend),
            ));
        }
        jobs
    }

    /// What is still unpaid of a statement now (0 when paid).
    async fn unpaid(
        &self,
        account: &AccountRow,
        statement: &StatementRow,
    ) -> Result<Money, JobError> {
        Ok(match self.statement_due(account, statement, None).await? {
            AutopayAmount::Charge(m) => m,
            _ => Money::zero(currency_of(account)),
        })
    }

    async fn collections_context(
        &self,
        payload: &serde_json::Value,
    ) -> Result<(AccountRow, StatementRow), JobError> {
        let account_id = payload["account_id"].as_str().unwrap_or_default();
        let statement_id = payload["statement_id"].as_str().unwrap_or_default();
        let mut c = self.store.read_conn().await.map_err(store)?;
        let account = queries::account_by_id(&mut c, account_id)
            .await
            .map_err(store)?
            .ok_or_else(|| JobError::Fatal(format!("no account {account_id}")))?;
        let statement = jq::statement_by_id(&mut c, statement_id)
            .await
            .map_err(store)?
            .ok_or_else(|| JobError::Fatal(format!("no statement {statement_id}")))?;
        Ok((account, statement))
    }

    /// Why collections pause for this account today, if they do: a kept arrangement pauses
    /// everything; a hardship hold pauses fees and suspension; a medical or weather hold only
    /// suspension (`fees` asks about fees).
    async fn paused(
        &self,
        account: &AccountRow,
        today: Date,
        fees: bool,
    ) -> Result<Option<String>, JobError> {
        let mut c = self.store.read_conn().await.map_err(store)?;
        if let Some(a) = q::active_arrangement(&mut c, &account.id)
            .await
            .map_err(store)?
        {
            return Ok(Some(format!("payment arrangement {}", a.id)));
        }
        let holds = q::holds_of(&mut c, &account.id).await.map_err(store)?;
        let today_s = today.to_string();
        Ok(holds
            .iter()
            .filter(|h| h.until_date >= today_s && (!fees || h.kind == "hardship"))
            .max_by(|a, b| a.until_date.cmp(&b.until_date))
            .map(|h| format!("{} hold until {}", h.kind, h.until_date)))
    }

    pub(crate) async fn run_late_fee(&self, payload: &serde_json::Value) -> Result<(), JobError> {
        let Some(policy) = self.collections().late_fee else {
            return Ok(());
        };
        let (account, statement) = self.collections_context(payload).await?;
        let today = local_date(self.clock.now(), &tz_of(&account));
        if self.paused(&account, today, true).await?.is_some() {
            return Ok(());
        }
        let unpaid = self.unpaid(&account, &statement).await?;
        let fee = late_fee(&policy, unpaid).map_err(|e| JobError::Fatal(e.to_string()))?;
        if !fee.is_positive() {
            return Ok(());
        }
        let number = billpay_domain::AccountNumber::parse(&account.account_number)
            .map_err(|e| JobError::Fatal(e.to_string()))?;
        let entry = JournalEntry::fee(&number, fee).map_err(|e| JobError::Fatal(e.to_string()))?;
        let now = self.clock.now_micros();
        let charge_id = self.new_id("chg");
        let journal = JournalRow {
            id: self.new_id("je"),
            kind: EntryKind::Fee.as_str().into(),
            source_type: "charge".into(),
            source_id: charge_id.clone(),
            account_id: account.id.clone(),
            currency: account.currency.clone(),
            created_at: now,
        };
        let charge = ChargeRow {
            id: charge_id,
            account_id: account.id.clone(),
            kind: "late_fee".into(),
            source_id: statement.id.clone(),
            amount: fee.minor_units(),
            currency: account.currency.clone(),
            description: format!(
                "Late fee: {unpaid} of the bill due {} unpaid",
                statement.due_date
            ),
            journal_id: journal.id.clone(),
            created_at: now,
        };
        let postings = postings(&entry);
        let msg = self.new_id("msg");
        self.store
            .write(move |c| {
                Box::pin(async move {
                    if billpay_store::ach::insert_charge(c, &charge).await? {
                        queries::insert_journal(c, &journal, &postings).await?;
                        notify(c, msg, &account, "email.past_due", format!("past-due:{}", statement.id),
                            serde_json::json!({"unpaid": unpaid.format(), "late_fee": fee.format(), "due_date": statement.due_date,
                                "message": "Your bill is past due. Pay now, or ask us about a payment arrangement."}), now).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .map_err(store)?;
        Ok(())
    }

    pub(crate) async fn run_disconnect_notice(
        &self,
        payload: &serde_json::Value,
    ) -> Result<(), JobError> {
        let Some(policy) = self.collections().suspension else {
            return Ok(());
        };
        let (account, statement) = self.collections_context(payload).await?;
        let today = local_date(self.clock.now(), &tz_of(&account));
        if account.service_status == "suspended"
            || self.paused(&account, today, false).await?.is_some()
        {
            return Ok(());
        }
        let unpaid = self.unpaid(&account, &statement).await?;
        if !suspension_applies(&policy, unpaid).map_err(|e| JobError::Fatal(e.to_string()))? {
            return Ok(());
        }
        let due: Date = statement
            .due_date
            .parse()
            .map_err(|_| JobError::Fatal("bad due date".into()))?;
        let suspend = suspension_date(due, &policy, &self.collections().calendar);
        let now = self.clock.now_micros();
        let msg = self.new_id("msg");
        self.store
            .write(move |c| {
                Box::pin(async move {
                    notify(c, msg, &account, "email.disconnect_notice", format!("disconnect-notice:{}", statement.id),
                        serde_json::json!({"unpaid": unpaid.format(), "suspension_date": suspend.to_string(),
                            "message": format!("Service will be suspended on {suspend} unless {unpaid} is paid. Call us about a payment arrangement or assistance programs.")}), now).await
                })
            })
            .await
            .map_err(store)?;
        Ok(())
    }

    /// Queues the suspension check again for `day` (after a hold, or on a business day).
    async fn suspend_later(
        &self,
        account: &AccountRow,
        payload: &serde_json::Value,
        key: String,
        day: Date,
    ) -> Result<(), JobError> {
        let mut p = payload.clone();
        p["suspend_on"] = serde_json::json!(day.to_string());
        let next = job(self, JOB_SUSPEND, key, p, self.at_run_time(account, day));
        self.store
            .write(move |c| Box::pin(async move { jq::enqueue(c, &next).await }))
            .await
            .map_err(store)?;
        Ok(())
    }

    pub(crate) async fn run_suspend(
        &self,
        j: &JobRow,
        payload: &serde_json::Value,
    ) -> Result<(), JobError> {
        let Some(policy) = self.collections().suspension else {
            return Ok(());
        };
        let (account, statement) = self.collections_context(payload).await?;
        if account.service_status == "suspended" {
            return Ok(());
        }
        let today = local_date(self.clock.now(), &tz_of(&account));
        let unpaid = self.unpaid(&account, &statement).await?;
        if !suspension_applies(&policy, unpaid).map_err(|e| JobError::Fatal(e.to_string()))? {
            return Ok(());
        }
        if let Some(why) = self.paused(&account, today, false).await? {
            // A kept arrangement stops collections (breaking it schedules them again); a hold
            // moves the suspension past its end.
            let hold_end = {
                let mut c = self.store.read_conn().await.map_err(store)?;
                q::hold_until(&mut c, &account.id, &today.to_string())
                    .await
                    .map_err(store)?
            };
            if let Some(until) = hold_end.and_then(|u| u.parse::<Date>().ok()) {
                let after = self
                    .collections()
                    .calendar
                    .next_business_day_on_or_after(until.tomorrow().unwrap_or(until));
                self.suspend_later(
                    &account,
                    payload,
                    format!("suspend:{}:after:{after}", statement.id),
                    after,
                )
                .await?;
            }
            tracing::info!(account = %account.id, %why, "suspension paused");
            return Ok(());
        }
        if !may_suspend_on(today, &self.collections().calendar, None) {
            let next_day = self
                .collections()
                .calendar
                .next_business_day_on_or_after(today);
            self.suspend_later(
                &account,
                payload,
                format!("{}:on:{next_day}", j.business_key),
                next_day,
            )
            .await?;
            return Ok(());
        }
        let now = self.clock.now_micros();
        let event = EventRow {
            id: self.new_id("evt"),
            account_id: account.id.clone(),
            kind: "service.suspended".into(),
            payload: serde_json::json!({"account_number": account.account_number, "statement_id": statement.id,
                "past_due": unpaid.minor_units(), "currency": account.currency}).to_string(),
            created_at: now,
        };
        let msg = self.new_id("msg");
        let this = self.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    if q::set_service_status(c, &account.id, "active", "suspended", now).await? {
                        emit_in(c, &this, event).await?;
                        notify(c, msg, &account, "email.service_suspended", format!("suspended:{}", statement.id),
                            serde_json::json!({"unpaid": unpaid.format(), "message": format!("Service is suspended because {unpaid} is past due. It is restored as soon as the past-due amount is paid.")}), now).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .map_err(store)?;
        Ok(())
    }

    /// Past due now: the balance less what is billed but not yet due.
    async fn past_due_total(&self, account: &AccountRow) -> Result<i64, JobError> {
        let today = local_date(self.clock.now(), &tz_of(account)).to_string();
        let mut c = self.store.read_conn().await.map_err(store)?;
        let owed = jq::payable_balance(
            &mut c,
            &account.id,
            &format!("ar:{}", account.account_number),
        )
        .await
        .map_err(store)?;
        let not_yet_due: i64 = queries::list_statements(&mut c, &account.id)
            .await
            .map_err(store)?
            .iter()
            .filter(|s| s.due_date >= today)
            .map(|s| s.amount_due)
            .sum();
        Ok((owed - not_yet_due).max(0))
    }

    pub(crate) async fn run_restore(&self, payload: &serde_json::Value) -> Result<(), JobError> {
        let account_id = payload["account_id"].as_str().unwrap_or_default();
        let account = {
            let mut c = self.store.read_conn().await.map_err(store)?;
            queries::account_by_id(&mut c, account_id)
                .await
                .map_err(store)?
                .ok_or_else(|| JobError::Fatal(format!("no account {account_id}")))?
        };
        if account.service_status != "suspended" || self.past_due_total(&account).await? > 0 {
            return Ok(());
        }
        let now = self.clock.now_micros();
        let event = EventRow {
            id: self.new_id("evt"),
            account_id: account.id.clone(),
            kind: "service.restored".into(),
            payload: serde_json::json!({"account_number": account.account_number}).to_string(),
            created_at: now,
        };
        let msg = self.new_id("msg");
        let this = self.clone();
        let key = format!(
            "restored:{}",
            payload["payment_id"].as_str().unwrap_or_default()
        );
        self.store
            .write(move |c| {
                Box::pin(async move {
                    if q::set_service_status(c, &account.id, "suspended", "active", now).await? {
                        emit_in(c, &this, event).await?;
                        notify(c, msg, &account, "email.service_restored", key,
                            serde_json::json!({"message": "Thank you for your payment. Service is being restored."}), now).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .map_err(store)?;
        Ok(())
    }

    /// Waives a late fee (a supervisor's decision, with the reason recorded): a credit for the
    /// same amount, once.
    pub async fn waive_charge(
        &self,
        charge_id: &str,
        supervisor: &str,
        reason: &str,
    ) -> Result<ChargeRow, ServiceError> {
        if reason.trim().is_empty() || supervisor.trim().is_empty() {
            return Err(ServiceError::invalid(
                "reason",
                "a waiver needs the supervisor and the reason",
            ));
        }
        let (fee, account) = {
            let mut c = self.store.read_conn().await?;
            let fee = q::charge(&mut c, charge_id)
                .await?
                .ok_or(ServiceError::NotFound { what: "charge" })?;
            let account = queries::account_by_id(&mut c, &fee.account_id)
                .await?
                .ok_or(ServiceError::NotFound { what: "account" })?;
            (fee, account)
        };
        if fee.kind != "late_fee" && fee.kind != "returned_payment_fee" {
            return Err(ServiceError::invalid("charge", "only fees can be waived"));
        }
        let currency = currency_of(&account);
        let amount = Money::new(fee.amount, currency);
        let number = billpay_domain::AccountNumber::parse(&account.account_number)
            .map_err(|e| ServiceError::invalid("account", e.to_string()))?;
        let entry = JournalEntry::new(
            EntryKind::Adjustment,
            vec![
                Posting::new(billpay_domain::LEDGER_FEES, amount),
                Posting::new(
                    billpay_domain::receivable_account(&number),
                    amount
                        .checked_neg()
                        .map_err(|e| ServiceError::invalid("amount", e.to_string()))?,
                ),
            ],
        )
        .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
        let now = self.clock.now_micros();
        let waiver_id = self.new_id("chg");
        let journal = JournalRow {
            id: self.new_id("je"),
            kind: EntryKind::Adjustment.as_str().into(),
            source_type: "charge".into(),
            source_id: waiver_id.clone(),
            account_id: account.id.clone(),
            currency: account.currency.clone(),
            created_at: now,
        };
        let waiver = ChargeRow {
            id: waiver_id,
            account_id: account.id.clone(),
            kind: "waiver".into(),
            source_id: fee.id.clone(),
            amount: -fee.amount,
            currency: account.currency.clone(),
            description: format!("Waived by {}: {}", supervisor.trim(), reason.trim()),
            journal_id: journal.id.clone(),
            created_at: now,
        };
        let postings = postings(&entry);
        let w = waiver.clone();
        let inserted = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if !billpay_store::ach::insert_charge(c, &w).await? {
                        return Ok(false);
                    }
                    queries::insert_journal(c, &journal, &postings).await?;
                    Ok::<_, StoreError>(true)
                })
            })
            .await?;
        if !inserted {
            return Err(ServiceError::Conflict {
                code: "already_waived",
                message: "this fee was already waived".into(),
            });
        }
        Ok(waiver)
    }

    pub async fn charges(
        &self,
        number: &billpay_domain::AccountNumber,
    ) -> Result<Vec<ChargeRow>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let account = queries::account_by_number(&mut c, number.as_str())
            .await?
            .ok_or(ServiceError::NotFound { what: "account" })?;
        Ok(billpay_store::ach::charges_of_account(&mut c, &account.id).await?)
    }

    /// A medical, weather or hardship hold: no suspension through `until`.
    pub async fn place_hold(
        &self,
        number: &billpay_domain::AccountNumber,
        kind: &str,
        until: Date,
        reason: &str,
        by: &str,
    ) -> Result<HoldRow, ServiceError> {
        if !matches!(kind, "medical" | "weather" | "hardship") {
            return Err(ServiceError::invalid(
                "kind",
                "kind must be medical, weather or hardship",
            ));
        }
        if reason.trim().is_empty() {
            return Err(ServiceError::invalid(
                "reason",
                "say why the account is on hold",
            ));
        }
        let account = self.account_row(number).await?;
        let today = local_date(self.clock.now(), &tz_of(&account));
        if until < today
            || until
                > today
                    .checked_add(jiff::Span::new().days(366))
                    .unwrap_or(today)
        {
            return Err(ServiceError::invalid(
                "until",
                "a hold runs from today to at most a year from now",
            ));
        }
        let row = HoldRow {
            id: self.new_id("hold"),
            account_id: account.id,
            kind: kind.into(),
            until_date: until.to_string(),
            reason: reason.trim().into(),
            created_by: by.into(),
            created_at: self.clock.now_micros(),
        };
        let r = row.clone();
        self.store
            .write(move |c| Box::pin(async move { q::insert_hold(c, &r).await }))
            .await?;
        Ok(row)
    }

    /// Enrolls an account in one of the biller's hardship programs through `until`: no late
    /// fees and no suspension while enrolled.
    pub async fn enroll_hardship(
        &self,
        number: &billpay_domain::AccountNumber,
        program: &str,
        until: Date,
        by: &str,
    ) -> Result<HoldRow, ServiceError> {
        if !self
            .collections()
            .hardship_programs
            .iter()
            .any(|p| p == program)
        {
            return Err(ServiceError::invalid(
                "program",
                format!(
                    "no hardship program \"{program}\"; the programs are: {}",
                    self.collections().hardship_programs.join(", ")
                ),
            ));
        }
        self.place_hold(
            number,
            "hardship",
            until,
            &format!("hardship program: {program}"),
            by,
        )
        .await
    }

    /// Sets up a payment arrangement within the biller's rules. While it is kept, late fees and
    /// suspension pause; a missed installment breaks it after the grace period.
    pub async fn create_arrangement(
        &self,
        number: &billpay_domain::AccountNumber,
        kind: ArrangementKind,
        by: &str,
    ) -> Result<Arrangement, ServiceError> {
        let account = self.account_row(number).await?;
        let rules = self.collections().arrangements;
        let today = local_date(self.clock.now(), &tz_of(&account));
        let past_due = Money::new(
            self.past_due_total(&account).await.map_err(job_err)?,
            currency_of(&account),
        );
        let broken = {
            let mut c = self.store.read_conn().await?;
            if q::active_arrangement(&mut c, &account.id).await?.is_some() {
                return Err(ServiceError::Conflict {
                    code: "arrangement_exists",
                    message: "this account already has a payment arrangement".into(),
                });
            }
            let year_ago = self.clock.now().as_microsecond() - 365 * 86_400_000_000;
            q::broken_since(&mut c, &account.id, year_ago).await?
        };
        check_eligibility(
            &rules,
            past_due,
            u32::try_from(broken).unwrap_or(u32::MAX),
            today,
            &kind,
        )
        .map_err(|e| ServiceError::invalid("arrangement", e.to_string()))?;
        let id = self.new_id("arr");
        let plan: Vec<(Date, Money)> = match &kind {
            ArrangementKind::Extension { pay_by } => vec![(*pay_by, past_due)],
            ArrangementKind::Installments {
                count,
                first,
                frequency,
            } => installments(past_due, *count, *first, *frequency)
                .map_err(|e| ServiceError::invalid("arrangement", e.to_string()))?,
        };
        let now = self.clock.now_micros();
        let row = ArrangementRow {
            id: id.clone(),
            account_id: account.id.clone(),
            kind: match kind {
                ArrangementKind::Extension { .. } => "extension",
                ArrangementKind::Installments { .. } => "installments",
            }
            .into(),
            past_due: past_due.minor_units(),
            currency: account.currency.clone(),
            status: "active".into(),
            created_by: by.into(),
            created_at: now,
            updated_at: now,
        };
        let rows: Vec<InstallmentRow> = plan
            .iter()
            .enumerate()
            .map(|(i, (d, m))| InstallmentRow {
                arrangement_id: id.clone(),
                seq: i as i64,
                due_date: d.to_string(),
                amount: m.minor_units(),
            })
            .collect();
        // One check per installment, after its grace period.
        let checks: Vec<JobRow> = plan
            .iter()
            .enumerate()
            .map(|(i, (d, _))| {
                let check_on = d
                    .checked_add(jiff::Span::new().days(i64::from(rules.grace_days) + 1))
                    .unwrap_or(*d);
                job(
                    self,
                    JOB_INSTALLMENT,
                    format!("installment:{id}:{i}"),
                    serde_json::json!({"arrangement_id": id, "seq": i}),
                    self.at_run_time(&account, check_on),
                )
            })
            .collect();
        let (r, ins) = (row.clone(), rows.clone());
        self.store
            .write(move |c| {
                Box::pin(async move {
                    q::insert_arrangement(c, &r, &ins).await?;
                    for j in &checks {
                        jq::enqueue(c, j).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await?;
        Ok(Arrangement {
            row,
            installments: rows,
        })
    }

    pub(crate) async fn run_installment_check(
        &self,
        payload: &serde_json::Value,
    ) -> Result<(), JobError> {
        let id = payload["arrangement_id"].as_str().unwrap_or_default();
        let seq = payload["seq"].as_i64().unwrap_or(0);
        let (arr, items, account) = {
            let mut c = self.store.read_conn().await.map_err(store)?;
            let arr = q::arrangement(&mut c, id)
                .await
                .map_err(store)?
                .ok_or_else(|| JobError::Fatal(format!("no arrangement {id}")))?;
            let items = q::installments_of(&mut c, id).await.map_err(store)?;
            let account = queries::account_by_id(&mut c, &arr.account_id)
                .await
                .map_err(store)?
                .ok_or_else(|| JobError::Fatal("no account".into()))?;
            (arr, items, account)
        };
        if arr.status != "active" {
            return Ok(());
        }
        let currency = currency_of(&account);
        // Paid toward the plan so far, against what was due by this installment.
        let paid = {
            let mut c = self.store.read_conn().await.map_err(store)?;
            jq::paid_since(&mut c, &account.id, arr.created_at)
                .await
                .map_err(store)?
        };
        let due_by: i64 = items
            .iter()
            .filter(|i| i.seq <= seq)
            .map(|i| i.amount)
            .sum();
        let this_one = items
            .iter()
            .find(|i| i.seq == seq)
            .ok_or_else(|| JobError::Fatal("no such installment".into()))?;
        let due: Date = this_one
            .due_date
            .parse()
            .map_err(|_| JobError::Fatal("bad date".into()))?;
        let toward = Money::new((paid - (due_by - this_one.amount)).max(0), currency);
        let today = local_date(self.clock.now(), &tz_of(&account));
        let missed = installment_missed(
            due,
            self.collections().arrangements.grace_days,
            today,
            toward,
            Money::new(this_one.amount, currency),
        )
        .map_err(|e| JobError::Fatal(e.to_string()))?;
        let last = items.last().map(|i| i.seq) == Some(seq);
        let now = self.clock.now_micros();
        let msg = self.new_id("msg");
        let resume: Vec<JobRow> = if missed {
            // Collections resume: a suspension check on the next business day.
            let day = self
                .collections()
                .calendar
                .next_business_day_on_or_after(today);
            let statement = {
                let mut c = self.store.read_conn().await.map_err(store)?;
                queries::latest_statement(&mut c, &account.id)
                    .await
                    .map_err(store)?
            };
            statement.map(|s| {
                let p = serde_json::json!({"account_id": account.id, "statement_id": s.id, "suspend_on": day.to_string()});
                vec![job(self, JOB_SUSPEND, format!("suspend:{}:broken:{}", s.id, arr.id), p, self.at_run_time(&account, day))]
            }).unwrap_or_default()
        } else {
            Vec::new()
        };
        self.store
            .write(move |c| {
                Box::pin(async move {
                    if missed {
                        if q::set_arrangement_status(c, &arr.id, "active", "broken", now).await? {
                            for j in &resume {
                                jq::enqueue(c, j).await?;
                            }
                            notify(c, msg, &account, "email.arrangement_broken", format!("broken:{}", arr.id),
                                serde_json::json!({"message": format!("The installment due {due} was not paid, so your payment arrangement has ended and collections resume.")}), now).await?;
                        }
                    } else if last {
                        q::set_arrangement_status(c, &arr.id, "active", "kept", now).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .map_err(store)?;
        Ok(())
    }

    /// Account events after `after` (an event id, or "" for the first), for the biller's systems.
    pub async fn events_after(
        &self,
        after: &str,
        limit: i64,
    ) -> Result<Vec<EventRow>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::events_after(&mut c, after, limit.clamp(1, 500)).await?)
    }
}

fn job_err(e: JobError) -> ServiceError {
    match e {
        JobError::Retry(m) | JobError::Fatal(m) => ServiceError::Store(StoreError::Internal(m)),
    }
}

fn postings(entry: &JournalEntry) -> Vec<(String, i64)> {
    entry
        .postings()
        .iter()
        .map(|p| (p.ledger_account.clone(), p.amount.minor_units()))
        .collect()
}

/// A payment arrangement and its installments.
#[derive(Clone, Debug)]
pub struct Arrangement {
    pub row: ArrangementRow,
    pub installments: Vec<InstallmentRow>,
}

/// The restoration a payment queues for a suspended account, for the payment's transaction.
pub(crate) fn restore_job(b: &Billpay, account_id: &str, payment_id: &str, now: i64) -> JobRow {
    job(
        b,
        JOB_RESTORE,
        format!("restore:{account_id}:{payment_id}"),
        serde_json::json!({"account_id": account_id, "payment_id": payment_id}),
        now,
    )
}
