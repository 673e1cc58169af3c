//! What can be asked of the trade data: filters, whitelisted sort orders and pages. The types are
//! plain data checked at construction; the store turns them into parameterised SQL.

use crate::form4::Date;

/// Largest page a client may ask for (API.md: over 200 is a validation error).
pub const MAX_PER_PAGE: u32 = 200;
pub const DEFAULT_PER_PAGE: u32 = 50;

/// Filters of `GET /trades` and `/trades/stats`. Every field is optional; set fields all apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct TradeFilter {
    pub ticker: Option<String>,
    pub insider_cik: Option<String>,
    pub codes: Vec<String>,
    /// `'A'` or `'D'`.
    pub acquired_disposed: Option<char>,
    /// Inclusive, on `transaction_date`.
    pub since: Option<Date>,
    /// Inclusive, on `transaction_date`.
    pub until: Option<Date>,
    pub min_value_cents: Option<i64>,
    pub max_value_cents: Option<i64>,
    pub derivative: Option<bool>,
}

/// The fields `GET /trades` may sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TradeSortField {
    TransactionDate,
    FiledAt,
    Value,
    Ticker,
}

impl TradeSortField {
    pub const NAMES: &'static [&'static str] = &["transaction_date", "filed_at", "value", "ticker"];

    fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "transaction_date" => Self::TransactionDate,
            "filed_at" => Self::FiledAt,
            "value" => Self::Value,
            "ticker" => Self::Ticker,
            _ => return None,
        })
    }
}

/// A sort order: a whitelisted field and a direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TradeSort {
    pub field: TradeSortField,
    pub descending: bool,
}

impl Default for TradeSort {
    /// Newest first.
    fn default() -> Self {
        Self {
            field: TradeSortField::TransactionDate,
            descending: true,
        }
    }
}

impl TradeSort {
    /// Parses `field` or `-field`; anything outside the whitelist is `None`.
    pub fn parse(text: &str) -> Option<Self> {
        let (descending, name) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        TradeSortField::from_name(name).map(|field| Self { field, descending })
    }
}

/// A page of a listing, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PageRequest {
    page: u32,
    per_page: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            page: 1,
            per_page: DEFAULT_PER_PAGE,
        }
    }
}

impl PageRequest {
    /// `None` unless `page >= 1` and `1 <= per_page <= MAX_PER_PAGE`.
    pub fn new(page: u32, per_page: u32) -> Option<Self> {
        (page >= 1 && (1..=MAX_PER_PAGE).contains(&per_page)).then_some(Self { page, per_page })
    }

    pub fn page(self) -> u32 {
        self.page
    }

    pub fn per_page(self) -> u32 {
        self.per_page
    }

    /// Rows to skip.
    pub fn offset(self) -> i64 {
        (i64::from(self.page) - 1) * i64::from(self.per_page)
    }
}

/// Whether `text` looks like a ticker symbol: 1–10 of `A–Z 0–9 . -`, starting with a letter or
/// digit. Callers uppercase first.
pub fn is_ticker(text: &str) -> bool {
    (1..=10).contains(&text.len())
        && text
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// The strings [`is_ticker`] accepts once upper-cased, as a regular expression (the API document
/// publishes it; lower case is accepted and upper-cased).
pub const TICKER_PATTERN: &str = "^[A-Za-z0-9][A-Za-z0-9.-]{0,9}$";

/// The CIKs a query may give (zero-padded or not).
pub const CIK_PATTERN: &str = "^[0-9]{1,10}$";

/// A CIK as stored: the query's digits (1–10) zero-padded to ten, or `None`.
pub fn normalize_cik(text: &str) -> Option<String> {
    let text = text.trim();
    ((1..=10).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{text:0>10}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn the_published_patterns_are_the_checks(text in "[A-Za-z0-9.\\- ]{0,12}") {
            let ticker = regex::Regex::new(TICKER_PATTERN).unwrap();
            proptest::prop_assert_eq!(ticker.is_match(&text), is_ticker(&text.to_ascii_uppercase()));
            let cik = regex::Regex::new(CIK_PATTERN).unwrap();
            proptest::prop_assert_eq!(cik.is_match(&text), normalize_cik(&text).is_some() && text.trim() == text);
        }
    }

    #[test]
    fn sort_whitelist() {
        assert_eq!(
            TradeSort::parse("-value"),
            Some(TradeSort {
                field: TradeSortField::Value,
                descending: true
            })
        );
        assert_eq!(
            TradeSort::parse("ticker").map(|s| s.descending),
            Some(false)
        );
        for bad in [
            "",
            "-",
            "--value",
            "id; DROP TABLE x",
            "shares",
            "VALUE",
            "value ",
        ] {
            assert_eq!(TradeSort::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn pages() {
        assert!(PageRequest::new(0, 50).is_none());
        assert!(PageRequest::new(1, 201).is_none());
        assert!(PageRequest::new(1, 0).is_none());
        let p = PageRequest::new(3, 20).unwrap();
        assert_eq!(p.offset(), 40);
        assert_eq!(
            PageRequest::new(u32::MAX, 200).unwrap().offset(),
            (i64::from(u32::MAX) - 1) * 200
        );
    }

    #[test]
    fn tickers_and_ciks() {
        assert!(is_ticker("BRK.B"));
        assert!(is_ticker("SNOW"));
        assert!(!is_ticker("snow"));
        assert!(!is_ticker(""));
        assert!(!is_ticker("-X"));
        assert!(!is_ticker("ABCDEFGHIJK"));
        assert!(!is_ticker("A'B"));
        assert_eq!(normalize_cik("1750").as_deref(), Some("0000001750"));
        assert_eq!(normalize_cik("0000001750").as_deref(), Some("0000001750"));
        assert_eq!(normalize_cik("12345678901"), None);
        assert_eq!(normalize_cik("12a"), None);
    }
}
