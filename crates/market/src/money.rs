//! Money as integer cents where it must be compared or summed, and as exact decimals where it is
//! shown: no float ever touches an amount.

use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// `value` in whole cents (rounded half away from zero), or `None` if it does not fit an `i64`.
pub fn to_cents(value: Decimal) -> Option<i64> {
    value
        .checked_mul(Decimal::ONE_HUNDRED)?
        .round_dp_with_strategy(0, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
        .to_i64()
}

/// The largest trade value stored as cents ($100 billion, far above any real insider trade). A
/// larger value — a typo in a filing, or a crafted one — keeps its exact decimal text but gets no
/// cents, so it cannot overflow the sums of `/trades/stats` or skew value filters.
pub const MAX_TRADE_VALUE_CENTS: i64 = 10_000_000_000_000;

/// A trade value in cents for filtering, sorting and sums, or `None` when implausible.
pub fn trade_value_cents(value: Decimal) -> Option<i64> {
    to_cents(value).filter(|cents| (0..=MAX_TRADE_VALUE_CENTS).contains(cents))
}

/// Cents as a decimal with two places (`12345` → `123.45`).
pub fn from_cents(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

/// Most digits before the decimal point: any such amount fits in cents without overflow, so the
/// documented pattern and the parser accept exactly the same strings.
pub const MAX_DOLLAR_DIGITS: usize = 16;

/// The strings [`parse_dollars`] accepts, as a regular expression (the API document publishes it).
pub const DOLLARS_PATTERN: &str = r"^[0-9]{1,16}(\.[0-9]{1,2})?$";

/// Parses a non-negative dollar amount such as `1000`, `1000.5` or `1000.25` (at most 16 digits and
/// two decimal places; no sign, exponent, separators or surrounding spaces) into cents.
pub fn parse_dollars(text: &str) -> Option<i64> {
    if text.is_empty() || text.len() > MAX_DOLLAR_DIGITS + 3 {
        return None;
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    if whole.is_empty()
        || whole.len() > MAX_DOLLAR_DIGITS
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || fraction.len() > 2
        || !fraction.bytes().all(|b| b.is_ascii_digit())
        || (text.contains('.') && fraction.is_empty())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let mut cents: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse().ok()?
    };
    if fraction.len() == 1 {
        cents *= 10;
    }
    whole.checked_mul(100)?.checked_add(cents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::str::FromStr;

    #[test]
    fn cents_round_trip() {
        assert_eq!(
            to_cents(Decimal::from_str("100354.50").unwrap()),
            Some(10_035_450)
        );
        assert_eq!(to_cents(Decimal::from_str("0.005").unwrap()), Some(1));
        assert_eq!(from_cents(10_035_450).to_string(), "100354.50");
        assert_eq!(to_cents(Decimal::MAX), None);
        assert_eq!(
            trade_value_cents(Decimal::from(100_000_000_000i64)),
            Some(MAX_TRADE_VALUE_CENTS)
        );
        assert_eq!(trade_value_cents(Decimal::from(100_000_000_001i64)), None);
        assert_eq!(trade_value_cents(Decimal::from(-1)), None);
    }

    #[test]
    fn dollars_parse_strictly() {
        assert_eq!(parse_dollars("1000"), Some(100_000));
        assert_eq!(parse_dollars("1000.5"), Some(100_050));
        assert_eq!(parse_dollars("0.07"), Some(7));
        for bad in [
            "",
            "-1",
            "+1",
            "1e3",
            "1,000",
            "1.",
            ".5",
            "1.234",
            "abc",
            "NaN",
            " ",
            " 5",
            "5 ",
            "99999999999999999999",
            "12345678901234567",
        ] {
            assert_eq!(parse_dollars(bad), None, "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn dollars_never_panic(text in ".{0,40}") {
            let _ = parse_dollars(&text);
        }

        #[test]
        fn the_published_pattern_is_the_parser(text in "[0-9. a-]{0,22}") {
            let pattern = regex::Regex::new(DOLLARS_PATTERN).unwrap();
            prop_assert_eq!(pattern.is_match(&text), parse_dollars(&text).is_some(), "{:?}", text);
        }

        #[test]
        fn dollars_match_decimal(cents in 0i64..1_000_000_000_000) {
            let shown = from_cents(cents).to_string();
            prop_assert_eq!(parse_dollars(&shown), Some(cents));
        }
    }
}
