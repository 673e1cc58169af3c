//! Tokens: signed JWT access tokens, opaque random tokens (refresh, one-time links) stored only as
//! hashes, and the fingerprint that binds an access token to a cookie.

pub mod grace;
pub mod jwt;
pub mod opaque;

pub use jwt::{AccessClaims, JwtCodec, TokenError};
pub use opaque::{OpaqueToken, fingerprint_hash, hash_token};
