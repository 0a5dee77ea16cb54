//! Wire types: the JSON the REST API reads and writes, with their OpenAPI schemas, and the
//! conversions to and from domain and service types. Nothing else in billpay is serialized for
//! the API.

use billpay_domain::{
    AccountNumber, BankAccountNumber, BankAccountType, CardExpiry, CardNumber, Channel, Currency,
    Cvc, DeclineCode, Language, Money, PostalCode, RoutingNumber, SecretString,
};
use billpay_services::payments::NewMethod;
use billpay_services::receipts::Receipt;
use billpay_services::vault::{MethodToSave, MethodUpdate, SavedMethod};
use billpay_services::{AccountSummary, Payment, Refund, ServiceError, Statement};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// A secret string field (card number, CVC, bank account number): zeroized on drop and masked in
/// Debug, from the moment it is parsed out of the request.
#[derive(Clone, Debug, ToSchema)]
#[schema(value_type = String)]
pub struct WireSecret(SecretString);

impl<'de> Deserialize<'de> for WireSecret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(WireSecret(SecretString::new(s)))
    }
}

impl WireSecret {
    fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

/// An integer number (JSON numbers or numeric strings both accepted for months and years).
#[derive(Clone, Copy, Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum IntOrString {
    Int(i64),
    #[schema(value_type = String)]
    Str(StringInt),
}

#[derive(Clone, Copy, Debug)]
pub struct StringInt(Option<i64>);

impl<'de> Deserialize<'de> for StringInt {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(StringInt(s.trim().parse().ok()))
    }
}

impl IntOrString {
    fn value(self) -> Option<i64> {
        match self {
            IntOrString::Int(i) => Some(i),
            IntOrString::Str(StringInt(v)) => v,
        }
    }
}

fn invalid(param: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::invalid(param, message)
}

pub fn parse_currency(code: Option<&str>) -> Result<Currency, ServiceError> {
    match code {
        None => Ok(Currency::USD),
        Some(c) => Currency::parse(c).map_err(|e| invalid("currency", e.to_string())),
    }
}

pub fn parse_account_number(param: &str, s: &str) -> Result<AccountNumber, ServiceError> {
    AccountNumber::parse(s)
        .map_err(|e| invalid(param, format!("the account number is not valid: {e}")))
}

// ------------------------------------------------------------------ requests

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Leave out to have one generated (with its check digit).
    pub account_number: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Service address ZIP code (or Canadian postal code).
    pub postal_code: String,
    /// IANA time zone, e.g. America/Chicago. Default America/New_York.
    pub timezone: Option<String>,
    /// ISO 4217 code; default usd.
    pub currency: Option<String>,
}

impl CreateAccount {
    pub fn into_domain(self) -> Result<billpay_services::accounts::NewAccount, ServiceError> {
        Ok(billpay_services::accounts::NewAccount {
            account_number: self
                .account_number
                .as_deref()
                .map(|n| parse_account_number("account_number", n))
                .transpose()?,
            name: self.name,
            email: self.email,
            phone: self.phone,
            postal_code: PostalCode::parse(&self.postal_code)
                .map_err(|e| invalid("postal_code", e.to_string()))?,
            timezone: self.timezone,
            currency: Some(parse_currency(self.currency.as_deref())?),
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatementLineIn {
    pub description: String,
    /// Minor units (cents).
    pub amount: i64,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStatement {
    /// YYYY-MM-DD
    pub statement_date: String,
    /// YYYY-MM-DD, in the account's time zone.
    pub due_date: String,
    /// Minor units (cents).
    pub amount_due: i64,
    pub currency: Option<String>,
    #[serde(default)]
    pub lines: Vec<StatementLineIn>,
}

pub fn parse_date(param: &str, s: &str) -> Result<jiff::civil::Date, ServiceError> {
    s.parse()
        .map_err(|_| invalid(param, format!("{s:?} is not a date in the form YYYY-MM-DD")))
}

impl CreateStatement {
    pub fn into_domain(self) -> Result<billpay_services::accounts::NewStatement, ServiceError> {
        let currency = parse_currency(self.currency.as_deref())?;
        Ok(billpay_services::accounts::NewStatement {
            statement_date: parse_date("statement_date", &self.statement_date)?,
            due_date: parse_date("due_date", &self.due_date)?,
            amount_due: Money::new(self.amount_due, currency),
            lines: self
                .lines
                .into_iter()
                .map(|l| (l.description, Money::new(l.amount, currency)))
                .collect(),
        })
    }
}

/// A payment method in a request: a card (`type: "card"`: number, exp_month, exp_year, cvc,
/// postal_code?), a bank account (`type: "ach"`: routing_number, account_number, account_type,
/// holder_name), or a saved method (`type: "token"`: token). Only brand and last four are ever
/// stored in the clear or shown.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentMethodIn {
    /// card, ach or token
    #[serde(rename = "type")]
    pub kind: String,
    pub number: Option<WireSecret>,
    pub exp_month: Option<IntOrString>,
    pub exp_year: Option<IntOrString>,
    pub cvc: Option<WireSecret>,
    pub postal_code: Option<String>,
    pub routing_number: Option<String>,
    pub account_number: Option<WireSecret>,
    /// checking or savings
    pub account_type: Option<String>,
    pub holder_name: Option<String>,
    /// A saved method's id (`pm_…`), with `type: "token"`.
    pub token: Option<String>,
}

/// Names a field the way the request spelled it: `payment_method[number]` inside a payment,
/// `number` when saving a method.
struct Fields<'a> {
    prefix: Option<&'a str>,
}

impl Fields<'_> {
    fn name(&self, field: &str) -> String {
        match self.prefix {
            Some(p) => format!("{p}[{field}]"),
            None => field.to_string(),
        }
    }

    fn invalid(&self, field: &str, message: impl Into<String>) -> ServiceError {
        invalid(&self.name(field), message)
    }

    fn required<T>(&self, value: Option<T>, field: &str, kind: &str) -> Result<T, ServiceError> {
        value.ok_or_else(|| self.invalid(field, format!("{field} is required to pay by {kind}")))
    }
}

/// A card or bank account parsed from a request; the CVC only when one was required.
enum ParsedMethod {
    Card {
        number: CardNumber,
        expiry: CardExpiry,
        cvc: Option<Cvc>,
        postal_code: Option<PostalCode>,
    },
    Ach {
        routing: RoutingNumber,
        account: BankAccountNumber,
        account_type: BankAccountType,
        holder_name: String,
    },
    Token(String),
}

impl PaymentMethodIn {
    fn parse(
        self,
        f: &Fields<'_>,
        need_cvc: bool,
        allow_token: bool,
    ) -> Result<ParsedMethod, ServiceError> {
        let present = [
            ("number", self.number.is_some(), "card"),
            ("exp_month", self.exp_month.is_some(), "card"),
            ("exp_year", self.exp_year.is_some(), "card"),
            ("cvc", self.cvc.is_some(), "card"),
            ("postal_code", self.postal_code.is_some(), "card"),
            ("routing_number", self.routing_number.is_some(), "ach"),
            ("account_number", self.account_number.is_some(), "ach"),
            ("account_type", self.account_type.is_some(), "ach"),
            ("holder_name", self.holder_name.is_some(), "ach"),
            ("token", self.token.is_some(), "token"),
        ];
        let kind = self.kind.as_str();
        let known = matches!(kind, "card" | "ach") || (allow_token && kind == "token");
        if !known {
            let types = if allow_token {
                "card, ach or token"
            } else {
                "card or ach"
            };
            return Err(f.invalid(
                "type",
                format!(
                    "{:?} is not a payment method type: use {types}",
                    mask_digits(kind)
                ),
            ));
        }
        if let Some((field, _, _)) = present
            .iter()
            .find(|(_, here, owner)| *here && *owner != kind)
        {
            return Err(f.invalid(
                field,
                format!("{field} does not belong to a {kind} payment method"),
            ));
        }
        match kind {
            "card" => {
                let number = CardNumber::parse(f.required(self.number, "number", "card")?.expose())
                    .map_err(|e| f.invalid("number", e.to_string()))?;
                let month = f
                    .required(self.exp_month, "exp_month", "card")?
                    .value()
                    .and_then(|m| u8::try_from(m).ok())
                    .filter(|m| (1..=12).contains(m))
                    .ok_or_else(|| {
                        f.invalid("exp_month", "the expiration month must be 1 to 12")
                    })?;
                let year = f
                    .required(self.exp_year, "exp_year", "card")?
                    .value()
                    .and_then(|y| u16::try_from(y).ok())
                    .ok_or_else(|| f.invalid("exp_year", "the expiration year is not valid"))?;
                let expiry = CardExpiry::new(month, year)
                    .map_err(|e| f.invalid("exp_year", e.to_string()))?;
                // Saving a card never keeps its security code: one sent anyway is checked and dropped.
                let cvc = match (self.cvc, need_cvc) {
                    (Some(c), _) => Some(
                        Cvc::parse(c.expose(), number.brand())
                            .map_err(|e| f.invalid("cvc", e.to_string()))?,
                    ),
                    (None, true) => return Err(f.invalid("cvc", "cvc is required to pay by card")),
                    (None, false) => None,
                };
                let postal_code = self
                    .postal_code
                    .as_deref()
                    .map(PostalCode::parse)
                    .transpose()
                    .map_err(|e| f.invalid("postal_code", e.to_string()))?;
                Ok(ParsedMethod::Card {
                    number,
                    expiry,
                    cvc,
                    postal_code,
                })
            }
            "ach" => {
                let routing = RoutingNumber::parse(&f.required(
                    self.routing_number,
                    "routing_number",
                    "bank account",
                )?)
                .map_err(|e| f.invalid("routing_number", e.to_string()))?;
                let account = BankAccountNumber::parse(
                    f.required(self.account_number, "account_number", "bank account")?
                        .expose(),
                )
                .map_err(|e| f.invalid("account_number", e.to_string()))?;
                let account_type = BankAccountType::parse(&f.required(
                    self.account_type,
                    "account_type",
                    "bank account",
                )?)
                .ok_or_else(|| {
                    f.invalid("account_type", "account_type must be checking or savings")
                })?;
                let holder_name = f
                    .required(self.holder_name, "holder_name", "bank account")?
                    .trim()
                    .to_string();
                if holder_name.is_empty() || holder_name.chars().count() > 100 {
                    return Err(f.invalid(
                        "holder_name",
                        "the account holder's name must be 1 to 100 characters",
                    ));
                }
                Ok(ParsedMethod::Ach {
                    routing,
                    account,
                    account_type,
                    holder_name,
                })
            }
            _ => {
                let token = f.required(self.token, "token", "saved payment method")?;
                if !token.starts_with("pm_") || token.len() > 64 {
                    return Err(
                        f.invalid("token", "a saved payment method's token looks like pm_…")
                    );
                }
                Ok(ParsedMethod::Token(token))
            }
        }
    }

    fn into_domain(self) -> Result<NewMethod, ServiceError> {
        Ok(
            match self.parse(
                &Fields {
                    prefix: Some("payment_method"),
                },
                true,
                true,
            )? {
                ParsedMethod::Card {
                    number,
                    expiry,
                    cvc: Some(cvc),
                    postal_code,
                } => NewMethod::Card {
                    number,
                    expiry,
                    cvc,
                    postal_code,
                },
                ParsedMethod::Card { .. } => {
                    return Err(invalid(
                        "payment_method[cvc]",
                        "cvc is required to pay by card",
                    ));
                }
                ParsedMethod::Ach {
                    routing,
                    account,
                    account_type,
                    holder_name,
                } => NewMethod::Ach {
                    routing,
                    account,
                    account_type,
                    holder_name,
                },
                ParsedMethod::Token(token) => NewMethod::Saved { token },
            },
        )
    }
}

/// Saves a card or bank account to an account's wallet. Card numbers go in once; only the
/// token comes out. A security code is not needed and is never kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SavePaymentMethod {
    /// card or ach
    #[serde(rename = "type")]
    pub kind: String,
    pub number: Option<WireSecret>,
    pub exp_month: Option<IntOrString>,
    pub exp_year: Option<IntOrString>,
    pub cvc: Option<WireSecret>,
    pub postal_code: Option<String>,
    pub routing_number: Option<String>,
    pub account_number: Option<WireSecret>,
    pub account_type: Option<String>,
    pub holder_name: Option<String>,
    /// A name the customer gives it, e.g. "Work Visa".
    pub nickname: Option<String>,
    /// Make it the account's default method.
    #[serde(default)]
    pub default: bool,
}

impl SavePaymentMethod {
    pub fn into_domain(self) -> Result<(MethodToSave, MethodUpdate), ServiceError> {
        let update = MethodUpdate {
            nickname: self.nickname,
            expiry: None,
            make_default: self.default,
        };
        let method = PaymentMethodIn {
            kind: self.kind,
            number: self.number,
            exp_month: self.exp_month,
            exp_year: self.exp_year,
            cvc: self.cvc,
            postal_code: self.postal_code,
            routing_number: self.routing_number,
            account_number: self.account_number,
            account_type: self.account_type,
            holder_name: self.holder_name,
            token: None,
        };
        let to_save = match method.parse(&Fields { prefix: None }, false, false)? {
            ParsedMethod::Card {
                number,
                expiry,
                postal_code,
                ..
            } => MethodToSave::Card {
                number,
                expiry,
                postal_code,
            },
            ParsedMethod::Ach {
                routing,
                account,
                account_type,
                holder_name,
            } => MethodToSave::Ach {
                routing,
                account,
                account_type,
                holder_name,
            },
            ParsedMethod::Token(_) => {
                return Err(invalid("type", "a saved method cannot be saved again"));
            }
        };
        Ok((to_save, update))
    }
}

/// Changes to a saved method.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePaymentMethod {
    pub nickname: Option<String>,
    /// A renewed card's new expiry (month and year together).
    pub exp_month: Option<IntOrString>,
    pub exp_year: Option<IntOrString>,
    /// Make it the account's default method.
    #[serde(default)]
    pub default: bool,
}

impl UpdatePaymentMethod {
    pub fn into_domain(self) -> Result<MethodUpdate, ServiceError> {
        let expiry = match (self.exp_month, self.exp_year) {
            (None, None) => None,
            (Some(m), Some(y)) => {
                let month = m
                    .value()
                    .and_then(|m| u8::try_from(m).ok())
                    .filter(|m| (1..=12).contains(m))
                    .ok_or_else(|| invalid("exp_month", "the expiration month must be 1 to 12"))?;
                let year = y
                    .value()
                    .and_then(|y| u16::try_from(y).ok())
                    .ok_or_else(|| invalid("exp_year", "the expiration year is not valid"))?;
                Some(CardExpiry::new(month, year).map_err(|e| invalid("exp_year", e.to_string()))?)
            }
            (Some(_), None) => {
                return Err(invalid("exp_year", "give exp_month and exp_year together"));
            }
            (None, Some(_)) => {
                return Err(invalid("exp_month", "give exp_month and exp_year together"));
            }
        };
        Ok(MethodUpdate {
            nickname: self.nickname,
            expiry,
            make_default: self.default,
        })
    }
}

/// A saved method as shown: never more than brand and last four.
#[derive(Debug, Serialize, ToSchema)]
pub struct SavedMethodOut {
    pub id: String,
    pub object: &'static str,
    /// card or ach
    #[serde(rename = "type")]
    pub kind: String,
    pub brand: Option<String>,
    pub last4: String,
    pub exp_month: Option<u8>,
    pub exp_year: Option<u16>,
    pub account_type: Option<String>,
    pub bank_name: Option<String>,
    pub nickname: Option<String>,
    pub is_default: bool,
    /// e.g. "Visa ending in 4242"
    pub description: String,
    /// e.g. "Your Visa ending in 4242 expires next month."
    pub expiry_notice: Option<String>,
    pub created_at: String,
}

impl SavedMethodOut {
    pub fn new(m: &SavedMethod, today: jiff::civil::Date) -> Self {
        SavedMethodOut {
            id: m.id.clone(),
            object: "payment_method",
            kind: m.summary.kind.as_str().into(),
            brand: m.summary.brand.map(|b| b.as_str().to_string()),
            last4: m.summary.last4.clone(),
            exp_month: m.summary.exp_month,
            exp_year: m.summary.exp_year,
            account_type: m.summary.bank_account_type.map(|t| t.as_str().to_string()),
            bank_name: m.bank_name.clone(),
            nickname: m.nickname.clone(),
            is_default: m.is_default,
            description: m.summary.describe(),
            expiry_notice: m.expiry_notice(today),
            created_at: m.created_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SavedMethodList {
    pub object: &'static str,
    pub data: Vec<SavedMethodOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    pub id: String,
    pub object: &'static str,
    pub deleted: bool,
}

/// Masks digits in echoed input, in case a number was put where a word belongs.
fn mask_digits(s: &str) -> String {
    s.chars()
        .take(40)
        .map(|c| if c.is_ascii_digit() { '*' } else { c })
        .collect()
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    pub account_number: String,
    /// Minor units (cents), greater than zero.
    pub amount: i64,
    pub currency: Option<String>,
    /// web, phone, chat, agent, autopay, mail or api. Default api.
    pub channel: Option<String>,
    pub payment_method: PaymentMethodIn,
    /// Set to true to make a second payment of the same amount within 10 minutes.
    #[serde(default)]
    pub confirm_duplicate: bool,
}

impl CreatePayment {
    pub fn into_domain(self) -> Result<billpay_services::PaymentRequest, ServiceError> {
        let currency = parse_currency(self.currency.as_deref())?;
        let account_number = parse_account_number("account_number", &self.account_number)?;
        let channel = match self.channel.as_deref() {
            None => Channel::Api,
            Some(c) => Channel::parse(c).ok_or_else(|| {
                invalid(
                    "channel",
                    "channel must be one of web, phone, chat, agent, autopay, mail, api",
                )
            })?,
        };
        let method = self.payment_method.into_domain()?;
        Ok(billpay_services::PaymentRequest {
            account_number,
            amount: Money::new(self.amount, currency),
            channel,
            method,
            confirm_duplicate: self.confirm_duplicate,
            tel_authorization: None,
            limit_to_balance: false,
            // The biller's own system, for a customer now: the card and account rules apply.
            risk: Some(billpay_services::risk::RiskSource::default()),
        })
    }
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// Minor units; leave out to refund everything that remains.
    pub amount: Option<i64>,
}

// ------------------------------------------------------------------ responses

#[derive(Debug, Serialize, ToSchema)]
pub struct AmountOut {
    /// Minor units (cents).
    pub amount: i64,
    pub currency: String,
    /// The amount formatted for people, e.g. "$84.10".
    pub display: String,
}

impl From<Money> for AmountOut {
    fn from(m: Money) -> Self {
        AmountOut {
            amount: m.minor_units(),
            currency: m.currency().code().to_ascii_lowercase(),
            display: m.format(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementLineOut {
    pub description: String,
    pub amount: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementOut {
    pub id: String,
    pub object: &'static str,
    pub statement_date: String,
    pub due_date: String,
    pub amount_due: i64,
    pub currency: String,
    pub lines: Vec<StatementLineOut>,
}

impl From<&Statement> for StatementOut {
    fn from(s: &Statement) -> Self {
        StatementOut {
            id: s.id.clone(),
            object: "statement",
            statement_date: s.statement_date.to_string(),
            due_date: s.due_date.to_string(),
            amount_due: s.amount_due.minor_units(),
            currency: s.amount_due.currency().code().to_ascii_lowercase(),
            lines: s
                .lines
                .iter()
                .map(|l| StatementLineOut {
                    description: l.description.clone(),
                    amount: l.amount.minor_units(),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    pub object: &'static str,
    pub account_number: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub postal_code: String,
    pub timezone: String,
    /// What the customer owes now (negative: a credit).
    pub balance: AmountOut,
    /// current, past_due or suspended
    pub status: String,
    pub current_statement: Option<StatementOut>,
    pub due_date: Option<String>,
    pub created_at: String,
}

impl From<&AccountSummary> for AccountOut {
    fn from(s: &AccountSummary) -> Self {
        AccountOut {
            object: "account",
            account_number: s.account.account_number.as_str().to_string(),
            name: s.account.name.clone(),
            email: s.account.email.clone(),
            phone: s.account.phone.clone(),
            postal_code: s.account.postal_code.clone(),
            timezone: s.account.timezone.clone(),
            balance: s.balance.into(),
            status: s.status.as_str().into(),
            current_statement: s.current_statement.as_ref().map(StatementOut::from),
            due_date: s
                .current_statement
                .as_ref()
                .map(|st| st.due_date.to_string()),
            created_at: s.account.created_at.to_string(),
        }
    }
}

/// What is shown of a payment method: brand and last four, never more.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentMethodOut {
    /// The saved method's token, when the payment used one.
    pub id: Option<String>,
    /// card or ach
    #[serde(rename = "type")]
    pub kind: String,
    pub brand: Option<String>,
    pub last4: String,
    pub exp_month: Option<u8>,
    pub exp_year: Option<u16>,
    pub account_type: Option<String>,
    /// e.g. "Visa ending in 4242"
    pub description: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FailureOut {
    /// The processor's decline code or ACH return code.
    pub code: String,
    pub message: String,
    pub next_step: String,
    pub message_es: String,
    pub next_step_es: String,
    /// retryable, never_retry or fix_and_retry
    pub retry: String,
}

impl From<DeclineCode> for FailureOut {
    fn from(d: DeclineCode) -> Self {
        FailureOut {
            code: d.as_str().to_string(),
            message: d.message(Language::En).to_string(),
            next_step: d.next_step(Language::En).to_string(),
            message_es: d.message(Language::Es).to_string(),
            next_step_es: d.next_step(Language::Es).to_string(),
            retry: match d.retry_policy() {
                billpay_domain::RetryPolicy::Retryable => "retryable",
                billpay_domain::RetryPolicy::NeverRetry => "never_retry",
                billpay_domain::RetryPolicy::FixAndRetry => "fix_and_retry",
            }
            .to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentOut {
    pub id: String,
    pub object: &'static str,
    /// pending, processing, succeeded, failed, canceled, partially_refunded, refunded, returned
    pub status: String,
    /// Ten digits, grouped 3-3-4 with a check digit, e.g. "482-193-0577".
    pub confirmation_number: String,
    pub amount: i64,
    pub currency: String,
    pub amount_display: String,
    /// Convenience fee charged on top of `amount` (0: paying costs nothing by default).
    pub fee_amount: i64,
    pub amount_refunded: i64,
    pub channel: String,
    pub payment_method: PaymentMethodOut,
    pub account_number: String,
    pub created_at: String,
    /// Set when the payment failed or was returned.
    pub failure: Option<FailureOut>,
    pub receipt_url: String,
}

impl From<&Payment> for PaymentOut {
    fn from(p: &Payment) -> Self {
        PaymentOut {
            id: p.id.clone(),
            object: "payment",
            status: p.status.as_str().into(),
            confirmation_number: p.confirmation_number.grouped(),
            amount: p.amount.minor_units(),
            currency: p.amount.currency().code().to_ascii_lowercase(),
            amount_display: p.amount.format(),
            fee_amount: p.fee.minor_units(),
            amount_refunded: p.refunded.minor_units(),
            channel: p.channel.as_str().into(),
            payment_method: PaymentMethodOut {
                id: p.saved_method.clone(),
                kind: p.method.kind.as_str().into(),
                brand: p.method.brand.map(|b| b.as_str().to_string()),
                last4: p.method.last4.clone(),
                exp_month: p.method.exp_month,
                exp_year: p.method.exp_year,
                account_type: p.method.bank_account_type.map(|t| t.as_str().to_string()),
                description: p.method.describe(),
            },
            account_number: p.account_number.as_str().to_string(),
            created_at: p.created_at.to_string(),
            failure: p.decline.map(FailureOut::from),
            receipt_url: format!("/api/v1/payments/{}/receipt", p.id),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentList {
    pub object: &'static str,
    pub data: Vec<PaymentOut>,
    pub has_more: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatementList {
    pub object: &'static str,
    pub data: Vec<StatementOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundOut {
    pub id: String,
    pub object: &'static str,
    pub payment_id: String,
    pub amount: i64,
    pub currency: String,
    /// pending, succeeded, failed, canceled
    pub status: String,
    pub failure: Option<FailureOut>,
    pub created_at: String,
}

impl From<&Refund> for RefundOut {
    fn from(r: &Refund) -> Self {
        RefundOut {
            id: r.id.clone(),
            object: "refund",
            payment_id: r.payment_id.clone(),
            amount: r.amount.minor_units(),
            currency: r.amount.currency().code().to_ascii_lowercase(),
            status: r.status.clone(),
            failure: r.failure.map(FailureOut::from),
            created_at: r.created_at.to_string(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RefundWithPayment {
    #[serde(flatten)]
    pub refund: RefundOut,
    pub payment: PaymentOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ReceiptOut {
    pub object: &'static str,
    pub biller: String,
    pub support_phone: String,
    pub payment_id: String,
    pub confirmation_number: String,
    pub account: String,
    pub amount: String,
    pub method: String,
    pub channel: String,
    pub status: String,
    pub paid_at: String,
    pub timezone: String,
    pub note: Option<String>,
    /// The receipt as plain text, ready to print or email.
    pub text: String,
}

impl From<&Receipt> for ReceiptOut {
    fn from(r: &Receipt) -> Self {
        ReceiptOut {
            object: "receipt",
            biller: r.biller.clone(),
            support_phone: r.support_phone.clone(),
            payment_id: r.payment_id.clone(),
            confirmation_number: r.confirmation_number.clone(),
            account: r.account.clone(),
            amount: r.amount.clone(),
            method: r.method.clone(),
            channel: r.channel.clone(),
            status: r.status.clone(),
            paid_at: r.paid_at.clone(),
            timezone: r.timezone.clone(),
            note: r.note.clone(),
            text: r.to_text(),
        }
    }
}

/// The error body: `{"error": {...}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// On a declined payment: the failed payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentOut>,
    /// On a declined refund: the failed refund.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund: Option<RefundOut>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// invalid_request_error, authentication_error, idempotency_error, card_error,
    /// bank_account_error, api_error
    #[serde(rename = "type")]
    pub kind: String,
    pub code: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decline_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_es: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_step_es: Option<String>,
    /// With duplicate_payment: the earlier payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_payment: Option<String>,
}

impl ErrorDetail {
    pub fn new(kind: &str, code: &str, message: impl Into<String>) -> Self {
        ErrorDetail {
            kind: kind.into(),
            code: code.into(),
            message: message.into(),
            param: None,
            decline_code: None,
            next_step: None,
            message_es: None,
            next_step_es: None,
            previous_payment: None,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub database: &'static str,
}
