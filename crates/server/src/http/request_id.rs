//! `X-Request-Id`: a safe id set by a trusted proxy is kept (so the proxy's logs correlate end to end);
//! anything else — including any id sent by a client directly — is replaced by a fresh UUIDv7, so an
//! attacker cannot choose the id that identifies their requests in logs and the audit trail. The id is
//! in the request extensions, every log line of the request and every response.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;

use super::client::ProxyTrust;
use axum::response::Response;

pub const HEADER: &str = "x-request-id";

#[derive(Debug, Clone)]
pub struct RequestId(pub Arc<str>);

impl RequestId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// 1–64 characters of `A-Z a-z 0-9 . _ : -`: nothing that could break a log line or a header.
pub fn is_safe(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

pub async fn assign(
    State(trust): State<Arc<ProxyTrust>>,
    mut request: Request,
    next: Next,
) -> Response {
    let from_proxy = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| trust.trusts(peer.ip()));
    let incoming = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| from_proxy && is_safe(v));
    let id: Arc<str> = match incoming {
        Some(id) => Arc::from(id),
        None => Arc::from(uuid::Uuid::now_v7().to_string()),
    };
    let header = HeaderValue::from_str(&id).ok();
    if let Some(value) = &header {
        request.headers_mut().insert(HEADER, value.clone());
    }
    request.extensions_mut().insert(RequestId(id));
    let mut response = next.run(request).await;
    if let Some(value) = header {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_are_echoed() {
        assert!(is_safe("0192f1c2-7a1b-7c3d-9e8f-123456789abc"));
        assert!(is_safe("lb.trace:42_a"));
        assert!(!is_safe(""));
        assert!(!is_safe(&"a".repeat(65)));
        assert!(!is_safe("abc\r\nX-Evil: 1"));
        assert!(!is_safe("<script>"));
        assert!(!is_safe("id with space"));
    }
}
