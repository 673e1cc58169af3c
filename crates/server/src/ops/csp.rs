//! `POST /api/v1/security/csp-report`: browsers' Content-Security-Policy violation reports. The
//! endpoint is anonymous, so a flood must cost neither the database nor the logs: at most 5 violations
//! are read from one request, a repeat of a stored violation only adds to its count, the table holds at
//! most `MAX_STORED` distinct violations for at most `RETENTION` (purged hourly), and past
//! `STORE_PER_MINUTE` reports a minute this instance keeps one in `FLOOD_SAMPLE` (the rest counted in
//! metrics only).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::Value;
use sha2::{Digest, Sha256};
use store::ops::CspOutcome;

use crate::http::{ApiError, ClientIp};
use crate::state::AppState;

/// Most CSP violations read from one request; browsers batch a handful at most.
const MAX_REPORTS_PER_REQUEST: usize = 5;
const MAX_FIELD_CHARS: usize = 512;
const MAX_STORED_REPORT_CHARS: usize = 8 * 1024;
pub const CSP_REPORT_BODY_LIMIT: usize = 64 * 1024;
/// Distinct violations kept at most.
pub const MAX_STORED: i64 = 10_000;
/// Violations not seen for this long are purged.
pub const RETENTION_SECS: i64 = 30 * 86_400;
/// Reports an instance records per minute before it samples.
pub const STORE_PER_MINUTE: u64 = 300;
/// Under a flood, one report in this many is recorded.
pub const FLOOD_SAMPLE: u64 = 100;

/// Per-instance flood detection: reports seen in the current minute.
#[derive(Debug, Default)]
pub struct CspSampler {
    minute: AtomicU64,
    seen: AtomicU64,
}

impl CspSampler {
    /// Whether the report seen at `unix_secs` is recorded.
    pub fn admit(&self, unix_secs: u64) -> bool {
        let minute = unix_secs / 60;
        if self.minute.swap(minute, Ordering::SeqCst) != minute {
            self.seen.store(0, Ordering::SeqCst);
        }
        let n = self.seen.fetch_add(1, Ordering::SeqCst) + 1;
        n <= STORE_PER_MINUTE || n.is_multiple_of(FLOOD_SAMPLE)
    }
}

/// What identifies a violation for de-duplication: page, directive and blocked resource.
fn fingerprint(v: &Violation) -> String {
    let mut hasher = Sha256::new();
    for part in [&v.document_uri, &v.directive, &v.blocked_uri] {
        let bytes = part.as_deref().unwrap_or("").as_bytes();
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    hex::encode(hasher.finalize())
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

/// Browsers post CSP violations here (`report-uri` and `report-to`); each is de-duplicated, counted and
/// (within the limits above) stored and logged.
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
        metrics::counter!("tradesignal_csp_reports_total").increment(1);
        if !state
            .csp_sampler
            .admit(u64::try_from(received_at).unwrap_or(0))
        {
            metrics::counter!("tradesignal_csp_reports_sampled_out_total").increment(1);
            continue;
        }
        let fingerprint = fingerprint(&v);
        let report = store::ops::CspReport {
            id: uuid::Uuid::now_v7().to_string(),
            received_at,
            document_uri: v.document_uri,
            violated_directive: v.directive,
            blocked_uri: v.blocked_uri,
            client_ip: Some(ip.to_string()),
            report: v.raw,
        };
        let outcome = state
            .db
            .record_csp_report(&report, &fingerprint, MAX_STORED)
            .await
            .map_err(ApiError::internal)?;
        match outcome {
            // Logged once per distinct violation, not per repeat.
            CspOutcome::Stored => tracing::warn!(
                client_ip = %ip,
                document_uri = report.document_uri.as_deref().unwrap_or(""),
                directive = report.violated_directive.as_deref().unwrap_or(""),
                blocked_uri = report.blocked_uri.as_deref().unwrap_or(""),
                "content security policy violation"
            ),
            CspOutcome::Repeat => {}
            CspOutcome::OverCap => {
                metrics::counter!("tradesignal_csp_reports_over_cap_total").increment(1);
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
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
    fn floods_are_sampled_per_minute() {
        let sampler = CspSampler::default();
        let minute = 1_800_000_000; // the start of a minute
        let admitted = (0..10_000).filter(|_| sampler.admit(minute)).count() as u64;
        // The first 300, then every 100th of the rest (the 400th, 500th, … 10,000th).
        assert_eq!(admitted, STORE_PER_MINUTE + 97);
        assert!(sampler.admit(minute + 60), "a new minute starts afresh");
    }

    #[test]
    fn repeats_share_a_fingerprint() {
        let doc = json!({"csp-report": {"document-uri": "https://ts.example/a?x=1", "violated-directive": "img-src", "blocked-uri": "data"}});
        let same = json!({"csp-report": {"document-uri": "https://ts.example/a?y=2", "violated-directive": "img-src", "blocked-uri": "data"}});
        let other = json!({"csp-report": {"document-uri": "https://ts.example/b", "violated-directive": "img-src", "blocked-uri": "data"}});
        let f =
            |d: &Value| fingerprint(&violations("application/csp-report", d).expect("report")[0]);
        assert_eq!(f(&doc), f(&same), "the query is not part of the page");
        assert_ne!(f(&doc), f(&other));
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
