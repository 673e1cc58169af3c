//! Access-token validation: signature and claims, the fingerprint cookie, then the deny list and the
//! session's state in one key-value round trip (shared with the tier quota), or the database when the
//! store cannot answer or revocations are waiting to be written.

use security::authz::{Role, Tier};
use security::gcra::{GcraDecision, Quota};
use security::ratelimit::RateLimits;
use security::tokens::{AccessClaims, fingerprint_hash};
use subtle::ConstantTimeEq;

use super::kv_keys::{deny_key, sv_key, user_rate_key};
use super::revocation::VERSION_CACHE_TTL;
use super::sessions::unix;
use super::{Identity, Principal, now};

/// Why a credential was refused; every variant but `Internal` becomes a 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials")]
    Missing,
    #[error("token rejected: {0}")]
    Rejected(String),
    #[error("internal: {0:#}")]
    Internal(anyhow::Error),
}

impl Identity {
    /// Validates an access token and its fingerprint cookie: signature and claims, then the deny list
    /// and session state in one store round trip (the database when the store cannot answer).
    pub async fn authenticate(
        &self,
        token: &str,
        fingerprint: Option<&str>,
    ) -> Result<Principal, AuthFailure> {
        self.authenticate_with(token, fingerprint, None)
            .await
            .map(|(principal, _)| principal)
    }

    /// `authenticate`, and with `limits` the user's tier quota spent in the same store round trip as
    /// the revocation lookup (one trip per authenticated request). The decision is `None` when the
    /// limiter could not answer.
    pub async fn authenticate_with(
        &self,
        token: &str,
        fingerprint: Option<&str>,
        limits: Option<&RateLimits>,
    ) -> Result<(Principal, Option<(Quota, Option<GcraDecision>)>), AuthFailure> {
        let claims = self
            .codec
            .verify(token)
            .map_err(|e| AuthFailure::Rejected(e.to_string()))?;
        let presented = fingerprint.map(fingerprint_hash).unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(claims.fgp.as_bytes())) {
            return Err(AuthFailure::Rejected("fingerprint mismatch".into()));
        }
        let role = claims
            .role
            .parse::<Role>()
            .map_err(|()| AuthFailure::Rejected("unknown role".into()))?;
        let tier = claims
            .tier
            .parse::<Tier>()
            .map_err(|()| AuthFailure::Rejected("unknown tier".into()))?;
        let keys = [
            deny_key(&claims.sub, &claims.jti),
            sv_key(&claims.sub, &claims.sid),
        ];
        let reads = [keys[0].as_str(), keys[1].as_str()];
        // While revocations wait to be written, the store may hold stale entries: ask the database.
        let store_trusted = self.store_trusted().await;
        let quota = limits.map(|l| l.tier(tier));
        let rate_key = user_rate_key(&claims.sub);
        let (lookup, decision) = match (quota, store_trusted) {
            (Some(quota), true) => match self
                .limiter
                .gcra_with_reads(&rate_key, quota, 1, &reads)
                .await
            {
                Ok((decision, values)) => (Ok(values), Some(decision)),
                Err(e) => (Err(e), None),
            },
            (Some(quota), false) => (
                Err(security::KvError::Unavailable("revocations pending".into())),
                self.limiter.gcra(&rate_key, quota, 1).await.ok(),
            ),
            (None, true) => (self.kv.get_many(&reads).await, None),
            (None, false) => (
                Err(security::KvError::Unavailable("revocations pending".into())),
                None,
            ),
        };
        let cached = match lookup {
            Ok(values) => Some(values),
            // A key-naming bug must not turn the tier quota off quietly.
            Err(e @ security::KvError::CrossSlot(_)) => {
                return Err(AuthFailure::Internal(anyhow::Error::new(e)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "key-value store unavailable; checking the session in the database");
                metrics::counter!("tradesignal_auth_store_fallback_total").increment(1);
                None
            }
        };
        match cached.as_deref() {
            Some([Some(_), _]) => return Err(AuthFailure::Rejected("token logged out".into())),
            Some([None, Some(v)]) if v == "r" => {
                return Err(AuthFailure::Rejected("session revoked".into()));
            }
            Some([None, Some(v)]) if v.parse::<u64>().ok() == Some(claims.sv) => {}
            Some([None, Some(_)]) => {
                return Err(AuthFailure::Rejected("token version superseded".into()));
            }
            _ => {
                self.check_session_in_database(&claims, cached.is_some())
                    .await?
            }
        }
        let principal = Principal {
            user_id: claims.sub,
            session_id: claims.sid,
            role,
            tier,
            email_verified: claims.evf,
            auth_time: claims.auth_time,
            amr: claims.amr,
            jti: claims.jti,
            expires_at: claims.exp,
        };
        Ok((principal, quota.map(|q| (q, decision))))
    }

    async fn check_session_in_database(
        &self,
        claims: &AccessClaims,
        store_up: bool,
    ) -> Result<(), AuthFailure> {
        let internal = |e: store::StoreError| AuthFailure::Internal(e.into());
        let session = self.db.session_by_id(&claims.sid).await.map_err(internal)?;
        let Some(session) = session.filter(|s| s.user_id == claims.sub) else {
            return Err(AuthFailure::Rejected("unknown session".into()));
        };
        if session.revoked_at.is_some() || session.expires_at <= now() {
            if store_up {
                self.mark_revoked(&claims.sub, &session.id).await;
            }
            return Err(AuthFailure::Rejected("session ended".into()));
        }
        if unix(session.token_version) != claims.sv {
            return Err(AuthFailure::Rejected("token version superseded".into()));
        }
        let user = self.db.user_by_id(&claims.sub).await.map_err(internal)?;
        if user.is_none_or(|u| u.is_disabled()) {
            return Err(AuthFailure::Rejected("account disabled".into()));
        }
        if store_up {
            // Only if absent: a revocation written since the database was read must not be replaced.
            let _ = self
                .kv
                .set_if_absent(
                    &sv_key(&claims.sub, &session.id),
                    &session.token_version.to_string(),
                    VERSION_CACHE_TTL,
                )
                .await;
        }
        Ok(())
    }
}
