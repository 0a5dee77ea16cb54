//! Whether, and on which date, a failed scheduled or AutoPay payment is tried
//! again.
//!
//! Retrying is worth it only for a *soft* decline (insufficient funds, issuer
//! unavailable); retrying a hard decline (lost, stolen, pickup, fraud, do not
//! honor, closed account) never succeeds, annoys the customer and costs the
//! biller network fees. Which codes are soft is decided once, in
//! [`DeclineCode::retry_policy`]; only [`RetryPolicy::Retryable`] codes are
//! retried here. `FixAndRetry` codes (expired card, wrong number, CVC or ZIP,
//! authentication required) are not retried either: sending the same data
//! again cannot work, and the customer has to fix the method first.
//!
//! Card networks cap reattempts of a declined transaction, and charge the
//! merchant for every one over the cap:
//!
//! * **Visa** (excessive reattempts rule, since 2021): no reattempt at all
//!   after a category 1 ("issuer will never approve") decline, and at most 15
//!   reattempts in 30 days for the same card, merchant and amount after a soft
//!   decline (Visa raised this to 20 in 2025 and split the counters for
//!   customer- and merchant-initiated payments).
//! * **Mastercard** (excessive retries, merchant advice codes): never again
//!   after advice code 03 "do not try again" or 21 "payment cancelled"; at
//!   most 10 attempts in 24 hours and 35 in 30 days on the same card.
//!
//! billpay stays far below both: at most [`RETRY_ATTEMPTS_MAX`] attempts in
//! all (three reattempts), at least a day apart, within at most
//! [`RETRY_WINDOW_DAYS_MAX`] days of the first. The [`RetryRules`] fields are
//! clamped to those limits whatever a configuration says.
//!
//! Bank debits (ACH) follow NACHA's rule instead: see [`ach_may_represent`].

use jiff::civil::Date;

use crate::calendar::add_days;
use crate::decline::{DeclineCode, RetryPolicy};

/// The most card attempts for one payment, the first included.
pub const RETRY_ATTEMPTS_MAX: u32 = 4;

/// The longest window, in days from the first attempt, in which retries run.
pub const RETRY_WINDOW_DAYS_MAX: u32 = 30;

/// The most times NACHA lets a returned (R01/R09) entry be presented again.
pub const ACH_REPRESENTMENTS_MAX: u32 = 2;

/// How a failed card payment is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RetryRules {
    /// Attempts in all, the first included (default 4; at most
    /// [`RETRY_ATTEMPTS_MAX`]).
    pub max_attempts: u32,
    /// No attempt later than this many days after the first (default 14; at
    /// most [`RETRY_WINDOW_DAYS_MAX`]).
    pub window_days: u32,
    /// Days between consecutive attempts: the second attempt is
    /// `spacing_days[0]` days after the first, the third `spacing_days[1]`
    /// days after the second, and so on (default `[1, 3, 7]`: days 1, 4 and 11
    /// after the first). A spacing of 0 is taken as 1: never two attempts on
    /// one day.
    pub spacing_days: [u32; 3],
}

impl Default for RetryRules {
    fn default() -> RetryRules {
        RetryRules {
            max_attempts: 4,
            window_days: 14,
            spacing_days: [1, 3, 7],
        }
    }
}

/// The date of the next attempt at a card payment that was just declined with
/// `code`, or `None` when it must not be tried again.
///
/// `attempts_made` counts the attempts so far, the first included (a decline
/// means at least one, so 0 is taken as 1); `first_attempt` is the date of the
/// first. `None` when:
///
/// * the code is not [`RetryPolicy::Retryable`] (lost, stolen, pickup,
///   fraudulent, do not honor, do not try again, invalid account, expired
///   card, wrong number, …) or is an ACH return (see [`ach_may_represent`]);
/// * `attempts_made` has reached `max_attempts` (capped at
///   [`RETRY_ATTEMPTS_MAX`]);
/// * the next date would be more than `window_days` (capped at
///   [`RETRY_WINDOW_DAYS_MAX`]) after the first attempt.
pub fn next_attempt(
    code: DeclineCode,
    attempts_made: u32,
    first_attempt: Date,
    rules: &RetryRules,
) -> Option<Date> {
    if code.is_ach() || code.retry_policy() != RetryPolicy::Retryable {
        return None;
    }
    let attempts_made = attempts_made.max(1);
    let max_attempts = rules.max_attempts.min(RETRY_ATTEMPTS_MAX);
    if attempts_made >= max_attempts {
        return None;
    }
    // Reattempt k (1-based) is the sum of the first k spacings after the first.
    let reattempt = usize::try_from(attempts_made).ok()?;
    let offset_days: u64 = rules
        .spacing_days
        .get(..reattempt)?
        .iter()
        .map(|&days| u64::from(days.max(1)))
        .sum();
    let window_days = rules.window_days.min(RETRY_WINDOW_DAYS_MAX);
    if offset_days > u64::from(window_days) {
        return None;
    }
    Some(add_days(first_attempt, i64::try_from(offset_days).ok()?))
}

/// Whether a bank debit returned with `code` may be presented again, after it
/// has already been re-presented `represented_times` times.
///
/// NACHA lets an originator reinitiate an entry returned R01 (insufficient
/// funds) or R09 (uncollected funds) at most twice after the original
/// presentment — three presentments in all. Every other return needs a new
/// authorization or a corrected account and is never re-presented as is.
/// `code` is matched case-insensitively, surrounding spaces ignored.
pub fn ach_may_represent(code: &str, represented_times: u32) -> bool {
    matches!(
        DeclineCode::parse(code.trim()),
        Some(DeclineCode::AchR01 | DeclineCode::AchR09)
    ) && represented_times < ACH_REPRESENTMENTS_MAX
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    const FIRST: Date = date(2026, 3, 2);

    #[test]
    fn default_schedule() {
        let rules = RetryRules::default();
        let next = |made| next_attempt(DeclineCode::InsufficientFunds, made, FIRST, &rules);
        assert_eq!(next(0), Some(date(2026, 3, 3)));
        assert_eq!(next(1), Some(date(2026, 3, 3)));
        assert_eq!(next(2), Some(date(2026, 3, 6)));
        assert_eq!(next(3), Some(date(2026, 3, 13)));
        assert_eq!(next(4), None);
        assert_eq!(next(u32::MAX), None);
    }

    #[test]
    fn never_retry_and_fix_first_codes_get_no_attempt() {
        let rules = RetryRules::default();
        for &code in DeclineCode::all() {
            let retryable = !code.is_ach() && code.retry_policy() == RetryPolicy::Retryable;
            for made in 0..6 {
                let next = next_attempt(code, made, FIRST, &rules);
                if !retryable {
                    assert_eq!(next, None, "{code} after {made}");
                }
            }
            if retryable {
                assert!(next_attempt(code, 1, FIRST, &rules).is_some(), "{code}");
            }
        }
        for code in [
            DeclineCode::LostCard,
            DeclineCode::StolenCard,
            DeclineCode::PickupCard,
            DeclineCode::Fraudulent,
            DeclineCode::DoNotHonor,
            DeclineCode::DoNotTryAgain,
            DeclineCode::IncorrectNumber,
            DeclineCode::ExpiredCard,
            DeclineCode::AchR01,
        ] {
            assert_eq!(next_attempt(code, 1, FIRST, &rules), None, "{code}");
        }
        for code in [
            DeclineCode::InsufficientFunds,
            DeclineCode::TryAgainLater,
            DeclineCode::ProcessingError,
            DeclineCode::GenericDecline,
        ] {
            assert!(next_attempt(code, 1, FIRST, &rules).is_some(), "{code}");
        }
    }

    #[test]
    fn the_window_and_the_caps_stop_retries() {
        let code = DeclineCode::InsufficientFunds;
        let short = RetryRules {
            window_days: 5,
            ..RetryRules::default()
        };
        assert_eq!(next_attempt(code, 1, FIRST, &short), Some(date(2026, 3, 3)));
        assert_eq!(next_attempt(code, 2, FIRST, &short), Some(date(2026, 3, 6)));
        assert_eq!(next_attempt(code, 3, FIRST, &short), None, "day 11 > 5");
        let two = RetryRules {
            max_attempts: 2,
            ..RetryRules::default()
        };
        assert!(next_attempt(code, 1, FIRST, &two).is_some());
        assert_eq!(next_attempt(code, 2, FIRST, &two), None);
        // A configuration cannot lift the hard limits.
        let greedy = RetryRules {
            max_attempts: 100,
            window_days: 365,
            spacing_days: [0, 20, 20],
        };
        assert_eq!(
            next_attempt(code, 1, FIRST, &greedy),
            Some(date(2026, 3, 3))
        );
        assert_eq!(
            next_attempt(code, 2, FIRST, &greedy),
            Some(date(2026, 3, 23))
        );
        assert_eq!(next_attempt(code, 3, FIRST, &greedy), None, "day 41 > 30");
        assert_eq!(next_attempt(code, 4, FIRST, &greedy), None);
        let none = RetryRules {
            max_attempts: 0,
            ..RetryRules::default()
        };
        assert_eq!(next_attempt(code, 1, FIRST, &none), None);
    }

    #[test]
    fn attempts_are_strictly_later_and_within_the_caps() {
        for a in 0..5 {
            for b in 0..12 {
                for c in 0..20 {
                    let rules = RetryRules {
                        max_attempts: 10,
                        window_days: 40,
                        spacing_days: [a, b, c],
                    };
                    let mut previous = FIRST;
                    let mut count = 1;
                    while let Some(next) =
                        next_attempt(DeclineCode::TryAgainLater, count, FIRST, &rules)
                    {
                        assert!(next > previous);
                        assert!(next <= add_days(FIRST, 30));
                        previous = next;
                        count += 1;
                    }
                    assert!(count <= RETRY_ATTEMPTS_MAX);
                }
            }
        }
    }

    #[test]
    fn ach_representment() {
        for code in ["R01", "R09", "r01", " R09 "] {
            assert!(ach_may_represent(code, 0), "{code}");
            assert!(ach_may_represent(code, 1), "{code}");
            assert!(!ach_may_represent(code, 2), "{code}");
            assert!(!ach_may_represent(code, u32::MAX), "{code}");
        }
        for n in 2..=29 {
            let code = format!("R{n:02}");
            if n != 9 {
                assert!(!ach_may_represent(&code, 0), "{code}");
            }
        }
        for code in ["", "R1", "R00", "R30", "insufficient_funds", "R01x"] {
            assert!(!ach_may_represent(code, 0), "{code:?}");
        }
    }
}
