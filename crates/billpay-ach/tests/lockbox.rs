//! Lockbox CSV and BAI2: what is read from good files, and every rejection names its line.

use billpay_ach::lockbox::{LockboxItem, parse_bai2, parse_csv};
use jiff::civil::date;

const CSV: &str = include_str!("data/lockbox.csv");
const BAI: &str = include_str!("data/lockbox.bai");

fn summary(items: &[LockboxItem]) -> Vec<(usize, String, String, i64, String, String)> {
    items
        .iter()
        .map(|i| {
            (
                i.line,
                i.item_key.clone(),
                i.check_number.clone(),
                i.amount,
                i.account_reference.clone(),
                i.remitter.clone(),
            )
        })
        .collect()
}

fn s(x: &str) -> String {
    x.to_owned()
}

#[test]
fn csv_reads_items() {
    let items = parse_csv(CSV).unwrap();
    assert_eq!(
        summary(&items),
        [
            (
                2,
                s("4417:2026-12-01:001:0001"),
                s("10452"),
                8410,
                s("100042"),
                s("Doe, Jane")
            ),
            (
                3,
                s("4417:2026-12-01:001:0002"),
                s("2231"),
                12500,
                s("100057"),
                s("ACME HARDWARE INC")
            ),
            (
                4,
                s("4417:2026-12-01:002:0001"),
                s("881"),
                7600,
                s(""),
                s("Smith, Robert \"Bob\"")
            ),
        ]
    );
    assert_eq!(items[0].deposit_date, date(2026, 12, 1));
    assert_eq!(items[0].lockbox, "4417");
    assert_eq!(items[0].batch, "001");
    assert_eq!(items[0].sequence, "0001");
    // CRLF reads the same.
    assert_eq!(parse_csv(&CSV.replace('\n', "\r\n")).unwrap(), items);
}

fn csv_with(row: &str) -> String {
    format!(
        "deposit_date,lockbox,batch,sequence,check_number,amount,account_number,remitter\n\
         2026-12-01,4417,001,0001,10452,84.10,100042,Jane Doe\n{row}\n"
    )
}

#[test]
fn csv_rejections_name_the_line() {
    let cases = [
        (
            "2026-13-01,4417,001,0002,1,5.00,1,X",
            "line 3: deposit_date \"2026-13-01\"",
        ),
        (
            "12/01/2026,4417,001,0002,1,5.00,1,X",
            "line 3: deposit_date",
        ),
        (
            "2026-12-01,4417,001,0002,1,12.3,1,X",
            "line 3: amount \"12.3\"",
        ),
        (
            "2026-12-01,4417,001,0002,1,1e5,1,X",
            "line 3: amount \"1e5\"",
        ),
        (
            "2026-12-01,4417,001,0002,1,-5.00,1,X",
            "line 3: amount \"-5.00\"",
        ),
        (
            "2026-12-01,4417,001,0002,1,0.00,1,X",
            "line 3: amount \"0.00\" must be more than zero",
        ),
        (
            "2026-12-01,4417,001,0002,1,5.00,1",
            "line 3: has 7 columns; expected 8",
        ),
        (
            "2026-12-01,4417,001,,1,5.00,1,X",
            "line 3: sequence is empty",
        ),
        (
            "2026-12-01,4417,001,0001,77,5.00,9,X",
            "line 3: duplicate item \"4417:2026-12-01:001:0001\": the same lockbox, date, batch and sequence as line 2",
        ),
    ];
    for (row, want) in cases {
        let err = parse_csv(&csv_with(row)).unwrap_err().to_string();
        assert!(err.starts_with(want), "{row}: {err}");
    }
    let err = parse_csv("date,amount\n2026-12-01,5.00\n").unwrap_err();
    assert_eq!(err.line, 1);
    assert!(parse_csv("").is_err());
    let err = parse_csv(&csv_with("2026-12-01,4417,001,0002,1,\"5.00,1,X")).unwrap_err();
    assert!(err.line >= 3, "{err}");
}

#[test]
fn csv_header_only_is_an_empty_deposit() {
    assert_eq!(
        parse_csv(
            "deposit_date,lockbox,batch,sequence,check_number,amount,account_number,remitter\n\n\n"
        ),
        Ok(vec![])
    );
}

#[test]
fn bai2_reads_lockbox_items() {
    let items = parse_bai2(BAI).unwrap();
    assert_eq!(
        summary(&items),
        [
            (
                5,
                s("4417:2026-12-01:1:1"),
                s("10452"),
                8410,
                s("100042"),
                s("DOE JANE")
            ),
            (
                6,
                s("4417:2026-12-01:1:2"),
                s("2231"),
                12500,
                s("100057"),
                s("ACME HARDWARE INC")
            ),
            (
                8,
                s("4417:2026-12-01:1:3"),
                s("881"),
                7600,
                s(""),
                s("SMITH, ROBERT")
            ),
        ]
    );
    assert_eq!(parse_bai2(&BAI.replace('\n', "\r\n")).unwrap(), items);
}

#[test]
fn bai2_deposits_without_items_are_one_check_each() {
    let text = "01,021000021,CITYUTIL,261201,0600,1,80,,2/\n\
                02,CITYUTIL,021000021,1,261201,0600,USD,2/\n\
                03,4417,USD/\n\
                16,115,8410,0,10452,100042,DOE JANE/\n\
                16,115,1000,0,10453,100043,ROE RICHARD/\n\
                16,142,5000,0,ACH1,,ACH CREDIT/\n\
                49,14410,5/\n\
                98,14410,1,7/\n\
                99,14410,1,9/\n";
    let items = parse_bai2(text).unwrap();
    let keys: Vec<&str> = items.iter().map(|i| i.item_key.as_str()).collect();
    assert_eq!(keys, ["4417:2026-12-01:1:1", "4417:2026-12-01:1:2"]);
    assert_eq!(items[1].amount, 1000);
}

#[test]
fn bai2_rejections_name_the_line() {
    let cases = [
        (
            BAI.replace("49,585530,7/", "49,585531,7/"),
            "line 9: account control total is 585531 but the records add up to 585530",
        ),
        (
            BAI.replace("49,585530,7/", "49,585530,6/"),
            "line 9: number of records is 6 but there are 7",
        ),
        (
            BAI.replace("98,585530,1,9/", "98,585530,1,8/"),
            "line 10: number of records is 8",
        ),
        (
            BAI.replace("98,585530,1,9/", "98,1,1,9/"),
            "line 10: group control total is 1",
        ),
        (
            BAI.replace("99,585530,1,11/", "99,585530,2,11/"),
            "line 11: number of groups is 2 but there are 1",
        ),
        (
            BAI.replace("99,585530,1,11/", "99,585529,1,11/"),
            "line 11: file control total",
        ),
        (
            BAI.replace("99,585530,1,11/\n", ""),
            "line 10: the file ends without a group header or the file trailer",
        ),
        (
            BAI.replace("49,585530,7/\n", ""),
            "line 9: expected a transaction detail or the account trailer (record 16 or 49), found record \"98\"",
        ),
        (
            BAI.replace("16,116,8410,", "16,116,84.10,"),
            "line 5: transaction detail amount \"84.10\" is not an amount in cents",
        ),
        (
            BAI.replace("DOE JANE", "DOÉ JANE"),
            "line 5: contains a non-ASCII character",
        ),
        (
            BAI.replace(
                "02,CITYUTIL,021000021,1,261201",
                "02,CITYUTIL,021000021,1,261301",
            ),
            "line 2: group as-of date \"261301\"",
        ),
        (
            BAI.replace("49,585530,7/", "49,585530,7"),
            "line 9: record does not end with '/'",
        ),
        (BAI.replace("01,", "02,"), "line 1: expected a file header"),
        (
            format!("{BAI}16,116,1,0,1,1,X/\n"),
            "line 12: records after the file trailer",
        ),
    ];
    for (text, want) in cases {
        let err = parse_bai2(&text).unwrap_err().to_string();
        assert!(err.starts_with(want), "want {want:?}, got {err:?}");
    }
    assert!(parse_bai2("").is_err());
}
