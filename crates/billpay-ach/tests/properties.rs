//! Property tests: the parsers never panic on arbitrary or mutated input, and writing then
//! reading any valid file gives it back.

mod common;

use billpay_ach::lockbox::{parse_bai2, parse_csv};
use billpay_ach::nacha::{
    AchFile, Addenda, Batch, Entry, Outcome, SecCode, TransactionCode, build_returns_file,
    parse_file, write_file,
};
use common::*;
use proptest::prelude::*;

const CSV: &str = include_str!("data/lockbox.csv");
const BAI: &str = include_str!("data/lockbox.bai");

fn nacha_samples() -> Vec<String> {
    let original = debit_file();
    let returns = build_returns_file(
        &original,
        header(),
        &[
            (
                "021000020000001".into(),
                Outcome::Return { code: "R01".into() },
            ),
            (
                "021000020000004".into(),
                Outcome::Correction {
                    code: "C01".into(),
                    corrected_data: "1234567890123".into(),
                },
            ),
        ],
        "01100001",
    )
    .unwrap();
    vec![write_file(&original).unwrap(), returns]
}

#[derive(Debug, Clone)]
enum Mutation {
    /// Replace the byte at (position mod len) with this char.
    Flip(usize, char),
    /// Cut the text at (position mod len).
    Truncate(usize),
    /// Delete line (index mod lines).
    DeleteLine(usize),
    /// Duplicate line (index mod lines).
    DuplicateLine(usize),
    /// Swap two lines.
    SwapLines(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (
            any::<usize>(),
            prop_oneof![
                Just('9'),
                Just('0'),
                Just(' '),
                Just(','),
                Just('/'),
                Just('\n'),
                Just('\r'),
                Just('É'),
                Just('"'),
                any::<char>()
            ]
        )
            .prop_map(|(p, c)| Mutation::Flip(p, c)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::DeleteLine),
        any::<usize>().prop_map(Mutation::DuplicateLine),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
    ]
}

fn apply(text: &str, mutations: &[Mutation]) -> String {
    let mut bytes = text.as_bytes().to_vec();
    for m in mutations {
        match m {
            Mutation::Flip(p, c) => {
                if !bytes.is_empty() {
                    let at = p % bytes.len();
                    let mut buf = [0u8; 4];
                    let enc = c.encode_utf8(&mut buf).as_bytes().to_vec();
                    bytes.splice(at..at + 1, enc);
                }
            }
            Mutation::Truncate(p) => {
                let at = p % (bytes.len() + 1);
                bytes.truncate(at);
            }
            Mutation::DeleteLine(_) | Mutation::DuplicateLine(_) | Mutation::SwapLines(..) => {
                let s = String::from_utf8_lossy(&bytes).into_owned();
                let mut lines: Vec<&str> = s.split('\n').collect();
                let n = lines.len();
                match m {
                    Mutation::DeleteLine(i) => {
                        lines.remove(i % n);
                    }
                    Mutation::DuplicateLine(i) => {
                        let l = lines[i % n];
                        lines.insert(i % n, l);
                    }
                    Mutation::SwapLines(a, b) => lines.swap(a % n, b % n),
                    _ => unreachable!(),
                }
                bytes = lines.join("\n").into_bytes();
            }
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

const ROUTINGS: [&str; 6] = [
    "011000015",
    "021000021",
    "026009593",
    "091000019",
    "110000000",
    "121181976",
];

fn text(max: usize) -> impl Strategy<Value = String> {
    // Upper case, no leading/trailing spaces: what the writer writes and the reader returns.
    proptest::string::string_regex(&format!(
        "([A-Z0-9]([A-Z0-9 .&/-]{{0,{}}}[A-Z0-9])?)?",
        max - 2
    ))
    .unwrap()
}

/// (transaction code, routing index, account, amount, individual id, name, discretionary data,
/// payment addenda)
type EntrySpec = (
    u8,
    usize,
    String,
    i64,
    String,
    String,
    String,
    Option<String>,
);
/// (SEC code, entries, company name, descriptive date)
type BatchSpec = (SecCode, Vec<EntrySpec>, String, String);

fn entry_strategy() -> impl Strategy<Value = EntrySpec> {
    (
        prop_oneof![
            Just(22u8),
            Just(23),
            Just(27),
            Just(28),
            Just(32),
            Just(33),
            Just(37),
            Just(38)
        ],
        0..ROUTINGS.len(),
        "[A-Z0-9]{1,17}",
        0i64..=9_999_999_999,
        text(15),
        text(22).prop_filter("name required", |n| !n.is_empty()),
        "[A-Z0-9]{0,2}",
        proptest::option::of(text(80)),
    )
}

fn batch_strategy() -> impl Strategy<Value = BatchSpec> {
    (
        prop_oneof![
            Just(SecCode::Ppd),
            Just(SecCode::Ccd),
            Just(SecCode::Web),
            Just(SecCode::Tel)
        ],
        proptest::collection::vec(entry_strategy(), 1..6),
        text(16).prop_filter("company name required", |n| !n.is_empty()),
        text(6),
    )
}

fn build(batches: Vec<BatchSpec>) -> AchFile {
    let mut seq = 0u32;
    let batches = batches
        .into_iter()
        .enumerate()
        .map(|(bi, (sec, entries, company_name, descriptive_date))| {
            let entries = entries
                .into_iter()
                .map(|(code, r, account, amount, id, name, disc, info)| {
                    seq += 1;
                    let tc = TransactionCode::from_code(code).unwrap();
                    let addenda = match info {
                        Some(info) if sec != SecCode::Tel => vec![Addenda::Payment05 { info }],
                        _ => vec![],
                    };
                    Entry {
                        transaction_code: tc,
                        rdfi_routing: ROUTINGS[r].into(),
                        account_number: account,
                        amount: if tc.is_prenote() { 0 } else { amount },
                        individual_id: id,
                        individual_name: name,
                        // WEB and TEL carry the payment type: single or recurring.
                        discretionary_data: match sec {
                            SecCode::Web | SecCode::Tel if amount % 2 == 0 => "S".into(),
                            SecCode::Web | SecCode::Tel => "R".into(),
                            _ => disc,
                        },
                        trace_number: format!("02100002{seq:07}"),
                        addenda,
                    }
                })
                .collect();
            let mut b: Batch = batch(sec, bi as u32 + 1, entries);
            b.company_name = company_name;
            b.descriptive_date = descriptive_date;
            b
        })
        .collect();
    AchFile {
        header: header(),
        batches,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_arbitrary_text(s in any::<String>()) {
        let _ = parse_file(&s);
        let _ = parse_csv(&s);
        let _ = parse_bai2(&s);
    }

    #[test]
    fn parsers_never_panic_on_record_shaped_text(
        lines in proptest::collection::vec("[0-9 A-Z9,/\"]{0,100}", 0..30)
    ) {
        let s = lines.join("\n");
        let _ = parse_file(&s);
        let _ = parse_csv(&s);
        let _ = parse_bai2(&s);
    }

    #[test]
    fn nacha_reader_never_panics_on_mutated_files(
        which in 0usize..2,
        mutations in proptest::collection::vec(mutation(), 1..4)
    ) {
        let samples = nacha_samples();
        let text = apply(&samples[which], &mutations);
        if let Ok(file) = parse_file(&text) {
            // Whatever it accepts and the writer also accepts reaches a fixed point: the writer
            // normalises (upper case), and its output reads back to the same file.
            if let Ok(again) = write_file(&file) {
                let reparsed = parse_file(&again);
                prop_assert!(reparsed.is_ok(), "{:?}", reparsed);
                prop_assert_eq!(write_file(&reparsed.unwrap()).ok(), Some(again));
            }
        }
    }

    #[test]
    fn lockbox_readers_never_panic_on_mutated_files(
        mutations in proptest::collection::vec(mutation(), 1..4)
    ) {
        let csv = apply(CSV, &mutations);
        let _ = parse_csv(&csv);
        let bai = apply(BAI, &mutations);
        if let Ok(items) = parse_bai2(&bai) {
            prop_assert!(items.iter().all(|i| i.amount > 0));
        }
    }

    #[test]
    fn write_then_parse_round_trips(batches in proptest::collection::vec(batch_strategy(), 1..4)) {
        let file = build(batches);
        let text = write_file(&file).unwrap();
        prop_assert!(text.lines().all(|l| l.len() == 94));
        prop_assert_eq!(text.lines().count() % 10, 0);
        let parsed = parse_file(&text).unwrap();
        prop_assert_eq!(&parsed, &file);
        prop_assert_eq!(write_file(&parsed).unwrap(), text);
    }

    #[test]
    fn csv_amounts_read_exactly(dollars in 0u64..10_000_000_000, cents in 0u64..100) {
        prop_assume!(dollars + cents > 0);
        let text = format!("{}\n2026-12-01,1,1,1,1,{dollars}.{cents:02},,X\n", billpay_ach::lockbox::CSV_HEADER);
        let items = parse_csv(&text).unwrap();
        prop_assert_eq!(items[0].amount as u64, dollars * 100 + cents);
    }
}
