//! NACHA (ACH) files: the types, the writer ([`write_file`]), the reader ([`parse_file`]) and
//! the returns/NOC file a bank sends back ([`build_returns_file`]).
//!
//! The subset billpay uses: consumer and corporate debits and credits (SEC codes PPD, CCD, WEB,
//! TEL), prenotes, one optional addenda per entry (05 payment information, 98 notification of
//! change, 99 return), and COR batches for NOCs. Records are 94 ASCII characters, one per line,
//! blocked by 10 with all-`9` filler records. Field positions are in `docs/file-formats.md`.
//!
//! Account numbers are secrets: `Debug` of [`Entry`], [`Addenda`], [`Outcome`],
//! [`CorrectionItem`] and [`Correction`] shows only their last four characters, and no
//! [`AchError`] or [`ParseError`](crate::ParseError) message contains one.
//!
//! ```
//! use billpay_ach::nacha::{
//!     AchFile, Batch, Entry, FileHeader, SecCode, TransactionCode, parse_file, write_file,
//! };
//! use jiff::civil::{date, datetime};
//!
//! let file = AchFile {
//!     header: FileHeader {
//!         immediate_destination: "021000021".into(),
//!         immediate_origin: "1234567890".into(),
//!         creation: datetime(2026, 12, 1, 9, 30, 0, 0),
//!         file_id_modifier: 'A',
//!         destination_name: "JPMORGAN CHASE".into(),
//!         origin_name: "CITY UTILITIES".into(),
//!         reference_code: String::new(),
//!     },
//!     batches: vec![Batch {
//!         company_name: "CITY UTILITIES".into(),
//!         company_discretionary_data: String::new(),
//!         company_id: "1234567890".into(),
//!         sec: SecCode::Web,
//!         entry_description: "UTIL PYMT".into(),
//!         descriptive_date: String::new(),
//!         effective_date: date(2026, 12, 2),
//!         odfi_id: "02100002".into(),
//!         batch_number: 1,
//!         entries: vec![Entry {
//!             transaction_code: TransactionCode::debit(false, false),
//!             rdfi_routing: "011000015".into(),
//!             account_number: "000123456789".into(),
//!             amount: 8410,
//!             individual_id: "100042".into(),
//!             individual_name: "JANE DOE".into(),
//!             discretionary_data: "S".into(),
//!             trace_number: "021000020000001".into(),
//!             addenda: vec![],
//!         }],
//!     }],
//! };
//! let text = write_file(&file)?;
//! assert_eq!(text.lines().count(), 10);
//! assert_eq!(parse_file(&text)?, file);
//! assert!(!format!("{file:?}").contains("000123456789"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod parse;
mod returns;
mod write;

use std::fmt;

use jiff::civil::{Date, DateTime};

pub use parse::{FILE_LINES_MAX, parse_file};
pub use returns::{
    Correction, CorrectionItem, Outcome, ReturnItem, build_returns, build_returns_file,
};
pub use write::write_file;

use crate::Masked;

/// Characters in every NACHA record.
pub const RECORD_LEN: usize = 94;
/// Records per block; a file is padded with all-`9` records to a multiple of this.
pub const BLOCKING_FACTOR: usize = 10;
/// The largest amount one entry can carry (10 digits of cents: $99,999,999.99).
pub const ENTRY_AMOUNT_CENTS_MAX: i64 = 9_999_999_999;

/// Standard Entry Class code of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SecCode {
    /// Prearranged Payment and Deposit: consumer, written authorization.
    Ppd,
    /// Corporate Credit or Debit: business accounts.
    Ccd,
    /// Internet-initiated consumer entry.
    Web,
    /// Telephone-initiated consumer entry.
    Tel,
    /// Notification of Change batch, sent back by a receiving bank (entries carry addenda 98).
    Cor,
}

impl SecCode {
    /// The three-letter code: "PPD", "CCD", "WEB", "TEL", "COR".
    pub fn as_str(&self) -> &'static str {
        match self {
            SecCode::Ppd => "PPD",
            SecCode::Ccd => "CCD",
            SecCode::Web => "WEB",
            SecCode::Tel => "TEL",
            SecCode::Cor => "COR",
        }
    }

    /// Parses a three-letter code (exact, upper case).
    pub fn parse(s: &str) -> Option<SecCode> {
        [
            SecCode::Ppd,
            SecCode::Ccd,
            SecCode::Web,
            SecCode::Tel,
            SecCode::Cor,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

impl fmt::Display for SecCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The transaction codes billpay writes and reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TransactionCode {
    /// 21: automated return or NOC of a checking credit (22 or 23).
    CheckingReturnCredit,
    /// 22: checking credit.
    CheckingCredit,
    /// 23: checking credit prenote.
    CheckingCreditPrenote,
    /// 26: automated return or NOC of a checking debit (27 or 28).
    CheckingReturnDebit,
    /// 27: checking debit.
    CheckingDebit,
    /// 28: checking debit prenote.
    CheckingDebitPrenote,
    /// 31: automated return or NOC of a savings credit (32 or 33).
    SavingsReturnCredit,
    /// 32: savings credit.
    SavingsCredit,
    /// 33: savings credit prenote.
    SavingsCreditPrenote,
    /// 36: automated return or NOC of a savings debit (37 or 38).
    SavingsReturnDebit,
    /// 37: savings debit.
    SavingsDebit,
    /// 38: savings debit prenote.
    SavingsDebitPrenote,
}

impl TransactionCode {
    const ALL: [TransactionCode; 12] = [
        TransactionCode::CheckingReturnCredit,
        TransactionCode::CheckingCredit,
        TransactionCode::CheckingCreditPrenote,
        TransactionCode::CheckingReturnDebit,
        TransactionCode::CheckingDebit,
        TransactionCode::CheckingDebitPrenote,
        TransactionCode::SavingsReturnCredit,
        TransactionCode::SavingsCredit,
        TransactionCode::SavingsCreditPrenote,
        TransactionCode::SavingsReturnDebit,
        TransactionCode::SavingsDebit,
        TransactionCode::SavingsDebitPrenote,
    ];

    /// The two-digit code.
    pub fn code(&self) -> u8 {
        match self {
            TransactionCode::CheckingReturnCredit => 21,
            TransactionCode::CheckingCredit => 22,
            TransactionCode::CheckingCreditPrenote => 23,
            TransactionCode::CheckingReturnDebit => 26,
            TransactionCode::CheckingDebit => 27,
            TransactionCode::CheckingDebitPrenote => 28,
            TransactionCode::SavingsReturnCredit => 31,
            TransactionCode::SavingsCredit => 32,
            TransactionCode::SavingsCreditPrenote => 33,
            TransactionCode::SavingsReturnDebit => 36,
            TransactionCode::SavingsDebit => 37,
            TransactionCode::SavingsDebitPrenote => 38,
        }
    }

    /// The code for a two-digit number, if billpay knows it.
    pub fn from_code(code: u8) -> Option<TransactionCode> {
        TransactionCode::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Whether the entry counts toward the batch's debit total (27, 28, 37, 38 and the
    /// returns/NOCs of debits, 26 and 36).
    pub fn is_debit(&self) -> bool {
        matches!(self.code() % 10, 6..=9)
    }

    /// Whether this is a zero-dollar prenotification (23, 28, 33, 38).
    pub fn is_prenote(&self) -> bool {
        matches!(self.code(), 23 | 28 | 33 | 38)
    }

    /// Whether this is an automated return or NOC code (21, 26, 31, 36).
    pub fn is_return_or_noc(&self) -> bool {
        matches!(self.code(), 21 | 26 | 31 | 36)
    }

    /// Whether the account is a savings account (3x codes).
    pub fn is_savings(&self) -> bool {
        self.code() / 10 == 3
    }

    /// A debit (27/37) or debit prenote (28/38).
    pub fn debit(account_type_savings: bool, prenote: bool) -> TransactionCode {
        match (account_type_savings, prenote) {
            (false, false) => TransactionCode::CheckingDebit,
            (false, true) => TransactionCode::CheckingDebitPrenote,
            (true, false) => TransactionCode::SavingsDebit,
            (true, true) => TransactionCode::SavingsDebitPrenote,
        }
    }

    /// A credit (22/32) or credit prenote (23/33).
    pub fn credit(account_type_savings: bool, prenote: bool) -> TransactionCode {
        match (account_type_savings, prenote) {
            (false, false) => TransactionCode::CheckingCredit,
            (false, true) => TransactionCode::CheckingCreditPrenote,
            (true, false) => TransactionCode::SavingsCredit,
            (true, true) => TransactionCode::SavingsCreditPrenote,
        }
    }

    /// The code a receiving bank uses to return this entry or send a NOC for it: 21 for 22/23,
    /// 26 for 27/28, 31 for 32/33, 36 for 37/38 (a return/NOC code maps to itself).
    pub fn return_code(&self) -> TransactionCode {
        match (self.is_savings(), self.is_debit()) {
            (false, false) => TransactionCode::CheckingReturnCredit,
            (false, true) => TransactionCode::CheckingReturnDebit,
            (true, false) => TransactionCode::SavingsReturnCredit,
            (true, true) => TransactionCode::SavingsReturnDebit,
        }
    }
}

/// Record 1: who the file is from and to, and when it was made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileHeader {
    /// The receiving point's 9-digit routing number (written with a leading space).
    pub immediate_destination: String,
    /// 10 characters, e.g. "1" + a 9-digit EIN, or a 9-digit routing number (written with a
    /// leading space).
    pub immediate_origin: String,
    /// File creation date and time; only YYMMDD and HHMM are written (seconds are dropped), and
    /// the year must be 2000–2099.
    pub creation: DateTime,
    /// A–Z or 0–9; distinguishes files made on the same day.
    pub file_id_modifier: char,
    /// Up to 23 characters.
    pub destination_name: String,
    /// Up to 23 characters.
    pub origin_name: String,
    /// Up to 8 characters, may be empty.
    pub reference_code: String,
}

/// A batch: records 5 (header) and 8 (control) around its entries. The service class code is
/// computed from the entries: 225 all debits, 220 all credits, 200 mixed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// Up to 16 characters: the name the customer sees on the statement.
    pub company_name: String,
    /// Up to 20 characters, may be empty.
    pub company_discretionary_data: String,
    /// 1 to 10 characters, e.g. "1" + EIN.
    pub company_id: String,
    /// Standard Entry Class.
    pub sec: SecCode,
    /// 1 to 10 characters, e.g. "UTIL PYMT".
    pub entry_description: String,
    /// Up to 6 characters, may be empty.
    pub descriptive_date: String,
    /// The date the originator wants the entries to settle (year 2000–2099).
    pub effective_date: Date,
    /// The originating bank: the first 8 digits of its routing number. Every entry's trace
    /// number starts with it.
    pub odfi_id: String,
    /// 1 to 9,999,999.
    pub batch_number: u32,
    /// At least one.
    pub entries: Vec<Entry>,
}

impl Batch {
    /// 225 when every entry is a debit, 220 when every entry is a credit, 200 when mixed.
    pub fn service_class_code(&self) -> u16 {
        let debits = self.entries.iter().any(|e| e.transaction_code.is_debit());
        let credits = self.entries.iter().any(|e| !e.transaction_code.is_debit());
        match (debits, credits) {
            (true, false) => 225,
            (false, true) => 220,
            _ => 200,
        }
    }
}

/// Record 6 and its addenda. `Debug` masks the account number.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// What kind of entry.
    pub transaction_code: TransactionCode,
    /// The receiving bank's 9-digit routing number, check digit included.
    pub rdfi_routing: String,
    /// 1 to 17 letters or digits. Secret.
    pub account_number: String,
    /// Cents, 0 to 9,999,999,999; 0 for prenotes and NOCs.
    pub amount: i64,
    /// Up to 15 characters (billpay: the biller's customer account number), may be empty.
    pub individual_id: String,
    /// 1 to 22 characters.
    pub individual_name: String,
    /// Up to 2 characters; for WEB and TEL the payment type: "S" single, "R" recurring.
    pub discretionary_data: String,
    /// 15 digits: the batch's 8-digit ODFI id and a 7-digit sequence number. Unique in a file.
    pub trace_number: String,
    /// At most one addenda record.
    pub addenda: Vec<Addenda>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("transaction_code", &self.transaction_code)
            .field("rdfi_routing", &self.rdfi_routing)
            .field("account_number", &Masked(&self.account_number))
            .field("amount", &self.amount)
            .field("individual_id", &self.individual_id)
            .field("individual_name", &self.individual_name)
            .field("discretionary_data", &self.discretionary_data)
            .field("trace_number", &self.trace_number)
            .field("addenda", &self.addenda)
            .finish()
    }
}

/// Record 7. `Debug` masks a NOC's corrected data (it may hold an account number).
#[derive(Clone, PartialEq, Eq)]
pub enum Addenda {
    /// Type 05: payment-related information (PPD, CCD, WEB).
    Payment05 {
        /// Up to 80 characters.
        info: String,
    },
    /// Type 99: the entry is a return.
    Return99 {
        /// "R01" to "R99".
        return_code: String,
        /// The returned entry's trace number (15 digits).
        original_trace: String,
        /// Date of death, for R14/R15.
        date_of_death: Option<Date>,
        /// The original entry's receiving bank: first 8 digits of its routing number.
        original_rdfi: String,
        /// Up to 44 characters.
        info: String,
        /// The return entry's own trace number (15 digits).
        trace: String,
    },
    /// Type 98: notification of change.
    Noc98 {
        /// "C01" to "C99".
        change_code: String,
        /// The original entry's trace number (15 digits).
        original_trace: String,
        /// The original entry's receiving bank (8 digits).
        original_rdfi: String,
        /// Up to 29 characters, laid out per change code (see [`Correction`]). May hold an
        /// account number: secret.
        corrected_data: String,
        /// The NOC entry's own trace number (15 digits).
        trace: String,
    },
}

impl fmt::Debug for Addenda {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addenda::Payment05 { info } => f.debug_struct("Payment05").field("info", info).finish(),
            Addenda::Return99 {
                return_code,
                original_trace,
                date_of_death,
                original_rdfi,
                info,
                trace,
            } => f
                .debug_struct("Return99")
                .field("return_code", return_code)
                .field("original_trace", original_trace)
                .field("date_of_death", date_of_death)
                .field("original_rdfi", original_rdfi)
                .field("info", info)
                .field("trace", trace)
                .finish(),
            Addenda::Noc98 {
                change_code,
                original_trace,
                original_rdfi,
                corrected_data,
                trace,
            } => f
                .debug_struct("Noc98")
                .field("change_code", change_code)
                .field("original_trace", original_trace)
                .field("original_rdfi", original_rdfi)
                .field("corrected_data", &Masked(corrected_data))
                .field("trace", trace)
                .finish(),
        }
    }
}

/// A whole NACHA file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AchFile {
    /// Record 1.
    pub header: FileHeader,
    /// The batches, in file order.
    pub batches: Vec<Batch>,
}

/// Why a file could not be written or built. Messages never contain an account number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AchError {
    /// A field is missing, too long, of the wrong characters or out of range.
    #[error("{record}: {field} {reason}")]
    Field {
        /// Which record, e.g. "file header", "batch 2", "batch 2 entry 3".
        record: String,
        /// The field's name, e.g. "rdfi_routing".
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// Two entries in the file share a trace number.
    #[error("trace number {trace} appears more than once in the file")]
    DuplicateTrace {
        /// The trace number.
        trace: String,
    },
    /// An outcome names a trace number the original file does not have.
    #[error("no entry with trace number {trace} in the original file")]
    UnknownTrace {
        /// The trace number.
        trace: String,
    },
    /// A count or total does not fit its field.
    #[error("{what} does not fit in its field")]
    Overflow {
        /// Which count or total.
        what: &'static str,
    },
}

/// The ABA check digit for the first 8 digits of a routing number (weights 3, 7, 1).
pub fn aba_check_digit(first8: &str) -> Option<char> {
    if first8.len() != 8 || !first8.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sum: u32 = first8
        .bytes()
        .zip([3u32, 7, 1].into_iter().cycle())
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let digit = (10 - sum % 10) % 10;
    char::from_digit(digit, 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_codes() {
        for t in TransactionCode::ALL {
            assert_eq!(TransactionCode::from_code(t.code()), Some(t));
        }
        assert_eq!(TransactionCode::from_code(24), None);
        assert_eq!(TransactionCode::debit(false, false).code(), 27);
        assert_eq!(TransactionCode::debit(true, false).code(), 37);
        assert_eq!(TransactionCode::debit(false, true).code(), 28);
        assert_eq!(TransactionCode::debit(true, true).code(), 38);
        assert_eq!(TransactionCode::credit(false, false).code(), 22);
        assert_eq!(TransactionCode::credit(true, true).code(), 33);
        let debits: Vec<u8> = TransactionCode::ALL
            .iter()
            .filter(|t| t.is_debit())
            .map(|t| t.code())
            .collect();
        assert_eq!(debits, [26, 27, 28, 36, 37, 38]);
        let prenotes: Vec<u8> = TransactionCode::ALL
            .iter()
            .filter(|t| t.is_prenote())
            .map(|t| t.code())
            .collect();
        assert_eq!(prenotes, [23, 28, 33, 38]);
        let returns: Vec<(u8, u8)> = TransactionCode::ALL
            .iter()
            .map(|t| (t.code(), t.return_code().code()))
            .collect();
        assert_eq!(
            returns,
            [
                (21, 21),
                (22, 21),
                (23, 21),
                (26, 26),
                (27, 26),
                (28, 26),
                (31, 31),
                (32, 31),
                (33, 31),
                (36, 36),
                (37, 36),
                (38, 36)
            ]
        );
    }

    #[test]
    fn sec_codes() {
        for s in ["PPD", "CCD", "WEB", "TEL", "COR"] {
            assert_eq!(SecCode::parse(s).map(|c| c.as_str()), Some(s));
        }
        assert_eq!(SecCode::parse("ppd"), None);
        assert_eq!(SecCode::parse("CTX"), None);
    }

    #[test]
    fn check_digits() {
        assert_eq!(aba_check_digit("02100002"), Some('1'));
        assert_eq!(aba_check_digit("11000000"), Some('0'));
        assert_eq!(aba_check_digit("12118197"), Some('6'));
        assert_eq!(aba_check_digit("1211819"), None);
        assert_eq!(aba_check_digit("1211819x"), None);
    }
}
