//! AutoPay: on which date a statement is charged, when the customer is told
//! beforehand, and how much is charged.
//!
//! The amount rule is what keeps AutoPay from charging twice: it charges the
//! statement amount *less every payment made since the statement*, and never
//! more than the account's current balance (credits and refunds lower it), so
//! a customer who already paid by phone, or whose first AutoPay attempt
//! succeeded, is charged nothing more. Services still key each AutoPay charge
//! by enrollment and statement so a rerun of the job is idempotent; this rule
//! covers the payments that came from elsewhere.
//!
//! Dates are calendar dates; the caller turns the charge date into an instant
//! with [`crate::calendar::local_instant`] in the biller's time zone.

use jiff::civil::Date;

use crate::calendar::{BusinessCalendar, add_days};
use crate::money::{Currency, Money, MoneyError};
use crate::recurrence::ScheduleError;

/// The most days before the due date AutoPay may charge.
pub const AUTOPAY_DAYS_BEFORE_MAX: u8 = 15;

/// When AutoPay charges, relative to the statement's due date.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timing {
    /// On the due date itself.
    OnDueDate,
    /// This many calendar days before the due date, 1 to
    /// [`AUTOPAY_DAYS_BEFORE_MAX`]; build it with [`Timing::days_before`].
    DaysBefore(u8),
}

impl Timing {
    /// `DaysBefore(days)`, refusing 0 (use [`Timing::OnDueDate`]) and more than
    /// [`AUTOPAY_DAYS_BEFORE_MAX`].
    pub fn days_before(days: u8) -> Result<Timing, ScheduleError> {
        Timing::DaysBefore(days).validate()
    }

    /// `self` if it is within the limits, else the customer-readable error.
    pub fn validate(self) -> Result<Timing, ScheduleError> {
        match self {
            Timing::DaysBefore(days) if days == 0 || days > AUTOPAY_DAYS_BEFORE_MAX => {
                Err(ScheduleError::DaysBeforeOutOfRange {
                    max: AUTOPAY_DAYS_BEFORE_MAX,
                })
            }
            _ => Ok(self),
        }
    }
}

/// The date AutoPay charges a statement due on `due`.
///
/// * `OnDueDate`: the due date itself, weekend or holiday included. Card
///   payments are authorized any day, and the payment is on time.
/// * `DaysBefore(n)`: `n` calendar days before the due date; if that is not a
///   business day, the *previous* business day, so a bank debit is sent in
///   time and the payment is never late because of a weekend. An `n` outside
///   1 to [`AUTOPAY_DAYS_BEFORE_MAX`] is clamped into it (validate with
///   [`Timing::validate`] when enrolling).
///
/// The result is never after `due`.
pub fn charge_date(due: Date, timing: Timing, cal: &BusinessCalendar) -> Date {
    match timing {
        Timing::OnDueDate => due,
        Timing::DaysBefore(days) => {
            let days = days.clamp(1, AUTOPAY_DAYS_BEFORE_MAX);
            cal.previous_business_day_on_or_before(add_days(due, -i64::from(days)))
        }
    }
}

/// The date the pre-debit notice ("AutoPay will charge $84.10 on June 12") is
/// sent: `notice_days` calendar days before the charge date (0 = the same day).
pub fn pre_debit_notice_date(charge: Date, notice_days: u8) -> Date {
    add_days(charge, -i64::from(notice_days))
}

/// What AutoPay does for one statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AutopayAmount {
    /// Charge this amount (always positive).
    Charge(Money),
    /// Nothing is owed on this statement any more; charge nothing.
    NothingDue,
    /// The amount due is over the customer's AutoPay maximum: charge nothing
    /// and tell the customer, who pays it another way.
    OverMaximum {
        /// What AutoPay would have charged.
        due: Money,
        /// The customer's maximum.
        maximum: Money,
    },
}

/// How much AutoPay charges for a statement.
///
/// `due = min(statement_amount − max(paid_since_statement, 0), current_balance)`:
/// the statement net of payments made since it was issued, and never more than
/// the account currently owes (a credit or refund since the statement lowers
/// the balance). A negative `paid_since_statement` (payments reversed since)
/// counts as zero: AutoPay never charges more than the statement amount. A `due` of zero or less is [`AutopayAmount::NothingDue`]; a
/// `due` over the enrolled `maximum` is [`AutopayAmount::OverMaximum`] (a
/// maximum charges nothing rather than part: a partial charge would leave the
/// customer late without knowing it).
///
/// Fails only if the amounts are in different currencies. Overflow cannot
/// happen: the arithmetic is done in 128 bits and the result is at most the
/// current balance.
pub fn autopay_amount(
    statement_amount: Money,
    paid_since_statement: Money,
    current_balance: Money,
    maximum: Option<Money>,
) -> Result<AutopayAmount, MoneyError> {
    let currency = statement_amount.currency();
    for other in [Some(paid_since_statement), Some(current_balance), maximum]
        .into_iter()
        .flatten()
    {
        ensure_currency(currency, other)?;
    }
    let statement = i128::from(statement_amount.minor_units());
    // Payments reversed since the statement (a returned bank debit) can make
    // the net paid negative: that counts as nothing paid, so AutoPay never
    // charges more than the statement asked for.
    let paid = i128::from(paid_since_statement.minor_units()).max(0);
    let due = (statement - paid).min(i128::from(current_balance.minor_units()));
    if due <= 0 {
        return Ok(AutopayAmount::NothingDue);
    }
    // 0 < due <= current_balance, so it fits in i64.
    let due = Money::new(
        i64::try_from(due).map_err(|_| MoneyError::Overflow)?,
        currency,
    );
    match maximum {
        Some(maximum) if due.minor_units() > maximum.minor_units() => {
            Ok(AutopayAmount::OverMaximum { due, maximum })
        }
        _ => Ok(AutopayAmount::Charge(due)),
    }
}

/// `Ok` when `amount` is in `currency`, else the same error mixed-currency
/// arithmetic on [`Money`] gives.
pub(crate) fn ensure_currency(currency: Currency, amount: Money) -> Result<(), MoneyError> {
    if amount.currency() == currency {
        Ok(())
    } else {
        Err(MoneyError::CurrencyMismatch {
            left: currency.code().to_owned(),
            right: amount.currency().code().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn usd(cents: i64) -> Money {
        Money::usd(cents)
    }

    #[test]
    fn timing_validation() {
        assert_eq!(Timing::days_before(1), Ok(Timing::DaysBefore(1)));
        assert_eq!(Timing::days_before(15), Ok(Timing::DaysBefore(15)));
        let err = Timing::days_before(16).unwrap_err();
        assert_eq!(
            err.to_string(),
            "AutoPay can charge from 1 to 15 days before the due date"
        );
        assert!(Timing::days_before(0).is_err());
        assert_eq!(Timing::OnDueDate.validate(), Ok(Timing::OnDueDate));
    }

    #[test]
    fn charge_dates() {
        let cal = BusinessCalendar::us_federal(2026..=2027);
        // Due Monday July 6, 2026; 3 days before is Friday July 3, the observed
        // Independence Day, so Thursday July 2.
        let due = date(2026, 7, 6);
        assert_eq!(
            charge_date(due, Timing::DaysBefore(3), &cal),
            date(2026, 7, 2)
        );
        assert_eq!(
            charge_date(due, Timing::DaysBefore(1), &cal),
            date(2026, 7, 2)
        );
        assert_eq!(
            charge_date(due, Timing::DaysBefore(5), &cal),
            date(2026, 7, 1)
        );
        // On the due date, even a Sunday.
        assert_eq!(
            charge_date(date(2026, 7, 5), Timing::OnDueDate, &cal),
            date(2026, 7, 5)
        );
        // Due March 31: 2 days before is Sunday March 29 → Friday March 27.
        assert_eq!(
            charge_date(date(2026, 3, 31), Timing::DaysBefore(2), &cal),
            date(2026, 3, 27)
        );
        // Out-of-range values are clamped, never panic.
        assert_eq!(
            charge_date(date(2026, 3, 31), Timing::DaysBefore(200), &cal),
            charge_date(date(2026, 3, 31), Timing::DaysBefore(15), &cal)
        );
        assert_eq!(
            charge_date(date(2026, 3, 31), Timing::DaysBefore(0), &cal),
            date(2026, 3, 30)
        );
        for day in 1..=AUTOPAY_DAYS_BEFORE_MAX {
            for offset in 0..60 {
                let due = add_days(date(2026, 11, 1), offset);
                let charge = charge_date(due, Timing::DaysBefore(day), &cal);
                assert!(charge < due && cal.is_business_day(charge));
            }
        }
    }

    #[test]
    fn notice_dates() {
        assert_eq!(
            pre_debit_notice_date(date(2026, 3, 2), 3),
            date(2026, 2, 27)
        );
        assert_eq!(pre_debit_notice_date(date(2026, 3, 2), 0), date(2026, 3, 2));
    }

    #[test]
    fn amounts() {
        let a = |s, p, b, m| autopay_amount(usd(s), usd(p), usd(b), m).unwrap();
        assert_eq!(a(8410, 0, 8410, None), AutopayAmount::Charge(usd(8410)));
        assert_eq!(a(8410, 2000, 8410, None), AutopayAmount::Charge(usd(6410)));
        // Paid in full by phone already.
        assert_eq!(a(8410, 8410, 0, None), AutopayAmount::NothingDue);
        // Overpaid.
        assert_eq!(a(8410, 9000, -590, None), AutopayAmount::NothingDue);
        // A refund credit since the statement lowers what is charged.
        assert_eq!(a(8410, 0, 5000, None), AutopayAmount::Charge(usd(5000)));
        // A new charge since the statement is not pulled early.
        assert_eq!(a(8410, 0, 12_000, None), AutopayAmount::Charge(usd(8410)));
        assert_eq!(a(0, 0, 0, None), AutopayAmount::NothingDue);
        assert_eq!(
            a(8410, 0, 8410, Some(usd(8000))),
            AutopayAmount::OverMaximum {
                due: usd(8410),
                maximum: usd(8000)
            }
        );
        assert_eq!(
            a(8410, 410, 8410, Some(usd(8000))),
            AutopayAmount::Charge(usd(8000))
        );
        assert_eq!(
            a(i64::MAX, i64::MIN, 5, None),
            AutopayAmount::Charge(usd(5))
        );
        // A payment returned since the statement: the statement, not more.
        assert_eq!(
            a(8410, -2000, 10_410, None),
            AutopayAmount::Charge(usd(8410))
        );
        assert!(autopay_amount(usd(1), Money::new(0, Currency::CAD), usd(1), None).is_err());
        assert!(
            autopay_amount(usd(1), usd(0), usd(1), Some(Money::new(5, Currency::EUR))).is_err()
        );
    }

    proptest! {
        #[test]
        fn never_more_than_balance_or_statement_never_negative(
            statement in -1_000_000i64..100_000_000,
            paid in -1_000_000i64..100_000_000,
            balance in -100_000_000i64..100_000_000,
            maximum in proptest::option::of(0i64..100_000_000),
        ) {
            let got = autopay_amount(usd(statement), usd(paid), usd(balance), maximum.map(usd)).unwrap();
            match got {
                AutopayAmount::Charge(m) => {
                    prop_assert!(m.is_positive());
                    prop_assert!(m.minor_units() <= balance);
                    prop_assert!(m.minor_units() <= statement);
                    prop_assert!(m.minor_units() <= statement - paid.max(0));
                    if let Some(max) = maximum {
                        prop_assert!(m.minor_units() <= max);
                    }
                }
                AutopayAmount::NothingDue => {
                    prop_assert!(statement - paid.max(0) <= 0 || balance <= 0);
                }
                AutopayAmount::OverMaximum { due, maximum: max } => {
                    prop_assert!(due.minor_units() > max.minor_units());
                    prop_assert!(due.minor_units() <= balance.min(statement - paid.max(0)));
                }
            }
        }

        #[test]
        fn a_payment_the_day_before_reduces_it_one_for_one(
            statement in 1i64..10_000_000,
            earlier in 0i64..10_000_000,
            payment in 1i64..10_000_000,
        ) {
            // The balance is the statement less what was paid (no other activity).
            let before = autopay_amount(usd(statement), usd(earlier), usd(statement - earlier), None).unwrap();
            let after = autopay_amount(
                usd(statement),
                usd(earlier + payment),
                usd(statement - earlier - payment),
                None,
            ).unwrap();
            let amount = |a: AutopayAmount| match a {
                AutopayAmount::Charge(m) => m.minor_units(),
                _ => 0,
            };
            prop_assert_eq!(amount(after), (amount(before) - payment).max(0));
        }
    }
}
