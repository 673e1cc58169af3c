//! Benchmark for `scripts/bench`: the in-process cost of the security-headers layer, without sockets or a
//! load generator. It drives the same `/healthz` router with and without the layer through
//! `tower::ServiceExt::oneshot` and prints nanoseconds per request as JSON. The wire-level comparison
//! (wrk against two listeners) also pays for writing and parsing the extra header bytes.
//! Usage: `headers_cost [requests]`.

use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use server::http::headers::{HeaderPolicy, SecurityHeadersLayer};
use tower::ServiceExt;

async fn per_request_nanos(app: &Router, requests: u32) -> f64 {
    let started = Instant::now();
    for _ in 0..requests {
        let request = Request::get("/healthz")
            .body(Body::empty())
            .unwrap_or_default();
        let _ = app.clone().oneshot(request).await;
    }
    started.elapsed().as_nanos() as f64 / f64::from(requests)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let requests: u32 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(500_000);
    let bare = Router::new().route("/healthz", get(server::ops::healthz));
    let with_headers = Router::new()
        .route("/healthz", get(server::ops::healthz))
        .layer(SecurityHeadersLayer::new(HeaderPolicy {
            strict_transport: true,
            report_uri: "https://ts.example/api/v1/security/csp-report".to_string(),
        }));
    // Warm up, then alternate rounds so drift hits both alike; keep the best round of each.
    per_request_nanos(&bare, requests / 10).await;
    per_request_nanos(&with_headers, requests / 10).await;
    let (mut bare_ns, mut headers_ns) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        bare_ns = bare_ns.min(per_request_nanos(&bare, requests).await);
        headers_ns = headers_ns.min(per_request_nanos(&with_headers, requests).await);
    }
    println!(
        "{{\"requests_per_round\":{requests},\"bare_ns_per_request\":{bare_ns:.0},\"with_headers_ns_per_request\":{headers_ns:.0},\"layer_ns\":{:.0},\"overhead_percent\":{:.1}}}",
        headers_ns - bare_ns,
        100.0 * (headers_ns - bare_ns) / bare_ns
    );
}
