//! Alert rules and how a new trade is matched against them. A rule names any of a ticker, an
//! insider, a set of transaction codes and a minimum value; every criterion it names must hold.

/// The stored criteria of one alert.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertRule {
    pub ticker: Option<String>,
    pub insider_cik: Option<String>,
    /// Empty means any code.
    pub codes: Vec<String>,
    pub min_value_cents: Option<i64>,
}

/// The facts of one trade a rule looks at.
#[derive(Debug, Clone, Copy)]
pub struct TradeFacts<'a> {
    pub ticker: Option<&'a str>,
    pub insider_cik: &'a str,
    pub code: &'a str,
    /// `None` when the trade has no price.
    pub value_cents: Option<i64>,
}

impl AlertRule {
    /// Whether `trade` satisfies every criterion of the rule. A minimum value never matches a
    /// trade without a price: its value is unknown, not zero.
    pub fn matches(&self, trade: &TradeFacts<'_>) -> bool {
        if let Some(ticker) = &self.ticker
            && trade.ticker != Some(ticker.as_str())
        {
            return false;
        }
        if let Some(cik) = &self.insider_cik
            && trade.insider_cik != cik
        {
            return false;
        }
        if !self.codes.is_empty() && !self.codes.iter().any(|c| c == trade.code) {
            return false;
        }
        match (self.min_value_cents, trade.value_cents) {
            (Some(min), Some(value)) => value >= min,
            (Some(_), None) => false,
            (None, _) => true,
        }
    }

    /// Whether the rule names at least one criterion (a rule without any would match every trade).
    pub fn is_narrowed(&self) -> bool {
        self.ticker.is_some()
            || self.insider_cik.is_some()
            || !self.codes.is_empty()
            || self.min_value_cents.is_some()
    }
}

/// The stored form of a code set (`"P,S"`) back to codes.
pub fn split_codes(joined: &str) -> Vec<String> {
    joined
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// The SEC's Form 4 transaction codes.
pub const TRANSACTION_CODES: &[&str] = &[
    "P", "S", "V", "A", "D", "F", "I", "M", "C", "E", "H", "O", "X", "G", "L", "W", "Z", "J", "K",
    "U",
];

/// Most codes one filter or alert may name.
pub const MAX_CODES: usize = 20;

/// Whether `code` is a Form 4 transaction code (one of the SEC's letters).
pub fn is_transaction_code(code: &str) -> bool {
    TRANSACTION_CODES.contains(&code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trade<'a>(code: &'a str, value_cents: Option<i64>) -> TradeFacts<'a> {
        TradeFacts {
            ticker: Some("SNOW"),
            insider_cik: "0001234567",
            code,
            value_cents,
        }
    }

    #[test]
    fn every_named_criterion_must_hold() {
        let rule = AlertRule {
            ticker: Some("SNOW".into()),
            insider_cik: None,
            codes: vec!["P".into(), "S".into()],
            min_value_cents: Some(100_000),
        };
        assert!(rule.matches(&trade("S", Some(100_000))));
        assert!(!rule.matches(&trade("S", Some(99_999))));
        assert!(!rule.matches(&trade("M", Some(1_000_000))));
        assert!(
            !rule.matches(&trade("P", None)),
            "unknown value is not above a minimum"
        );
        let other_ticker = TradeFacts {
            ticker: Some("AAPL"),
            ..trade("P", Some(1_000_000))
        };
        assert!(!rule.matches(&other_ticker));
        let no_ticker = TradeFacts {
            ticker: None,
            ..trade("P", Some(1_000_000))
        };
        assert!(!rule.matches(&no_ticker));
    }

    #[test]
    fn insider_rule() {
        let rule = AlertRule {
            insider_cik: Some("0001234567".into()),
            ..AlertRule::default()
        };
        assert!(rule.is_narrowed());
        assert!(rule.matches(&trade("G", None)));
        let other = TradeFacts {
            insider_cik: "0000000001",
            ..trade("G", None)
        };
        assert!(!rule.matches(&other));
        assert!(!AlertRule::default().is_narrowed());
    }

    #[test]
    fn codes() {
        assert_eq!(split_codes("P,S"), vec!["P", "S"]);
        assert!(split_codes("").is_empty());
        assert!(is_transaction_code("P"));
        assert!(!is_transaction_code("p"));
        assert!(!is_transaction_code("PS"));
    }
}
