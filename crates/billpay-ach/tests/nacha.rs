//! NACHA files: written output checked field by field against the specification, snapshots of
//! whole files, an independent reader (rs-ach) as an oracle, round trips and returns files.

mod common;

use billpay_ach::nacha::{
    AchError, AchFile, Addenda, Correction, Outcome, SecCode, TransactionCode, build_returns,
    build_returns_file, parse_file, write_file,
};
use common::*;
use jiff::civil::datetime;

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

/// Columns `start..=end`, 1-based as the NACHA specification numbers them.
fn col(line: &str, start: usize, end: usize) -> &str {
    &line[start - 1..end]
}

#[test]
fn every_record_is_94_ascii_characters_blocked_by_ten() {
    let text = write_file(&debit_file()).unwrap();
    assert!(text.ends_with('\n'));
    assert!(text.is_ascii());
    let ls = lines(&text);
    assert_eq!(ls.len() % 10, 0);
    for l in &ls {
        assert_eq!(l.len(), 94, "{l}");
    }
    // 1 header + 3 batch headers + 5 entries + 1 addenda + 3 batch controls + 1 file control
    let records = 14;
    assert_eq!(ls.len(), 20);
    for l in &ls[records..] {
        assert_eq!(*l, "9".repeat(94));
    }
    let types: String = ls[..records].iter().map(|l| &l[..1]).collect();
    assert_eq!(types, "15667856856689");
}

#[test]
fn file_header_fields() {
    let text = write_file(&debit_file()).unwrap();
    let h = lines(&text)[0];
    assert_eq!(col(h, 1, 1), "1");
    assert_eq!(col(h, 2, 3), "01");
    assert_eq!(col(h, 4, 13), " 021000021");
    assert_eq!(col(h, 14, 23), "1234567890");
    assert_eq!(col(h, 24, 29), "261201");
    assert_eq!(col(h, 30, 33), "0930");
    assert_eq!(col(h, 34, 34), "A");
    assert_eq!(col(h, 35, 37), "094");
    assert_eq!(col(h, 38, 39), "10");
    assert_eq!(col(h, 40, 40), "1");
    assert_eq!(col(h, 41, 63), format!("{:<23}", "JPMORGAN CHASE"));
    assert_eq!(col(h, 64, 86), format!("{:<23}", "CITY UTILITIES"));
    assert_eq!(col(h, 87, 94), "BILLPAY ");
}

#[test]
fn batch_header_entry_and_addenda_fields() {
    let text = write_file(&debit_file()).unwrap();
    let ls = lines(&text);
    let bh = ls[1];
    assert_eq!(col(bh, 1, 1), "5");
    assert_eq!(col(bh, 2, 4), "225");
    assert_eq!(col(bh, 5, 20), "CITY UTILITIES  ");
    assert_eq!(col(bh, 21, 40), " ".repeat(20));
    assert_eq!(col(bh, 41, 50), "1234567890");
    assert_eq!(col(bh, 51, 53), "WEB");
    assert_eq!(col(bh, 54, 63), "UTIL PYMT ");
    assert_eq!(col(bh, 64, 69), "      ");
    assert_eq!(col(bh, 70, 75), "261202");
    assert_eq!(col(bh, 76, 78), "   ");
    assert_eq!(col(bh, 79, 79), "1");
    assert_eq!(col(bh, 80, 87), "02100002");
    assert_eq!(col(bh, 88, 94), "0000001");

    let e = ls[2];
    assert_eq!(col(e, 1, 1), "6");
    assert_eq!(col(e, 2, 3), "27");
    assert_eq!(col(e, 4, 11), "01100001");
    assert_eq!(col(e, 12, 12), "5");
    assert_eq!(col(e, 13, 29), "000123456789     ");
    assert_eq!(col(e, 30, 39), "0000008410");
    assert_eq!(col(e, 40, 54), "ACCT10001      ");
    assert_eq!(col(e, 55, 76), format!("{:<22}", "JANE Q DOE"));
    assert_eq!(col(e, 77, 78), "S ");
    assert_eq!(col(e, 79, 79), "0");
    assert_eq!(col(e, 80, 94), "021000020000001");

    let e2 = ls[3];
    assert_eq!(col(e2, 2, 3), "37");
    assert_eq!(col(e2, 79, 79), "1");
    let a = ls[4];
    assert_eq!(col(a, 1, 3), "705");
    assert_eq!(
        col(a, 4, 83),
        format!("{:<80}", "STATEMENT 2026-11 ACCT 10002")
    );
    assert_eq!(col(a, 84, 87), "0001");
    assert_eq!(col(a, 88, 94), "0000002");

    // PPD batch: descriptive date, prenote at zero.
    let ppd = ls[9];
    assert_eq!(col(ppd, 51, 53), "PPD");
    assert_eq!(col(ppd, 64, 69), "DEC 26");
    let prenote = ls[10];
    assert_eq!(col(prenote, 2, 3), "28");
    assert_eq!(col(prenote, 30, 39), "0000000000");
}

#[test]
fn batch_and_file_controls_carry_counts_hashes_and_totals() {
    let text = write_file(&debit_file()).unwrap();
    let ls = lines(&text);
    let bc1 = ls[5];
    assert_eq!(col(bc1, 1, 1), "8");
    assert_eq!(col(bc1, 2, 4), "225");
    assert_eq!(col(bc1, 5, 10), "000003"); // two entries and one addenda
    // 01100001 + 09100001 = 10200002
    assert_eq!(col(bc1, 11, 20), "0010200002");
    assert_eq!(col(bc1, 21, 32), "000000133410"); // 84.10 + 1,250.00
    assert_eq!(col(bc1, 33, 44), "000000000000");
    assert_eq!(col(bc1, 45, 54), "1234567890");
    assert_eq!(col(bc1, 55, 79), " ".repeat(25));
    assert_eq!(col(bc1, 80, 87), "02100002");
    assert_eq!(col(bc1, 88, 94), "0000001");

    let bc2 = ls[8];
    assert_eq!(col(bc2, 5, 10), "000001");
    assert_eq!(col(bc2, 11, 20), "0002600959");
    assert_eq!(col(bc2, 21, 32), "000000004999");
    assert_eq!(col(bc2, 88, 94), "0000002");

    let bc3 = ls[12];
    assert_eq!(col(bc3, 5, 10), "000002");
    // 12118197 + 11000000
    assert_eq!(col(bc3, 11, 20), "0023118197");
    assert_eq!(col(bc3, 21, 32), "000000099999");

    let fc = ls[13];
    assert_eq!(col(fc, 1, 1), "9");
    assert_eq!(col(fc, 2, 7), "000003");
    assert_eq!(col(fc, 8, 13), "000002"); // 14 records -> 2 blocks
    assert_eq!(col(fc, 14, 21), "00000006");
    // 10200002 + 2600959 + 23118197
    assert_eq!(col(fc, 22, 31), "0035919158");
    assert_eq!(col(fc, 32, 43), "000000238408");
    assert_eq!(col(fc, 44, 55), "000000000000");
    assert_eq!(col(fc, 56, 94), " ".repeat(39));
}

#[test]
fn alphanumeric_fields_are_upper_cased() {
    let mut file = debit_file();
    file.batches[0].company_name = "City Utilities".into();
    file.batches[0].entries[0].individual_name = "Jane q. Doe".into();
    let text = write_file(&file).unwrap();
    let ls = lines(&text);
    assert_eq!(col(ls[1], 5, 20), "CITY UTILITIES  ");
    assert_eq!(col(ls[2], 55, 76), format!("{:<22}", "JANE Q. DOE"));
}

#[test]
fn service_class_codes_follow_the_entries() {
    let debit = entry(TransactionCode::CheckingDebit, "011000015", "1234", 100, 1);
    let credit = entry(TransactionCode::CheckingCredit, "011000015", "1234", 100, 2);
    for (entries, scc) in [
        (vec![debit.clone()], "225"),
        (vec![credit.clone()], "220"),
        (vec![debit, credit], "200"),
    ] {
        let file = AchFile {
            header: header(),
            batches: vec![batch(SecCode::Ccd, 1, entries)],
        };
        let text = write_file(&file).unwrap();
        let ls = lines(&text);
        assert_eq!(col(ls[1], 2, 4), scc);
        let control = ls.iter().find(|l| l.starts_with('8')).unwrap();
        assert_eq!(col(control, 2, 4), scc);
        assert_eq!(parse_file(&text).unwrap(), file);
    }
}

#[test]
fn entry_hash_keeps_the_last_ten_digits() {
    // 1,000 entries to 12118197x: sum 12,118,197,000 -> last 10 digits 2118197000.
    let entries = (1..=1000)
        .map(|i| entry(TransactionCode::CheckingDebit, "121181976", "1234", 1, i))
        .collect();
    let file = AchFile {
        header: header(),
        batches: vec![batch(SecCode::Ppd, 1, entries)],
    };
    let text = write_file(&file).unwrap();
    let ls = lines(&text);
    assert_eq!(ls.len(), 1010);
    assert_eq!(col(ls[1002], 11, 20), "2118197000");
    assert_eq!(col(ls[1003], 8, 13), "000101"); // 1,004 records -> 101 blocks
    assert_eq!(col(ls[1003], 22, 31), "2118197000");
    assert_eq!(parse_file(&text).unwrap(), file);
}

#[test]
fn snapshot_web_tel_ppd_debit_file() {
    insta::assert_snapshot!(write_file(&debit_file()).unwrap());
}

fn outcomes() -> Vec<(String, Outcome)> {
    vec![
        (
            "021000020000001".into(),
            Outcome::Return { code: "R01".into() },
        ),
        (
            "021000020000003".into(),
            Outcome::Return { code: "R03".into() },
        ),
        (
            "021000020000005".into(),
            Outcome::Return { code: "R10".into() },
        ),
        (
            "021000020000004".into(),
            Outcome::Correction {
                code: "C01".into(),
                corrected_data: Correction::AccountNumber("1234567890123".into()).corrected_data(),
            },
        ),
    ]
}

fn returns_header() -> billpay_ach::nacha::FileHeader {
    let mut h = header();
    h.immediate_destination = "021000021".into();
    h.immediate_origin = "011000015".into();
    h.destination_name = "CITY UTILITIES BANK".into();
    h.origin_name = "SANDBOX RDFI".into();
    h.creation = datetime(2026, 12, 4, 6, 0, 0, 0);
    h
}

#[test]
fn snapshot_returns_file_with_r01_r03_r10_and_c01() {
    let text =
        build_returns_file(&debit_file(), returns_header(), &outcomes(), "01100001").unwrap();
    insta::assert_snapshot!(text);
}

#[test]
fn returns_file_parses_back_with_codes_and_original_traces() {
    let original = debit_file();
    let text = build_returns_file(&original, returns_header(), &outcomes(), "01100001").unwrap();
    let parsed = parse_file(&text).unwrap();
    assert_eq!(
        parsed,
        build_returns(&original, returns_header(), &outcomes(), "01100001").unwrap()
    );
    let returns = parsed.returns();
    let got: Vec<(&str, &str, i64)> = returns
        .iter()
        .map(|r| (r.original_trace.as_str(), r.code.as_str(), r.amount))
        .collect();
    assert_eq!(
        got,
        [
            ("021000020000001", "R01", 8410),
            ("021000020000003", "R03", 4999),
            ("021000020000005", "R10", 99_999),
        ]
    );
    assert!(
        returns
            .iter()
            .all(|r| r.entry_trace.starts_with("01100001"))
    );
    let corrections = parsed.corrections();
    assert_eq!(corrections.len(), 1);
    assert_eq!(corrections[0].original_trace, "021000020000004");
    assert_eq!(corrections[0].code, "C01");
    assert_eq!(
        corrections[0].parsed,
        Correction::AccountNumber("1234567890123".into())
    );

    // Batches: WEB returns, TEL returns, PPD returns, COR for the NOC.
    let secs: Vec<SecCode> = parsed.batches.iter().map(|b| b.sec).collect();
    assert_eq!(
        secs,
        [SecCode::Web, SecCode::Tel, SecCode::Ppd, SecCode::Cor]
    );
    let all: Vec<_> = parsed.batches.iter().flat_map(|b| &b.entries).collect();
    // A returned debit comes back as 26 (checking); the NOC on a prenote is 26 at zero.
    assert!(all.iter().all(|e| e.transaction_code.code() == 26));
    assert_eq!(all[3].amount, 0);
    // The return travels to the original ODFI: its routing is in the RDFI field.
    assert!(all.iter().all(|e| e.rdfi_routing == "021000021"));
    assert_eq!(all[0].account_number, SECRET_ACCOUNTS[0]);
    match &all[0].addenda[0] {
        Addenda::Return99 { original_rdfi, .. } => assert_eq!(original_rdfi, "01100001"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn savings_returns_use_36_and_credits_21() {
    let mut file = debit_file();
    file.batches[2].entries.push(entry(
        TransactionCode::CheckingCredit,
        "011000015",
        "1234",
        500,
        6,
    ));
    let text = write_file(&file).unwrap();
    assert_eq!(col(lines(&text)[9], 2, 4), "200");
    let out = build_returns(
        &file,
        returns_header(),
        &[
            (
                "021000020000002".into(),
                Outcome::Return { code: "R01".into() },
            ),
            (
                "021000020000006".into(),
                Outcome::Return { code: "R02".into() },
            ),
        ],
        "01100001",
    )
    .unwrap();
    let codes: Vec<u8> = out
        .batches
        .iter()
        .flat_map(|b| &b.entries)
        .map(|e| e.transaction_code.code())
        .collect();
    assert_eq!(codes, [36, 21]);
}

#[test]
fn returns_builder_rejects_unknown_and_repeated_traces() {
    let original = debit_file();
    let r = |t: &str| (t.to_owned(), Outcome::Return { code: "R01".into() });
    assert_eq!(
        build_returns(
            &original,
            returns_header(),
            &[r("021000029999999")],
            "01100001"
        ),
        Err(AchError::UnknownTrace {
            trace: "021000029999999".into()
        })
    );
    assert!(matches!(
        build_returns(
            &original,
            returns_header(),
            &[r("021000020000001"), r("021000020000001")],
            "01100001"
        ),
        Err(AchError::DuplicateTrace { .. })
    ));
    assert!(build_returns(&original, returns_header(), &[r("021000020000001")], "0110").is_err());
    let bad_code = (
        "021000020000001".to_owned(),
        Outcome::Return { code: "X1".into() },
    );
    let err = build_returns_file(&original, returns_header(), &[bad_code], "01100001").unwrap_err();
    assert!(err.to_string().contains("return_code"), "{err}");
}

#[test]
fn round_trip_write_then_parse() {
    let file = debit_file();
    let text = write_file(&file).unwrap();
    assert_eq!(parse_file(&text).unwrap(), file);
    // CRLF line endings read the same.
    assert_eq!(parse_file(&text.replace('\n', "\r\n")).unwrap(), file);
    // Without the filler records too.
    let unpadded: String = text
        .lines()
        .filter(|l| *l != "9".repeat(94))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(parse_file(&unpadded).unwrap(), file);
}

/// rs-ach, an independent NACHA reader from crates.io, reads the same entries and totals.
#[test]
fn oracle_rs_ach_reads_what_we_write() {
    for file in [
        debit_file(),
        build_returns(&debit_file(), returns_header(), &outcomes(), "01100001").unwrap(),
    ] {
        let text = write_file(&file).unwrap();
        let oracle = rs_ach::AchFile::parse(&text).expect("rs-ach reads our file");
        assert_eq!(oracle.file_header.immediate_destination.trim(), "021000021");
        assert_eq!(oracle.batches.len(), file.batches.len());
        let mut debit = 0u64;
        let mut entries = 0u64;
        for (ours, theirs) in file.batches.iter().zip(&oracle.batches) {
            assert_eq!(theirs.header.standard_entry_class_code, ours.sec.as_str());
            assert_eq!(
                theirs.header.service_class_code,
                ours.service_class_code().to_string()
            );
            assert_eq!(theirs.header.originating_dfi_identification, ours.odfi_id);
            assert_eq!(theirs.entries.len(), ours.entries.len());
            let mut batch_debit = 0;
            let mut hash = 0u64;
            for (e, t) in ours.entries.iter().zip(&theirs.entries) {
                assert_eq!(t.transaction_code, e.transaction_code.code().to_string());
                assert_eq!(
                    format!("{}{}", t.receiving_dfi_identification, t.check_digit),
                    e.rdfi_routing
                );
                assert_eq!(t.dfi_account_number.trim(), e.account_number);
                assert_eq!(t.amount, e.amount as u64);
                assert_eq!(t.individual_name.trim(), e.individual_name.to_uppercase());
                assert_eq!(t.trace_number, e.trace_number);
                assert_eq!(t.addenda.len(), e.addenda.len());
                assert_eq!(
                    t.addenda_record_indicator,
                    if e.addenda.is_empty() { "0" } else { "1" }
                );
                batch_debit += t.amount;
                hash += t.receiving_dfi_identification.parse::<u64>().unwrap();
            }
            assert_eq!(theirs.control.total_debit_amount, batch_debit);
            assert_eq!(theirs.control.total_credit_amount, 0);
            assert_eq!(theirs.control.entry_hash, hash % 10_000_000_000);
            assert_eq!(
                theirs.control.entry_addenda_count,
                ours.entries
                    .iter()
                    .map(|e| 1 + e.addenda.len() as u64)
                    .sum::<u64>()
            );
            debit += batch_debit;
            entries += theirs.control.entry_addenda_count;
        }
        assert_eq!(oracle.file_control.total_debit_amount, debit);
        assert_eq!(oracle.file_control.entry_addenda_count, entries);
        assert_eq!(oracle.file_control.batch_count, file.batches.len() as u64);
        assert_eq!(
            oracle.file_control.block_count,
            (text.lines().count() / 10) as u64
        );
    }
}
