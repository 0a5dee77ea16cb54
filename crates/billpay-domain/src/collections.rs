//! What happens when a bill is not paid: late fees, suspension of service,
//! and payment arrangements (more time, or the past-due amount in
//! installments).
//!
//! These rules touch customers at their most vulnerable, so they are written
//! to err on the customer's side and to be explainable:
//!
//! * a late fee posts only after the grace period, only on a past-due amount
//!   at or above the biller's minimum, and never above its cap;
//! * service is suspended only on a business day (never on a Friday evening
//!   before a weekend with no office open, never on a holiday), never while a
//!   medical or weather hold runs, and only after the disconnect notice lead
//!   time;
//! * an arrangement is offered or refused with a reason the customer can read,
//!   and its installments add up to the past-due amount to the cent.
//!
//! Dates are calendar dates; amounts are [`Money`]. Mixing currencies is an
//! error ([`MoneyError::CurrencyMismatch`]), never a guess.

use jiff::civil::Date;

use crate::autopay::ensure_currency;
use crate::calendar::{BusinessCalendar, add_days, days_between};
use crate::money::{MAX_SPLIT_PARTS, Money, MoneyError};
use crate::recurrence::{End, Frequency, Recurrence};

/// How a late fee is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LateFee {
    /// The same fee whatever the past-due amount.
    Flat(Money),
    /// A share of the past-due amount in basis points (150 = 1.5%), rounded
    /// half up away from zero ([`Money::basis_points`]), then raised to
    /// `minimum` and capped at `maximum` (the cap wins if they cross).
    Percent {
        /// Hundredths of a percent of the past-due amount.
        basis_points: u32,
        /// The smallest percent fee.
        minimum: Money,
        /// The largest percent fee (often set by state regulation).
        maximum: Money,
    },
}

/// A biller's late-fee rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LateFeePolicy {
    /// Days after the due date a payment still counts as on time.
    pub grace_days: u32,
    /// The fee.
    pub fee: LateFee,
    /// No fee when less than this is past due.
    pub minimum_past_due: Money,
}

/// The late fee on `past_due`: zero when nothing, or less than the policy's
/// `minimum_past_due`, is past due; otherwise the flat fee or the capped
/// percent.
///
/// Fails only when the amounts are in different currencies.
pub fn late_fee(policy: &LateFeePolicy, past_due: Money) -> Result<Money, MoneyError> {
    let currency = past_due.currency();
    ensure_currency(currency, policy.minimum_past_due)?;
    match policy.fee {
        LateFee::Flat(fee) => ensure_currency(currency, fee)?,
        LateFee::Percent {
            minimum, maximum, ..
        } => {
            ensure_currency(currency, minimum)?;
            ensure_currency(currency, maximum)?;
        }
    }
    let zero = Money::zero(currency);
    if !past_due.is_positive() || past_due.minor_units() < policy.minimum_past_due.minor_units() {
        return Ok(zero);
    }
    let fee = match policy.fee {
        LateFee::Flat(fee) => fee.minor_units(),
        LateFee::Percent {
            basis_points,
            minimum,
            maximum,
        } => {
            // An overflowing share is larger than any cap: the cap applies.
            let share = past_due
                .basis_points(basis_points)
                .map_or(i64::MAX, |m| m.minor_units());
            share.max(minimum.minor_units()).min(maximum.minor_units())
        }
    };
    // A misconfigured negative fee would be a credit; charge nothing instead.
    Ok(Money::new(fee.max(0), currency))
}

/// The date a late fee posts for a bill due on `due`: the day after the grace
/// period ends (a payment on the due date, or on the last grace day, is on
/// time). With no grace, the day after the due date.
pub fn late_fee_date(due: Date, grace_days: u32) -> Date {
    add_days(due, i64::from(grace_days) + 1)
}

/// A biller's rule for suspending service (disconnection) for non-payment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SuspensionPolicy {
    /// Days after the due date before service may be suspended.
    pub days_past_due: u32,
    /// Days before the suspension the disconnect notice is sent.
    pub notice_lead_days: u32,
    /// No suspension when less than this is past due.
    pub minimum_past_due: Money,
}

/// Whether `past_due` is enough for the policy to suspend service at all.
///
/// Fails only when the amounts are in different currencies.
pub fn suspension_applies(policy: &SuspensionPolicy, past_due: Money) -> Result<bool, MoneyError> {
    ensure_currency(past_due.currency(), policy.minimum_past_due)?;
    Ok(past_due.is_positive() && past_due.minor_units() >= policy.minimum_past_due.minor_units())
}

/// The earliest date service may be suspended for a bill due on `due`: the
/// first business day on or after `due + days_past_due` (never a weekend or a
/// holiday, when the customer could not reach the biller to restore it).
pub fn suspension_date(due: Date, policy: &SuspensionPolicy, cal: &BusinessCalendar) -> Date {
    cal.next_business_day_on_or_after(add_days(due, i64::from(policy.days_past_due)))
}

/// The date the disconnect notice goes out: `notice_lead_days` calendar days
/// before the suspension date.
pub fn disconnect_notice_date(suspension: Date, policy: &SuspensionPolicy) -> Date {
    add_days(suspension, -i64::from(policy.notice_lead_days))
}

/// Whether service may be suspended on `date`: a business day, and not while
/// a medical or weather hold runs (`on_hold_until` is the hold's last day,
/// inclusive).
pub fn may_suspend_on(date: Date, cal: &BusinessCalendar, on_hold_until: Option<Date>) -> bool {
    cal.is_business_day(date) && on_hold_until.is_none_or(|last| date > last)
}

/// A biller's rules for payment arrangements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ArrangementRules {
    /// The smallest past-due amount an arrangement is offered for.
    pub minimum_past_due: Money,
    /// The most installments in a plan (a plan has at least 2; at most
    /// [`MAX_SPLIT_PARTS`] whatever this says).
    pub max_installments: u32,
    /// The furthest from today a pay-by date (extension) or a plan's first
    /// installment may be, in days.
    pub max_extension_days: u32,
    /// The most arrangements not kept in the last 12 months for a customer to
    /// still get one (0 = any broken arrangement rules a new one out).
    pub max_broken_last_12_months: u32,
    /// Days after an installment's due date before it counts as missed.
    pub grace_days: u32,
}

/// What the customer asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArrangementKind {
    /// Pay the whole past-due amount later, by this date.
    Extension {
        /// The date the full amount will be paid by.
        pay_by: Date,
    },
    /// Pay it in `count` installments.
    Installments {
        /// How many payments.
        count: u32,
        /// The first payment's date.
        first: Date,
        /// How often after the first.
        frequency: Frequency,
    },
}

/// Why an arrangement was refused; the message is written for the customer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ArrangementError {
    /// Nothing is past due.
    #[error("there is no past-due amount to arrange")]
    NothingPastDue,
    /// Less than the biller's minimum is past due.
    #[error("payment arrangements are for past-due amounts of {minimum} or more")]
    BelowMinimum {
        /// The smallest amount an arrangement is offered for.
        minimum: Money,
    },
    /// Too many earlier arrangements were not kept.
    #[error(
        "a payment arrangement isn't available because {broken} earlier arrangements were not kept in the last 12 months"
    )]
    TooManyBroken {
        /// Arrangements not kept in the last 12 months.
        broken: u32,
    },
    /// The pay-by date is today or earlier.
    #[error("the pay-by date must be after today")]
    PayByNotInFuture,
    /// The pay-by date (or first installment) is too far out.
    #[error("the date can be at most {max_days} days from today")]
    TooFarOut {
        /// The most days from today.
        max_days: u32,
    },
    /// The first installment is before today.
    #[error("the first payment date can't be before today")]
    FirstPaymentInPast,
    /// The biller does not offer installment plans.
    #[error("payment plans in installments are not available")]
    InstallmentsNotOffered,
    /// A plan of zero payments.
    #[error("a payment plan needs at least one payment")]
    NoInstallments,
    /// A plan of one payment (that is an extension).
    #[error("a payment plan needs at least 2 payments; to pay it all later, ask for more time")]
    TooFewInstallments,
    /// More payments than the biller allows.
    #[error("a payment plan can have at most {max} payments")]
    TooManyInstallments {
        /// The most payments allowed.
        max: u32,
    },
    /// The plan's dates run past the end of the calendar.
    #[error("the payment dates are too far in the future")]
    DatesOutOfRange,
    /// The amounts are in different currencies (a programming error).
    #[error(transparent)]
    Money(#[from] MoneyError),
}

/// Whether the customer may have the arrangement `kind` today.
///
/// Checked in this order, and the first failure is the reason given: something
/// is past due, at least `minimum_past_due`; no more than
/// `max_broken_last_12_months` arrangements broken; for an extension, a pay-by
/// date after today and at most `max_extension_days` away; for installments,
/// the biller offers them, 2 to `max_installments` payments, and a first date
/// from today to `max_extension_days` away.
pub fn check_eligibility(
    rules: &ArrangementRules,
    past_due: Money,
    broken_last_12_months: u32,
    today: Date,
    kind: &ArrangementKind,
) -> Result<(), ArrangementError> {
    ensure_currency(past_due.currency(), rules.minimum_past_due)?;
    if !past_due.is_positive() {
        return Err(ArrangementError::NothingPastDue);
    }
    if past_due.minor_units() < rules.minimum_past_due.minor_units() {
        return Err(ArrangementError::BelowMinimum {
            minimum: rules.minimum_past_due,
        });
    }
    if broken_last_12_months > rules.max_broken_last_12_months {
        return Err(ArrangementError::TooManyBroken {
            broken: broken_last_12_months,
        });
    }
    let within_reach = |date: Date| {
        if days_between(today, date) > i64::from(rules.max_extension_days) {
            Err(ArrangementError::TooFarOut {
                max_days: rules.max_extension_days,
            })
        } else {
            Ok(())
        }
    };
    match *kind {
        ArrangementKind::Extension { pay_by } => {
            if pay_by <= today {
                return Err(ArrangementError::PayByNotInFuture);
            }
            within_reach(pay_by)
        }
        ArrangementKind::Installments { count, first, .. } => {
            let max = rules.max_installments.min(MAX_SPLIT_PARTS);
            if max < 2 {
                return Err(ArrangementError::InstallmentsNotOffered);
            }
            if count < 2 {
                return Err(ArrangementError::TooFewInstallments);
            }
            if count > max {
                return Err(ArrangementError::TooManyInstallments { max });
            }
            if first < today {
                return Err(ArrangementError::FirstPaymentInPast);
            }
            within_reach(first)
        }
    }
}

/// The installments of a plan: `count` dates from `first` at `frequency`
/// (monthly plans keep `first`'s day, clamped at month ends), each with its
/// amount.
///
/// The amounts come from [`Money::split`]: they sum exactly to `past_due` and
/// differ by at most one cent, the extra cents on the first installments.
/// `count` is 1 to [`MAX_SPLIT_PARTS`] here (the 2-payment minimum for a plan
/// is a business rule in [`check_eligibility`]).
pub fn installments(
    past_due: Money,
    count: u32,
    first: Date,
    frequency: Frequency,
) -> Result<Vec<(Date, Money)>, ArrangementError> {
    if !past_due.is_positive() {
        return Err(ArrangementError::NothingPastDue);
    }
    if count == 0 {
        return Err(ArrangementError::NoInstallments);
    }
    if count > MAX_SPLIT_PARTS {
        return Err(ArrangementError::TooManyInstallments {
            max: MAX_SPLIT_PARTS,
        });
    }
    let amounts = past_due.split(count)?;
    let schedule = Recurrence::new(first, frequency, End::Count(count))
        .map_err(|_| ArrangementError::NoInstallments)?;
    let plan: Vec<(Date, Money)> = schedule.iter().zip(amounts).collect();
    if plan.len() != usize::try_from(count).map_err(|_| ArrangementError::DatesOutOfRange)? {
        return Err(ArrangementError::DatesOutOfRange);
    }
    debug_assert_eq!(
        plan.iter()
            .map(|(_, m)| i128::from(m.minor_units()))
            .sum::<i128>(),
        i128::from(past_due.minor_units()),
        "installments must sum to the past-due amount"
    );
    Ok(plan)
}

/// Whether an installment of `amount` due on `due` counts as missed on
/// `today`: the grace period (`grace_days` after `due`) is over and less than
/// `amount` has been paid toward it. On the last grace day it is not missed
/// yet.
///
/// Fails only when the amounts are in different currencies.
pub fn installment_missed(
    due: Date,
    grace_days: u32,
    today: Date,
    paid_toward_it: Money,
    amount: Money,
) -> Result<bool, MoneyError> {
    ensure_currency(amount.currency(), paid_toward_it)?;
    let grace_over = today > add_days(due, i64::from(grace_days));
    Ok(grace_over && paid_toward_it.minor_units() < amount.minor_units())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Currency;
    use jiff::civil::date;
    use proptest::prelude::*;

    fn usd(cents: i64) -> Money {
        Money::usd(cents)
    }

    fn percent(bps: u32, min: i64, max: i64) -> LateFeePolicy {
        LateFeePolicy {
            grace_days: 5,
            fee: LateFee::Percent {
                basis_points: bps,
                minimum: usd(min),
                maximum: usd(max),
            },
            minimum_past_due: usd(1000),
        }
    }

    #[test]
    fn late_fees() {
        let flat = LateFeePolicy {
            grace_days: 5,
            fee: LateFee::Flat(usd(1500)),
            minimum_past_due: usd(1000),
        };
        assert_eq!(late_fee(&flat, usd(999)), Ok(usd(0)));
        assert_eq!(late_fee(&flat, usd(1000)), Ok(usd(1500)));
        assert_eq!(late_fee(&flat, usd(0)), Ok(usd(0)));
        assert_eq!(late_fee(&flat, usd(-500)), Ok(usd(0)));
        // 1.5% with a $5 minimum and a $25 maximum.
        let p = percent(150, 500, 2500);
        assert_eq!(late_fee(&p, usd(999)), Ok(usd(0)));
        assert_eq!(late_fee(&p, usd(10_000)), Ok(usd(500)), "1.50 → minimum");
        assert_eq!(late_fee(&p, usd(100_000)), Ok(usd(1500)));
        assert_eq!(
            late_fee(&p, usd(100_033)),
            Ok(usd(1500)),
            "15.00495 → 15.00"
        );
        assert_eq!(late_fee(&p, usd(100_034)), Ok(usd(1501)), "15.0051 → 15.01");
        assert_eq!(late_fee(&p, usd(1_000_000)), Ok(usd(2500)), "capped");
        assert_eq!(late_fee(&p, usd(i64::MAX)), Ok(usd(2500)));
        let crossed = percent(150, 3000, 2500);
        assert_eq!(
            late_fee(&crossed, usd(10_000)),
            Ok(usd(2500)),
            "the cap wins"
        );
        let cad = Money::new(10_000, Currency::CAD);
        assert!(late_fee(&p, cad).is_err());
        assert!(late_fee(&flat, cad).is_err());
    }

    #[test]
    fn late_fee_dates() {
        assert_eq!(late_fee_date(date(2026, 6, 10), 5), date(2026, 6, 16));
        assert_eq!(late_fee_date(date(2026, 6, 30), 0), date(2026, 7, 1));
        assert_eq!(late_fee_date(date(2026, 2, 28), 1), date(2026, 3, 2));
    }

    #[test]
    fn suspension_dates_avoid_weekends_and_holidays() {
        let cal = BusinessCalendar::us_federal(2026..=2027);
        let policy = SuspensionPolicy {
            days_past_due: 30,
            notice_lead_days: 10,
            minimum_past_due: usd(5000),
        };
        // Due June 3, 2026 + 30 = Friday July 3, the observed holiday → Monday.
        let s = suspension_date(date(2026, 6, 3), &policy, &cal);
        assert_eq!(s, date(2026, 7, 6));
        assert!(may_suspend_on(s, &cal, None));
        assert_eq!(disconnect_notice_date(s, &policy), date(2026, 6, 26));
        // Due June 5 + 30 = Sunday July 5 → Monday July 6.
        assert_eq!(
            suspension_date(date(2026, 6, 5), &policy, &cal),
            date(2026, 7, 6)
        );
        assert_eq!(
            suspension_date(date(2026, 6, 8), &policy, &cal),
            date(2026, 7, 8)
        );
        assert!(!may_suspend_on(date(2026, 7, 3), &cal, None));
        assert!(!may_suspend_on(date(2026, 7, 4), &cal, None));
        // A hold through July 10 blocks through the 10th, inclusive.
        let hold = Some(date(2026, 7, 10));
        assert!(!may_suspend_on(date(2026, 7, 6), &cal, hold));
        assert!(!may_suspend_on(date(2026, 7, 10), &cal, hold));
        assert!(may_suspend_on(date(2026, 7, 13), &cal, hold));
        assert_eq!(suspension_applies(&policy, usd(4999)), Ok(false));
        assert_eq!(suspension_applies(&policy, usd(5000)), Ok(true));
        assert!(suspension_applies(&policy, Money::new(5000, Currency::EUR)).is_err());
        for offset in 0..400 {
            let due = add_days(date(2026, 1, 1), offset);
            let s = suspension_date(due, &policy, &cal);
            assert!(cal.is_business_day(s) && s >= add_days(due, 30));
            assert!(days_between(add_days(due, 30), s) <= 4);
        }
    }

    fn rules() -> ArrangementRules {
        ArrangementRules {
            minimum_past_due: usd(2500),
            max_installments: 6,
            max_extension_days: 30,
            max_broken_last_12_months: 1,
            grace_days: 3,
        }
    }

    #[test]
    fn eligibility_reasons() {
        let today = date(2026, 5, 4);
        let r = rules();
        let ext = |pay_by| ArrangementKind::Extension { pay_by };
        let plan = |count, first| ArrangementKind::Installments {
            count,
            first,
            frequency: Frequency::Monthly,
        };
        let check = |past_due, broken, kind: ArrangementKind| {
            check_eligibility(&r, usd(past_due), broken, today, &kind)
        };
        assert_eq!(check(30_000, 0, ext(date(2026, 5, 20))), Ok(()));
        assert_eq!(check(30_000, 1, plan(6, today)), Ok(()));
        assert_eq!(
            check(0, 0, ext(date(2026, 5, 20))),
            Err(ArrangementError::NothingPastDue)
        );
        let err = check(2499, 0, ext(date(2026, 5, 20))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "payment arrangements are for past-due amounts of $25.00 or more"
        );
        let err = check(30_000, 2, ext(date(2026, 5, 20))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a payment arrangement isn't available because 2 earlier arrangements were not kept in the last 12 months"
        );
        assert_eq!(
            check(30_000, 0, ext(today)),
            Err(ArrangementError::PayByNotInFuture)
        );
        assert_eq!(check(30_000, 0, ext(date(2026, 6, 3))), Ok(()), "30 days");
        assert_eq!(
            check(30_000, 0, ext(date(2026, 6, 4))),
            Err(ArrangementError::TooFarOut { max_days: 30 })
        );
        assert_eq!(
            check(30_000, 0, plan(1, today)),
            Err(ArrangementError::TooFewInstallments)
        );
        assert_eq!(
            check(30_000, 0, plan(7, today)).unwrap_err().to_string(),
            "a payment plan can have at most 6 payments"
        );
        assert_eq!(
            check(30_000, 0, plan(3, date(2026, 5, 3))),
            Err(ArrangementError::FirstPaymentInPast)
        );
        assert_eq!(
            check(30_000, 0, plan(3, date(2026, 6, 4))),
            Err(ArrangementError::TooFarOut { max_days: 30 })
        );
        let no_plans = ArrangementRules {
            max_installments: 1,
            ..rules()
        };
        assert_eq!(
            check_eligibility(&no_plans, usd(30_000), 0, today, &plan(2, today)),
            Err(ArrangementError::InstallmentsNotOffered)
        );
        assert!(matches!(
            check_eligibility(
                &r,
                Money::new(30_000, Currency::CAD),
                0,
                today,
                &plan(2, today)
            ),
            Err(ArrangementError::Money(_))
        ));
    }

    #[test]
    fn installment_plans() {
        let plan = installments(usd(10_000), 3, date(2026, 1, 31), Frequency::Monthly).unwrap();
        assert_eq!(
            plan,
            vec![
                (date(2026, 1, 31), usd(3334)),
                (date(2026, 2, 28), usd(3333)),
                (date(2026, 3, 31), usd(3333)),
            ]
        );
        let weekly = installments(usd(101), 2, date(2026, 5, 4), Frequency::Weekly).unwrap();
        assert_eq!(
            weekly,
            vec![(date(2026, 5, 4), usd(51)), (date(2026, 5, 11), usd(50))]
        );
        assert_eq!(
            installments(usd(0), 3, date(2026, 1, 1), Frequency::Monthly),
            Err(ArrangementError::NothingPastDue)
        );
        assert_eq!(
            installments(usd(100), 0, date(2026, 1, 1), Frequency::Monthly),
            Err(ArrangementError::NoInstallments)
        );
        assert_eq!(
            installments(
                usd(100),
                MAX_SPLIT_PARTS + 1,
                date(2026, 1, 1),
                Frequency::Weekly
            ),
            Err(ArrangementError::TooManyInstallments {
                max: MAX_SPLIT_PARTS
            })
        );
        assert_eq!(
            installments(usd(100), 3, date(9999, 11, 1), Frequency::Monthly),
            Err(ArrangementError::DatesOutOfRange)
        );
    }

    #[test]
    fn missed_installments() {
        let due = date(2026, 6, 1);
        let missed = |today, paid| installment_missed(due, 3, today, usd(paid), usd(5000)).unwrap();
        assert!(!missed(date(2026, 6, 1), 0));
        assert!(!missed(date(2026, 6, 4), 0), "last grace day");
        assert!(missed(date(2026, 6, 5), 0));
        assert!(missed(date(2026, 6, 5), 4999));
        assert!(!missed(date(2026, 6, 5), 5000));
        assert!(!missed(date(2026, 6, 5), 6000));
        assert!(installment_missed(due, 3, due, Money::new(1, Currency::EUR), usd(1)).is_err());
    }

    proptest! {
        #[test]
        fn installments_sum_exactly_and_differ_by_at_most_a_cent(
            cents in 1i64..1_000_000_000,
            count in 1u32..=60,
            offset in 0i64..3000,
            frequency in prop_oneof![
                Just(Frequency::Weekly),
                Just(Frequency::Biweekly),
                Just(Frequency::Monthly)
            ],
        ) {
            let first = add_days(date(2026, 1, 1), offset);
            let plan = installments(usd(cents), count, first, frequency).unwrap();
            prop_assert_eq!(plan.len(), usize::try_from(count).unwrap());
            let total: i64 = plan.iter().map(|(_, m)| m.minor_units()).sum();
            prop_assert_eq!(total, cents);
            let max = plan.iter().map(|(_, m)| m.minor_units()).max().unwrap();
            let min = plan.iter().map(|(_, m)| m.minor_units()).min().unwrap();
            prop_assert!(max - min <= 1);
            // Larger amounts first, dates strictly increasing from `first`.
            prop_assert!(plan.windows(2).all(|w| w[0].1.minor_units() >= w[1].1.minor_units()));
            prop_assert!(plan.windows(2).all(|w| w[0].0 < w[1].0));
            prop_assert_eq!(plan[0].0, first);
        }

        #[test]
        fn late_fee_never_exceeds_its_cap(
            past_due in -1_000_000i64..i64::MAX,
            bps in 0u32..100_000,
            min in 0i64..10_000,
            max in 0i64..10_000,
            minimum_past_due in 0i64..10_000,
        ) {
            let policy = LateFeePolicy {
                grace_days: 0,
                fee: LateFee::Percent { basis_points: bps, minimum: usd(min), maximum: usd(max) },
                minimum_past_due: usd(minimum_past_due),
            };
            let fee = late_fee(&policy, usd(past_due)).unwrap().minor_units();
            prop_assert!(fee >= 0);
            prop_assert!(fee <= max);
            if past_due < minimum_past_due || past_due <= 0 {
                prop_assert_eq!(fee, 0);
            } else {
                prop_assert!(fee >= min.min(max));
            }
        }
    }
}
