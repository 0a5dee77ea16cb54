//! Pay by mail: checks the biller's bank received at its lockbox, posted from the bank's
//! lockbox file (billpay's CSV layout or BAI2). Each check is matched to an account by the
//! account number on its remittance coupon, checked by its check digit; a check that matches
//! no account, or more than one, waits in the exceptions queue for a person. A posted check is
//! a payment like any other: confirmation number, ledger entry, receipt. The same item (same
//! lockbox, deposit date, batch and sequence) is never posted twice.

use billpay_ach::lockbox::{self, LockboxItem};
use billpay_domain::{
    AccountNumber, Channel, ConfirmationNumber, Currency, EntryKind, Money, PaymentStatus,
};
use billpay_store::ach::{self as q, LockboxItemRow};
use billpay_store::rows::{JournalRow, OutboxRow, PaymentRow, PaymentView};
use billpay_store::{AnyConnection, StoreError, queries};
use sha2::{Digest, Sha256};

use crate::payments::{PAYMENT_AMOUNT_MAX_MINOR, payment_entry};
use crate::receipts::Receipt;
use crate::{Billpay, Payment, ServiceError};

/// The layout of a lockbox file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockboxFormat {
    Csv,
    Bai2,
}

impl LockboxFormat {
    /// From a name ("csv", "bai2"), or guessed from the content when None.
    pub fn detect(name: Option<&str>, text: &str) -> Result<LockboxFormat, ServiceError> {
        match name.map(str::to_ascii_lowercase).as_deref() {
            Some("csv") => Ok(LockboxFormat::Csv),
            Some("bai2") | Some("bai") => Ok(LockboxFormat::Bai2),
            Some(other) => Err(ServiceError::invalid(
                "format",
                format!("unknown lockbox format \"{other}\": use csv or bai2"),
            )),
            None if text.trim_start().starts_with("01,") => Ok(LockboxFormat::Bai2),
            None => Ok(LockboxFormat::Csv),
        }
    }
}

/// What importing a lockbox file did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LockboxReport {
    pub items: usize,
    /// (item key, account number, confirmation number, amount)
    pub posted: Vec<(String, String, String, Money)>,
    /// (item key, reason)
    pub exceptions: Vec<(String, String)>,
    /// Items posted or queued by an earlier import.
    pub already_imported: usize,
}

/// How a person settles an exception.
#[derive(Clone, Debug)]
pub enum Resolution {
    /// Post the check to this account.
    Post { account_number: String },
    /// Do not post it (the check goes back to the sender); the reason is recorded.
    Reject { reason: String },
}

/// The account a coupon names: every run of digits (spaces and dashes allowed inside) that is
/// a valid account number by its check digit.
fn coupon_accounts(reference: &str) -> Vec<AccountNumber> {
    let mut found: Vec<AccountNumber> = Vec::new();
    for token in reference.split(|c: char| !(c.is_ascii_digit() || c == ' ' || c == '-')) {
        for part in [token.to_string(), token.replace([' ', '-'], "")] {
            if let Ok(n) = AccountNumber::parse(&part)
                && !found.contains(&n)
            {
                found.push(n);
            }
        }
        for word in token.split([' ', '-']) {
            if let Ok(n) = AccountNumber::parse(word)
                && !found.contains(&n)
            {
                found.push(n);
            }
        }
    }
    found
}

fn item_row(
    b: &Billpay,
    item: &LockboxItem,
    sha: &str,
    status: &str,
    reason: Option<String>,
    now: i64,
) -> LockboxItemRow {
    LockboxItemRow {
        id: b.new_id("lbx"),
        item_key: item.item_key.clone(),
        file_sha256: sha.into(),
        line_number: item.line as i64,
        deposit_date: item.deposit_date.to_string(),
        lockbox: item.lockbox.clone(),
        batch: item.batch.clone(),
        sequence: item.sequence.clone(),
        check_number: item.check_number.clone(),
        amount: item.amount,
        currency: Currency::USD.code().into(),
        account_reference: item.account_reference.clone(),
        remitter: item.remitter.clone(),
        status: status.into(),
        reason,
        payment_id: None,
        resolved_by: None,
        resolution_note: None,
        created_at: now,
        updated_at: now,
    }
}

#[derive(Clone, Copy)]
enum OfflineKind {
    Check,
    Pledge,
}

/// A check payment, its ledger entry and its receipt, ready to write.
struct MailedPayment {
    row: PaymentRow,
    journal: JournalRow,
    postings: Vec<(String, i64)>,
    candidates: Vec<String>,
    outbox_id: String,
    /// Queued with the payment if the account is suspended.
    restore: billpay_store::jobs::JobRow,
}

impl Billpay {
    fn mailed_payment(
        &self,
        account_number: &AccountNumber,
        amount: i64,
        check_number: &str,
        remitter: &str,
        key: &str,
    ) -> Result<MailedPayment, ServiceError> {
        self.offline_payment(
            OfflineKind::Check,
            account_number,
            amount,
            check_number,
            remitter,
            key,
        )
    }

    /// A payment that needs no processor: a check already deposited, or an agency's pledge.
    fn offline_payment(
        &self,
        kind: OfflineKind,
        account_number: &AccountNumber,
        amount: i64,
        check_number: &str,
        remitter: &str,
        key: &str,
    ) -> Result<MailedPayment, ServiceError> {
        let (method_kind, channel, processor) = match kind {
            OfflineKind::Check => (billpay_domain::MethodKind::Check, Channel::Mail, "lockbox"),
            OfflineKind::Pledge => (billpay_domain::MethodKind::Pledge, Channel::Agent, "pledge"),
        };
        let now = self.clock.now_micros();
        let id = self.new_id("pay");
        let id_for_restore = id.clone();
        let money = Money::new(amount, Currency::USD);
        let digits: String = check_number.chars().filter(char::is_ascii_digit).collect();
        let last4 = format!("{:0>4}", &digits[digits.len().saturating_sub(4)..]);
        let entry = payment_entry(
            account_number,
            money,
            Money::zero(Currency::USD),
            method_kind,
        )
        .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
        let journal_id = self.new_id("je");
        Ok(MailedPayment {
            row: PaymentRow {
                id: id.clone(),
                account_id: String::new(),
                confirmation_number: String::new(),
                amount,
                currency: Currency::USD.code().into(),
                fee_amount: 0,
                refunded_amount: 0,
                status: PaymentStatus::Succeeded.as_str().into(),
                channel: channel.as_str().into(),
                method_type: method_kind.as_str().into(),
                brand: None,
                last4,
                exp_month: None,
                exp_year: None,
                bank_account_type: None,
                routing_number: None,
                holder_name: Some(remitter.chars().take(80).collect()),
                processor: processor.into(),
                processor_key: format!("{processor}:{key}"),
                processor_ref: Some(match kind {
                    OfflineKind::Check => format!("check {check_number}"),
                    OfflineKind::Pledge => format!("pledge {check_number}"),
                }),
                decline_code: None,
                journal_id: Some(journal_id.clone()),
                created_at: now,
                updated_at: now,
                payment_method_id: None,
            },
            journal: JournalRow {
                id: journal_id,
                kind: EntryKind::Payment.as_str().into(),
                source_type: "payment".into(),
                source_id: id,
                account_id: String::new(),
                currency: Currency::USD.code().into(),
                created_at: now,
            },
            postings: entry
                .postings()
                .iter()
                .map(|p| (p.ledger_account.clone(), p.amount.minor_units()))
                .collect(),
            candidates: (0..8)
                .map(|_| {
                    ConfirmationNumber::from_random(self.random.next_u64())
                        .as_str()
                        .to_string()
                })
                .collect(),
            outbox_id: self.new_id("msg"),
            restore: crate::collections::restore_job(self, "", &id_for_restore, now),
        })
    }

    /// Posts lockbox items. The whole file is read and checked first: a malformed file is
    /// refused with its line number and nothing is posted.
    pub async fn import_lockbox(
        &self,
        text: &str,
        format: LockboxFormat,
    ) -> Result<LockboxReport, ServiceError> {
        let items = match format {
            LockboxFormat::Csv => lockbox::parse_csv(text),
            LockboxFormat::Bai2 => lockbox::parse_bai2(text),
        }
        .map_err(|e| {
            ServiceError::invalid("file", format!("lockbox file refused, nothing posted: {e}"))
        })?;
        let sha = hex::encode(Sha256::digest(text.as_bytes()));
        let mut report = LockboxReport {
            items: items.len(),
            ..Default::default()
        };
        for item in &items {
            self.import_lockbox_item(item, &sha, &mut report).await?;
        }
        Ok(report)
    }

    async fn import_lockbox_item(
        &self,
        item: &LockboxItem,
        sha: &str,
        report: &mut LockboxReport,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now_micros();
        let candidates = coupon_accounts(&item.account_reference);
        let mut reason = match candidates.len() {
            0 if item.account_reference.trim().is_empty() => {
                Some("no account number on the remittance coupon".to_string())
            }
            0 => Some(
                "the account number on the coupon is not a valid account number (check digit)"
                    .to_string(),
            ),
            1 => None,
            n => Some(format!(
                "the coupon names {n} different account numbers; a person must choose"
            )),
        };
        if item.amount > PAYMENT_AMOUNT_MAX_MINOR {
            reason = Some("the check is larger than the largest payment billpay accepts".into());
        }
        let account = match (&reason, candidates.first()) {
            (None, Some(n)) => {
                let mut c = self.store.read_conn().await?;
                match queries::account_by_number(&mut c, n.as_str()).await? {
                    Some(a) if a.currency == Currency::USD.code() => Some((n.clone(), a)),
                    Some(_) => {
                        reason = Some("the account is not billed in US dollars".into());
                        None
                    }
                    None => {
                        reason = Some("no account has the number on the coupon".into());
                        None
                    }
                }
            }
            _ => None,
        };
        match account {
            Some((number, account)) => {
                let mp = self.mailed_payment(
                    &number,
                    item.amount,
                    &item.check_number,
                    &item.remitter,
                    &item.item_key,
                )?;
                let row = item_row(self, item, sha, "posted", None, now);
                let biller = self.config().biller.clone();
                let posted = self
                    .store
                    .write(move |c| {
                        Box::pin(async move {
                            let mut row = row;
                            row.payment_id = Some(mp.row.id.clone());
                            if !q::insert_lockbox_item(c, &row).await? {
                                return Ok(None);
                            }
                            post_mailed(c, mp, &account, &biller, now).await.map(Some)
                        })
                    })
                    .await?;
                match posted {
                    Some(p) => report.posted.push((
                        item.item_key.clone(),
                        p.account_number.as_str().to_string(),
                        p.confirmation_number.grouped(),
                        p.amount,
                    )),
                    None => report.already_imported += 1,
                }
            }
            None => {
                let reason = reason.unwrap_or_else(|| "unmatched".into());
                let row = item_row(self, item, sha, "exception", Some(reason.clone()), now);
                let queued = self
                    .store
                    .write(move |c| Box::pin(async move { q::insert_lockbox_item(c, &row).await }))
                    .await?;
                if queued {
                    report.exceptions.push((item.item_key.clone(), reason));
                } else {
                    report.already_imported += 1;
                }
            }
        }
        Ok(())
    }

    /// Checks waiting for a person, oldest first.
    pub async fn lockbox_exceptions(&self) -> Result<Vec<LockboxItemRow>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        Ok(q::lockbox_items_with_status(&mut c, "exception", 500).await?)
    }

    pub async fn lockbox_item(&self, id: &str) -> Result<LockboxItemRow, ServiceError> {
        let mut c = self.store.read_conn().await?;
        q::lockbox_item(&mut c, id)
            .await?
            .ok_or(ServiceError::NotFound {
                what: "lockbox item",
            })
    }

    /// Settles an exception: posts the check to the account a person chose, or rejects it.
    /// Returns the posted payment, if any.
    pub async fn resolve_lockbox_exception(
        &self,
        id: &str,
        resolution: Resolution,
        actor: &str,
    ) -> Result<Option<Payment>, ServiceError> {
        let item = self.lockbox_item(id).await?;
        if item.status != "exception" {
            return Err(ServiceError::Conflict {
                code: "lockbox_item_resolved",
                message: format!("this check was already {}", item.status),
            });
        }
        let now = self.clock.now_micros();
        let actor = actor.to_string();
        match resolution {
            Resolution::Reject { reason } => {
                if reason.trim().is_empty() {
                    return Err(ServiceError::invalid(
                        "reason",
                        "say why the check is not posted",
                    ));
                }
                let id = id.to_string();
                let done = self
                    .store
                    .write(move |c| {
                        Box::pin(async move {
                            q::resolve_lockbox_item(c, &id, "rejected", None, &actor, &reason, now)
                                .await
                        })
                    })
                    .await?;
                if !done {
                    return Err(ServiceError::Conflict {
                        code: "lockbox_item_resolved",
                        message: "this check was resolved by someone else meanwhile".into(),
                    });
                }
                Ok(None)
            }
            Resolution::Post { account_number } => {
                let number = AccountNumber::parse(&account_number).map_err(|e| {
                    ServiceError::invalid("account_number", format!("account number: {e}"))
                })?;
                let account = {
                    let mut c = self.store.read_conn().await?;
                    queries::account_by_number(&mut c, number.as_str())
                        .await?
                        .ok_or(ServiceError::NotFound { what: "account" })?
                };
                let mp = self.mailed_payment(
                    &number,
                    item.amount,
                    &item.check_number,
                    &item.remitter,
                    &item.item_key,
                )?;
                let pay_id = mp.row.id.clone();
                let biller = self.config().biller.clone();
                let id = id.to_string();
                let note = format!("posted to account {}", number.as_str());
                let posted = self
                    .store
                    .write(move |c| {
                        Box::pin(async move {
                            if !q::resolve_lockbox_item(
                                c,
                                &id,
                                "posted",
                                Some(&pay_id),
                                &actor,
                                &note,
                                now,
                            )
                            .await?
                            {
                                return Err(ServiceError::Conflict {
                                    code: "lockbox_item_resolved",
                                    message: "this check was resolved by someone else meanwhile"
                                        .into(),
                                });
                            }
                            post_mailed(c, mp, &account, &biller, now).await
                        })
                    })
                    .await?;
                Ok(Some(posted))
            }
        }
    }
}

/// Writes a mailed check's payment, ledger entry and receipt in the caller's transaction.
async fn post_mailed(
    c: &mut AnyConnection,
    mp: MailedPayment,
    account: &billpay_store::rows::AccountRow,
    biller: &crate::BillerProfile,
    now: i64,
) -> Result<Payment, ServiceError> {
    let mut row = mp.row;
    row.account_id = account.id.clone();
    for candidate in mp.candidates {
        if !queries::confirmation_exists(c, &candidate).await? {
            row.confirmation_number = candidate;
            break;
        }
    }
    if row.confirmation_number.is_empty() {
        return Err(StoreError::Internal("no free confirmation number".into()).into());
    }
    queries::insert_payment(c, &row).await?;
    let journal = JournalRow {
        account_id: account.id.clone(),
        ..mp.journal
    };
    queries::insert_journal(c, &journal, &mp.postings).await?;
    if account.service_status == "suspended" {
        let mut restore = mp.restore;
        restore.business_key = format!("restore:{}:{}", account.id, journal.source_id);
        restore.payload =
            serde_json::json!({"account_id": account.id, "payment_id": journal.source_id})
                .to_string();
        billpay_store::jobs::enqueue(c, &restore).await?;
    }
    let payment = Payment::from_view(&PaymentView {
        payment: row,
        account_number: account.account_number.clone(),
        account_timezone: account.timezone.clone(),
    })?;
    if let Some(email) = &account.email {
        let receipt = Receipt::for_payment(&payment, biller);
        queries::insert_outbox(
            c,
            &OutboxRow {
                id: mp.outbox_id,
                kind: "email.receipt".into(),
                dedupe_key: format!("receipt:{}", payment.id),
                recipient: email.clone(),
                payload_json: receipt.to_json(),
                created_at: now,
                sent_at: None,
                attempts: 0,
            },
        )
        .await?;
    }
    Ok(payment)
}

impl Billpay {
    /// Posts an assistance agency's pledge to an account as a payment (the agency pays the
    /// biller later). Keyed by agency and pledge reference: the same pledge posts once.
    pub async fn post_pledge(
        &self,
        number: &AccountNumber,
        amount: Money,
        agency: &str,
        reference: &str,
    ) -> Result<Payment, ServiceError> {
        if agency.trim().is_empty() || reference.trim().is_empty() {
            return Err(ServiceError::invalid(
                "agency",
                "a pledge needs the agency and its reference",
            ));
        }
        if !amount.is_positive() || amount.minor_units() > PAYMENT_AMOUNT_MAX_MINOR {
            return Err(ServiceError::invalid(
                "amount",
                "the pledge must be more than zero and at most $1,000,000.00",
            ));
        }
        let account = self.account_row(number).await?;
        let key = format!("{}:{}", agency.trim(), reference.trim());
        let mp = self.offline_payment(
            OfflineKind::Pledge,
            number,
            amount.minor_units(),
            reference.trim(),
            agency.trim(),
            &key,
        )?;
        let biller = self.config().biller.clone();
        let now = self.clock.now_micros();
        match self
            .store
            .write(move |c| {
                Box::pin(async move { post_mailed(c, mp, &account, &biller, now).await })
            })
            .await
        {
            Err(ServiceError::Store(e)) if e.is_duplicate() => Err(ServiceError::Conflict {
                code: "pledge_posted",
                message: format!("the pledge {key} was already posted"),
            }),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coupon_account_numbers_are_found_by_check_digit() {
        let good = AccountNumber::from_body("12345678").unwrap();
        let other = AccountNumber::from_body("87654321").unwrap();
        assert_eq!(coupon_accounts(good.as_str()), vec![good.clone()]);
        assert_eq!(
            coupon_accounts(&format!("Acct {}", good.as_str())),
            vec![good.clone()]
        );
        assert!(coupon_accounts("").is_empty());
        assert_eq!(
            coupon_accounts(&format!("{} / {}", good.as_str(), other.as_str())).len(),
            2
        );
    }
}
