//! Returns and notifications of change: building the file a receiving bank sends back, and
//! flattening a parsed one into items billpay acts on.

use std::collections::{HashMap, HashSet};
use std::fmt;

use jiff::civil::Date;

use super::{AchError, AchFile, Addenda, Batch, Entry, FileHeader, SecCode, aba_check_digit};
use crate::Masked;

/// What the receiving bank does with one entry of an origination file.
#[derive(Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Return the entry (addenda 99) with a reason code such as "R01".
    Return {
        /// "R01" to "R99".
        code: String,
    },
    /// Accept the entry but send a notification of change (addenda 98).
    Correction {
        /// "C01" to "C99".
        code: String,
        /// The corrected data field (up to 29 characters), laid out per change code; see
        /// [`Correction::corrected_data`]. Secret (may hold an account number).
        corrected_data: String,
    },
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Return { code } => f.debug_struct("Return").field("code", code).finish(),
            Outcome::Correction {
                code,
                corrected_data,
            } => f
                .debug_struct("Correction")
                .field("code", code)
                .field("corrected_data", &Masked(corrected_data))
                .finish(),
        }
    }
}

/// One returned entry of a returns file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnItem {
    /// The trace number of the entry billpay sent, which this returns.
    pub original_trace: String,
    /// "R01" to "R99".
    pub code: String,
    /// The return entry's own trace number.
    pub entry_trace: String,
    /// Cents returned (0 for a returned prenote).
    pub amount: i64,
    /// For R14/R15.
    pub date_of_death: Option<Date>,
    /// The bank's addenda information, may be empty.
    pub info: String,
}

/// One notification of change.
#[derive(Clone, PartialEq, Eq)]
pub struct CorrectionItem {
    /// The trace number of the entry billpay sent.
    pub original_trace: String,
    /// "C01" to "C99".
    pub code: String,
    /// The raw corrected-data field. Secret.
    pub corrected_data: String,
    /// The corrected data read per the change code.
    pub parsed: Correction,
}

impl fmt::Debug for CorrectionItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CorrectionItem")
            .field("original_trace", &self.original_trace)
            .field("code", &self.code)
            .field("corrected_data", &Masked(&self.corrected_data))
            .field("parsed", &self.parsed)
            .finish()
    }
}

/// The corrected data of a NOC, read per its change code. `Debug` masks account numbers (and
/// unrecognised data, which may hold one).
#[derive(Clone, PartialEq, Eq)]
pub enum Correction {
    /// C01: the account number (columns 1–17 of the corrected data).
    AccountNumber(String),
    /// C02: the routing number (columns 1–9).
    RoutingNumber(String),
    /// C03: routing number (1–9), three spaces, account number (13–29).
    RoutingAndAccount {
        /// The routing number.
        routing: String,
        /// The account number.
        account: String,
    },
    /// C04: the individual's name (1–22).
    IndividualName(String),
    /// C05: the transaction code (1–2), e.g. 37 when checking should be savings.
    TransactionCode(u8),
    /// C06: account number (1–17), three spaces, transaction code (21–22).
    AccountAndTransactionCode {
        /// The account number.
        account: String,
        /// The transaction code.
        code: u8,
    },
    /// C07: routing number (1–9), account number (10–26), transaction code (27–28).
    RoutingAccountAndTransactionCode {
        /// The routing number.
        routing: String,
        /// The account number.
        account: String,
        /// The transaction code.
        code: u8,
    },
    /// C09: the individual identification number (1–22).
    IndividualId(String),
    /// Any other change code, or data that does not fit its code's layout: the raw field.
    Other(String),
}

impl fmt::Debug for Correction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Correction::AccountNumber(a) => {
                f.debug_tuple("AccountNumber").field(&Masked(a)).finish()
            }
            Correction::RoutingNumber(r) => f.debug_tuple("RoutingNumber").field(r).finish(),
            Correction::RoutingAndAccount { routing, account } => f
                .debug_struct("RoutingAndAccount")
                .field("routing", routing)
                .field("account", &Masked(account))
                .finish(),
            Correction::IndividualName(n) => f.debug_tuple("IndividualName").field(n).finish(),
            Correction::TransactionCode(c) => f.debug_tuple("TransactionCode").field(c).finish(),
            Correction::AccountAndTransactionCode { account, code } => f
                .debug_struct("AccountAndTransactionCode")
                .field("account", &Masked(account))
                .field("code", code)
                .finish(),
            Correction::RoutingAccountAndTransactionCode {
                routing,
                account,
                code,
            } => f
                .debug_struct("RoutingAccountAndTransactionCode")
                .field("routing", routing)
                .field("account", &Masked(account))
                .field("code", code)
                .finish(),
            Correction::IndividualId(i) => f.debug_tuple("IndividualId").field(i).finish(),
            Correction::Other(o) => f.debug_tuple("Other").field(&Masked(o)).finish(),
        }
    }
}

/// Columns `start..=end` (1-based) of `s`, trimmed; empty when out of range or not on a
/// character boundary.
fn cols(s: &str, start: usize, end: usize) -> &str {
    let end = end.min(s.len());
    s.get(start - 1..end).unwrap_or("").trim()
}

fn two_digits(s: &str) -> Option<u8> {
    if s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

impl Correction {
    /// Reads `corrected_data` per the NACHA layout of `change_code`. For C03 and C06 two
    /// space-separated parts are taken as the two fields wherever they stand (banks shift them,
    /// and moov-io/ach reads them the same way); otherwise the NACHA columns are used. Data that
    /// fits no layout, and other codes, are [`Correction::Other`].
    pub fn parse(change_code: &str, corrected_data: &str) -> Correction {
        let d = corrected_data;
        let split: Vec<&str> = d.split_whitespace().collect();
        let parsed = match change_code {
            "C01" => Some(cols(d, 1, 17))
                .filter(|a| !a.is_empty())
                .map(|a| Correction::AccountNumber(a.to_owned())),
            "C02" => Some(cols(d, 1, 9))
                .filter(|r| !r.is_empty())
                .map(|r| Correction::RoutingNumber(r.to_owned())),
            "C03" => {
                let (r, a) = match split.as_slice() {
                    [sr, sa] => (*sr, *sa),
                    _ => (cols(d, 1, 9), cols(d, 13, 29)),
                };
                (!r.is_empty() && !a.is_empty() && !r.contains(' ') && !a.contains(' ')).then(
                    || Correction::RoutingAndAccount {
                        routing: r.to_owned(),
                        account: a.to_owned(),
                    },
                )
            }
            "C04" => Some(cols(d, 1, 22))
                .filter(|n| !n.is_empty())
                .map(|n| Correction::IndividualName(n.to_owned())),
            "C05" => two_digits(cols(d, 1, 2)).map(Correction::TransactionCode),
            "C06" => {
                let positional = two_digits(cols(d, 21, 22))
                    .map(|c| (cols(d, 1, 17), c))
                    .filter(|(a, _)| !a.is_empty() && !a.contains(' '));
                let spaced = match split.as_slice() {
                    [a, c] => two_digits(c).map(|c| (*a, c)),
                    _ => None,
                };
                spaced
                    .or(positional)
                    .map(|(a, c)| Correction::AccountAndTransactionCode {
                        account: a.to_owned(),
                        code: c,
                    })
            }
            "C07" => {
                let r = cols(d, 1, 9);
                let a = cols(d, 10, 26);
                let c = two_digits(cols(d, 27, 28));
                match c {
                    Some(c) if r.len() == 9 && !a.is_empty() && !a.contains(' ') => {
                        Some(Correction::RoutingAccountAndTransactionCode {
                            routing: r.to_owned(),
                            account: a.to_owned(),
                            code: c,
                        })
                    }
                    _ => None,
                }
            }
            "C09" => Some(cols(d, 1, 22))
                .filter(|i| !i.is_empty())
                .map(|i| Correction::IndividualId(i.to_owned())),
            _ => None,
        };
        parsed.unwrap_or_else(|| Correction::Other(d.trim_end().to_owned()))
    }

    /// The corrected-data field (29 characters, trailing spaces trimmed) that says this, laid
    /// out per NACHA; [`Correction::parse`] reads it back.
    pub fn corrected_data(&self) -> String {
        let s = match self {
            Correction::AccountNumber(a) => a.clone(),
            Correction::RoutingNumber(r) => r.clone(),
            Correction::RoutingAndAccount { routing, account } => {
                format!("{routing:<9}   {account}")
            }
            Correction::IndividualName(n) => n.clone(),
            Correction::TransactionCode(c) => format!("{c:02}"),
            Correction::AccountAndTransactionCode { account, code } => {
                format!("{account:<17}   {code:02}")
            }
            Correction::RoutingAccountAndTransactionCode {
                routing,
                account,
                code,
            } => format!("{routing:<9}{account:<17}{code:02}"),
            Correction::IndividualId(i) => i.clone(),
            Correction::Other(o) => o.clone(),
        };
        s.trim_end().to_owned()
    }
}

impl AchFile {
    /// Every returned entry (addenda 99) in the file, in file order.
    pub fn returns(&self) -> Vec<ReturnItem> {
        self.entries()
            .filter_map(|e| {
                e.addenda.iter().find_map(|a| match a {
                    Addenda::Return99 {
                        return_code,
                        original_trace,
                        date_of_death,
                        info,
                        ..
                    } => Some(ReturnItem {
                        original_trace: original_trace.clone(),
                        code: return_code.clone(),
                        entry_trace: e.trace_number.clone(),
                        amount: e.amount,
                        date_of_death: *date_of_death,
                        info: info.clone(),
                    }),
                    _ => None,
                })
            })
            .collect()
    }

    /// Every notification of change (addenda 98) in the file, in file order.
    pub fn corrections(&self) -> Vec<CorrectionItem> {
        self.entries()
            .filter_map(|e| {
                e.addenda.iter().find_map(|a| match a {
                    Addenda::Noc98 {
                        change_code,
                        original_trace,
                        corrected_data,
                        ..
                    } => Some(CorrectionItem {
                        original_trace: original_trace.clone(),
                        code: change_code.clone(),
                        corrected_data: corrected_data.clone(),
                        parsed: Correction::parse(change_code, corrected_data),
                    }),
                    _ => None,
                })
            })
            .collect()
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.batches.iter().flat_map(|b| b.entries.iter())
    }
}

/// Builds the returns/NOC file a receiving bank would send back for `original`, as NACHA text.
/// See [`build_returns`].
pub fn build_returns_file(
    original: &AchFile,
    header: FileHeader,
    outcomes: &[(String, Outcome)],
    return_trace_prefix: &str,
) -> Result<String, AchError> {
    super::write_file(&build_returns(
        original,
        header,
        outcomes,
        return_trace_prefix,
    )?)
}

/// Builds the returns/NOC file a receiving bank would send back for `original`: for each
/// `(original trace number, outcome)` one entry with one addenda, following the NACHA return
/// and NOC entry layouts (as moov-io/ach reads them):
///
/// - the transaction code is the original's return/NOC code: 26 for a checking debit or debit
///   prenote (27/28), 36 for savings (37/38), 21/31 for credits;
/// - the receiving DFI field carries the *original ODFI's* routing number (its 8-digit id and
///   computed check digit), since the return travels back to it; the addenda carries the
///   original entry's receiving DFI id and trace number;
/// - account number, individual id and name are the original's; the amount is the original's
///   for a return (0 for a returned prenote) and 0 for a NOC;
/// - returns stay in a batch like the original's (same SEC code, company and description); NOCs
///   go in a COR batch; batches are numbered from 1 and dated `header.creation`'s date;
/// - new trace numbers are `return_trace_prefix` (8 digits, the returning bank's id, also the
///   batches' ODFI id) followed by a sequence number from 0000001.
///
/// Errors: an unknown or repeated original trace, a bad prefix, and anything
/// [`write_file`](super::write_file) would refuse.
pub fn build_returns(
    original: &AchFile,
    header: FileHeader,
    outcomes: &[(String, Outcome)],
    return_trace_prefix: &str,
) -> Result<AchFile, AchError> {
    if return_trace_prefix.len() != 8 || !return_trace_prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AchError::Field {
            record: "returns file".to_owned(),
            field: "return_trace_prefix",
            reason: format!("{return_trace_prefix:?} is not 8 digits"),
        });
    }
    let mut by_trace: HashMap<&str, (usize, &Batch, &Entry)> = HashMap::new();
    for (bi, b) in original.batches.iter().enumerate() {
        for e in &b.entries {
            by_trace.insert(e.trace_number.as_str(), (bi, b, e));
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    // (original batch index, is NOC) -> batch, in order of first appearance.
    let mut batches: Vec<((usize, bool), Batch)> = Vec::new();
    for (i, (trace, outcome)) in outcomes.iter().enumerate() {
        let Some(&(bi, ob, oe)) = by_trace.get(trace.as_str()) else {
            return Err(AchError::UnknownTrace {
                trace: trace.clone(),
            });
        };
        if !seen.insert(trace) {
            return Err(AchError::DuplicateTrace {
                trace: trace.clone(),
            });
        }
        let sequence = i + 1;
        if sequence > 9_999_999 {
            return Err(AchError::Overflow {
                what: "the returns file's trace sequence",
            });
        }
        let new_trace = format!("{return_trace_prefix}{sequence:07}");
        let odfi_routing = aba_check_digit(&ob.odfi_id)
            .map(|d| format!("{}{d}", ob.odfi_id))
            .ok_or_else(|| AchError::Field {
                record: format!("original batch {}", bi + 1),
                field: "odfi_id",
                reason: format!("{:?} is not 8 digits", ob.odfi_id),
            })?;
        let original_rdfi = oe.rdfi_routing.get(..8).unwrap_or("").to_owned();
        let (is_noc, amount, addenda) = match outcome {
            Outcome::Return { code } => (
                false,
                oe.amount,
                Addenda::Return99 {
                    return_code: code.clone(),
                    original_trace: trace.clone(),
                    date_of_death: None,
                    original_rdfi,
                    info: String::new(),
                    trace: new_trace.clone(),
                },
            ),
            Outcome::Correction {
                code,
                corrected_data,
            } => (
                true,
                0,
                Addenda::Noc98 {
                    change_code: code.clone(),
                    original_trace: trace.clone(),
                    original_rdfi,
                    corrected_data: corrected_data.clone(),
                    trace: new_trace.clone(),
                },
            ),
        };
        let entry = Entry {
            transaction_code: oe.transaction_code.return_code(),
            rdfi_routing: odfi_routing,
            account_number: oe.account_number.clone(),
            amount,
            individual_id: oe.individual_id.clone(),
            individual_name: oe.individual_name.clone(),
            discretionary_data: oe.discretionary_data.clone(),
            trace_number: new_trace,
            addenda: vec![addenda],
        };
        let key = (bi, is_noc);
        match batches.iter_mut().find(|(k, _)| *k == key) {
            Some((_, b)) => b.entries.push(entry),
            None => {
                let number = u32::try_from(batches.len() + 1).unwrap_or(u32::MAX);
                batches.push((
                    key,
                    Batch {
                        company_name: ob.company_name.clone(),
                        company_discretionary_data: ob.company_discretionary_data.clone(),
                        company_id: ob.company_id.clone(),
                        sec: if is_noc { SecCode::Cor } else { ob.sec },
                        entry_description: ob.entry_description.clone(),
                        descriptive_date: ob.descriptive_date.clone(),
                        effective_date: header.creation.date(),
                        odfi_id: return_trace_prefix.to_owned(),
                        batch_number: number,
                        entries: vec![entry],
                    },
                ));
            }
        }
    }
    Ok(AchFile {
        header,
        batches: batches.into_iter().map(|(_, b)| b).collect(),
    })
}
