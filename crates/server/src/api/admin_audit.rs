//! `GET /api/v1/admin/audit-events`: the audit trail for staff. A super_admin sees every event; support
//! staff see one user's events at a time (they must name the `subject`).

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use security::authz::Role;
use serde::Serialize;
use store::identity::{AuditFilter, StoredAudit};

use super::extract::{RequireRole, Staff};
use super::params::Params;
use super::responses::{Page, rfc3339};
use crate::http::{ApiError, SafeJson};
use crate::state::AppState;

const SECONDS_PER_DAY: i64 = 86_400;

/// API.md's item: no seal or chain fields (`audit export` has them).
#[derive(Serialize)]
pub struct AuditEventBody {
    id: String,
    ts: String,
    event: String,
    outcome: &'static str,
    actor_id: Option<String>,
    subject: Option<String>,
    ip: Option<String>,
    user_agent: Option<String>,
    request_id: Option<String>,
    details: serde_json::Value,
}

impl From<StoredAudit> for AuditEventBody {
    fn from(record: StoredAudit) -> Self {
        Self {
            id: record.id,
            ts: rfc3339(record.ts),
            outcome: record.event.outcome.as_str(),
            event: record.event.event,
            actor_id: record.event.actor_id,
            subject: record.event.subject,
            ip: record.event.ip,
            user_agent: record.event.user_agent,
            request_id: record.event.request_id,
            details: record.event.details,
        }
    }
}

fn day_start(date: market::form4::Date) -> Option<i64> {
    crate::audit_cli::day_start(&date.to_string()).ok()
}

#[utoipa::path(get, path = "/api/v1/admin/audit-events", tag = "admin", security(("bearer" = [])),
    params(
        ("type" = Option<String>, Query, description = "Event name, e.g. auth.login.failed"),
        ("actor" = Option<String>, Query, description = "Acting user id"),
        ("subject" = Option<String>, Query, description = "User id the event is about (required for support staff)"),
        ("since" = Option<String>, Query, description = "First day, YYYY-MM-DD"),
        ("until" = Option<String>, Query, description = "Last day, YYYY-MM-DD"),
        ("page" = Option<u32>, Query, description = "From 1"),
        ("per_page" = Option<u32>, Query, description = "1–200, default 50"),
    ),
    responses((status = 200, description = "A page of events, newest first: {id, ts, event, outcome, actor_id, subject, ip, user_agent, request_id, details}"),
        (status = 403, description = "Not staff, or support staff without a subject")))]
pub async fn list_audit_events(
    State(state): State<AppState>,
    RequireRole(staff, _): RequireRole<Staff>,
    RawQuery(query): RawQuery,
) -> Result<SafeJson<Page<AuditEventBody>>, ApiError> {
    let mut params = Params::parse(
        query.as_deref(),
        &[
            "type", "actor", "subject", "since", "until", "page", "per_page",
        ],
    );
    let filter = AuditFilter {
        event: params.text("type").map(str::to_string),
        actor_id: params.text("actor").map(str::to_string),
        subject: params.text("subject").map(str::to_string),
        since: params.date("since").and_then(day_start),
        until: params
            .date("until")
            .and_then(day_start)
            .map(|start| start + SECONDS_PER_DAY - 1),
    };
    let page = params.page();
    params.finish()?;
    if staff.role != Role::SuperAdmin && filter.subject.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Support staff see one user's events: name the user as subject.",
        ));
    }
    let (records, total) = state
        .db
        .list_audit_events(&filter, i64::from(page.per_page()), page.offset())
        .await
        .map_err(ApiError::internal)?;
    Ok(SafeJson(Page::new(
        records.into_iter().map(AuditEventBody::from).collect(),
        total,
        page.page(),
        page.per_page(),
    )))
}

/// The audit part of the admin OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list_audit_events))]
pub struct AdminAuditApi;
