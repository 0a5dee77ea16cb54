//! Card brand/Luhn checks on the Stripe test cards, and secret redaction.

use billpay_domain::{BankAccountNumber, CardBrand, CardError, CardNumber, Cvc, SecretString};

#[test]
fn stripe_test_cards_parse_with_the_right_brand() {
    let cases = [
        ("4242424242424242", CardBrand::Visa),
        ("4000056655665556", CardBrand::Visa),
        ("5555555555554444", CardBrand::Mastercard),
        ("2223003122003222", CardBrand::Mastercard),
        ("5200828282828210", CardBrand::Mastercard),
        ("5105105105105100", CardBrand::Mastercard),
        ("378282246310005", CardBrand::Amex),
        ("371449635398431", CardBrand::Amex),
        ("6011111111111117", CardBrand::Discover),
        ("6011981111111113", CardBrand::Discover),
    ];
    for (pan, brand) in cases {
        let card = CardNumber::parse(pan).unwrap_or_else(|e| panic!("{pan}: {e}"));
        assert_eq!(card.brand(), brand, "{pan}");
        assert_eq!(card.last4(), &pan[pan.len() - 4..]);
        assert_eq!(card.bin6(), &pan[..6]);
        assert_eq!(card.expose_secret(), pan);
    }
    assert_eq!(
        CardNumber::parse("3782 822463 10005").unwrap().masked(),
        "American Express ending in 0005"
    );
}

#[test]
fn bad_luhn_is_rejected() {
    assert_eq!(
        CardNumber::parse("4242424242424241").unwrap_err(),
        CardError::Luhn
    );
}

#[test]
fn stripe_decline_test_cards_are_valid_visa_numbers() {
    for pan in [
        "4000000000000002",
        "4000000000009995",
        "4000000000009987",
        "4000000000009979",
        "4000000000000069",
        "4000000000000127",
        "4000000000000119",
        "4000000000006975",
    ] {
        let card = CardNumber::parse(pan).unwrap_or_else(|e| panic!("{pan}: {e}"));
        assert_eq!(card.brand(), CardBrand::Visa, "{pan}");
    }
}

#[test]
fn debug_output_never_contains_secrets() {
    let pan = "4242424242424242";
    let card = CardNumber::parse(pan).unwrap();
    let dbg = format!("{card:?} {card:#?}");
    assert!(!dbg.contains(pan), "{dbg}");
    assert!(!dbg.contains("424242424242"), "{dbg}");
    assert_eq!(format!("{card:?}"), "CardNumber(visa ****4242)");

    let amex = CardNumber::parse("378282246310005").unwrap();
    assert_eq!(format!("{amex:?}"), "CardNumber(amex ****0005)");

    let cvc = Cvc::parse("7391", CardBrand::Amex).unwrap();
    let dbg = format!("{cvc:?} {cvc:#?}");
    assert!(!dbg.contains("7391"), "{dbg}");
    assert_eq!(format!("{cvc:?}"), "Cvc([REDACTED])");

    let bank = BankAccountNumber::parse("9876543216789").unwrap();
    let dbg = format!("{bank:?} {bank:#?}");
    assert!(!dbg.contains("9876543216789"), "{dbg}");
    assert!(!dbg.contains("987654321"), "{dbg}");
    assert_eq!(format!("{bank:?}"), "BankAccountNumber(****6789)");

    let secret = SecretString::from("sk_live_abcdef123456");
    let shown = format!("{secret:?} {secret:#?} {secret}");
    assert!(!shown.contains("sk_live"), "{shown}");
    assert!(!shown.contains("abcdef123456"), "{shown}");

    // Nested inside other Debug output too.
    #[derive(Debug)]
    #[allow(dead_code)]
    struct Form {
        card: CardNumber,
        cvc: Cvc,
        bank: BankAccountNumber,
        key: SecretString,
    }
    let form = Form {
        card,
        cvc,
        bank,
        key: secret,
    };
    let dbg = format!("{form:?}");
    for leaked in [pan, "7391", "9876543216789", "sk_live_abcdef123456"] {
        assert!(!dbg.contains(leaked), "{dbg}");
    }
}

#[test]
fn card_errors_never_echo_digits() {
    for input in [
        "4242424242424241",
        "424242424242",
        "9999999999999999",
        "4242-4242-4242-424x",
        "",
    ] {
        let err = CardNumber::parse(input).unwrap_err().to_string();
        assert!(!err.contains("4242"), "{err}");
        assert!(!err.contains("9999"), "{err}");
    }
}
