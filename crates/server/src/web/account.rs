//! `/account` (profile, email, password) and `/account/security` (step-up confirmation, sessions with
//! revoke and sign-out-everywhere, two-factor enrolment with QR code and backup codes, API keys with
//! scopes, expiry, rotation and the one-time display of a new key). The identity service does the
//! work and enforces step-up; these handlers render its answers. Secrets shown once (backup codes,
//! a new API key, the TOTP secret) are rendered into that one response only, which is never cached.

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use base64::Engine;
use serde::Deserialize;
use store::identity::SessionRecord;

use super::context::{AnySignedIn, Layout};
use super::pages::{FieldErrors, failure, render};
use crate::api::extract::Meta;
use crate::api::responses::rfc3339;
use crate::http::ApiError;
use crate::identity::{IdentityError, Principal};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/account", get(account))
        .route("/account/profile", post(update_profile))
        .route("/account/password", post(change_password))
        .route("/account/email", post(change_email))
        .route("/account/resend-verification", post(resend_verification))
        .route("/account/security", get(security))
        .route("/account/reauth", post(reauth))
        .route("/account/sessions/{id}/revoke", post(revoke_session))
        .route("/account/sessions/revoke-all", post(revoke_all))
        .route("/account/2fa/setup", post(totp_setup))
        .route("/account/2fa/enable", post(totp_enable))
        .route("/account/2fa/disable", post(totp_disable))
        .route("/account/2fa/backup-codes", post(backup_codes))
        .route("/account/api-keys", post(create_key))
        .route("/account/api-keys/{id}/rotate", post(rotate_key))
        .route("/account/api-keys/{id}/revoke", post(revoke_key))
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountTemplate {
    layout: Layout,
    email: String,
    full_name: String,
    role: String,
    tier: String,
    verified: bool,
    message: Option<String>,
    error: Option<String>,
    errors: FieldErrors,
}

async fn account_page(
    state: &AppState,
    user: AnySignedIn,
    status: StatusCode,
    message: Option<&str>,
    error: Option<ApiError>,
) -> Response {
    let record = match state.identity.profile(&user.principal.user_id).await {
        Ok(record) => record,
        Err(e) => return failure(user.layout, e),
    };
    if let Some(e) = &error {
        e.log();
    }
    render(
        status,
        &AccountTemplate {
            layout: user.layout,
            verified: record.is_verified(),
            email: record.email,
            full_name: record.full_name.unwrap_or_default(),
            role: record.role,
            tier: record.tier,
            message: message.map(str::to_string),
            errors: error
                .as_ref()
                .map(FieldErrors::from_api)
                .unwrap_or_default(),
            error: error.map(|e| e.detail().to_string()),
        },
    )
}

async fn account(State(state): State<AppState>, user: AnySignedIn) -> Response {
    account_page(&state, user, StatusCode::OK, None, None).await
}

/// The account page after an action: a message on success, the error (with its status) otherwise.
async fn account_after(
    state: &AppState,
    user: AnySignedIn,
    outcome: Result<(), IdentityError>,
    done: &str,
) -> Response {
    match outcome {
        Ok(()) => account_page(state, user, StatusCode::OK, Some(done), None).await,
        Err(e) => {
            let error = ApiError::from(e);
            account_page(state, user, error.status(), None, Some(error)).await
        }
    }
}

#[derive(Deserialize)]
struct ProfileForm {
    #[serde(default)]
    full_name: String,
}

async fn update_profile(
    State(state): State<AppState>,
    user: AnySignedIn,
    axum::Form(form): axum::Form<ProfileForm>,
) -> Response {
    let name = Some(form.full_name.trim()).filter(|n| !n.is_empty());
    let outcome = state
        .identity
        .update_profile(&user.principal.user_id, name)
        .await
        .map(|_| ());
    account_after(&state, user, outcome, "Your name was saved.").await
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(state): State<AppState>,
    Meta(meta): Meta,
    jar: CookieJar,
    user: AnySignedIn,
    axum::Form(form): axum::Form<PasswordForm>,
) -> Response {
    let outcome = state
        .identity
        .change_password(
            &user.principal,
            &form.current_password,
            &form.new_password,
            &meta,
        )
        .await;
    if outcome.is_err() {
        return account_after(&state, user, outcome, "").await;
    }
    // Whoever holds a copy of this browser's cookie is out too: the session continues under a new
    // cookie value.
    let jar = match state.identity.rotate_web_cookie(&user.principal).await {
        Ok(cookie) => state.cookies.set_web_session(jar, cookie),
        Err(e) => return failure(user.layout, e),
    };
    let page = account_after(
        &state,
        user,
        Ok(()),
        "Your password was changed. Every other session was signed out.",
    )
    .await;
    (jar, page).into_response()
}

#[derive(Deserialize)]
struct EmailForm {
    new_email: String,
    password: String,
}

async fn change_email(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: AnySignedIn,
    axum::Form(form): axum::Form<EmailForm>,
) -> Response {
    let outcome = state
        .identity
        .change_email(&user.principal, &form.new_email, &form.password, &meta)
        .await;
    account_after(
        &state,
        user,
        outcome,
        "A confirmation link is on its way to the new address; the change takes effect when you open it.",
    )
    .await
}

async fn resend_verification(State(state): State<AppState>, user: AnySignedIn) -> Response {
    let outcome = state.identity.resend_verification(&user.principal).await;
    account_after(
        &state,
        user,
        outcome,
        "If your address is not verified yet, a new link is on its way.",
    )
    .await
}

pub struct SessionView {
    pub id: String,
    pub kind: String,
    pub created: String,
    pub last_seen: String,
    pub ip: String,
    pub user_agent: String,
    pub current: bool,
}

impl SessionView {
    fn of(s: SessionRecord, current: &str) -> Self {
        Self {
            current: s.id == current,
            id: s.id,
            kind: s.kind,
            created: rfc3339(s.created_at),
            last_seen: rfc3339(s.last_seen_at),
            ip: s.ip.unwrap_or_default(),
            user_agent: s.user_agent.unwrap_or_default(),
        }
    }
}

pub struct KeyView {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub scopes: String,
    pub created: String,
    pub expires: String,
    pub last_used: String,
    pub state: String,
    pub active: bool,
}

/// What the security page shows beside the lists, after an action.
#[derive(Default)]
pub struct Shown {
    pub message: Option<String>,
    pub error: Option<String>,
    pub errors: FieldErrors,
    /// A pending enrolment: the secret, and the QR code as a data URL.
    pub enrolment: Option<(String, String)>,
    pub backup_codes: Vec<String>,
    pub new_key: Option<String>,
}

impl Shown {
    fn error(e: impl Into<ApiError>) -> (StatusCode, Self) {
        let e = e.into();
        e.log();
        let step_up = e.slug() == "step-up-required";
        let message = if step_up {
            "Confirm your password (and code) below first: this change needs a recent sign-in."
                .to_string()
        } else {
            e.detail().to_string()
        };
        (
            e.status(),
            Self {
                errors: FieldErrors::from_api(&e),
                error: Some(message),
                ..Self::default()
            },
        )
    }

    /// A key just issued (created or rotated), shown this once, or why it was not.
    fn new_key(
        result: Result<crate::identity::apikeys::IssuedKey, ApiError>,
        message: &str,
    ) -> (StatusCode, Self) {
        match result {
            Ok(issued) => (
                StatusCode::OK,
                Self {
                    message: Some(message.into()),
                    new_key: Some(issued.key.to_string()),
                    ..Self::default()
                },
            ),
            Err(e) => Self::error(e),
        }
    }

    fn message(text: &str) -> (StatusCode, Self) {
        (
            StatusCode::OK,
            Self {
                message: Some(text.into()),
                ..Self::default()
            },
        )
    }
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityTemplate {
    layout: Layout,
    mfa_enabled: bool,
    backup_remaining: usize,
    recent: bool,
    sessions: Vec<SessionView>,
    keys: Vec<KeyView>,
    scopes: Vec<&'static str>,
    shown: Shown,
}

async fn security_page(
    state: &AppState,
    layout: Layout,
    principal: &Principal,
    (status, shown): (StatusCode, Shown),
) -> Response {
    let user = match state.identity.profile(&principal.user_id).await {
        Ok(user) => user,
        Err(e) => return failure(layout, e),
    };
    let sessions = match state.identity.sessions(&principal.user_id).await {
        Ok(list) => list
            .into_iter()
            .map(|s| SessionView::of(s, &principal.session_id))
            .collect(),
        Err(e) => return failure(layout, e),
    };
    let now = crate::identity::now();
    let keys = match state.identity.list_api_keys(&principal.user_id).await {
        Ok(keys) => keys
            .into_iter()
            .map(|k| {
                let active = k.revoked_at.is_none() && k.expires_at.is_none_or(|e| e > now);
                KeyView {
                    state: if k.revoked_at.is_some() {
                        "revoked".into()
                    } else if !active {
                        "expired".into()
                    } else if k.replaced_by.is_some() {
                        "rotated (in grace)".into()
                    } else {
                        "active".into()
                    },
                    active: active && k.replaced_by.is_none(),
                    prefix: k.lookup_id.clone(),
                    id: k.id,
                    name: k.name,
                    scopes: k.scopes,
                    created: rfc3339(k.created_at),
                    expires: k.expires_at.map(rfc3339).unwrap_or_else(|| "never".into()),
                    last_used: k
                        .last_used_at
                        .map(rfc3339)
                        .unwrap_or_else(|| "never".into()),
                }
            })
            .collect(),
        Err(e) => return failure(layout, e),
    };
    let backup_remaining = if user.has_mfa() {
        state
            .db
            .unused_backup_codes(&user.id)
            .await
            .map(|codes| codes.len())
            .unwrap_or_default()
    } else {
        0
    };
    render(
        status,
        &SecurityTemplate {
            layout,
            mfa_enabled: user.has_mfa(),
            backup_remaining,
            recent: state.identity.require_recent_login(principal).is_ok(),
            sessions,
            keys,
            scopes: security::authz::Scope::ALL
                .iter()
                .map(|s| s.as_str())
                .collect(),
            shown,
        },
    )
}

async fn security(State(state): State<AppState>, user: AnySignedIn) -> Response {
    security_page(
        &state,
        user.layout,
        &user.principal,
        (StatusCode::OK, Shown::default()),
    )
    .await
}

#[derive(Deserialize)]
struct ReauthForm {
    password: String,
    #[serde(default)]
    code: String,
}

async fn reauth(
    State(state): State<AppState>,
    Meta(meta): Meta,
    jar: CookieJar,
    user: AnySignedIn,
    axum::Form(form): axum::Form<ReauthForm>,
) -> Response {
    let code = Some(form.code.trim()).filter(|c| !c.is_empty());
    match state
        .identity
        .web_reauth(&user.principal, &form.password, code, &meta)
        .await
    {
        Ok(cookie) => (
            state.cookies.set_web_session(jar, cookie),
            Redirect::to("/account/security"),
        )
            .into_response(),
        Err(e) => security_page(&state, user.layout, &user.principal, Shown::error(e)).await,
    }
}

async fn revoke_session(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: AnySignedIn,
    Path(id): Path<String>,
) -> Response {
    let shown = match state
        .identity
        .delete_session(&user.principal, &id, &meta)
        .await
    {
        Ok(()) if id == user.principal.session_id => return Redirect::to("/login").into_response(),
        Ok(()) => Shown::message("The session was signed out."),
        Err(e) => Shown::error(e),
    };
    security_page(&state, user.layout, &user.principal, shown).await
}

async fn revoke_all(
    State(state): State<AppState>,
    Meta(meta): Meta,
    jar: CookieJar,
    user: AnySignedIn,
) -> Response {
    match state.identity.logout_all(&user.principal, &meta).await {
        Ok(()) => (state.cookies.clear_web_session(jar), Redirect::to("/login")).into_response(),
        Err(e) => failure(user.layout, e),
    }
}

async fn totp_setup(State(state): State<AppState>, user: AnySignedIn) -> Response {
    let shown = match state.identity.require_recent_login(&user.principal) {
        Err(e) => Shown::error(e),
        Ok(()) => match state.identity.start_totp_enrolment(&user.principal).await {
            Ok(enrolment) => {
                let qr = format!(
                    "data:image/svg+xml;base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(enrolment.qr_svg.as_bytes())
                );
                (
                    StatusCode::OK,
                    Shown {
                        enrolment: Some((enrolment.secret.to_string(), qr)),
                        ..Shown::default()
                    },
                )
            }
            Err(e) => Shown::error(e),
        },
    };
    security_page(&state, user.layout, &user.principal, shown).await
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

async fn totp_enable(
    State(state): State<AppState>,
    Meta(meta): Meta,
    jar: CookieJar,
    user: AnySignedIn,
    axum::Form(form): axum::Form<CodeForm>,
) -> Response {
    if let Err(e) = state.identity.require_recent_login(&user.principal) {
        return security_page(&state, user.layout, &user.principal, Shown::error(e)).await;
    }
    match state
        .identity
        .enable_totp(&user.principal, &form.code, &meta)
        .await
    {
        Ok(codes) => {
            // Privileges changed: this session continues under a new cookie value.
            let jar = match state.identity.rotate_web_cookie(&user.principal).await {
                Ok(cookie) => state.cookies.set_web_session(jar, cookie),
                Err(e) => return failure(user.layout, e),
            };
            let shown = Shown {
                message: Some(
                    "Two-factor authentication is on. Other sessions were signed out.".into(),
                ),
                backup_codes: codes,
                ..Shown::default()
            };
            let page = security_page(
                &state,
                user.layout,
                &user.principal,
                (StatusCode::OK, shown),
            )
            .await;
            (jar, page).into_response()
        }
        Err(e) => security_page(&state, user.layout, &user.principal, Shown::error(e)).await,
    }
}

#[derive(Deserialize)]
struct DisableForm {
    password: String,
    code: String,
}

async fn totp_disable(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: AnySignedIn,
    axum::Form(form): axum::Form<DisableForm>,
) -> Response {
    let shown = match state
        .identity
        .disable_totp(&user.principal, &form.password, &form.code, &meta)
        .await
    {
        Ok(()) => Shown::message("Two-factor authentication is off."),
        Err(e) => Shown::error(e),
    };
    security_page(&state, user.layout, &user.principal, shown).await
}

async fn backup_codes(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: AnySignedIn,
    axum::Form(form): axum::Form<CodeForm>,
) -> Response {
    let shown = match state.identity.require_recent_login(&user.principal) {
        Err(e) => Shown::error(e),
        Ok(()) => match state
            .identity
            .regenerate_backup_codes(&user.principal, &form.code, &meta)
            .await
        {
            Ok(codes) => (
                StatusCode::OK,
                Shown {
                    message: Some("New backup codes: the old ones no longer work.".into()),
                    backup_codes: codes,
                    ..Shown::default()
                },
            ),
            Err(e) => Shown::error(e),
        },
    };
    security_page(&state, user.layout, &user.principal, shown).await
}

/// API keys act for a verified user; staff need 2FA on and a session that used it (as the API's
/// `CurrentUser` guard requires).
async fn key_holder(state: &AppState, principal: &Principal) -> Result<(), ApiError> {
    if !principal.email_verified {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "email-unverified",
            "Verify your email address before managing API keys.",
        ));
    }
    if principal.role.is_staff() {
        let enrolled = state.identity.profile(&principal.user_id).await?.has_mfa();
        if !(enrolled && principal.used_second_factor()) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "mfa-step-up-required",
                "Staff manage API keys only in a session that used a second factor: turn two-factor authentication on and sign in with a code.",
            ));
        }
    }
    Ok(())
}

/// `key_holder` and a recent login: what creating or rotating a key needs.
async fn key_step_up(state: &AppState, principal: &Principal) -> Result<(), ApiError> {
    key_holder(state, principal).await?;
    Ok(state.identity.require_recent_login(principal)?)
}

async fn create_key(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: AnySignedIn,
    axum::Form(form): axum::Form<Vec<(String, String)>>,
) -> Response {
    let mut name = String::new();
    let mut scopes = vec![];
    let mut expires = String::new();
    for (field, value) in form {
        match field.as_str() {
            "name" => name = value,
            "scope" => scopes.push(value),
            "expires_in_days" => expires = value,
            _ => {}
        }
    }
    let expires_in_days = match expires.trim() {
        "" => None,
        text => match text.parse::<u32>() {
            Ok(days) => Some(days),
            Err(_) => {
                let e = ApiError::validation(vec![crate::http::FieldError::new(
                    "expires_in_days",
                    "invalid",
                    "Enter a whole number of days, or leave it empty for no expiry.",
                )]);
                return security_page(&state, user.layout, &user.principal, Shown::error(e)).await;
            }
        },
    };
    let result = match key_step_up(&state, &user.principal).await {
        Err(e) => Err(e),
        Ok(()) => state
            .identity
            .create_api_key(&user.principal, &name, &scopes, expires_in_days, &meta)
            .await
            .map_err(ApiError::from),
    };
    let shown = Shown::new_key(
        result,
        "Your new API key: copy it now, it is shown only this once.",
    );
    security_page(&state, user.layout, &user.principal, shown).await
}

#[derive(Deserialize)]
struct RotateForm {
    #[serde(default)]
    grace_hours: String,
}

async fn rotate_key(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: AnySignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<RotateForm>,
) -> Response {
    let grace = form.grace_hours.trim().parse::<u32>().ok();
    let result = match key_step_up(&state, &user.principal).await {
        Err(e) => Err(e),
        Ok(()) => state
            .identity
            .rotate_api_key(&user.principal, &id, grace, &meta)
            .await
            .map_err(ApiError::from),
    };
    let shown = Shown::new_key(
        result,
        "The key was rotated. Copy the new key now; it is shown only this once.",
    );
    security_page(&state, user.layout, &user.principal, shown).await
}

async fn revoke_key(
    State(state): State<AppState>,
    Meta(meta): Meta,
    user: AnySignedIn,
    Path(id): Path<String>,
) -> Response {
    let result = match key_holder(&state, &user.principal).await {
        Err(e) => Err(e),
        Ok(()) => state
            .identity
            .revoke_api_key(&user.principal, &id, &meta)
            .await
            .map_err(ApiError::from),
    };
    let shown = match result {
        Ok(()) => Shown::message("The key was revoked; it stops working at once."),
        Err(e) => Shown::error(e),
    };
    security_page(&state, user.layout, &user.principal, shown).await
}
