//! Fuzz target for the parsers of credentials a client sends: API keys (`ts_live_…`), backup codes
//! and TOTP codes. Any input must be refused or accepted without a panic, and an accepted key must
//! name a lookup id of the contract's shape.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(lookup) = security::apikey::parse(text) {
        assert_eq!(lookup.len(), security::apikey::LOOKUP_LEN);
        assert!(lookup.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
    let _ = security::apikey::contains_key(text);
    if let Some(code) = security::backup_codes::normalize(text) {
        assert_eq!(code.len(), security::backup_codes::CODE_CHARS);
    }
    if security::totp::is_code_shaped(text) {
        assert_eq!(text.len(), security::totp::DIGITS);
    }
});
