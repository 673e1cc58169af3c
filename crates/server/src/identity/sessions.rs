//! Token issuance and rotation for sessions: access tokens, refresh-token rotation with reuse
//! detection, logout, the session list. Logins (which create sessions) are in `login`; revocation
//! state in `revocation`; access-token validation in `access`.

use std::time::Duration;

use security::tokens::{AccessClaims, OpaqueToken, fingerprint_hash, grace, hash_token};
use store::identity::{SessionRecord, UserRecord};

use super::audit::Event;
use super::{ACCESS_TTL, Identity, IdentityError, Principal, RequestMeta, now};

/// What a successful login, refresh or re-authentication hands the client. No `Debug`: every field
/// but the lifetimes is a secret.
pub struct IssuedTokens {
    pub access_token: String,
    pub expires_in: u64,
    /// `None` for `/reauth`, which leaves the refresh token as it is.
    pub refresh_token: Option<String>,
    pub refresh_expires_in: u64,
    /// The fingerprint cookie's value; its hash is in the access token.
    pub fingerprint: String,
    /// A new device cookie for this browser (after a login without a valid one).
    pub device_cookie: Option<String>,
}

pub(super) fn unix(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0)
}

impl Identity {
    /// The idle timeout of API sessions, in seconds.
    pub fn idle_secs(&self) -> i64 {
        i64::try_from(self.settings.session_idle.as_secs()).unwrap_or(i64::MAX)
    }

    /// Signs an access token for `session` of `user`.
    fn access_token(
        &self,
        user: &UserRecord,
        session: &SessionRecord,
        fingerprint: &str,
    ) -> Result<String, IdentityError> {
        let issued = unix(now());
        let claims = AccessClaims {
            iss: self.codec.issuer().to_string(),
            aud: self.codec.audience().to_string(),
            sub: user.id.clone(),
            sid: session.id.clone(),
            jti: uuid::Uuid::new_v4().to_string(),
            iat: issued,
            nbf: issued,
            exp: issued + ACCESS_TTL.as_secs(),
            auth_time: unix(session.auth_time),
            amr: session
                .amr
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            role: user.role.clone(),
            tier: user.tier.clone(),
            fgp: fingerprint_hash(fingerprint),
            sv: unix(session.token_version),
            evf: user.is_verified(),
        };
        self.codec
            .issue(&claims)
            .map_err(|e| IdentityError::Internal(e.into()))
    }

    pub(super) fn tokens(
        &self,
        user: &UserRecord,
        session: &SessionRecord,
        refresh: Option<String>,
        fingerprint: Option<String>,
    ) -> Result<IssuedTokens, IdentityError> {
        let fingerprint = fingerprint.unwrap_or_else(|| security::random::token(32));
        Ok(IssuedTokens {
            access_token: self.access_token(user, session, &fingerprint)?,
            expires_in: ACCESS_TTL.as_secs(),
            refresh_token: refresh,
            refresh_expires_in: unix(session.expires_at - now()),
            fingerprint,
            device_cookie: None,
        })
    }

    /// `POST /auth/refresh`: rotates the refresh token. A token used twice outside the grace window
    /// means it was stolen or replayed: the whole session is revoked.
    pub async fn refresh(
        &self,
        token: &str,
        fingerprint: Option<String>,
        meta: &RequestMeta,
    ) -> Result<IssuedTokens, IdentityError> {
        if !security::tokens::opaque::looks_like_token(token) {
            return Err(IdentityError::InvalidGrant);
        }
        let hash = hash_token(token);
        let record = self
            .db
            .refresh_token(&hash)
            .await?
            .ok_or(IdentityError::InvalidGrant)?;
        let at = now();
        let session = self
            .db
            .session_by_id(&record.session_id)
            .await?
            .ok_or(IdentityError::InvalidGrant)?;
        self.limit(&format!("rl:refresh:{}", session.id), "refresh")
            .await?;
        if !session.is_active(at, self.idle_secs()) || record.expires_at <= at {
            return Err(IdentityError::InvalidGrant);
        }
        let user = self
            .db
            .user_by_id(&session.user_id)
            .await?
            .ok_or(IdentityError::InvalidGrant)?;
        if user.is_disabled() {
            self.revoke_session(&session.user_id, &session.id, "account_disabled")
                .await?;
            return Err(IdentityError::InvalidGrant);
        }

        // The grace hand-over is bound to the browser that rotated: a thief replaying the old token
        // from elsewhere (another fingerprint cookie) gets reuse detection, not the new token.
        let browser = fingerprint
            .as_deref()
            .map_or_else(|| "-".to_string(), fingerprint_hash);
        let child = OpaqueToken::generate();
        if self.db.claim_refresh_token(&hash, at).await? {
            if let Some(sealed) = grace::seal(token, &child.token)
                && !self.settings.refresh_grace.is_zero()
                && let Err(e) = self
                    .kv
                    .set(
                        &format!("rtg:{hash}"),
                        &format!("{browser}.{sealed}"),
                        self.settings.refresh_grace,
                    )
                    .await
            {
                tracing::warn!(error = %e, "refresh grace entry not stored; a concurrent refresh will fail");
            }
            self.db
                .insert_refresh_token(
                    &session.id,
                    &child.hash,
                    record.generation + 1,
                    at,
                    session.expires_at,
                )
                .await?;
            self.db
                .touch_session(&session.id, at, meta.ip.as_deref())
                .await?;
            return self.tokens(&user, &session, Some(child.token), fingerprint);
        }

        // Already used. Within the grace window this is a concurrent refresh: hand out the winner's token.
        let used_at = self
            .db
            .refresh_token(&hash)
            .await?
            .and_then(|r| r.used_at)
            .unwrap_or(0);
        let grace_secs = i64::try_from(self.settings.refresh_grace.as_secs()).unwrap_or(0);
        if grace_secs > 0 && at - used_at <= grace_secs {
            for _ in 0..30 {
                if let Ok(Some(entry)) = self.kv.get(&format!("rtg:{hash}")).await {
                    let (owner, sealed) = entry.split_once('.').unwrap_or(("", ""));
                    if owner != browser {
                        break;
                    }
                    if let Some(winner) = grace::open(token, sealed) {
                        return self.tokens(&user, &session, Some(winner), fingerprint);
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if self
                .kv
                .get(&format!("rtg:{hash}"))
                .await
                .ok()
                .flatten()
                .is_none()
            {
                // No hand-over stored (the store is down or the window closed): refuse, but a benign
                // race is not proof of theft.
                return Err(IdentityError::InvalidGrant);
            }
        }

        self.revoke_session(&session.user_id, &session.id, "refresh_token_reuse")
            .await?;
        self.audit(
            Event::failure("auth.refresh.reuse_detected")
                .subject(&user.id)
                .session(&session.id)
                .details(serde_json::json!({"generation": record.generation})),
            meta,
        )
        .await;
        self.observe(
            "refresh_token_reuse",
            &user.id,
            Some(&user.id),
            serde_json::json!({"session_id": session.id}),
            meta,
        )
        .await;
        tracing::warn!(session_id = %session.id, "refresh token reuse detected; session revoked");
        metrics::counter!("tradesignal_refresh_reuse_total").increment(1);
        Err(IdentityError::InvalidGrant)
    }

    /// `POST /auth/logout`: ends this session and denylists this access token until it expires.
    pub async fn logout(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        self.revoke_session(&principal.user_id, &principal.session_id, "logout")
            .await?;
        let remaining = principal.expires_at.saturating_sub(unix(now())) + 60;
        self.deny_access_token(
            &principal.user_id,
            &principal.jti,
            Duration::from_secs(remaining),
        )
        .await;
        self.audit(
            Event::success("auth.logout")
                .actor(&principal.user_id)
                .subject(&principal.user_id)
                .session(&principal.session_id),
            meta,
        )
        .await;
        Ok(())
    }

    /// `POST /auth/logout-all`: a new security stamp and every session revoked.
    pub async fn logout_all(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        self.db
            .set_security_stamp(&principal.user_id, &security::random::token(16), now())
            .await?;
        let count = self
            .revoke_user_sessions(&principal.user_id, None, "logout_all")
            .await?;
        self.audit(
            Event::success("auth.logout_all")
                .actor(&principal.user_id)
                .subject(&principal.user_id)
                .details(serde_json::json!({"sessions": count})),
            meta,
        )
        .await;
        Ok(())
    }

    /// The user's usable sessions.
    pub async fn sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>, IdentityError> {
        let at = now();
        Ok(self
            .db
            .active_sessions(user_id, at)
            .await?
            .into_iter()
            .filter(|s| s.is_active(at, self.idle_secs_of(s)))
            .collect())
    }

    /// `DELETE /auth/sessions/{id}`: only the caller's own sessions; anything else is "not found".
    pub async fn delete_session(
        &self,
        principal: &Principal,
        session_id: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let session = self.db.session_by_id(session_id).await?;
        match session {
            Some(s) if s.user_id == principal.user_id && s.revoked_at.is_none() => {
                self.revoke_session(&s.user_id, &s.id, "user_revoked")
                    .await?;
                self.audit(
                    Event::success("session.revoked")
                        .actor(&principal.user_id)
                        .subject(&principal.user_id)
                        .session(&s.id),
                    meta,
                )
                .await;
                Ok(())
            }
            _ => Err(IdentityError::NotFound),
        }
    }
}
