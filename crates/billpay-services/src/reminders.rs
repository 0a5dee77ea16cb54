//! Bill reminders: bill ready, due soon, past due — by email and text message, only over a
//! channel the customer consented to (TCPA), and never in quiet hours in the customer's time
//! zone (by default before 08:00 or from 21:00 local: `[reminders]`); a reminder due then waits for the morning.
//!
//! A statement schedules its three reminders in the transaction that records it. Each looks
//! again when it runs: a bill already paid gets no "due soon" or "past due" reminder, and an
//! account on AutoPay hears that AutoPay will pay.

use billpay_domain::{AutopayAmount, local_date, local_instant};
use billpay_store::collections::{self as q, ConsentRow};
use billpay_store::jobs::{self as jq, JobRow};
use billpay_store::rows::{AccountRow, OutboxRow, StatementRow};
use billpay_store::{StoreError, queries};
use jiff::civil::{Date, Time};

use crate::accounts::account_tz as tz_of;
use crate::jobs::{JobError, job, store_err as store};
use crate::{Billpay, ServiceError};

pub const JOB_REMINDER: &str = "reminder.send";

/// When reminders go out, in the customer's time zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReminderConfig {
    /// Local time reminders are scheduled for.
    pub send_at: Time,
    /// Days before the due date of the "due soon" reminder.
    pub due_soon_days: i64,
    /// Quiet hours: no reminder from `quiet_start` until `quiet_end` (over midnight). A
    /// reminder due then waits for `quiet_end`. The TCPA allows 08:00 to 21:00 at most.
    pub quiet_start: Time,
    pub quiet_end: Time,
}

impl Default for ReminderConfig {
    fn default() -> Self {
        ReminderConfig {
            send_at: Time::constant(10, 0, 0, 0),
            due_soon_days: 3,
            quiet_start: Time::constant(21, 0, 0, 0),
            quiet_end: Time::constant(8, 0, 0, 0),
        }
    }
}

impl ReminderConfig {
    /// Checks the times: quiet hours run over midnight and cover at least 21:00 to 08:00, and
    /// reminders are sent outside them. The error names the setting.
    pub fn check(&self) -> Result<(), String> {
        if self.quiet_start > Time::constant(21, 0, 0, 0)
            || self.quiet_start < Time::constant(12, 0, 0, 0)
        {
            return Err("[reminders] quiet_start must be from 12:00 to 21:00 (the TCPA allows no reminders from 21:00)".into());
        }
        if self.quiet_end < Time::constant(8, 0, 0, 0)
            || self.quiet_end >= Time::constant(12, 0, 0, 0)
        {
            return Err("[reminders] quiet_end must be from 08:00 to 11:59 (the TCPA allows no reminders before 08:00)".into());
        }
        if self.quiet(self.send_at) {
            return Err(
                "[reminders] send_at must be outside quiet hours (quiet_start to quiet_end)".into(),
            );
        }
        if !(1..=14).contains(&self.due_soon_days) {
            return Err("[reminders] due_soon_days must be 1 to 14".into());
        }
        Ok(())
    }

    /// Whether `t` is within quiet hours.
    pub fn quiet(&self, t: Time) -> bool {
        t < self.quiet_end || t >= self.quiet_start
    }
}

impl Billpay {
    /// The reminder jobs of a new statement, for `create_statement`'s transaction.
    pub(crate) fn reminder_jobs_for(
        &self,
        account: &AccountRow,
        statement: &StatementRow,
    ) -> Vec<JobRow> {
        let Ok(due) = statement.due_date.parse::<Date>() else {
            return Vec::new();
        };
        let tz = tz_of(account);
        let rc = self.config().reminders.clone();
        let at = |d: Date| local_instant(d, rc.send_at, &tz).as_microsecond();
        let mk = |what: &str, run_at: i64| {
            job(
                self,
                JOB_REMINDER,
                format!("reminder:{what}:{}", statement.id),
                serde_json::json!({"account_id": account.id, "statement_id": statement.id, "what": what}),
                run_at,
            )
        };
        let soon = due
            .checked_sub(jiff::Span::new().days(rc.due_soon_days))
            .unwrap_or(due);
        vec![
            mk("ready", self.clock.now_micros()),
            mk("due_soon", at(soon)),
            mk("past_due", at(due.tomorrow().unwrap_or(due))),
        ]
    }

    /// What the customer agreed to be contacted by.
    pub async fn consents(
        &self,
        number: &billpay_domain::AccountNumber,
    ) -> Result<Vec<ConsentRow>, ServiceError> {
        let account = self.account_row(number).await?;
        let mut c = self.store.read_conn().await?;
        Ok(billpay_store::collections::consents_of(&mut c, &account.id).await?)
    }

    /// The words a customer agrees to (or withdraws) for a channel: shown before they agree,
    /// and stored with the consent.
    pub fn consent_text(&self, channel: &str, granted: bool) -> String {
        match (channel, granted) {
            ("sms", true) => format!(
                "I agree to receive automated text messages about my {} bill at my phone number. Message and data rates may apply. Reply STOP to stop.",
                self.config().biller.name
            ),
            ("email", true) => format!(
                "I agree to receive emails about my {} bill.",
                self.config().biller.name
            ),
            _ => "Consent withdrawn.".to_string(),
        }
    }

    /// Records what the customer agreed to be contacted by.
    pub async fn set_consent(
        &self,
        number: &billpay_domain::AccountNumber,
        channel: &str,
        granted: bool,
        source: &str,
    ) -> Result<ConsentRow, ServiceError> {
        if !matches!(channel, "email" | "sms") {
            return Err(ServiceError::invalid(
                "channel",
                "channel must be email or sms",
            ));
        }
        if source.trim().is_empty() {
            return Err(ServiceError::invalid(
                "source",
                "say where the customer gave or withdrew consent (web, phone, agent...)",
            ));
        }
        let account = self.account_row(number).await?;
        if granted && channel == "sms" && account.phone.is_none() {
            return Err(ServiceError::invalid(
                "channel",
                "the account has no phone number for text messages",
            ));
        }
        let text = self.consent_text(channel, granted);
        let row = ConsentRow {
            account_id: account.id,
            channel: channel.into(),
            status: if granted { "granted" } else { "revoked" }.into(),
            source: source.trim().into(),
            consent_text: text,
            updated_at: self.clock.now_micros(),
        };
        let r = row.clone();
        self.store
            .write(move |c| Box::pin(async move { q::upsert_consent(c, &r).await }))
            .await?;
        Ok(row)
    }

    pub(crate) async fn run_reminder(
        &self,
        j: &JobRow,
        payload: &serde_json::Value,
    ) -> Result<(), JobError> {
        let account_id = payload["account_id"].as_str().unwrap_or_default();
        let statement_id = payload["statement_id"].as_str().unwrap_or_default();
        let what = payload["what"].as_str().unwrap_or_default().to_string();
        let (account, statement, consents, autopay) = {
            let mut c = self.store.read_conn().await.map_err(store)?;
            let account = queries::account_by_id(&mut c, account_id)
                .await
                .map_err(store)?
                .ok_or_else(|| JobError::Fatal(format!("no account {account_id}")))?;
            let statement = jq::statement_by_id(&mut c, statement_id)
                .await
                .map_err(store)?
                .ok_or_else(|| JobError::Fatal(format!("no statement {statement_id}")))?;
            let consents = q::consents_of(&mut c, account_id).await.map_err(store)?;
            let autopay = jq::autopay(&mut c, account_id)
                .await
                .map_err(store)?
                .is_some_and(|a| a.status == "active");
            (account, statement, consents, autopay)
        };
        let channels: Vec<&str> = consents
            .iter()
            .filter(|c| c.status == "granted")
            .map(|c| c.channel.as_str())
            .collect();
        if channels.is_empty() {
            return Ok(());
        }
        // Quiet hours: wait for the morning, in the customer's time zone.
        let tz = tz_of(&account);
        let local = self.clock.now().to_zoned(tz.clone());
        let rc = self.config().reminders.clone();
        if rc.quiet(local.time()) {
            let day = if local.time() >= rc.quiet_start {
                local.date().tomorrow().unwrap_or(local.date())
            } else {
                local.date()
            };
            let later = job(
                self,
                JOB_REMINDER,
                format!("{}:morning:{day}", j.business_key),
                payload.clone(),
                local_instant(day, rc.quiet_end, &tz).as_microsecond(),
            );
            self.store
                .write(move |c| Box::pin(async move { jq::enqueue(c, &later).await }))
                .await
                .map_err(store)?;
            return Ok(());
        }
        let currency = billpay_domain::Currency::parse(&account.currency)
            .map_err(|e| JobError::Fatal(e.to_string()))?;
        let unpaid = match self.statement_due(&account, &statement, None).await? {
            AutopayAmount::Charge(m) => Some(m),
            _ => None,
        };
        let message = match (what.as_str(), unpaid, autopay) {
            ("ready", _, true) => format!(
                "Your {} bill of {} is ready. AutoPay will pay it on time.",
                self.config().biller.name,
                billpay_domain::Money::new(statement.amount_due, currency)
            ),
            ("ready", _, false) => format!(
                "Your {} bill of {} is ready, due {}.",
                self.config().biller.name,
                billpay_domain::Money::new(statement.amount_due, currency),
                statement.due_date
            ),
            ("due_soon", Some(m), false) => {
                format!(
                    "Reminder: {m} is due {}. Pay by phone at {}.",
                    statement.due_date,
                    self.config().biller.support_phone
                )
            }
            ("past_due", Some(m), _) => format!(
                "Your payment of {m} was due {}. Pay now to avoid a late fee, or call {} about a payment arrangement.",
                statement.due_date,
                self.config().biller.support_phone
            ),
            _ => return Ok(()), // paid, or AutoPay will pay
        };
        let today = local_date(self.clock.now(), &tz);
        let now = self.clock.now_micros();
        let mut rows = Vec::new();
        for ch in channels {
            let recipient = match ch {
                "email" => account.email.clone(),
                _ => account.phone.clone(),
            };
            if let Some(recipient) = recipient {
                rows.push(OutboxRow {
                    id: self.new_id("msg"),
                    kind: format!("{ch}.reminder"),
                    dedupe_key: format!("reminder:{what}:{}:{ch}", statement.id),
                    recipient,
                    payload_json: serde_json::json!({"what": what, "message": message, "date": today.to_string()})
                        .to_string(),
                    created_at: now,
                    sent_at: None,
                    attempts: 0,
                });
            }
        }
        self.store
            .write(move |c| {
                Box::pin(async move {
                    for r in &rows {
                        queries::insert_outbox(c, r).await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .await
            .map_err(store)?;
        Ok(())
    }
}
