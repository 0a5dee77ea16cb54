//! Aging of receivables: what an account owes, split by how long past due it is. Payments pay
//! the oldest charges first, so what is still owed is the newest charges; each part is aged by
//! its charge's due date.

use jiff::civil::Date;

/// An account's balance by age, in minor units. `current` is not yet due (or due today).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AgingBuckets {
    /// Not yet due, or due today.
    pub current: i64,
    /// 1 to 30 days after the due date.
    pub days_1_30: i64,
    /// 31 to 60 days after.
    pub days_31_60: i64,
    /// 61 to 90 days after.
    pub days_61_90: i64,
    /// More than 90 days after.
    pub days_over_90: i64,
    /// A balance in the customer's favour (paid more than billed), as a positive number.
    pub credit: i64,
}

impl AgingBuckets {
    /// What is owed in all (0 for a credit balance).
    pub fn total(&self) -> i64 {
        self.current + self.days_1_30 + self.days_31_60 + self.days_61_90 + self.days_over_90
    }

    /// Adds another account's buckets (for totals).
    pub fn add(&mut self, o: &AgingBuckets) {
        self.current += o.current;
        self.days_1_30 += o.days_1_30;
        self.days_31_60 += o.days_31_60;
        self.days_61_90 += o.days_61_90;
        self.days_over_90 += o.days_over_90;
        self.credit += o.credit;
    }
}

/// Ages `balance` (owed, minor units; negative is a credit) against the account's charges
/// (due date, amount; any order) as of `today`.
pub fn age_balance(balance: i64, charges: &[(Date, i64)], today: Date) -> AgingBuckets {
    let mut out = AgingBuckets::default();
    if balance <= 0 {
        out.credit = -balance;
        return out;
    }
    let mut newest_first: Vec<(Date, i64)> =
        charges.iter().copied().filter(|(_, a)| *a > 0).collect();
    newest_first.sort_by_key(|c| std::cmp::Reverse(c.0));
    let mut left = balance;
    for (due, amount) in newest_first {
        if left == 0 {
            break;
        }
        let part = amount.min(left);
        left -= part;
        out.put(due, part, today);
    }
    // Owed beyond every charge listed (a balance carried in from before billpay): oldest.
    out.days_over_90 += left;
    out
}

impl AgingBuckets {
    fn put(&mut self, due: Date, amount: i64, today: Date) {
        // Days from the due date to today (Date::until counts in days by default).
        let late = due
            .until(today)
            .map(|s| i64::from(s.get_days()))
            .unwrap_or(0);
        match late {
            ..=0 => self.current += amount,
            1..=30 => self.days_1_30 += amount,
            31..=60 => self.days_31_60 += amount,
            61..=90 => self.days_61_90 += amount,
            _ => self.days_over_90 += amount,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn payments_pay_the_oldest_charges_first() {
        let today = date(2026, 12, 4);
        let charges = [
            (date(2026, 8, 15), 5_000),  // 111 days late
            (date(2026, 10, 15), 5_000), // 50 days late
            (date(2026, 11, 15), 5_000), // 19 days late
            (date(2026, 12, 15), 5_000), // not due
        ];
        // 20,000 billed, 8,000 paid: the August bill and 3,000 of October's are paid.
        let b = age_balance(12_000, &charges, today);
        assert_eq!(
            b,
            AgingBuckets {
                current: 5_000,
                days_1_30: 5_000,
                days_31_60: 2_000,
                days_61_90: 0,
                days_over_90: 0,
                credit: 0
            }
        );
        assert_eq!(b.total(), 12_000);
    }

    #[test]
    fn boundaries_credits_and_balances_carried_in() {
        let today = date(2026, 12, 4);
        let on = |d, a| age_balance(a, &[(d, a)], today);
        assert_eq!(
            on(date(2026, 12, 4), 100).current,
            100,
            "due today is current"
        );
        assert_eq!(on(date(2026, 12, 3), 100).days_1_30, 100);
        assert_eq!(on(date(2026, 11, 4), 100).days_1_30, 100, "30 days");
        assert_eq!(on(date(2026, 11, 3), 100).days_31_60, 100, "31 days");
        assert_eq!(on(date(2026, 9, 5), 100).days_61_90, 100, "90 days");
        assert_eq!(on(date(2026, 9, 4), 100).days_over_90, 100, "91 days");
        let credit = age_balance(-2_500, &[(date(2026, 11, 1), 1_000)], today);
        assert_eq!((credit.credit, credit.total()), (2_500, 0));
        let carried = age_balance(1_500, &[(date(2026, 12, 10), 1_000)], today);
        assert_eq!((carried.current, carried.days_over_90), (1_000, 500));
        assert_eq!(
            age_balance(0, &[(date(2026, 1, 1), 10)], today),
            AgingBuckets::default()
        );
    }
}
