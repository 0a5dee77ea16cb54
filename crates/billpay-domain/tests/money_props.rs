//! Property tests for money arithmetic, parsing and formatting.

use billpay_domain::{Currency, Language, Money, MoneyError};
use proptest::prelude::*;

fn currency() -> impl Strategy<Value = Currency> {
    prop::sample::select(Currency::ALL.to_vec())
}

proptest! {
    #[test]
    fn add_then_sub_round_trips(a in -(1i64 << 61)..(1i64 << 61), b in -(1i64 << 61)..(1i64 << 61), c in currency()) {
        let (x, y) = (Money::new(a, c), Money::new(b, c));
        let sum = x.checked_add(y).unwrap();
        prop_assert_eq!(sum.checked_sub(y).unwrap(), x);
        prop_assert_eq!(sum.checked_sub(x).unwrap(), y);
    }

    #[test]
    fn checked_ops_never_panic(a in any::<i64>(), b in any::<i64>(), c in currency()) {
        let (x, y) = (Money::new(a, c), Money::new(b, c));
        match x.checked_add(y) {
            Ok(m) => prop_assert_eq!(i128::from(m.minor_units()), i128::from(a) + i128::from(b)),
            Err(e) => prop_assert_eq!(e, MoneyError::Overflow),
        }
        match x.checked_sub(y) {
            Ok(m) => prop_assert_eq!(i128::from(m.minor_units()), i128::from(a) - i128::from(b)),
            Err(e) => prop_assert_eq!(e, MoneyError::Overflow),
        }
        match x.checked_mul(b) {
            Ok(m) => prop_assert_eq!(i128::from(m.minor_units()), i128::from(a) * i128::from(b)),
            Err(e) => prop_assert_eq!(e, MoneyError::Overflow),
        }
        match x.checked_neg() {
            Ok(m) => prop_assert_eq!(i128::from(m.minor_units()), -i128::from(a)),
            Err(e) => prop_assert_eq!(e, MoneyError::Overflow),
        }
        let other = if c == Currency::USD { Currency::EUR } else { Currency::USD };
        let mismatch = x.checked_add(Money::new(b, other));
        let is_mismatch = matches!(mismatch, Err(MoneyError::CurrencyMismatch { .. }));
        prop_assert!(is_mismatch);
    }

    #[test]
    fn split_sums_exactly_and_parts_differ_by_at_most_one(a in any::<i64>(), parts in 1u32..500, c in currency()) {
        let m = Money::new(a, c);
        let split = m.split(parts).unwrap();
        prop_assert_eq!(split.len(), parts as usize);
        let total: i128 = split.iter().map(|p| i128::from(p.minor_units())).sum();
        prop_assert_eq!(total, i128::from(a));
        let max = split.iter().map(|p| p.minor_units()).max().unwrap();
        let min = split.iter().map(|p| p.minor_units()).min().unwrap();
        prop_assert!(i128::from(max) - i128::from(min) <= 1);
        prop_assert!(split.iter().all(|p| p.currency() == c));
        // Earlier parts carry the extra units (larger in magnitude).
        for w in split.windows(2) {
            prop_assert!(w[0].minor_units().unsigned_abs() >= w[1].minor_units().unsigned_abs());
        }
    }

    #[test]
    fn basis_points_never_panics_and_rounds_half_away_from_zero(a in any::<i64>(), bps in any::<u32>()) {
        let exact = i128::from(a) * i128::from(bps);
        // Reference: round(|exact| / 10000) half up, then reapply the sign.
        let magnitude = (exact.unsigned_abs() + 5_000) / 10_000;
        let expected = if exact < 0 { -(magnitude as i128) } else { magnitude as i128 };
        match Money::usd(a).basis_points(bps) {
            Ok(m) => prop_assert_eq!(i128::from(m.minor_units()), expected),
            Err(e) => {
                prop_assert_eq!(e, MoneyError::Overflow);
                prop_assert!(i64::try_from(expected).is_err());
            }
        }
    }

    #[test]
    fn parse_format_round_trip(a in any::<i64>(), c in currency()) {
        let m = Money::new(a, c);
        prop_assert_eq!(Money::parse(&m.format(), c), Ok(m));
        prop_assert_eq!(Money::parse(&m.format_plain(), c), Ok(m));
        prop_assert_eq!(Money::parse(&m.to_string(), c), Ok(m));
    }

    #[test]
    fn keyed_digits_match_minor_units(a in 0i64..i64::MAX) {
        prop_assert_eq!(Money::from_keyed_digits(&a.to_string(), Currency::USD), Ok(Money::usd(a)));
    }

    #[test]
    fn parse_and_spoken_never_panic(s in ".{0,40}", a in any::<i64>()) {
        for c in Currency::ALL {
            let _ = Money::parse(&s, c);
            let _ = Money::from_keyed_digits(&s, c);
            let _ = Money::new(a, c).spoken(Language::En);
            let _ = Money::new(a, c).spoken(Language::Es);
        }
    }

    #[test]
    fn parse_accepts_amountish_strings_without_panicking(s in "[-$,.0-9]{0,25}") {
        if let Ok(m) = Money::parse(&s, Currency::USD) {
            // Whatever parsed must format back to something that parses the same.
            prop_assert_eq!(Money::parse(&m.format(), Currency::USD), Ok(m));
        }
    }
}

#[test]
fn no_float_conversion_exists() {
    // Compile-time documentation: Money is only built from integers or text.
    let m = Money::parse("0.10", Currency::USD).unwrap();
    assert_eq!(m.minor_units(), 10);
    assert_eq!(m.checked_mul(3).unwrap(), Money::usd(30));
}
