//! The dates of scheduled payments, one-time and recurring.
//!
//! A [`Recurrence`] is a start date, a [`Frequency`] and an [`End`]. Its
//! occurrences are numbered from 0, and occurrence `n` is always computed from
//! the start, never from occurrence `n - 1`: a monthly series that starts on
//! the 31st clamps to the 30th or the 28th in short months and comes back to
//! the 31st in long ones ([`add_months_anchored`]), so no month is skipped and
//! the day never drifts. The occurrence number is what a scheduler keys a
//! payment job by (`recurrence id` + `n`), so each date is charged at most
//! once however often the scheduler looks.
//!
//! A one-time scheduled payment is `End::Count(1)`.

use jiff::civil::Date;

use crate::calendar::{add_days, add_months_anchored, days_between};

/// How often a recurring payment repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// Every 7 days, on the start's weekday.
    Weekly,
    /// Every 14 days, on the start's weekday.
    Biweekly,
    /// Every month, on the start's day of the month, or the month's last day
    /// when the month is shorter.
    Monthly,
}

/// When a recurring payment stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum End {
    /// It repeats until the customer cancels it.
    Never,
    /// The last payment is on or before this date.
    Until(Date),
    /// After this many payments (1 = a one-time scheduled payment).
    Count(u32),
}

/// Why a schedule was refused; the message is written for the customer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// `End::Until` is earlier than the start.
    #[error("the end date is before the first payment date")]
    EndBeforeStart,
    /// `End::Count(0)`.
    #[error("the number of payments must be at least 1")]
    ZeroCount,
    /// AutoPay was asked to charge too many days before the due date.
    #[error("AutoPay can charge from 1 to {max} days before the due date")]
    DaysBeforeOutOfRange {
        /// The most days allowed.
        max: u8,
    },
}

/// A payment schedule: the first date, how often, and when it ends.
///
/// Build it with [`Recurrence::new`], which refuses an end before the start and
/// a count of zero. (A value built directly from the fields with such an end
/// simply has no occurrences.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Recurrence {
    /// The first payment date (occurrence 0); a monthly series keeps its day.
    pub start: Date,
    /// How often it repeats.
    pub frequency: Frequency,
    /// When it stops.
    pub end: End,
}

impl Recurrence {
    /// A schedule, checked: an `Until` date before `start` and a count of zero
    /// are refused with a message for the customer.
    pub fn new(start: Date, frequency: Frequency, end: End) -> Result<Recurrence, ScheduleError> {
        match end {
            End::Until(until) if until < start => Err(ScheduleError::EndBeforeStart),
            End::Count(0) => Err(ScheduleError::ZeroCount),
            _ => Ok(Recurrence {
                start,
                frequency,
                end,
            }),
        }
    }

    /// The date of occurrence `n` (0 is the start), or `None` past the end.
    ///
    /// Also `None` if the date would fall beyond the last representable date.
    pub fn occurrence(&self, n: u32) -> Option<Date> {
        if let End::Count(count) = self.end
            && n >= count
        {
            return None;
        }
        let date = self.unbounded(n)?;
        match self.end {
            End::Until(until) if date > until => None,
            _ => Some(date),
        }
    }

    /// The first occurrence on or after `date`, with its number.
    pub fn next_on_or_after(&self, date: Date) -> Option<(u32, Date)> {
        let estimate: i64 = match self.frequency {
            Frequency::Weekly => days_between(self.start, date) / 7,
            Frequency::Biweekly => days_between(self.start, date) / 14,
            Frequency::Monthly => month_index(date) - month_index(self.start),
        };
        // The estimate is at most one step past the answer (a monthly date
        // can be clamped below the target's day), so start one step before
        // it and walk forward; at most three steps are ever needed.
        let mut n = u32::try_from(estimate.saturating_sub(1).max(0)).ok()?;
        for _ in 0..4 {
            let candidate = self.occurrence(n)?;
            if candidate >= date {
                return Some((n, candidate));
            }
            n = n.checked_add(1)?;
        }
        None
    }

    /// The occurrences in order. With `End::Never` this runs to the last
    /// representable date; take what you need.
    pub fn iter(&self) -> impl Iterator<Item = Date> + '_ {
        (0..=u32::MAX).map_while(|n| self.occurrence(n))
    }

    /// Occurrence `n` ignoring the end; `None` when it would lie beyond the
    /// last representable date (the date arithmetic saturates there, and a
    /// saturated date is not a real occurrence).
    fn unbounded(&self, n: u32) -> Option<Date> {
        let steps = i64::from(n);
        let (date, reached) = match self.frequency {
            Frequency::Weekly | Frequency::Biweekly => {
                let step_days = if self.frequency == Frequency::Weekly {
                    7
                } else {
                    14
                };
                let date = add_days(self.start, steps * step_days);
                (date, days_between(self.start, date) == steps * step_days)
            }
            Frequency::Monthly => {
                let date =
                    add_months_anchored(self.start, i32::try_from(n).ok()?, self.start.day());
                (date, month_index(date) - month_index(self.start) == steps)
            }
        };
        reached.then_some(date)
    }
}

/// Months since year 0, for counting whole months between dates.
fn month_index(date: Date) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn monthly(start: Date, end: End) -> Recurrence {
        Recurrence::new(start, Frequency::Monthly, end).unwrap()
    }

    #[test]
    fn validation_messages() {
        let start = date(2026, 5, 1);
        assert_eq!(
            Recurrence::new(start, Frequency::Weekly, End::Until(date(2026, 4, 30))),
            Err(ScheduleError::EndBeforeStart)
        );
        assert_eq!(
            ScheduleError::EndBeforeStart.to_string(),
            "the end date is before the first payment date"
        );
        assert_eq!(
            Recurrence::new(start, Frequency::Weekly, End::Count(0)),
            Err(ScheduleError::ZeroCount)
        );
        assert!(Recurrence::new(start, Frequency::Weekly, End::Until(start)).is_ok());
        let one_time = Recurrence::new(start, Frequency::Monthly, End::Count(1)).unwrap();
        assert_eq!(one_time.iter().collect::<Vec<_>>(), vec![start]);
    }

    #[test]
    fn monthly_from_jan_31_keeps_the_anchor() {
        let r = monthly(date(2026, 1, 31), End::Count(13));
        let got: Vec<Date> = r.iter().collect();
        assert_eq!(
            got,
            vec![
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
            ]
        );
    }

    #[test]
    fn leap_day_start() {
        let r = monthly(date(2028, 2, 29), End::Never);
        assert_eq!(r.occurrence(1), Some(date(2028, 3, 29)));
        assert_eq!(r.occurrence(12), Some(date(2029, 2, 28)));
        assert_eq!(r.occurrence(48), Some(date(2032, 2, 29)));
        let r = monthly(date(2028, 1, 30), End::Never);
        assert_eq!(r.occurrence(1), Some(date(2028, 2, 29)));
        assert_eq!(r.occurrence(2), Some(date(2028, 3, 30)));
    }

    #[test]
    fn anchored_on_29_30_31_through_2026_to_2028() {
        for day in [29, 30, 31] {
            let r = monthly(date(2026, 1, day), End::Until(date(2028, 12, 31)));
            let got: Vec<Date> = r.iter().collect();
            assert_eq!(got.len(), 36, "one per month, none skipped");
            for (i, d) in got.iter().enumerate() {
                let month = i8::try_from(i % 12 + 1).unwrap();
                let year = 2026 + i16::try_from(i / 12).unwrap();
                assert_eq!((d.year(), d.month()), (year, month));
                assert_eq!(d.day(), day.min(d.days_in_month()));
            }
            assert!(got.contains(&date(2028, 2, 29)));
        }
    }

    #[test]
    fn weekly_biweekly_and_until() {
        let r = Recurrence::new(
            date(2026, 3, 2),
            Frequency::Biweekly,
            End::Until(date(2026, 4, 13)),
        )
        .unwrap();
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![
                date(2026, 3, 2),
                date(2026, 3, 16),
                date(2026, 3, 30),
                date(2026, 4, 13)
            ]
        );
        let w = Recurrence::new(date(2026, 3, 2), Frequency::Weekly, End::Count(3)).unwrap();
        assert_eq!(w.occurrence(2), Some(date(2026, 3, 16)));
        assert_eq!(w.occurrence(3), None);
        assert_eq!(
            w.next_on_or_after(date(2026, 3, 3)),
            Some((1, date(2026, 3, 9)))
        );
        assert_eq!(w.next_on_or_after(date(2026, 3, 17)), None);
        assert_eq!(
            w.next_on_or_after(date(2020, 1, 1)),
            Some((0, date(2026, 3, 2)))
        );
    }

    #[test]
    fn next_on_or_after_month_end() {
        let r = monthly(date(2026, 1, 31), End::Never);
        assert_eq!(
            r.next_on_or_after(date(2026, 2, 28)),
            Some((1, date(2026, 2, 28)))
        );
        assert_eq!(
            r.next_on_or_after(date(2026, 3, 1)),
            Some((2, date(2026, 3, 31)))
        );
        assert_eq!(
            r.next_on_or_after(date(2026, 3, 31)),
            Some((2, date(2026, 3, 31)))
        );
        assert_eq!(
            r.next_on_or_after(date(2026, 4, 1)),
            Some((3, date(2026, 4, 30)))
        );
        let r = monthly(date(2026, 1, 15), End::Never);
        assert_eq!(
            r.next_on_or_after(date(2026, 3, 20)),
            Some((3, date(2026, 4, 15)))
        );
    }

    #[test]
    fn never_ending_series_stop_at_the_end_of_the_calendar() {
        let r = Recurrence::new(date(9999, 11, 20), Frequency::Weekly, End::Never).unwrap();
        let got: Vec<Date> = r.iter().collect();
        assert_eq!(got.last(), Some(&date(9999, 12, 25)));
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        let r = monthly(date(9999, 10, 31), End::Never);
        assert_eq!(
            r.iter().collect::<Vec<_>>(),
            vec![date(9999, 10, 31), date(9999, 11, 30), date(9999, 12, 31)]
        );
        let r = monthly(date(9999, 12, 31), End::Never);
        assert_eq!(r.iter().count(), 1);
    }
}
