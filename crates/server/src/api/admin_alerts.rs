//! `/api/v1/admin/security/alerts`: the monitoring alerts for staff, acknowledged and resolved by them
//! (each change audited).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use store::ops::AlertStep;

use super::extract::{Meta, RequireRole, Staff};
use super::responses::Page;
use crate::http::ApiError;
use crate::state::AppState;

#[derive(Serialize)]
pub struct AlertBody {
    id: String,
    ts: String,
    rule: String,
    severity: String,
    subject: Option<String>,
    details: serde_json::Value,
    /// `open`, `acknowledged` or `resolved`.
    status: &'static str,
    acknowledged_at: Option<String>,
    acknowledged_by: Option<String>,
    resolved_at: Option<String>,
    resolved_by: Option<String>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertQuery {
    page: Option<u32>,
    per_page: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/admin/security/alerts", tag = "admin",
    security(("bearer" = [])),
    params(("page" = Option<u32>, Query, description = "From 1"), ("per_page" = Option<u32>, Query, description = "1–200, default 50")),
    responses((status = 200, description = "A page of monitoring alerts, newest first, each with its status (open, acknowledged, resolved)")))]
pub async fn list(
    State(state): State<AppState>,
    _staff: RequireRole<Staff>,
    Query(query): Query<AlertQuery>,
) -> Result<Json<Page<AlertBody>>, ApiError> {
    let (page, per_page, offset) = super::Paging {
        page: query.page,
        per_page: query.per_page,
    }
    .resolve()?;
    let (alerts, total) = state
        .db
        .security_alerts(i64::from(per_page), offset)
        .await
        .map_err(ApiError::internal)?;
    let items = alerts
        .into_iter()
        .map(|a| AlertBody {
            id: a.id,
            ts: super::responses::rfc3339(a.ts),
            rule: a.rule,
            severity: a.severity,
            subject: a.subject,
            details: serde_json::from_str(&a.details).unwrap_or_default(),
            status: match (a.acknowledged_at, a.resolved_at) {
                (_, Some(_)) => "resolved",
                (Some(_), None) => "acknowledged",
                (None, None) => "open",
            },
            acknowledged_at: a.acknowledged_at.map(super::responses::rfc3339),
            acknowledged_by: a.acknowledged_by,
            resolved_at: a.resolved_at.map(super::responses::rfc3339),
            resolved_by: a.resolved_by,
        })
        .collect();
    Ok(Json(Page::new(items, total, page, per_page)))
}

#[utoipa::path(post, path = "/api/v1/admin/security/alerts/{id}/acknowledge", tag = "admin",
    security(("bearer" = [])), params(("id" = String, Path, description = "Alert id")),
    responses((status = 204, description = "Acknowledged (the first acknowledgement is kept)"), (status = 404, description = "No such alert")))]
pub async fn acknowledge(
    State(state): State<AppState>,
    RequireRole(staff, _): RequireRole<Staff>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .advance_alert(&staff, &id, AlertStep::Acknowledge, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/admin/security/alerts/{id}/resolve", tag = "admin",
    security(("bearer" = [])), params(("id" = String, Path, description = "Alert id")),
    responses((status = 204, description = "Resolved"), (status = 404, description = "No such alert")))]
pub async fn resolve(
    State(state): State<AppState>,
    RequireRole(staff, _): RequireRole<Staff>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .advance_alert(&staff, &id, AlertStep::Resolve, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The alerts part of the admin OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(list, acknowledge, resolve))]
pub struct AdminAlertsApi;
