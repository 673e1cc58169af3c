//! Security headers on every response, including errors produced by other layers: a fresh CSP nonce per
//! response (strict, nonce-based policy for HTML; `default-src 'none'` for everything else), HSTS in
//! production, framing, sniffing, referrer and cross-origin isolation headers, and no server banner.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use security::random;

/// The CSP nonce of this response; templates put it on their `<script>` and `<style>` tags.
#[derive(Debug, Clone)]
pub struct CspNonce(pub Arc<str>);

impl<S: Send + Sync> FromRequestParts<S> for CspNonce {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        // The layer always inserts one; a fresh one keeps the extractor total if it is ever mounted
        // elsewhere.
        Ok(parts
            .extensions
            .get::<CspNonce>()
            .cloned()
            .unwrap_or_else(|| CspNonce(Arc::from(random::csp_nonce()))))
    }
}

/// Response marker: a page whose URL carries a token (reset, verify, unlock links) — no referrer.
#[derive(Debug, Clone, Copy)]
pub struct NoReferrer;

/// Response marker: auth, token and account responses must not be stored by any cache.
#[derive(Debug, Clone, Copy)]
pub struct NoStore;

/// What the headers depend on, fixed at start-up.
#[derive(Debug, Clone)]
pub struct HeaderPolicy {
    /// Send HSTS and `upgrade-insecure-requests` (production with an https public URL).
    pub strict_transport: bool,
    /// Absolute URL of the CSP report endpoint.
    pub report_uri: String,
}

const PERMISSIONS_POLICY: &str = "accelerometer=(), autoplay=(), camera=(), display-capture=(), \
    encrypted-media=(), fullscreen=(self), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), \
    midi=(), payment=(), publickey-credentials-get=(), screen-wake-lock=(), usb=(), xr-spatial-tracking=()";

/// The CSP for HTML with this nonce.
pub fn html_csp(policy: &HeaderPolicy, nonce: &str) -> String {
    let mut csp = format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic'; style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'; report-uri {}; report-to csp",
        policy.report_uri
    );
    if policy.strict_transport {
        csp.push_str("; upgrade-insecure-requests");
    }
    csp
}

/// The CSP for JSON and every other non-HTML response.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("text/html")
        })
}

pub async fn apply(
    State(policy): State<Arc<HeaderPolicy>>,
    mut request: Request,
    next: Next,
) -> Response {
    let nonce = random::csp_nonce();
    request
        .extensions_mut()
        .insert(CspNonce(Arc::from(nonce.as_str())));
    let mut response = next.run(request).await;
    let no_referrer = response.extensions().get::<NoReferrer>().is_some();
    let no_store = response.extensions().get::<NoStore>().is_some();
    let html = is_html(response.headers());
    let headers = response.headers_mut();

    let csp = if html {
        html_csp(&policy, &nonce)
    } else {
        API_CSP.to_string()
    };
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    if html && let Ok(value) = HeaderValue::from_str(&format!("csp=\"{}\"", policy.report_uri)) {
        headers.insert("reporting-endpoints", value);
    }
    if policy.strict_transport {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=63072000; includeSubDomains"),
        );
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static(if no_referrer {
            "no-referrer"
        } else {
            "strict-origin-when-cross-origin"
        }),
    );
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static(PERMISSIONS_POLICY),
    );
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(
        "x-permitted-cross-domain-policies",
        HeaderValue::from_static("none"),
    );
    if no_store {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    }
    headers.remove(header::SERVER);
    headers.remove("x-powered-by");
    response
}
