//! Time-based one-time passwords (RFC 6238) as API.md fixes them: HMAC-SHA-1, 6 digits, 30-second
//! steps, one step of clock skew either way. This module owns the secret, the enrolment URI and its
//! QR code, and the check of a submitted code; remembering which step was used last (so that a code
//! is accepted once) is the caller's, because it must be atomic across instances.

use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};
use totp_rs::{Algorithm, Totp};
use zeroize::Zeroizing;

/// 160-bit secrets, as RFC 4226 recommends.
pub const SECRET_BYTES: usize = 20;
pub const DIGITS: usize = 6;
pub const STEP_SECS: u64 = 30;
/// Steps accepted either side of the current one (network delay, clock drift).
pub const SKEW_STEPS: u16 = 1;

/// Why a secret could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TotpError {
    #[error("a TOTP secret must be {SECRET_BYTES} bytes of base32")]
    SecretLength,
    #[error("cannot build the enrolment URI: {0}")]
    Uri(String),
    #[error("cannot draw the QR code: {0}")]
    Qr(String),
}

/// A TOTP secret; its bytes are wiped when it is dropped and never printed.
pub struct TotpSecret(Zeroizing<Vec<u8>>);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    /// A fresh random secret.
    pub fn generate() -> Self {
        Self(Zeroizing::new(crate::random::bytes(SECRET_BYTES)))
    }

    /// A secret from stored bytes (after decryption).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TotpError> {
        if bytes.len() != SECRET_BYTES {
            return Err(TotpError::SecretLength);
        }
        Ok(Self(Zeroizing::new(bytes.to_vec())))
    }

    /// A secret from the base32 text an authenticator is given.
    pub fn from_base32(text: &str) -> Result<Self, TotpError> {
        let secret = totp_rs::Secret::try_from_base32(text).map_err(|_| TotpError::SecretLength)?;
        Self::from_bytes(secret.as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn totp(&self, issuer: Option<&str>, account: &str) -> Result<Totp, TotpError> {
        // The URI format forbids ':' in the issuer and account label; nothing else needs escaping
        // here (the library percent-encodes).
        let clean = |s: &str| s.replace(':', "");
        totp_rs::Builder::new()
            .with_algorithm(Algorithm::SHA1)
            .with_digits(DIGITS as u8)
            .with_skew(SKEW_STEPS)
            .with_step_duration(STEP_SECS)
            .with_secret(self.0.to_vec())
            .with_issuer(issuer.map(clean))
            .with_account_name(clean(account))
            .build()
            .map_err(|e| TotpError::Uri(e.to_string()))
    }

    /// The secret as unpadded base32, for typing into an authenticator by hand.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(totp_rs::Secret::from(self.0.to_vec()).to_base32())
    }

    /// `otpauth://totp/{issuer}:{account}?secret=…&issuer=…` (Google's Key URI format).
    pub fn otpauth_uri(&self, issuer: &str, account: &str) -> Result<Zeroizing<String>, TotpError> {
        self.totp(Some(issuer), account)?
            .to_url()
            .map(Zeroizing::new)
            .map_err(|e| TotpError::Uri(e.to_string()))
    }

    /// The code of the step containing `unix_secs` (tests and enrolment previews).
    pub fn code_at(&self, unix_secs: u64) -> Result<String, TotpError> {
        Ok(self.totp(None, "")?.generate(unix_secs).to_string())
    }

    /// The step whose code `code` is, within the skew window around `unix_secs`; `None` for a wrong
    /// or malformed code. Codes are compared in constant time by the library. The caller must still
    /// refuse a step at or before the last one accepted.
    pub fn matching_step(&self, code: &str, unix_secs: u64) -> Option<u64> {
        if !is_code_shaped(code) {
            return None;
        }
        self.totp(None, "").ok()?.check(code, unix_secs)
    }
}

/// Six ASCII digits, nothing else.
pub fn is_code_shaped(code: &str) -> bool {
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// The step that contains `unix_secs`.
pub fn step_of(unix_secs: u64) -> u64 {
    unix_secs / STEP_SECS
}

/// An SVG image of `text` as a QR code, drawn here: the secret never goes to a third-party service.
pub fn qr_svg(text: &str) -> Result<String, TotpError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M)
        .map_err(|e| TotpError::Qr(e.to_string()))?;
    Ok(code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8 digits there; the last 6 here).
    #[test]
    fn rfc6238_vectors() {
        let secret = TotpSecret::from_bytes(b"12345678901234567890").expect("20 bytes");
        for (time, code) in [
            (59, "287082"),
            (1_111_111_109, "081804"),
            (1_111_111_111, "050471"),
            (1_234_567_890, "005924"),
            (2_000_000_000, "279037"),
        ] {
            assert_eq!(secret.code_at(time).expect("code"), code, "t={time}");
            assert_eq!(secret.matching_step(code, time), Some(step_of(time)));
        }
    }

    #[test]
    fn window_is_one_step_either_side() {
        let secret = TotpSecret::generate();
        let now = 1_800_000_015;
        let step = step_of(now);
        for offset in [-1_i64, 0, 1] {
            let at = (now as i64 + offset * STEP_SECS as i64) as u64;
            let code = secret.code_at(at).expect("code");
            assert_eq!(
                secret.matching_step(&code, now),
                Some((step as i64 + offset) as u64)
            );
        }
        for offset in [-3_i64, -2, 2, 3] {
            let at = (now as i64 + offset * STEP_SECS as i64) as u64;
            let code = secret.code_at(at).expect("code");
            // A code two steps away matches only by a one-in-a-million coincidence.
            if (-1..=1).all(|o| {
                secret
                    .code_at((now as i64 + o * STEP_SECS as i64) as u64)
                    .ok()
                    != Some(code.clone())
            }) {
                assert_eq!(secret.matching_step(&code, now), None, "offset {offset}");
            }
        }
    }

    #[test]
    fn malformed_codes_never_match() {
        let secret = TotpSecret::generate();
        let now = 1_800_000_000;
        let code = secret.code_at(now).expect("code");
        for bad in [
            "",
            "12345",
            "1234567",
            &format!(" {code}"),
            &format!("{code} "),
            "12 456",
            "١٢٣٤٥٦",
            "abcdef",
        ] {
            assert_eq!(secret.matching_step(bad, now), None, "{bad:?}");
        }
        let other = TotpSecret::generate();
        if other.code_at(now).ok() != Some(code.clone()) {
            assert_eq!(other.matching_step(&code, now), None);
        }
    }

    #[test]
    fn uri_names_issuer_and_account_and_carries_the_secret() {
        let secret = TotpSecret::from_bytes(&[0xff; SECRET_BYTES]).expect("secret");
        let uri = secret
            .otpauth_uri("TradeSignal", "ann@example.com")
            .expect("uri");
        assert!(
            uri.starts_with("otpauth://totp/TradeSignal:ann%40example.com?"),
            "{}",
            *uri
        );
        assert!(uri.contains(&format!("secret={}", *secret.to_base32())));
        assert!(uri.contains("issuer=TradeSignal"));
        assert_eq!(secret.to_base32().len(), 32);
        let back = TotpSecret::from_base32(&secret.to_base32()).expect("round trip");
        assert_eq!(back.as_bytes(), secret.as_bytes());
        assert!(TotpSecret::from_base32("not base32!").is_err());
        assert!(!format!("{secret:?}").contains("77777"));
    }

    #[test]
    fn qr_is_an_svg_document() {
        let svg = qr_svg("otpauth://totp/TradeSignal:a%40b.example?secret=AAAA&issuer=TradeSignal")
            .expect("svg");
        assert!(svg.contains("<svg"), "{svg}");
        assert!(!svg.contains("<script"));
        assert!(!svg.contains("http://") || svg.contains("http://www.w3.org/2000/svg"));
    }

    #[test]
    fn secrets_are_160_bits_and_fresh() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert!(TotpSecret::from_bytes(&[1; 19]).is_err());
    }
}
