//! Writing a NACHA file: validate every field first, then lay out the records.

use std::collections::HashSet;

use billpay_domain::RoutingNumber;
use jiff::civil::Date;

use super::{
    AchError, AchFile, Addenda, BLOCKING_FACTOR, Batch, ENTRY_AMOUNT_CENTS_MAX, Entry, FileHeader,
    RECORD_LEN, SecCode,
};

/// Largest value of a 10-digit entry hash plus one: hashes keep their last 10 digits.
pub(crate) const ENTRY_HASH_MODULUS: u64 = 10_000_000_000;
/// Largest total in a 12-digit dollar field (cents).
pub(crate) const TOTAL_CENTS_MAX: u64 = 999_999_999_999;
const BATCH_COUNT_MAX: u64 = 999_999;
const BATCH_NUMBER_MAX: u32 = 9_999_999;

/// Writes `file` as NACHA text: 94-character records, each followed by `"\n"`, padded with
/// all-`9` records to a multiple of 10 lines.
///
/// Everything is validated before anything is written — routing check digits, field lengths
/// and characters, amount ranges, prenotes and NOCs at zero, trace numbers (15 digits, starting
/// with the batch's ODFI id, unique in the file), the WEB/TEL payment type ("S" or "R" in the
/// discretionary data), at most one addenda per entry and of a kind the batch allows — and the first problem is returned as an [`AchError`] naming the record and
/// field. Alphanumeric fields are upper-cased, left-justified and space-padded; numeric fields
/// are right-justified and zero-padded.
pub fn write_file(file: &AchFile) -> Result<String, AchError> {
    validate_file(file)?;
    let mut lines: Vec<String> = Vec::new();
    lines.push(file_header_record(&file.header));
    let mut file_hash = 0u64;
    let mut file_debit = 0u64;
    let mut file_credit = 0u64;
    let mut file_count = 0u64;
    for batch in &file.batches {
        let totals = BatchTotals::of(batch)?;
        lines.push(batch_header_record(batch));
        for entry in &batch.entries {
            lines.push(entry_record(entry));
            for addenda in &entry.addenda {
                lines.push(addenda_record(addenda, &entry.trace_number));
            }
        }
        lines.push(batch_control_record(batch, &totals));
        file_hash = (file_hash + totals.entry_hash) % ENTRY_HASH_MODULUS;
        file_debit += totals.debit_cents;
        file_credit += totals.credit_cents;
        file_count += totals.entry_addenda_count;
    }
    if file_debit > TOTAL_CENTS_MAX || file_credit > TOTAL_CENTS_MAX {
        return Err(AchError::Overflow {
            what: "the file's total debit or credit amount",
        });
    }
    if file_count > 99_999_999 {
        return Err(AchError::Overflow {
            what: "the file's entry/addenda count",
        });
    }
    let records = lines.len() as u64 + 1;
    let blocks = records.div_ceil(BLOCKING_FACTOR as u64);
    if blocks > BATCH_COUNT_MAX {
        return Err(AchError::Overflow {
            what: "the file's block count",
        });
    }
    let mut control = Record::new('9');
    control.num(file.batches.len() as u64, 6);
    control.num(blocks, 6);
    control.num(file_count, 8);
    control.num(file_hash, 10);
    control.num(file_debit, 12);
    control.num(file_credit, 12);
    control.alpha("", 39);
    lines.push(control.finish());
    while !lines.len().is_multiple_of(BLOCKING_FACTOR) {
        lines.push("9".repeat(RECORD_LEN));
    }
    let mut out = String::with_capacity(lines.len() * (RECORD_LEN + 1));
    for line in lines {
        debug_assert_eq!(line.len(), RECORD_LEN, "{line}");
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

/// The counts and totals of one batch, as its control record carries them.
pub(crate) struct BatchTotals {
    pub(crate) entry_addenda_count: u64,
    pub(crate) entry_hash: u64,
    pub(crate) debit_cents: u64,
    pub(crate) credit_cents: u64,
}

impl BatchTotals {
    fn of(batch: &Batch) -> Result<BatchTotals, AchError> {
        let mut t = BatchTotals {
            entry_addenda_count: 0,
            entry_hash: 0,
            debit_cents: 0,
            credit_cents: 0,
        };
        for e in &batch.entries {
            t.entry_addenda_count += 1 + e.addenda.len() as u64;
            t.entry_hash = (t.entry_hash + routing_hash_part(&e.rdfi_routing)) % ENTRY_HASH_MODULUS;
            // Validated: 0 <= amount <= ENTRY_AMOUNT_CENTS_MAX.
            let amount = u64::try_from(e.amount).unwrap_or(0);
            if e.transaction_code.is_debit() {
                t.debit_cents += amount;
            } else {
                t.credit_cents += amount;
            }
        }
        if t.debit_cents > TOTAL_CENTS_MAX || t.credit_cents > TOTAL_CENTS_MAX {
            return Err(AchError::Overflow {
                what: "a batch's total debit or credit amount",
            });
        }
        if t.entry_addenda_count > 999_999 {
            return Err(AchError::Overflow {
                what: "a batch's entry/addenda count",
            });
        }
        Ok(t)
    }
}

/// The first 8 digits of a routing number as a number (0 if they are not digits).
pub(crate) fn routing_hash_part(routing: &str) -> u64 {
    routing
        .get(..8)
        .and_then(|d| d.parse::<u64>().ok())
        .unwrap_or(0)
}

/// One record being laid out.
struct Record(String);

impl Record {
    fn new(record_type: char) -> Record {
        let mut s = String::with_capacity(RECORD_LEN);
        s.push(record_type);
        Record(s)
    }

    /// Left-justified, space-padded, upper-cased (validated to fit beforehand).
    fn alpha(&mut self, value: &str, width: usize) {
        let upper = value.to_ascii_uppercase();
        self.0.push_str(&format!("{upper:<width$}"));
    }

    /// Right-justified, zero-padded.
    fn num(&mut self, value: u64, width: usize) {
        self.0.push_str(&format!("{value:0>width$}"));
    }

    /// A digit string written as is (validated to be `width` digits beforehand).
    fn digits(&mut self, value: &str) {
        self.0.push_str(value);
    }

    fn finish(self) -> String {
        self.0
    }
}

fn yymmdd(d: Date) -> String {
    format!(
        "{:02}{:02}{:02}",
        d.year().rem_euclid(100),
        d.month(),
        d.day()
    )
}

fn file_header_record(h: &FileHeader) -> String {
    let mut r = Record::new('1');
    r.digits("01");
    r.digits(" ");
    r.digits(&h.immediate_destination);
    if h.immediate_origin.len() == 9 {
        r.digits(" ");
    }
    r.alpha(
        &h.immediate_origin,
        10 - usize::from(h.immediate_origin.len() == 9),
    );
    r.digits(&yymmdd(h.creation.date()));
    r.digits(&format!(
        "{:02}{:02}",
        h.creation.time().hour(),
        h.creation.time().minute()
    ));
    r.alpha(&h.file_id_modifier.to_string(), 1);
    r.digits("094");
    r.digits("10");
    r.digits("1");
    r.alpha(&h.destination_name, 23);
    r.alpha(&h.origin_name, 23);
    r.alpha(&h.reference_code, 8);
    r.finish()
}

fn batch_header_record(b: &Batch) -> String {
    let mut r = Record::new('5');
    r.num(u64::from(b.service_class_code()), 3);
    r.alpha(&b.company_name, 16);
    r.alpha(&b.company_discretionary_data, 20);
    r.alpha(&b.company_id, 10);
    r.alpha(b.sec.as_str(), 3);
    r.alpha(&b.entry_description, 10);
    r.alpha(&b.descriptive_date, 6);
    r.digits(&yymmdd(b.effective_date));
    r.alpha("", 3); // settlement date: filled in by the ACH operator
    r.digits("1"); // originator status code: a depository financial institution
    r.digits(&b.odfi_id);
    r.num(u64::from(b.batch_number), 7);
    r.finish()
}

fn entry_record(e: &Entry) -> String {
    let mut r = Record::new('6');
    r.num(u64::from(e.transaction_code.code()), 2);
    r.digits(&e.rdfi_routing);
    r.alpha(&e.account_number, 17);
    r.num(u64::try_from(e.amount).unwrap_or(0), 10);
    r.alpha(&e.individual_id, 15);
    r.alpha(&e.individual_name, 22);
    r.alpha(&e.discretionary_data, 2);
    r.digits(if e.addenda.is_empty() { "0" } else { "1" });
    r.digits(&e.trace_number);
    r.finish()
}

fn addenda_record(a: &Addenda, entry_trace: &str) -> String {
    let mut r = Record::new('7');
    match a {
        Addenda::Payment05 { info } => {
            r.digits("05");
            r.alpha(info, 80);
            r.digits("0001"); // the only addenda of its entry
            r.digits(entry_trace.get(8..).unwrap_or("0000000"));
        }
        Addenda::Return99 {
            return_code,
            original_trace,
            date_of_death,
            original_rdfi,
            info,
            trace,
        } => {
            r.digits("99");
            r.alpha(return_code, 3);
            r.digits(original_trace);
            match date_of_death {
                Some(d) => r.digits(&yymmdd(*d)),
                None => r.alpha("", 6),
            }
            r.digits(original_rdfi);
            r.alpha(info, 44);
            r.digits(trace);
        }
        Addenda::Noc98 {
            change_code,
            original_trace,
            original_rdfi,
            corrected_data,
            trace,
        } => {
            r.digits("98");
            r.alpha(change_code, 3);
            r.digits(original_trace);
            r.alpha("", 6);
            r.digits(original_rdfi);
            r.alpha(corrected_data, 29);
            r.alpha("", 15);
            r.digits(trace);
        }
    }
    r.finish()
}

fn batch_control_record(b: &Batch, t: &BatchTotals) -> String {
    let mut r = Record::new('8');
    r.num(u64::from(b.service_class_code()), 3);
    r.num(t.entry_addenda_count, 6);
    r.num(t.entry_hash, 10);
    r.num(t.debit_cents, 12);
    r.num(t.credit_cents, 12);
    r.alpha(&b.company_id, 10);
    r.alpha("", 19); // message authentication code
    r.alpha("", 6); // reserved
    r.digits(&b.odfi_id);
    r.num(u64::from(b.batch_number), 7);
    r.finish()
}

// ---- validation ----------------------------------------------------------------------------

fn field_err(record: &str, field: &'static str, reason: impl Into<String>) -> AchError {
    AchError::Field {
        record: record.to_owned(),
        field,
        reason: reason.into(),
    }
}

/// Printable ASCII (space to tilde), `min..=max` characters. The value is never quoted: this is
/// also used for account numbers.
fn check_text(
    record: &str,
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), AchError> {
    if !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(field_err(
            record,
            field,
            "contains a character that is not printable ASCII",
        ));
    }
    if value.len() < min {
        return Err(field_err(
            record,
            field,
            if value.is_empty() {
                "is empty".to_owned()
            } else {
                format!("has {} characters; at least {min} needed", value.len())
            },
        ));
    }
    if value.len() > max {
        return Err(field_err(
            record,
            field,
            format!("has {} characters; at most {max} fit", value.len()),
        ));
    }
    Ok(())
}

/// Exactly `len` ASCII digits. Quotes the value (use only for non-secret fields).
fn check_digits(
    record: &str,
    field: &'static str,
    value: &str,
    len: usize,
) -> Result<(), AchError> {
    if value.len() != len || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(field_err(
            record,
            field,
            format!("{value:?} is not {len} digits"),
        ));
    }
    Ok(())
}

fn check_routing(record: &str, field: &'static str, value: &str) -> Result<(), AchError> {
    check_digits(record, field, value, 9)?;
    RoutingNumber::parse(value)
        .map_err(|e| field_err(record, field, format!("{value:?} is not valid: {e}")))?;
    Ok(())
}

fn check_date(record: &str, field: &'static str, d: Date) -> Result<(), AchError> {
    if !(2000..=2099).contains(&d.year()) {
        return Err(field_err(
            record,
            field,
            format!("{d} is outside 2000-2099 (the file carries two-digit years)"),
        ));
    }
    Ok(())
}

/// A code of one letter and two digits, e.g. "R01" or "C01".
fn check_code(record: &str, field: &'static str, value: &str, letter: u8) -> Result<(), AchError> {
    let b = value.as_bytes();
    let ok = b.len() == 3 && b.first() == Some(&letter) && b.iter().skip(1).all(u8::is_ascii_digit);
    if !ok {
        return Err(field_err(
            record,
            field,
            format!("{value:?} is not {}NN", char::from(letter)),
        ));
    }
    Ok(())
}

fn validate_file(file: &AchFile) -> Result<(), AchError> {
    let h = &file.header;
    let rec = "file header";
    check_routing(rec, "immediate_destination", &h.immediate_destination)?;
    let origin = &h.immediate_origin;
    let origin_ok = (origin.len() == 9 && origin.bytes().all(|b| b.is_ascii_digit()))
        || (origin.len() == 10 && origin.bytes().all(|b| b.is_ascii_alphanumeric()));
    if !origin_ok {
        return Err(field_err(
            rec,
            "immediate_origin",
            format!("{origin:?} is neither 9 digits nor 10 letters or digits"),
        ));
    }
    check_date(rec, "creation", h.creation.date())?;
    if !(h.file_id_modifier.is_ascii_uppercase() || h.file_id_modifier.is_ascii_digit()) {
        return Err(field_err(
            rec,
            "file_id_modifier",
            format!("{:?} is not A-Z or 0-9", h.file_id_modifier),
        ));
    }
    check_text(rec, "destination_name", &h.destination_name, 0, 23)?;
    check_text(rec, "origin_name", &h.origin_name, 0, 23)?;
    check_text(rec, "reference_code", &h.reference_code, 0, 8)?;
    if file.batches.is_empty() {
        return Err(field_err(rec, "batches", "is empty: a file needs a batch"));
    }
    if file.batches.len() as u64 > BATCH_COUNT_MAX {
        return Err(AchError::Overflow {
            what: "the file's batch count",
        });
    }
    let mut traces: HashSet<&str> = HashSet::new();
    for (i, batch) in file.batches.iter().enumerate() {
        validate_batch(i + 1, batch, &mut traces)?;
    }
    Ok(())
}

fn validate_batch<'a>(
    n: usize,
    b: &'a Batch,
    traces: &mut HashSet<&'a str>,
) -> Result<(), AchError> {
    let rec = format!("batch {n}");
    check_text(&rec, "company_name", &b.company_name, 1, 16)?;
    check_text(
        &rec,
        "company_discretionary_data",
        &b.company_discretionary_data,
        0,
        20,
    )?;
    check_text(&rec, "company_id", &b.company_id, 1, 10)?;
    check_text(&rec, "entry_description", &b.entry_description, 1, 10)?;
    check_text(&rec, "descriptive_date", &b.descriptive_date, 0, 6)?;
    check_date(&rec, "effective_date", b.effective_date)?;
    check_digits(&rec, "odfi_id", &b.odfi_id, 8)?;
    if b.batch_number == 0 || b.batch_number > BATCH_NUMBER_MAX {
        return Err(field_err(
            &rec,
            "batch_number",
            format!("{} is not 1 to {BATCH_NUMBER_MAX}", b.batch_number),
        ));
    }
    if b.entries.is_empty() {
        return Err(field_err(
            &rec,
            "entries",
            "is empty: a batch needs an entry",
        ));
    }
    for (j, e) in b.entries.iter().enumerate() {
        let rec = format!("batch {n} entry {}", j + 1);
        validate_entry(&rec, b, e)?;
        if !traces.insert(&e.trace_number) {
            return Err(AchError::DuplicateTrace {
                trace: e.trace_number.clone(),
            });
        }
    }
    Ok(())
}

fn validate_entry(rec: &str, b: &Batch, e: &Entry) -> Result<(), AchError> {
    let tc = e.transaction_code;
    check_routing(rec, "rdfi_routing", &e.rdfi_routing)?;
    check_text(rec, "account_number", &e.account_number, 1, 17)?;
    if !e.account_number.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(field_err(
            rec,
            "account_number",
            "may hold only letters and digits",
        ));
    }
    if !(0..=ENTRY_AMOUNT_CENTS_MAX).contains(&e.amount) {
        return Err(field_err(
            rec,
            "amount",
            format!("{} cents is not 0 to {ENTRY_AMOUNT_CENTS_MAX}", e.amount),
        ));
    }
    if (tc.is_prenote() || b.sec == SecCode::Cor) && e.amount != 0 {
        return Err(field_err(
            rec,
            "amount",
            format!("is {} cents; a prenote or NOC carries 0", e.amount),
        ));
    }
    check_text(rec, "individual_id", &e.individual_id, 0, 15)?;
    check_text(rec, "individual_name", &e.individual_name, 1, 22)?;
    check_text(rec, "discretionary_data", &e.discretionary_data, 0, 2)?;
    if matches!(b.sec, SecCode::Web | SecCode::Tel)
        && !matches!(e.discretionary_data.as_str(), "S" | "R" | "s" | "r")
    {
        return Err(field_err(
            rec,
            "discretionary_data",
            format!(
                "{:?} is not a {} payment type: \"S\" single or \"R\" recurring",
                e.discretionary_data, b.sec
            ),
        ));
    }
    check_digits(rec, "trace_number", &e.trace_number, 15)?;
    if !e.trace_number.starts_with(b.odfi_id.as_str()) {
        return Err(field_err(
            rec,
            "trace_number",
            format!(
                "{:?} does not start with the batch's ODFI id {:?}",
                e.trace_number, b.odfi_id
            ),
        ));
    }
    if e.addenda.len() > 1 {
        return Err(field_err(
            rec,
            "addenda",
            format!(
                "has {} records; billpay writes at most one",
                e.addenda.len()
            ),
        ));
    }
    let addenda = e.addenda.first();
    if tc.is_return_or_noc() != addenda.is_some_and(|a| !matches!(a, Addenda::Payment05 { .. })) {
        return Err(field_err(
            rec,
            "addenda",
            format!(
                "transaction code {} needs {} return (99) or NOC (98) addenda",
                tc.code(),
                if tc.is_return_or_noc() { "a" } else { "no" }
            ),
        ));
    }
    match addenda {
        None => {
            if b.sec == SecCode::Cor {
                return Err(field_err(
                    rec,
                    "addenda",
                    "is missing: a COR entry needs a 98",
                ));
            }
        }
        Some(Addenda::Payment05 { info }) => {
            if !matches!(b.sec, SecCode::Ppd | SecCode::Ccd | SecCode::Web) {
                return Err(field_err(
                    rec,
                    "addenda",
                    format!("{} batches carry no 05 addenda", b.sec),
                ));
            }
            check_text(rec, "addenda info", info, 0, 80)?;
        }
        Some(Addenda::Return99 {
            return_code,
            original_trace,
            date_of_death,
            original_rdfi,
            info,
            trace,
        }) => {
            if b.sec == SecCode::Cor {
                return Err(field_err(
                    rec,
                    "addenda",
                    "a COR batch carries NOCs (98), not returns",
                ));
            }
            check_code(rec, "return_code", return_code, b'R')?;
            check_digits(rec, "original_trace", original_trace, 15)?;
            if let Some(d) = date_of_death {
                check_date(rec, "date_of_death", *d)?;
            }
            check_digits(rec, "original_rdfi", original_rdfi, 8)?;
            check_text(rec, "return info", info, 0, 44)?;
            if trace != &e.trace_number {
                return Err(field_err(
                    rec,
                    "addenda trace",
                    "must equal the entry's trace number",
                ));
            }
        }
        Some(Addenda::Noc98 {
            change_code,
            original_trace,
            original_rdfi,
            corrected_data,
            trace,
        }) => {
            if b.sec != SecCode::Cor {
                return Err(field_err(rec, "addenda", "NOCs (98) belong in a COR batch"));
            }
            check_code(rec, "change_code", change_code, b'C')?;
            check_digits(rec, "original_trace", original_trace, 15)?;
            check_digits(rec, "original_rdfi", original_rdfi, 8)?;
            check_text(rec, "corrected_data", corrected_data, 1, 29)?;
            if trace != &e.trace_number {
                return Err(field_err(
                    rec,
                    "addenda trace",
                    "must equal the entry's trace number",
                ));
            }
        }
    }
    Ok(())
}
