//! Dates and instants for schedules: month-end clamping, business days and
//! local wall-clock times across daylight-saving changes.
//!
//! Every scheduled thing in billpay (AutoPay, scheduled payments, reminders,
//! retries, late fees, suspensions) is decided here as a *local date* first
//! and turned into an instant last. That order is what keeps the classic
//! scheduling failures out:
//!
//! * **Month ends are never skipped.** A due date or payment on the 29th, 30th
//!   or 31st moves to the month's last day when the month is shorter
//!   ([`day_in_month`]), and a monthly series keeps its *anchor* day
//!   ([`add_months_anchored`]): Jan 31 → Feb 28 → Mar 31, not Mar 28.
//! * **A local time maps to exactly one instant** ([`local_instant`]): on the
//!   spring-forward day a time inside the skipped hour runs at the end of the
//!   gap, and on the fall-back day a repeated time runs once, at its earlier
//!   occurrence. A job keyed by its local date therefore runs once per date,
//!   never twice and never zero times.
//! * **Business days** ([`BusinessCalendar`]) are Monday to Friday minus the
//!   holidays the biller configures, with the US federal holidays built in.
//!
//! Nothing here reads a clock: dates and instants are passed in.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use jiff::Span;
use jiff::Timestamp;
use jiff::civil::{Date, Time, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};

/// `date` moved by `days` calendar days, saturating at [`Date::MIN`] and
/// [`Date::MAX`] instead of failing (no schedule runs near year ±9999, and the
/// rules here must never panic).
pub(crate) fn add_days(date: Date, days: i64) -> Date {
    match Span::new().try_days(days) {
        Ok(span) => date.saturating_add(span),
        Err(_) if days < 0 => Date::MIN,
        Err(_) => Date::MAX,
    }
}

/// The number of calendar days from `from` to `to` (negative when `to` is
/// earlier).
pub(crate) fn days_between(from: Date, to: Date) -> i64 {
    // A difference between two civil dates measured in days always fits a
    // span, so the fallback is never taken; it only keeps this panic-free.
    from.until(to).map_or(0, |span| i64::from(span.get_days()))
}

/// The given day of the month, clamped to the month's last day.
///
/// Day 31 in April gives April 30; days 29 to 31 in February give February 28,
/// or February 29 in a leap year. This is how a due date "on the 31st" lands in
/// every month without being skipped.
///
/// Preconditions: `month` is 1–12, `day` is 1–31 and `year` is within jiff's
/// range (−9999 to 9999). Values outside are clamped into range (and assert in
/// debug builds): callers pass validated dates, and a scheduling rule must
/// never panic on a request path.
pub fn day_in_month(year: i16, month: i8, day: i8) -> Date {
    debug_assert!((1..=12).contains(&month), "month {month} out of range");
    debug_assert!((1..=31).contains(&day), "day {day} out of range");
    let year = year.clamp(Date::MIN.year(), Date::MAX.year());
    let month = month.clamp(1, 12);
    let first = Date::new(year, month, 1).unwrap_or(Date::MIN);
    let last = first.days_in_month();
    first
        .with()
        .day(day.clamp(1, last))
        .build()
        .unwrap_or(first)
}

/// `date` moved by whole `months`, landing on `anchor_day` when the target
/// month has it and on the month's last day when it does not.
///
/// The anchor, not `date`'s own day, decides: a series anchored on the 31st
/// goes Jan 31 → (+1) Feb 28 (Feb 29 in a leap year) → (+2) Mar 31 → (+3)
/// Apr 30. Stepping month by month from a clamped day would drift to the 28th
/// for good; always compute from the series start and the anchor.
///
/// Saturates at the first or last representable month.
pub fn add_months_anchored(date: Date, months: i32, anchor_day: i8) -> Date {
    let index = i64::from(date.year()) * 12 + i64::from(date.month() - 1) + i64::from(months);
    let min = i64::from(Date::MIN.year()) * 12;
    let max = i64::from(Date::MAX.year()) * 12 + 11;
    let index = index.clamp(min, max);
    let year = i16::try_from(index.div_euclid(12)).unwrap_or(Date::MAX.year());
    let month = i8::try_from(index.rem_euclid(12) + 1).unwrap_or(12);
    day_in_month(year, month, anchor_day.clamp(1, 31))
}

/// The largest number of holidays a [`BusinessCalendar`] holds.
///
/// Bounds memory and every scan for the next business day (a run of
/// non-business days is at most this many holidays plus the weekends between).
pub const HOLIDAYS_MAX: usize = 10_000;

/// Which days are business days: Monday to Friday, except holidays.
///
/// Business days decide when a bank debit is sent, when a late fee may post and
/// when service may be suspended (never on a weekend or holiday).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BusinessCalendar {
    holidays: BTreeSet<Date>,
}

impl BusinessCalendar {
    /// A calendar with these holidays (weekends are always non-business days).
    ///
    /// At most [`HOLIDAYS_MAX`] holidays are kept (the earliest ones).
    pub fn new(holidays: impl IntoIterator<Item = Date>) -> BusinessCalendar {
        let mut set = BTreeSet::new();
        for day in holidays {
            if set.len() >= HOLIDAYS_MAX {
                break;
            }
            set.insert(day);
        }
        BusinessCalendar { holidays: set }
    }

    /// The eleven US federal holidays (5 U.S.C. § 6103) falling in `years`,
    /// on their observed dates.
    ///
    /// New Year's Day, Martin Luther King Jr. Day (third Monday of January),
    /// Washington's Birthday (third Monday of February), Memorial Day (last
    /// Monday of May), Juneteenth (June 19), Independence Day (July 4), Labor
    /// Day (first Monday of September), Columbus Day (second Monday of
    /// October), Veterans Day (November 11), Thanksgiving (fourth Thursday of
    /// November) and Christmas (December 25).
    ///
    /// A fixed-date holiday on a Saturday is observed the Friday before, on a
    /// Sunday the Monday after (the federal-employee rule). So New Year's Day
    /// of the following year can be observed on December 31 of a year in the
    /// range (2028-01-01 is a Saturday: December 31, 2027 is a holiday), and it
    /// is included.
    ///
    /// Note for bank settlement: the Federal Reserve does *not* close on the
    /// Friday before a Saturday holiday. A calendar for ACH settlement dates
    /// should be built with [`BusinessCalendar::new`] from the Fed's list.
    pub fn us_federal(years: RangeInclusive<i16>) -> BusinessCalendar {
        let (first, last) = (*years.start(), *years.end());
        let mut holidays = Vec::new();
        if first > last {
            return BusinessCalendar::new(holidays);
        }
        // One year either side: a Saturday January 1 is observed on the
        // previous December 31.
        let from = first.saturating_sub(1).max(Date::MIN.year());
        let to = last.saturating_add(1).min(Date::MAX.year());
        for year in from..=to {
            holidays.extend(
                us_federal_holidays_of(year)
                    .into_iter()
                    .filter(|d| (first..=last).contains(&d.year())),
            );
            if holidays.len() >= HOLIDAYS_MAX {
                break;
            }
        }
        BusinessCalendar::new(holidays)
    }

    /// The holidays, in date order.
    pub fn holidays(&self) -> impl Iterator<Item = Date> + '_ {
        self.holidays.iter().copied()
    }

    /// Whether `date` is Monday to Friday and not a holiday.
    pub fn is_business_day(&self, date: Date) -> bool {
        !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
            && !self.holidays.contains(&date)
    }

    /// `date` itself when it is a business day, otherwise the next one.
    ///
    /// Saturates at [`Date::MAX`].
    pub fn next_business_day_on_or_after(&self, date: Date) -> Date {
        let mut day = date;
        // Terminates: each step passes a weekend day or one of at most
        // HOLIDAYS_MAX holidays, or reaches Date::MAX.
        while !self.is_business_day(day) {
            match day.tomorrow() {
                Ok(next) => day = next,
                Err(_) => return day,
            }
        }
        day
    }

    /// `date` itself when it is a business day, otherwise the one before.
    ///
    /// Saturates at [`Date::MIN`].
    pub fn previous_business_day_on_or_before(&self, date: Date) -> Date {
        let mut day = date;
        while !self.is_business_day(day) {
            match day.yesterday() {
                Ok(previous) => day = previous,
                Err(_) => return day,
            }
        }
        day
    }

    /// The `n`th business day after `date` (`date` itself does not count; for
    /// `n == 0` the result is `date` moved to a business day if it is not one).
    ///
    /// Friday + 1 is Monday; Friday before a Monday holiday + 1 is Tuesday.
    pub fn add_business_days(&self, date: Date, n: u32) -> Date {
        let mut day = self.next_business_day_on_or_after(date);
        for _ in 0..n {
            let Ok(next) = day.tomorrow() else {
                return day;
            };
            day = self.next_business_day_on_or_after(next);
        }
        day
    }
}

/// The observed dates of the federal holidays of `year` (some may fall in the
/// neighbouring year: a Saturday January 1 is observed on December 31).
fn us_federal_holidays_of(year: i16) -> Vec<Date> {
    let fixed = |month: i8, day: i8| Date::new(year, month, day).ok().map(observed);
    let nth = |month: i8, nth: i8, weekday: Weekday| {
        Date::new(year, month, 1)
            .and_then(|d| d.nth_weekday_of_month(nth, weekday))
            .ok()
    };
    [
        fixed(1, 1),
        nth(1, 3, Weekday::Monday),
        nth(2, 3, Weekday::Monday),
        nth(5, -1, Weekday::Monday),
        fixed(6, 19),
        fixed(7, 4),
        nth(9, 1, Weekday::Monday),
        nth(10, 2, Weekday::Monday),
        fixed(11, 11),
        nth(11, 4, Weekday::Thursday),
        fixed(12, 25),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Saturday → the Friday before, Sunday → the Monday after.
fn observed(date: Date) -> Date {
    match date.weekday() {
        Weekday::Saturday => add_days(date, -1),
        Weekday::Sunday => add_days(date, 1),
        _ => date,
    }
}

/// The one instant at which local `date` and `time` happen in `tz`.
///
/// * Normally there is exactly one such instant.
/// * **Gap** (spring forward: 02:00–02:59 does not exist in the US): the
///   result is the first instant after the gap, i.e. the moment of the
///   transition. 02:00 and 02:30 on 2026-03-08 in New York both give 03:00
///   EDT (07:00 UTC), the same instant as 03:00 itself.
/// * **Fold** (fall back: 01:00–01:59 happens twice in the US): the result is
///   the *earlier* instant, the one still on daylight time. 01:30 on
///   2026-11-01 in New York gives 01:30 EDT (05:30 UTC), never 01:30 EST.
///
/// Why not jiff's `Disambiguation::Compatible` (RFC 5545 / Temporal)? It
/// agrees on folds (earlier) but moves a gap time forward by the gap's length:
/// 02:30 becomes 03:30, *after* 03:00 and 03:15. Clamping to the end of the gap
/// keeps the mapping monotonic (a later local time never runs before an
/// earlier one) and runs a job skipped by the clock change as soon as the
/// clock passes its time, as cron does. Both rules give one instant per local
/// date and time, which is what stops a job from firing twice or not at all.
///
/// Saturates at [`Timestamp::MIN`]/[`Timestamp::MAX`] for dates at the edge of
/// jiff's range.
pub fn local_instant(date: Date, time: Time, tz: &TimeZone) -> Timestamp {
    let dt = date.to_datetime(time);
    let ambiguous = tz.to_ambiguous_timestamp(dt);
    let resolved = match ambiguous.offset() {
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt),
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(dt),
        AmbiguousOffset::Gap { after, .. } => {
            // Read with the offset in force after the gap, `dt` names an
            // instant just before the transition (for a forward gap the
            // later offset is larger); the transition that follows it is
            // the first instant the local clock shows a time past `dt`.
            after.to_timestamp(dt).map(|before_gap| {
                tz.following(before_gap)
                    .next()
                    .map_or(before_gap, |transition| transition.timestamp())
            })
        }
    };
    resolved.unwrap_or(if date.year() < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// The local date in `tz` at instant `at`.
pub fn local_date(at: Timestamp, tz: &TimeZone) -> Date {
    tz.to_datetime(at).date()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::{date, time};

    fn tz(name: &str) -> TimeZone {
        TimeZone::get(name).unwrap()
    }

    #[test]
    fn day_in_month_clamps_to_month_end() {
        assert_eq!(day_in_month(2026, 4, 31), date(2026, 4, 30));
        assert_eq!(day_in_month(2026, 2, 29), date(2026, 2, 28));
        assert_eq!(day_in_month(2026, 2, 31), date(2026, 2, 28));
        assert_eq!(day_in_month(2028, 2, 29), date(2028, 2, 29));
        assert_eq!(day_in_month(2028, 2, 30), date(2028, 2, 29));
        assert_eq!(day_in_month(2100, 2, 29), date(2100, 2, 28));
        assert_eq!(day_in_month(2000, 2, 29), date(2000, 2, 29));
        assert_eq!(day_in_month(2026, 1, 31), date(2026, 1, 31));
        assert_eq!(day_in_month(2026, 12, 15), date(2026, 12, 15));
    }

    #[test]
    fn due_dates_on_29_30_31_land_in_every_month_2026_to_2028() {
        for year in 2026..=2028 {
            for month in 1..=12 {
                let last = date(year, month, 1).days_in_month();
                for day in [29, 30, 31] {
                    let due = day_in_month(year, month, day);
                    assert_eq!((due.year(), due.month()), (year, month));
                    assert_eq!(due.day(), day.min(last), "{year}-{month} day {day}");
                }
            }
        }
        assert_eq!(day_in_month(2028, 2, 31), date(2028, 2, 29));
        assert_eq!(day_in_month(2027, 2, 29), date(2027, 2, 28));
    }

    #[test]
    fn anchored_months_return_to_the_anchor() {
        let jan31 = date(2026, 1, 31);
        let expected = [
            date(2026, 1, 31),
            date(2026, 2, 28),
            date(2026, 3, 31),
            date(2026, 4, 30),
            date(2026, 5, 31),
            date(2026, 6, 30),
            date(2026, 7, 31),
            date(2026, 8, 31),
            date(2026, 9, 30),
            date(2026, 10, 31),
            date(2026, 11, 30),
            date(2026, 12, 31),
            date(2027, 1, 31),
        ];
        for (n, want) in expected.iter().enumerate() {
            assert_eq!(
                add_months_anchored(jan31, i32::try_from(n).unwrap(), 31),
                *want
            );
        }
        // From the clamped Feb 28, the anchor (31), not the 28th, decides.
        assert_eq!(
            add_months_anchored(date(2026, 2, 28), 1, 31),
            date(2026, 3, 31)
        );
        assert_eq!(
            add_months_anchored(date(2028, 1, 31), 1, 31),
            date(2028, 2, 29)
        );
        assert_eq!(
            add_months_anchored(date(2028, 2, 29), 12, 29),
            date(2029, 2, 28)
        );
        assert_eq!(
            add_months_anchored(date(2026, 3, 31), -1, 31),
            date(2026, 2, 28)
        );
        assert_eq!(
            add_months_anchored(date(2026, 1, 15), -13, 15),
            date(2024, 12, 15)
        );
        assert_eq!(
            add_months_anchored(date(9999, 12, 1), 5, 31),
            date(9999, 12, 31)
        );
        assert_eq!(
            add_months_anchored(date(2026, 1, 1), i32::MIN, 1),
            date(-9999, 1, 1)
        );
    }

    #[test]
    fn us_federal_holidays_2026_with_observed_dates() {
        let cal = BusinessCalendar::us_federal(2026..=2026);
        let got: Vec<Date> = cal.holidays().collect();
        assert_eq!(
            got,
            vec![
                date(2026, 1, 1),   // Thursday
                date(2026, 1, 19),  // MLK Day
                date(2026, 2, 16),  // Washington's Birthday
                date(2026, 5, 25),  // Memorial Day
                date(2026, 6, 19),  // Juneteenth, Friday
                date(2026, 7, 3),   // July 4 is a Saturday → Friday
                date(2026, 9, 7),   // Labor Day
                date(2026, 10, 12), // Columbus Day
                date(2026, 11, 11), // Veterans Day, Wednesday
                date(2026, 11, 26), // Thanksgiving
                date(2026, 12, 25), // Christmas, Friday
            ]
        );
        assert!(!cal.is_business_day(date(2026, 7, 3)));
        assert!(!cal.is_business_day(date(2026, 7, 4)));
        assert!(cal.is_business_day(date(2026, 7, 6)));
    }

    #[test]
    fn us_federal_2027_and_saturday_new_year() {
        let cal = BusinessCalendar::us_federal(2027..=2027);
        let got: Vec<Date> = cal.holidays().collect();
        assert_eq!(
            got,
            vec![
                date(2027, 1, 1),
                date(2027, 1, 18),
                date(2027, 2, 15),
                date(2027, 5, 31),
                date(2027, 6, 18), // June 19 is a Saturday
                date(2027, 7, 5),  // July 4 is a Sunday
                date(2027, 9, 6),
                date(2027, 10, 11),
                date(2027, 11, 11),
                date(2027, 11, 25),
                date(2027, 12, 24), // Christmas is a Saturday
                date(2027, 12, 31), // 2028-01-01 is a Saturday
            ]
        );
        // The observed date belongs to the year it falls in.
        let cal = BusinessCalendar::us_federal(2028..=2028);
        assert!(cal.holidays().all(|d| d.year() == 2028));
        assert!(cal.is_business_day(date(2027, 12, 31)));
        assert_eq!(cal.holidays().count(), 10);
        assert_eq!(
            BusinessCalendar::us_federal(2026..=2028).holidays().count(),
            11 + 12 + 10
        );
        assert_eq!(
            BusinessCalendar::us_federal(RangeInclusive::new(2027, 2026))
                .holidays()
                .count(),
            0
        );
    }

    #[test]
    fn business_days_across_holiday_weekends() {
        let cal = BusinessCalendar::us_federal(2026..=2027);
        // Thursday July 2, 2026 + 1 business day: Friday is the observed
        // Independence Day, so Monday July 6.
        assert_eq!(cal.add_business_days(date(2026, 7, 2), 1), date(2026, 7, 6));
        assert_eq!(cal.add_business_days(date(2026, 7, 2), 2), date(2026, 7, 7));
        // Friday before Labor Day + 1 → Tuesday.
        assert_eq!(cal.add_business_days(date(2026, 9, 4), 1), date(2026, 9, 8));
        // Christmas 2027 observed Friday Dec 24, New Year observed Dec 31.
        assert_eq!(
            cal.add_business_days(date(2027, 12, 23), 1),
            date(2027, 12, 27)
        );
        assert_eq!(
            cal.add_business_days(date(2027, 12, 30), 1),
            date(2028, 1, 3)
        );
        assert_eq!(cal.add_business_days(date(2026, 7, 4), 0), date(2026, 7, 6));
        assert_eq!(
            cal.add_business_days(date(2026, 7, 6), 5),
            date(2026, 7, 13)
        );
        assert_eq!(
            cal.next_business_day_on_or_after(date(2026, 7, 3)),
            date(2026, 7, 6)
        );
        assert_eq!(
            cal.previous_business_day_on_or_before(date(2026, 7, 5)),
            date(2026, 7, 2)
        );
        assert_eq!(
            cal.next_business_day_on_or_after(date(2026, 7, 7)),
            date(2026, 7, 7)
        );
        assert_eq!(
            cal.next_business_day_on_or_after(Date::MAX),
            Date::MAX,
            "saturates (9999-12-31 is a Friday)"
        );
        let weekend_only = BusinessCalendar::default();
        assert_eq!(
            weekend_only.add_business_days(date(2026, 7, 3), 1),
            date(2026, 7, 6)
        );
    }

    #[test]
    fn custom_holidays_are_bounded() {
        let start = date(2026, 1, 1);
        let cal = BusinessCalendar::new((0..20_000).map(|n| add_days(start, n)));
        assert_eq!(cal.holidays().count(), HOLIDAYS_MAX);
        let after = add_days(start, i64::try_from(HOLIDAYS_MAX).unwrap());
        assert!(cal.next_business_day_on_or_after(start) >= after);
    }

    const ZONES: [&str; 3] = ["America/New_York", "America/Chicago", "America/Los_Angeles"];
    const SPRING: [Date; 2] = [date(2026, 3, 8), date(2027, 3, 14)];
    const FALL: [Date; 2] = [date(2026, 11, 1), date(2027, 11, 7)];

    #[test]
    fn spring_forward_gap_runs_at_the_end_of_the_gap() {
        for zone in ZONES {
            let tz = tz(zone);
            for day in SPRING {
                let at = |h, m| local_instant(day, time(h, m, 0, 0), &tz);
                let end_of_gap = at(3, 0);
                assert_eq!(tz.to_datetime(end_of_gap), day.at(3, 0, 0, 0), "{zone}");
                assert_eq!(at(2, 0), end_of_gap, "{zone} {day}");
                assert_eq!(at(2, 30), end_of_gap, "{zone} {day}");
                assert_eq!(at(2, 59), end_of_gap, "{zone} {day}");
                // Still standard time just before the gap: one hour earlier.
                assert_eq!(
                    at(1, 59).duration_until(end_of_gap),
                    jiff::SignedDuration::from_mins(1)
                );
                let times = [at(0, 30), at(2, 0), at(2, 30), at(3, 0), at(3, 30)];
                assert!(times.windows(2).all(|w| w[0] <= w[1]), "{zone} {day}");
                assert!(at(0, 30) < at(2, 0) && at(3, 0) < at(3, 30));
                for t in times {
                    assert_eq!(local_date(t, &tz), day);
                }
            }
        }
        // Concrete instants for New York 2026.
        let ny = tz("America/New_York");
        let d = date(2026, 3, 8);
        let utc = |s: &str| s.parse::<Timestamp>().unwrap();
        assert_eq!(
            local_instant(d, time(0, 30, 0, 0), &ny),
            utc("2026-03-08T05:30:00Z")
        );
        assert_eq!(
            local_instant(d, time(2, 30, 0, 0), &ny),
            utc("2026-03-08T07:00:00Z")
        );
        let la = tz("America/Los_Angeles");
        assert_eq!(
            local_instant(d, time(2, 30, 0, 0), &la),
            utc("2026-03-08T10:00:00Z")
        );
    }

    #[test]
    fn fall_back_fold_takes_the_earlier_instant() {
        for zone in ZONES {
            let tz = tz(zone);
            for day in FALL {
                let at = |h, m| local_instant(day, time(h, m, 0, 0), &tz);
                let times = [
                    at(0, 30),
                    at(1, 0),
                    at(1, 30),
                    at(2, 0),
                    at(2, 30),
                    at(3, 0),
                ];
                assert!(times.windows(2).all(|w| w[0] < w[1]), "{zone} {day}");
                // 01:30 happens twice; the first one (daylight time) is taken,
                // which is two hours (not one) before 02:30 standard time.
                assert_eq!(
                    at(1, 30).duration_until(at(2, 30)),
                    jiff::SignedDuration::from_hours(2)
                );
                let offset = tz.to_offset(at(1, 30));
                let later_offset = tz.to_offset(at(2, 30));
                assert_eq!(offset.seconds() - later_offset.seconds(), 3600);
                for t in times {
                    assert_eq!(local_date(t, &tz), day);
                }
            }
        }
        let chicago = tz("America/Chicago");
        assert_eq!(
            local_instant(date(2026, 11, 1), time(1, 30, 0, 0), &chicago),
            "2026-11-01T06:30:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn the_specified_times_are_one_instant_each_across_2026_changes() {
        for zone in ZONES {
            let tz = tz(zone);
            for day in [SPRING[0], FALL[0]] {
                let times: Vec<Timestamp> = [(0, 30), (2, 0), (2, 30), (3, 0)]
                    .into_iter()
                    .map(|(h, m)| local_instant(day, time(h, m, 0, 0), &tz))
                    .collect();
                // Deterministic: asking again gives the same instant.
                for ((h, m), t) in [(0, 30), (2, 0), (2, 30), (3, 0)].into_iter().zip(&times) {
                    assert_eq!(local_instant(day, time(h, m, 0, 0), &tz), *t);
                }
                if day == FALL[0] {
                    assert!(times.windows(2).all(|w| w[0] < w[1]), "{zone}");
                } else {
                    // 02:00, 02:30 and 03:00 are the same instant on the
                    // spring-forward day; nothing runs before 00:30's.
                    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{zone}");
                    assert!(times[0] < times[1], "{zone}");
                }
            }
        }
    }

    #[test]
    fn daily_job_at_0230_runs_once_per_local_date_for_400_days() {
        for zone in ZONES {
            let tz = tz(zone);
            let start = date(2026, 1, 1);
            let mut previous: Option<Timestamp> = None;
            for n in 0..400 {
                let day = add_days(start, n);
                let at = local_instant(day, time(2, 30, 0, 0), &tz);
                assert_eq!(local_date(at, &tz), day, "{zone} {day}");
                if let Some(p) = previous {
                    assert!(p < at, "{zone} {day}");
                    let hours = p.duration_until(at).as_hours();
                    assert!((23..=25).contains(&hours), "{zone} {day}: {hours}");
                }
                previous = Some(at);
            }
        }
    }

    #[test]
    fn local_date_at_midnight_edges() {
        let ny = tz("America/New_York");
        let at = "2026-07-01T03:59:59Z".parse::<Timestamp>().unwrap();
        assert_eq!(local_date(at, &ny), date(2026, 6, 30));
        let at = "2026-07-01T04:00:00Z".parse::<Timestamp>().unwrap();
        assert_eq!(local_date(at, &ny), date(2026, 7, 1));
        assert_eq!(local_date(at, &TimeZone::UTC), date(2026, 7, 1));
    }

    #[test]
    fn extremes_do_not_panic() {
        let ny = tz("America/New_York");
        let _ = local_instant(Date::MAX, time(23, 59, 59, 0), &ny);
        let _ = local_instant(Date::MIN, Time::midnight(), &ny);
        assert_eq!(add_days(Date::MAX, 1), Date::MAX);
        assert_eq!(add_days(Date::MIN, i64::MIN), Date::MIN);
        assert_eq!(add_days(Date::MAX, i64::MAX), Date::MAX);
        assert_eq!(days_between(date(2026, 1, 1), date(2026, 3, 1)), 59);
        assert_eq!(days_between(date(2026, 3, 1), date(2026, 1, 1)), -59);
    }
}
