//! Redaction of card numbers in free text: the second line of defence for logs.

use std::borrow::Cow;

use crate::check_digit::luhn_valid;

/// Shortest and longest card numbers.
const PAN_LEN_MIN: usize = 13;
const PAN_LEN_MAX: usize = 19;

/// Replaces every run of 13 to 19 digits that passes the Luhn check (digits may be grouped
/// with single spaces or dashes, as people type them) by asterisks and its last four digits.
/// Text without such a run is returned unchanged and unallocated.
pub fn mask_card_numbers(text: &str) -> Cow<'_, str> {
    let bytes = text.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() || (i > 0 && bytes[i - 1].is_ascii_digit()) {
            i += 1;
            continue;
        }
        // A run: digits, with single separators between digits.
        let start = i;
        let mut end = i;
        let mut digits = String::new();
        let mut j = i;
        while j < bytes.len() {
            let b = bytes[j];
            if b.is_ascii_digit() {
                digits.push(char::from(b));
                end = j + 1;
                j += 1;
            } else if (b == b' ' || b == b'-')
                && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
                && j > start
            {
                j += 1;
            } else {
                break;
            }
        }
        if (PAN_LEN_MIN..=PAN_LEN_MAX).contains(&digits.len()) && luhn_valid(&digits) {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..start]);
            let keep = digits.len() - 4;
            o.extend(std::iter::repeat_n('*', keep));
            o.push_str(&digits[keep..]);
            copied = end;
        }
        i = end.max(i + 1);
    }
    match out {
        None => Cow::Borrowed(text),
        Some(mut o) => {
            o.push_str(&text[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_card_numbers_however_typed() {
        assert_eq!(
            mask_card_numbers("pan=4242424242424242;"),
            "pan=************4242;"
        );
        assert_eq!(
            mask_card_numbers("card 4242 4242 4242 4242 ok"),
            "card ************4242 ok"
        );
        assert_eq!(
            mask_card_numbers("amex 3782-822463-10005."),
            "amex ***********0005."
        );
        assert_eq!(
            mask_card_numbers("/api/v1/accounts/6011111111111117/x"),
            "/api/v1/accounts/************1117/x"
        );
        assert_eq!(
            mask_card_numbers("a 4242424242424242 and 5555555555554444"),
            "a ************4242 and ************4444"
        );
    }

    #[test]
    fn leaves_everything_else_alone() {
        for text in [
            "no digits",
            "4242424242424241 fails Luhn",
            "account 100000000017",
            "12 34 56",
            "2026-11-22T03:18:04.473938Z",
            "elapsed=22.924µs",
        ] {
            assert!(
                matches!(mask_card_numbers(text), Cow::Borrowed(_)),
                "{text}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_leaves_a_luhn_run(text in "[0-9 a-z.-]{0,80}") {
            let masked = mask_card_numbers(&text);
            let digits: String = masked.chars().filter(char::is_ascii_digit).collect();
            proptest::prop_assert!(digits.len() <= text.chars().filter(char::is_ascii_digit).count());
        }
    }
}
