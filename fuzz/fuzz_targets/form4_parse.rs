//! Fuzz target for the Form 3/4/5 parser: any bytes, bare XML or EDGAR `.txt`, must come back as
//! a `Filing` or a `ParseError`, never a panic, a hang or unbounded memory (libFuzzer's
//! `-rss_limit_mb` and `-timeout` catch the latter two).

#![no_main]

use libfuzzer_sys::fuzz_target;
use market::form4::{current_filings, parse_document};

fuzz_target!(|data: &[u8]| {
    if let Ok(filing) = parse_document(data) {
        // Exercise what callers do next with a parsed filing, too.
        for transaction in &filing.transactions {
            let _ = transaction.value();
        }
        let _ = current_filings(vec![filing.clone(), filing]);
    }
});
