//! Operational endpoints: liveness, readiness, Prometheus metrics, CSP violation reports (`csp`) and
//! the not-found fallback.

pub mod csp;

pub use csp::{CSP_REPORT_BODY_LIMIT, csp_report};

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::http::ApiError;
use crate::state::AppState;

const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// `{"status"}`: nothing more, so probes reveal nothing.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusBody {
    /// `ok`
    pub status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process is up", body = StatusBody)))]
pub async fn healthz() -> Json<StatusBody> {
    Json(StatusBody { status: "ok" })
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "`ok`, or `degraded` when the database answers but Redis does not (limits then hold per instance)", body = StatusBody),
        (status = 503, description = "A dependency is down", content_type = "application/problem+json"),
    ))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<StatusBody>, ApiError> {
    // Probes are unauthenticated and unthrottled: concurrent and repeated ones within a second share
    // one check instead of each pinging the database and Redis.
    let mut cached = state.readiness.lock().await;
    if let Some((at, status)) = *cached
        && at.elapsed() < READINESS_CACHE
    {
        return readiness_answer(status);
    }
    let status = check_readiness(&state).await;
    *cached = Some((std::time::Instant::now(), status));
    readiness_answer(status)
}

const READINESS_CACHE: Duration = Duration::from_secs(1);

fn readiness_answer(status: Option<&'static str>) -> Result<Json<StatusBody>, ApiError> {
    match status {
        Some(status) => Ok(Json(StatusBody { status })),
        None => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not-ready",
            "The service is not ready.",
        )),
    }
}

/// `Some("ok")`, `Some("degraded")` (database up, key-value store down) or `None` (not ready).
async fn check_readiness(state: &AppState) -> Option<&'static str> {
    let kv = state.kv.clone();
    let (db, kv) = tokio::join!(state.db.ping(PING_TIMEOUT), async move {
        tokio::time::timeout(PING_TIMEOUT, kv.ping()).await
    });
    let db_ok = db.is_ok();
    let kv_ok = matches!(kv, Ok(Ok(())));
    metrics::gauge!("tradesignal_ready", "component" => "database").set(if db_ok {
        1.0
    } else {
        0.0
    });
    metrics::gauge!("tradesignal_ready", "component" => "kv").set(if kv_ok { 1.0 } else { 0.0 });
    match (db, kv_ok) {
        (Ok(()), true) => Some("ok"),
        // Without Redis the service goes on with per-instance limits and database revocation checks:
        // still ready (pulling every instance would turn a cache outage into a full one), but degraded.
        (Ok(()), false) => {
            tracing::warn!(
                alert = "kv_degraded",
                backend = state.kv.backend(),
                "ready but degraded: key-value store unreachable"
            );
            Some("degraded")
        }
        (Err(e), _) => {
            tracing::warn!(reason = %format!("database: {e}"), "not ready");
            None
        }
    }
}

/// Prometheus text; closed (404) unless a metrics token is configured, then only with that token.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition", content_type = "text/plain"),
        (status = 401, description = "Missing or wrong metrics token"),
        (status = 404, description = "No metrics token configured"),
    ))]
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(expected) = &state.settings.metrics_token else {
        return Err(ApiError::not_found());
    };
    check_metrics_token(expected.expose_secret(), &headers)?;
    Ok(render_metrics(&state))
}

/// `/metrics` on the separate metrics listener: the token is required when one is configured.
pub async fn metrics_listener(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(expected) = &state.settings.metrics_token {
        check_metrics_token(expected.expose_secret(), &headers)?;
    }
    Ok(render_metrics(&state))
}

fn check_metrics_token(expected: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = match crate::http::bearer::bearer(headers) {
        crate::http::bearer::Bearer::Token(token) => token,
        _ => "",
    };
    // Comparing digests keeps the comparison constant-time even in the token's length.
    let matches: bool = Sha256::digest(presented.as_bytes())
        .as_slice()
        .ct_eq(Sha256::digest(expected.as_bytes()).as_slice())
        .into();
    if matches {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "A valid metrics token is required.",
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"metrics\""),
    ))
}

pub fn render_metrics(state: &AppState) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}
