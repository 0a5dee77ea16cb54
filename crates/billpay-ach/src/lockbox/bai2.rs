//! The BAI2 subset banks use to report lockbox deposits.

use jiff::civil::Date;

use super::{FIELD_CHARS_MAX, ITEMS_MAX, LockboxItem, check_unique};
use crate::ParseError;

/// BAI2 detail type code 115, "Lockbox Deposit": one deposit of a lockbox batch.
pub const BAI2_LOCKBOX_DEPOSIT: &str = "115";
/// BAI2 detail type code 116, "Item in Lockbox Deposit": one check.
pub const BAI2_LOCKBOX_ITEM: &str = "116";

/// The most physical lines a file may have: a limit, not a format rule.
const LINES_MAX: usize = 1_000_000;
/// The most digits an amount may have.
const AMOUNT_DIGITS_MAX: usize = 15;

/// Reads the lockbox checks from a BAI2 file.
///
/// Records (one per line, fields separated by commas, ending with `/`): 01 file header,
/// 02 group header (its as-of date is the deposit date), 03 account identifier (its account
/// number is the lockbox), 16 transaction detail, 88 continuation, 49 account trailer, 98 group
/// trailer, 99 file trailer. Amounts are whole cents with no decimal point. Every trailer is
/// checked: 49's control total (the sum of the account's 03 and 16 amounts) and record count
/// (03 through 49, 88s included), 98's control total (the sum of its accounts' 49 totals),
/// account count and record count (02 through 98), and 99's control total, group count and
/// record count (01 through 99). A missing trailer or a mismatch fails with the line number.
///
/// Lockbox items are 16 records of type 116 "Item in Lockbox Deposit" (one per check). An
/// account that reports no 116 items but 115 "Lockbox Deposit" records is taken to report one
/// check per 115 record. Other 16 records (e.g. 118 "Lockbox Adjustment Credit", ACH and wire
/// credits) count toward the control totals but are not items. In a 16 record:
///
/// - the *bank reference* field is the check number;
/// - the *customer reference* field is the coupon's customer account number;
/// - the *text* field (with any 88 continuations, joined by a space) is the remitter.
///
/// `batch` is the number of the 115 deposit the item follows within its account (1 when none
/// precedes it), `sequence` the item's place within that batch, both counted from 1. Deposits
/// reported as 115 records alone are batch 1, sequenced in file order.
pub fn parse_bai2(text: &str) -> Result<Vec<LockboxItem>, ParseError> {
    let records = logical_records(text)?;
    let mut p = Parser {
        records: &records,
        i: 0,
        items: Vec::new(),
    };
    p.file()?;
    check_unique(&p.items)?;
    Ok(p.items)
}

/// A record with its continuations folded in.
struct Record {
    line: usize,
    code: String,
    fields: Vec<String>,
    /// Physical lines: 1 plus its 88 continuations.
    physical: u64,
    /// Whether the record ended with `/`.
    terminated: bool,
}

fn logical_records(text: &str) -> Result<Vec<Record>, ParseError> {
    let lines: Vec<&str> = text.split('\n').collect();
    let last_nonblank = lines
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .ok_or_else(|| ParseError::new(0, "the file is empty"))?;
    let mut out: Vec<Record> = Vec::new();
    for (i, raw) in lines.iter().enumerate().take(last_nonblank + 1) {
        let n = i + 1;
        if n > LINES_MAX {
            return Err(ParseError::new(
                n,
                format!("the file has more than {LINES_MAX} lines"),
            ));
        }
        if !raw.is_ascii() {
            return Err(ParseError::new(
                n,
                "contains a non-ASCII character; BAI2 files are ASCII",
            ));
        }
        let line = raw.trim_end();
        if line.is_empty() {
            return Err(ParseError::new(n, "blank line inside the file"));
        }
        let (body, terminated) = match line.strip_suffix('/') {
            Some(b) => (b, true),
            None => (line, false),
        };
        let mut parts = body.split(',');
        let code = parts.next().unwrap_or("").trim().to_owned();
        let fields: Vec<String> = parts.map(str::to_owned).collect();
        if code == "88" {
            let Some(prev) = out.last_mut() else {
                return Err(ParseError::new(
                    n,
                    "continuation record (88) with no record before it",
                ));
            };
            match prev.code.as_str() {
                "16" => {
                    let text_at = detail_text_index(&prev.fields);
                    match text_at {
                        Some(t) if prev.fields.len() > t => {
                            // The 16 already reached its text: the 88 continues the text.
                            let more = fields.join(",");
                            if let Some(last) = prev.fields.last_mut() {
                                let more = more.trim();
                                if !more.is_empty() {
                                    if !last.trim().is_empty() {
                                        last.push(' ');
                                    }
                                    last.push_str(more);
                                }
                            }
                        }
                        _ => prev.fields.extend(fields),
                    }
                }
                "03" => prev.fields.extend(fields),
                other => {
                    return Err(ParseError::new(
                        n,
                        format!("continuation record (88) cannot follow a {other} record"),
                    ));
                }
            }
            prev.physical += 1;
            prev.terminated = terminated;
            continue;
        }
        out.push(Record {
            line: n,
            code,
            fields,
            physical: 1,
            terminated,
        });
    }
    Ok(out)
}

/// Where the text field of a 16 record's fields (type code first) starts, once the funds type
/// is known.
fn detail_text_index(fields: &[String]) -> Option<usize> {
    let funds = fields.get(2)?.trim();
    let extra = match funds {
        "S" => 3,
        "V" => 2,
        "D" => {
            let count: usize = fields.get(3)?.trim().parse().ok()?;
            1 + 2 * count.min(1000)
        }
        _ => 0,
    };
    Some(3 + extra + 2)
}

struct Parser<'a> {
    records: &'a [Record],
    i: usize,
    items: Vec<LockboxItem>,
}

/// A lockbox item waiting for its account's 49 to decide which type code counts.
struct Candidate {
    line: usize,
    type_code: String,
    batch: u64,
    sequence: u64,
    amount: i64,
    check_number: String,
    account_reference: String,
    remitter: String,
}

impl<'a> Parser<'a> {
    fn next(&mut self) -> Option<&'a Record> {
        let r = self.records.get(self.i);
        self.i += 1;
        r
    }

    fn last_line(&self) -> usize {
        self.records.last().map_or(0, |r| r.line)
    }

    fn expect(&mut self, codes: &[&str], context: &str) -> Result<&'a Record, ParseError> {
        let last = self.last_line();
        let r = self.next().ok_or_else(|| {
            ParseError::new(
                last,
                format!(
                    "the file ends without {context} (record {})",
                    codes.join(" or ")
                ),
            )
        })?;
        if !codes.contains(&r.code.as_str()) {
            return Err(ParseError::new(
                r.line,
                format!(
                    "expected {context} (record {}), found record {:?}",
                    codes.join(" or "),
                    r.code
                ),
            ));
        }
        if !r.terminated && r.code != "16" {
            return Err(ParseError::new(r.line, "record does not end with '/'"));
        }
        Ok(r)
    }

    fn file(&mut self) -> Result<(), ParseError> {
        let header = self.expect(&["01"], "a file header")?;
        yymmdd(header.line, field(header, 2), "file creation date")?;
        let version = field(header, 7).trim();
        if version != "2" {
            return Err(ParseError::new(
                header.line,
                format!("version number {version:?} is not 2 (BAI2)"),
            ));
        }
        let mut records = header.physical;
        let mut total = 0i64;
        let mut groups = 0u64;
        loop {
            let r = self.expect(&["02", "99"], "a group header or the file trailer")?;
            if r.code == "99" {
                records += r.physical;
                check_total(r, 0, total, "file control total")?;
                check_count(r, 1, groups, "number of groups")?;
                check_count(r, 2, records, "number of records")?;
                break;
            }
            let (group_total, group_records) = self.group(r)?;
            groups += 1;
            records += group_records;
            total = add(r.line, total, group_total)?;
        }
        if let Some(extra) = self.next() {
            return Err(ParseError::new(
                extra.line,
                "records after the file trailer (99)",
            ));
        }
        Ok(())
    }

    /// A group from its 02; returns its control total and physical record count.
    fn group(&mut self, header: &'a Record) -> Result<(i64, u64), ParseError> {
        let deposit_date = yymmdd(header.line, field(header, 3), "group as-of date")?;
        let currency = field(header, 5).trim();
        if !(currency.is_empty() || currency == "USD") {
            return Err(ParseError::new(
                header.line,
                format!("currency {currency:?} is not USD"),
            ));
        }
        let mut records = header.physical;
        let mut total = 0i64;
        let mut accounts = 0u64;
        loop {
            let r = self.expect(&["03", "98"], "an account identifier or the group trailer")?;
            if r.code == "98" {
                records += r.physical;
                check_total(r, 0, total, "group control total")?;
                check_count(r, 1, accounts, "number of accounts")?;
                check_count(r, 2, records, "number of records")?;
                return Ok((total, records));
            }
            let (account_total, account_records) = self.account(r, deposit_date)?;
            accounts += 1;
            records += account_records;
            total = add(r.line, total, account_total)?;
        }
    }

    /// An account from its 03; returns its control total and physical record count.
    fn account(
        &mut self,
        header: &'a Record,
        deposit_date: Date,
    ) -> Result<(i64, u64), ParseError> {
        let lockbox = field(header, 0).trim().to_owned();
        if lockbox.is_empty()
            || lockbox.len() > FIELD_CHARS_MAX
            || !lockbox
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(ParseError::new(
                header.line,
                "account identifier's account number is empty or not letters and digits",
            ));
        }
        let mut total = summary_amounts(header)?;
        let mut records = header.physical;
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut batch = 0u64;
        let mut sequence = 0u64;
        let mut deposits = 0u64;
        loop {
            let r = self.expect(&["16", "49"], "a transaction detail or the account trailer")?;
            records += r.physical;
            if r.code == "49" {
                check_total(r, 0, total, "account control total")?;
                check_count(r, 1, records, "number of records")?;
                break;
            }
            let d = detail(r)?;
            total = add(r.line, total, d.amount)?;
            let (b, s) = match d.type_code.as_str() {
                BAI2_LOCKBOX_DEPOSIT => {
                    batch += 1;
                    sequence = 0;
                    deposits += 1;
                    (1, deposits)
                }
                BAI2_LOCKBOX_ITEM => {
                    batch = batch.max(1);
                    sequence += 1;
                    (batch, sequence)
                }
                _ => continue,
            };
            candidates.push(Candidate {
                line: r.line,
                type_code: d.type_code,
                batch: b,
                sequence: s,
                amount: d.amount,
                check_number: d.bank_reference,
                account_reference: d.customer_reference,
                remitter: d.text,
            });
        }
        let item_code = if candidates.iter().any(|c| c.type_code == BAI2_LOCKBOX_ITEM) {
            BAI2_LOCKBOX_ITEM
        } else {
            BAI2_LOCKBOX_DEPOSIT
        };
        for c in candidates.into_iter().filter(|c| c.type_code == item_code) {
            if self.items.len() >= ITEMS_MAX {
                return Err(ParseError::new(
                    c.line,
                    format!("the file has more than {ITEMS_MAX} items"),
                ));
            }
            if c.amount <= 0 {
                return Err(ParseError::new(c.line, "lockbox item amount is zero"));
            }
            let (batch, sequence) = (c.batch.to_string(), c.sequence.to_string());
            self.items.push(LockboxItem {
                line: c.line,
                deposit_date,
                item_key: LockboxItem::key(&lockbox, deposit_date, &batch, &sequence),
                lockbox: lockbox.clone(),
                batch,
                sequence,
                check_number: c.check_number,
                amount: c.amount,
                account_reference: c.account_reference,
                remitter: c.remitter,
            });
        }
        Ok((total, records))
    }
}

fn field(r: &Record, i: usize) -> &str {
    r.fields.get(i).map_or("", String::as_str)
}

fn add(line: usize, a: i64, b: i64) -> Result<i64, ParseError> {
    a.checked_add(b)
        .ok_or_else(|| ParseError::new(line, "amounts add up to more than billpay can count"))
}

fn yymmdd(line: usize, s: &str, what: &str) -> Result<Date, ParseError> {
    let s = s.trim();
    let bad = || ParseError::new(line, format!("{what} {s:?} is not a YYMMDD date"));
    if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let yy: i16 = s.get(0..2).and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let mm: i8 = s.get(2..4).and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let dd: i8 = s.get(4..6).and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    Date::new(2000 + yy, mm, dd).map_err(|_| bad())
}

/// A signed amount in cents; empty is `None`.
fn amount(line: usize, s: &str, what: &str, signed: bool) -> Result<Option<i64>, ParseError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    let (negative, digits) = match s.as_bytes().first() {
        Some(b'-') if signed => (true, s.get(1..).unwrap_or("")),
        Some(b'+') if signed => (false, s.get(1..).unwrap_or("")),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.len() > AMOUNT_DIGITS_MAX
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ParseError::new(
            line,
            format!("{what} {s:?} is not an amount in cents"),
        ));
    }
    let v: i64 = digits
        .parse()
        .map_err(|_| ParseError::new(line, format!("{what} {s:?} is not an amount in cents")))?;
    Ok(Some(if negative { -v } else { v }))
}

fn check_total(r: &Record, i: usize, computed: i64, what: &str) -> Result<(), ParseError> {
    let got = amount(r.line, field(r, i), what, true)?
        .ok_or_else(|| ParseError::new(r.line, format!("{what} is missing")))?;
    if got != computed {
        return Err(ParseError::new(
            r.line,
            format!("{what} is {got} but the records add up to {computed}"),
        ));
    }
    Ok(())
}

fn check_count(r: &Record, i: usize, computed: u64, what: &str) -> Result<(), ParseError> {
    let s = field(r, i).trim();
    let got: u64 = s
        .parse()
        .map_err(|_| ParseError::new(r.line, format!("{what} {s:?} is not a number")))?;
    if got != computed {
        return Err(ParseError::new(
            r.line,
            format!("{what} is {got} but there are {computed}"),
        ));
    }
    Ok(())
}

/// How many fields follow a funds type, and checks them.
fn funds_extra(line: usize, fields: &[String], at: usize) -> Result<usize, ParseError> {
    let funds = fields.get(at).map_or("", |f| f.trim());
    match funds {
        "" | "0" | "1" | "2" | "Z" => Ok(0),
        "S" => Ok(3),
        "V" => Ok(2),
        "D" => {
            let n = fields.get(at + 1).map_or("", |f| f.trim());
            let count: usize = n.parse().map_err(|_| {
                ParseError::new(line, format!("distribution count {n:?} is not a number"))
            })?;
            if count > 1000 {
                return Err(ParseError::new(line, "too many availability distributions"));
            }
            Ok(1 + 2 * count)
        }
        other => Err(ParseError::new(
            line,
            format!("funds type {other:?} is not 0, 1, 2, S, V, D or Z"),
        )),
    }
}

/// The sum of an 03 record's summary amounts (type code, amount, item count, funds type…).
fn summary_amounts(r: &Record) -> Result<i64, ParseError> {
    let mut total = 0i64;
    let mut at = 2; // after account number and currency
    let mut groups = 0;
    while at < r.fields.len() {
        groups += 1;
        if groups > 1000 {
            return Err(ParseError::new(r.line, "too many summary amounts"));
        }
        let type_code = field(r, at).trim();
        if type_code.is_empty() && r.fields.len() <= at + 1 {
            break;
        }
        if !type_code.is_empty() && !type_code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::new(
                r.line,
                format!("summary type code {type_code:?} is not a number"),
            ));
        }
        let a = amount(r.line, field(r, at + 1), "summary amount", true)?.unwrap_or(0);
        total = add(r.line, total, a)?;
        let extra = funds_extra(r.line, &r.fields, at + 3)?;
        at += 4 + extra;
    }
    Ok(total)
}

struct Detail {
    type_code: String,
    amount: i64,
    bank_reference: String,
    customer_reference: String,
    text: String,
}

fn detail(r: &Record) -> Result<Detail, ParseError> {
    let type_code = field(r, 0).trim().to_owned();
    if type_code.len() != 3 || !type_code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::new(
            r.line,
            format!("transaction detail type code {type_code:?} is not three digits"),
        ));
    }
    let amount = amount(r.line, field(r, 1), "transaction detail amount", false)?
        .ok_or_else(|| ParseError::new(r.line, "transaction detail amount is missing"))?;
    let extra = funds_extra(r.line, &r.fields, 2)?;
    let refs = 3 + extra;
    let text = r
        .fields
        .get(refs + 2..)
        .map(|t| t.join(","))
        .unwrap_or_default();
    let short = |s: &str, what: &str| -> Result<String, ParseError> {
        let s = s.trim();
        if s.len() > FIELD_CHARS_MAX {
            return Err(ParseError::new(
                r.line,
                format!("{what} is longer than {FIELD_CHARS_MAX} characters"),
            ));
        }
        Ok(s.to_owned())
    };
    Ok(Detail {
        type_code,
        amount,
        bank_reference: short(field(r, refs), "bank reference")?,
        customer_reference: short(field(r, refs + 1), "customer reference")?,
        text: short(&text, "text")?,
    })
}
