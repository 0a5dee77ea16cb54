//! The built-in sandbox bank that answers exported files for demos and tests.

use super::*;

/// The built-in sandbox bank: reads an origination file and answers it as the receiving banks
/// of the sandbox's ACH test accounts would, with a returns / NOC file (None when every entry
/// settles). Routing 110000000: 000111111116 R03, 000111111113 R02, 000222222227 R01,
/// 000333333335 R10, 000777777771 a C01 notice of change to 000123456789.
pub fn sandbox_bank_returns(
    origination: &str,
    now: jiff::civil::DateTime,
) -> Result<Option<String>, ServiceError> {
    let file = nacha::parse_file(origination)
        .map_err(|e| ServiceError::invalid("file", format!("not a valid NACHA file: {e}")))?;
    let mut outcomes = Vec::new();
    for b in &file.batches {
        for e in &b.entries {
            if e.transaction_code.is_return_or_noc() {
                continue;
            }
            let outcome = match (e.rdfi_routing.as_str(), e.account_number.trim()) {
                (crate::sandbox::TEST_ROUTING, "000777777771") => Some(Outcome::Correction {
                    code: "C01".into(),
                    corrected_data: "000123456789".into(),
                }),
                (routing, account) => match crate::sandbox::bank_outcome(routing, account) {
                    crate::sandbox::BankScript::Returns(code)
                    | crate::sandbox::BankScript::RefusedNow(code) => Some(Outcome::Return {
                        code: if code.as_str().starts_with('R') {
                            code.as_str().to_string()
                        } else {
                            "R03".into()
                        },
                    }),
                    crate::sandbox::BankScript::Settles => None,
                },
            };
            if let Some(o) = outcome {
                outcomes.push((e.trace_number.clone(), o));
            }
        }
    }
    if outcomes.is_empty() {
        return Ok(None);
    }
    let header = FileHeader {
        immediate_destination: file.header.immediate_destination.clone(),
        immediate_origin: crate::sandbox::TEST_ROUTING.to_string(),
        creation: now.round(jiff::Unit::Minute).unwrap_or(now),
        file_id_modifier: 'A',
        destination_name: file.header.origin_name.clone(),
        origin_name: "BILLPAY SANDBOX BANK".into(),
        reference_code: String::new(),
    };
    let prefix: String = crate::sandbox::TEST_ROUTING.chars().take(8).collect();
    nacha::build_returns_file(&file, header, &outcomes, &prefix)
        .map(Some)
        .map_err(|e| ServiceError::invalid("file", format!("the returns file: {e}")))
}
