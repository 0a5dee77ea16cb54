//! The lockbox CSV layout.

use jiff::civil::Date;

use super::{FIELD_CHARS_MAX, ITEMS_MAX, LockboxItem, check_unique};
use crate::ParseError;

/// The required first line of a lockbox CSV file.
pub const CSV_HEADER: &str =
    "deposit_date,lockbox,batch,sequence,check_number,amount,account_number,remitter";

const COLUMNS: usize = 8;

/// Reads a lockbox CSV file (RFC 4180 quoting; `"\n"` or `"\r\n"`):
///
/// ```text
/// deposit_date,lockbox,batch,sequence,check_number,amount,account_number,remitter
/// 2026-12-01,4417,001,0001,10452,84.10,100042,"Doe, Jane"
/// ```
///
/// - the header line must be exactly [`CSV_HEADER`] (surrounding spaces ignored);
/// - `deposit_date` is `YYYY-MM-DD`;
/// - `lockbox`, `batch` and `sequence` are required (letters, digits, `-`, `_`, `.`);
/// - `amount` is dollars with exactly two decimals (`84.10`) or whole dollars (`84`), positive,
///   digits only (no sign, no thousands separators, no exponent) — read as integer cents, never
///   through floating point;
/// - `check_number`, `account_number` (the coupon's customer account number) and `remitter`
///   may be empty; `remitter` may be quoted and contain commas;
/// - blank lines are ignored;
/// - two rows with the same lockbox, date, batch and sequence are an error naming both lines.
///
/// Any bad line fails the whole file.
pub fn parse_csv(text: &str) -> Result<Vec<LockboxItem>, ParseError> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.records();
    let header = match records.next() {
        None => return Err(ParseError::new(0, "the file is empty")),
        Some(Err(e)) => return Err(csv_error(text, &e)),
        Some(Ok(r)) => r,
    };
    let header_line = line_of(text, &header);
    let got: Vec<&str> = header.iter().map(str::trim).collect();
    if got.join(",") != CSV_HEADER {
        return Err(ParseError::new(
            header_line,
            format!("the header line must be {CSV_HEADER:?}"),
        ));
    }
    let mut items = Vec::new();
    for record in records {
        let record = record.map_err(|e| csv_error(text, &e))?;
        let n = line_of(text, &record);
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if items.len() >= ITEMS_MAX {
            return Err(ParseError::new(
                n,
                format!("the file has more than {ITEMS_MAX} items"),
            ));
        }
        if record.len() != COLUMNS {
            return Err(ParseError::new(
                n,
                format!("has {} columns; expected {COLUMNS}", record.len()),
            ));
        }
        let f = |i: usize| record.get(i).unwrap_or("").trim();
        let deposit_date = parse_date(n, f(0))?;
        let lockbox = ident(n, "lockbox", f(1))?;
        let batch = ident(n, "batch", f(2))?;
        let sequence = ident(n, "sequence", f(3))?;
        let check_number = free_text(n, "check_number", f(4))?;
        let amount = parse_amount(n, f(5))?;
        let account_reference = free_text(n, "account_number", f(6))?;
        let remitter = free_text(n, "remitter", f(7))?;
        items.push(LockboxItem {
            line: n,
            deposit_date,
            item_key: LockboxItem::key(&lockbox, deposit_date, &batch, &sequence),
            lockbox,
            batch,
            sequence,
            check_number,
            amount,
            account_reference,
            remitter,
        });
    }
    check_unique(&items)?;
    Ok(items)
}

/// The 1-based line a record starting at `byte` is on. Computed from the text rather than
/// taken from the csv crate's line count, which puts a record after a `"\r\n"` on the line
/// before it.
fn line_at(text: &str, byte: u64) -> usize {
    let bytes = text.as_bytes();
    let mut b = usize::try_from(byte).unwrap_or(usize::MAX).min(bytes.len());
    while matches!(bytes.get(b), Some(b'\r' | b'\n')) {
        b += 1;
    }
    1 + bytes
        .get(..b)
        .map_or(0, |head| head.iter().filter(|&&c| c == b'\n').count())
}

fn line_of(text: &str, record: &::csv::StringRecord) -> usize {
    record.position().map_or(0, |p| line_at(text, p.byte()))
}

fn csv_error(text: &str, e: &::csv::Error) -> ParseError {
    let line = e.position().map_or(0, |p| line_at(text, p.byte()));
    let message = match e.kind() {
        ::csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_owned(),
        _ => "is not valid CSV (check the quotes)".to_owned(),
    };
    ParseError::new(line, message)
}

/// `YYYY-MM-DD`, checked character by character before jiff sees it.
pub(crate) fn parse_date(n: usize, s: &str) -> Result<Date, ParseError> {
    let b = s.as_bytes();
    let shape = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    let bad = || ParseError::new(n, format!("deposit_date {s:?} is not a YYYY-MM-DD date"));
    if !shape {
        return Err(bad());
    }
    let year: i16 = s.get(0..4).and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let month: i8 = s.get(5..7).and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    let day: i8 = s.get(8..10).and_then(|x| x.parse().ok()).ok_or_else(bad)?;
    Date::new(year, month, day).map_err(|_| bad())
}

/// Dollars as `123` or `123.45`, positive, at most 10 whole-dollar digits; returns cents.
pub(crate) fn parse_amount(n: usize, s: &str) -> Result<i64, ParseError> {
    let bad = |why: &str| ParseError::new(n, format!("amount {s:?} {why}"));
    let (whole, cents) = match s.split_once('.') {
        Some((w, c)) => (w, Some(c)),
        None => (s, None),
    };
    if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(
            "is not a dollar amount like 84.10 (digits, a point and two decimals)",
        ));
    }
    if whole.len() > 10 {
        return Err(bad("is too large"));
    }
    let cents = match cents {
        None => 0,
        Some(c) if c.len() == 2 && c.bytes().all(|b| b.is_ascii_digit()) => {
            c.parse::<i64>().map_err(|_| bad("has bad cents"))?
        }
        Some(_) => return Err(bad("must have exactly two decimals, like 84.10")),
    };
    let dollars: i64 = whole.parse().map_err(|_| bad("is too large"))?;
    let total = dollars
        .checked_mul(100)
        .and_then(|d| d.checked_add(cents))
        .ok_or_else(|| bad("is too large"))?;
    if total <= 0 {
        return Err(bad("must be more than zero"));
    }
    Ok(total)
}

fn ident(n: usize, what: &str, s: &str) -> Result<String, ParseError> {
    if s.is_empty() {
        return Err(ParseError::new(n, format!("{what} is empty")));
    }
    if s.len() > FIELD_CHARS_MAX
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(ParseError::new(
            n,
            format!(
                "{what} {s:?} may hold only letters, digits, '-', '_' and '.' (at most {FIELD_CHARS_MAX})"
            ),
        ));
    }
    Ok(s.to_owned())
}

fn free_text(n: usize, what: &str, s: &str) -> Result<String, ParseError> {
    if s.chars().count() > FIELD_CHARS_MAX {
        return Err(ParseError::new(
            n,
            format!("{what} is longer than {FIELD_CHARS_MAX} characters"),
        ));
    }
    if s.chars().any(char::is_control) {
        return Err(ParseError::new(
            n,
            format!("{what} contains a control character"),
        ));
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts() {
        assert_eq!(parse_amount(1, "84.10"), Ok(8410));
        assert_eq!(parse_amount(1, "84"), Ok(8400));
        assert_eq!(parse_amount(1, "0.01"), Ok(1));
        assert_eq!(parse_amount(1, "9999999999.99"), Ok(999_999_999_999));
        for bad in [
            "12.3",
            "1e5",
            "-5.00",
            "+5.00",
            "1,000.00",
            "",
            ".50",
            "5.",
            "0.00",
            "0",
            "5.001",
            "12345678901",
            " 5",
            "５.00",
        ] {
            assert!(parse_amount(1, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            parse_date(1, "2026-12-01"),
            Ok(jiff::civil::date(2026, 12, 1))
        );
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "26-12-01",
            "2026/12/01",
            "2026-1-01",
            "२०२६-12-01",
        ] {
            assert!(parse_date(1, bad).is_err(), "{bad}");
        }
    }
}
