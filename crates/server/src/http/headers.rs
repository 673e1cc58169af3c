//! Security headers on every response, including errors produced by other layers: a strict nonce-based
//! CSP for HTML (`default-src 'none'` for everything else), HSTS in production, framing, sniffing,
//! referrer and cross-origin isolation headers, and no server banner.
//!
//! Written as a tower `Layer` with every static value prepared once, and the 128-bit CSP nonce drawn
//! only when a template asks for it or an HTML response leaves, because this runs on every request.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::Response;
use security::random;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

/// The CSP nonce of this response; templates put it on their `<script>` and `<style>` tags.
#[derive(Debug, Clone)]
pub struct CspNonce(pub Arc<str>);

tokio::task_local! {
    /// The nonce of the response being produced, shared between the extractor and the layer through a
    /// task-local (the handler runs inside the layer's future): no allocation unless a page asks.
    static NONCE: OnceCell<Arc<str>>;
}

fn fresh_nonce() -> Arc<str> {
    Arc::from(random::csp_nonce())
}

/// The nonce of the response being produced (for code that renders a page without an extractor).
pub fn current_nonce() -> Arc<str> {
    // Outside the layer (never in the real router) a fresh nonce still keeps templates valid.
    NONCE
        .try_with(|cell| cell.get_or_init(fresh_nonce).clone())
        .unwrap_or_else(|_| fresh_nonce())
}

impl<S: Send + Sync> FromRequestParts<S> for CspNonce {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(_parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(CspNonce(current_nonce()))
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

/// The CSP for JSON and every other non-HTML response.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

fn reports_over_https(policy: &HeaderPolicy) -> bool {
    policy.report_uri.starts_with("https://")
}

/// The CSP for HTML with this nonce.
pub fn html_csp(policy: &HeaderPolicy, nonce: &str) -> String {
    let mut csp = format!(
        "default-src 'self'; script-src 'nonce-{nonce}' 'strict-dynamic'; style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'; report-uri {}",
        policy.report_uri
    );
    // Chromium sends Reporting API reports only to https endpoints, and ignores `report-uri` when
    // `report-to` is present: over plain http (development) only `report-uri` gets reports through.
    if reports_over_https(policy) {
        csp.push_str("; report-to csp");
    }
    if policy.strict_transport {
        csp.push_str("; upgrade-insecure-requests");
    }
    csp
}

struct Prepared {
    policy: HeaderPolicy,
    fixed: Vec<(HeaderName, HeaderValue)>,
    reporting_endpoints: Option<HeaderValue>,
}

impl Prepared {
    fn new(policy: HeaderPolicy) -> Self {
        let mut fixed = vec![
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
            (
                HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static(PERMISSIONS_POLICY),
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("same-origin"),
            ),
            (
                HeaderName::from_static("x-permitted-cross-domain-policies"),
                HeaderValue::from_static("none"),
            ),
        ];
        if policy.strict_transport {
            fixed.push((
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=63072000; includeSubDomains"),
            ));
        }
        let reporting_endpoints = reports_over_https(&policy)
            .then(|| HeaderValue::from_str(&format!("csp=\"{}\"", policy.report_uri)).ok())
            .flatten();
        Self {
            policy,
            fixed,
            reporting_endpoints,
        }
    }

    fn apply(&self, nonce: Option<Arc<str>>, response: &mut Response) {
        let no_referrer = response.extensions().get::<NoReferrer>().is_some();
        let no_store = response.extensions().get::<NoStore>().is_some();
        let html = is_html(response.headers());
        let headers = response.headers_mut();
        headers.reserve(self.fixed.len() + 4);
        if html {
            let nonce = nonce.unwrap_or_else(fresh_nonce);
            if let Ok(value) = HeaderValue::from_str(&html_csp(&self.policy, &nonce)) {
                headers.insert(header::CONTENT_SECURITY_POLICY, value);
            }
            if let Some(value) = &self.reporting_endpoints {
                headers.insert(
                    HeaderName::from_static("reporting-endpoints"),
                    value.clone(),
                );
            }
        } else {
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(API_CSP),
            );
        }
        for (name, value) in &self.fixed {
            headers.insert(name.clone(), value.clone());
        }
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static(if no_referrer {
                "no-referrer"
            } else {
                "strict-origin-when-cross-origin"
            }),
        );
        if no_store {
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        }
        headers.remove(header::SERVER);
        headers.remove(HeaderName::from_static("x-powered-by"));
    }
}

fn is_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .get(..9)
                .is_some_and(|p| p.eq_ignore_ascii_case("text/html"))
        })
}

/// The layer; see the module documentation.
#[derive(Clone)]
pub struct SecurityHeadersLayer {
    prepared: Arc<Prepared>,
}

impl SecurityHeadersLayer {
    pub fn new(policy: HeaderPolicy) -> Self {
        Self {
            prepared: Arc::new(Prepared::new(policy)),
        }
    }
}

impl<S> Layer<S> for SecurityHeadersLayer {
    type Service = SecurityHeaders<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SecurityHeaders {
            inner,
            prepared: self.prepared.clone(),
        }
    }
}

#[derive(Clone)]
pub struct SecurityHeaders<S> {
    inner: S,
    prepared: Arc<Prepared>,
}

impl<S> Service<Request> for SecurityHeaders<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = HeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        HeadersFuture {
            inner: NONCE.scope(OnceCell::new(), self.inner.call(request)),
            prepared: self.prepared.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct HeadersFuture<F> {
        #[pin]
        inner: TaskLocalFuture<OnceCell<Arc<str>>, F>,
        prepared: Arc<Prepared>,
    }
}

impl<F, E> Future for HeadersFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match this.inner.as_mut().poll(cx) {
            Poll::Ready(Ok(mut response)) => {
                let nonce = this.inner.take_value().and_then(OnceCell::into_inner);
                this.prepared.apply(nonce, &mut response);
                Poll::Ready(Ok(response))
            }
            other => other,
        }
    }
}
