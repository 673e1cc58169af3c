//! Browser sessions (`kind = web`): opened by the same login steps as API sessions, carried by an
//! opaque HttpOnly cookie whose SHA-256 is the only stored form, and checked against the database on
//! every request — so logout, logout-all, a password change, an admin's disable or a role change hold
//! on the next request on every instance, with no cache to go stale. Idle and absolute timeouts are
//! their own (30 minutes and 12 hours by default).

use std::time::Duration;

use security::authz::{Role, Tier};
use security::tokens::hash_token;
use store::identity::SessionRecord;

use super::audit::Event;
use super::sessions::{IssuedTokens, unix};
use super::{Identity, IdentityError, Principal, RequestMeta, now};

/// A web session's `last_seen_at` is written at most this often (not on every page view).
const TOUCH_EVERY_SECS: i64 = 60;

/// Which client a login is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionKind {
    /// A program: access and refresh tokens.
    Api,
    /// A browser: a session cookie.
    Web,
}

impl SessionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Web => "web",
        }
    }
}

/// A browser's new session. No `Debug`: the cookie is a credential.
pub struct WebSignIn {
    /// The session cookie's value.
    pub cookie: String,
    pub session_id: String,
    /// A new device cookie for this browser (after a login without a valid one).
    pub device_cookie: Option<String>,
}

/// A completed login. No `Debug`: both carry credentials.
pub enum Opened {
    Api(IssuedTokens),
    Web(WebSignIn),
}

impl Opened {
    /// The tokens of an API login (an internal error if a web session was opened instead).
    pub fn into_tokens(self) -> Result<IssuedTokens, IdentityError> {
        match self {
            Self::Api(tokens) => Ok(tokens),
            Self::Web(_) => Err(IdentityError::Internal(anyhow::anyhow!(
                "a web session was opened where tokens were expected"
            ))),
        }
    }

    /// The cookie of a web login (an internal error if tokens were issued instead).
    pub fn into_web(self) -> Result<WebSignIn, IdentityError> {
        match self {
            Self::Web(web) => Ok(web),
            Self::Api(_) => Err(IdentityError::Internal(anyhow::anyhow!(
                "tokens were issued where a web session was expected"
            ))),
        }
    }
}

/// A session cookie already resolved for this request (by the rate limiter, which charges the
/// user's tier quota), so the web context does not read the database a second time.
#[derive(Debug, Clone)]
pub struct ResolvedWebSession {
    pub principal: Principal,
    pub email: String,
}

/// Why a session cookie does not sign anyone in (kept apart for logs; the browser is simply sent to
/// the login page).
#[derive(Debug, thiserror::Error)]
pub enum WebAuthFailure {
    #[error("no web session has this cookie")]
    Unknown,
    #[error("the web session was revoked, expired or idle too long")]
    Ended,
    #[error("the account is disabled")]
    Disabled,
    #[error(transparent)]
    Internal(#[from] IdentityError),
}

impl Identity {
    /// How long a session of `kind` may live from its login.
    pub fn session_lifetime(&self, kind: SessionKind) -> Duration {
        match kind {
            SessionKind::Api => self.settings.api_session_lifetime,
            SessionKind::Web => self.settings.web_session_lifetime,
        }
    }

    /// The idle timeout of `session`, by its kind.
    pub fn idle_secs_of(&self, session: &SessionRecord) -> i64 {
        if session.kind == SessionKind::Web.as_str() {
            i64::try_from(self.settings.web_session_idle.as_secs()).unwrap_or(i64::MAX)
        } else {
            self.idle_secs()
        }
    }

    /// The signed-in user behind a session cookie, and their email address. Reads the session and the user from the database
    /// (the source of truth for revocation, role and tier) and records activity at most once a minute.
    pub async fn authenticate_web(
        &self,
        cookie: &str,
        meta: &RequestMeta,
    ) -> Result<(Principal, String), WebAuthFailure> {
        if !security::tokens::opaque::looks_like_token(cookie) {
            return Err(WebAuthFailure::Unknown);
        }
        let session = self
            .db
            .session_by_web_token(&hash_token(cookie))
            .await
            .map_err(IdentityError::from)?
            .ok_or(WebAuthFailure::Unknown)?;
        let at = now();
        if !session.is_active(at, self.idle_secs_of(&session)) {
            return Err(WebAuthFailure::Ended);
        }
        let user = self
            .db
            .user_by_id(&session.user_id)
            .await
            .map_err(IdentityError::from)?
            .ok_or(WebAuthFailure::Ended)?;
        if user.is_disabled() {
            self.revoke_session(&session.user_id, &session.id, "account_disabled")
                .await?;
            return Err(WebAuthFailure::Disabled);
        }
        if at - session.last_seen_at >= TOUCH_EVERY_SECS {
            self.db
                .touch_session(&session.id, at, meta.ip.as_deref())
                .await
                .map_err(IdentityError::from)?;
        }
        let role = user.role.parse::<Role>().map_err(|_| {
            IdentityError::Internal(anyhow::anyhow!("user {} has an unknown role", user.id))
        })?;
        let tier = user.tier.parse::<Tier>().map_err(|_| {
            IdentityError::Internal(anyhow::anyhow!("user {} has an unknown tier", user.id))
        })?;
        let principal = Principal {
            user_id: user.id.clone(),
            session_id: session.id.clone(),
            role,
            tier,
            email_verified: user.is_verified(),
            auth_time: unix(session.auth_time),
            amr: session
                .amr
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            // A web session has no access token; nothing is denylisted by token id.
            jti: String::new(),
            expires_at: unix(session.expires_at),
        };
        Ok((principal, user.email))
    }

    /// Signs a browser out: its session ends on every instance at once (the cookie is checked against
    /// the database on each request).
    pub async fn web_logout(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        self.revoke_session(&principal.user_id, &principal.session_id, "logout")
            .await?;
        self.audit(
            Event::success("auth.logout")
                .actor(&principal.user_id)
                .subject(&principal.user_id)
                .session(&principal.session_id)
                .details(serde_json::json!({"kind": "web"})),
            meta,
        )
        .await;
        Ok(())
    }

    /// Step-up in the browser: the same checks as `/auth/reauth`, then a new cookie value for the
    /// session (the old one stops working): privileges grew, so the session identifier changes.
    pub async fn web_reauth(
        &self,
        principal: &Principal,
        password: &str,
        code: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<String, IdentityError> {
        self.confirm_reauth(principal, password, code, meta).await?;
        self.rotate_web_cookie(principal).await
    }

    /// A new cookie value for this web session (after a privilege change such as turning 2FA on).
    pub async fn rotate_web_cookie(&self, principal: &Principal) -> Result<String, IdentityError> {
        let fresh = security::tokens::OpaqueToken::generate();
        if !self
            .db
            .set_web_token_hash(&principal.session_id, &fresh.hash)
            .await?
        {
            return Err(IdentityError::Internal(anyhow::anyhow!(
                "web session {} not found to rotate its cookie",
                principal.session_id
            )));
        }
        Ok(fresh.token)
    }

    /// Ends the session a browser held when it signed in again (a new login never reuses it).
    pub async fn end_replaced_web_session(
        &self,
        previous: &Principal,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        if self
            .revoke_session(&previous.user_id, &previous.session_id, "replaced_by_login")
            .await?
        {
            self.audit(
                Event::success("session.revoked")
                    .actor(&previous.user_id)
                    .subject(&previous.user_id)
                    .session(&previous.session_id)
                    .details(serde_json::json!({"reason": "replaced_by_login"})),
                meta,
            )
            .await;
        }
        Ok(())
    }
}
