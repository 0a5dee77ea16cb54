//! Schedule rules through the crate's public API: recurrence properties, and
//! a year of AutoPay for a bill due on the 31st, turned into instants in three
//! US time zones.

use std::collections::BTreeSet;

use billpay_domain::{
    AutopayAmount, BusinessCalendar, End, Frequency, Money, Recurrence, Timing, autopay_amount,
    charge_date, local_date, local_instant, pre_debit_notice_date,
};
use jiff::civil::{Date, date, time};
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp};
use proptest::prelude::*;

fn frequency() -> impl Strategy<Value = Frequency> {
    prop_oneof![
        Just(Frequency::Weekly),
        Just(Frequency::Biweekly),
        Just(Frequency::Monthly)
    ]
}

fn day_after(base: Date, days: i64) -> Date {
    base.checked_add(Span::new().days(days)).unwrap()
}

fn end() -> impl Strategy<Value = End> {
    prop_oneof![
        Just(End::Never),
        (1u32..200).prop_map(End::Count),
        (0i64..3000).prop_map(|d| End::Until(day_after(date(2026, 1, 1), d))),
    ]
}

proptest! {
    #[test]
    fn occurrences_strictly_increase_and_next_on_or_after_agrees_with_iter(
        start_offset in 0i64..1500,
        frequency in frequency(),
        end in end(),
        probe_offset in -100i64..4000,
    ) {
        let start = day_after(date(2026, 1, 1), start_offset);
        let Ok(r) = Recurrence::new(start, frequency, end) else {
            // Only an Until before the start is refused here.
            prop_assert!(matches!(end, End::Until(u) if u < start));
            return Ok(());
        };
        let dates: Vec<Date> = r.iter().take(300).collect();
        prop_assert_eq!(dates.first().copied(), Some(start));
        prop_assert!(dates.windows(2).all(|w| w[0] < w[1]));
        if let End::Count(c) = end {
            prop_assert_eq!(dates.len(), usize::try_from(c).unwrap().min(300));
        }
        if let End::Until(u) = end {
            prop_assert!(dates.iter().all(|d| *d <= u));
        }
        for (n, d) in dates.iter().enumerate() {
            prop_assert_eq!(r.occurrence(u32::try_from(n).unwrap()), Some(*d));
        }
        if frequency == Frequency::Monthly {
            // Every month has exactly one, on the anchor or the month's end.
            for d in &dates {
                prop_assert_eq!(d.day(), start.day().min(d.days_in_month()));
            }
        }
        let probe = day_after(date(2026, 1, 1), probe_offset);
        // The probe is at most ~4100 days after the start, so 1000 weekly
        // occurrences always reach past it.
        let expected = r
            .iter()
            .take(1000)
            .enumerate()
            .find(|(_, d)| *d >= probe)
            .map(|(n, d)| (u32::try_from(n).unwrap(), d));
        prop_assert_eq!(r.next_on_or_after(probe), expected);
    }
}

#[test]
fn a_year_of_autopay_on_the_31st_charges_once_per_statement() {
    let cal = BusinessCalendar::us_federal(2026..=2028);
    let due_dates = Recurrence::new(date(2026, 1, 31), Frequency::Monthly, End::Count(36)).unwrap();
    for zone in ["America/New_York", "America/Chicago", "America/Los_Angeles"] {
        let tz = TimeZone::get(zone).unwrap();
        let mut charge_instants: BTreeSet<Timestamp> = BTreeSet::new();
        let mut charge_dates = BTreeSet::new();
        for due in due_dates.iter() {
            for timing in [Timing::OnDueDate, Timing::DaysBefore(3)] {
                let charge = charge_date(due, timing, &cal);
                assert!(charge <= due);
                let notice = pre_debit_notice_date(charge, 3);
                assert!(notice < charge);
                // The 02:30 local run: one instant, on the charge date.
                let at = local_instant(charge, time(2, 30, 0, 0), &tz);
                assert_eq!(local_date(at, &tz), charge);
                if timing == Timing::DaysBefore(3) {
                    assert!(cal.is_business_day(charge), "{due} {charge}");
                    assert!(charge_dates.insert(charge), "two dues, one charge date");
                    assert!(charge_instants.insert(at));
                }
            }
        }
        assert_eq!(charge_instants.len(), 36, "{zone}");
    }
    // Every month of 2026–2028 has its due date, leap day included.
    let dues: Vec<Date> = due_dates.iter().collect();
    assert_eq!(dues.len(), 36);
    assert!(dues.contains(&date(2028, 2, 29)));
    assert!(dues.contains(&date(2027, 2, 28)));
}

#[test]
fn autopay_after_a_phone_payment_charges_only_the_rest() {
    let statement = Money::usd(12_345);
    // The customer paid $45.00 by phone the day before AutoPay runs.
    let phone = Money::usd(4_500);
    let balance = statement.checked_sub(phone).unwrap();
    assert_eq!(
        autopay_amount(statement, phone, balance, None),
        Ok(AutopayAmount::Charge(Money::usd(7_845)))
    );
    // AutoPay's own charge succeeded; a rerun of the job finds nothing due.
    assert_eq!(
        autopay_amount(statement, statement, Money::usd(0), None),
        Ok(AutopayAmount::NothingDue)
    );
}
