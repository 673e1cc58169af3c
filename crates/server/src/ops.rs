//! Operational endpoints: liveness, readiness, Prometheus metrics, CSP violation reports, the OpenAPI
//! document and the not-found fallback.

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::http::{ApiError, ClientIp};
use crate::state::AppState;

const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Most CSP reports kept from one request; browsers batch a handful at most.
const MAX_REPORTS_PER_REQUEST: usize = 20;
const MAX_FIELD_CHARS: usize = 512;
const MAX_STORED_REPORT_CHARS: usize = 8 * 1024;
pub const CSP_REPORT_BODY_LIMIT: usize = 64 * 1024;

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

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// URIs in reports can carry tokens in their query (a reset link, say): keep scheme, host and path only.
fn strip_query(uri: &str) -> String {
    let cut = uri.find(['?', '#']).unwrap_or(uri.len());
    truncate(&uri[..cut], MAX_FIELD_CHARS)
}

fn string_field(object: &Value, names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| object.get(*name).and_then(Value::as_str))
        .map(str::to_string)
}

/// One violation, normalised from either report format.
#[derive(Debug, PartialEq)]
struct Violation {
    document_uri: Option<String>,
    directive: Option<String>,
    blocked_uri: Option<String>,
    raw: String,
}

fn violation(body: &Value) -> Violation {
    let mut cleaned = body.clone();
    if let Some(object) = cleaned.as_object_mut() {
        for key in [
            "document-uri",
            "documentURL",
            "blocked-uri",
            "blockedURL",
            "referrer",
            "source-file",
            "sourceFile",
        ] {
            if let Some(Value::String(uri)) = object.get_mut(key) {
                *uri = strip_query(uri);
            }
        }
    }
    Violation {
        document_uri: string_field(body, &["document-uri", "documentURL"]).map(|u| strip_query(&u)),
        directive: string_field(
            body,
            &[
                "effective-directive",
                "effectiveDirective",
                "violated-directive",
            ],
        )
        .map(|d| truncate(&d, MAX_FIELD_CHARS)),
        blocked_uri: string_field(body, &["blocked-uri", "blockedURL"]).map(|u| strip_query(&u)),
        raw: truncate(&cleaned.to_string(), MAX_STORED_REPORT_CHARS),
    }
}

fn violations(content_type: &str, document: &Value) -> Option<Vec<Violation>> {
    match content_type {
        "application/csp-report" => document
            .get("csp-report")
            .filter(|r| r.is_object())
            .map(|r| vec![violation(r)]),
        _ => document.as_array().map(|reports| {
            reports
                .iter()
                .filter(|r| r.get("type").and_then(Value::as_str) == Some("csp-violation"))
                .filter_map(|r| r.get("body"))
                .take(MAX_REPORTS_PER_REQUEST)
                .map(violation)
                .collect()
        }),
    }
}

/// Browsers post CSP violations here (`report-uri` and `report-to`); each is logged and stored.
#[utoipa::path(post, path = "/api/v1/security/csp-report", tag = "operations",
    request_body(content_type = "application/csp-report", description = "A CSP violation report (≤ 64 KiB); `application/reports+json` also accepted"),
    responses(
        (status = 204, description = "Stored"),
        (status = 400, description = "Not a CSP report", content_type = "application/problem+json"),
        (status = 413, description = "Larger than 64 KiB", content_type = "application/problem+json"),
        (status = 415, description = "Another content type", content_type = "application/problem+json"),
    ))]
pub async fn csp_report(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|ct| ct.trim().to_ascii_lowercase())
        .unwrap_or_default();
    if !matches!(
        content_type.as_str(),
        "application/csp-report" | "application/reports+json"
    ) {
        return Err(ApiError::unsupported_media_type(
            "application/csp-report or application/reports+json",
        ));
    }
    let document: Value = serde_json::from_slice(&body)
        .map_err(|_| ApiError::bad_request("malformed-json", "The report is not valid JSON."))?;
    let found = violations(&content_type, &document)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "not-a-csp-report",
                "The body holds no CSP violation report.",
            )
        })?;
    let received_at = time::OffsetDateTime::now_utc().unix_timestamp();
    for v in found {
        tracing::warn!(
            client_ip = %ip,
            document_uri = v.document_uri.as_deref().unwrap_or(""),
            directive = v.directive.as_deref().unwrap_or(""),
            blocked_uri = v.blocked_uri.as_deref().unwrap_or(""),
            "content security policy violation"
        );
        metrics::counter!("tradesignal_csp_reports_total").increment(1);
        let report = store::ops::CspReport {
            id: uuid::Uuid::now_v7().to_string(),
            received_at,
            document_uri: v.document_uri,
            violated_directive: v.directive,
            blocked_uri: v.blocked_uri,
            client_ip: Some(ip.to_string()),
            report: v.raw,
        };
        state
            .db
            .insert_csp_report(&report)
            .await
            .map_err(ApiError::internal)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

pub async fn not_found() -> ApiError {
    ApiError::not_found()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_report_formats_are_read_and_tokens_stripped() {
        let legacy = json!({"csp-report": {
            "document-uri": "https://ts.example/reset-password?token=SECRET",
            "violated-directive": "script-src-elem",
            "blocked-uri": "https://evil.example/x.js#frag"
        }});
        let v = violations("application/csp-report", &legacy).expect("report");
        assert_eq!(
            v[0].document_uri.as_deref(),
            Some("https://ts.example/reset-password")
        );
        assert_eq!(
            v[0].blocked_uri.as_deref(),
            Some("https://evil.example/x.js")
        );
        assert!(!v[0].raw.contains("SECRET"));

        let modern = json!([
            {"type": "csp-violation", "body": {"documentURL": "https://ts.example/", "effectiveDirective": "img-src", "blockedURL": "data"}},
            {"type": "deprecation", "body": {}}
        ]);
        let v = violations("application/reports+json", &modern).expect("reports");
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].directive.as_deref(), Some("img-src"));
        assert_eq!(violations("application/csp-report", &json!({"x": 1})), None);
    }

    #[test]
    fn fields_are_bounded() {
        let long = "a".repeat(10_000);
        let doc = json!({"csp-report": {"document-uri": long, "violated-directive": long}});
        let v = violations("application/csp-report", &doc).expect("report");
        assert_eq!(
            v[0].document_uri.as_ref().map(|s| s.chars().count()),
            Some(MAX_FIELD_CHARS)
        );
        assert!(v[0].raw.chars().count() <= MAX_STORED_REPORT_CHARS);
    }
}
