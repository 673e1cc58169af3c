//! TradeSignal's market-data domain: companies, insiders, filings and trades. No HTTP: this crate
//! turns public market data into typed facts; serving them is the server crate's business.
//!
//! - [`form4`]: the SEC Form 3/4/5 ownership-report parser (bare XML or EDGAR `.txt`).

pub mod form4;

pub use form4::{Filing, ParseError, parse_document};
