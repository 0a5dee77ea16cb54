//! Bank debits billpay originates itself, through NACHA files sent to the biller's bank (the
//! ODFI), instead of through a processor's bank rail.
//!
//! [`NachaRail`] is a [`Processor`] for bank debits: "charging" a bank account records an ACH
//! entry (the account number sealed by the vault, the SEC code of the channel and the
//! customer's authorization) and accepts the payment, exactly once per processor key. Cards
//! go to the inner processor. [`Billpay::export_ach`] writes the entries into a NACHA file,
//! each entry in exactly one file even across crashes and repeated runs;
//! [`Billpay::import_ach_returns`] applies the bank's returns (reversing the payment) and
//! notices of change (correcting the saved account), each once. Entries with no return settle
//! `settlement_days` business days after their effective date.
//!
//! WEB debits validate a bank account on first use with a zero-dollar prenote; the first debit
//! is held until the prenote's return window has passed (or sent at once, as configured).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use billpay_ach::nacha::{
    self, AchFile, Batch, Correction, Entry, FileHeader, Outcome, SecCode, TransactionCode,
};
use billpay_domain::{
    BankAccountNumber, BankAccountType, Channel, DeclineCode, EntryKind, JournalEntry, Language,
    Money, PaymentStatus, RoutingNumber, transition,
};
use billpay_store::ach::{self as q, AchEntryRow, AchFileRow, AchReturnItemRow, AchValidationRow};
use billpay_store::rows::{JournalRow, OutboxRow, PaymentView};
use billpay_store::{AnyConnection, Store, StoreError, queries};
use billpay_vault::Sealed;
use sha2::{Digest, Sha256};

use crate::processor::{
    ChargeMethod, ChargeOutcome, ChargeRequest, Lookup, Processor, ProcessorError, RefundOutcome,
    Settlement,
};
use crate::vault::Vault;
use crate::{Billpay, Clock, Payment, Random, ServiceError};

mod export;
mod rail;
mod returns;
mod sandbox_bank;

pub use export::write_durably;
pub use rail::NachaRail;
pub use sandbox_bank::sandbox_bank_returns;

/// How a new bank account is validated before WEB debits from it are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrenotePolicy {
    /// Send a prenote and hold the first debit until its return window has passed.
    Hold,
    /// Send a prenote with the first debit, without holding the debit.
    Send,
    /// No validation (only for billers whose bank validates accounts another way).
    Off,
}

impl PrenotePolicy {
    pub fn parse(s: &str) -> Option<PrenotePolicy> {
        match s {
            "hold" => Some(PrenotePolicy::Hold),
            "send" => Some(PrenotePolicy::Send),
            "off" => Some(PrenotePolicy::Off),
            _ => None,
        }
    }
}

/// What a bank-account validation service said about an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountValidation {
    /// The account exists and accepts debits: no prenote is needed.
    Valid,
    /// It does not: debits are declined with this R-code (e.g. "R03", "R04", "R20").
    Invalid { code: String },
    /// The service cannot tell (or is down): validate with a prenote instead.
    Unknown,
}

/// A bank-account validation service (an account-verification API, or the ODFI's own). NACHA
/// accepts one in place of a prenote for WEB debits. It is asked once per new bank account;
/// `Unknown` falls back to the prenote. Implement it to plug a service in, and pass it to
/// [`Billpay::with_ach_origination_using`].
#[async_trait]
pub trait AccountValidator: Send + Sync + 'static {
    async fn validate(
        &self,
        routing: &RoutingNumber,
        account: &BankAccountNumber,
        account_type: BankAccountType,
    ) -> AccountValidation;
}

/// The biller's ACH origination settings.
#[derive(Clone, Debug)]
pub struct AchConfig {
    /// Originate bank debits in NACHA files (otherwise the processor's bank rail is used).
    pub originate: bool,
    /// The biller's bank (ODFI) routing number: the file's immediate destination.
    pub odfi_routing: String,
    pub odfi_name: String,
    /// The file's immediate origin: 10 characters, usually "1" and the biller's tax id.
    pub origin_id: String,
    pub origin_name: String,
    /// Company name and id in each batch header (as on the customer's bank statement).
    pub company_name: String,
    pub company_id: String,
    /// Entry description on the customer's statement, e.g. "UTIL PYMT".
    pub entry_description: String,
    pub prenote: PrenotePolicy,
    /// Days a prenote may still come back; a held first debit waits this long.
    pub prenote_hold_days: i64,
    /// Business days after the effective date with no return before a debit counts as settled.
    pub settlement_days: i64,
    /// Fee charged to the customer's account when a debit is returned (0 = none).
    pub returned_payment_fee_minor: i64,
    /// Days after settling or returning that an entry's sealed account number is destroyed
    /// (the longest return window, for unauthorized returns, is 60 days).
    pub retain_account_days: i64,
}

impl Default for AchConfig {
    fn default() -> Self {
        AchConfig {
            originate: false,
            odfi_routing: "123456780".into(),
            odfi_name: "DEMO BANK".into(),
            origin_id: "1123456789".into(),
            origin_name: "RIVERBEND UTILITIES".into(),
            company_name: "RIVERBEND UTIL".into(),
            company_id: "1123456789".into(),
            entry_description: "UTIL PYMT".into(),
            prenote: PrenotePolicy::Hold,
            prenote_hold_days: 3,
            settlement_days: 2,
            returned_payment_fee_minor: 0,
            retain_account_days: 70,
        }
    }
}

/// The NACHA SEC code for a debit authorized through `channel`.
pub fn sec_code_for(channel: Channel) -> Option<SecCode> {
    match channel {
        Channel::Phone | Channel::Agent => Some(SecCode::Tel),
        Channel::Web | Channel::Chat | Channel::Api => Some(SecCode::Web),
        Channel::Autopay => Some(SecCode::Ppd),
        Channel::Mail => None,
    }
}

/// R-codes after which the bank account must not be debited again without a new
/// authorization or new account details.
pub fn stops_account(code: &str) -> bool {
    matches!(
        code,
        "R02" | "R03" | "R04" | "R05" | "R07" | "R10" | "R16" | "R20" | "R29"
    )
}

/// The decline code for an R-code; unknown codes read as a generic bank return.
pub fn return_decline(code: &str) -> DeclineCode {
    DeclineCode::parse(code)
        .filter(|d| d.as_str().starts_with('R'))
        .unwrap_or(DeclineCode::AchR06)
}

/// Upper-case ASCII letters, digits and spaces only, at most `max` characters.
fn nacha_text(s: &str, max: usize) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | ' ' | '-' | '.' | '&' | '\'' | ',' | '/' => {
                c.to_ascii_uppercase()
            }
            _ => ' ',
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(max)
        .collect()
}

fn store_err(e: StoreError) -> ProcessorError {
    ProcessorError::Unavailable(format!("the ACH entry store: {e}"))
}

fn sealed_of(row: &AchEntryRow) -> Option<Sealed> {
    Some(Sealed {
        kek_version: u32::try_from(row.kek_version?).ok()?,
        wrapped_key: row.wrapped_key.clone()?,
        ciphertext: row.ciphertext.clone()?,
    })
}

/// Adds `n` business days (Monday to Friday) to `date`.
pub fn add_business_days(date: jiff::civil::Date, n: i64) -> jiff::civil::Date {
    let mut d = date;
    let mut left = n;
    while left > 0 {
        d = d.tomorrow().unwrap_or(d);
        if !matches!(
            d.weekday(),
            jiff::civil::Weekday::Saturday | jiff::civil::Weekday::Sunday
        ) {
            left -= 1;
        }
    }
    d
}

/// One NACHA file written by [`Billpay::export_ach`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedFile {
    pub id: String,
    pub path: PathBuf,
    pub entries: i64,
    pub debit_total: Money,
    pub credit_total: Money,
    pub sha256: String,
    /// Rebuilt after a run that stopped before the file was recorded as written.
    pub recovered: bool,
}

/// What importing a returns file did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReturnsReport {
    pub returns_applied: u64,
    pub corrections_applied: u64,
    pub already_applied: u64,
    /// Items that name no entry billpay sent, with the reason.
    pub unmatched: Vec<String>,
    /// Payments reversed: (payment id, R-code).
    pub payments_returned: Vec<(String, String)>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Billpay {
    fn ach(&self) -> AchConfig {
        self.config().ach.clone()
    }

    fn biller_today(&self) -> (jiff::civil::DateTime, jiff::civil::Date) {
        let tz =
            jiff::tz::TimeZone::get(&self.config().ivr.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let z = self.clock.now().to_zoned(tz);
        (z.datetime(), z.date())
    }

    /// Wraps this app's processor so bank debits are originated in NACHA files, when the
    /// configuration says so.
    pub fn with_ach_origination(self) -> Billpay {
        self.with_ach_origination_using(None)
    }

    /// [`Billpay::with_ach_origination`], asking `validator` about new bank accounts before
    /// sending a prenote.
    pub fn with_ach_origination_using(
        mut self,
        validator: Option<Arc<dyn AccountValidator>>,
    ) -> Billpay {
        if self.config().ach.originate {
            self.processor = Arc::new(NachaRail {
                inner: self.processor.clone(),
                store: self.store.clone(),
                clock: self.clock.clone(),
                random: self.random.clone(),
                vault: self.vault.clone(),
                config: self.config().ach.clone(),
                biller: self.config().biller.clone(),
                timezone: self.config().ivr.timezone.clone(),
                validator,
            });
        }
        self
    }
}

fn postings(entry: &JournalEntry) -> Vec<(String, i64)> {
    entry
        .postings()
        .iter()
        .map(|p| (p.ledger_account.clone(), p.amount.minor_units()))
        .collect()
}

/// A returned-payment fee: the charge and its ledger entry.
pub(crate) struct FeePlan {
    pub charge: q::ChargeRow,
    pub journal: JournalRow,
    pub postings: Vec<(String, i64)>,
}

/// A returned payment's changes, ready to be written.
pub(crate) struct ReturnPlan {
    pub payment_id: String,
    pub account_id: String,
    pub from: PaymentStatus,
    pub kind: billpay_domain::MethodKind,
    pub code: String,
    pub journal: JournalRow,
    pub postings: Vec<(String, i64)>,
    pub fee: Option<FeePlan>,
    pub disable_method: Option<String>,
    pub outbox_id: String,
    pub notice: String,
}

/// Marks a payment returned, reverses its ledger entry, charges the returned-payment fee,
/// stops the saved account when the R-code says so, and tells the customer: all in the
/// caller's transaction. False when the payment was not in a state that can be returned.
pub(crate) async fn apply_return_in(
    c: &mut AnyConnection,
    plan: ReturnPlan,
    now: i64,
) -> Result<bool, ServiceError> {
    if transition(plan.from, PaymentStatus::Returned, plan.kind).is_err() {
        return Ok(false);
    }
    if !queries::update_payment_state(
        c,
        &plan.payment_id,
        plan.from.as_str(),
        PaymentStatus::Returned.as_str(),
        None,
        Some(return_decline(&plan.code).as_str()),
        None,
        now,
    )
    .await?
    {
        return Ok(false);
    }
    let journal = JournalRow {
        created_at: now,
        ..plan.journal
    };
    queries::insert_journal(c, &journal, &plan.postings).await?;
    if let Some(FeePlan {
        charge,
        journal: fee_journal,
        postings: fee_postings,
    }) = plan.fee
    {
        let charge = q::ChargeRow {
            journal_id: fee_journal.id.clone(),
            created_at: now,
            ..charge
        };
        if q::insert_charge(c, &charge).await? {
            let fj = JournalRow {
                created_at: now,
                ..fee_journal
            };
            queries::insert_journal(c, &fj, &fee_postings).await?;
        }
    }
    if let Some(pm) = &plan.disable_method {
        q::disable_method(c, pm, now).await?;
        // AutoPay from a stopped account stops too; the customer re-enrolls with another.
        for e in billpay_store::jobs::autopay_with_method(c, pm).await? {
            billpay_store::jobs::set_autopay_status(c, &e.account_id, "stopped", now).await?;
            billpay_store::jobs::cancel_queued(c, &format!("autopay:{}:", e.account_id), now)
                .await?;
        }
    }
    if let Some(email) = queries::account_by_id(c, &plan.account_id)
        .await?
        .and_then(|a| a.email)
    {
        queries::insert_outbox(
            c,
            &OutboxRow {
                id: plan.outbox_id,
                kind: "email.payment_returned".into(),
                dedupe_key: format!("returned:{}", plan.payment_id),
                recipient: email,
                payload_json: plan.notice,
                created_at: now,
                sent_at: None,
                attempts: 0,
            },
        )
        .await?;
    }
    Ok(true)
}

/// The NACHA SEC code, in words, for receipts and the agent view.
pub fn describe_sec(sec: &str) -> &'static str {
    match sec {
        "TEL" => "authorized by phone (TEL)",
        "WEB" => "authorized online (WEB)",
        "PPD" => "authorized in writing (PPD)",
        _ => "ACH debit",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn business_days_skip_weekends() {
        let fri: jiff::civil::Date = "2026-12-04".parse().unwrap();
        assert_eq!(add_business_days(fri, 1).to_string(), "2026-12-07");
        assert_eq!(add_business_days(fri, 2).to_string(), "2026-12-08");
        let sat: jiff::civil::Date = "2026-12-05".parse().unwrap();
        assert_eq!(add_business_days(sat, 1).to_string(), "2026-12-07");
        assert_eq!(add_business_days(fri, 0), fri);
    }

    #[test]
    fn sec_codes_by_channel() {
        assert_eq!(sec_code_for(Channel::Phone), Some(SecCode::Tel));
        assert_eq!(sec_code_for(Channel::Web), Some(SecCode::Web));
        assert_eq!(sec_code_for(Channel::Chat), Some(SecCode::Web));
        assert_eq!(sec_code_for(Channel::Autopay), Some(SecCode::Ppd));
        assert_eq!(sec_code_for(Channel::Mail), None);
    }

    #[test]
    fn nacha_text_is_clean_ascii() {
        assert_eq!(nacha_text("José  Núñez-Ortiz", 22), "JOS N EZ-ORTIZ");
        assert_eq!(nacha_text("a very long name that goes on", 10).len(), 10);
    }

    #[test]
    fn return_codes_map_to_declines() {
        assert_eq!(return_decline("R03"), DeclineCode::AchR03);
        assert_eq!(return_decline("R10"), DeclineCode::AchR10);
        assert!(stops_account("R02") && stops_account("R07") && !stops_account("R01"));
    }
}
