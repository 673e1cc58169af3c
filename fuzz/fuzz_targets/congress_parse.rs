//! Fuzz target for the congressional disclosure parser and the webhook URL check: any bytes must
//! come back as trades and rejections or an error, never a panic, a hang or unbounded memory.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(disclosures) = market::congress::parse_disclosures(data) {
        for trade in &disclosures.trades {
            let _ = trade.fingerprint();
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = market::congress::parse_amount_range(text);
        let _ = market::webhook::check_webhook_url(text);
    }
});
