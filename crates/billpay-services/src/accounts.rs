//! Accounts and statements (the bills). A statement posts a charge to the ledger; an account's
//! balance is always the sum of its receivable postings, never a stored number.

use billpay_domain::{AccountNumber, Currency, EntryKind, JournalEntry, Money, receivable_account};
use billpay_store::rows::{AccountRow, JournalRow, StatementRow};
use billpay_store::{StoreError, queries};

use crate::model::{Account, AccountStatus, AccountSummary, Statement};
use crate::{Billpay, ServiceError};

/// Most lines one statement may carry.
pub const STATEMENT_LINES_MAX: usize = 200;
const NAME_LEN_MAX: usize = 200;

#[derive(Clone, Debug)]
pub struct NewAccount {
    pub account_number: Option<AccountNumber>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub postal_code: billpay_domain::PostalCode,
    pub timezone: Option<String>,
    pub currency: Option<Currency>,
}

#[derive(Clone, Debug)]
pub struct NewStatement {
    pub statement_date: jiff::civil::Date,
    pub due_date: jiff::civil::Date,
    pub amount_due: Money,
    pub lines: Vec<(String, Money)>,
}

/// A US phone number in E.164 (+1 and ten digits); other countries with + and 8–15 digits.
pub fn normalize_phone(input: &str) -> Result<String, ServiceError> {
    let digits: String = input.chars().filter(|c| c.is_ascii_digit()).collect();
    let international = input.trim_start().starts_with('+');
    let e164 = match (international, digits.len()) {
        (false, 10) => format!("+1{digits}"),
        (false, 11) if digits.starts_with('1') => format!("+{digits}"),
        (true, 8..=15) => format!("+{digits}"),
        _ => {
            return Err(ServiceError::invalid(
                "phone",
                "the phone number must have 10 digits (US) or start with + and the country code",
            ));
        }
    };
    Ok(e164)
}

fn check_email(email: &str) -> Result<String, ServiceError> {
    let email = email.trim();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(email.to_string())
    } else {
        Err(ServiceError::invalid(
            "email",
            "the email address is not valid",
        ))
    }
}

impl Billpay {
    pub async fn create_account(&self, new: NewAccount) -> Result<Account, ServiceError> {
        let name = new.name.trim().to_string();
        if name.is_empty() || name.chars().count() > NAME_LEN_MAX {
            return Err(ServiceError::invalid(
                "name",
                "the name must be 1 to 200 characters",
            ));
        }
        let timezone = new.timezone.unwrap_or_else(|| "America/New_York".into());
        if jiff::tz::TimeZone::get(&timezone).is_err() {
            return Err(ServiceError::invalid(
                "timezone",
                format!("{timezone:?} is not a known time zone (use a name like America/Chicago)"),
            ));
        }
        let email = new.email.as_deref().map(check_email).transpose()?;
        let phone = new.phone.as_deref().map(normalize_phone).transpose()?;
        let currency = new.currency.unwrap_or(Currency::USD);
        let now = self.clock.now_micros();
        let given = new.account_number.is_some();
        let mut candidates = Vec::new();
        match new.account_number {
            Some(n) => candidates.push(n),
            None => {
                for _ in 0..8 {
                    // 11 digits, no leading zero, then the check digit.
                    let body = 10_000_000_000 + self.random.next_u64() % 90_000_000_000;
                    let n = AccountNumber::from_body(&body.to_string())
                        .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
                    candidates.push(n);
                }
            }
        }
        let mut row = AccountRow {
            id: self.new_id("acct"),
            account_number: String::new(),
            name,
            email,
            phone,
            postal_code: new.postal_code.as_str().to_string(),
            timezone,
            currency: currency.code().to_string(),
            service_status: "active".into(),
            created_at: now,
            updated_at: now,
        };
        let stored = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    for candidate in candidates {
                        if queries::account_by_number(c, candidate.as_str())
                            .await?
                            .is_none()
                        {
                            row.account_number = candidate.as_str().to_string();
                            queries::insert_account(c, &row).await?;
                            return Ok(row);
                        }
                    }
                    Err(if given {
                        ServiceError::Conflict {
                            code: "account_exists",
                            message: "an account with this account number already exists".into(),
                        }
                    } else {
                        ServiceError::Store(StoreError::Internal("no free account number".into()))
                    })
                })
            })
            .await?;
        Ok(Account::from_row(&stored)?)
    }

    pub async fn account(&self, number: &AccountNumber) -> Result<Account, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let row = queries::account_by_number(&mut c, number.as_str())
            .await?
            .ok_or(ServiceError::NotFound { what: "account" })?;
        Ok(Account::from_row(&row)?)
    }

    /// The account with its balance, status and current bill.
    pub async fn account_summary(
        &self,
        number: &AccountNumber,
    ) -> Result<AccountSummary, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let row = queries::account_by_number(&mut c, number.as_str())
            .await?
            .ok_or(ServiceError::NotFound { what: "account" })?;
        let account = Account::from_row(&row)?;
        let balance =
            queries::ledger_balance(&mut c, &receivable_account(&account.account_number)).await?;
        let statement = queries::latest_statement(&mut c, &account.id)
            .await?
            .map(|s| Statement::from_row(&s))
            .transpose()?;
        let balance = Money::new(balance, account.currency);
        let today = self
            .clock
            .now()
            .to_zoned(jiff::tz::TimeZone::get(&account.timezone).unwrap_or(jiff::tz::TimeZone::UTC))
            .date();
        let status = if row.service_status == "suspended" {
            AccountStatus::Suspended
        } else if balance.is_positive() && statement.as_ref().is_some_and(|s| today > s.due_date) {
            AccountStatus::PastDue
        } else {
            AccountStatus::Current
        };
        Ok(AccountSummary {
            account,
            balance,
            status,
            current_statement: statement,
        })
    }

    pub async fn statements(&self, number: &AccountNumber) -> Result<Vec<Statement>, ServiceError> {
        let mut c = self.store.read_conn().await?;
        let row = queries::account_by_number(&mut c, number.as_str())
            .await?
            .ok_or(ServiceError::NotFound { what: "account" })?;
        let rows = queries::list_statements(&mut c, &row.id).await?;
        rows.iter()
            .map(|s| Statement::from_row(s).map_err(ServiceError::from))
            .collect()
    }

    /// Records a bill and posts its charge to the ledger, in one transaction.
    pub async fn create_statement(
        &self,
        number: &AccountNumber,
        new: NewStatement,
    ) -> Result<Statement, ServiceError> {
        if new.due_date < new.statement_date {
            return Err(ServiceError::invalid(
                "due_date",
                "the due date is before the statement date",
            ));
        }
        if !new.amount_due.is_positive() {
            return Err(ServiceError::invalid(
                "amount_due",
                "the amount due must be greater than zero",
            ));
        }
        if new.lines.len() > STATEMENT_LINES_MAX {
            return Err(ServiceError::invalid(
                "lines",
                "a statement may have at most 200 lines",
            ));
        }
        if !new.lines.is_empty() {
            let mut sum = Money::zero(new.amount_due.currency());
            for (i, (description, amount)) in new.lines.iter().enumerate() {
                if description.trim().is_empty() || description.len() > NAME_LEN_MAX {
                    return Err(ServiceError::invalid(
                        format!("lines[{i}][description]"),
                        "each line needs a description of 1 to 200 characters",
                    ));
                }
                sum = sum.checked_add(*amount).map_err(|e| {
                    ServiceError::invalid(format!("lines[{i}][amount]"), e.to_string())
                })?;
            }
            if sum != new.amount_due {
                return Err(ServiceError::invalid(
                    "lines",
                    format!(
                        "the lines add up to {sum}, but amount_due is {}",
                        new.amount_due
                    ),
                ));
            }
        }
        let now = self.clock.now_micros();
        let statement_id = self.new_id("stmt");
        let journal_id = self.new_id("je");
        let number = number.clone();
        let lines: Vec<(String, i64)> = new
            .lines
            .iter()
            .map(|(d, a)| (d.trim().to_string(), a.minor_units()))
            .collect();
        let lines_json = serde_json::to_string(&lines)
            .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
        let entry = JournalEntry::statement(&number, new.amount_due)
            .map_err(|e| ServiceError::Store(StoreError::Internal(e.to_string())))?;
        let postings: Vec<(String, i64)> = entry
            .postings()
            .iter()
            .map(|p| (p.ledger_account.clone(), p.amount.minor_units()))
            .collect();
        let amount_due = new.amount_due;
        let this = self.clone();
        let row = self
            .store
            .write(move |c| {
                Box::pin(async move {
                    let account = queries::account_by_number(c, number.as_str())
                        .await?
                        .ok_or(ServiceError::NotFound { what: "account" })?;
                    if account.currency != amount_due.currency().code() {
                        return Err(ServiceError::invalid(
                            "currency",
                            format!("this account is billed in {}", account.currency),
                        ));
                    }
                    let account_row = account.clone();
                    let row = StatementRow {
                        id: statement_id.clone(),
                        account_id: account.id.clone(),
                        statement_date: new.statement_date.to_string(),
                        due_date: new.due_date.to_string(),
                        amount_due: amount_due.minor_units(),
                        currency: amount_due.currency().code().into(),
                        lines_json,
                        journal_id: journal_id.clone(),
                        created_at: now,
                    };
                    match queries::insert_statement(c, &row).await {
                        Err(e) if e.is_duplicate() => {
                            return Err(ServiceError::Conflict {
                                code: "statement_exists",
                                message: format!(
                                    "this account already has a statement dated {}",
                                    new.statement_date
                                ),
                            });
                        }
                        other => other?,
                    }
                    let j = JournalRow {
                        id: journal_id,
                        kind: EntryKind::Statement.as_str().into(),
                        source_type: "statement".into(),
                        source_id: statement_id,
                        account_id: account.id,
                        currency: amount_due.currency().code().into(),
                        created_at: now,
                    };
                    queries::insert_journal(c, &j, &postings).await?;
                    // AutoPay's jobs for this bill, in the same transaction as the bill.
                    if let Some(enrollment) = billpay_store::jobs::autopay(c, &row.account_id)
                        .await?
                        .filter(|e| e.status == "active")
                    {
                        let jobs = this.autopay_jobs_for(&account_row, &enrollment, &row);
                        crate::autopay::schedule_statement_in(c, jobs).await?;
                    }
                    for j in this
                        .collections_jobs_for(&account_row, &row)
                        .into_iter()
                        .chain(this.reminder_jobs_for(&account_row, &row))
                    {
                        billpay_store::jobs::enqueue(c, &j).await?;
                    }
                    Ok(row)
                })
            })
            .await?;
        Ok(Statement::from_row(&row)?)
    }
}

/// The account's time zone (UTC if the stored name is unknown).
pub(crate) fn account_tz(account: &billpay_store::rows::AccountRow) -> jiff::tz::TimeZone {
    tz_named(&account.timezone)
}

/// A time zone by IANA name (checked when it was configured or stored); UTC if unknown.
pub(crate) fn tz_named(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

impl Billpay {
    /// The account's row, or "account not found".
    pub(crate) async fn account_row(
        &self,
        number: &AccountNumber,
    ) -> Result<billpay_store::rows::AccountRow, ServiceError> {
        let mut c = self.store.read_conn().await?;
        queries::account_by_number(&mut c, number.as_str())
            .await?
            .ok_or(ServiceError::NotFound { what: "account" })
    }

    /// What is still owed on `statement` now: the bill net of payments made since it, never
    /// more than the account owes (less payments in flight), over `maximum` reported as such.
    pub(crate) async fn statement_due(
        &self,
        account: &billpay_store::rows::AccountRow,
        statement: &StatementRow,
        maximum: Option<i64>,
    ) -> Result<billpay_domain::AutopayAmount, crate::jobs::JobError> {
        use crate::jobs::JobError;
        let currency = billpay_domain::Currency::parse(&account.currency)
            .map_err(|e| JobError::Fatal(e.to_string()))?;
        let mut c = self
            .store
            .read_conn()
            .await
            .map_err(crate::jobs::store_err)?;
        let paid = billpay_store::jobs::paid_since(&mut c, &account.id, statement.created_at)
            .await
            .map_err(crate::jobs::store_err)?;
        let owed = billpay_store::jobs::payable_balance(
            &mut c,
            &account.id,
            &format!("ar:{}", account.account_number),
        )
        .await
        .map_err(crate::jobs::store_err)?;
        billpay_domain::autopay_amount(
            Money::new(statement.amount_due, currency),
            Money::new(paid, currency),
            Money::new(owed, currency),
            maximum.map(|m| Money::new(m, currency)),
        )
        .map_err(|e| JobError::Fatal(e.to_string()))
    }
}
