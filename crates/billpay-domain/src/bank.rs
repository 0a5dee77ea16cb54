//! US bank account validation: ABA routing numbers and account numbers.

use std::fmt;

use crate::secret::SecretString;
use crate::strip_separators;

/// A nine-digit ABA routing transit number.
///
/// Valid numbers start with a Federal Reserve prefix (00-12, 21-32, 61-72 or
/// 80) and pass the ABA checksum: with weights 3, 7, 1 repeating, the weighted
/// digit sum is a multiple of 10.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RoutingNumber(String);

impl RoutingNumber {
    /// Parses a routing number, ignoring spaces and dashes.
    ///
    /// Errors, in the order checked: [`BankError::Empty`],
    /// [`BankError::NonDigit`], [`BankError::RoutingLength`],
    /// [`BankError::RoutingPrefix`], [`BankError::RoutingChecksum`].
    pub fn parse(input: &str) -> Result<RoutingNumber, BankError> {
        let digits = strip_separators(input.trim());
        if digits.is_empty() {
            return Err(BankError::Empty);
        }
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BankError::NonDigit);
        }
        if digits.len() != 9 {
            return Err(BankError::RoutingLength { got: digits.len() });
        }
        let prefix = digits
            .get(..2)
            .and_then(|p| p.parse::<u8>().ok())
            .ok_or(BankError::RoutingPrefix)?;
        if !matches!(prefix, 0..=12 | 21..=32 | 61..=72 | 80) {
            return Err(BankError::RoutingPrefix);
        }
        let sum: u32 = digits
            .bytes()
            .zip([3u32, 7, 1].into_iter().cycle())
            .map(|(b, w)| u32::from(b - b'0') * w)
            .sum();
        if !sum.is_multiple_of(10) {
            return Err(BankError::RoutingChecksum);
        }
        Ok(RoutingNumber(digits))
    }

    /// The nine digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoutingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A bank account number (4 to 17 digits). Secret: `Debug` shows only the last
/// four digits.
#[derive(Clone)]
pub struct BankAccountNumber(SecretString);

impl BankAccountNumber {
    /// Parses an account number, ignoring spaces and dashes. Errors:
    /// [`BankError::Empty`], [`BankError::NonDigit`], [`BankError::AccountLength`].
    pub fn parse(input: &str) -> Result<BankAccountNumber, BankError> {
        let digits = SecretString::new(strip_separators(input.trim()));
        let d = digits.expose_secret();
        if d.is_empty() {
            return Err(BankError::Empty);
        }
        if !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BankError::NonDigit);
        }
        if !(4..=17).contains(&d.len()) {
            return Err(BankError::AccountLength { got: d.len() });
        }
        Ok(BankAccountNumber(digits))
    }

    /// The last four digits.
    pub fn last4(&self) -> String {
        let d = self.0.expose_secret();
        d.get(d.len().saturating_sub(4)..).unwrap_or("").to_owned()
    }

    /// The full account number. Only for handing to the processor; never log it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for BankAccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankAccountNumber(****{})", self.last4())
    }
}

/// The kind of deposit account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BankAccountType {
    /// A checking account.
    Checking,
    /// A savings account.
    Savings,
}

impl BankAccountType {
    /// "checking" or "savings".
    pub fn as_str(&self) -> &'static str {
        match self {
            BankAccountType::Checking => "checking",
            BankAccountType::Savings => "savings",
        }
    }

    /// Parses "checking" or "savings", case-insensitively.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        [BankAccountType::Checking, BankAccountType::Savings]
            .into_iter()
            .find(|t| s.eq_ignore_ascii_case(t.as_str()))
    }
}

impl fmt::Display for BankAccountType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why bank details were rejected. Messages never contain the digits entered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BankError {
    /// Nothing was entered.
    #[error("Please enter the bank routing and account numbers.")]
    Empty,
    /// Something other than digits, spaces and dashes was entered.
    #[error("Bank routing and account numbers can contain only digits.")]
    NonDigit,
    /// The routing number is not 9 digits.
    #[error("A routing number is 9 digits, but {got} {} entered.", if *got == 1 { "digit was" } else { "digits were" })]
    RoutingLength {
        /// Digits entered.
        got: usize,
    },
    /// The routing number fails the ABA checksum: it has a typo.
    #[error("That routing number is not valid (check the digits).")]
    RoutingChecksum,
    /// The routing number does not start with a valid Federal Reserve prefix.
    #[error("That is not a US bank routing number (check the first two digits).")]
    RoutingPrefix,
    /// The account number is not 4 to 17 digits.
    #[error("A bank account number is 4 to 17 digits, but {got} {} entered.", if *got == 1 { "digit was" } else { "digits were" })]
    AccountLength {
        /// Digits entered.
        got: usize,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn routing_numbers() {
        for ok in [
            "021000021",
            "110000000",
            "121181976",
            "0210-0002 1",
            "011000015",
        ] {
            assert!(RoutingNumber::parse(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            RoutingNumber::parse("021000021").unwrap().as_str(),
            "021000021"
        );
        assert_eq!(
            RoutingNumber::parse("021000022"),
            Err(BankError::RoutingChecksum)
        );
        assert_eq!(RoutingNumber::parse(""), Err(BankError::Empty));
        assert_eq!(RoutingNumber::parse("02100002a"), Err(BankError::NonDigit));
        assert_eq!(
            RoutingNumber::parse("02100002"),
            Err(BankError::RoutingLength { got: 8 })
        );
        // 13-20, 33-60, 73-79 and 81-99 are not Federal Reserve prefixes.
        // 130000000: weighted sum 3 + 21 = 24, prefix check comes first.
        for bad in [
            "130000000",
            "200000000",
            "330000000",
            "600000000",
            "730000000",
            "810000000",
            "990000000",
        ] {
            assert_eq!(
                RoutingNumber::parse(bad),
                Err(BankError::RoutingPrefix),
                "{bad}"
            );
        }
    }

    #[test]
    fn bank_account_numbers() {
        let a = BankAccountNumber::parse("000123456789").unwrap();
        assert_eq!(a.last4(), "6789");
        assert_eq!(a.expose_secret(), "000123456789");
        assert_eq!(format!("{a:?}"), "BankAccountNumber(****6789)");
        assert!(BankAccountNumber::parse("1234").is_ok());
        assert!(BankAccountNumber::parse("12345678901234567").is_ok());
        assert_eq!(
            BankAccountNumber::parse("123").unwrap_err(),
            BankError::AccountLength { got: 3 }
        );
        assert_eq!(
            BankAccountNumber::parse("123456789012345678").unwrap_err(),
            BankError::AccountLength { got: 18 }
        );
        assert_eq!(BankAccountNumber::parse(" ").unwrap_err(), BankError::Empty);
        assert_eq!(
            BankAccountNumber::parse("12a4").unwrap_err(),
            BankError::NonDigit
        );
    }

    #[test]
    fn account_types() {
        assert_eq!(
            BankAccountType::parse("Checking"),
            Some(BankAccountType::Checking)
        );
        assert_eq!(
            BankAccountType::parse("savings"),
            Some(BankAccountType::Savings)
        );
        assert_eq!(BankAccountType::parse("brokerage"), None);
        for t in [BankAccountType::Checking, BankAccountType::Savings] {
            assert_eq!(BankAccountType::parse(t.as_str()), Some(t));
        }
    }

    proptest! {
        #[test]
        fn routing_checksum_catches_single_substitution(
            body in proptest::collection::vec(0u8..10, 8), pos in 0usize..9, delta in 1u8..10
        ) {
            // Build a valid number with prefix 02 by choosing the last digit.
            let mut d: Vec<u8> = vec![0, 2];
            d.extend_from_slice(&body[2..8]);
            let weights = [3u32, 7, 1, 3, 7, 1, 3, 7];
            let partial: u32 = d.iter().zip(weights).map(|(&x, w)| u32::from(x) * w).sum();
            let last = u8::try_from((10 - partial % 10) % 10).unwrap();
            d.push(last);
            let s: String = d.iter().map(|&x| char::from(b'0' + x)).collect();
            prop_assert!(RoutingNumber::parse(&s).is_ok(), "{}", s);
            let mut changed = d.clone();
            changed[pos] = (changed[pos] + delta) % 10;
            let t: String = changed.iter().map(|&x| char::from(b'0' + x)).collect();
            prop_assert!(RoutingNumber::parse(&t).is_err(), "{}", t);
        }

        #[test]
        fn bank_parsers_never_panic(s in ".{0,30}") {
            let _ = RoutingNumber::parse(&s);
            let _ = BankAccountNumber::parse(&s);
        }
    }
}
