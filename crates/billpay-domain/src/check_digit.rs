//! Check-digit algorithms.
//!
//! * Damm, used for billpay's own identifiers (account and confirmation
//!   numbers). It detects every single-digit error and every transposition of
//!   adjacent digits.
//! * Luhn (mod 10), used by payment card numbers.

/// The standard Damm table: a totally anti-symmetric quasigroup of order 10
/// with a zero diagonal (H. Michael Damm, 2004).
const DAMM_TABLE: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// One Damm step. Both indices are reduced modulo 10, so the lookup can never
/// go out of bounds.
pub(crate) fn damm_step(interim: u8, digit: u8) -> u8 {
    DAMM_TABLE[usize::from(interim % 10)][usize::from(digit % 10)]
}

/// Folds digit values (each 0..=9) through the Damm table.
pub(crate) fn damm_fold(digit_values: impl IntoIterator<Item = u8>) -> u8 {
    digit_values.into_iter().fold(0, damm_step)
}

fn digit_values(digits: &str) -> Option<Vec<u8>> {
    digits
        .bytes()
        .map(|b| b.is_ascii_digit().then(|| b - b'0'))
        .collect()
}

/// The Damm check digit to append to `digits`, or `None` if `digits` contains
/// anything but ASCII digits. The check digit of the empty string is 0.
pub fn damm_digit(digits: &str) -> Option<u8> {
    digit_values(digits).map(damm_fold)
}

/// Whether `digits_with_check` (at least one digit, ASCII digits only) ends in
/// its correct Damm check digit.
pub fn damm_valid(digits_with_check: &str) -> bool {
    !digits_with_check.is_empty() && damm_digit(digits_with_check) == Some(0)
}

/// Luhn sum of digit values. Offsets count from the rightmost value (offset 0);
/// values whose offset has the parity `doubled_parity` (0 or 1) are doubled.
fn luhn_sum(values: &[u8], doubled_parity: usize) -> u32 {
    values
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == doubled_parity {
                let doubled = u32::from(d) * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                u32::from(d)
            }
        })
        .sum()
}

/// Whether `digits` (at least two ASCII digits) passes the Luhn check.
pub fn luhn_valid(digits: &str) -> bool {
    match digit_values(digits) {
        Some(values) if values.len() >= 2 => luhn_sum(&values, 1).is_multiple_of(10),
        _ => false,
    }
}

/// The Luhn check digit to append to `digits_without_check`, or `None` if it is
/// empty or contains anything but ASCII digits.
pub fn luhn_digit(digits_without_check: &str) -> Option<u8> {
    let values = digit_values(digits_without_check)?;
    if values.is_empty() {
        return None;
    }
    // Once the check digit is appended, the current rightmost digit moves to an
    // odd offset and is doubled.
    let sum = luhn_sum(&values, 0);
    u8::try_from((10 - sum % 10) % 10).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn damm_known_values() {
        // The textbook example: 572 -> check digit 4.
        assert_eq!(damm_digit("572"), Some(4));
        assert!(damm_valid("5724"));
        assert!(!damm_valid("5723"));
        assert!(!damm_valid("7524"));
        assert_eq!(damm_digit(""), Some(0));
        assert_eq!(damm_digit("12a"), None);
        assert!(!damm_valid(""));
        assert!(!damm_valid("57 24"));
    }

    #[test]
    fn damm_table_is_a_weak_totally_antisymmetric_quasigroup() {
        for (i, row) in DAMM_TABLE.iter().enumerate() {
            assert_eq!(row[i], 0, "diagonal must be zero");
            let mut seen = [false; 10];
            for &v in row {
                seen[usize::from(v)] = true;
            }
            assert!(seen.iter().all(|s| *s), "row {i} is a permutation");
        }
        for col in 0..10 {
            let mut seen = [false; 10];
            for row in &DAMM_TABLE {
                seen[usize::from(row[col])] = true;
            }
            assert!(seen.iter().all(|s| *s), "column {col} is a permutation");
        }
        for c in 0..10u8 {
            for x in 0..10u8 {
                for y in 0..10u8 {
                    if x != y {
                        assert_ne!(damm_step(damm_step(c, x), y), damm_step(damm_step(c, y), x));
                    }
                }
            }
        }
    }

    #[test]
    fn luhn_known_values() {
        assert!(luhn_valid("4242424242424242"));
        assert!(!luhn_valid("4242424242424241"));
        assert!(luhn_valid("79927398713"));
        assert_eq!(luhn_digit("7992739871"), Some(3));
        assert_eq!(luhn_digit("424242424242424"), Some(2));
        assert_eq!(luhn_digit(""), None);
        assert_eq!(luhn_digit("12x"), None);
        assert!(!luhn_valid("0"));
        assert!(luhn_valid("00"));
        assert!(!luhn_valid("4242 4242 4242 4242"));
    }

    fn digits(min: usize, max: usize) -> impl Strategy<Value = String> {
        proptest::collection::vec(0u8..10, min..=max)
            .prop_map(|v| v.into_iter().map(|d| char::from(b'0' + d)).collect())
    }

    proptest! {
        #[test]
        fn damm_appended_digit_validates(body in digits(0, 30)) {
            let check = damm_digit(&body).unwrap();
            prop_assert!(check < 10);
            let full = format!("{body}{check}");
            prop_assert!(damm_valid(&full));
        }

        #[test]
        fn damm_catches_every_single_substitution(body in digits(1, 25)) {
            let check = damm_digit(&body).unwrap();
            let full: Vec<u8> = format!("{body}{check}").into_bytes();
            for i in 0..full.len() {
                for delta in 1..10u8 {
                    let mut changed = full.clone();
                    changed[i] = b'0' + (changed[i] - b'0' + delta) % 10;
                    let changed = String::from_utf8(changed).unwrap();
                    prop_assert!(!damm_valid(&changed), "{} was not caught", changed);
                }
            }
        }

        #[test]
        fn damm_catches_every_adjacent_transposition(body in digits(1, 25)) {
            let check = damm_digit(&body).unwrap();
            let full: Vec<u8> = format!("{body}{check}").into_bytes();
            for i in 0..full.len() - 1 {
                if full[i] == full[i + 1] {
                    continue;
                }
                let mut changed = full.clone();
                changed.swap(i, i + 1);
                let changed = String::from_utf8(changed).unwrap();
                prop_assert!(!damm_valid(&changed), "{} was not caught", changed);
            }
        }

        #[test]
        fn luhn_appended_digit_validates(body in digits(1, 25)) {
            let check = luhn_digit(&body).unwrap();
            let full = format!("{body}{check}");
            prop_assert!(luhn_valid(&full));
        }

        #[test]
        fn luhn_catches_single_substitution(
            body in digits(1, 25), pos in any::<prop::sample::Index>(), delta in 1u8..10
        ) {
            let check = luhn_digit(&body).unwrap();
            let mut full: Vec<u8> = format!("{body}{check}").into_bytes();
            let i = pos.index(full.len());
            full[i] = b'0' + (full[i] - b'0' + delta) % 10;
            prop_assert!(!luhn_valid(&String::from_utf8(full).unwrap()));
        }

        #[test]
        fn check_digits_never_panic(s in ".{0,40}") {
            let _ = damm_digit(&s);
            let _ = damm_valid(&s);
            let _ = luhn_digit(&s);
            let _ = luhn_valid(&s);
        }
    }
}
