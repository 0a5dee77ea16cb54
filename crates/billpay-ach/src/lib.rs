//! billpay-ach: the bank file formats billpay writes and reads.
//!
//! Owns the NACHA (ACH) file format — writing origination files of PPD, CCD, WEB and TEL debits
//! and credits, reading them back, reading the returns and notification-of-change (NOC) files a
//! bank sends back, and building such a file for the built-in sandbox bank ([`nacha`]) — and the
//! pay-by-mail lockbox formats: a documented CSV layout and the BAI2 subset banks use to report
//! lockbox deposits ([`lockbox`]). The layouts are written up in `docs/file-formats.md`.
//!
//! Pure: no I/O, no async, no database and no clock; dates and times are passed in. It depends
//! only on `billpay-domain` (routing-number checks), `jiff` (dates), `csv` and `thiserror`, and
//! must not depend on the store, the services or anything async.
//!
//! Parsers read files that come from outside: they never panic on any input (a property test
//! feeds them arbitrary and mutated files), reject non-ASCII text before looking at column
//! positions, and report the 1-based line number and what is wrong. Bank account numbers are
//! secrets: every `Debug` of a type that holds one shows only the last four characters, and no
//! error message ever contains one.

pub mod lockbox;
pub mod nacha;

use std::fmt;

/// A file could not be read: the 1-based line and what is wrong with it.
///
/// `Display` is `line N: message`. The message never contains a bank account number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ParseError {
    /// 1-based line number (0 when the problem is the file as a whole, e.g. it is empty).
    pub line: usize,
    /// What is wrong, in plain words.
    pub message: String,
}

impl ParseError {
    pub(crate) fn new(line: usize, message: impl Into<String>) -> ParseError {
        ParseError {
            line,
            message: message.into(),
        }
    }
}

/// Shows a secret as `****` and its last four characters (`****` alone when it has four or
/// fewer).
pub(crate) struct Masked<'a>(pub(crate) &'a str);

impl fmt::Debug for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.trim();
        let n = s.chars().count();
        if n <= 4 {
            return f.write_str("\"****\"");
        }
        let last4: String = s.chars().skip(n - 4).collect();
        write!(f, "\"****{last4}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masked_shows_last_four_only() {
        assert_eq!(format!("{:?}", Masked("000123456789")), "\"****6789\"");
        assert_eq!(format!("{:?}", Masked("1234")), "\"****\"");
        assert_eq!(format!("{:?}", Masked("")), "\"****\"");
        assert_eq!(format!("{:?}", Masked("ÉÉÉÉÉ12")), "\"****ÉÉ12\"");
    }

    #[test]
    fn parse_error_display_names_the_line() {
        let e = ParseError::new(7, "entry detail amount \"00000A1234\" is not numeric");
        assert_eq!(
            e.to_string(),
            "line 7: entry detail amount \"00000A1234\" is not numeric"
        );
    }
}
