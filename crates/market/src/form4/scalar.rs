//! Parsing of the scalar values inside the ownership XML (text, booleans, decimals, CIKs,
//! tickers, dates, codes), each strict about its syntax and reporting the element it came from.

use std::str::FromStr;

use rust_decimal::Decimal;

use super::error::ParseError;
use super::model::{AcquiredDisposed, Date, DirectIndirect};

/// Trims and collapses every run of XML whitespace (space, tab, CR, LF) to one space.
pub(crate) fn normalize_text(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for word in raw.split([' ', '\t', '\n', '\r']).filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `None` for empty text.
pub(crate) fn non_empty(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

/// An `xs:boolean`: `1`/`0`/`true`/`false` (filers use both spellings; case is forgiven).
/// Empty text is `None`, which callers read as "not stated".
pub(crate) fn boolean(text: &str, element: &'static str) -> Result<Option<bool>, ParseError> {
    match text {
        "" => Ok(None),
        "1" => Ok(Some(true)),
        "0" => Ok(Some(false)),
        t if t.eq_ignore_ascii_case("true") => Ok(Some(true)),
        t if t.eq_ignore_ascii_case("false") => Ok(Some(false)),
        _ => Err(ParseError::InvalidValue {
            element,
            expected: "a boolean (1, 0, true or false)",
        }),
    }
}

/// An `xs:decimal` (`-12.50`, `+3`, `.5`, `134018.0`), kept exact with its scale. Empty text is
/// `None`. Exponents, thousands separators and underscores are refused: the schema has none, and
/// accepting them would let a typo change a value silently.
pub(crate) fn decimal(text: &str, element: &'static str) -> Result<Option<Decimal>, ParseError> {
    if text.is_empty() {
        return Ok(None);
    }
    let invalid = ParseError::InvalidValue {
        element,
        expected: "a decimal number",
    };
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if text.len() > 64
        || int_part.len() + frac_part.len() == 0
        || !all_digits(int_part)
        || !all_digits(frac_part)
    {
        return Err(invalid);
    }
    // Why normalise ".5" and "5.": rust_decimal's parser is not documented to take every
    // xs:decimal spelling, so hand it the canonical one.
    let canonical = format!(
        "{}{}{}{}",
        if text.starts_with('-') { "-" } else { "" },
        if int_part.is_empty() { "0" } else { int_part },
        if frac_part.is_empty() { "" } else { "." },
        frac_part
    );
    Decimal::from_str(&canonical).map(Some).map_err(|_| invalid)
}

/// A CIK: 1–10 ASCII digits, returned zero-padded to 10. Empty text is `None`.
pub(crate) fn cik(text: &str, element: &'static str) -> Result<Option<String>, ParseError> {
    if text.is_empty() {
        return Ok(None);
    }
    crate::query::normalize_cik(text)
        .map(Some)
        .ok_or(ParseError::InvalidValue {
            element,
            expected: "a CIK of at most 10 digits",
        })
}

/// A trading symbol, upper-cased; `None` when empty, filed as a stand-in such as `NONE` or `N/A`, or
/// not a symbol at all (see [`crate::query::is_ticker`]): it is shown, filtered on and put in links.
pub(crate) fn ticker(text: &str) -> Option<String> {
    let upper = text.to_ascii_uppercase();
    match upper.as_str() {
        "NONE" | "N/A" | "NA" => None,
        _ => crate::query::is_ticker(&upper).then_some(upper),
    }
}

/// A date (see [`Date::parse_iso`]). Empty text is `None`.
pub(crate) fn date(text: &str, element: &'static str) -> Result<Option<Date>, ParseError> {
    if text.is_empty() {
        return Ok(None);
    }
    Date::parse_iso(text)
        .map(Some)
        .ok_or(ParseError::InvalidValue {
            element,
            expected: "a YYYY-MM-DD date",
        })
}

/// `A` or `D`. Empty text is `None`.
pub(crate) fn acquired_disposed(
    text: &str,
    element: &'static str,
) -> Result<Option<AcquiredDisposed>, ParseError> {
    match text {
        "" => Ok(None),
        "A" => Ok(Some(AcquiredDisposed::Acquired)),
        "D" => Ok(Some(AcquiredDisposed::Disposed)),
        _ => Err(ParseError::InvalidValue {
            element,
            expected: "A or D",
        }),
    }
}

/// `D` or `I`. Empty text is `None`.
pub(crate) fn direct_indirect(
    text: &str,
    element: &'static str,
) -> Result<Option<DirectIndirect>, ParseError> {
    match text {
        "" => Ok(None),
        "D" => Ok(Some(DirectIndirect::Direct)),
        "I" => Ok(Some(DirectIndirect::Indirect)),
        _ => Err(ParseError::InvalidValue {
            element,
            expected: "D or I",
        }),
    }
}

/// A transaction code: one to four ASCII letters or digits (the SEC's codes are single
/// letters; a little slack keeps odd historical filings readable). Empty text is `None`.
pub(crate) fn transaction_code(
    text: &str,
    element: &'static str,
) -> Result<Option<String>, ParseError> {
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > 4 || !text.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ParseError::InvalidValue {
            element,
            expected: "a transaction code letter",
        });
    }
    Ok(Some(text.to_ascii_uppercase()))
}

/// The document types this parser reads.
pub(crate) fn document_type(text: &str, element: &'static str) -> Result<String, ParseError> {
    match text {
        "3" | "3/A" | "4" | "4/A" | "5" | "5/A" => Ok(text.to_owned()),
        _ => Err(ParseError::InvalidValue {
            element,
            expected: "one of 3, 3/A, 4, 4/A, 5, 5/A",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn text_is_trimmed_and_collapsed() {
        assert_eq!(normalize_text("  a\n\t  b  c\r\n"), "a b c");
        assert_eq!(normalize_text(" \n "), "");
    }

    #[test]
    fn booleans_take_both_spellings() {
        for (text, want) in [
            ("1", Some(true)),
            ("0", Some(false)),
            ("true", Some(true)),
            ("false", Some(false)),
            ("TRUE", Some(true)),
            ("", None),
        ] {
            assert_eq!(boolean(text, "isDirector").unwrap(), want, "{text:?}");
        }
        for bad in ["yes", "2", "t", "01"] {
            assert!(boolean(bad, "isDirector").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decimals_are_exact_and_strict() {
        assert_eq!(
            decimal("134018.0", "v").unwrap().unwrap().to_string(),
            "134018.0"
        );
        assert_eq!(decimal(".5", "v").unwrap(), Some(dec("0.5")));
        assert_eq!(decimal("5.", "v").unwrap(), Some(dec("5")));
        assert_eq!(decimal("-1.25", "v").unwrap(), Some(dec("-1.25")));
        assert_eq!(decimal("+7", "v").unwrap(), Some(dec("7")));
        assert_eq!(decimal("", "v").unwrap(), None);
        for bad in [
            "1,000",
            "1e5",
            "1_000",
            ".",
            "-",
            "1.2.3",
            "abc",
            "NaN",
            " 1",
            "١",
            "99999999999999999999999999999999",
        ] {
            assert!(decimal(bad, "v").is_err(), "{bad:?}");
        }
    }

    #[test]
    fn ciks_are_zero_padded() {
        assert_eq!(cik("1750", "c").unwrap().as_deref(), Some("0000001750"));
        assert_eq!(
            cik("0001640147", "c").unwrap().as_deref(),
            Some("0001640147")
        );
        assert!(cik("00016401471", "c").is_err());
        assert!(cik("12a", "c").is_err());
    }

    #[test]
    fn tickers_are_upper_case_and_may_be_missing() {
        assert_eq!(ticker("snow").as_deref(), Some("SNOW"));
        assert_eq!(ticker("brk.a").as_deref(), Some("BRK.A"));
        assert_eq!(ticker(""), None);
        assert_eq!(ticker("None"), None);
        assert_eq!(ticker("N/A"), None);
    }

    #[test]
    fn dates_are_validated() {
        assert_eq!(
            date("2024-02-29", "d").unwrap().unwrap().to_string(),
            "2024-02-29"
        );
        assert_eq!(
            date("2020-10-15-05:00", "d").unwrap().unwrap().to_string(),
            "2020-10-15"
        );
        assert_eq!(
            date("2020-10-15Z", "d").unwrap().unwrap().to_string(),
            "2020-10-15"
        );
        for bad in [
            "2023-02-29",
            "2023-13-01",
            "2023-1-01",
            "20230101",
            "0000-01-01",
            "2023-01-01x",
        ] {
            assert!(date(bad, "d").is_err(), "{bad:?}");
        }
        assert_eq!(
            Date::parse_compact("20250110").unwrap().to_string(),
            "2025-01-10"
        );
        assert_eq!(Date::parse_compact("2025011"), None);
        assert!("1900-02-29".parse::<Date>().is_err());
        assert!("2000-02-29".parse::<Date>().is_ok());
    }

    #[test]
    fn codes() {
        assert_eq!(transaction_code("s", "c").unwrap().as_deref(), Some("S"));
        assert!(transaction_code("S S", "c").is_err());
        assert!(acquired_disposed("X", "c").is_err());
        assert!(direct_indirect("d", "c").is_err());
        assert!(document_type("4/A", "t").is_ok());
        assert!(document_type("10-K", "t").is_err());
    }
}
