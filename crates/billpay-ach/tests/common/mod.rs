//! Fixtures shared by the integration tests.
#![allow(dead_code)]

use billpay_ach::nacha::{AchFile, Addenda, Batch, Entry, FileHeader, SecCode, TransactionCode};
use jiff::civil::{date, datetime};

/// Account numbers used in fixtures; no output may contain them.
pub const SECRET_ACCOUNTS: [&str; 5] = [
    "000123456789",
    "55512345678",
    "44400011122",
    "7778889990001",
    "987654321000",
];

pub fn header() -> FileHeader {
    FileHeader {
        immediate_destination: "021000021".into(),
        immediate_origin: "1234567890".into(),
        creation: datetime(2026, 12, 1, 9, 30, 0, 0),
        file_id_modifier: 'A',
        destination_name: "JPMORGAN CHASE".into(),
        origin_name: "CITY UTILITIES".into(),
        reference_code: "BILLPAY".into(),
    }
}

pub fn entry(tc: TransactionCode, routing: &str, account: &str, amount: i64, seq: u32) -> Entry {
    Entry {
        transaction_code: tc,
        rdfi_routing: routing.into(),
        account_number: account.into(),
        amount,
        individual_id: format!("ACCT{:05}", 10000 + seq),
        individual_name: format!("CUSTOMER {seq}"),
        discretionary_data: String::new(),
        trace_number: format!("02100002{seq:07}"),
        addenda: Vec::new(),
    }
}

pub fn batch(sec: SecCode, number: u32, entries: Vec<Entry>) -> Batch {
    Batch {
        company_name: "CITY UTILITIES".into(),
        company_discretionary_data: String::new(),
        company_id: "1234567890".into(),
        sec,
        entry_description: "UTIL PYMT".into(),
        descriptive_date: String::new(),
        effective_date: date(2026, 12, 2),
        odfi_id: "02100002".into(),
        batch_number: number,
        entries,
    }
}

/// A WEB + TEL + PPD debit file with a prenote and a payment addenda.
pub fn debit_file() -> AchFile {
    let mut web1 = entry(
        TransactionCode::CheckingDebit,
        "011000015",
        SECRET_ACCOUNTS[0],
        8410,
        1,
    );
    web1.individual_name = "JANE Q DOE".into();
    web1.discretionary_data = "S".into();
    let mut web2 = entry(
        TransactionCode::SavingsDebit,
        "091000019",
        SECRET_ACCOUNTS[1],
        125_000,
        2,
    );
    web2.discretionary_data = "R".into();
    web2.addenda.push(Addenda::Payment05 {
        info: "STATEMENT 2026-11 ACCT 10002".into(),
    });
    let mut tel = entry(
        TransactionCode::CheckingDebit,
        "026009593",
        SECRET_ACCOUNTS[2],
        4_999,
        3,
    );
    tel.discretionary_data = "S".into();
    let prenote = entry(
        TransactionCode::CheckingDebitPrenote,
        "121181976",
        SECRET_ACCOUNTS[3],
        0,
        4,
    );
    let ppd = entry(
        TransactionCode::CheckingDebit,
        "110000000",
        SECRET_ACCOUNTS[4],
        99_999,
        5,
    );
    let mut ppd_batch = batch(SecCode::Ppd, 3, vec![prenote, ppd]);
    ppd_batch.descriptive_date = "DEC 26".into();
    AchFile {
        header: header(),
        batches: vec![
            batch(SecCode::Web, 1, vec![web1, web2]),
            batch(SecCode::Tel, 2, vec![tel]),
            ppd_batch,
        ],
    }
}
