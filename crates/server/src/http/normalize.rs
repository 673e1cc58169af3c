//! Every error response leaves as a problem document whose `request_id` equals `X-Request-Id`, whoever
//! produced it: a handler's `ApiError`, the router (404/405), the body limit (413), the timeout (503) or
//! the panic catcher (500). Bodies that are not ours are replaced, never passed on, because their text
//! can name libraries or internals; in production the detail of every 5xx is generic.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{Map, Value};

use super::problem::{PROBLEM_JSON, default_detail, default_slug, problem_json};
use super::request_id::RequestId;

/// Response marker: an error page the web UI rendered itself (HTML for a person, built from our own
/// template and safe text), passed through instead of being replaced by a problem document.
#[derive(Debug, Clone, Copy)]
pub struct HtmlPage;

/// Problem documents we produce are small; anything larger is not ours.
const MAX_PROBLEM_BYTES: usize = 64 * 1024;

/// Renders an error page for a person: status, user-facing detail, request id, the response's CSP
/// nonce.
pub type PageRenderer = fn(StatusCode, &str, &str, &str) -> Response;

/// Headers of the original answer that describe its body (or would repeat what the page sets): not
/// carried over to the page that replaces it.
const BODY_HEADERS: [header::HeaderName; 6] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CONTENT_ENCODING,
    header::CONTENT_RANGE,
    header::ETAG,
    header::CONTENT_SECURITY_POLICY,
];

#[derive(Clone, Copy)]
pub struct ErrorPolicy {
    pub production: bool,
    /// When set, a browser navigating outside `/api/` gets errors as pages (a 404, a quota's 429,
    /// a timeout) instead of problem documents.
    pub page: Option<PageRenderer>,
}

/// Whether the client asked for a page (a browser navigating) rather than data.
pub fn accepts_html(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn is_problem(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON))
}

async fn read_problem(body: Body) -> Option<Map<String, Value>> {
    let limited = http_body_util::Limited::new(body, MAX_PROBLEM_BYTES);
    let bytes = limited.collect().await.ok()?.to_bytes();
    match serde_json::from_slice::<Value>(&bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

fn default_problem(status: StatusCode) -> Map<String, Value> {
    let text = problem_json(status, default_slug(status), default_detail(status), &[]);
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

pub async fn problems(
    State(policy): State<Arc<ErrorPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|id| id.as_str().to_string())
        .unwrap_or_default();
    let page = policy
        .page
        .filter(|_| !request.uri().path().starts_with("/api/") && accepts_html(request.headers()));
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || response.extensions().get::<HtmlPage>().is_some()
    {
        return response;
    }
    let ours = is_problem(&response);
    let (mut parts, body) = response.into_parts();
    let mut document = if ours {
        read_problem(body)
            .await
            .unwrap_or_else(|| default_problem(status))
    } else {
        default_problem(status)
    };
    if status.is_server_error() && policy.production {
        document.insert("detail".into(), Value::from(default_detail(status)));
    }
    if let Some(render) = page {
        let detail = document
            .get("detail")
            .and_then(Value::as_str)
            .unwrap_or_else(|| default_detail(status));
        let mut html = render(
            status,
            detail,
            &request_id,
            &super::headers::current_nonce(),
        );
        // Keep what the answer said beside its body (Retry-After, rate-limit and auth headers),
        // every value of a repeated header.
        let mut copied = std::collections::HashSet::new();
        for (name, value) in &parts.headers {
            if BODY_HEADERS.contains(name) {
                continue;
            }
            if copied.insert(name.clone()) {
                html.headers_mut().remove(name);
            }
            html.headers_mut().append(name.clone(), value.clone());
        }
        // An error page is never cached, and a token in its URL never leaves as a referrer.
        html.extensions_mut().insert(HtmlPage);
        html.extensions_mut().insert(super::NoStore);
        html.extensions_mut().insert(super::NoReferrer);
        return html;
    }
    document.insert("status".into(), Value::from(status.as_u16()));
    document.insert("request_id".into(), Value::from(request_id));
    let bytes = serde_json::to_vec(&Value::Object(document)).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_ENCODING);
    if !parts.headers.contains_key(header::CACHE_CONTROL) {
        parts
            .headers
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    Response::from_parts(parts, Body::from(bytes))
}
