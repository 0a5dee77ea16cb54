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

/// Bank debits through NACHA files; everything else through `inner`.
pub struct NachaRail {
    pub inner: Arc<dyn Processor>,
    pub store: Store,
    pub clock: Arc<dyn Clock>,
    pub random: Arc<dyn Random>,
    pub vault: Option<Arc<Vault>>,
    pub config: AchConfig,
    pub biller: crate::BillerProfile,
    pub timezone: String,
}

impl NachaRail {
    fn today(&self) -> jiff::civil::Date {
        let tz = jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        self.clock.now().to_zoned(tz).date()
    }

    fn new_id(&self, prefix: &str) -> String {
        crate::clock::new_id(prefix, self.clock.as_ref(), self.random.as_ref())
    }

    fn authorization_text(
        &self,
        sec: SecCode,
        amount: Money,
        account_type: BankAccountType,
        last4: &str,
        holder: &str,
    ) -> String {
        let how = match sec {
            SecCode::Ppd => "a recurring ACH debit, on the terms of your AutoPay enrollment,",
            _ => "a single ACH debit",
        };
        format!(
            "On {}, {} authorized {} to make {} of {} from the {} account ending in {}. \
             To revoke this authorization before the debit is sent, call {}.",
            self.today(),
            if holder.is_empty() {
                "the account holder"
            } else {
                holder
            },
            self.biller.name,
            how,
            amount,
            account_type.as_str(),
            last4,
            self.biller.support_phone
        )
    }

    async fn originate(&self, req: &ChargeRequest) -> Result<ChargeOutcome, ProcessorError> {
        let ChargeMethod::Bank {
            routing,
            account,
            account_type,
            holder_name,
        } = &req.method
        else {
            return Err(ProcessorError::Rejected("not a bank debit".into()));
        };
        {
            let mut c = self.store.read_conn().await.map_err(store_err)?;
            if let Some(existing) = q::entry_by_key(&mut c, &req.key).await.map_err(store_err)? {
                return Ok(entry_outcome(&existing));
            }
        }
        let ctx = &req.context;
        let channel = ctx.channel.ok_or_else(|| {
            ProcessorError::Rejected("a bank debit needs the channel it was authorized on".into())
        })?;
        let sec = sec_code_for(channel).ok_or_else(|| {
            ProcessorError::Rejected(format!("no ACH debit can be authorized by {channel:?}"))
        })?;
        let vault = self.vault.as_ref().ok_or_else(|| {
            ProcessorError::Unavailable(
                "the vault keyring is needed to originate bank debits".into(),
            )
        })?;
        let keyring = vault.keyring();
        let rng = |buf: &mut [u8]| self.random.fill(buf);
        let fingerprint = keyring.fingerprint(
            "ach",
            &format!("{}:{}", routing.as_str(), account.expose_secret()),
        );
        let now = self.clock.now_micros();
        let savings = *account_type == BankAccountType::Savings;
        let holder = nacha_text(holder_name, 22);
        let authorization = ctx.authorization.clone().unwrap_or_else(|| {
            self.authorization_text(
                sec,
                req.amount,
                *account_type,
                &account.last4(),
                holder_name,
            )
        });
        let entry_id = self.new_id("ach");
        let sealed = keyring
            .seal(&entry_id, account.expose_secret().as_bytes(), &rng)
            .map_err(|e| ProcessorError::Unavailable(format!("the vault: {e}")))?;
        let base = AchEntryRow {
            id: entry_id.clone(),
            processor_key: req.key.clone(),
            payment_id: Some(ctx.payment_id.clone()).filter(|s| !s.is_empty()),
            refund_id: None,
            account_id: ctx.account_id.clone(),
            purpose: "debit".into(),
            sec_code: sec.as_str().into(),
            transaction_code: i64::from(TransactionCode::debit(savings, false).code()),
            routing_number: routing.as_str().into(),
            account_type: account_type.as_str().into(),
            account_last4: account.last4(),
            account_fingerprint: fingerprint.clone(),
            kek_version: Some(i64::from(sealed.kek_version)),
            wrapped_key: Some(sealed.wrapped_key),
            ciphertext: Some(sealed.ciphertext),
            individual_name: holder,
            individual_id: nacha_text(&ctx.account_number, 15),
            amount: req.amount.minor_units(),
            currency: req.amount.currency().code().into(),
            channel: channel.as_str().into(),
            authorization_text: authorization,
            authorized_at: now,
            payment_method_id: ctx.payment_method_id.clone(),
            status: "pending".into(),
            hold_until: None,
            prenote_id: None,
            file_id: None,
            trace_number: None,
            effective_date: None,
            return_code: None,
            returned_at: None,
            settled_at: None,
            created_at: now,
            updated_at: now,
        };
        // A prenote for an account seen for the first time, prepared outside the transaction
        // (sealing needs the keyring); used only if the account turns out to be new.
        let prenote = (sec == SecCode::Web && self.config.prenote != PrenotePolicy::Off)
            .then(|| -> Result<AchEntryRow, ProcessorError> {
                let id = self.new_id("ach");
                let sealed = keyring
                    .seal(&id, account.expose_secret().as_bytes(), &rng)
                    .map_err(|e| ProcessorError::Unavailable(format!("the vault: {e}")))?;
                Ok(AchEntryRow {
                    id,
                    processor_key: format!("prenote:{fingerprint}"),
                    payment_id: None,
                    purpose: "prenote".into(),
                    transaction_code: i64::from(TransactionCode::debit(savings, true).code()),
                    kek_version: Some(i64::from(sealed.kek_version)),
                    wrapped_key: Some(sealed.wrapped_key),
                    ciphertext: Some(sealed.ciphertext),
                    amount: 0,
                    payment_method_id: None,
                    ..base.clone()
                })
            })
            .transpose()?;
        let hold_for = self.config.prenote_hold_days * 86_400_000_000;
        let policy = self.config.prenote;
        let outcome = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if let Some(existing) = q::entry_by_key(c, &base.processor_key).await? {
                        return Ok(entry_outcome(&existing));
                    }
                    let mut entry = base;
                    if let Some(prenote) = prenote {
                        match q::validation(c, &entry.account_fingerprint).await? {
                            Some(v) if v.status == "validated" => {}
                            Some(v) if v.status == "failed" => {
                                let code = v.return_code.clone().unwrap_or_else(|| "R03".into());
                                entry.status = "declined".into();
                                entry.return_code = Some(code);
                                entry.kek_version = None;
                                entry.wrapped_key = None;
                                entry.ciphertext = None;
                            }
                            Some(v) => {
                                let pre = match &v.prenote_id {
                                    Some(id) => q::entry_by_id(c, id).await?,
                                    None => None,
                                };
                                let until = pre.as_ref().map(|p| p.created_at + hold_for);
                                match until {
                                    Some(u) if u <= now => {
                                        q::upsert_validation(
                                            c,
                                            &AchValidationRow {
                                                status: "validated".into(),
                                                updated_at: now,
                                                ..v
                                            },
                                        )
                                        .await?;
                                    }
                                    _ if policy == PrenotePolicy::Hold => {
                                        entry.status = "held".into();
                                        entry.hold_until = Some(until.unwrap_or(now + hold_for));
                                        entry.prenote_id = v.prenote_id.clone();
                                    }
                                    _ => {}
                                }
                            }
                            None => {
                                q::insert_entry(c, &prenote).await?;
                                q::upsert_validation(
                                    c,
                                    &AchValidationRow {
                                        account_fingerprint: entry.account_fingerprint.clone(),
                                        status: "pending".into(),
                                        prenote_id: Some(prenote.id.clone()),
                                        return_code: None,
                                        created_at: now,
                                        updated_at: now,
                                    },
                                )
                                .await?;
                                if policy == PrenotePolicy::Hold {
                                    entry.status = "held".into();
                                    entry.hold_until = Some(now + hold_for);
                                    entry.prenote_id = Some(prenote.id.clone());
                                }
                            }
                        }
                    }
                    q::insert_entry(c, &entry).await?;
                    Ok::<_, ServiceError>(entry_outcome(&entry))
                })
            })
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        Ok(outcome)
    }

    /// A credit back to the bank account of a debit (a refund), or the debit canceled if it has
    /// not been sent yet and the whole amount is refunded.
    async fn credit(
        &self,
        key: &str,
        debit_id: &str,
        amount: Option<Money>,
    ) -> Result<RefundOutcome, ProcessorError> {
        let (debit, existing) = {
            let mut c = self.store.read_conn().await.map_err(store_err)?;
            (
                q::entry_by_id(&mut c, debit_id).await.map_err(store_err)?,
                q::entry_by_key(&mut c, key).await.map_err(store_err)?,
            )
        };
        if let Some(e) = existing {
            return Ok(RefundOutcome::Refunded { reference: e.id });
        }
        let debit = debit
            .ok_or_else(|| ProcessorError::Rejected("no ACH entry with this reference".into()))?;
        let amount = amount.map(|a| a.minor_units()).unwrap_or(debit.amount);
        let now = self.clock.now_micros();
        let id = self.new_id("ach");
        let unsent = matches!(debit.status.as_str(), "pending" | "held");
        let (status, sealed) = if unsent && amount == debit.amount {
            ("canceled", None)
        } else {
            let vault = self.vault.as_ref().ok_or_else(|| {
                ProcessorError::Unavailable("the vault keyring is needed for ACH credits".into())
            })?;
            let old = sealed_of(&debit).ok_or_else(|| {
                ProcessorError::Rejected(
                    "the bank account of this payment is no longer on file".into(),
                )
            })?;
            let plain = vault
                .open(&debit.id, &old)
                .map_err(|e| ProcessorError::Unavailable(format!("the vault: {e}")))?;
            let rng = |buf: &mut [u8]| self.random.fill(buf);
            let sealed = vault
                .keyring()
                .seal(&id, &plain, &rng)
                .map_err(|e| ProcessorError::Unavailable(format!("the vault: {e}")))?;
            ("pending", Some(sealed))
        };
        let savings = debit.account_type == "savings";
        let row = AchEntryRow {
            id: id.clone(),
            processor_key: key.into(),
            refund_id: None,
            purpose: "credit".into(),
            transaction_code: i64::from(TransactionCode::credit(savings, false).code()),
            kek_version: sealed.as_ref().map(|s| i64::from(s.kek_version)),
            wrapped_key: sealed.as_ref().map(|s| s.wrapped_key.clone()),
            ciphertext: sealed.map(|s| s.ciphertext),
            amount,
            status: status.into(),
            hold_until: None,
            prenote_id: None,
            file_id: None,
            trace_number: None,
            effective_date: None,
            return_code: None,
            returned_at: None,
            settled_at: None,
            created_at: now,
            updated_at: now,
            ..debit.clone()
        };
        let debit_id = debit.id.clone();
        self.store
            .write(move |c| {
                Box::pin(async move {
                    if status == "canceled"
                        && !q::set_entry_status(c, &debit_id, "pending", "canceled", now).await?
                        && !q::set_entry_status(c, &debit_id, "held", "canceled", now).await?
                    {
                        return Err(ServiceError::Conflict {
                            code: "ach_entry_sent",
                            message: "the debit was sent to the bank meanwhile; try again".into(),
                        });
                    }
                    q::insert_entry(c, &row).await?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await
            .map_err(|e| ProcessorError::Unavailable(e.to_string()))?;
        Ok(RefundOutcome::Refunded { reference: id })
    }
}

fn entry_outcome(e: &AchEntryRow) -> ChargeOutcome {
    match (e.status.as_str(), &e.return_code) {
        ("declined", Some(code)) => ChargeOutcome::Declined {
            code: return_decline(code),
            reference: Some(e.id.clone()),
        },
        _ => ChargeOutcome::Accepted {
            reference: e.id.clone(),
        },
    }
}

fn is_entry_reference(reference: &str) -> bool {
    reference.starts_with("ach_")
}

#[async_trait]
impl Processor for NachaRail {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn charge(&self, req: &ChargeRequest) -> Result<ChargeOutcome, ProcessorError> {
        match req.method {
            ChargeMethod::Bank { .. } => self.originate(req).await,
            ChargeMethod::Card { .. } => self.inner.charge(req).await,
        }
    }

    async fn refund(
        &self,
        key: &str,
        charge_reference: &str,
        amount: Money,
    ) -> Result<RefundOutcome, ProcessorError> {
        if is_entry_reference(charge_reference) {
            return self.credit(key, charge_reference, Some(amount)).await;
        }
        self.inner.refund(key, charge_reference, amount).await
    }

    async fn void(
        &self,
        key: &str,
        charge_reference: &str,
    ) -> Result<RefundOutcome, ProcessorError> {
        if is_entry_reference(charge_reference) {
            return self.credit(key, charge_reference, None).await;
        }
        self.inner.void(key, charge_reference).await
    }

    async fn lookup(&self, key: &str) -> Result<Lookup, ProcessorError> {
        let found = {
            let mut c = self.store.read_conn().await.map_err(store_err)?;
            q::entry_by_key(&mut c, key).await.map_err(store_err)?
        };
        match found {
            Some(e) if e.purpose == "credit" => {
                Ok(Lookup::Refund(RefundOutcome::Refunded { reference: e.id }))
            }
            Some(e) => Ok(Lookup::Charge(entry_outcome(&e))),
            None => self.inner.lookup(key).await,
        }
    }

    async fn settlement(&self, reference: &str) -> Result<Settlement, ProcessorError> {
        if !is_entry_reference(reference) {
            return self.inner.settlement(reference).await;
        }
        let e = {
            let mut c = self.store.read_conn().await.map_err(store_err)?;
            q::entry_by_id(&mut c, reference)
                .await
                .map_err(store_err)?
                .ok_or_else(|| {
                    ProcessorError::Rejected("no ACH entry with this reference".into())
                })?
        };
        match e.status.as_str() {
            "returned" => Ok(Settlement::Returned(return_decline(
                e.return_code.as_deref().unwrap_or("R06"),
            ))),
            "settled" => Ok(Settlement::Settled),
            "exported" => {
                let due = e
                    .effective_date
                    .as_deref()
                    .and_then(|d| d.parse::<jiff::civil::Date>().ok())
                    .map(|d| add_business_days(d, self.config.settlement_days));
                if due.is_some_and(|d| d <= self.today()) {
                    let now = self.clock.now_micros();
                    let id = e.id.clone();
                    self.store
                        .write(move |c| {
                            Box::pin(async move {
                                q::set_entry_status(c, &id, "exported", "settled", now).await
                            })
                        })
                        .await
                        .map_err(store_err)?;
                    Ok(Settlement::Settled)
                } else {
                    Ok(Settlement::Pending)
                }
            }
            _ => Ok(Settlement::Pending),
        }
    }
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
    fn ach(&self) -> &AchConfig {
        &self.config.ach
    }

    fn biller_today(&self) -> (jiff::civil::DateTime, jiff::civil::Date) {
        let tz =
            jiff::tz::TimeZone::get(&self.config.ivr.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        let z = self.clock.now().to_zoned(tz);
        (z.datetime(), z.date())
    }

    /// Wraps this app's processor so bank debits are originated in NACHA files, when the
    /// configuration says so.
    pub fn with_ach_origination(mut self) -> Billpay {
        if self.config.ach.originate {
            self.processor = Arc::new(NachaRail {
                inner: self.processor.clone(),
                store: self.store.clone(),
                clock: self.clock.clone(),
                random: self.random.clone(),
                vault: self.vault.clone(),
                config: self.config.ach.clone(),
                biller: self.config.biller.clone(),
                timezone: self.config.ivr.timezone.clone(),
            });
        }
        self
    }

    /// Writes every entry ready to go into NACHA files in `dir` (one file per run, plus any
    /// file an interrupted run left unfinished, rebuilt identically). Entries are bound to their
    /// file in one transaction before the file is written, so none is ever in two files.
    pub async fn export_ach(&self, dir: &Path) -> Result<Vec<ExportedFile>, ServiceError> {
        let mut out = Vec::new();
        let unfinished = {
            let mut c = self.store.read_conn().await?;
            q::files_building(&mut c).await?
        };
        for f in unfinished {
            out.push(self.write_ach_file(dir, f, true).await?);
        }
        if let Some(f) = self.bind_ready_entries().await? {
            out.push(self.write_ach_file(dir, f, false).await?);
        }
        Ok(out)
    }

    /// Binds ready entries to a new file row; None when nothing is ready.
    async fn bind_ready_entries(&self) -> Result<Option<AchFileRow>, ServiceError> {
        let now = self.clock.now_micros();
        let (local_now, today) = self.biller_today();
        let effective = add_business_days(today, 1).to_string();
        let odfi8: String = self.ach().odfi_routing.chars().take(8).collect();
        let file_id = self.new_id("achf");
        let creation_local = local_now
            .round(jiff::Unit::Minute)
            .unwrap_or(local_now)
            .strftime("%Y-%m-%dT%H:%M")
            .to_string();
        let date_prefix = today.to_string();
        let row = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let ready = q::entries_ready(c, now, 100_000).await?;
                    if ready.is_empty() {
                        return Ok(None);
                    }
                    let n_today = q::files_on(c, &date_prefix).await?;
                    let modifier = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        .get(usize::try_from(n_today).unwrap_or(usize::MAX))
                        .map(|b| char::from(*b))
                        .ok_or_else(|| ServiceError::Conflict {
                            code: "ach_file_limit",
                            message: "36 ACH files were already created today (the NACHA file id \
                                      modifier runs A to Z, then 0 to 9)"
                                .into(),
                        })?;
                    let file = AchFileRow {
                        id: file_id.clone(),
                        file_name: format!("ach-{}-{}.ach", date_prefix.replace('-', ""), modifier),
                        file_id_modifier: modifier.to_string(),
                        created_at: now,
                        creation_local,
                        status: "building".into(),
                        entry_count: 0,
                        debit_total: 0,
                        credit_total: 0,
                        sha256: None,
                        written_at: None,
                    };
                    q::insert_file(c, &file).await?;
                    let first =
                        q::next_sequence(c, &format!("trace:{odfi8}"), ready.len() as i64).await?;
                    let (mut count, mut debits, mut credits) = (0i64, 0i64, 0i64);
                    for (i, e) in ready.iter().enumerate() {
                        let seq = (first + i as i64) % 10_000_000;
                        let trace = format!("{odfi8}{seq:07}");
                        if q::assign_entry(c, &e.id, &file_id, &trace, &effective, now).await? {
                            count += 1;
                            if e.purpose == "credit" {
                                credits += e.amount;
                            } else {
                                debits += e.amount;
                            }
                        }
                    }
                    q::update_file_totals(c, &file_id, count, debits, credits).await?;
                    Ok::<_, ServiceError>(Some(AchFileRow {
                        entry_count: count,
                        debit_total: debits,
                        credit_total: credits,
                        ..file
                    }))
                })
            })
            .await?;
        Ok(row)
    }

    /// Builds the NACHA file of a bound file row from the database, deterministically.
    async fn build_ach_file(&self, f: &AchFileRow) -> Result<AchFile, ServiceError> {
        let entries = {
            let mut c = self.store.read_conn().await?;
            q::entries_in_file(&mut c, &f.id).await?
        };
        let vault = self.vault()?;
        let cfg = self.ach();
        let creation = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", &f.creation_local)
            .map_err(|e| StoreError::Corrupt(format!("ACH file creation time: {e}")))?;
        let mut groups: std::collections::BTreeMap<(String, String), Vec<Entry>> =
            Default::default();
        for e in &entries {
            let sealed = sealed_of(e).ok_or_else(|| {
                StoreError::Corrupt(format!("ACH entry {} has no sealed account number", e.id))
            })?;
            let plain = vault
                .open(&e.id, &sealed)
                .map_err(crate::vault::vault_error)?;
            let account = String::from_utf8(plain.to_vec())
                .map_err(|_| StoreError::Corrupt(format!("ACH entry {} account", e.id)))?;
            let code = u8::try_from(e.transaction_code)
                .ok()
                .and_then(TransactionCode::from_code)
                .ok_or_else(|| StoreError::Corrupt(format!("ACH entry {} code", e.id)))?;
            let sec = e.sec_code.clone();
            groups
                .entry((sec.clone(), e.effective_date.clone().unwrap_or_default()))
                .or_default()
                .push(Entry {
                    transaction_code: code,
                    rdfi_routing: e.routing_number.clone(),
                    account_number: account,
                    amount: e.amount,
                    individual_id: e.individual_id.clone(),
                    individual_name: e.individual_name.clone(),
                    discretionary_data: if sec == "WEB" || sec == "TEL" {
                        "S".into()
                    } else {
                        String::new()
                    },
                    trace_number: e.trace_number.clone().unwrap_or_default(),
                    addenda: Vec::new(),
                });
        }
        let odfi8: String = cfg.odfi_routing.chars().take(8).collect();
        let mut batches = Vec::new();
        for (i, ((sec, date), entries)) in groups.into_iter().enumerate() {
            batches.push(Batch {
                company_name: nacha_text(&cfg.company_name, 16),
                company_discretionary_data: String::new(),
                company_id: cfg.company_id.clone(),
                sec: SecCode::parse(&sec)
                    .ok_or_else(|| StoreError::Corrupt(format!("SEC code {sec}")))?,
                entry_description: nacha_text(&cfg.entry_description, 10),
                descriptive_date: String::new(),
                effective_date: date
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("effective date {date}")))?,
                odfi_id: odfi8.clone(),
                batch_number: u32::try_from(i + 1).unwrap_or(u32::MAX),
                entries,
            });
        }
        Ok(AchFile {
            header: FileHeader {
                immediate_destination: cfg.odfi_routing.clone(),
                immediate_origin: cfg.origin_id.clone(),
                creation,
                file_id_modifier: f.file_id_modifier.chars().next().unwrap_or('A'),
                destination_name: nacha_text(&cfg.odfi_name, 23),
                origin_name: nacha_text(&cfg.origin_name, 23),
                reference_code: String::new(),
            },
            batches,
        })
    }

    async fn write_ach_file(
        &self,
        dir: &Path,
        f: AchFileRow,
        recovered: bool,
    ) -> Result<ExportedFile, ServiceError> {
        let file = self.build_ach_file(&f).await?;
        let text = nacha::write_file(&file).map_err(|e| {
            ServiceError::invalid("ach", format!("the NACHA file could not be written: {e}"))
        })?;
        let sha = sha256_hex(text.as_bytes());
        let path = dir.join(&f.file_name);
        write_durably(&path, text.as_bytes()).map_err(|e| {
            ServiceError::invalid("dir", format!("could not write {}: {e}", path.display()))
        })?;
        drop(text);
        let now = self.clock.now_micros();
        let id = f.id.clone();
        let sha_w = sha.clone();
        self.store
            .write(move |c| {
                Box::pin(async move { q::mark_file_written(c, &id, &sha_w, now).await })
            })
            .await?;
        let cur = billpay_domain::Currency::USD;
        Ok(ExportedFile {
            id: f.id,
            path,
            entries: f.entry_count,
            debit_total: Money::new(f.debit_total, cur),
            credit_total: Money::new(f.credit_total, cur),
            sha256: sha,
            recovered,
        })
    }

    /// NACHA files written so far, newest first.
    pub async fn ach_files(&self, limit: i64) -> Result<Vec<AchFileRow>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::files(&mut c, limit.clamp(1, 500)).await?)
    }

    /// The ACH entries of a payment (its debit, any prenote it waited for, refund credits).
    pub async fn ach_entries_of_payment(
        &self,
        payment_id: &str,
    ) -> Result<Vec<AchEntryRow>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::entries_of_payment(&mut c, payment_id).await?)
    }

    /// Applies a returns / notification-of-change file from the bank. Each return and each
    /// correction is applied once, in one transaction with its effects; the same file again
    /// changes nothing.
    pub async fn import_ach_returns(&self, text: &str) -> Result<ReturnsReport, ServiceError> {
        let file = nacha::parse_file(text)
            .map_err(|e| ServiceError::invalid("file", format!("not a valid NACHA file: {e}")))?;
        let sha = sha256_hex(text.as_bytes());
        let mut report = ReturnsReport::default();
        for r in file.returns() {
            self.apply_return_item(&sha, &r.original_trace, &r.code, &mut report)
                .await?;
        }
        for n in file.corrections() {
            self.apply_correction(&sha, &n.original_trace, &n.code, &n.parsed, &mut report)
                .await?;
        }
        Ok(report)
    }

    async fn apply_return_item(
        &self,
        sha: &str,
        trace: &str,
        code: &str,
        report: &mut ReturnsReport,
    ) -> Result<(), ServiceError> {
        let entry = {
            let mut c = self.store.read_conn().await?;
            q::entry_by_trace(&mut c, trace).await?
        };
        let now = self.clock.now_micros();
        let claim = AchReturnItemRow {
            item_key: format!("return:{trace}"),
            kind: "return".into(),
            code: code.into(),
            original_trace: trace.into(),
            entry_id: entry.as_ref().map(|e| e.id.clone()),
            file_sha256: sha.into(),
            outcome: if entry.is_some() {
                "applied"
            } else {
                "unmatched"
            }
            .into(),
            applied_at: now,
        };
        let Some(entry) = entry else {
            let first = self
                .store
                .write(move |c| Box::pin(async move { q::claim_return_item(c, &claim).await }))
                .await?;
            if first {
                report.unmatched.push(format!(
                    "return {code} for trace {trace}: no entry with this trace"
                ));
            } else {
                report.already_applied += 1;
            }
            return Ok(());
        };
        // The payments this return reverses: the debit's own, or the debits held for a prenote.
        let payments: Vec<PaymentView> = {
            let mut c = self.store.read_conn().await?;
            let ids: Vec<String> = match entry.purpose.as_str() {
                "debit" => entry.payment_id.iter().cloned().collect(),
                "prenote" => q::entries_waiting_for(&mut c, &entry.id)
                    .await?
                    .into_iter()
                    .filter_map(|e| e.payment_id)
                    .collect(),
                _ => Vec::new(),
            };
            let mut v = Vec::new();
            for id in ids {
                if let Some(p) = queries::payment_by_id(&mut c, &id).await? {
                    v.push(p);
                }
            }
            v
        };
        let mut plans = Vec::new();
        for p in &payments {
            let p = Payment::from_view(p)?;
            plans.push(self.plan_return(&p, code)?);
        }
        let code_s = code.to_string();
        let stops = stops_account(code);
        let entry_c = entry.clone();
        let held: Vec<String> = if entry.purpose == "prenote" {
            let mut c = self.store.read_conn().await?;
            q::entries_waiting_for(&mut c, &entry.id)
                .await?
                .into_iter()
                .map(|e| e.id)
                .collect()
        } else {
            Vec::new()
        };
        let applied = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if !q::claim_return_item(c, &claim).await? {
                        return Ok(None);
                    }
                    q::mark_entry_returned(c, &entry_c.id, &code_s, now).await?;
                    for id in &held {
                        q::mark_entry_returned(c, id, &code_s, now).await?;
                    }
                    if entry_c.purpose == "prenote" || stops {
                        let v = q::validation(c, &entry_c.account_fingerprint).await?;
                        q::upsert_validation(
                            c,
                            &AchValidationRow {
                                account_fingerprint: entry_c.account_fingerprint.clone(),
                                status: "failed".into(),
                                prenote_id: v.as_ref().and_then(|v| v.prenote_id.clone()),
                                return_code: Some(code_s.clone()),
                                created_at: v.map(|v| v.created_at).unwrap_or(now),
                                updated_at: now,
                            },
                        )
                        .await?;
                    }
                    let mut returned = Vec::new();
                    for plan in plans {
                        let id = plan.payment_id.clone();
                        if apply_return_in(c, plan, now).await? {
                            returned.push(id);
                        }
                    }
                    Ok::<_, ServiceError>(Some(returned))
                })
            })
            .await?;
        match applied {
            None => report.already_applied += 1,
            Some(returned) => {
                report.returns_applied += 1;
                if entry.purpose == "credit" {
                    report.unmatched.push(format!(
                        "return {code} of a refund credit (trace {trace}): the refund did not \
                         reach the customer; contact them for another account"
                    ));
                }
                for id in returned {
                    report.payments_returned.push((id, code.to_string()));
                }
            }
        }
        Ok(())
    }

    /// Everything a returned payment changes, prepared outside the write transaction.
    pub(crate) fn plan_return(&self, p: &Payment, code: &str) -> Result<ReturnPlan, ServiceError> {
        let decline = return_decline(code);
        let internal = |e: billpay_domain::LedgerError| {
            ServiceError::Store(StoreError::Internal(e.to_string()))
        };
        let entry = JournalEntry::ach_return(&p.account_number, p.amount).map_err(internal)?;
        let fee_minor = self.ach().returned_payment_fee_minor;
        let fee = (fee_minor > 0)
            .then(|| -> Result<_, ServiceError> {
                let amount = Money::new(fee_minor, p.amount.currency());
                let fee_entry = JournalEntry::fee(&p.account_number, amount).map_err(internal)?;
                let charge_id = self.new_id("chg");
                Ok((
                    q::ChargeRow {
                        id: charge_id.clone(),
                        account_id: p.account_id.clone(),
                        kind: "returned_payment_fee".into(),
                        source_id: p.id.clone(),
                        amount: fee_minor,
                        currency: p.amount.currency().code().into(),
                        description: format!(
                            "Returned payment fee ({} payment {}, {code})",
                            p.amount,
                            p.confirmation_number.grouped()
                        ),
                        journal_id: String::new(),
                        created_at: 0,
                    },
                    JournalRow {
                        id: self.new_id("je"),
                        kind: EntryKind::Fee.as_str().into(),
                        source_type: "charge".into(),
                        source_id: charge_id,
                        account_id: p.account_id.clone(),
                        currency: p.amount.currency().code().into(),
                        created_at: 0,
                    },
                    postings(&fee_entry),
                    amount,
                ))
            })
            .transpose()?;
        let mut notice = serde_json::json!({
            "payment_id": p.id,
            "confirmation_number": p.confirmation_number.grouped(),
            "amount": p.amount.format(),
            "return_code": code,
            "message": decline.message(Language::En),
            "next_step": decline.next_step(Language::En),
        });
        if let Some((_, _, _, amount)) = &fee {
            notice["returned_payment_fee"] = serde_json::json!(amount.format());
        }
        if stops_account(code) && p.saved_method.is_some() {
            notice["saved_method_disabled"] = serde_json::json!(true);
        }
        Ok(ReturnPlan {
            payment_id: p.id.clone(),
            account_id: p.account_id.clone(),
            from: p.status,
            kind: p.method.kind,
            code: code.to_string(),
            journal: JournalRow {
                id: self.new_id("je"),
                kind: EntryKind::Return.as_str().into(),
                source_type: "payment".into(),
                source_id: p.id.clone(),
                account_id: p.account_id.clone(),
                currency: p.amount.currency().code().into(),
                created_at: 0,
            },
            postings: postings(&entry),
            fee: fee.map(|(charge, journal, postings, _)| FeePlan {
                charge,
                journal,
                postings,
            }),
            disable_method: p.saved_method.clone().filter(|_| stops_account(code)),
            outbox_id: self.new_id("msg"),
            notice: notice.to_string(),
        })
    }

    async fn apply_correction(
        &self,
        sha: &str,
        trace: &str,
        code: &str,
        correction: &Correction,
        report: &mut ReturnsReport,
    ) -> Result<(), ServiceError> {
        let entry = {
            let mut c = self.store.read_conn().await?;
            q::entry_by_trace(&mut c, trace).await?
        };
        let now = self.clock.now_micros();
        let method = match &entry {
            Some(e) => match &e.payment_method_id {
                Some(pm) => {
                    let mut c = self.store.read_conn().await?;
                    queries::payment_method_by_id(&mut c, pm)
                        .await?
                        .filter(|m| m.status == "active" && m.kind == "ach")
                }
                None => None,
            },
            None => None,
        };
        // The corrected details, checked, and the new number sealed outside the transaction.
        let mut update = None;
        if let Some(m) = &method {
            let vault = self.vault()?;
            let keyring = vault.keyring();
            let current = Sealed {
                kek_version: u32::try_from(m.kek_version).unwrap_or(0),
                wrapped_key: m.wrapped_key.clone(),
                ciphertext: m.ciphertext.clone(),
            };
            let old_plain = vault
                .open(&m.id, &current)
                .map_err(crate::vault::vault_error)?;
            let old_account = String::from_utf8(old_plain.to_vec()).unwrap_or_default();
            let mut routing = m.routing_number.clone().unwrap_or_default();
            let mut account = old_account.clone();
            let mut account_type = m
                .bank_account_type
                .clone()
                .unwrap_or_else(|| "checking".into());
            let type_of = |code: u8| {
                if code / 10 == 3 {
                    "savings"
                } else {
                    "checking"
                }
            };
            match correction {
                Correction::AccountNumber(a) => account = a.trim().to_string(),
                Correction::RoutingNumber(r) => routing = r.trim().to_string(),
                Correction::RoutingAndAccount {
                    routing: r,
                    account: a,
                } => {
                    routing = r.trim().to_string();
                    account = a.trim().to_string();
                }
                Correction::TransactionCode(t) => account_type = type_of(*t).into(),
                Correction::AccountAndTransactionCode {
                    account: a,
                    code: t,
                } => {
                    account = a.trim().to_string();
                    account_type = type_of(*t).into();
                }
                Correction::RoutingAccountAndTransactionCode {
                    routing: r,
                    account: a,
                    code: t,
                } => {
                    routing = r.trim().to_string();
                    account = a.trim().to_string();
                    account_type = type_of(*t).into();
                }
                _ => {}
            }
            let routing_ok = RoutingNumber::parse(&routing).map_err(|e| {
                ServiceError::invalid("file", format!("NOC {code} for trace {trace}: {e}"))
            })?;
            let account_ok = BankAccountNumber::parse(&account).map_err(|_| {
                ServiceError::invalid(
                    "file",
                    format!(
                        "NOC {code} for trace {trace}: the corrected account number is not valid"
                    ),
                )
            })?;
            let sealed = if account != old_account {
                let rng = |buf: &mut [u8]| self.random.fill(buf);
                Some(
                    keyring
                        .seal(&m.id, account.as_bytes(), &rng)
                        .map_err(crate::vault::vault_error)?,
                )
            } else {
                None
            };
            let fp = keyring.fingerprint(
                "ach",
                &format!("{}:{}", routing_ok.as_str(), account_ok.expose_secret()),
            );
            update = Some((
                m.id.clone(),
                m.account_id.clone(),
                routing_ok.as_str().to_string(),
                account_type,
                account_ok.last4(),
                fp,
                sealed,
            ));
        }
        let claim = AchReturnItemRow {
            item_key: format!("noc:{trace}:{code}"),
            kind: "noc".into(),
            code: code.into(),
            original_trace: trace.into(),
            entry_id: entry.as_ref().map(|e| e.id.clone()),
            file_sha256: sha.into(),
            outcome: match (&entry, &update) {
                (None, _) => "unmatched",
                (Some(_), Some(_)) => "saved_method_updated",
                (Some(_), None) => "noted",
            }
            .into(),
            applied_at: now,
        };
        let unmatched = entry.is_none();
        let audit_id = self.new_id("aud");
        let code_s = code.to_string();
        let first = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    if !q::claim_return_item(c, &claim).await? {
                        return Ok(false);
                    }
                    if let Some((id, account_id, routing, account_type, last4, fp, sealed)) = update
                    {
                        let sealed_ref = sealed.as_ref().map(|s| {
                            (
                                i64::from(s.kek_version),
                                s.wrapped_key.as_str(),
                                s.ciphertext.as_str(),
                            )
                        });
                        if q::correct_bank_method(
                            c,
                            &id,
                            &routing,
                            &account_type,
                            &last4,
                            &fp,
                            sealed_ref,
                            now,
                        )
                        .await?
                        {
                            crate::vault::audit(
                                c,
                                audit_id,
                                now,
                                &crate::vault::Actor {
                                    id: "system:ach-noc".into(),
                                    channel: Channel::Api,
                                },
                                "vault.update",
                                &id,
                                &account_id,
                                serde_json::json!({"notice_of_change": code_s, "last4": last4}),
                            )
                            .await?;
                        }
                    }
                    Ok::<_, ServiceError>(true)
                })
            })
            .await?;
        if !first {
            report.already_applied += 1;
        } else if unmatched {
            report.unmatched.push(format!(
                "notice of change {code} for trace {trace}: no entry with this trace"
            ));
        } else {
            report.corrections_applied += 1;
        }
        Ok(())
    }

    /// Destroys the sealed account numbers of entries past their return window.
    pub async fn forget_old_ach_accounts(&self) -> Result<u64, ServiceError> {
        let before = self.clock.now_micros() - self.ach().retain_account_days * 86_400_000_000;
        Ok(self
            .store
            .write(move |c| Box::pin(async move { q::forget_account_numbers(c, before).await }))
            .await?)
    }

    /// Re-wraps sealed ACH entries under the active key version.
    pub async fn rewrap_ach_entries(&self) -> Result<u64, ServiceError> {
        let vault = self.vault()?;
        let keyring = vault.keyring();
        let active = i64::from(keyring.active_version());
        let mut done = 0;
        loop {
            let batch = {
                let mut c = self.store.read_conn().await?;
                q::entries_under_old_key(&mut c, active, 100).await?
            };
            if batch.is_empty() {
                return Ok(done);
            }
            let mut updates = Vec::new();
            for e in &batch {
                let Some(sealed) = sealed_of(e) else { continue };
                let rng = |buf: &mut [u8]| self.random.fill(buf);
                let new = keyring
                    .rewrap(&e.id, &sealed, &rng)
                    .map_err(crate::vault::vault_error)?;
                updates.push((e.id.clone(), i64::from(sealed.kek_version), new));
            }
            let n = self
                .store
                .write(move |c| {
                    Box::pin(async move {
                        let mut n = 0u64;
                        for (id, old, new) in updates {
                            if q::rewrap_entry(
                                c,
                                &id,
                                old,
                                i64::from(new.kek_version),
                                &new.wrapped_key,
                            )
                            .await?
                            {
                                n += 1;
                            }
                        }
                        Ok::<_, StoreError>(n)
                    })
                })
                .await?;
            if n == 0 {
                return Ok(done);
            }
            done += n;
        }
    }

    /// Sealed ACH entries per key version.
    pub async fn ach_entries_per_key_version(&self) -> Result<Vec<(i64, i64)>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::entries_per_key_version(&mut c).await?)
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

/// Writes `bytes` to `path` so that it is on disk before this returns: a temporary file in
/// the same directory, synced, renamed over `path`, and the directory synced.
pub fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension("partial");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The built-in sandbox bank: reads an origination file and answers it as the receiving banks
/// of the sandbox's ACH test accounts would, with a returns / NOC file (None when every entry
/// settles). Routing 110000000: 000111111116 R03, 000111111113 R02, 000222222227 R01,
/// 000333333335 R10, 000777777771 a C01 notice of change to 000123456789.
pub fn sandbox_bank_returns(
    origination: &str,
    now: jiff::civil::DateTime,
) -> Result<Option<String>, ServiceError> {
    let file = nacha::parse_file(origination)
        .map_err(|e| ServiceError::invalid("file", format!("not a valid NACHA file: {e}")))?;
    let mut outcomes = Vec::new();
    for b in &file.batches {
        for e in &b.entries {
            if e.transaction_code.is_return_or_noc() {
                continue;
            }
            let outcome = match (e.rdfi_routing.as_str(), e.account_number.trim()) {
                (crate::sandbox::TEST_ROUTING, "000777777771") => Some(Outcome::Correction {
                    code: "C01".into(),
                    corrected_data: "000123456789".into(),
                }),
                (routing, account) => match crate::sandbox::bank_outcome(routing, account) {
                    crate::sandbox::BankScript::Returns(code)
                    | crate::sandbox::BankScript::RefusedNow(code) => Some(Outcome::Return {
                        code: if code.as_str().starts_with('R') {
                            code.as_str().to_string()
                        } else {
                            "R03".into()
                        },
                    }),
                    crate::sandbox::BankScript::Settles => None,
                },
            };
            if let Some(o) = outcome {
                outcomes.push((e.trace_number.clone(), o));
            }
        }
    }
    if outcomes.is_empty() {
        return Ok(None);
    }
    let header = FileHeader {
        immediate_destination: file.header.immediate_destination.clone(),
        immediate_origin: crate::sandbox::TEST_ROUTING.to_string(),
        creation: now.round(jiff::Unit::Minute).unwrap_or(now),
        file_id_modifier: 'A',
        destination_name: file.header.origin_name.clone(),
        origin_name: "BILLPAY SANDBOX BANK".into(),
        reference_code: String::new(),
    };
    let prefix: String = crate::sandbox::TEST_ROUTING.chars().take(8).collect();
    nacha::build_returns_file(&file, header, &outcomes, &prefix)
        .map(Some)
        .map_err(|e| ServiceError::invalid("file", format!("the returns file: {e}")))
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
