//! No Debug, Display or error output of entries, NOC corrections or parse errors contains a
//! full account number used in the tests.

mod common;

use billpay_ach::nacha::{AchFile, Correction, Outcome, build_returns, parse_file, write_file};
use common::*;

const NOC_ACCOUNT: &str = "1234567890123";

fn assert_clean(what: &str, out: &str) {
    for secret in SECRET_ACCOUNTS.iter().chain([&NOC_ACCOUNT]) {
        assert!(!out.contains(secret), "{what} shows {secret}: {out}");
    }
}

fn returns() -> AchFile {
    let noc = |code: &str, c: Correction| Outcome::Correction {
        code: code.into(),
        corrected_data: c.corrected_data(),
    };
    build_returns(
        &debit_file(),
        header(),
        &[
            (
                "021000020000001".into(),
                Outcome::Return { code: "R01".into() },
            ),
            (
                "021000020000002".into(),
                noc("C01", Correction::AccountNumber(NOC_ACCOUNT.into())),
            ),
            (
                "021000020000003".into(),
                noc(
                    "C03",
                    Correction::RoutingAndAccount {
                        routing: "011000015".into(),
                        account: NOC_ACCOUNT.into(),
                    },
                ),
            ),
            (
                "021000020000004".into(),
                noc(
                    "C06",
                    Correction::AccountAndTransactionCode {
                        account: NOC_ACCOUNT.into(),
                        code: 37,
                    },
                ),
            ),
            (
                "021000020000005".into(),
                noc(
                    "C07",
                    Correction::RoutingAccountAndTransactionCode {
                        routing: "011000015".into(),
                        account: NOC_ACCOUNT.into(),
                        code: 37,
                    },
                ),
            ),
        ],
        "01100001",
    )
    .unwrap()
}

#[test]
fn debug_of_files_entries_and_corrections_is_masked() {
    let file = debit_file();
    assert_clean("AchFile debug", &format!("{file:?} {file:#?}"));
    for e in file.batches.iter().flat_map(|b| &b.entries) {
        let d = format!("{e:?}");
        assert_clean("Entry debug", &d);
        let last4 = &e.account_number[e.account_number.len() - 4..];
        assert!(d.contains(&format!("****{last4}")), "{d}");
    }
    let text = write_file(&returns()).unwrap();
    let parsed = parse_file(&text).unwrap();
    assert_clean("returns file debug", &format!("{parsed:?}"));
    let corrections = parsed.corrections();
    assert_eq!(corrections.len(), 4);
    assert_clean(
        "corrections debug",
        &format!("{corrections:?} {corrections:#?}"),
    );
    for c in &corrections {
        assert_clean("correction", &format!("{:?}", c.parsed));
    }
    assert_clean("returns debug", &format!("{:?}", parsed.returns()));
    let outcome = Outcome::Correction {
        code: "C01".into(),
        corrected_data: NOC_ACCOUNT.into(),
    };
    assert_clean("outcome", &format!("{outcome:?}"));
}

#[test]
fn errors_never_show_an_account_number() {
    let text = write_file(&debit_file()).unwrap();
    // Break every column of every entry line one at a time; whatever the reader says, it never
    // quotes the account.
    for (i, line) in text.lines().enumerate() {
        if !line.starts_with('6') && !line.starts_with('7') {
            continue;
        }
        for col in 0..94 {
            for bad in ['#', 'X', ' ', '9'] {
                let mut l = line.to_owned();
                l.replace_range(col..col + 1, &bad.to_string());
                let mutated: String = text
                    .lines()
                    .enumerate()
                    .map(|(j, x)| {
                        if j == i {
                            format!("{l}\n")
                        } else {
                            format!("{x}\n")
                        }
                    })
                    .collect();
                if let Err(e) = parse_file(&mutated) {
                    assert_clean("parse error", &format!("{e} {e:?}"));
                }
            }
        }
    }
    let mut file = debit_file();
    file.batches[0].entries[0].account_number = format!("{}-X", SECRET_ACCOUNTS[0]);
    let e = write_file(&file).unwrap_err();
    assert_clean("write error", &format!("{e} {e:?}"));
    file.batches[0].entries[0].account_number = format!("{}12345678", SECRET_ACCOUNTS[0]);
    let e = write_file(&file).unwrap_err();
    assert_clean("write error", &format!("{e} {e:?}"));
}

#[test]
fn corrected_data_layouts_read_back() {
    let cases = [
        ("C01", Correction::AccountNumber("12345".into()), "12345"),
        (
            "C02",
            Correction::RoutingNumber("011000015".into()),
            "011000015",
        ),
        (
            "C03",
            Correction::RoutingAndAccount {
                routing: "011000015".into(),
                account: "12345".into(),
            },
            "011000015   12345",
        ),
        (
            "C04",
            Correction::IndividualName("JANE DOE".into()),
            "JANE DOE",
        ),
        ("C05", Correction::TransactionCode(37), "37"),
        (
            "C06",
            Correction::AccountAndTransactionCode {
                account: "12345".into(),
                code: 37,
            },
            "12345               37",
        ),
        (
            "C07",
            Correction::RoutingAccountAndTransactionCode {
                routing: "011000015".into(),
                account: "12345".into(),
                code: 32,
            },
            "01100001512345            32",
        ),
        (
            "C09",
            Correction::IndividualId("ACCT10042".into()),
            "ACCT10042",
        ),
    ];
    for (code, c, data) in cases {
        assert_eq!(c.corrected_data(), data, "{code}");
        assert_eq!(Correction::parse(code, data), c, "{code}");
    }
    // Shifted layouts are read by spaces, as moov-io/ach does.
    assert_eq!(
        Correction::parse("C03", "011000015 12345"),
        Correction::RoutingAndAccount {
            routing: "011000015".into(),
            account: "12345".into()
        }
    );
    assert_eq!(
        Correction::parse("C06", "12345 37"),
        Correction::AccountAndTransactionCode {
            account: "12345".into(),
            code: 37
        }
    );
    assert_eq!(
        Correction::parse("C05", "XX"),
        Correction::Other("XX".into())
    );
    assert_eq!(
        Correction::parse("C13", "ANYTHING"),
        Correction::Other("ANYTHING".into())
    );
    assert_eq!(
        format!("{:?}", Correction::Other("000123456789".into())),
        "Other(\"****6789\")"
    );
}
