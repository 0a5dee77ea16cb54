//! Service-level views of stored records, converted from rows with every field parsed.

use billpay_domain::{
    AccountNumber, BankAccountType, CardBrand, Channel, ConfirmationNumber, Currency, DeclineCode,
    MethodKind, Money, PaymentStatus,
};
use billpay_store::StoreError;
use billpay_store::rows::{AccountRow, PaymentView, RefundRow, StatementRow};
use jiff::Timestamp;

use crate::clock::from_micros;

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} {value:?} is not valid"))
}

pub(crate) fn parse_currency(code: &str) -> Result<Currency, StoreError> {
    Currency::parse(code).map_err(|_| corrupt("currency", code))
}

/// What is shown of a payment method: never more than brand and last four.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodSummary {
    pub kind: MethodKind,
    pub brand: Option<CardBrand>,
    pub last4: String,
    pub exp_month: Option<u8>,
    pub exp_year: Option<u16>,
    pub bank_account_type: Option<BankAccountType>,
}

impl MethodSummary {
    /// "Visa ending in 4242", "checking account ending in 6789".
    pub fn describe(&self) -> String {
        match (self.kind, self.brand) {
            (MethodKind::Card, Some(brand)) => {
                format!("{} ending in {}", brand.display_name(), self.last4)
            }
            (MethodKind::Card, None) => format!("card ending in {}", self.last4),
            (MethodKind::Ach, _) => format!(
                "{} account ending in {}",
                self.bank_account_type.map(|t| t.as_str()).unwrap_or("bank"),
                self.last4
            ),
            (MethodKind::Check, _) => format!("check ending in {}", self.last4),
            (MethodKind::Pledge, _) => "assistance pledge".to_string(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    pub id: String,
    pub account_id: String,
    pub account_number: AccountNumber,
    pub timezone: String,
    pub confirmation_number: ConfirmationNumber,
    pub amount: Money,
    /// Convenience fee charged on top of `amount`.
    pub fee: Money,
    pub refunded: Money,
    pub status: PaymentStatus,
    pub channel: Channel,
    pub method: MethodSummary,
    /// The saved method it was paid with, if any.
    pub saved_method: Option<String>,
    pub processor: String,
    pub processor_key: String,
    pub processor_ref: Option<String>,
    pub decline: Option<DeclineCode>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Payment {
    pub fn from_view(v: &PaymentView) -> Result<Payment, StoreError> {
        let p = &v.payment;
        let currency = parse_currency(&p.currency)?;
        let kind =
            MethodKind::parse(&p.method_type).ok_or_else(|| corrupt("method", &p.method_type))?;
        Ok(Payment {
            id: p.id.clone(),
            account_id: p.account_id.clone(),
            account_number: AccountNumber::parse(&v.account_number)
                .map_err(|_| corrupt("account number", &v.account_number))?,
            timezone: v.account_timezone.clone(),
            confirmation_number: ConfirmationNumber::parse(&p.confirmation_number)
                .map_err(|_| corrupt("confirmation number", &p.confirmation_number))?,
            amount: Money::new(p.amount, currency),
            fee: Money::new(p.fee_amount, currency),
            refunded: Money::new(p.refunded_amount, currency),
            status: PaymentStatus::parse(&p.status).ok_or_else(|| corrupt("status", &p.status))?,
            channel: Channel::parse(&p.channel).ok_or_else(|| corrupt("channel", &p.channel))?,
            method: MethodSummary {
                kind,
                brand: p.brand.as_deref().and_then(CardBrand::parse),
                last4: p.last4.clone(),
                exp_month: p.exp_month.and_then(|m| u8::try_from(m).ok()),
                exp_year: p.exp_year.and_then(|y| u16::try_from(y).ok()),
                bank_account_type: p
                    .bank_account_type
                    .as_deref()
                    .and_then(BankAccountType::parse),
            },
            saved_method: p.payment_method_id.clone(),
            processor: p.processor.clone(),
            processor_key: p.processor_key.clone(),
            processor_ref: p.processor_ref.clone(),
            decline: p.decline_code.as_deref().and_then(DeclineCode::parse),
            created_at: from_micros(p.created_at),
            updated_at: from_micros(p.updated_at),
        })
    }

    /// Time of the payment in the account's time zone.
    pub fn local_time(&self) -> jiff::Zoned {
        let tz = jiff::tz::TimeZone::get(&self.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
        self.created_at.to_zoned(tz)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refund {
    pub id: String,
    pub payment_id: String,
    pub amount: Money,
    pub status: String,
    pub failure: Option<DeclineCode>,
    pub created_at: Timestamp,
}

impl Refund {
    pub fn from_row(r: &RefundRow) -> Result<Refund, StoreError> {
        Ok(Refund {
            id: r.id.clone(),
            payment_id: r.payment_id.clone(),
            amount: Money::new(r.amount, parse_currency(&r.currency)?),
            status: r.status.clone(),
            failure: r.failure_code.as_deref().and_then(DeclineCode::parse),
            created_at: from_micros(r.created_at),
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementLine {
    pub description: String,
    pub amount: Money,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Statement {
    pub id: String,
    pub statement_date: jiff::civil::Date,
    pub due_date: jiff::civil::Date,
    pub amount_due: Money,
    pub lines: Vec<StatementLine>,
    pub created_at: Timestamp,
}

impl Statement {
    pub fn from_row(r: &StatementRow) -> Result<Statement, StoreError> {
        let currency = parse_currency(&r.currency)?;
        let lines: Vec<(String, i64)> = serde_json::from_str(&r.lines_json)
            .map_err(|_| corrupt("statement lines of", &r.id))?;
        Ok(Statement {
            id: r.id.clone(),
            statement_date: r
                .statement_date
                .parse()
                .map_err(|_| corrupt("statement date", &r.statement_date))?,
            due_date: r
                .due_date
                .parse()
                .map_err(|_| corrupt("due date", &r.due_date))?,
            amount_due: Money::new(r.amount_due, currency),
            lines: lines
                .into_iter()
                .map(|(description, amount)| StatementLine {
                    description,
                    amount: Money::new(amount, currency),
                })
                .collect(),
            created_at: from_micros(r.created_at),
        })
    }
}

/// Where an account stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountStatus {
    Current,
    PastDue,
    Suspended,
}

impl AccountStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            AccountStatus::Current => "current",
            AccountStatus::PastDue => "past_due",
            AccountStatus::Suspended => "suspended",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub account_number: AccountNumber,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub postal_code: String,
    pub timezone: String,
    pub currency: Currency,
    pub created_at: Timestamp,
}

impl Account {
    pub fn from_row(r: &AccountRow) -> Result<Account, StoreError> {
        Ok(Account {
            id: r.id.clone(),
            account_number: AccountNumber::parse(&r.account_number)
                .map_err(|_| corrupt("account number", &r.account_number))?,
            name: r.name.clone(),
            email: r.email.clone(),
            phone: r.phone.clone(),
            postal_code: r.postal_code.clone(),
            timezone: r.timezone.clone(),
            currency: parse_currency(&r.currency)?,
            created_at: from_micros(r.created_at),
        })
    }
}

/// An account with its balance and current bill.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountSummary {
    pub account: Account,
    pub balance: Money,
    pub status: AccountStatus,
    pub current_statement: Option<Statement>,
}
