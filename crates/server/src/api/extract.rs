//! Request guards. A handler that takes `Authenticated` cannot run without a valid access token,
//! `CurrentUser` additionally needs a verified email, `RequireRole<R>` a role, `RecentAuth` a login
//! within the step-up window, `RequireScope<S>` a credential holding scope `S`. `Meta` carries the
//! request facts audit records need.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum_extra::extract::cookie::CookieJar;
use security::authz::{Role, Scope};

use crate::http::bearer::Bearer;
use crate::http::{ApiError, ClientIp, RequestId};
use crate::identity::audit::Event;
use crate::identity::sessions::AuthFailure;
use crate::identity::{Principal, RequestMeta};
use crate::state::AppState;

const MAX_USER_AGENT_CHARS: usize = 256;

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
            "The access token is invalid, expired or revoked."
        } else {
            "Authentication is required."
        },
    )
    .with_header(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    )
}

fn bearer(parts: &Parts) -> Result<Option<String>, ApiError> {
    match crate::http::bearer::bearer(&parts.headers) {
        Bearer::Absent => Ok(None),
        Bearer::Malformed => Err(unauthenticated(true)),
        Bearer::Token(token) => Ok(Some(token.to_string())),
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
        Ok(Meta(RequestMeta {
            ip,
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

/// The bearer token (if well-formed) and fingerprint cookie of a request, for authentication outside an
/// extractor (the rate limiter authenticates once, extractors reuse the result).
pub fn fingerprint_bearer(parts: &Parts, state: &AppState) -> Option<(String, Option<String>)> {
    let token = bearer(parts).ok().flatten()?;
    Some((token, fingerprint_cookie(parts, state)))
}

/// Any valid access token (for `/auth/*`, which unverified users may reach).
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(principal) = parts.extensions.get::<Principal>() {
            return Ok(Self(principal.clone()));
        }
        let token = bearer(parts)?.ok_or_else(|| unauthenticated(false))?;
        let fingerprint = fingerprint_cookie(parts, state);
        match state
            .identity
            .authenticate(&token, fingerprint.as_deref())
            .await
        {
            Ok(principal) => {
                parts.extensions.insert(principal.clone());
                Ok(Self(principal))
            }
            Err(AuthFailure::Internal(e)) => Err(ApiError::internal(e)),
            Err(failure) => {
                tracing::info!(reason = %failure, "access token refused");
                Err(unauthenticated(true))
            }
        }
    }
}

/// An authenticated user whose email is verified: everything outside `/auth`.
pub struct CurrentUser(pub Principal);

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Authenticated(principal) = Authenticated::from_request_parts(parts, state).await?;
        // Tokens issued before verification say so; the database has the final word.
        if !principal.email_verified {
            let user = state
                .identity
                .profile(&principal.user_id)
                .await
                .map_err(ApiError::from)?;
            if !user.is_verified() {
                return Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "email-unverified",
                    "Verify your email address first; until then only /api/v1/auth is available.",
                ));
            }
        }
        Ok(Self(principal))
    }
}

/// Records an `authz.denied` event for a refused request.
async fn audit_denied(
    parts: &mut Parts,
    state: &AppState,
    principal: &Principal,
    details: serde_json::Value,
) -> Result<(), ApiError> {
    let Meta(meta) = Meta::from_request_parts(parts, state).await?;
    state
        .identity
        .audit(
            Event::failure("authz.denied")
                .actor(&principal.user_id)
                .subject(&principal.user_id)
                .details(details),
            &meta,
        )
        .await;
    Ok(())
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

/// A verified user holding role `R`; refusals are audited as `authz.denied`.
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
        let details = serde_json::json!({"required": R::NAME, "path": parts.uri.path()});
        audit_denied(parts, state, &principal, details).await?;
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "You are not allowed to do this.",
        ))
    }
}

/// An authenticated user whose login is recent enough for a sensitive operation (RFC 9470).
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

/// A verified user whose credential holds scope `S` (a user's own session holds every scope; an
/// API key only those it was created with). Refusals are audited as `authz.denied`.
pub struct RequireScope<S: ScopeRequirement>(pub Principal, pub PhantomData<S>);

impl<S: ScopeRequirement> FromRequestParts<AppState> for RequireScope<S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let CurrentUser(principal) = CurrentUser::from_request_parts(parts, state).await?;
        if principal.has_scope(S::SCOPE) {
            return Ok(Self(principal, PhantomData));
        }
        let details =
            serde_json::json!({"required_scope": S::SCOPE.as_str(), "path": parts.uri.path()});
        audit_denied(parts, state, &principal, details).await?;
        Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient-scope",
            format!("This credential lacks the {} scope.", S::SCOPE.as_str()),
        ))
    }
}
