//! `/api/v1/auth`: handlers only parse, call the identity service and shape the answer. Every response
//! here is marked `no-store`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use super::extract::{Authenticated, Meta, RecentAuth};
use super::responses::{SessionBody, UserBody};
use crate::http::{ApiError, ApiJson, ratelimit};
use crate::identity::login::LoginOutcome;
use crate::identity::mfa::SecondFactor;
use crate::identity::sessions::IssuedTokens;
use crate::identity::web_sessions::SessionKind;
use crate::state::AppState;

pub fn routes(state: &AppState) -> Router<AppState> {
    let limited = |policy: &'static str| {
        axum::middleware::from_fn_with_state((state.clone(), policy), ratelimit::endpoint)
    };
    Router::new()
        .route("/register", post(register).route_layer(limited("register")))
        .route("/login", post(login).route_layer(limited("login")))
        .route("/login/mfa", post(login_mfa).route_layer(limited("mfa")))
        .route("/refresh", post(refresh))
        .route("/logout", post(logout))
        .route("/logout-all", post(logout_all))
        .route("/reauth", post(reauth))
        .route("/me", get(me).patch(update_me))
        .route("/change-password", post(change_password))
        .route("/change-email", post(change_email))
        .route(
            "/forgot-password",
            post(forgot_password).route_layer(limited("forgot.ip")),
        )
        .route(
            "/reset-password",
            post(reset_password).route_layer(limited("reset")),
        )
        .route(
            "/verify-email",
            post(verify_email).route_layer(limited("verify")),
        )
        .route(
            "/confirm-email",
            post(confirm_email).route_layer(limited("verify")),
        )
        .route("/unlock", post(unlock).route_layer(limited("unlock")))
        .route("/resend-verification", post(resend_verification))
        .route(
            "/password-strength",
            post(password_strength).route_layer(limited("password_strength")),
        )
        .route("/sessions", get(sessions))
        .route("/sessions/{id}", delete(delete_session))
        .nest("/2fa", super::twofactor::routes())
}

/// Message bodies of `202 Accepted` answers, identical for every address.
#[derive(Serialize)]
struct Accepted {
    message: &'static str,
}

fn accepted(message: &'static str) -> Response {
    (StatusCode::ACCEPTED, Json(Accepted { message })).into_response()
}

#[derive(Serialize)]
struct TokenBody {
    access_token: String,
    token_type: &'static str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_expires_in: Option<u64>,
}

fn token_response(state: &AppState, jar: CookieJar, tokens: IssuedTokens) -> Response {
    let jar = match tokens.device_cookie {
        Some(device) => state.cookies.set_device(jar, device),
        None => jar,
    };
    let jar = state.cookies.set_session(
        jar,
        tokens.fingerprint,
        tokens.refresh_token.clone(),
        tokens.refresh_expires_in,
    );
    let refresh_expires_in = tokens
        .refresh_token
        .as_ref()
        .map(|_| tokens.refresh_expires_in);
    let body = TokenBody {
        access_token: tokens.access_token,
        token_type: "Bearer",
        expires_in: tokens.expires_in,
        refresh_token: tokens.refresh_token,
        refresh_expires_in,
    };
    (jar, Json(body)).into_response()
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterRequest {
    email: String,
    password: String,
    full_name: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 202, description = "Accepted; the same answer whether or not the address has an account", body = AcceptedDoc), (status = 422, description = "Invalid email, weak password or unknown field"), (status = 429, description = "Rate limited")))]
async fn register(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    state
        .identity
        .register(
            &body.email,
            &body.password,
            body.full_name.as_deref(),
            &meta,
        )
        .await?;
    Ok(accepted(
        "If this address can be registered, a verification email is on its way.",
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

/// The answer of a correct password when 2FA is on: no token, cookie or session yet.
#[derive(Serialize, utoipa::ToSchema)]
struct MfaRequiredBody {
    mfa_required: bool,
    /// Single use, 5 minutes, 5 attempts; send it with a code to `/auth/login/mfa`.
    mfa_token: String,
    methods: [&'static str; 2],
}

#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, description = "Tokens (sets the fingerprint, refresh and device cookies), or — with 2FA on — {mfa_required, mfa_token, methods} and nothing else", body = TokenDoc),
        (status = 401, description = "invalid_credentials (identical for unknown, wrong and disabled)"),
        (status = 429, description = "Backoff, lock or throttle; identical for unknown accounts")))]
async fn login(
    State(state): State<AppState>,
    Meta(meta): Meta,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let device = jar.get(state.cookies.device).map(|c| c.value().to_string());
    match state
        .identity
        .login(
            &body.email,
            &body.password,
            device.as_deref(),
            SessionKind::Api,
            &meta,
        )
        .await?
    {
        LoginOutcome::Opened(opened) => Ok(token_response(&state, jar, opened.into_tokens()?)),
        LoginOutcome::SecondFactorRequired { mfa_token } => Ok(Json(MfaRequiredBody {
            mfa_required: true,
            mfa_token,
            methods: ["totp", "backup_code"],
        })
        .into_response()),
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LoginMfaRequest {
    mfa_token: String,
    /// The authenticator's current 6-digit code…
    code: Option<String>,
    /// …or one of the backup codes (exactly one of the two).
    backup_code: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/login/mfa", tag = "auth", request_body = LoginMfaRequest,
    responses((status = 200, description = "Tokens with amr [pwd, otp]", body = TokenDoc),
        (status = 400, description = "invalid-token: the mfa_token is unknown, used, expired, out of attempts or from another client"),
        (status = 401, description = "invalid-code: wrong, replayed or used code (counts toward the lockout)"),
        (status = 422, description = "Neither or both of code and backup_code"),
        (status = 429, description = "Locked or throttled")))]
async fn login_mfa(
    State(state): State<AppState>,
    Meta(meta): Meta,
    jar: CookieJar,
    ApiJson(body): ApiJson<LoginMfaRequest>,
) -> Result<Response, ApiError> {
    let factor = match (&body.code, &body.backup_code) {
        (Some(code), None) => SecondFactor::Totp(code.trim()),
        (None, Some(code)) => SecondFactor::BackupCode(code),
        _ => {
            return Err(ApiError::validation(vec![crate::http::FieldError::new(
                "code",
                "one_required",
                "Send either code or backup_code.",
            )]));
        }
    };
    let device = jar.get(state.cookies.device).map(|c| c.value().to_string());
    let tokens = state
        .identity
        .login_mfa(
            &body.mfa_token,
            factor,
            device.as_deref(),
            SessionKind::Api,
            &meta,
        )
        .await?
        .into_tokens()?;
    Ok(token_response(&state, jar, tokens))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    refresh_token: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, description = "Rotated tokens", body = TokenDoc), (status = 400, description = "invalid_grant; a reused token revokes the session")))]
async fn refresh(
    State(state): State<AppState>,
    Meta(meta): Meta,
    jar: CookieJar,
    ApiJson(body): ApiJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let token = body
        .refresh_token
        .or_else(|| {
            jar.get(state.cookies.refresh)
                .map(|c| c.value().to_string())
        })
        .unwrap_or_default();
    let fingerprint = state.cookies.fingerprint_in(&jar);
    let tokens = state.identity.refresh(&token, fingerprint, &meta).await?;
    Ok(token_response(&state, jar, tokens))
}

#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "Session revoked, token denylisted"), (status = 401, description = "No valid token")))]
async fn logout(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    state.identity.logout(&principal, &meta).await?;
    Ok((state.cookies.clear(jar), StatusCode::NO_CONTENT).into_response())
}

#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "Every session revoked")))]
async fn logout_all(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    state.identity.logout_all(&principal, &meta).await?;
    Ok((state.cookies.clear(jar), StatusCode::NO_CONTENT).into_response())
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReauthRequest {
    password: String,
    /// Required when 2FA is on: an authenticator code or a backup code.
    code: Option<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/reauth", tag = "auth", request_body = ReauthRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "A new access token with a fresh auth_time", body = TokenDoc), (status = 401, description = "Wrong password or code"), (status = 422, description = "2FA is on and no code was sent")))]
async fn reauth(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    jar: CookieJar,
    ApiJson(body): ApiJson<ReauthRequest>,
) -> Result<Response, ApiError> {
    let fingerprint = state.cookies.fingerprint_in(&jar);
    let tokens = state
        .identity
        .reauth(
            &principal,
            &body.password,
            body.code.as_deref(),
            fingerprint,
            &meta,
        )
        .await?;
    Ok(token_response(&state, jar, tokens))
}

#[utoipa::path(get, path = "/api/v1/auth/me", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = super::responses::UserBody)))]
async fn me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<UserBody>, ApiError> {
    let user = state.identity.profile(&principal.user_id).await?;
    Ok(Json(UserBody::from(&user)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateMeRequest {
    /// Absent: unchanged; `null`: cleared; a string: set.
    #[serde(default, deserialize_with = "present")]
    full_name: Option<Option<String>>,
}

/// Tells a present `null` (`Some(None)`) from an absent field (`None`, by `serde(default)`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

#[utoipa::path(patch, path = "/api/v1/auth/me", tag = "auth", request_body = UpdateMeRequest,
    security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = super::responses::UserBody), (status = 422, description = "Unknown field or invalid name")))]
async fn update_me(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    ApiJson(body): ApiJson<UpdateMeRequest>,
) -> Result<Json<UserBody>, ApiError> {
    let user = match body.full_name {
        Some(full_name) => {
            state
                .identity
                .update_profile(&principal.user_id, full_name.as_deref())
                .await?
        }
        None => state.identity.profile(&principal.user_id).await?,
    };
    Ok(Json(UserBody::from(&user)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangePasswordRequest {
    current_password: String,
    new_password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/change-password", tag = "auth", request_body = ChangePasswordRequest,
    security(("bearer" = [])),
    responses((status = 204, description = "Changed; other sessions revoked"), (status = 403, description = "Wrong current password"), (status = 422, description = "Weak new password")))]
async fn change_password(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<ChangePasswordRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .change_password(
            &principal,
            &body.current_password,
            &body.new_password,
            &meta,
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ChangeEmailRequest {
    new_email: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/change-email", tag = "auth", request_body = ChangeEmailRequest,
    security(("bearer" = [])),
    responses((status = 202, description = "Confirmation sent to the new address", body = AcceptedDoc), (status = 401, description = "Step-up required (insufficient_user_authentication)")))]
async fn change_email(
    State(state): State<AppState>,
    RecentAuth(principal): RecentAuth,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<ChangeEmailRequest>,
) -> Result<Response, ApiError> {
    state
        .identity
        .change_email(&principal, &body.new_email, &body.password, &meta)
        .await?;
    Ok(accepted(
        "A confirmation link is on its way to the new address.",
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TokenRequest {
    token: String,
}

#[utoipa::path(post, path = "/api/v1/auth/confirm-email", tag = "auth", request_body = TokenRequest,
    responses((status = 204, description = "Email changed"), (status = 400, description = "invalid-token")))]
async fn confirm_email(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    state.identity.confirm_email(&body.token, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/unlock", tag = "auth", request_body = TokenRequest,
    responses((status = 204, description = "Unlocked"), (status = 400, description = "invalid-token")))]
async fn unlock(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    state.identity.unlock_with_token(&body.token, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/verify-email", tag = "auth", request_body = TokenRequest,
    responses((status = 204, description = "Verified"), (status = 400, description = "invalid-token")))]
async fn verify_email(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<TokenRequest>,
) -> Result<StatusCode, ApiError> {
    state.identity.verify_email(&body.token, &meta).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(post, path = "/api/v1/auth/resend-verification", tag = "auth",
    security(("bearer" = [])),
    responses((status = 202, description = "Sent if not verified yet", body = AcceptedDoc)))]
async fn resend_verification(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Response, ApiError> {
    state.identity.resend_verification(&principal).await?;
    Ok(accepted(
        "If your address is not verified yet, a new link is on its way.",
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EmailRequest {
    email: String,
}

#[utoipa::path(post, path = "/api/v1/auth/forgot-password", tag = "auth", request_body = EmailRequest,
    responses((status = 202, description = "Always the same answer", body = AcceptedDoc)))]
async fn forgot_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<EmailRequest>,
) -> Result<Response, ApiError> {
    state.identity.forgot_password(&body.email, &meta).await?;
    Ok(accepted(
        "If an account uses this address, a reset link is on its way.",
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResetRequest {
    token: String,
    new_password: String,
}

#[utoipa::path(post, path = "/api/v1/auth/reset-password", tag = "auth", request_body = ResetRequest,
    responses((status = 204, description = "Password reset; all sessions revoked"), (status = 400, description = "invalid-token"), (status = 422, description = "Weak password")))]
async fn reset_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<ResetRequest>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .reset_password(&body.token, &body.new_password, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StrengthRequest {
    password: String,
    email: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct StrengthBody {
    acceptable: bool,
    score: u8,
    feedback: Vec<String>,
}

#[utoipa::path(post, path = "/api/v1/auth/password-strength", tag = "auth", request_body = StrengthRequest,
    responses((status = 200, description = "Assessment", body = StrengthBody)))]
async fn password_strength(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<StrengthRequest>,
) -> Result<Json<StrengthBody>, ApiError> {
    let assessment = state
        .identity
        .assess(&body.password, body.email.as_deref())
        .await?;
    let mut feedback: Vec<String> = assessment
        .violations
        .into_iter()
        .map(|v| v.message)
        .collect();
    feedback.extend(assessment.suggestions);
    Ok(Json(StrengthBody {
        acceptable: assessment.acceptable,
        score: assessment.score,
        feedback,
    }))
}

#[utoipa::path(get, path = "/api/v1/auth/sessions", tag = "auth",
    security(("bearer" = [])),
    responses((status = 200, description = "The caller's sessions", body = [super::responses::SessionBody])))]
async fn sessions(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<Vec<SessionBody>>, ApiError> {
    let sessions = state.identity.sessions(&principal.user_id).await?;
    Ok(Json(
        sessions
            .iter()
            .map(|s| SessionBody::new(s, &principal.session_id, state.identity.idle_secs_of(s)))
            .collect(),
    ))
}

#[utoipa::path(delete, path = "/api/v1/auth/sessions/{id}", tag = "auth",
    security(("bearer" = [])),
    responses((status = 204, description = "Revoked"), (status = 404, description = "Not one of the caller's sessions")))]
async fn delete_session(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state
        .identity
        .delete_session(&principal, &id, &meta)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `202 Accepted` body (documentation).
#[derive(Serialize, utoipa::ToSchema)]
pub struct AcceptedDoc {
    pub message: String,
}

/// Token response (documentation).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenDoc {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    pub refresh_token: Option<String>,
    pub refresh_expires_in: Option<u64>,
}

/// The `/api/v1/auth` part of the OpenAPI document.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(register, login, login_mfa, refresh, logout, logout_all, reauth, me, update_me, change_password, change_email,
        confirm_email, verify_email, unlock, resend_verification, forgot_password, reset_password,
        password_strength, sessions, delete_session),
    components(schemas(AcceptedDoc, TokenDoc, MfaRequiredBody, LoginMfaRequest, super::responses::UserBody, super::responses::SessionBody)),
    tags((name = "auth", description = "Accounts, tokens and sessions"))
)]
pub struct AuthApi;
