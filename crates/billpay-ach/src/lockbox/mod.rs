//! Pay-by-mail lockbox files: the checks a bank received at the biller's lockbox, as a
//! documented CSV layout ([`parse_csv`]) or as a BAI2 report ([`parse_bai2`]).
//!
//! Both parsers are all-or-nothing: any bad line fails the whole file with its line number and
//! reason, so the caller posts nothing from a file it could not fully read. Both produce
//! [`LockboxItem`]s with a stable [`LockboxItem::item_key`] the caller uses to post each check
//! exactly once even when a file is delivered twice. Layouts and examples are in
//! `docs/file-formats.md`.

mod bai2;
mod csv;

use jiff::civil::Date;

pub use bai2::{BAI2_LOCKBOX_DEPOSIT, BAI2_LOCKBOX_ITEM, parse_bai2};
pub use csv::{CSV_HEADER, parse_csv};

use crate::ParseError;

/// The most items one file may hold: a limit, not a format rule.
pub const ITEMS_MAX: usize = 100_000;
/// The longest text field accepted (characters).
pub const FIELD_CHARS_MAX: usize = 128;

/// One check received at the lockbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LockboxItem {
    /// The 1-based line of the file the item was read from.
    pub line: usize,
    /// The day the bank deposited the check.
    pub deposit_date: Date,
    /// The lockbox number (BAI2: the 03 record's account number).
    pub lockbox: String,
    /// The bank's batch within the day's deposit.
    pub batch: String,
    /// The item's sequence within the batch.
    pub sequence: String,
    /// The check's serial number as the bank read it; may be empty.
    pub check_number: String,
    /// Cents, positive.
    pub amount: i64,
    /// The biller's customer account number as printed on the remittance coupon; may be empty
    /// (a check with no coupon, to be matched by hand). Not a bank account number.
    pub account_reference: String,
    /// Who sent the check, as the bank keyed it; may be empty.
    pub remitter: String,
    /// Stable and unique within the file: `"{lockbox}:{deposit_date}:{batch}:{sequence}"`.
    pub item_key: String,
}

impl LockboxItem {
    /// The key for `lockbox`, `deposit_date`, `batch` and `sequence`.
    pub fn key(lockbox: &str, deposit_date: Date, batch: &str, sequence: &str) -> String {
        format!("{lockbox}:{deposit_date}:{batch}:{sequence}")
    }
}

/// Fails when two items share a key, naming both lines.
fn check_unique(items: &[LockboxItem]) -> Result<(), ParseError> {
    let mut seen: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for item in items {
        if let Some(first) = seen.insert(&item.item_key, item.line) {
            return Err(ParseError::new(
                item.line,
                format!(
                    "duplicate item {:?}: the same lockbox, date, batch and sequence as line {first}",
                    item.item_key
                ),
            ));
        }
    }
    Ok(())
}
