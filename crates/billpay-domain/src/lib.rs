//! Pure domain types and rules for billpay.
//!
//! This crate owns the vocabulary every other billpay crate speaks:
//!
//! * [`money`]: currencies and integer minor-unit amounts (never floating point),
//!   parsing, formatting, splitting and basis-point fees;
//! * [`ids`]: customer account numbers and payment confirmation numbers, both
//!   protected by a Damm check digit ([`check_digit`]);
//! * [`card`] and [`bank`]: card number (Luhn + brand), CVC, expiry, postal code,
//!   routing number (ABA checksum) and bank account validation;
//! * [`payment`]: the payment state machine, payment methods and channels;
//! * [`decline`]: the decline / ACH return taxonomy with retry policy and
//!   plain-language English and Spanish texts;
//! * [`ledger`]: double-entry posting rules and balanced journal entries;
//! * [`calendar`]: month-end clamping, business days and one instant per local
//!   date and time across daylight-saving changes;
//! * [`autopay`]: when AutoPay charges a statement, the pre-debit notice, and
//!   how much it charges (net of payments since the statement);
//! * [`collections`]: late fees, suspension of service and payment
//!   arrangements;
//! * [`recurrence`]: the dates of one-time and recurring scheduled payments;
//! * [`retry`]: when a declined card payment is tried again, and whether a
//!   returned bank debit may be presented again;
//! * [`risk`]: the payment risk rules against card testing (counts in, allow or
//!   block with reasons out);
//! * [`secret`]: masked secret types that never print their contents and are
//!   zeroized on drop.
//!
//! It knows nothing about SQL, HTTP, async or the clock: whenever a rule depends
//! on the date (card expiry, for example), the date is passed in by the caller.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]
#![warn(missing_docs)]

pub mod aging;
pub mod autopay;
pub mod bank;
pub mod calendar;
pub mod card;
pub mod check_digit;
pub mod collections;
pub mod decline;
pub mod ids;
pub mod ledger;
pub mod money;
pub mod payment;
pub mod recurrence;
pub mod redact;
pub mod retry;
pub mod risk;
pub mod secret;

pub use aging::*;
pub use autopay::*;
pub use bank::*;
pub use calendar::*;
pub use card::*;
pub use check_digit::*;
pub use collections::*;
pub use decline::*;
pub use ids::*;
pub use ledger::*;
pub use money::*;
pub use payment::*;
pub use recurrence::*;
pub use redact::*;
pub use retry::*;
pub use secret::*;

/// Removes the separators customers commonly type inside numbers (spaces, tabs
/// and dashes), leaving everything else untouched.
pub(crate) fn strip_separators(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    out.extend(input.chars().filter(|c| !matches!(c, ' ' | '-' | '\t')));
    out
}
