//! API keys are never accepted from a URL: query strings end up in proxy logs, browser history and
//! `Referer` headers. A request whose query string carries anything shaped like a key is refused with
//! a 401 that says so, and audited (`apikey.exposed_in_url`, naming the key when it is genuine) so its
//! owner can be told to rotate it. The key itself is never logged.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use security::apikey;

use super::extract::Meta;
use crate::http::ApiError;
use crate::state::AppState;

/// The first key-shaped value in a query string (names and values, percent-decoded).
fn key_in_query(query: &str) -> Option<String> {
    if !apikey::contains_key(query) && !query.contains('%') && !query.contains('+') {
        return None;
    }
    url::form_urlencoded::parse(query.as_bytes())
        .flat_map(|(name, value)| [name.into_owned(), value.into_owned()])
        .find_map(|text| {
            let start = text.find(apikey::PREFIX)?;
            Some(text[start..].chars().take(apikey::KEY_LEN).collect())
        })
}

/// Middleware: refuses requests with an API key in the query string.
pub async fn refuse(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(key) = request.uri().query().and_then(key_in_query) else {
        return next.run(request).await;
    };
    let (mut parts, _) = request.into_parts();
    let meta = match Meta::from_request_parts(&mut parts, &state).await {
        Ok(Meta(meta)) => meta,
        Err(_) => crate::identity::RequestMeta::default(),
    };
    state.identity.note_key_in_url(Some(&key), &meta).await;
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
    fn keys_are_found_however_the_query_spells_them() {
        let key = apikey::generate().key.to_string();
        assert_eq!(key_in_query(&format!("api_key={key}")), Some(key.clone()));
        assert_eq!(
            key_in_query(&format!("a=1&token=Bearer%20{}", key.replace('_', "%5F"))),
            Some(key.clone())
        );
        assert_eq!(key_in_query(&format!("{key}=")), Some(key.clone()));
        assert_eq!(key_in_query("ticker=AAPL&page=2"), None);
        assert_eq!(key_in_query("q=ts_live"), None);
        assert_eq!(key_in_query("q=%zz"), None);
    }
}
