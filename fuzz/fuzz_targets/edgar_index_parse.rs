//! Fuzz target for the EDGAR daily-index reader: any bytes must come back as entries or an error,
//! never a panic, and every entry must point inside `edgar/data/`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(index) = market::edgar_index::parse_daily_index(data) {
        for entry in &index.entries {
            assert!(entry.path.starts_with("edgar/data/") && !entry.path.contains(".."));
        }
    }
});
