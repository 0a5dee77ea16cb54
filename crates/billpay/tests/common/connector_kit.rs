//! The connector test kit: what every `Processor` must do, checked through the trait alone.
//! A new connector passes when `run_suite` passes against it (or against a local server that
//! answers like its API), with a `Script` naming its test cards. See docs/processors.md.

#![allow(dead_code)]

use billpay_domain::{CardExpiry, CardNumber, Currency, Cvc, DeclineCode, Money, PostalCode};
use billpay_services::processor::*;

/// The connector's test cards.
pub struct Script {
    /// A card that is approved.
    pub approved: &'static str,
    /// Cards that are declined, and the decline each must map to.
    pub declined: Vec<(&'static str, DeclineCode)>,
}

impl Script {
    /// Stripe's test cards, which the sandbox follows too.
    pub fn stripe_test_cards() -> Script {
        Script {
            approved: "4242424242424242",
            declined: vec![
                ("4000000000000002", DeclineCode::GenericDecline),
                ("4000000000009995", DeclineCode::InsufficientFunds),
                ("4000000000009987", DeclineCode::LostCard),
                ("4000000000009979", DeclineCode::StolenCard),
                ("4000000000000069", DeclineCode::ExpiredCard),
                ("4000000000000127", DeclineCode::IncorrectCvc),
                ("4000000000000119", DeclineCode::ProcessingError),
                ("4000000000006975", DeclineCode::CardVelocityExceeded),
                ("4100000000000019", DeclineCode::Fraudulent),
                ("4000000000000036", DeclineCode::IncorrectZip),
            ],
        }
    }
}

fn card_charge(key: &str, number: &str, cents: i64) -> ChargeRequest {
    let number = CardNumber::parse(number).expect("test card");
    let cvc = Cvc::parse("123", number.brand()).expect("cvc");
    ChargeRequest {
        key: key.to_string(),
        amount: Money::new(cents, Currency::USD),
        method: ChargeMethod::Card {
            number,
            expiry: CardExpiry::new(12, 2034).expect("expiry"),
            cvc: Some(cvc),
            postal_code: Some(PostalCode::parse("10001").expect("zip")),
        },
        description: "connector kit".into(),
        context: ChargeContext {
            payment_id: key.trim_start_matches("billpay-").to_string(),
            account_id: "acct_kit".into(),
            account_number: "000000000000".into(),
            ..Default::default()
        },
    }
}

fn approved_ref(o: &ChargeOutcome) -> String {
    match o {
        ChargeOutcome::Approved { reference } => reference.clone(),
        other => panic!("expected an approval, got {other:?}"),
    }
}

/// Runs every check of the kit. `run` makes keys unique to this run.
pub async fn run_suite(p: &dyn Processor, script: &Script, run: &str) {
    // Approval, and the same key replayed: the same charge, not a second one.
    let k1 = format!("billpay-kit-{run}-1");
    let first = p
        .charge(&card_charge(&k1, script.approved, 5000))
        .await
        .expect("charge");
    let r1 = approved_ref(&first);
    let again = p
        .charge(&card_charge(&k1, script.approved, 5000))
        .await
        .expect("replay");
    assert_eq!(
        approved_ref(&again),
        r1,
        "a replayed key is the same charge"
    );
    assert_eq!(
        p.lookup(&k1).await.expect("lookup"),
        Lookup::Charge(ChargeOutcome::Approved {
            reference: r1.clone()
        })
    );
    assert_eq!(
        p.lookup(&format!("billpay-kit-{run}-never"))
            .await
            .expect("lookup"),
        Lookup::NotFound,
        "a key never sent is not found"
    );

    // Every decline maps onto the taxonomy, and a lookup says the same.
    for (i, (number, code)) in script.declined.iter().enumerate() {
        let key = format!("billpay-kit-{run}-d{i}");
        match p
            .charge(&card_charge(&key, number, 100))
            .await
            .expect("decline")
        {
            ChargeOutcome::Declined { code: got, .. } => assert_eq!(got, *code, "{number}"),
            other => panic!("{number}: expected {code}, got {other:?}"),
        }
        match p.lookup(&key).await.expect("lookup") {
            Lookup::Charge(ChargeOutcome::Declined { code: got, .. }) => {
                assert_eq!(got, *code, "{number} looked up")
            }
            other => panic!("{number}: lookup gave {other:?}"),
        }
    }

    // Refunds: partial, replayed, looked up, and refused past the charge.
    let rk = format!("billpay-kit-{run}-r1");
    let refund = p
        .refund(&rk, &r1, Money::new(1500, Currency::USD))
        .await
        .expect("refund");
    let RefundOutcome::Refunded { reference: rr } = refund.clone() else {
        panic!("expected a refund, got {refund:?}");
    };
    assert_eq!(
        p.refund(&rk, &r1, Money::new(1500, Currency::USD))
            .await
            .expect("replay"),
        refund,
        "a replayed refund key is the same refund"
    );
    assert_eq!(
        p.lookup_refund(&rk, &r1).await.expect("lookup refund"),
        Lookup::Refund(RefundOutcome::Refunded { reference: rr })
    );
    assert_eq!(
        p.lookup_refund(&format!("billpay-kit-{run}-r-never"), &r1)
            .await
            .expect("lookup refund"),
        Lookup::NotFound
    );
    let too_much = p
        .refund(
            &format!("billpay-kit-{run}-r2"),
            &r1,
            Money::new(3501, Currency::USD),
        )
        .await
        .expect("refund");
    assert!(
        matches!(too_much, RefundOutcome::Declined { .. }),
        "refunding more than is left is declined: {too_much:?}"
    );

    // A void of a fresh charge gives the whole amount back.
    let k2 = format!("billpay-kit-{run}-2");
    let r2 = approved_ref(
        &p.charge(&card_charge(&k2, script.approved, 2500))
            .await
            .expect("charge"),
    );
    let void = p
        .void(&format!("billpay-kit-{run}-v2"), &r2)
        .await
        .expect("void");
    assert!(matches!(void, RefundOutcome::Refunded { .. }), "{void:?}");
    assert!(!p.name().is_empty());
}
