//! TradeSignal's market-data domain: companies, insiders, filings and trades. No HTTP: this crate
//! turns public market data into typed facts; serving them is the server crate's business.
//!
//! - [`form4`]: the SEC Form 3/4/5 ownership-report parser (bare XML or EDGAR `.txt`).
//! - [`edgar_index`]: EDGAR's daily form index, read into the ownership filings it lists.
//! - [`money`]: cents and exact decimals.
//! - [`alerts`]: alert rules and matching a new trade against them.
//! - [`query`]: trade filters, sort whitelist and pages.

// Why these lints, crate-wide: this crate reads third-party files (SEC filings, congressional feeds)
// and decides what leaves the system (webhook URLs); a panic on hostile input is an outage. Tests
// may still unwrap.
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo
    )
)]

pub mod alerts;
pub mod congress;
pub mod edgar_index;
pub mod form4;
pub mod money;
pub mod query;
pub mod webhook;

pub use form4::{Filing, ParseError, parse_document};
