//! `/api/v1/api-keys`: a signed-in user's API keys. Keys cannot manage keys (a session is required);
//! creating and rotating need a recent login. Another user's key id is a 404. Answers are `no-store`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use store::identity::apikeys::ApiKeyRecord;

use super::extract::{CurrentUser, Meta};
use super::responses::rfc3339;
use crate::http::{ApiError, ApiJson};
use crate::identity::apikeys::IssuedKey;
use crate::identity::now;
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(list).post(create))
        .route("/{id}", axum::routing::delete(revoke))
        .route("/{id}/rotate", post(rotate))
        .route("/{id}/usage", get(usage))
}

/// A key as listings show it: never the key or its hash.
#[derive(Serialize, utoipa::ToSchema)]
struct KeyBody {
    id: String,
    name: String,
    /// `ts_live_{lookup}`: enough to recognise the key, nothing to use it.
    prefix: String,
    scopes: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    last_used_at: Option<String>,
    last_used_ip: Option<String>,
    revoked_at: Option<String>,
    /// After a rotation, until when this key still works.
    grace_until: Option<String>,
    /// `active`, `grace` (rotated, still working), `expired` or `revoked`.
    status: &'static str,
}

fn status_of(key: &ApiKeyRecord, at: i64) -> &'static str {
    if key.revoked_at.is_some() || key.grace_until.is_some_and(|t| t <= at) {
        "revoked"
    } else if key.expires_at.is_some_and(|t| t <= at) {
        "expired"
    } else if key.replaced_by.is_some() {
        "grace"
    } else {
        "active"
    }
}

impl From<&ApiKeyRecord> for KeyBody {
    fn from(key: &ApiKeyRecord) -> Self {
        Self {
            id: key.id.clone(),
            name: key.name.clone(),
            prefix: security::apikey::display_prefix(&key.lookup_id),
            scopes: key.scope_names().map(str::to_string).collect(),
            created_at: rfc3339(key.created_at),
            expires_at: key.expires_at.map(rfc3339),
            last_used_at: key.last_used_at.map(rfc3339),
            last_used_ip: key.last_used_ip.clone(),
            revoked_at: key.revoked_at.map(rfc3339),
            grace_until: key
                .grace_until
                .filter(|_| key.replaced_by.is_some())
                .map(rfc3339),
            status: status_of(key, now()),
        }
    }
}

/// A new key: the listing fields and the key itself, this once.
#[derive(Serialize, utoipa::ToSchema)]
struct NewKeyBody {
    #[serde(flatten)]
    key: KeyBody,
    /// `ts_live_…`: store it now; it is never shown again.
    #[serde(rename = "key")]
    secret: String,
}

fn issued(issued: IssuedKey) -> (StatusCode, Json<NewKeyBody>) {
    (
        StatusCode::CREATED,
        Json(NewKeyBody {
            key: KeyBody::from(&issued.record),
            secret: issued.key.to_string(),
        }),
    )
}

#[utoipa::path(get, path = "/api/v1/api-keys", tag = "api-keys", security(("bearer" = [])),
    responses((status = 200, description = "The caller's keys, newest first", body = [KeyBody]),
        (status = 403, description = "An API key, or an unverified user")))]
async fn list(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
) -> Result<Json<Vec<KeyBody>>, ApiError> {
    let keys = state.identity.list_api_keys(&principal.user_id).await?;
    Ok(Json(keys.iter().map(KeyBody::from).collect()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateRequest {
    /// 1–100 characters, plain text.
    name: String,
    /// Any of `market:read`, `watchlists:read`, `watchlists:write`, `alerts:read`, `alerts:write`.
    scopes: Vec<String>,
    /// 1–3650; without it the key does not expire.
    #[serde(default, deserialize_with = "crate::http::json::whole_number")]
    expires_in_days: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/api-keys", tag = "api-keys", request_body = CreateRequest,
    security(("bearer" = [])),
    responses((status = 201, description = "The key, shown this once", body = NewKeyBody),
        (status = 401, description = "Step-up required (insufficient_user_authentication)"),
        (status = 403, description = "The plan's allowance of active keys is used (plan-limit), or an API key"),
        (status = 422, description = "Invalid name, scope or expiry")))]
async fn create(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<CreateRequest>,
) -> Result<(StatusCode, Json<NewKeyBody>), ApiError> {
    state.identity.require_recent_login(&principal)?;
    let key = state
        .identity
        .create_api_key(
            &principal,
            &body.name,
            &body.scopes,
            body.expires_in_days,
            &meta,
        )
        .await?;
    Ok(issued(key))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// 0–72 (default 0: the old key stops at once).
    #[serde(default, deserialize_with = "crate::http::json::whole_number")]
    grace_hours: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/api-keys/{id}/rotate", tag = "api-keys", request_body = RotateRequest,
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 201, description = "The new key, shown this once; the old one works until the grace ends", body = NewKeyBody),
        (status = 401, description = "Step-up required"),
        (status = 404, description = "Not the caller's key, or none"),
        (status = 409, description = "The key is revoked, expired or already rotated"),
        (status = 422, description = "grace_hours out of range")))]
async fn rotate(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Meta(meta): Meta,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RotateRequest>,
) -> Result<(StatusCode, Json<NewKeyBody>), ApiError> {
    state.identity.require_recent_login(&principal)?;
    let key = state
        .identity
        .rotate_api_key(&principal, &id, body.grace_hours, &meta)
        .await?;
    Ok(issued(key))
}

#[utoipa::path(delete, path = "/api/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 204, description = "Revoked at once, on every instance"),
        (status = 404, description = "Not the caller's key, none, or already revoked")))]
async fn revoke(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .revoke_api_key(&principal, &id, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, utoipa::ToSchema)]
struct DayBody {
    /// UTC date, `YYYY-MM-DD`.
    date: String,
    requests: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
struct UsageBody {
    id: String,
    prefix: String,
    last_used_at: Option<String>,
    last_used_ip: Option<String>,
    /// Requests in the last 90 days.
    total: i64,
    /// Days with requests, oldest first.
    days: Vec<DayBody>,
}

fn date_of(day: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(day * 86_400)
        .map(|t| t.date().to_string())
        .unwrap_or_default()
}

#[utoipa::path(get, path = "/api/v1/api-keys/{id}/usage", tag = "api-keys",
    params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, description = "Requests per UTC day over the last 90 days", body = UsageBody),
        (status = 404, description = "Not the caller's key, or none")))]
async fn usage(
    State(state): State<AppState>,
    CurrentUser(principal): CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<UsageBody>, ApiError> {
    let (key, days) = state
        .identity
        .api_key_usage(&principal.user_id, &id)
        .await?;
    Ok(Json(UsageBody {
        id: key.id.clone(),
        prefix: security::apikey::display_prefix(&key.lookup_id),
        last_used_at: key.last_used_at.map(rfc3339),
        last_used_ip: key.last_used_ip.clone(),
        total: days.iter().map(|d| d.requests).sum(),
        days: days
            .into_iter()
            .map(|d| DayBody {
                date: date_of(d.day),
                requests: d.requests,
            })
            .collect(),
    }))
}

/// The `/api/v1/api-keys` part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list, create, rotate, revoke, usage),
    components(schemas(KeyBody, NewKeyBody, CreateRequest, RotateRequest, UsageBody, DayBody)),
    tags((name = "api-keys", description = "Prefixed, checksummed, hashed, scoped API keys"))
)]
pub struct ApiKeysApi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(20_000), "2024-10-04");
    }
}
