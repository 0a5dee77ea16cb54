//! Currencies and money amounts.
//!
//! Amounts are always held as a signed 64-bit count of the currency's minor
//! units (cents for USD, yen for JPY). There is no floating point anywhere:
//! amounts are parsed from and formatted to text with integer arithmetic, and
//! every operation that could overflow is checked.

use std::fmt;

use crate::decline::Language;

/// The largest number of parts [`Money::split`] accepts.
///
/// Splitting allocates one amount per part, so the count is bounded to keep a
/// bad input from exhausting memory.
pub const MAX_SPLIT_PARTS: u32 = 10_000;

/// An ISO 4217 currency supported by billpay: three uppercase ASCII letters
/// plus the number of decimal places of its minor unit (its exponent).
///
/// Only the currencies with associated constants exist; [`Currency::parse`]
/// rejects anything else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u32,
    symbol: &'static str,
}

impl Currency {
    /// United States dollar (2 decimal places).
    pub const USD: Currency = Currency::define("USD", 2, "$");
    /// Canadian dollar (2 decimal places).
    pub const CAD: Currency = Currency::define("CAD", 2, "$");
    /// Euro (2 decimal places).
    pub const EUR: Currency = Currency::define("EUR", 2, "€");
    /// Pound sterling (2 decimal places).
    pub const GBP: Currency = Currency::define("GBP", 2, "£");
    /// Mexican peso (2 decimal places).
    pub const MXN: Currency = Currency::define("MXN", 2, "$");
    /// Japanese yen (no decimal places).
    pub const JPY: Currency = Currency::define("JPY", 0, "¥");

    /// Every supported currency.
    pub const ALL: [Currency; 6] = [
        Currency::USD,
        Currency::CAD,
        Currency::EUR,
        Currency::GBP,
        Currency::MXN,
        Currency::JPY,
    ];

    const fn define(code: &'static str, exponent: u32, symbol: &'static str) -> Currency {
        Currency {
            code,
            exponent,
            symbol,
        }
    }

    /// Parses a currency code, case-insensitively ("usd", "USD").
    ///
    /// Only the supported currencies are accepted; the error names the code.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let trimmed = code.trim();
        Currency::ALL
            .iter()
            .copied()
            .find(|c| c.code.eq_ignore_ascii_case(trimmed))
            .ok_or_else(|| MoneyError::UnknownCurrency(trimmed.to_owned()))
    }

    /// The ISO 4217 code, e.g. "USD".
    pub fn code(&self) -> &str {
        self.code
    }

    /// The number of decimal places of the minor unit: 2 for USD, 0 for JPY.
    pub fn exponent(&self) -> u32 {
        self.exponent
    }

    /// The display symbol: "$" for USD, CAD and MXN, "€", "£", "¥".
    pub fn symbol(&self) -> &str {
        self.symbol
    }

    /// Minor units per major unit (100 for USD, 1 for JPY).
    fn scale(&self) -> u64 {
        match self.exponent {
            0 => 1,
            1 => 10,
            2 => 100,
            _ => 1000,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

/// An amount of money: a signed count of minor units in one currency.
///
/// Money is never constructed from floating point. Arithmetic is checked and
/// refuses to mix currencies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// An amount of `minor_units` of `currency` (cents for USD).
    pub const fn new(minor_units: i64, currency: Currency) -> Money {
        Money {
            minor: minor_units,
            currency,
        }
    }

    /// An amount in US cents.
    pub const fn usd(minor_units: i64) -> Money {
        Money::new(minor_units, Currency::USD)
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// The amount as a count of minor units.
    pub fn minor_units(&self) -> i64 {
        self.minor
    }

    /// The amount's currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Whether the amount is exactly zero.
    pub fn is_zero(&self) -> bool {
        self.minor == 0
    }

    /// Whether the amount is greater than zero.
    pub fn is_positive(&self) -> bool {
        self.minor > 0
    }

    /// Whether the amount is less than zero.
    pub fn is_negative(&self) -> bool {
        self.minor < 0
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency.code.to_owned(),
                right: other.currency.code.to_owned(),
            })
        }
    }

    /// `self + other`; fails on different currencies or overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        self.minor
            .checked_add(other.minor)
            .map(|m| Money::new(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`; fails on different currencies or overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        self.same_currency(&other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|m| Money::new(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `-self`; fails only for the most negative representable amount.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.minor
            .checked_neg()
            .map(|m| Money::new(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self * n`; fails on overflow.
    pub fn checked_mul(self, n: i64) -> Result<Money, MoneyError> {
        self.minor
            .checked_mul(n)
            .map(|m| Money::new(m, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// Split into `parts` amounts that differ by at most one minor unit and sum
    /// exactly to self (earlier parts get the extra units).
    ///
    /// For a negative amount the extra units are negative, so the earlier parts
    /// are the larger in magnitude. `parts` must be between 1 and
    /// [`MAX_SPLIT_PARTS`]; otherwise the result is [`MoneyError::InvalidSplit`].
    pub fn split(self, parts: u32) -> Result<Vec<Money>, MoneyError> {
        if parts == 0 || parts > MAX_SPLIT_PARTS {
            return Err(MoneyError::InvalidSplit);
        }
        let n = i64::from(parts);
        // n >= 1, so neither division can overflow.
        let base = self.minor.checked_div(n).ok_or(MoneyError::Overflow)?;
        let remainder = self.minor.checked_rem(n).ok_or(MoneyError::Overflow)?;
        let extra_count = remainder.unsigned_abs();
        let unit = remainder.signum();
        let mut out = Vec::with_capacity(usize::try_from(parts).unwrap_or(0));
        for i in 0..u64::from(parts) {
            let minor = if i < extra_count {
                base.checked_add(unit).ok_or(MoneyError::Overflow)?
            } else {
                base
            };
            out.push(Money::new(minor, self.currency));
        }
        Ok(out)
    }

    /// A fee of `bps` basis points (hundredths of a percent) of this amount.
    ///
    /// Rounding rule: **round half up, away from zero**. The exact product
    /// `amount × bps / 10 000` is computed in 128-bit integers; when the
    /// discarded fraction is one half of a minor unit or more, the magnitude is
    /// rounded up (so 2.5¢ becomes 3¢ and -2.5¢ becomes -3¢). Fails with
    /// [`MoneyError::Overflow`] if the result does not fit.
    pub fn basis_points(self, bps: u32) -> Result<Money, MoneyError> {
        let product = i128::from(self.minor)
            .checked_mul(i128::from(bps))
            .ok_or(MoneyError::Overflow)?;
        let quotient = product.checked_div(10_000).ok_or(MoneyError::Overflow)?;
        let remainder = product.checked_rem(10_000).ok_or(MoneyError::Overflow)?;
        let rounded = if remainder.unsigned_abs() * 2 >= 10_000 {
            quotient
                .checked_add(product.signum())
                .ok_or(MoneyError::Overflow)?
        } else {
            quotient
        };
        i64::try_from(rounded)
            .map(|m| Money::new(m, self.currency))
            .map_err(|_| MoneyError::Overflow)
    }

    /// Parse "$1,234.56", "1234.56", "1234", "1,234.5", "-$5.00", "$0.07" with the
    /// currency's exponent.
    ///
    /// Accepted: optional surrounding whitespace, an optional leading minus sign
    /// (before or after the symbol), this currency's symbol, digits grouped
    /// with commas in threes (or not grouped at all), and at most `exponent`
    /// decimal places. Rejects more decimals than the exponent, bad grouping,
    /// letters, empty input and amounts too large to represent; the error says
    /// what is wrong.
    pub fn parse(text: &str, currency: Currency) -> Result<Money, MoneyError> {
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(invalid("the amount is empty"));
        }
        let mut negative = false;
        if let Some(r) = rest.strip_prefix('-') {
            negative = true;
            rest = r;
        }
        if let Some(r) = rest.strip_prefix(currency.symbol) {
            rest = r;
            if !negative && let Some(r) = rest.strip_prefix('-') {
                negative = true;
                rest = r;
            }
        }
        if rest.is_empty() {
            return Err(invalid("the amount has no digits"));
        }
        if let Some(bad) = rest
            .chars()
            .find(|c| !c.is_ascii_digit() && *c != ',' && *c != '.')
        {
            return Err(if bad.is_alphabetic() {
                invalid("the amount contains letters; enter digits only, like 1234.56")
            } else if "$€£¥".contains(bad) {
                MoneyError::Invalid(format!(
                    "the amount uses the wrong currency symbol for {}",
                    currency.code
                ))
            } else {
                MoneyError::Invalid(format!(
                    "the amount contains an unexpected character '{bad}'"
                ))
            });
        }
        let (whole, fraction) = match rest.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (rest, None),
        };
        if whole.is_empty() && fraction.is_none_or(str::is_empty) {
            return Err(invalid("the amount has no digits"));
        }
        validate_grouping(whole)?;
        let fraction = fraction.unwrap_or("");
        if fraction.contains(['.', ',']) {
            return Err(invalid(
                "the amount has more than one decimal point or a comma after the decimal point",
            ));
        }
        if rest.ends_with('.') {
            return Err(invalid("the decimal point must be followed by digits"));
        }
        let exponent = currency.exponent as usize;
        if fraction.len() > exponent {
            return Err(MoneyError::Invalid(if exponent == 0 {
                format!(
                    "{} amounts are whole numbers; remove the decimal places",
                    currency.code
                )
            } else {
                format!(
                    "the amount has too many decimal places ({} allows {exponent})",
                    currency.code
                )
            }));
        }
        let mut acc: i128 = 0;
        let padding = exponent - fraction.len();
        let digits = whole
            .bytes()
            .filter(|b| b.is_ascii_digit())
            .chain(fraction.bytes())
            .chain(std::iter::repeat_n(b'0', padding));
        for b in digits {
            acc = acc
                .checked_mul(10)
                .and_then(|a| a.checked_add(i128::from(b - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }
        if negative {
            acc = -acc;
        }
        i64::try_from(acc)
            .map(|m| Money::new(m, currency))
            .map_err(|_| MoneyError::Overflow)
    }

    /// Digits only as keyed on a phone: "8410" with exponent 2 = $84.10 (the last
    /// `exponent` digits are the cents).
    pub fn from_keyed_digits(digits: &str, currency: Currency) -> Result<Money, MoneyError> {
        if digits.is_empty() {
            return Err(invalid("no digits were entered"));
        }
        let mut acc: i64 = 0;
        for b in digits.bytes() {
            if !b.is_ascii_digit() {
                return Err(invalid("only the digits 0 to 9 can be keyed for an amount"));
            }
            acc = acc
                .checked_mul(10)
                .and_then(|a| a.checked_add(i64::from(b - b'0')))
                .ok_or(MoneyError::Overflow)?;
        }
        Ok(Money::new(acc, currency))
    }

    /// Splits the magnitude into whole major units and the minor remainder.
    fn parts(&self) -> (u64, u64) {
        let magnitude = self.minor.unsigned_abs();
        let scale = self.currency.scale();
        (magnitude / scale, magnitude % scale)
    }

    fn fraction_text(&self, minor_part: u64) -> String {
        let width = self.currency.exponent as usize;
        format!("{minor_part:0width$}")
    }

    /// Display form with symbol and thousands grouping: "$1,234.56", "-$5.00",
    /// "¥1,200".
    pub fn format(&self) -> String {
        let (major, minor) = self.parts();
        let mut out = String::new();
        if self.is_negative() {
            out.push('-');
        }
        out.push_str(self.currency.symbol);
        out.push_str(&group_thousands(major));
        if self.currency.exponent > 0 {
            out.push('.');
            out.push_str(&self.fraction_text(minor));
        }
        out
    }

    /// Plain form without symbol or grouping: "1234.56", "-5.00", "1200".
    pub fn format_plain(&self) -> String {
        let (major, minor) = self.parts();
        let sign = if self.is_negative() { "-" } else { "" };
        if self.currency.exponent > 0 {
            format!("{sign}{major}.{}", self.fraction_text(minor))
        } else {
            format!("{sign}{major}")
        }
    }

    /// Spoken form for IVR: en "84 dollars and 10 cents", es "84 dólares con 10
    /// centavos" (USD; for other currencies use the code).
    ///
    /// USD uses singular forms where needed ("1 dollar and 1 cent"), omits a
    /// zero part ("84 dollars", "10 cents") and says "minus"/"menos" for
    /// negative amounts. Other currencies are read as the plain amount followed
    /// by the code: "84.10 CAD".
    pub fn spoken(&self, lang: Language) -> String {
        if self.currency != Currency::USD {
            return format!("{} {}", self.format_plain(), self.currency.code);
        }
        let (dollars, cents) = self.parts();
        let (dollar, dollars_word, cent, cents_word, and, minus) = match lang {
            Language::En => ("dollar", "dollars", "cent", "cents", "and", "minus"),
            Language::Es => ("dólar", "dólares", "centavo", "centavos", "con", "menos"),
        };
        let dollars_text = format!(
            "{dollars} {}",
            if dollars == 1 { dollar } else { dollars_word }
        );
        let cents_text = format!("{cents} {}", if cents == 1 { cent } else { cents_word });
        let body = match (dollars, cents) {
            (_, 0) => dollars_text,
            (0, _) => cents_text,
            _ => format!("{dollars_text} {and} {cents_text}"),
        };
        if self.is_negative() {
            format!("{minus} {body}")
        } else {
            body
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format())
    }
}

fn invalid(message: &str) -> MoneyError {
    MoneyError::Invalid(message.to_owned())
}

/// Checks comma grouping of the whole-number part: either no commas at all, or a
/// first group of 1 to 3 digits followed by groups of exactly 3.
fn validate_grouping(whole: &str) -> Result<(), MoneyError> {
    if !whole.contains(',') {
        return Ok(());
    }
    let bad =
        || invalid("the amount has misplaced commas; group digits in threes, like 1,234,567.89");
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or("");
    if first.is_empty() || first.len() > 3 {
        return Err(bad());
    }
    if groups.any(|g| g.len() != 3) {
        return Err(bad());
    }
    Ok(())
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let len = digits.len();
    let mut out = String::with_capacity(len + len / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Why a money operation or parse failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The two amounts are in different currencies.
    #[error("cannot combine an amount in {left} with an amount in {right}")]
    CurrencyMismatch {
        /// Currency code of the left-hand amount.
        left: String,
        /// Currency code of the right-hand amount.
        right: String,
    },
    /// The result is too large to represent.
    #[error("the amount is too large")]
    Overflow,
    /// The currency code is not one billpay supports.
    #[error("the currency {0:?} is not supported (use USD, CAD, EUR, GBP, MXN or JPY)")]
    UnknownCurrency(String),
    /// The text is not a valid amount; the message says what is wrong.
    #[error("invalid amount: {0}")]
    Invalid(String),
    /// An amount can only be split into 1 to [`MAX_SPLIT_PARTS`] parts.
    #[error("an amount can only be split into between 1 and {MAX_SPLIT_PARTS} parts")]
    InvalidSplit,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn currency_parse_and_accessors() {
        assert_eq!(Currency::parse("usd"), Ok(Currency::USD));
        assert_eq!(Currency::parse(" JpY "), Ok(Currency::JPY));
        assert_eq!(Currency::USD.code(), "USD");
        assert_eq!(Currency::USD.exponent(), 2);
        assert_eq!(Currency::JPY.exponent(), 0);
        assert_eq!(Currency::CAD.symbol(), "$");
        assert_eq!(Currency::MXN.symbol(), "$");
        assert_eq!(Currency::EUR.symbol(), "€");
        assert_eq!(Currency::GBP.symbol(), "£");
        assert_eq!(Currency::JPY.symbol(), "¥");
        assert_eq!(Currency::GBP.to_string(), "GBP");
        let err = Currency::parse("XYZ").unwrap_err();
        assert_eq!(err, MoneyError::UnknownCurrency("XYZ".into()));
        assert!(err.to_string().contains("XYZ"));
        assert!(Currency::parse("").is_err());
    }

    #[test]
    fn predicates_and_basic_arithmetic() {
        assert!(Money::zero(Currency::USD).is_zero());
        assert!(Money::usd(1).is_positive());
        assert!(Money::usd(-1).is_negative());
        assert_eq!(Money::usd(5).checked_add(Money::usd(7)), Ok(Money::usd(12)));
        assert_eq!(Money::usd(5).checked_sub(Money::usd(7)), Ok(Money::usd(-2)));
        assert_eq!(Money::usd(5).checked_mul(-3), Ok(Money::usd(-15)));
        assert_eq!(Money::usd(5).checked_neg(), Ok(Money::usd(-5)));
        assert_eq!(
            Money::usd(i64::MAX).checked_add(Money::usd(1)),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::usd(i64::MIN).checked_neg(),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            Money::usd(1).checked_add(Money::new(1, Currency::EUR)),
            Err(MoneyError::CurrencyMismatch {
                left: "USD".into(),
                right: "EUR".into()
            })
        );
    }

    #[test]
    fn split_examples() {
        let parts = Money::usd(100).split(3).unwrap();
        assert_eq!(parts, vec![Money::usd(34), Money::usd(33), Money::usd(33)]);
        let parts = Money::usd(-100).split(3).unwrap();
        assert_eq!(
            parts,
            vec![Money::usd(-34), Money::usd(-33), Money::usd(-33)]
        );
        assert_eq!(Money::usd(5).split(1).unwrap(), vec![Money::usd(5)]);
        assert_eq!(Money::usd(5).split(0), Err(MoneyError::InvalidSplit));
        assert_eq!(
            Money::usd(5).split(MAX_SPLIT_PARTS + 1),
            Err(MoneyError::InvalidSplit)
        );
        let parts = Money::usd(i64::MIN).split(2).unwrap();
        assert_eq!(
            parts,
            vec![Money::usd(i64::MIN / 2), Money::usd(i64::MIN / 2)]
        );
    }

    #[test]
    fn basis_points_round_half_up_away_from_zero() {
        // 2.9% of $100.00
        assert_eq!(Money::usd(10_000).basis_points(290), Ok(Money::usd(290)));
        // 1% of 250 cents = 2.5 -> 3
        assert_eq!(Money::usd(250).basis_points(100), Ok(Money::usd(3)));
        assert_eq!(Money::usd(-250).basis_points(100), Ok(Money::usd(-3)));
        // 1% of 249 cents = 2.49 -> 2
        assert_eq!(Money::usd(249).basis_points(100), Ok(Money::usd(2)));
        assert_eq!(Money::usd(-249).basis_points(100), Ok(Money::usd(-2)));
        assert_eq!(Money::usd(12_345).basis_points(0), Ok(Money::usd(0)));
        assert_eq!(
            Money::usd(12_345).basis_points(10_000),
            Ok(Money::usd(12_345))
        );
        assert_eq!(
            Money::usd(i64::MAX).basis_points(20_000),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn parse_examples() {
        let usd = Currency::USD;
        assert_eq!(Money::parse("$1,234.56", usd), Ok(Money::usd(123_456)));
        assert_eq!(Money::parse("1234.56", usd), Ok(Money::usd(123_456)));
        assert_eq!(Money::parse("1234", usd), Ok(Money::usd(123_400)));
        assert_eq!(Money::parse("1,234.5", usd), Ok(Money::usd(123_450)));
        assert_eq!(Money::parse("-$5.00", usd), Ok(Money::usd(-500)));
        assert_eq!(Money::parse("$-5.00", usd), Ok(Money::usd(-500)));
        assert_eq!(Money::parse("$0.07", usd), Ok(Money::usd(7)));
        assert_eq!(Money::parse(" $.5 ", usd), Ok(Money::usd(50)));
        assert_eq!(Money::parse("1,234,567", usd), Ok(Money::usd(123_456_700)));
        assert_eq!(
            Money::parse("¥1,200", Currency::JPY),
            Ok(Money::new(1200, Currency::JPY))
        );
        assert_eq!(
            Money::parse("€3.10", Currency::EUR),
            Ok(Money::new(310, Currency::EUR))
        );

        for bad in [
            "", "   ", "$", "-", ".", "1.234", "12,34", "1,2345", ",123", "1,,234", "12a", "abc",
            "1.2.3", "5.", "1.2,3", "$$5", "€5", "--5", "5-", "1 000",
        ] {
            assert!(
                matches!(Money::parse(bad, usd), Err(MoneyError::Invalid(_))),
                "{bad:?} should be rejected"
            );
        }
        assert!(Money::parse("12.5", Currency::JPY).is_err());
        assert_eq!(
            Money::parse("99999999999999999999", usd),
            Err(MoneyError::Overflow)
        );
        let long = "9".repeat(80);
        assert_eq!(Money::parse(&long, usd), Err(MoneyError::Overflow));
        assert_eq!(
            Money::parse("-92233720368547758.08", usd),
            Ok(Money::usd(i64::MIN))
        );
        assert_eq!(
            Money::parse("92233720368547758.08", usd),
            Err(MoneyError::Overflow)
        );
        let msg = Money::parse("1.234", usd).unwrap_err().to_string();
        assert!(msg.contains("decimal places"), "{msg}");
        let msg = Money::parse("12,34", usd).unwrap_err().to_string();
        assert!(msg.contains("commas"), "{msg}");
        let msg = Money::parse("12#", usd).unwrap_err().to_string();
        assert!(msg.contains("unexpected character"), "{msg}");
        let msg = Money::parse("12x", usd).unwrap_err().to_string();
        assert!(msg.contains("letters"), "{msg}");
    }

    #[test]
    fn keyed_digits() {
        assert_eq!(
            Money::from_keyed_digits("8410", Currency::USD),
            Ok(Money::usd(8410))
        );
        assert_eq!(
            Money::from_keyed_digits("5", Currency::USD),
            Ok(Money::usd(5))
        );
        assert_eq!(
            Money::from_keyed_digits("1200", Currency::JPY),
            Ok(Money::new(1200, Currency::JPY))
        );
        assert!(Money::from_keyed_digits("", Currency::USD).is_err());
        assert!(Money::from_keyed_digits("84*10", Currency::USD).is_err());
        assert!(Money::from_keyed_digits("84.10", Currency::USD).is_err());
        assert_eq!(
            Money::from_keyed_digits(&"9".repeat(30), Currency::USD),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(Money::usd(123_456).format(), "$1,234.56");
        assert_eq!(Money::usd(-500).format(), "-$5.00");
        assert_eq!(Money::usd(7).format(), "$0.07");
        assert_eq!(Money::usd(0).format(), "$0.00");
        assert_eq!(Money::usd(100_000_000).format(), "$1,000,000.00");
        assert_eq!(Money::new(1200, Currency::JPY).format(), "¥1,200");
        assert_eq!(Money::new(-1200, Currency::JPY).format(), "-¥1,200");
        assert_eq!(Money::new(999, Currency::GBP).format(), "£9.99");
        assert_eq!(Money::usd(123_456).format_plain(), "1234.56");
        assert_eq!(Money::usd(-5).format_plain(), "-0.05");
        assert_eq!(Money::new(1200, Currency::JPY).format_plain(), "1200");
        assert_eq!(Money::usd(i64::MIN).format(), "-$92,233,720,368,547,758.08");
        assert_eq!(Money::usd(123_456).to_string(), "$1,234.56");
    }

    #[test]
    fn spoken_forms() {
        assert_eq!(
            Money::usd(8410).spoken(Language::En),
            "84 dollars and 10 cents"
        );
        assert_eq!(
            Money::usd(8410).spoken(Language::Es),
            "84 dólares con 10 centavos"
        );
        assert_eq!(Money::usd(101).spoken(Language::En), "1 dollar and 1 cent");
        assert_eq!(
            Money::usd(101).spoken(Language::Es),
            "1 dólar con 1 centavo"
        );
        assert_eq!(Money::usd(8400).spoken(Language::En), "84 dollars");
        assert_eq!(Money::usd(10).spoken(Language::Es), "10 centavos");
        assert_eq!(Money::usd(0).spoken(Language::En), "0 dollars");
        assert_eq!(Money::usd(-500).spoken(Language::En), "minus 5 dollars");
        assert_eq!(
            Money::new(8410, Currency::CAD).spoken(Language::En),
            "84.10 CAD"
        );
    }
}
