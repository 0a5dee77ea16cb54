//! Customer account numbers and payment confirmation numbers.
//!
//! Both end in a Damm check digit (see [`crate::check_digit`]), so any single
//! mistyped digit and any swap of two neighbouring digits is caught before a
//! lookup is even attempted.

use std::fmt;

use crate::check_digit::{damm_digit, damm_fold, damm_valid};
use crate::strip_separators;

/// Fewest digits in an account number, check digit included.
pub const ACCOUNT_NUMBER_MIN_LEN: usize = 8;
/// Most digits in an account number, check digit included.
pub const ACCOUNT_NUMBER_MAX_LEN: usize = 17;

/// A billpay customer account number: 8 to 17 digits, the last of which is the
/// Damm check digit over the rest.
///
/// Account numbers are identifiers, not secrets, so `Display` prints every
/// digit. Use [`AccountNumber::masked`] where only a hint is wanted.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountNumber(String);

/// Strips separators and checks that something is left and it is all digits.
fn clean_digits(input: &str) -> Result<String, IdError> {
    let digits = strip_separators(input.trim());
    if digits.is_empty() {
        return Err(IdError::Empty);
    }
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(IdError::NonDigit);
    }
    Ok(digits)
}

fn check_len(digits: &str, min: usize, max: usize) -> Result<(), IdError> {
    let got = digits.len();
    if (min..=max).contains(&got) {
        Ok(())
    } else {
        Err(IdError::Length { min, max, got })
    }
}

impl AccountNumber {
    /// Parses an account number as typed, ignoring spaces and dashes.
    ///
    /// Errors: [`IdError::Empty`], [`IdError::NonDigit`], [`IdError::Length`]
    /// (8 to 17 digits) and [`IdError::CheckDigit`] when the number has a typo.
    pub fn parse(input: &str) -> Result<AccountNumber, IdError> {
        let digits = clean_digits(input)?;
        check_len(&digits, ACCOUNT_NUMBER_MIN_LEN, ACCOUNT_NUMBER_MAX_LEN)?;
        if !damm_valid(&digits) {
            return Err(IdError::CheckDigit);
        }
        Ok(AccountNumber(digits))
    }

    /// Builds an account number from its body (7 to 16 digits) by appending the
    /// Damm check digit.
    pub fn from_body(body_digits: &str) -> Result<AccountNumber, IdError> {
        let mut digits = clean_digits(body_digits)?;
        check_len(
            &digits,
            ACCOUNT_NUMBER_MIN_LEN - 1,
            ACCOUNT_NUMBER_MAX_LEN - 1,
        )?;
        let check = damm_digit(&digits).ok_or(IdError::NonDigit)?;
        digits.push(char::from(b'0' + check % 10));
        Ok(AccountNumber(digits))
    }

    /// All the digits, check digit included.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last four digits.
    pub fn last4(&self) -> &str {
        self.0.get(self.0.len().saturating_sub(4)..).unwrap_or("")
    }

    /// The last four digits behind a mask: "****9012".
    pub fn masked(&self) -> String {
        format!("****{}", self.last4())
    }
}

impl fmt::Display for AccountNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Number of digits in a confirmation number.
pub const CONFIRMATION_LEN: usize = 10;

/// A payment confirmation number: exactly 10 digits, 9 body digits (the first
/// never 0) followed by the Damm check digit. Displayed as "123-456-7890".
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ConfirmationNumber(String);

impl ConfirmationNumber {
    /// Parses "123-456-7890", "123 456 7890" or "1234567890".
    ///
    /// A number starting with 0 can never have been issued and is reported as
    /// [`IdError::CheckDigit`] (a typo), like any other invalid number.
    pub fn parse(input: &str) -> Result<ConfirmationNumber, IdError> {
        let digits = clean_digits(input)?;
        check_len(&digits, CONFIRMATION_LEN, CONFIRMATION_LEN)?;
        if digits.starts_with('0') || !damm_valid(&digits) {
            return Err(IdError::CheckDigit);
        }
        Ok(ConfirmationNumber(digits))
    }

    /// Build from 9 random bytes-derived digits: take a u64 from the caller (the
    /// random source is not ours), map to a 9-digit body 100000000..=999999999,
    /// append check digit.
    ///
    /// The mapping is `100_000_000 + random % 900_000_000`; the modulo bias is
    /// below one part in 10^10 and irrelevant for a reference number.
    pub fn from_random(random: u64) -> ConfirmationNumber {
        let body = 100_000_000 + random % 900_000_000;
        let mut digits = body.to_string();
        let check = damm_fold(digits.bytes().map(|b| b.wrapping_sub(b'0')));
        digits.push(char::from(b'0' + check % 10));
        ConfirmationNumber(digits)
    }

    /// The ten digits without separators: "1234567890".
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The grouped display form: "123-456-7890".
    pub fn grouped(&self) -> String {
        let d = &self.0;
        match (d.get(..3), d.get(3..6), d.get(6..)) {
            (Some(a), Some(b), Some(c)) => format!("{a}-{b}-{c}"),
            _ => d.clone(),
        }
    }

    /// The ten digits, for reading out one at a time (IVR).
    pub fn spoken_digits(&self) -> Vec<char> {
        self.0.chars().collect()
    }
}

impl fmt::Display for ConfirmationNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.grouped())
    }
}

/// Why an account or confirmation number was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Nothing was entered.
    #[error("no number was entered")]
    Empty,
    /// Something other than digits, spaces and dashes was entered.
    #[error("the number can contain only digits (spaces and dashes are fine)")]
    NonDigit,
    /// The number has the wrong number of digits.
    #[error("{}", length_message(*min, *max, *got))]
    Length {
        /// Fewest digits allowed.
        min: usize,
        /// Most digits allowed.
        max: usize,
        /// Digits entered.
        got: usize,
    },
    /// The check digit does not match: the number has a typo.
    #[error("the number has a typo: its check digit does not match")]
    CheckDigit,
}

fn length_message(min: usize, max: usize, got: usize) -> String {
    let digit_word = if got == 1 { "digit was" } else { "digits were" };
    if min == max {
        format!("the number must be exactly {min} digits long, but {got} {digit_word} entered")
    } else {
        format!("the number must be {min} to {max} digits long, but {got} {digit_word} entered")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn account_number_round_trip() {
        let acct = AccountNumber::from_body("1234567").unwrap();
        assert_eq!(acct.as_str().len(), 8);
        assert_eq!(AccountNumber::parse(acct.as_str()), Ok(acct.clone()));
        let spaced = format!(
            "{}-{} {}",
            &acct.as_str()[..3],
            &acct.as_str()[3..6],
            &acct.as_str()[6..]
        );
        assert_eq!(AccountNumber::parse(&spaced), Ok(acct.clone()));
        assert_eq!(acct.last4(), &acct.as_str()[4..]);
        assert_eq!(acct.masked(), format!("****{}", acct.last4()));
        assert_eq!(acct.to_string(), acct.as_str());
    }

    #[test]
    fn account_number_errors() {
        assert_eq!(AccountNumber::parse(""), Err(IdError::Empty));
        assert_eq!(AccountNumber::parse(" - "), Err(IdError::Empty));
        assert_eq!(AccountNumber::parse("1234567a"), Err(IdError::NonDigit));
        assert_eq!(
            AccountNumber::parse("1234567"),
            Err(IdError::Length {
                min: 8,
                max: 17,
                got: 7
            })
        );
        assert_eq!(
            AccountNumber::parse("123456789012345678"),
            Err(IdError::Length {
                min: 8,
                max: 17,
                got: 18
            })
        );
        let acct = AccountNumber::from_body("1234567").unwrap();
        let mut typo = acct.as_str().to_owned().into_bytes();
        typo[0] = if typo[0] == b'9' { b'8' } else { typo[0] + 1 };
        assert_eq!(
            AccountNumber::parse(std::str::from_utf8(&typo).unwrap()),
            Err(IdError::CheckDigit)
        );
        assert_eq!(
            AccountNumber::from_body("123456"),
            Err(IdError::Length {
                min: 7,
                max: 16,
                got: 6
            })
        );
        assert!(
            IdError::Length {
                min: 8,
                max: 17,
                got: 5
            }
            .to_string()
            .contains("8 to 17")
        );
        assert!(IdError::CheckDigit.to_string().contains("typo"));
    }

    #[test]
    fn confirmation_number_forms() {
        let c = ConfirmationNumber::from_random(0);
        assert_eq!(&c.as_str()[..9], "100000000");
        let grouped = c.grouped();
        assert_eq!(grouped.len(), 12);
        assert_eq!(ConfirmationNumber::parse(&grouped), Ok(c.clone()));
        assert_eq!(
            ConfirmationNumber::parse(&grouped.replace('-', " ")),
            Ok(c.clone())
        );
        assert_eq!(ConfirmationNumber::parse(c.as_str()), Ok(c.clone()));
        assert_eq!(c.to_string(), grouped);
        assert_eq!(c.spoken_digits().len(), 10);
        assert_eq!(
            ConfirmationNumber::from_random(899_999_999).as_str()[..9].to_owned(),
            "999999999"
        );
        assert_eq!(
            ConfirmationNumber::parse("123"),
            Err(IdError::Length {
                min: 10,
                max: 10,
                got: 3
            })
        );
        assert!(
            IdError::Length {
                min: 10,
                max: 10,
                got: 3
            }
            .to_string()
            .contains("exactly 10")
        );
        // A leading zero is never issued, even with a matching check digit.
        let body = "012345678";
        let check = damm_digit(body).unwrap();
        assert_eq!(
            ConfirmationNumber::parse(&format!("{body}{check}")),
            Err(IdError::CheckDigit)
        );
    }

    proptest! {
        #[test]
        fn from_random_always_valid(r in any::<u64>()) {
            let c = ConfirmationNumber::from_random(r);
            prop_assert_eq!(c.as_str().len(), CONFIRMATION_LEN);
            prop_assert!(c.as_str().bytes().all(|b| b.is_ascii_digit()));
            prop_assert!(!c.as_str().starts_with('0'));
            prop_assert!(damm_valid(c.as_str()));
            prop_assert_eq!(ConfirmationNumber::parse(c.as_str()), Ok(c.clone()));
            prop_assert_eq!(ConfirmationNumber::parse(&c.grouped()), Ok(c));
        }

        #[test]
        fn account_parse_rejects_every_single_digit_change(
            body in proptest::collection::vec(0u8..10, 7..=16),
        ) {
            let body: String = body.into_iter().map(|d| char::from(b'0' + d)).collect();
            let acct = AccountNumber::from_body(&body).unwrap();
            prop_assert_eq!(AccountNumber::parse(acct.as_str()), Ok(acct.clone()));
            let bytes = acct.as_str().as_bytes().to_vec();
            for i in 0..bytes.len() {
                for delta in 1..10u8 {
                    let mut changed = bytes.clone();
                    changed[i] = b'0' + (changed[i] - b'0' + delta) % 10;
                    let changed = String::from_utf8(changed).unwrap();
                    prop_assert_eq!(AccountNumber::parse(&changed), Err(IdError::CheckDigit));
                }
            }
        }

        #[test]
        fn id_parsers_never_panic(s in ".{0,40}") {
            let _ = AccountNumber::parse(&s);
            let _ = AccountNumber::from_body(&s);
            let _ = ConfirmationNumber::parse(&s);
        }
    }
}
