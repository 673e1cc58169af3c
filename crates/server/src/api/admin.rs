//! `/api/v1/admin`: staff operations. Support staff may read, unlock and revoke; only super
//! administrators change roles, tiers and the disabled flag.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{Meta, RequireRole, Staff, SuperAdmin};
use super::responses::{Page, SessionBody, UserBody};
use crate::http::{ApiError, ApiJson, FieldError};
use crate::identity::admin::UserChange;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list_users))
        .route("/users/{id}", get(get_user).patch(update_user))
        .route("/users/{id}/revoke-sessions", post(revoke_sessions))
        .route("/users/{id}/unlock", post(unlock))
        .route("/users/{id}/reset-2fa", post(reset_mfa))
        .route("/security/alerts", get(super::admin_alerts::list))
        .route(
            "/security/alerts/{id}/acknowledge",
            post(super::admin_alerts::acknowledge),
        )
        .route(
            "/security/alerts/{id}/resolve",
            post(super::admin_alerts::resolve),
        )
        .route("/audit-events", get(super::admin_audit::list_audit_events))
        .route(
            "/ingest/form4",
            post(ingest_form4).layer(axum::extract::DefaultBodyLimit::max(INGEST_BODY_LIMIT)),
        )
}

/// The full path of the ingest endpoint (its body limit is set by path at the edge).
pub const INGEST_PATH: &str = "/api/v1/admin/ingest/form4";
/// API.md: raw Form 4 XML or EDGAR submission text, ≤ 5 MiB.
pub const INGEST_BODY_LIMIT: usize = 5 * 1024 * 1024;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    q: Option<String>,
    page: Option<u32>,
    per_page: Option<u32>,
}

#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, description = "A page of users (no secrets)"), (status = 403, description = "Not staff")))]
async fn list_users(
    State(state): State<AppState>,
    _staff: RequireRole<Staff>,
    Query(query): Query<ListQuery>,
) -> Result<Json<Page<UserBody>>, ApiError> {
    let (page, per_page, offset) = super::Paging {
        page: query.page,
        per_page: query.per_page,
    }
    .resolve()?;
    let q = query.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    if q.is_some_and(|q| q.chars().count() > 100) {
        return Err(ApiError::validation(vec![FieldError::new(
            "q",
            "too_long",
            "Search at most 100 characters.",
        )]));
    }
    let (users, total) = state
        .identity
        .admin_list_users(q, i64::from(per_page), offset)
        .await?;
    Ok(Json(Page::new(
        users.iter().map(UserBody::from).collect(),
        total,
        page,
        per_page,
    )))
}

#[derive(Serialize)]
struct AdminUserBody {
    #[serde(flatten)]
    user: UserBody,
    disabled: bool,
    /// When the brute-force lock ends, if the account is locked.
    locked_until: Option<String>,
    sessions: Vec<SessionBody>,
}

async fn admin_user_body(
    state: &AppState,
    user: &store::identity::UserRecord,
) -> Result<AdminUserBody, ApiError> {
    let sessions = state.identity.sessions(&user.id).await?;
    let locked_until = state
        .identity
        .lock_remaining(&user.email)
        .await
        .map(|wait| {
            super::responses::rfc3339(
                time::OffsetDateTime::now_utc().unix_timestamp()
                    + i64::try_from(wait.as_secs()).unwrap_or(0),
            )
        });
    Ok(AdminUserBody {
        user: UserBody::from(user),
        disabled: user.is_disabled(),
        locked_until,
        sessions: sessions
            .iter()
            .map(|s| SessionBody::new(s, "", state.identity.idle_secs_of(s)))
            .collect(),
    })
}

#[utoipa::path(get, path = "/api/v1/admin/users/{id}", tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, description = "User with lock state and sessions"), (status = 404, description = "No such user")))]
async fn get_user(
    State(state): State<AppState>,
    _staff: RequireRole<Staff>,
    Path(id): Path<String>,
) -> Result<Json<AdminUserBody>, ApiError> {
    let user = state.identity.admin_user(&id).await?;
    Ok(Json(admin_user_body(&state, &user).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateUserRequest {
    role: Option<String>,
    tier: Option<String>,
    disabled: Option<bool>,
}

#[utoipa::path(patch, path = "/api/v1/admin/users/{id}", tag = "admin", request_body = UpdateUserRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "Updated; effective on the user's next request"), (status = 403, description = "Not super_admin, or self-demotion")))]
async fn update_user(
    State(state): State<AppState>,
    RequireRole(admin, _): RequireRole<SuperAdmin>,
    Meta(meta): Meta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateUserRequest>,
) -> Result<Json<AdminUserBody>, ApiError> {
    let mut errors = vec![];
    let role = body
        .role
        .as_deref()
        .map(|r| r.parse())
        .transpose()
        .unwrap_or_else(|()| {
            errors.push(FieldError::new(
                "role",
                "invalid",
                "Use user, support or super_admin.",
            ));
            None
        });
    let tier = body
        .tier
        .as_deref()
        .map(|t| t.parse())
        .transpose()
        .unwrap_or_else(|()| {
            errors.push(FieldError::new(
                "tier",
                "invalid",
                "Use free, pro or enterprise.",
            ));
            None
        });
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let change = UserChange {
        role,
        tier,
        disabled: body.disabled,
    };
    let user = state
        .identity
        .admin_update_user(&admin, &id, change, &meta)
        .await?;
    Ok(Json(admin_user_body(&state, &user).await?))
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/revoke-sessions", tag = "admin",
    security(("bearer" = [])),
    responses((status = 204, description = "Every session revoked")))]
async fn revoke_sessions(
    State(state): State<AppState>,
    RequireRole(staff, _): RequireRole<Staff>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .admin_revoke_sessions(&staff, &id, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/unlock", tag = "admin",
    security(("bearer" = [])),
    responses((status = 204, description = "Unlocked")))]
async fn unlock(
    State(state): State<AppState>,
    RequireRole(staff, _): RequireRole<Staff>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.identity.admin_unlock(&staff, &id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/admin/users/{id}/reset-2fa", tag = "admin",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204, description = "2FA removed and every session of the user revoked; the user is emailed"),
        (status = 401, description = "Step-up required (insufficient_user_authentication)"),
        (status = 403, description = "Not super_admin, or the caller's own account"),
        (status = 404, description = "No such user"), (status = 409, description = "The user has no 2FA")))]
async fn reset_mfa(
    State(state): State<AppState>,
    RequireRole(admin, _): RequireRole<SuperAdmin>,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.identity.require_recent_login(&admin)?;
    state.identity.admin_reset_mfa(&admin, &id, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct IngestBody {
    /// `stored` or `duplicate`.
    status: &'static str,
    filing_id: String,
    trades: usize,
    alerts: usize,
    superseded: usize,
    superseded_by: Option<String>,
}

fn is_document_type(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(|mime| mime.trim().to_ascii_lowercase())
        .is_some_and(|mime| matches!(mime.as_str(), "application/xml" | "text/xml" | "text/plain"))
}

#[utoipa::path(post, path = "/api/v1/admin/ingest/form4", tag = "admin",
    request_body(content = String, content_type = "application/xml", description = "Form 3/4/5 XML or an EDGAR submission .txt, at most 5 MiB"),
    security(("bearer" = [])),
    responses((status = 201, description = "Filing stored"), (status = 200, description = "Already stored (idempotent)"),
        (status = 413, description = "Over 5 MiB"), (status = 415, description = "Not XML or text"),
        (status = 422, description = "Not a readable ownership document"), (status = 403, description = "Not a super administrator")))]
async fn ingest_form4(
    State(state): State<AppState>,
    RequireRole(admin, ..): RequireRole<SuperAdmin>,
    Meta(meta): Meta,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<IngestBody>), ApiError> {
    if !is_document_type(&headers) {
        return Err(ApiError::unsupported_media_type("application/xml"));
    }
    let outcome = crate::market::ingest::ingest_bytes(&state.db, body, crate::identity::now())
        .await
        .map_err(ApiError::internal)?;
    let (status, body) = match outcome {
        crate::market::ingest::DocumentOutcome::Stored {
            filing_id,
            trades,
            alerts,
            superseded,
            superseded_by,
        } => (
            StatusCode::CREATED,
            IngestBody {
                status: "stored",
                filing_id,
                trades,
                alerts,
                superseded,
                superseded_by,
            },
        ),
        crate::market::ingest::DocumentOutcome::Duplicate { filing_id } => (
            StatusCode::OK,
            IngestBody {
                status: "duplicate",
                filing_id,
                trades: 0,
                alerts: 0,
                superseded: 0,
                superseded_by: None,
            },
        ),
        crate::market::ingest::DocumentOutcome::Failed { reason } => {
            state
                .identity
                .audit(
                    crate::identity::audit::Event::failure("admin.ingest.form4")
                        .actor(&admin.user_id)
                        .details(serde_json::json!({"status": "invalid"})),
                    &meta,
                )
                .await;
            return Err(ApiError::validation(vec![FieldError::new(
                "body",
                "invalid_filing",
                reason,
            )]));
        }
    };
    state
        .identity
        .audit(
            crate::identity::audit::Event::success("admin.ingest.form4")
                .actor(&admin.user_id)
                .details(serde_json::json!({
                    "filing_id": body.filing_id,
                    "status": body.status,
                    "trades": body.trades,
                })),
            &meta,
        )
        .await;
    Ok((status, Json(body)))
}

/// The `/api/v1/admin` part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_users, get_user, update_user, revoke_sessions, unlock, reset_mfa, ingest_form4),
    tags((name = "admin", description = "Staff operations (support and super_admin)"))
)]
pub struct AdminApi;
