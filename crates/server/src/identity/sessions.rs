//! Logins, token issuance and rotation, access-token validation, logout and revocation.
//!
//! Revocation state lives in the key-value store so that checking a token costs one round trip: `sv:{sid}`
//! holds the session's token version (or `r` once revoked) and `deny:{jti}` marks a logged-out token.
//! Both are read with one `MGET`. When the store has no entry or is unreachable, the database — the
//! source of truth — is asked instead and the entry is written back.

use std::time::Duration;

use anyhow::Context;
use security::authz::{Role, Tier};
use security::gcra::{GcraDecision, Quota};
use security::password::Verification;
use security::ratelimit::RateLimits;
use security::tokens::{AccessClaims, OpaqueToken, fingerprint_hash, grace, hash_token};
use store::identity::{NewSession, SessionRecord, UserRecord};
use subtle::ConstantTimeEq;

use super::abuse::account_of;
use super::audit::Event;
use super::{
    ACCESS_TTL, API_SESSION_LIFETIME, Identity, IdentityError, Principal, RequestMeta, now,
};

/// How long a revoked marker stays in the store: longer than any access token can live.
const REVOKED_MARKER_TTL: Duration = Duration::from_secs(16 * 60);
/// How long a cached token version may be served from the store before the database is asked again.
const VERSION_CACHE_TTL: Duration = Duration::from_secs(15 * 60);
/// The longest password we spend a hash on at login (longer ones cannot be valid under any policy).
const MAX_LOGIN_PASSWORD_CHARS: usize = 1024;

/// What a successful login, refresh or re-authentication hands the client.
#[derive(Debug)]
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

/// The outcome of an email + password check.
#[derive(Debug)]
pub enum Credentials {
    Valid(UserRecord),
    /// Wrong password, unknown email or disabled account; `account` (id, email) is for the audit trail
    /// and lock notices only, never for the answer.
    Invalid {
        account: Option<(String, String)>,
    },
}

/// Why an access token was refused; every variant becomes a 401.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    #[error("no credentials")]
    Missing,
    #[error("token rejected: {0}")]
    Rejected(String),
    #[error("internal: {0:#}")]
    Internal(anyhow::Error),
}

fn sv_key(session_id: &str) -> String {
    format!("sv:{session_id}")
}

fn deny_key(jti: &str) -> String {
    format!("deny:{jti}")
}

fn unix(secs: i64) -> u64 {
    u64::try_from(secs).unwrap_or(0)
}

impl Identity {
    fn idle_secs(&self) -> i64 {
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

    fn tokens(
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

    /// Checks email and password with the same cost whether or not the account exists; a correct
    /// password on an imported bcrypt hash (or weaker argon2 parameters) upgrades the stored hash.
    pub async fn check_password(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Credentials, IdentityError> {
        let normalized = security::email::normalize(email).ok();
        let user = match &normalized {
            Some(email) => self.db.user_by_email(email).await?,
            None => None,
        };
        let usable = password.chars().count() <= MAX_LOGIN_PASSWORD_CHARS;
        let stored = user
            .as_ref()
            .filter(|_| usable)
            .map(|u| u.password_hash.clone());
        let attempt: String = password.chars().take(MAX_LOGIN_PASSWORD_CHARS).collect();
        let verification = self.passwords.verify(attempt, stored).await?;
        match (user, verification) {
            (Some(user), Verification::Valid { needs_rehash }) if !user.is_disabled() => {
                if needs_rehash {
                    let hash = self.passwords.hash(password.to_string()).await?;
                    self.db.set_password_hash(&user.id, &hash, now()).await?;
                    tracing::info!(user_id = %user.id, "password hash upgraded to argon2id");
                }
                Ok(Credentials::Valid(user))
            }
            (user, _) => Ok(Credentials::Invalid {
                account: user.map(|u| (u.id, u.email)),
            }),
        }
    }

    /// `POST /auth/login`: brute-force checks first (identical for unknown accounts), then the password.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_cookie: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<IssuedTokens, IdentityError> {
        let account = account_of(email);
        let device = device_cookie.and_then(|c| self.devices.verify(&account, c));
        self.ensure_not_blocked(&account, device.as_deref(), meta)
            .await?;
        let user = match self.check_password(email, password).await? {
            Credentials::Valid(user) => user,
            Credentials::Invalid { account: known } => {
                self.note_failure(
                    &account,
                    device.as_deref(),
                    known
                        .as_ref()
                        .map(|(id, email)| (id.as_str(), email.as_str())),
                    meta,
                )
                .await;
                let mut event = Event::failure("auth.login.failed").details(
                    serde_json::json!({"reason": "invalid_credentials", "known_account": known.is_some()}),
                );
                if let Some((id, _)) = &known {
                    event = event.subject(id);
                }
                self.audit(event, meta).await;
                return Err(IdentityError::InvalidCredentials);
            }
        };
        self.note_success(&account, device.as_deref(), meta).await;
        let issued = now();
        let session = NewSession {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            kind: "api".into(),
            now: issued,
            expires_at: issued + i64::try_from(API_SESSION_LIFETIME.as_secs()).unwrap_or(i64::MAX),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            amr: "pwd".into(),
            user_stamp: user.security_stamp.clone(),
        };
        if !self.db.insert_session(&session).await? {
            // The password was reset, or every session ended, while this login was being checked.
            return Err(IdentityError::InvalidCredentials);
        }
        let refresh = OpaqueToken::generate();
        self.db
            .insert_refresh_token(&session.id, &refresh.hash, 1, issued, session.expires_at)
            .await?;
        let record = self
            .db
            .session_by_id(&session.id)
            .await?
            .context("session just created")?;
        self.audit(
            Event::success("auth.login.succeeded")
                .actor(&user.id)
                .subject(&user.id)
                .session(&session.id),
            meta,
        )
        .await;
        let mut tokens = self.tokens(&user, &record, Some(refresh.token), None)?;
        if device.is_none() {
            tokens.device_cookie = Some(self.devices.issue(&account));
        }
        Ok(tokens)
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
            self.revoke_session(&session.id, "account_disabled").await?;
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

        self.revoke_session(&session.id, "refresh_token_reuse")
            .await?;
        self.audit(
            Event::failure("auth.refresh.reuse_detected")
                .subject(&user.id)
                .session(&session.id)
                .details(serde_json::json!({"generation": record.generation})),
            meta,
        )
        .await;
        tracing::warn!(session_id = %session.id, "refresh token reuse detected; session revoked");
        metrics::counter!("tradesignal_refresh_reuse_total").increment(1);
        Err(IdentityError::InvalidGrant)
    }

    /// Revokes a session in the database and marks it revoked in the store.
    pub async fn revoke_session(
        &self,
        session_id: &str,
        reason: &str,
    ) -> Result<bool, IdentityError> {
        let revoked = self.db.revoke_session(session_id, reason, now()).await?;
        self.mark_revoked(session_id).await;
        Ok(revoked)
    }

    async fn mark_revoked(&self, session_id: &str) {
        self.write_revocation(sv_key(session_id), "r".into(), REVOKED_MARKER_TTL)
            .await;
    }

    /// Writes revocation state to the store. If the store is down the write is queued and retried in
    /// the background, and until it lands this instance checks every token in the database: a stale
    /// entry surviving in Redis must not let a revoked token back in when Redis returns.
    async fn write_revocation(&self, key: String, value: String, ttl: Duration) {
        if let Err(e) = self.kv.set(&key, &value, ttl).await {
            tracing::error!(error = %e, "revocation not written to the key-value store; queued for retry");
            metrics::counter!("tradesignal_revocation_cache_failures_total").increment(1);
            self.pending.push(key, value, ttl);
            self.spawn_revocation_retry();
        }
    }

    fn spawn_revocation_retry(&self) {
        if !self.pending.claim_retrier() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if this.flush_revocations().await {
                    break;
                }
            }
            this.pending.release_retrier();
            // A write queued while the loop was finishing gets its own retrier.
            if !this.pending.is_empty() {
                this.spawn_revocation_retry();
            }
        });
    }

    /// Writes queued revocations; true when none is left.
    async fn flush_revocations(&self) -> bool {
        for (key, value, ttl) in self.pending.take() {
            if self.kv.set(&key, &value, ttl).await.is_err() {
                self.pending.push(key, value, ttl);
            }
        }
        self.pending.is_empty()
    }

    /// Revokes every session of a user but `except`.
    pub async fn revoke_user_sessions(
        &self,
        user_id: &str,
        except: Option<&str>,
        reason: &str,
    ) -> Result<usize, IdentityError> {
        let ids = self
            .db
            .revoke_user_sessions(user_id, except, reason, now())
            .await?;
        for id in &ids {
            self.mark_revoked(id).await;
        }
        Ok(ids.len())
    }

    /// Makes every access token of the user's sessions invalid at once; a refresh issues fresh claims.
    pub async fn invalidate_access_tokens(&self, user_id: &str) -> Result<(), IdentityError> {
        for (session_id, version) in self.db.bump_token_versions(user_id).await? {
            self.write_revocation(sv_key(&session_id), version.to_string(), VERSION_CACHE_TTL)
                .await;
        }
        Ok(())
    }

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
        let keys = [deny_key(&claims.jti), sv_key(&claims.sid)];
        let reads = [keys[0].as_str(), keys[1].as_str()];
        // While revocations wait to be written, the store may hold stale entries: ask the database.
        let store_trusted = self.pending.is_empty() || self.flush_revocations().await;
        let quota = limits.map(|l| l.tier(tier));
        let rate_key = format!("rl:user:{}", claims.sub);
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
            scopes: None,
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
                self.mark_revoked(&session.id).await;
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
                    &sv_key(&session.id),
                    &session.token_version.to_string(),
                    VERSION_CACHE_TTL,
                )
                .await;
        }
        Ok(())
    }

    /// `POST /auth/logout`: ends this session and denylists this access token until it expires.
    pub async fn logout(
        &self,
        principal: &Principal,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        self.revoke_session(&principal.session_id, "logout").await?;
        let remaining = principal.expires_at.saturating_sub(unix(now())) + 60;
        self.write_revocation(
            deny_key(&principal.jti),
            "1".into(),
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

    /// `POST /auth/reauth`: a fresh `auth_time` for this session after checking the password again.
    pub async fn reauth(
        &self,
        principal: &Principal,
        password: &str,
        fingerprint: Option<String>,
        meta: &RequestMeta,
    ) -> Result<IssuedTokens, IdentityError> {
        let user = self
            .db
            .user_by_id(&principal.user_id)
            .await?
            .ok_or(IdentityError::InvalidCredentials)?;
        let account = account_of(&user.email);
        self.ensure_not_blocked(&account, None, meta).await?;
        let verification = self
            .passwords
            .verify(
                password.chars().take(MAX_LOGIN_PASSWORD_CHARS).collect(),
                Some(user.password_hash.clone()),
            )
            .await?;
        if verification == Verification::Invalid {
            self.note_failure(&account, None, Some((&user.id, &user.email)), meta)
                .await;
            self.audit(
                Event::failure("auth.reauth")
                    .actor(&user.id)
                    .subject(&user.id)
                    .session(&principal.session_id),
                meta,
            )
            .await;
            return Err(IdentityError::InvalidCredentials);
        }
        self.db
            .set_auth_time(&principal.session_id, now(), "pwd")
            .await?;
        let session = self
            .db
            .session_by_id(&principal.session_id)
            .await?
            .ok_or(IdentityError::InvalidCredentials)?;
        self.audit(
            Event::success("auth.reauth")
                .actor(&user.id)
                .subject(&user.id)
                .session(&session.id),
            meta,
        )
        .await;
        self.tokens(&user, &session, None, fingerprint)
    }

    /// The user's usable sessions.
    pub async fn sessions(&self, user_id: &str) -> Result<Vec<SessionRecord>, IdentityError> {
        let at = now();
        let idle = self.idle_secs();
        Ok(self
            .db
            .active_sessions(user_id, at)
            .await?
            .into_iter()
            .filter(|s| s.is_active(at, idle))
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
                self.revoke_session(&s.id, "user_revoked").await?;
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

/// Revocation writes waiting for the key-value store to come back.
#[derive(Default)]
pub struct PendingRevocations {
    writes: std::sync::Mutex<Vec<(String, String, Duration)>>,
    count: std::sync::atomic::AtomicUsize,
    retrier: std::sync::atomic::AtomicBool,
}

impl PendingRevocations {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(String, String, Duration)>> {
        // Entries are whole tuples; a panic elsewhere cannot leave one half-written.
        self.writes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn push(&self, key: String, value: String, ttl: Duration) {
        let mut writes = self.lock();
        writes.push((key, value, ttl));
        self.count
            .store(writes.len(), std::sync::atomic::Ordering::SeqCst);
    }

    fn take(&self) -> Vec<(String, String, Duration)> {
        let mut writes = self.lock();
        self.count.store(0, std::sync::atomic::Ordering::SeqCst);
        std::mem::take(&mut *writes)
    }

    pub fn is_empty(&self) -> bool {
        self.count.load(std::sync::atomic::Ordering::SeqCst) == 0
    }

    fn claim_retrier(&self) -> bool {
        !self.retrier.swap(true, std::sync::atomic::Ordering::SeqCst)
    }

    fn release_retrier(&self) {
        self.retrier
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }
}
