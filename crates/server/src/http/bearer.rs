//! Reading `Authorization: Bearer <token>`: one parser for access tokens and the metrics token.

use axum::http::{HeaderMap, header};

/// What the `Authorization` header holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bearer<'a> {
    Absent,
    /// Present but not `Bearer <token>` (another scheme, no token, not ASCII).
    Malformed,
    Token(&'a str),
}

pub fn bearer(headers: &HeaderMap) -> Bearer<'_> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Bearer::Absent;
    };
    let Ok(text) = value.to_str() else {
        return Bearer::Malformed;
    };
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Bearer::Token(token.trim())
        }
        _ => Bearer::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_bytes(value).expect("header"),
        );
        headers
    }

    #[test]
    fn schemes_and_shapes() {
        assert_eq!(bearer(&HeaderMap::new()), Bearer::Absent);
        assert_eq!(bearer(&with(b"Bearer abc")), Bearer::Token("abc"));
        assert_eq!(bearer(&with(b"bearer  abc ")), Bearer::Token("abc"));
        for bad in [
            &b"Basic dXNlcjpwYXNz"[..],
            b"Bearer",
            b"Bearer ",
            b"token abc",
            b"Bearer \xff",
        ] {
            assert_eq!(bearer(&with(bad)), Bearer::Malformed, "{bad:?}");
        }
    }
}
