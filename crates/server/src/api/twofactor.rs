//! `/api/v1/auth/2fa`: TOTP enrolment, turning it on and off, and backup codes. Signed-in sessions
//! only (API keys cannot manage 2FA); setting up, turning on and new backup codes need a recent login. Answers are `no-store` (the
//! router marks everything under `/auth`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, Meta, RecentAuth};
use crate::http::{ApiError, ApiJson};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/totp/setup", post(setup))
        .route("/totp/enable", post(enable))
        .route("/totp/disable", post(disable))
        .route("/backup-codes", post(backup_codes))
}

#[derive(Serialize, utoipa::ToSchema)]
struct SetupBody {
    /// Base32, for typing into an authenticator by hand.
    secret: String,
    otpauth_uri: String,
    /// The URI as a QR code, an SVG document drawn by the server.
    qr_svg: String,
}

#[utoipa::path(post, path = "/api/v1/auth/2fa/totp/setup", tag = "two-factor",
    security(("bearer" = [])),
    responses((status = 200, description = "A new secret, pending until /totp/enable confirms a code", body = SetupBody),
        (status = 401, description = "Step-up required (insufficient_user_authentication) or no valid token"),
        (status = 403, description = "An API key (a signed-in session is needed)"),
        (status = 409, description = "2FA is already on")))]
async fn setup(
    State(state): State<AppState>,
    RecentAuth(principal): RecentAuth,
) -> Result<Json<SetupBody>, ApiError> {
    let enrolment = state.identity.start_totp_enrolment(&principal).await?;
    Ok(Json(SetupBody {
        secret: enrolment.secret.to_string(),
        otpauth_uri: enrolment.otpauth_uri.to_string(),
        qr_svg: enrolment.qr_svg,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CodeRequest {
    /// The 6-digit code the authenticator shows now.
    code: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct BackupCodesBody {
    /// Ten single-use codes, shown this once.
    backup_codes: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/2fa/totp/enable", tag = "two-factor", request_body = CodeRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "2FA on (other sessions end); the backup codes, shown once", body = BackupCodesBody),
        (status = 401, description = "Step-up required (insufficient_user_authentication)"),
        (status = 403, description = "Wrong or replayed code (invalid-code; counts toward the lockout)"),
        (status = 429, description = "Too many wrong codes: checks are paused"),
        (status = 409, description = "No enrolment in progress, it expired, or 2FA is already on")))]
async fn enable(
    State(state): State<AppState>,
    RecentAuth(principal): RecentAuth,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<BackupCodesBody>, ApiError> {
    let backup_codes = state
        .identity
        .enable_totp(&principal, &body.code, &meta)
        .await?;
    Ok(Json(BackupCodesBody { backup_codes }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DisableRequest {
    password: String,
    /// An authenticator code or a backup code.
    code: String,
}

#[utoipa::path(post, path = "/api/v1/auth/2fa/totp/disable", tag = "two-factor", request_body = DisableRequest,
    security(("bearer" = [])),
    responses((status = 204, description = "2FA off; a notice is emailed"),
        (status = 403, description = "Wrong password, wrong code (invalid-code), or a staff account (staff must keep 2FA)"),
        (status = 409, description = "2FA is off")))]
async fn disable(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<DisableRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .disable_totp(&principal, &body.password, &body.code, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/2fa/backup-codes", tag = "two-factor", request_body = CodeRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "A new set; the old set stops working", body = BackupCodesBody),
        (status = 401, description = "Step-up required (insufficient_user_authentication)"),
        (status = 403, description = "Wrong or replayed code (invalid-code)"),
        (status = 409, description = "2FA is off")))]
async fn backup_codes(
    State(state): State<AppState>,
    RecentAuth(principal): RecentAuth,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<CodeRequest>,
) -> Result<Json<BackupCodesBody>, ApiError> {
    let backup_codes = state
        .identity
        .regenerate_backup_codes(&principal, &body.code, &meta)
        .await?;
    Ok(Json(BackupCodesBody { backup_codes }))
}

/// The `/api/v1/auth/2fa` part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(setup, enable, disable, backup_codes),
    components(schemas(SetupBody, CodeRequest, BackupCodesBody, DisableRequest)),
    tags((name = "two-factor", description = "TOTP (RFC 6238) and backup codes"))
)]
pub struct TwoFactorApi;
