//! API keys are never accepted from a URL: paths and query strings end up in proxy logs, browser
//! history and `Referer` headers. A request whose path or query carries anything shaped like a key
//! (after percent-decoding, repeatedly, so `%255F` hides nothing) is refused with a 401 that says so.
//! A genuine key is audited (`apikey.exposed_in_url`) so its owner can be told to rotate it; the key
//! itself is never logged (the request span and audit details show paths with keys redacted).

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use security::apikey;

use super::extract::Meta;
use crate::http::ApiError;
use crate::state::AppState;

/// Percent-decodings tried: a key encoded more often than this is not a key a client will send.
const MAX_DECODINGS: usize = 3;

/// `text` and up to `MAX_DECODINGS` percent-decodings of it.
fn decodings(text: &str) -> Vec<String> {
    let mut forms = vec![text.to_string()];
    for _ in 0..MAX_DECODINGS {
        let last = forms.last().map(String::as_str).unwrap_or_default();
        let next = percent_encoding::percent_decode_str(last)
            .decode_utf8_lossy()
            .into_owned();
        if next == last {
            break;
        }
        forms.push(next);
    }
    forms
}

/// The first key-shaped text in a request target (path and query, however encoded).
pub fn key_in_target(path_and_query: &str) -> Option<String> {
    decodings(path_and_query).into_iter().find_map(|text| {
        let start = text.find(apikey::PREFIX)?;
        Some(text[start..].chars().take(apikey::KEY_LEN).collect())
    })
}

/// `path` with anything key-shaped cut to the prefix (for logs and audit details). Borrowed, and
/// cheap, for the paths of ordinary requests.
pub fn redact_keys(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.contains(apikey::PREFIX) && !path.contains('%') {
        return std::borrow::Cow::Borrowed(path);
    }
    if key_in_target(path).is_none() {
        return std::borrow::Cow::Borrowed(path);
    }
    std::borrow::Cow::Owned(match path.find(apikey::PREFIX) {
        Some(start) => format!("{}{}[redacted]", &path[..start], apikey::PREFIX),
        // Only an encoded form holds the key: keep nothing after the first escape.
        None => format!(
            "{}[redacted]",
            &path[..path.find('%').unwrap_or(path.len())]
        ),
    })
}

/// Middleware: refuses requests with an API key in the URL.
pub async fn refuse(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let target = request
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("");
    let Some(key) = key_in_target(target) else {
        return next.run(request).await;
    };
    let (mut parts, _) = request.into_parts();
    let meta = match Meta::from_request_parts(&mut parts, &state).await {
        Ok(Meta(meta)) => meta,
        Err(_) => crate::identity::RequestMeta::default(),
    };
    state.identity.note_key_in_url(&key, &meta).await;
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "api-key-in-url",
        "API keys are accepted only in the Authorization or X-API-Key header, never in a URL. \
         This key may now be recorded in logs along the way: rotate it.",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"tradesignal\", error=\"invalid_request\""),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_however_the_url_spells_them() {
        let key = apikey::generate().key.to_string();
        let found = |target: String| key_in_target(&target);
        assert_eq!(
            found(format!("/api/v1/trades?api_key={key}")),
            Some(key.clone())
        );
        assert_eq!(
            found(format!("/x?a=1&token=Bearer%20{}", key.replace('_', "%5F"))),
            Some(key.clone())
        );
        assert_eq!(
            found(format!("/x?t={}", key.replace('_', "%255F"))),
            Some(key.clone()),
            "double encoding"
        );
        assert_eq!(
            found(format!("/api/v1/companies/{key}")),
            Some(key.clone()),
            "in the path"
        );
        assert_eq!(
            found(format!("/api/v1/companies/{}", key.replace('_', "%5F"))),
            Some(key.clone())
        );
        assert_eq!(
            found(format!("/x?a=1&{}=1", key.replace('_', "%5F"))),
            Some(key.clone()),
            "in a parameter name"
        );
        assert_eq!(found("/api/v1/trades?ticker=AAPL&page=2".into()), None);
        assert_eq!(found("/x?q=ts_live".into()), None);
        assert_eq!(found("/x?q=%zz".into()), None);
    }

    #[test]
    fn redaction_keeps_nothing_of_the_key() {
        let key = apikey::generate().key.to_string();
        let secret = &key[17..60];
        for path in [
            format!("/api/v1/companies/{key}"),
            format!("/api/v1/companies/{}", key.replace('_', "%5F")),
        ] {
            let redacted = redact_keys(&path);
            assert!(!redacted.contains(secret), "{redacted}");
            assert!(redacted.starts_with("/api/v1/companies/"), "{redacted}");
        }
        assert_eq!(redact_keys("/api/v1/trades"), "/api/v1/trades");
    }
}
