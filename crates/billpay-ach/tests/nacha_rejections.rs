//! What the NACHA reader and writer refuse, and that each refusal names the line or field.

mod common;

use billpay_ach::nacha::{AchError, Addenda, SecCode, TransactionCode, parse_file, write_file};
use common::*;

fn good() -> String {
    write_file(&debit_file()).unwrap()
}

/// Replaces columns `start..=end` (1-based) of line `n` (1-based).
fn set(text: &str, n: usize, start: usize, end: usize, value: &str) -> String {
    assert_eq!(value.len(), end - start + 1);
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == n {
                format!("{}{value}{}\n", &l[..start - 1], &l[end..])
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

fn map_lines(text: &str, f: impl Fn(Vec<&str>) -> Vec<String>) -> String {
    f(text.lines().collect())
        .into_iter()
        .map(|l| format!("{l}\n"))
        .collect()
}

fn err(text: &str) -> String {
    parse_file(text).unwrap_err().to_string()
}

#[test]
fn the_good_file_parses() {
    assert!(parse_file(&good()).is_ok());
}

#[test]
fn wrong_record_length() {
    let text = map_lines(&good(), |ls| {
        ls.iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 2 {
                    l[..93].to_owned()
                } else {
                    l.to_string()
                }
            })
            .collect()
    });
    assert_eq!(
        err(&text),
        "line 3: record is 93 characters long; NACHA records are 94"
    );
    let blank_inside = good().replacen('\n', "\n\n", 1);
    assert_eq!(
        err(&blank_inside),
        "line 2: record is 0 characters long; NACHA records are 94"
    );
}

#[test]
fn non_numeric_amount() {
    assert_eq!(
        err(&set(&good(), 3, 30, 39, "00000A1234")),
        "line 3: entry detail amount \"00000A1234\" is not numeric"
    );
}

#[test]
fn bad_batch_control_totals_and_counts() {
    assert_eq!(
        err(&set(&good(), 6, 21, 32, "000000133411")),
        "line 6: batch control total debit amount is 133411 but the batch adds up to 133410"
    );
    assert_eq!(
        err(&set(&good(), 6, 33, 44, "000000000001")),
        "line 6: batch control total credit amount is 1 but the batch adds up to 0"
    );
    assert_eq!(
        err(&set(&good(), 6, 5, 10, "000002")),
        "line 6: batch control entry/addenda count is 2 but the batch adds up to 3"
    );
    assert_eq!(
        err(&set(&good(), 6, 88, 94, "0000009")),
        "line 6: batch control batch number 9 differs from the header's 1"
    );
}

#[test]
fn bad_entry_hash() {
    assert_eq!(
        err(&set(&good(), 6, 11, 20, "0010200003")),
        "line 6: batch control entry hash is 10200003 but the batch adds up to 10200002"
    );
    assert_eq!(
        err(&set(&good(), 14, 22, 31, "0035919159")),
        "line 14: file control entry hash is 35919159 but the file adds up to 35919158"
    );
}

#[test]
fn bad_file_control() {
    assert_eq!(
        err(&set(&good(), 14, 2, 7, "000002")),
        "line 14: file control batch count is 2 but the file adds up to 3"
    );
    assert_eq!(
        err(&set(&good(), 14, 8, 13, "000003")),
        "line 14: file control block count is 3 but the file adds up to 2"
    );
    assert_eq!(
        err(&set(&good(), 14, 32, 43, "000000238400")),
        "line 14: file control total debit amount is 238400 but the file adds up to 238408"
    );
}

#[test]
fn unknown_record_type() {
    assert_eq!(
        err(&set(&good(), 3, 1, 1, "X")),
        "line 3: expected an entry detail (type 6) or batch control (type 8), found type 'X'"
    );
    assert_eq!(
        err(&set(&good(), 5, 2, 3, "02")),
        "line 5: addenda type code \"02\" is not supported (05, 98 or 99)"
    );
}

#[test]
fn records_out_of_order() {
    let swapped = map_lines(&good(), |mut ls| {
        ls.swap(1, 2);
        ls.into_iter().map(str::to_owned).collect()
    });
    assert_eq!(
        err(&swapped),
        "line 2: expected a batch header (type 5) or the file control (type 9), found type '6'"
    );
    let header_not_first = map_lines(&good(), |ls| {
        ls[1..].iter().map(|l| l.to_string()).collect()
    });
    assert_eq!(
        err(&header_not_first),
        "line 1: the first record must be a file header (type 1), found type '5'"
    );
    let addenda_first = map_lines(&good(), |mut ls| {
        ls.swap(3, 4);
        ls.into_iter().map(str::to_owned).collect()
    });
    assert_eq!(
        err(&addenda_first),
        "line 4: addenda record follows an entry detail whose addenda indicator is 0"
    );
    let no_file_control: String = good().lines().take(13).map(|l| format!("{l}\n")).collect();
    assert_eq!(
        err(&no_file_control),
        "line 13: the file ends without a file control record (type 9)"
    );
    let after_control = map_lines(&good(), |ls| {
        let mut v: Vec<String> = ls.iter().map(|l| l.to_string()).collect();
        v[15] = ls[2].to_owned();
        v
    });
    assert_eq!(
        err(&after_control),
        "line 16: only all-9 filler records may follow the file control record"
    );
}

#[test]
fn non_ascii() {
    let text = good().replacen("JANE Q DOE", "JANÉ Q DOE", 1);
    assert_eq!(
        err(&text),
        "line 3: contains a non-ASCII character; NACHA records are ASCII"
    );
}

#[test]
fn other_field_checks() {
    assert_eq!(
        err(&set(&good(), 3, 12, 12, "6")),
        "line 3: entry detail RDFI routing number \"011000016\" is not valid (check digit)"
    );
    assert_eq!(
        err(&set(&good(), 3, 2, 3, "24")),
        "line 3: entry detail transaction code 24 is not supported"
    );
    assert_eq!(
        err(&set(&good(), 4, 79, 79, "0")),
        "line 5: addenda record follows an entry detail whose addenda indicator is 0"
    );
    assert_eq!(
        err(&set(&good(), 3, 79, 79, "1")),
        "line 3: entry detail's addenda indicator is 1 but no addenda record follows"
    );
    assert_eq!(
        err(&set(&good(), 2, 51, 53, "CTX")),
        "line 2: batch header SEC code \"CTX\" is not supported"
    );
    assert_eq!(
        err(&set(&good(), 2, 70, 75, "261332")),
        "line 2: batch header effective entry date \"261332\" is not a YYMMDD date"
    );
    assert_eq!(
        err(&set(&good(), 1, 35, 37, "095")),
        "line 1: file header record size is \"095\", expected \"094\""
    );
    assert_eq!(
        err(&set(&good(), 5, 88, 94, "0000009")),
        "line 5: addenda entry detail sequence number \"0000009\" does not match its entry's trace number"
    );
    // A credit in a debits-only (225) batch.
    let credit = set(
        &set(&good(), 3, 2, 3, "22"),
        6,
        21,
        44,
        "000000125000000000008410",
    );
    assert_eq!(
        err(&credit),
        "line 2: batch header service class code 225 does not allow the batch's credits"
    );
    assert_eq!(err(""), "line 0: the file is empty");
}

#[test]
fn writer_refuses_bad_fields_naming_them() {
    let check = |f: &dyn Fn(&mut billpay_ach::nacha::AchFile), want: &str| {
        let mut file = debit_file();
        f(&mut file);
        let e = write_file(&file).unwrap_err().to_string();
        assert_eq!(e, want);
        for secret in SECRET_ACCOUNTS {
            assert!(!e.contains(secret), "{e}");
        }
    };
    check(
        &|f| f.batches[0].entries[0].rdfi_routing = "011000016".into(),
        "batch 1 entry 1: rdfi_routing \"011000016\" is not valid: That routing number is not valid (check the digits).",
    );
    check(
        &|f| f.batches[0].entries[0].account_number = "123456789012345678".into(),
        "batch 1 entry 1: account_number has 18 characters; at most 17 fit",
    );
    check(
        &|f| f.batches[0].entries[0].account_number = "0001234-56789".into(),
        "batch 1 entry 1: account_number may hold only letters and digits",
    );
    check(
        &|f| f.batches[0].entries[0].amount = -1,
        "batch 1 entry 1: amount -1 cents is not 0 to 9999999999",
    );
    check(
        &|f| f.batches[0].entries[0].amount = 10_000_000_000,
        "batch 1 entry 1: amount 10000000000 cents is not 0 to 9999999999",
    );
    check(
        &|f| f.batches[2].entries[0].amount = 1,
        "batch 3 entry 1: amount is 1 cents; a prenote or NOC carries 0",
    );
    check(
        &|f| f.batches[1].entries[0].trace_number = "021000020000001".into(),
        "trace number 021000020000001 appears more than once in the file",
    );
    check(
        &|f| f.batches[1].entries[0].trace_number = "011000010000001".into(),
        "batch 2 entry 1: trace_number \"011000010000001\" does not start with the batch's ODFI id \"02100002\"",
    );
    check(
        &|f| {
            f.batches[1].entries[0]
                .addenda
                .push(Addenda::Payment05 { info: "X".into() });
        },
        "batch 2 entry 1: addenda TEL batches carry no 05 addenda",
    );
    check(
        &|f| f.batches[0].entries[0].individual_name = "A NAME LONGER THAN TWENTY-TWO".into(),
        "batch 1 entry 1: individual_name has 29 characters; at most 22 fit",
    );
    check(
        &|f| f.batches[0].entries[0].individual_name = "JOSÉ".into(),
        "batch 1 entry 1: individual_name contains a character that is not printable ASCII",
    );
    check(
        &|f| f.batches[1].entries[0].discretionary_data = String::new(),
        "batch 2 entry 1: discretionary_data \"\" is not a TEL payment type: \"S\" single or \"R\" recurring",
    );
    check(
        &|f| f.batches[0].entries.clear(),
        "batch 1: entries is empty: a batch needs an entry",
    );
    check(
        &|f| f.batches[0].odfi_id = "0210000".into(),
        "batch 1: odfi_id \"0210000\" is not 8 digits",
    );
    check(
        &|f| f.header.file_id_modifier = 'a',
        "file header: file_id_modifier 'a' is not A-Z or 0-9",
    );
    check(
        &|f| f.batches[0].effective_date = jiff::civil::date(2100, 1, 1),
        "batch 1: effective_date 2100-01-01 is outside 2000-2099 (the file carries two-digit years)",
    );
    check(
        &|f| f.batches[0].entries[0].transaction_code = TransactionCode::CheckingReturnDebit,
        "batch 1 entry 1: addenda transaction code 26 needs a return (99) or NOC (98) addenda",
    );
    check(
        &|f| f.batches[0].sec = SecCode::Cor,
        "batch 1 entry 1: amount is 8410 cents; a prenote or NOC carries 0",
    );
    assert!(matches!(
        write_file(&billpay_ach::nacha::AchFile {
            header: header(),
            batches: vec![]
        }),
        Err(AchError::Field {
            field: "batches",
            ..
        })
    ));
}
