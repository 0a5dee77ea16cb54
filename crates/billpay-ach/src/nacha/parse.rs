//! Reading a NACHA file: record by record, checking order, lengths, numeric fields and every
//! control record's counts, hash and totals.

use billpay_domain::RoutingNumber;
use jiff::civil::{Date, DateTime, Time};

use super::write::{ENTRY_HASH_MODULUS, routing_hash_part};
use super::{
    AchFile, Addenda, BLOCKING_FACTOR, Batch, Entry, FileHeader, RECORD_LEN, SecCode,
    TransactionCode,
};
use crate::ParseError;

/// The most lines a file may have (about 95 MB of records): a limit, not a format rule.
pub const FILE_LINES_MAX: usize = 1_000_000;

/// Reads a NACHA file: an origination file, or a returns/NOC file from a bank (entries with
/// addenda 99 or 98).
///
/// Accepts `"\n"` or `"\r\n"` line endings and ignores the all-`9` filler records after the file
/// control. Every record must be exactly 94 ASCII characters and come in order
/// (1, then 5 / 6 [7] … / 8 batches, then 9). Each batch control's and the file control's
/// counts, entry hash and debit/credit totals are recomputed and must match. The first problem
/// is returned with its 1-based line number; account numbers never appear in a message.
pub fn parse_file(text: &str) -> Result<AchFile, ParseError> {
    let lines = split_lines(text)?;
    let mut cursor = Cursor {
        lines: &lines,
        i: 0,
    };
    let Some((n, line)) = cursor.next() else {
        return Err(ParseError::new(0, "the file is empty"));
    };
    if record_type(line) != '1' {
        return Err(ParseError::new(
            n,
            format!(
                "the first record must be a file header (type 1), found type {:?}",
                record_type(line)
            ),
        ));
    }
    let header = parse_file_header(n, line)?;
    let mut batches = Vec::new();
    let mut file_hash = 0u64;
    let mut file_debit = 0u64;
    let mut file_credit = 0u64;
    let mut file_count = 0u64;
    loop {
        let Some((n, line)) = cursor.next() else {
            return Err(ParseError::new(
                lines.last().map_or(0, |l| l.0),
                "the file ends without a file control record (type 9)",
            ));
        };
        match record_type(line) {
            '5' => {
                let (batch, totals) = parse_batch(n, line, &mut cursor)?;
                file_hash = (file_hash + totals.hash) % ENTRY_HASH_MODULUS;
                file_debit = file_debit.saturating_add(totals.debit);
                file_credit = file_credit.saturating_add(totals.credit);
                file_count = file_count.saturating_add(totals.count);
                batches.push(batch);
            }
            '9' => {
                let records = n; // header through file control, padding not counted
                let expect = [
                    ("batch count", 2, 7, batches.len() as u64),
                    (
                        "block count",
                        8,
                        13,
                        (records as u64).div_ceil(BLOCKING_FACTOR as u64),
                    ),
                    ("entry/addenda count", 14, 21, file_count),
                    ("entry hash", 22, 31, file_hash),
                    ("total debit amount", 32, 43, file_debit),
                    ("total credit amount", 44, 55, file_credit),
                ];
                for (what, start, end, computed) in expect {
                    let got = number(n, line, start, end, &format!("file control {what}"))?;
                    if got != computed {
                        return Err(ParseError::new(
                            n,
                            format!(
                                "file control {what} is {got} but the file adds up to {computed}"
                            ),
                        ));
                    }
                }
                break;
            }
            other => {
                return Err(ParseError::new(
                    n,
                    format!(
                        "expected a batch header (type 5) or the file control (type 9), found type {other:?}"
                    ),
                ));
            }
        }
    }
    for (n, line) in cursor.rest() {
        if !line.bytes().all(|b| b == b'9') {
            return Err(ParseError::new(
                *n,
                "only all-9 filler records may follow the file control record",
            ));
        }
    }
    Ok(AchFile { header, batches })
}

struct Cursor<'a> {
    lines: &'a [(usize, &'a str)],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Option<(usize, &'a str)> {
        let l = self.lines.get(self.i).copied();
        self.i += 1;
        l
    }
    fn peek_type(&self) -> Option<char> {
        self.lines.get(self.i).map(|l| record_type(l.1))
    }
    fn rest(&self) -> &'a [(usize, &'a str)] {
        self.lines.get(self.i..).unwrap_or(&[])
    }
}

/// Splits into numbered lines, checking each is ASCII and 94 characters long.
fn split_lines(text: &str) -> Result<Vec<(usize, &str)>, ParseError> {
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Err(ParseError::new(0, "the file is empty"));
    }
    let mut out = Vec::new();
    for (i, raw) in body.split('\n').enumerate() {
        let n = i + 1;
        if n > FILE_LINES_MAX {
            return Err(ParseError::new(
                n,
                format!("the file has more than {FILE_LINES_MAX} lines"),
            ));
        }
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if !line.is_ascii() {
            return Err(ParseError::new(
                n,
                "contains a non-ASCII character; NACHA records are ASCII",
            ));
        }
        if line.len() != RECORD_LEN {
            return Err(ParseError::new(
                n,
                format!(
                    "record is {} characters long; NACHA records are {RECORD_LEN}",
                    line.len()
                ),
            ));
        }
        out.push((n, line));
    }
    Ok(out)
}

fn record_type(line: &str) -> char {
    line.chars().next().unwrap_or(' ')
}

/// Columns `start..=end` (1-based, inclusive). Lines are checked ASCII and 94 long first.
fn col(line: &str, start: usize, end: usize) -> &str {
    line.get(start - 1..end).unwrap_or("")
}

/// A right-justified numeric field. The field is quoted in the error: never use on accounts.
fn number(n: usize, line: &str, start: usize, end: usize, what: &str) -> Result<u64, ParseError> {
    let f = col(line, start, end);
    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(n, format!("{what} {f:?} is not numeric")));
    }
    f.parse::<u64>()
        .map_err(|_| ParseError::new(n, format!("{what} {f:?} is not numeric")))
}

fn digits(
    n: usize,
    line: &str,
    start: usize,
    end: usize,
    what: &str,
) -> Result<String, ParseError> {
    let f = col(line, start, end);
    if !f.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(n, format!("{what} {f:?} is not numeric")));
    }
    Ok(f.to_owned())
}

fn text(line: &str, start: usize, end: usize) -> String {
    col(line, start, end).trim_end().to_owned()
}

fn yymmdd(s: &str) -> Option<Date> {
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let yy: i16 = s.get(0..2)?.parse().ok()?;
    let mm: i8 = s.get(2..4)?.parse().ok()?;
    let dd: i8 = s.get(4..6)?.parse().ok()?;
    Date::new(2000 + yy, mm, dd).ok()
}

fn date(n: usize, line: &str, start: usize, end: usize, what: &str) -> Result<Date, ParseError> {
    let f = col(line, start, end);
    yymmdd(f).ok_or_else(|| ParseError::new(n, format!("{what} {f:?} is not a YYMMDD date")))
}

fn parse_file_header(n: usize, line: &str) -> Result<FileHeader, ParseError> {
    number(n, line, 2, 3, "file header priority code")?;
    let dest = col(line, 4, 13).trim_start();
    if dest.len() != 9
        || !dest.bytes().all(|b| b.is_ascii_digit())
        || RoutingNumber::parse(dest).is_err()
    {
        return Err(ParseError::new(
            n,
            format!("file header immediate destination {dest:?} is not a valid routing number"),
        ));
    }
    let origin = col(line, 14, 23).trim();
    if origin.is_empty() {
        return Err(ParseError::new(n, "file header immediate origin is blank"));
    }
    let day = date(n, line, 24, 29, "file header creation date")?;
    let hhmm = col(line, 30, 33);
    let time = if hhmm.trim().is_empty() {
        Time::midnight()
    } else {
        let hh = number(n, line, 30, 31, "file header creation time")?;
        let mm = number(n, line, 32, 33, "file header creation time")?;
        i8::try_from(hh)
            .ok()
            .zip(i8::try_from(mm).ok())
            .and_then(|(h, m)| Time::new(h, m, 0, 0).ok())
            .ok_or_else(|| {
                ParseError::new(n, format!("file header creation time {hhmm:?} is not HHMM"))
            })?
    };
    let modifier = record_type(col(line, 34, 34));
    if !(modifier.is_ascii_uppercase() || modifier.is_ascii_digit()) {
        return Err(ParseError::new(
            n,
            format!("file header file ID modifier {modifier:?} is not A-Z or 0-9"),
        ));
    }
    for (what, start, end, want) in [
        ("record size", 35, 37, "094"),
        ("blocking factor", 38, 39, "10"),
        ("format code", 40, 40, "1"),
    ] {
        let got = col(line, start, end);
        if got != want {
            return Err(ParseError::new(
                n,
                format!("file header {what} is {got:?}, expected {want:?}"),
            ));
        }
    }
    Ok(FileHeader {
        immediate_destination: dest.to_owned(),
        immediate_origin: origin.to_owned(),
        creation: DateTime::from_parts(day, time),
        file_id_modifier: modifier,
        destination_name: text(line, 41, 63),
        origin_name: text(line, 64, 86),
        reference_code: text(line, 87, 94),
    })
}

/// What the records of a batch add up to.
struct Totals {
    count: u64,
    hash: u64,
    debit: u64,
    credit: u64,
}

fn parse_batch(
    header_line: usize,
    line: &str,
    cursor: &mut Cursor<'_>,
) -> Result<(Batch, Totals), ParseError> {
    let n = header_line;
    let service_class = number(n, line, 2, 4, "batch header service class code")?;
    if !matches!(service_class, 200 | 220 | 225) {
        return Err(ParseError::new(
            n,
            format!("batch header service class code {service_class} is not 200, 220 or 225"),
        ));
    }
    let sec_text = col(line, 51, 53);
    let sec = SecCode::parse(sec_text).ok_or_else(|| {
        ParseError::new(
            n,
            format!("batch header SEC code {sec_text:?} is not supported"),
        )
    })?;
    let company_id = text(line, 41, 50);
    let odfi_id = digits(n, line, 80, 87, "batch header originating DFI id")?;
    let batch_number = number(n, line, 88, 94, "batch header batch number")?;
    let mut batch = Batch {
        company_name: text(line, 5, 20),
        company_discretionary_data: text(line, 21, 40),
        company_id,
        sec,
        entry_description: text(line, 54, 63),
        descriptive_date: text(line, 64, 69),
        effective_date: date(n, line, 70, 75, "batch header effective entry date")?,
        odfi_id,
        batch_number: u32::try_from(batch_number).unwrap_or(u32::MAX),
        entries: Vec::new(),
    };
    let mut t = Totals {
        count: 0,
        hash: 0,
        debit: 0,
        credit: 0,
    };
    loop {
        let Some((n, line)) = cursor.next() else {
            return Err(ParseError::new(
                cursor.lines.last().map_or(0, |l| l.0),
                format!(
                    "the batch that starts on line {header_line} has no batch control record (type 8)"
                ),
            ));
        };
        match record_type(line) {
            '6' => {
                let (mut entry, indicator) = parse_entry(n, line)?;
                let mut sequence = 0u64;
                while cursor.peek_type() == Some('7') {
                    let Some((an, aline)) = cursor.next() else {
                        break;
                    };
                    if !indicator {
                        return Err(ParseError::new(
                            an,
                            "addenda record follows an entry detail whose addenda indicator is 0",
                        ));
                    }
                    sequence += 1;
                    entry
                        .addenda
                        .push(parse_addenda(an, aline, &entry.trace_number, sequence)?);
                }
                if indicator && entry.addenda.is_empty() {
                    return Err(ParseError::new(
                        n,
                        "entry detail's addenda indicator is 1 but no addenda record follows",
                    ));
                }
                t.count += 1 + entry.addenda.len() as u64;
                t.hash = (t.hash + routing_hash_part(&entry.rdfi_routing)) % ENTRY_HASH_MODULUS;
                let amount = u64::try_from(entry.amount).unwrap_or(0);
                if entry.transaction_code.is_debit() {
                    t.debit = t.debit.saturating_add(amount);
                } else {
                    t.credit = t.credit.saturating_add(amount);
                }
                batch.entries.push(entry);
            }
            '8' => {
                check_batch_control(n, line, header_line, service_class, &batch, &t)?;
                return Ok((batch, t));
            }
            '7' => {
                return Err(ParseError::new(
                    n,
                    "addenda record (type 7) without an entry detail before it",
                ));
            }
            other => {
                return Err(ParseError::new(
                    n,
                    format!(
                        "expected an entry detail (type 6) or batch control (type 8), found type {other:?}"
                    ),
                ));
            }
        }
    }
}

fn check_batch_control(
    n: usize,
    line: &str,
    header_line: usize,
    service_class: u64,
    batch: &Batch,
    t: &Totals,
) -> Result<(), ParseError> {
    if batch.entries.is_empty() {
        return Err(ParseError::new(
            n,
            format!("the batch that starts on line {header_line} has no entries"),
        ));
    }
    let has_debits = batch.entries.iter().any(|e| e.transaction_code.is_debit());
    let has_credits = batch.entries.iter().any(|e| !e.transaction_code.is_debit());
    if (service_class == 225 && has_credits) || (service_class == 220 && has_debits) {
        return Err(ParseError::new(
            header_line,
            format!(
                "batch header service class code {service_class} does not allow the batch's {}",
                if service_class == 225 {
                    "credits"
                } else {
                    "debits"
                }
            ),
        ));
    }
    let control_class = number(n, line, 2, 4, "batch control service class code")?;
    if control_class != service_class {
        return Err(ParseError::new(
            n,
            format!(
                "batch control service class code {control_class} differs from the header's {service_class}"
            ),
        ));
    }
    for (what, start, end, computed) in [
        ("entry/addenda count", 5, 10, t.count),
        ("entry hash", 11, 20, t.hash),
        ("total debit amount", 21, 32, t.debit),
        ("total credit amount", 33, 44, t.credit),
    ] {
        let got = number(n, line, start, end, &format!("batch control {what}"))?;
        if got != computed {
            return Err(ParseError::new(
                n,
                format!("batch control {what} is {got} but the batch adds up to {computed}"),
            ));
        }
    }
    let company_id = text(line, 45, 54);
    if company_id != batch.company_id {
        return Err(ParseError::new(
            n,
            format!(
                "batch control company id {company_id:?} differs from the header's {:?}",
                batch.company_id
            ),
        ));
    }
    let odfi = col(line, 80, 87);
    if odfi != batch.odfi_id {
        return Err(ParseError::new(
            n,
            format!(
                "batch control originating DFI id {odfi:?} differs from the header's {:?}",
                batch.odfi_id
            ),
        ));
    }
    let number_ = number(n, line, 88, 94, "batch control batch number")?;
    if number_ != u64::from(batch.batch_number) {
        return Err(ParseError::new(
            n,
            format!(
                "batch control batch number {number_} differs from the header's {}",
                batch.batch_number
            ),
        ));
    }
    Ok(())
}

/// An entry detail record and whether its addenda indicator is set.
fn parse_entry(n: usize, line: &str) -> Result<(Entry, bool), ParseError> {
    let code = number(n, line, 2, 3, "entry detail transaction code")?;
    let transaction_code = u8::try_from(code)
        .ok()
        .and_then(TransactionCode::from_code)
        .ok_or_else(|| {
            ParseError::new(
                n,
                format!("entry detail transaction code {code:02} is not supported"),
            )
        })?;
    let routing = col(line, 4, 12);
    if !routing.bytes().all(|b| b.is_ascii_digit()) || RoutingNumber::parse(routing).is_err() {
        return Err(ParseError::new(
            n,
            format!("entry detail RDFI routing number {routing:?} is not valid (check digit)"),
        ));
    }
    let account = text(line, 13, 29);
    if account.is_empty() {
        return Err(ParseError::new(n, "entry detail account number is blank"));
    }
    if !account.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ParseError::new(
            n,
            "entry detail account number holds characters other than letters and digits",
        ));
    }
    let amount = number(n, line, 30, 39, "entry detail amount")?;
    let indicator = match col(line, 79, 79) {
        "0" => false,
        "1" => true,
        other => {
            return Err(ParseError::new(
                n,
                format!("entry detail addenda indicator {other:?} is not 0 or 1"),
            ));
        }
    };
    let trace_number = digits(n, line, 80, 94, "entry detail trace number")?;
    Ok((
        Entry {
            transaction_code,
            rdfi_routing: routing.to_owned(),
            account_number: account,
            amount: i64::try_from(amount).unwrap_or(i64::MAX),
            individual_id: text(line, 40, 54),
            individual_name: text(line, 55, 76),
            discretionary_data: text(line, 77, 78),
            trace_number,
            addenda: Vec::new(),
        },
        indicator,
    ))
}

fn code(n: usize, line: &str, letter: char, what: &str) -> Result<String, ParseError> {
    let f = col(line, 4, 6);
    let mut chars = f.chars();
    let ok = chars.next() == Some(letter) && chars.all(|c| c.is_ascii_digit()) && f.len() == 3;
    if !ok {
        return Err(ParseError::new(
            n,
            format!("{what} {f:?} is not {letter}NN"),
        ));
    }
    Ok(f.to_owned())
}

fn parse_addenda(
    n: usize,
    line: &str,
    entry_trace: &str,
    sequence: u64,
) -> Result<Addenda, ParseError> {
    match col(line, 2, 3) {
        "05" => {
            let seq = number(n, line, 84, 87, "addenda sequence number")?;
            if seq != sequence {
                return Err(ParseError::new(
                    n,
                    format!("addenda sequence number is {seq}, expected {sequence}"),
                ));
            }
            let entry_seq = col(line, 88, 94);
            if Some(entry_seq) != entry_trace.get(8..) {
                return Err(ParseError::new(
                    n,
                    format!(
                        "addenda entry detail sequence number {entry_seq:?} does not match its entry's trace number"
                    ),
                ));
            }
            Ok(Addenda::Payment05 {
                info: text(line, 4, 83),
            })
        }
        "99" => {
            let dod = col(line, 22, 27);
            let date_of_death = if dod.trim().is_empty() {
                None
            } else {
                Some(date(n, line, 22, 27, "return addenda date of death")?)
            };
            Ok(Addenda::Return99 {
                return_code: code(n, line, 'R', "return addenda return reason code")?,
                original_trace: digits(
                    n,
                    line,
                    7,
                    21,
                    "return addenda original entry trace number",
                )?,
                date_of_death,
                original_rdfi: digits(n, line, 28, 35, "return addenda original receiving DFI id")?,
                info: text(line, 36, 79),
                trace: digits(n, line, 80, 94, "return addenda trace number")?,
            })
        }
        "98" => {
            let corrected_data = text(line, 36, 64);
            if corrected_data.is_empty() {
                return Err(ParseError::new(n, "NOC addenda corrected data is blank"));
            }
            Ok(Addenda::Noc98 {
                change_code: code(n, line, 'C', "NOC addenda change code")?,
                original_trace: digits(n, line, 7, 21, "NOC addenda original entry trace number")?,
                original_rdfi: digits(n, line, 28, 35, "NOC addenda original receiving DFI id")?,
                corrected_data,
                trace: digits(n, line, 80, 94, "NOC addenda trace number")?,
            })
        }
        other => Err(ParseError::new(
            n,
            format!("addenda type code {other:?} is not supported (05, 98 or 99)"),
        )),
    }
}
