//! Access tokens: HS256 JWTs (`typ: at+jwt`, RFC 9068) signed by the newest key of a ring and verified
//! by any key in it, so keys rotate without logging anyone out. Verification pins the algorithm, checks
//! `typ`, `kid`, issuer, audience, expiry and not-before (small leeway), requires every claim, refuses
//! headers that point elsewhere for keys (`jku`, `x5u`, `jwk` — never fetched), and refuses oversized
//! tokens before parsing.

use std::collections::HashSet;
use std::sync::Arc;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::keys::{self, KeyRing};

/// Larger tokens are refused unparsed (ours are well under 1 KiB).
pub const MAX_TOKEN_BYTES: usize = 4096;
pub const TYP: &str = "at+jwt";
const LEEWAY_SECS: u64 = 30;

/// The claims of an access token. `sv` is the session's token version: bumping it invalidates every
/// access token of the session at once (role or tier change) without ending the session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub sid: String,
    pub jti: String,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
    pub auth_time: u64,
    pub amr: Vec<String>,
    pub role: String,
    pub tier: String,
    pub fgp: String,
    pub sv: u64,
    /// Whether the email was verified when the token was issued (unverified users reach only `/auth`).
    pub evf: bool,
}

/// Why a token was refused. Callers answer 401 for every variant; the variant is for logs and tests.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("token too large")]
    TooLarge,
    #[error("token is not a JWT")]
    Malformed,
    #[error("algorithm not allowed")]
    Algorithm,
    #[error("wrong token type")]
    Type,
    #[error("unknown key id")]
    UnknownKey,
    #[error("token header refers to external keys")]
    ExternalKey,
    #[error("signature or claims invalid: {0}")]
    Invalid(String),
    #[error("token expired")]
    Expired,
    #[error("signing failed: {0}")]
    Signing(String),
}

/// Issues and verifies access tokens with one key ring.
#[derive(Clone)]
pub struct JwtCodec {
    ring: Arc<KeyRing>,
    issuer: String,
    audience: String,
}

impl JwtCodec {
    pub fn new(ring: Arc<KeyRing>, issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            ring,
            issuer: issuer.into(),
            audience: audience.into(),
        }
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// Signs `claims` with the active key.
    pub fn issue(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        let active = self.ring.active();
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some(TYP.to_string());
        header.kid = Some(active.id.clone());
        let key = EncodingKey::from_secret(keys::material(active))
            .map_err(|e| TokenError::Signing(e.to_string()))?;
        jsonwebtoken::encode(&header, claims, &key).map_err(|e| TokenError::Signing(e.to_string()))
    }

    /// Verifies signature and claims at the current time.
    pub fn verify(&self, token: &str) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(TokenError::TooLarge);
        }
        if token.split('.').count() != 3 {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Algorithm);
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case(TYP) || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(TokenError::Type);
        }
        if header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
        {
            return Err(TokenError::ExternalKey);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.ring.get(&kid).ok_or(TokenError::UnknownKey)?;

        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.validate_exp = true;
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.required_spec_claims = ["exp", "nbf", "iat", "iss", "aud", "sub"]
            .into_iter()
            .map(String::from)
            .collect::<HashSet<_>>();
        let decoding_key = DecodingKey::from_secret(keys::material(key))
            .map_err(|e| TokenError::Invalid(e.to_string()))?;
        let decoded = jsonwebtoken::decode::<AccessClaims>(token, &decoding_key, &validation)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid(e.to_string()),
            })?;
        Ok(decoded.claims)
    }
}

#[cfg(test)]
mod tests;
