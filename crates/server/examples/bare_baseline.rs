//! Benchmark baseline for `scripts/bench`: the same `/healthz` handler served by plain axum, and once
//! more behind only the security-headers layer, so the cost of the stack can be measured against
//! nothing. Usage: `bare_baseline <bare-addr> <headers-only-addr>`.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use server::http::headers::{HeaderPolicy, SecurityHeadersLayer};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let bare: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 18081)));
    let headers_only: SocketAddr = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 18082)));

    let bare_app = Router::new().route("/healthz", get(server::ops::healthz));
    let policy = HeaderPolicy {
        strict_transport: false,
        report_uri: "http://127.0.0.1/api/v1/security/csp-report".to_string(),
    };
    let headers_app = Router::new()
        .route("/healthz", get(server::ops::healthz))
        .layer(SecurityHeadersLayer::new(policy));

    let bare_listener = tokio::net::TcpListener::bind(bare).await?;
    let headers_listener = tokio::net::TcpListener::bind(headers_only).await?;
    let bare_task = tokio::spawn(async move { axum::serve(bare_listener, bare_app).await });
    axum::serve(headers_listener, headers_app).await?;
    bare_task.abort();
    Ok(())
}
