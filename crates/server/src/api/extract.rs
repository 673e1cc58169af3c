//! Request guards. Authorisation lives in these extractor types so a handler cannot forget it:
//!
//! - `AnyCaller`: a valid access token or API key (the request's credential, checked once).
//! - `Authenticated`: a signed-in session — API keys cannot manage keys, sessions, 2FA or the account.
//! - `CurrentUser`: a session of a verified user; staff sessions also need a second factor.
//! - `RequireRole<R>`: a `CurrentUser` holding role `R`.
//! - `RecentAuth`: a session whose login is within the step-up window (RFC 9470).
//! - `RequireScope<S>`: a verified user's session, or an API key holding scope `S`.
//!
//! `Meta` carries the request facts audit records need.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum_extra::extract::cookie::CookieJar;
use security::authz::{Role, Scope};
use security::gcra::{GcraDecision, Quota};
use security::ratelimit::RateLimits;

use crate::http::bearer::Bearer;
use crate::http::{ApiError, ClientBucket, ClientIp, RequestId};
use crate::identity::access::AuthFailure;
use crate::identity::audit::Event;
use crate::identity::{Caller, CallerCredential, Principal, RequestMeta};
use crate::state::AppState;

const MAX_USER_AGENT_CHARS: usize = 256;
/// The header an API key may come in instead of `Authorization`.
pub const API_KEY_HEADER: HeaderName = HeaderName::from_static("x-api-key");

fn unauthenticated(token_sent: bool) -> ApiError {
    let challenge = if token_sent {
        "Bearer realm=\"tradesignal\", error=\"invalid_token\""
    } else {
        "Bearer realm=\"tradesignal\""
    };
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        if token_sent {
            "invalid-token"
        } else {
            "unauthorized"
        },
        if token_sent {
            "The access token or API key is invalid, expired or revoked."
        } else {
            "Authentication is required."
        },
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    )
}

/// The credential a request presents.
enum Presented {
    Nothing,
    AccessToken(String),
    ApiKey(String),
    /// Not `Bearer <token>`, or two credentials at once.
    Malformed,
}

fn presented(parts: &Parts) -> Presented {
    // A repeated header (or a proxy appending one) must not be resolved by picking one silently.
    if parts.headers.get_all(&API_KEY_HEADER).iter().count() > 1
        || parts.headers.get_all(header::AUTHORIZATION).iter().count() > 1
    {
        return Presented::Malformed;
    }
    let key_header = parts.headers.get(&API_KEY_HEADER);
    match (key_header, crate::http::bearer::bearer(&parts.headers)) {
        (Some(_), Bearer::Token(_) | Bearer::Malformed) => Presented::Malformed,
        (Some(value), Bearer::Absent) => match value.to_str() {
            Ok(key) if !key.trim().is_empty() => Presented::ApiKey(key.trim().to_string()),
            _ => Presented::Malformed,
        },
        (None, Bearer::Token(token)) if security::apikey::looks_like_key(token) => {
            Presented::ApiKey(token.to_string())
        }
        (None, Bearer::Token(token)) => Presented::AccessToken(token.to_string()),
        (None, Bearer::Malformed) => Presented::Malformed,
        (None, Bearer::Absent) => Presented::Nothing,
    }
}

/// Marks a request whose credential the rate limiter already checked and refused, so the guards
/// answer 401 without checking it (and reading the database) a second time.
#[derive(Debug, Clone, Copy)]
pub struct CredentialRefused;

/// A caller and, when `limits` were given, the tier quota decision taken in the same round trip.
pub type Authentication = (Caller, Option<(Quota, Option<GcraDecision>)>);

/// Checks the request's credential. `Ok(None)` when there is none; a refused credential is a 401 (a
/// 500 when the check itself failed). The rate limiter calls this once per request and the guards
/// reuse its result from the request's extensions.
pub async fn authenticate(
    parts: &Parts,
    state: &AppState,
    limits: Option<&RateLimits>,
) -> Result<Option<Authentication>, ApiError> {
    let outcome = match presented(parts) {
        Presented::Nothing => return Ok(None),
        Presented::Malformed => return Err(unauthenticated(true)),
        Presented::AccessToken(token) => {
            let fingerprint = fingerprint_cookie(parts, state);
            state
                .identity
                .authenticate_with(&token, fingerprint.as_deref(), limits)
                .await
                .map(|(principal, quota)| (Caller::from(principal), quota))
        }
        Presented::ApiKey(key) => {
            let bucket = parts
                .extensions
                .get::<ClientBucket>()
                .map(|ClientBucket(bucket)| bucket.as_str());
            state.identity.authenticate_key(&key, limits, bucket).await
        }
    };
    match outcome {
        Ok(authenticated) => {
            if let Some(ClientBucket(bucket)) = parts.extensions.get::<ClientBucket>() {
                let (caller, _) = &authenticated;
                let credential = match &caller.credential {
                    CallerCredential::Session(principal) => {
                        format!("session:{}", principal.session_id)
                    }
                    CallerCredential::ApiKey(grant) => format!("api_key:{}", grant.key_id),
                };
                state
                    .identity
                    .note_credential_use(&credential, &caller.user_id, bucket)
                    .await;
            }
            Ok(Some(authenticated))
        }
        Err(AuthFailure::Internal(e)) => Err(ApiError::internal(e)),
        Err(failure) => {
            tracing::info!(reason = %failure, "credential refused");
            Err(unauthenticated(true))
        }
    }
}

/// Facts for audit records.
pub struct Meta(pub RequestMeta);

impl FromRequestParts<AppState> for Meta {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let ip = ClientIp::from_request_parts(parts, state)
            .await
            .ok()
            .map(|ClientIp(ip)| ip.to_string());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| {
                ua.chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_USER_AGENT_CHARS)
                    .collect()
            });
        let request_id = parts
            .extensions
            .get::<RequestId>()
            .map(|id| id.as_str().to_string());
        let client_bucket = parts
            .extensions
            .get::<ClientBucket>()
            .map(|ClientBucket(bucket)| bucket.clone());
        Ok(Meta(RequestMeta {
            ip,
            client_bucket,
            user_agent,
            request_id,
        }))
    }
}

/// The fingerprint cookie's value, if sent.
pub fn fingerprint_cookie(parts: &Parts, state: &AppState) -> Option<String> {
    state
        .cookies
        .fingerprint_in(&CookieJar::from_headers(&parts.headers))
}

/// Any valid credential: an access token or an API key.
pub struct AnyCaller(pub Caller);

impl FromRequestParts<AppState> for AnyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(Self(caller.clone()));
        }
        if parts.extensions.get::<CredentialRefused>().is_some() {
            return Err(unauthenticated(true));
        }
        let (caller, _) = authenticate(parts, state, None)
            .await?
            .ok_or_else(|| unauthenticated(false))?;
        parts.extensions.insert(caller.clone());
        Ok(Self(caller))
    }
}

/// A signed-in session (for `/auth/*`, which unverified users may reach).
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let AnyCaller(caller) = AnyCaller::from_request_parts(parts, state).await?;
        match caller.credential {
            CallerCredential::Session(principal) => Ok(Self(principal)),
            CallerCredential::ApiKey(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "session-required",
                "API keys cannot manage keys, sessions, two-factor authentication or the account: \
                 sign in as the user.",
            )),
        }
    }
}

/// The 403 of a verified email being required.
fn email_unverified() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "email-unverified",
        "Verify your email address first; until then only /api/v1/auth is available.",
    )
}

/// Staff accounts must use 2FA (API.md): without it their credentials reach only `/auth/*`.
fn staff_without_second_factor(enrolled: bool) -> ApiError {
    if enrolled {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "mfa-step-up-required",
            "Staff sessions need a second factor: re-authenticate with a code at POST /api/v1/auth/reauth, \
             or sign in again.",
        )
    } else {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "mfa-enrolment-required",
            "Staff accounts must use two-factor authentication: enrol with POST /api/v1/auth/2fa/totp/setup \
             and /api/v1/auth/2fa/totp/enable, then re-authenticate with a code at POST /api/v1/auth/reauth.",
        )
    }
}

/// The request path for audit details, with anything key-shaped redacted.
fn redacted_path(parts: &Parts) -> String {
    super::key_in_url::redact_keys(parts.uri.path()).into_owned()
}

/// Records an `authz.denied` event for a refused request.
async fn audit_denied(
    parts: &mut Parts,
    state: &AppState,
    caller: &Caller,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let Meta(meta) = Meta::from_request_parts(parts, state).await?;
    let mut event = Event::failure("authz.denied")
        .actor(&caller.user_id)
        .subject(&caller.user_id)
        .details(details);
    if let Some(key) = caller.api_key_id() {
        event = event.api_key(key);
    }
    if let Some(session) = caller.session() {
        event = event.session(&session.session_id);
    }
    state.identity.audit(event, &meta).await;
    Ok(())
}

/// What a session of a verified user (and, for staff, a second factor) needs beyond a valid token.
/// Staff are checked against the database on every request: 2FA turned off (or reset) since the
/// session's login must not leave it admin access.
async fn check_session_user(
    parts: &mut Parts,
    state: &AppState,
    principal: &Principal,
) -> Result<(), ApiError> {
    let staff = principal.role.is_staff();
    if principal.email_verified && !staff {
        return Ok(());
    }
    // Tokens issued before verification or enrolment say so; the database has the final word.
    let user = state
        .identity
        .profile(&principal.user_id)
        .await
        .map_err(ApiError::from)?;
    if !user.is_verified() {
        return Err(email_unverified());
    }
    if staff && !(user.has_mfa() && principal.used_second_factor()) {
        let details =
            serde_json::json!({"required": "second_factor", "path": redacted_path(parts)});
        audit_denied(parts, state, &Caller::from(principal.clone()), details).await?;
        return Err(staff_without_second_factor(user.has_mfa()));
    }
    Ok(())
}

/// A signed-in, verified user: everything outside `/auth` that needs a session.
pub struct CurrentUser(pub Principal);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        check_session_user(parts, state, &principal).await?;
        Ok(Self(principal))
    }
}

/// A role requirement for `RequireRole`.
pub trait RoleRequirement: Send + Sync + 'static {
    const NAME: &'static str;
    fn allows(role: Role) -> bool;
}

/// Support staff or super administrators.
pub struct Staff;

impl RoleRequirement for Staff {
    const NAME: &'static str = "support";

    fn allows(role: Role) -> bool {
        role.is_staff()
    }
}

/// Super administrators only.
pub struct SuperAdmin;

impl RoleRequirement for SuperAdmin {
    const NAME: &'static str = "super_admin";

    fn allows(role: Role) -> bool {
        role == Role::SuperAdmin
    }
}

/// A verified user's session holding role `R` (and, being staff, a second factor); refusals are
/// audited as `authz.denied`. API keys never pass: the admin API needs a signed-in person.
pub struct RequireRole<R: RoleRequirement>(pub Principal, pub PhantomData<R>);

impl<R: RoleRequirement> FromRequestParts<AppState> for RequireRole<R> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let CurrentUser(principal) = CurrentUser::from_request_parts(parts, state).await?;
        if R::allows(principal.role) {
            return Ok(Self(principal, PhantomData));
        }
        let details = serde_json::json!({"required": R::NAME, "path": redacted_path(parts)});
        audit_denied(parts, state, &Caller::from(principal), details).await?;
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You are not allowed to do this.",
        ))
    }
}

/// A signed-in session whose login is recent enough for a sensitive operation (RFC 9470).
pub struct RecentAuth(pub Principal);

impl FromRequestParts<AppState> for RecentAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        state.identity.require_recent_login(&principal)?;
        Ok(Self(principal))
    }
}

/// A scope requirement for `RequireScope`.
pub trait ScopeRequirement: Send + Sync + 'static {
    const SCOPE: Scope;
}

macro_rules! scope_requirement {
    ($($name:ident => $scope:expr),* $(,)?) => {
        $(
            #[doc = concat!("Requires the `", stringify!($name), "` scope.")]
            pub struct $name;

            impl ScopeRequirement for $name {
                const SCOPE: Scope = $scope;
            }
        )*
    };
}

scope_requirement! {
    MarketRead => Scope::MarketRead,
    WatchlistsRead => Scope::WatchlistsRead,
    WatchlistsWrite => Scope::WatchlistsWrite,
    AlertsRead => Scope::AlertsRead,
    AlertsWrite => Scope::AlertsWrite,
}

/// A verified user whose credential holds scope `S`: their own session (every scope) or an API key
/// created with `S`. A key acts with its owner's current role and tier and never beyond its scopes.
/// Refusals are audited as `authz.denied`.
pub struct RequireScope<S: ScopeRequirement>(pub Caller, pub PhantomData<S>);

impl<S: ScopeRequirement> FromRequestParts<AppState> for RequireScope<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let AnyCaller(caller) = AnyCaller::from_request_parts(parts, state).await?;
        match &caller.credential {
            CallerCredential::Session(principal) => {
                check_session_user(parts, state, principal).await?;
            }
            CallerCredential::ApiKey(grant) => {
                if !caller.email_verified {
                    return Err(email_unverified());
                }
                if caller.role.is_staff() && !grant.owner_mfa_enabled {
                    let details = serde_json::json!({"required": "second_factor", "path": redacted_path(parts)});
                    audit_denied(parts, state, &caller, details).await?;
                    return Err(staff_without_second_factor(false));
                }
            }
        }
        if caller.has_scope(S::SCOPE) {
            if let Some(key) = caller.api_key_id() {
                // Usage counts the requests a key was allowed to make.
                let ip = parts
                    .extensions
                    .get::<ClientIp>()
                    .map(|ClientIp(ip)| ip.to_string());
                state
                    .identity
                    .usage
                    .record(key, crate::identity::now(), ip.as_deref());
            }
            return Ok(Self(caller, PhantomData));
        }
        let details =
            serde_json::json!({"required_scope": S::SCOPE.as_str(), "path": redacted_path(parts)});
        audit_denied(parts, state, &caller, details).await?;
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient-scope",
            format!("This credential lacks the {} scope.", S::SCOPE.as_str()),
        ))
    }
}
