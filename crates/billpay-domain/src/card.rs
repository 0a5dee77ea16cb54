//! Payment card validation: number (brand + Luhn), security code, expiry and
//! billing postal code.
//!
//! Card numbers and security codes are held in [`SecretString`]s: they never
//! appear in `Debug` output or in error messages.

use std::fmt;

use crate::check_digit::luhn_valid;
use crate::decline::Language;
use crate::secret::SecretString;
use crate::strip_separators;

/// A card network billpay accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CardBrand {
    /// Visa.
    Visa,
    /// Mastercard.
    Mastercard,
    /// American Express.
    Amex,
    /// Discover.
    Discover,
}

impl CardBrand {
    /// Every accepted brand.
    pub const ALL: [CardBrand; 4] = [
        CardBrand::Visa,
        CardBrand::Mastercard,
        CardBrand::Amex,
        CardBrand::Discover,
    ];

    /// Stable lowercase identifier: "visa", "mastercard", "amex", "discover".
    pub fn as_str(&self) -> &'static str {
        match self {
            CardBrand::Visa => "visa",
            CardBrand::Mastercard => "mastercard",
            CardBrand::Amex => "amex",
            CardBrand::Discover => "discover",
        }
    }

    /// Parses an identifier from [`CardBrand::as_str`] or a display name,
    /// case-insensitively ("Visa", "American Express", "american_express").
    pub fn parse(s: &str) -> Option<CardBrand> {
        let s = s.trim();
        CardBrand::ALL.into_iter().find(|b| {
            s.eq_ignore_ascii_case(b.as_str())
                || s.eq_ignore_ascii_case(b.display_name())
                || (*b == CardBrand::Amex && s.eq_ignore_ascii_case("american_express"))
        })
    }

    /// Name for customers: "Visa", "Mastercard", "American Express", "Discover".
    pub fn display_name(&self) -> &'static str {
        match self {
            CardBrand::Visa => "Visa",
            CardBrand::Mastercard => "Mastercard",
            CardBrand::Amex => "American Express",
            CardBrand::Discover => "Discover",
        }
    }

    /// Digits in the security code: 4 for American Express, 3 for the others.
    pub fn cvc_len(&self) -> usize {
        match self {
            CardBrand::Amex => 4,
            _ => 3,
        }
    }

    /// The brand as read aloud by the IVR. Brand names are not translated, so
    /// both languages use the display name.
    pub fn spoken(&self, lang: Language) -> &'static str {
        match lang {
            Language::En | Language::Es => self.display_name(),
        }
    }

    /// Whether a card number of `len` digits is possible for this brand.
    pub fn accepts_length(&self, len: usize) -> bool {
        match self {
            CardBrand::Visa => matches!(len, 13 | 16 | 19),
            CardBrand::Mastercard => len == 16,
            CardBrand::Amex => len == 15,
            CardBrand::Discover => (16..=19).contains(&len),
        }
    }

    fn lengths_text(&self) -> &'static str {
        match self {
            CardBrand::Visa => "13, 16 or 19",
            CardBrand::Mastercard => "16",
            CardBrand::Amex => "15",
            CardBrand::Discover => "16 to 19",
        }
    }

    /// Detects the brand from the issuer identification number (leading
    /// digits) of an all-digit string.
    fn detect(digits: &str) -> Option<CardBrand> {
        let prefix = |n: usize| digits.get(..n).and_then(|p| p.parse::<u32>().ok());
        let in_range =
            |n: usize, lo: u32, hi: u32| prefix(n).is_some_and(|p| (lo..=hi).contains(&p));
        if digits.starts_with('4') {
            Some(CardBrand::Visa)
        } else if digits.starts_with("34") || digits.starts_with("37") {
            Some(CardBrand::Amex)
        } else if in_range(2, 51, 55) || in_range(4, 2221, 2720) {
            Some(CardBrand::Mastercard)
        } else if digits.starts_with("6011")
            || in_range(3, 644, 649)
            || digits.starts_with("65")
            || in_range(6, 622_126, 622_925)
        {
            Some(CardBrand::Discover)
        } else {
            None
        }
    }
}

impl fmt::Display for CardBrand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.display_name())
    }
}

/// Validated PAN. Brand detection by IIN: Visa 4 (lengths 13,16,19); Mastercard
/// 51-55 and 2221-2720 (16); Amex 34,37 (15); Discover 6011, 644-649, 65,
/// 622126-622925 (16-19). Luhn. No other brands are accepted (error
/// UnsupportedBrand).
///
/// The digits live in a [`SecretString`]; `Debug` shows only the brand and the
/// last four digits.
#[derive(Clone)]
pub struct CardNumber {
    digits: SecretString,
    brand: CardBrand,
}

impl CardNumber {
    /// Parses a card number as typed, ignoring spaces and dashes.
    ///
    /// Errors, in the order checked: [`CardError::Empty`],
    /// [`CardError::NonDigit`], [`CardError::UnsupportedBrand`],
    /// [`CardError::Length`], [`CardError::Luhn`]. No error carries the digits.
    pub fn parse(input: &str) -> Result<CardNumber, CardError> {
        // Wrap immediately so the cleaned copy is zeroized on every path.
        let digits = SecretString::new(strip_separators(input.trim()));
        let d = digits.expose_secret();
        if d.is_empty() {
            return Err(CardError::Empty);
        }
        if !d.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::NonDigit);
        }
        let brand = CardBrand::detect(d).ok_or(CardError::UnsupportedBrand)?;
        if !brand.accepts_length(d.len()) {
            return Err(CardError::Length {
                brand,
                got: d.len(),
            });
        }
        if !luhn_valid(d) {
            return Err(CardError::Luhn);
        }
        Ok(CardNumber { digits, brand })
    }

    /// The card's brand.
    pub fn brand(&self) -> CardBrand {
        self.brand
    }

    /// The last four digits.
    pub fn last4(&self) -> String {
        let d = self.digits.expose_secret();
        d.get(d.len().saturating_sub(4)..).unwrap_or("").to_owned()
    }

    /// The first six digits (the BIN); PCI DSS allows storing and showing the
    /// BIN together with the last four.
    pub fn bin6(&self) -> String {
        self.digits
            .expose_secret()
            .get(..6)
            .unwrap_or("")
            .to_owned()
    }

    /// Customer-facing description: "Visa ending in 4242".
    pub fn masked(&self) -> String {
        format!("{} ending in {}", self.brand.display_name(), self.last4())
    }

    /// The full card number. Only for handing to the processor; never log it.
    pub fn expose_secret(&self) -> &str {
        self.digits.expose_secret()
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CardNumber({} ****{})",
            self.brand.as_str(),
            self.last4()
        )
    }
}

/// A card security code (CVC/CVV/CID) of the right length for its brand.
#[derive(Clone)]
pub struct Cvc(SecretString);

impl Cvc {
    /// Parses a security code: digits only (surrounding whitespace is ignored),
    /// exactly [`CardBrand::cvc_len`] of them.
    pub fn parse(input: &str, brand: CardBrand) -> Result<Cvc, CardError> {
        let code = SecretString::new(input.trim().to_owned());
        let c = code.expose_secret();
        if !c.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::NonDigit);
        }
        let expected = brand.cvc_len();
        if c.len() != expected {
            return Err(CardError::CvcLength {
                expected,
                got: c.len(),
            });
        }
        Ok(Cvc(code))
    }

    /// The security code. Only for handing to the processor; never log or store it.
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc([REDACTED])")
    }
}

/// A card's expiration month. The card is valid through the last day of that
/// month.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CardExpiry {
    month: u8,
    year: u16,
}

impl CardExpiry {
    /// `month` must be 1..=12. Two-digit years (0..=99) mean 2000 + yy; a
    /// four-digit year must be 2000..=2099. Otherwise [`CardError::InvalidExpiry`].
    pub fn new(month: u8, year: u16) -> Result<CardExpiry, CardError> {
        if !(1..=12).contains(&month) {
            return Err(CardError::InvalidExpiry);
        }
        let year = match year {
            0..=99 => 2000 + year,
            2000..=2099 => year,
            _ => return Err(CardError::InvalidExpiry),
        };
        Ok(CardExpiry { month, year })
    }

    /// Parses "MMYY" ("1234" is December 2034). Also accepts "MM/YY",
    /// "M/YY", "MM/YYYY" and "MMYYYY", with optional spaces.
    pub fn parse_mmyy(digits: &str) -> Result<CardExpiry, CardError> {
        let compact: String = digits.chars().filter(|c| !c.is_whitespace()).collect();
        let (month, year) = match compact.split_once('/') {
            Some((m, y)) if (1..=2).contains(&m.len()) && matches!(y.len(), 2 | 4) => (m, y),
            Some(_) => return Err(CardError::InvalidExpiry),
            None => match compact.len() {
                4 | 6 => compact
                    .split_at_checked(2)
                    .ok_or(CardError::InvalidExpiry)?,
                _ => return Err(CardError::InvalidExpiry),
            },
        };
        let number = |s: &str| -> Result<u16, CardError> {
            if s.bytes().all(|b| b.is_ascii_digit()) {
                s.parse::<u16>().map_err(|_| CardError::InvalidExpiry)
            } else {
                Err(CardError::InvalidExpiry)
            }
        };
        let month = u8::try_from(number(month)?).map_err(|_| CardError::InvalidExpiry)?;
        CardExpiry::new(month, number(year)?)
    }

    /// The month, 1..=12.
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The four-digit year.
    pub fn year(&self) -> u16 {
        self.year
    }

    /// Whether the card has expired as of `today`. A card is valid through the
    /// last day of its expiration month.
    pub fn is_expired(&self, today: jiff::civil::Date) -> bool {
        self.months_until_expiry(today) < 0
    }

    /// Whole calendar months from `today`'s month to the expiration month: 0
    /// during the expiration month, negative once expired.
    pub fn months_until_expiry(&self, today: jiff::civil::Date) -> i32 {
        let expiry = i32::from(self.year) * 12 + i32::from(self.month);
        let now = i32::from(today.year()) * 12 + i32::from(today.month());
        expiry - now
    }

    /// `Err(CardError::Expired)` if the card has expired as of `today`.
    pub fn ensure_not_expired(&self, today: jiff::civil::Date) -> Result<(), CardError> {
        if self.is_expired(today) {
            Err(CardError::Expired)
        } else {
            Ok(())
        }
    }

    /// "MM/YY", e.g. "12/34".
    pub fn format(&self) -> String {
        format!("{:02}/{:02}", self.month, self.year % 100)
    }
}

impl fmt::Display for CardExpiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

/// A billing postal code: a US ZIP code ("12345" or "12345-6789") or a
/// Canadian postal code ("K1A 0B1").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostalCode(String);

/// Letters Canada Post uses in postal codes (never D, F, I, O, Q or U).
fn ca_letter(c: char, first: bool) -> bool {
    c.is_ascii_uppercase()
        && !matches!(c, 'D' | 'F' | 'I' | 'O' | 'Q' | 'U')
        && !(first && matches!(c, 'W' | 'Z'))
}

impl PostalCode {
    /// US ZIP 5 or ZIP+4 (normalised to "12345" or "12345-6789", a space or no
    /// separator before the +4 is accepted), or Canadian "A1A 1A1" (normalised
    /// to uppercase with a space; a dash or no separator is accepted).
    pub fn parse(input: &str) -> Result<PostalCode, CardError> {
        let s = input.trim().to_ascii_uppercase();
        let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
        let sep = |c: &char| matches!(c, ' ' | '-');
        // US: 12345, 123456789, 12345-6789, 12345 6789
        let us = match s.len() {
            5 if all_digits(&s) => Some(s.clone()),
            9 if all_digits(&s) => s.get(..5).zip(s.get(5..)).map(|(h, t)| format!("{h}-{t}")),
            10 => match (s.get(..5), s.get(5..6), s.get(6..)) {
                (Some(h), Some(" " | "-"), Some(t)) if all_digits(h) && all_digits(t) => {
                    Some(format!("{h}-{t}"))
                }
                _ => None,
            },
            _ => None,
        };
        if let Some(code) = us {
            return Ok(PostalCode(code));
        }
        // Canada: A1A1A1, A1A 1A1, A1A-1A1
        let chars: Vec<char> = s.chars().collect();
        let compact: Vec<char> = match chars.as_slice() {
            [a, b, c, s, d, e, f] if sep(s) => vec![*a, *b, *c, *d, *e, *f],
            [_, _, _, _, _, _] => chars.clone(),
            _ => return Err(CardError::InvalidPostalCode),
        };
        match compact.as_slice() {
            [a, b, c, d, e, f]
                if ca_letter(*a, true)
                    && b.is_ascii_digit()
                    && ca_letter(*c, false)
                    && d.is_ascii_digit()
                    && ca_letter(*e, false)
                    && f.is_ascii_digit() =>
            {
                Ok(PostalCode(format!("{a}{b}{c} {d}{e}{f}")))
            }
            _ => Err(CardError::InvalidPostalCode),
        }
    }

    /// The normalised code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first five digits of a US ZIP code; a Canadian code whole.
    pub fn zip5(&self) -> &str {
        if self.is_us() {
            self.0.get(..5).unwrap_or(&self.0)
        } else {
            &self.0
        }
    }

    /// Whether this is a US ZIP code (as opposed to a Canadian postal code).
    pub fn is_us(&self) -> bool {
        self.0.starts_with(|c: char| c.is_ascii_digit())
    }
}

impl fmt::Display for PostalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why card details were rejected. Messages are written for the cardholder and
/// never contain the card's digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    /// No card number was entered.
    #[error("Please enter a card number.")]
    Empty,
    /// Something other than digits (and spaces or dashes in a card number) was entered.
    #[error("Card numbers and security codes can contain only digits.")]
    NonDigit,
    /// The number does not belong to an accepted card network.
    #[error(
        "That card type is not accepted. Please use Visa, Mastercard, American Express or Discover."
    )]
    UnsupportedBrand,
    /// The number has the wrong number of digits for its brand.
    #[error("{} card numbers are {} digits long, but {got} digits were entered.", brand.display_name(), brand.lengths_text())]
    Length {
        /// The brand detected from the leading digits.
        brand: CardBrand,
        /// Digits entered.
        got: usize,
    },
    /// The Luhn check failed: the number has a typo.
    #[error("That card number is not valid (check the digits).")]
    Luhn,
    /// The security code has the wrong number of digits.
    #[error("{}", cvc_length_message(*expected))]
    CvcLength {
        /// Digits the brand uses.
        expected: usize,
        /// Digits entered.
        got: usize,
    },
    /// The expiration date is not a real month.
    #[error("That expiration date is not valid. Please enter it as MM/YY.")]
    InvalidExpiry,
    /// The card is past its expiration month.
    #[error("That card has expired.")]
    Expired,
    /// The billing postal code is not a valid US ZIP or Canadian postal code.
    #[error(
        "Please enter a valid ZIP code (like 12345 or 12345-6789) or Canadian postal code (like K1A 0B1)."
    )]
    InvalidPostalCode,
}

fn cvc_length_message(expected: usize) -> String {
    if expected == 4 {
        "The security code for American Express is 4 digits.".to_owned()
    } else {
        format!("The security code for this card is {expected} digits.")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;
    use proptest::prelude::*;

    #[test]
    fn brand_strings() {
        for b in CardBrand::ALL {
            assert_eq!(CardBrand::parse(b.as_str()), Some(b));
            assert_eq!(CardBrand::parse(b.display_name()), Some(b));
            assert_eq!(b.spoken(Language::Es), b.display_name());
        }
        assert_eq!(CardBrand::parse("VISA"), Some(CardBrand::Visa));
        assert_eq!(CardBrand::parse("american_express"), Some(CardBrand::Amex));
        assert_eq!(CardBrand::parse("jcb"), None);
        assert_eq!(CardBrand::Amex.cvc_len(), 4);
        assert_eq!(CardBrand::Visa.cvc_len(), 3);
    }

    #[test]
    fn brand_detection_edges() {
        let d = |s: &str| CardBrand::detect(s);
        assert_eq!(d("2221000000000009"), Some(CardBrand::Mastercard));
        assert_eq!(d("2720990000000000"), Some(CardBrand::Mastercard));
        assert_eq!(d("2220990000000000"), None);
        assert_eq!(d("2721000000000000"), None);
        assert_eq!(d("5000000000000000"), None);
        assert_eq!(d("5600000000000000"), None);
        assert_eq!(d("6440000000000000"), Some(CardBrand::Discover));
        assert_eq!(d("6430000000000000"), None);
        assert_eq!(d("6221260000000000"), Some(CardBrand::Discover));
        assert_eq!(d("6229250000000000"), Some(CardBrand::Discover));
        assert_eq!(d("6221250000000000"), None);
        assert_eq!(d("6229260000000000"), None);
        assert_eq!(d("6500000000000000"), Some(CardBrand::Discover));
        assert_eq!(d("3530111333300000"), None); // JCB
        assert_eq!(d("30569309025904"), None); // Diners
        assert_eq!(d("622"), None);
    }

    #[test]
    fn card_number_errors() {
        assert_eq!(CardNumber::parse("").unwrap_err(), CardError::Empty);
        assert_eq!(CardNumber::parse(" - ").unwrap_err(), CardError::Empty);
        assert_eq!(
            CardNumber::parse("4242x42424242424").unwrap_err(),
            CardError::NonDigit
        );
        assert_eq!(
            CardNumber::parse("3530111333300000").unwrap_err(),
            CardError::UnsupportedBrand
        );
        assert_eq!(
            CardNumber::parse("424242424242").unwrap_err(),
            CardError::Length {
                brand: CardBrand::Visa,
                got: 12
            }
        );
        assert_eq!(
            CardNumber::parse("4242424242424241").unwrap_err(),
            CardError::Luhn
        );
        let n = CardNumber::parse("4242 4242-4242 4242").unwrap();
        assert_eq!(n.expose_secret(), "4242424242424242");
        assert_eq!(n.last4(), "4242");
        assert_eq!(n.bin6(), "424242");
        assert_eq!(n.masked(), "Visa ending in 4242");
        assert_eq!(format!("{n:?}"), "CardNumber(visa ****4242)");
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            CardError::Luhn.to_string(),
            "That card number is not valid (check the digits)."
        );
        assert_eq!(CardError::Expired.to_string(), "That card has expired.");
        assert_eq!(
            CardError::CvcLength {
                expected: 4,
                got: 3
            }
            .to_string(),
            "The security code for American Express is 4 digits."
        );
        assert_eq!(
            CardError::Length {
                brand: CardBrand::Amex,
                got: 16
            }
            .to_string(),
            "American Express card numbers are 15 digits long, but 16 digits were entered."
        );
    }

    #[test]
    fn cvc() {
        assert_eq!(
            Cvc::parse("123", CardBrand::Visa).unwrap().expose_secret(),
            "123"
        );
        assert_eq!(
            Cvc::parse("1234", CardBrand::Amex).unwrap().expose_secret(),
            "1234"
        );
        assert_eq!(
            Cvc::parse("1234", CardBrand::Visa).unwrap_err(),
            CardError::CvcLength {
                expected: 3,
                got: 4
            }
        );
        assert_eq!(
            Cvc::parse("123", CardBrand::Amex).unwrap_err(),
            CardError::CvcLength {
                expected: 4,
                got: 3
            }
        );
        assert_eq!(
            Cvc::parse("", CardBrand::Visa).unwrap_err(),
            CardError::CvcLength {
                expected: 3,
                got: 0
            }
        );
        assert_eq!(
            Cvc::parse("12a", CardBrand::Visa).unwrap_err(),
            CardError::NonDigit
        );
        let c = Cvc::parse("987", CardBrand::Visa).unwrap();
        assert_eq!(format!("{c:?}"), "Cvc([REDACTED])");
    }

    #[test]
    fn expiry() {
        let e = CardExpiry::new(12, 34).unwrap();
        assert_eq!((e.month(), e.year()), (12, 2034));
        assert_eq!(CardExpiry::new(1, 2030).unwrap().year(), 2030);
        assert_eq!(CardExpiry::new(0, 30), Err(CardError::InvalidExpiry));
        assert_eq!(CardExpiry::new(13, 30), Err(CardError::InvalidExpiry));
        assert_eq!(CardExpiry::new(1, 100), Err(CardError::InvalidExpiry));
        assert_eq!(CardExpiry::new(1, 1999), Err(CardError::InvalidExpiry));
        assert_eq!(CardExpiry::new(1, 2100), Err(CardError::InvalidExpiry));
        assert_eq!(CardExpiry::parse_mmyy("1234"), Ok(e));
        assert_eq!(CardExpiry::parse_mmyy("12/34"), Ok(e));
        assert_eq!(CardExpiry::parse_mmyy("12 / 2034"), Ok(e));
        assert_eq!(CardExpiry::parse_mmyy("122034"), Ok(e));
        assert_eq!(CardExpiry::parse_mmyy("1/30"), CardExpiry::new(1, 2030));
        for bad in [
            "", "123", "12345", "1334", "0030", "ab34", "+1/30", "12/3", "12/", "/34",
        ] {
            assert_eq!(
                CardExpiry::parse_mmyy(bad),
                Err(CardError::InvalidExpiry),
                "{bad}"
            );
        }
        assert_eq!(e.format(), "12/34");
        assert_eq!(CardExpiry::new(3, 7).unwrap().format(), "03/07");

        let e = CardExpiry::new(6, 2030).unwrap();
        assert!(!e.is_expired(date(2030, 6, 30)));
        assert!(!e.is_expired(date(2030, 6, 1)));
        assert!(e.is_expired(date(2030, 7, 1)));
        assert!(!e.is_expired(date(2029, 12, 31)));
        assert_eq!(e.months_until_expiry(date(2030, 6, 15)), 0);
        assert_eq!(e.months_until_expiry(date(2029, 6, 15)), 12);
        assert_eq!(e.months_until_expiry(date(2030, 8, 1)), -2);
        assert_eq!(
            e.ensure_not_expired(date(2030, 7, 1)),
            Err(CardError::Expired)
        );
        assert_eq!(e.ensure_not_expired(date(2030, 6, 30)), Ok(()));
    }

    #[test]
    fn postal_codes() {
        let p = PostalCode::parse("12345").unwrap();
        assert_eq!((p.as_str(), p.zip5()), ("12345", "12345"));
        for zip4 in ["12345-6789", "123456789", " 12345 6789 "] {
            let p = PostalCode::parse(zip4).unwrap();
            assert_eq!((p.as_str(), p.zip5()), ("12345-6789", "12345"), "{zip4}");
        }
        for ca in ["K1A 0B1", "k1a0b1", "K1A-0B1", " k1a 0b1 "] {
            let p = PostalCode::parse(ca).unwrap();
            assert_eq!((p.as_str(), p.zip5()), ("K1A 0B1", "K1A 0B1"), "{ca}");
            assert!(!p.is_us());
        }
        for bad in [
            "",
            "1234",
            "123456",
            "12345-678",
            "12345--6789",
            "ABCDE",
            "K1A 0B",
            "D1A 0B1",
            "W1A 0B1",
            "K1O 0B1",
            "K1A  0B1",
            "12345_6789",
        ] {
            assert_eq!(
                PostalCode::parse(bad),
                Err(CardError::InvalidPostalCode),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn card_parsers_never_panic_or_leak(s in "[0-9 a-z/-]{0,30}") {
            if let Err(e) = CardNumber::parse(&s) {
                let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
                if digits.len() >= 3 {
                    prop_assert!(!e.to_string().contains(&digits));
                }
            }
            let _ = Cvc::parse(&s, CardBrand::Amex);
            let _ = CardExpiry::parse_mmyy(&s);
            let _ = PostalCode::parse(&s);
        }

        #[test]
        fn expiry_new_never_panics(m in any::<u8>(), y in any::<u16>()) {
            if let Ok(e) = CardExpiry::new(m, y) {
                prop_assert!((1..=12).contains(&e.month()));
                prop_assert!((2000..=2099).contains(&e.year()));
            }
        }
    }
}
