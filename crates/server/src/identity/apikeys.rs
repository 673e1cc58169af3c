//! API keys: creation (step-up, plan allowance), listing, rotation with a grace period, revocation,
//! usage, and authenticating a request that carries one.
//!
//! A key is checked against the database on every request (one indexed read joining its owner), so a
//! revocation, an expiry, the end of a grace period or a change of the owner — disabled, downgraded,
//! demoted — holds on the very next request on every instance. The owner's tier quota is spent in one
//! key-value round trip, as for access tokens; usage is counted in memory (see `usage`).

use security::KvStore;
use security::apikey;
use security::authz::{Role, Scope, Tier};
use security::gcra::{GcraDecision, Quota};
use security::ratelimit::RateLimits;
use store::identity::apikeys::{ApiKeyRecord, RotateOutcome};
use zeroize::Zeroizing;

use super::access::AuthFailure;
use super::audit::Event;
use super::principal::KeyGrant;
use super::usage::{RETENTION_DAYS, day_of};
use super::{Caller, CallerCredential, Identity, IdentityError, Principal, RequestMeta, now};

pub const MAX_NAME_CHARS: usize = 100;
/// Longest grace a rotation may leave the old key.
pub const MAX_GRACE_HOURS: u32 = 72;
/// Longest expiry a key may be given (ten years).
pub const MAX_EXPIRY_DAYS: u32 = 3650;
/// Keys that stopped working stay in the listing this long.
pub const LISTED_AFTER_END_SECS: i64 = 30 * 86_400;
/// Failed key checks from one address (per instance and minute) before its keys are refused without
/// a database lookup: a flood of made-up keys — whose checksums anyone can compute — costs nothing.
pub const KEY_FAILURES_PER_MINUTE: u64 = 20;

/// Active keys a plan allows.
pub fn key_allowance(tier: Tier) -> i64 {
    match tier {
        Tier::Free => 2,
        Tier::Pro => 10,
        Tier::Enterprise => 50,
    }
}

/// A key just made: the record and the key itself, shown once.
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub key: Zeroizing<String>,
}

/// One day of a key's usage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DailyUsage {
    pub day: i64,
    pub requests: i64,
}

fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> IdentityError {
    IdentityError::Invalid {
        field,
        code,
        message: message.into(),
    }
}

/// A key name: plain text, trimmed, 1–100 characters, no control characters.
fn validate_name(name: &str) -> Result<String, IdentityError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(invalid("name", "required", "Give the key a name."));
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            "name",
            "too_long",
            format!("Use at most {MAX_NAME_CHARS} characters."),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            "invalid_characters",
            "Control characters are not allowed.",
        ));
    }
    Ok(name.to_string())
}

/// Known, distinct scopes in a stable order; at least one.
fn validate_scopes(scopes: &[String]) -> Result<Vec<Scope>, IdentityError> {
    if scopes.is_empty() {
        return Err(invalid("scopes", "required", "Grant at least one scope."));
    }
    let mut parsed = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let Ok(scope) = scope.parse::<Scope>() else {
            let known: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
            return Err(invalid(
                "scopes",
                "unknown_scope",
                format!("Unknown scope; the scopes are {}.", known.join(", ")),
            ));
        };
        parsed.push(scope);
    }
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

fn scope_text(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Identity {
    fn new_key_record(
        &self,
        user_id: &str,
        name: String,
        scopes: String,
        expires_at: Option<i64>,
        at: i64,
    ) -> (ApiKeyRecord, Zeroizing<String>) {
        let generated = apikey::generate();
        let record = ApiKeyRecord {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user_id.to_string(),
            lookup_id: generated.lookup,
            key_hash: self.api_key_hasher.hash(generated.key.as_bytes()),
            name,
            scopes,
            created_at: at,
            expires_at,
            last_used_at: None,
            last_used_ip: None,
            revoked_at: None,
            grace_until: None,
            replaced_by: None,
        };
        (record, generated.key)
    }

    /// `POST /api-keys` (step-up checked by the caller): a new key within the plan's allowance.
    pub async fn create_api_key(
        &self,
        principal: &Principal,
        name: &str,
        scopes: &[String],
        expires_in_days: Option<u32>,
        meta: &RequestMeta,
    ) -> Result<IssuedKey, IdentityError> {
        let name = validate_name(name)?;
        let scopes = validate_scopes(scopes)?;
        if let Some(days) = expires_in_days
            && !(1..=MAX_EXPIRY_DAYS).contains(&days)
        {
            return Err(invalid(
                "expires_in_days",
                "out_of_range",
                format!("expires_in_days must be between 1 and {MAX_EXPIRY_DAYS}."),
            ));
        }
        // The stored tier, not the token's: a downgrade applies at once.
        let user = self.profile(&principal.user_id).await?;
        let tier: Tier = user
            .tier
            .parse()
            .map_err(|()| IdentityError::Internal(anyhow::anyhow!("stored tier is unknown")))?;
        let at = now();
        let expires_at = expires_in_days.map(|d| at + i64::from(d) * 86_400);
        let (record, key) =
            self.new_key_record(&user.id, name, scope_text(&scopes), expires_at, at);
        let allowance = key_allowance(tier);
        if !self.db.insert_api_key(&record, allowance).await? {
            return Err(IdentityError::PlanLimit(format!(
                "Your {} plan allows {allowance} active API keys; revoke one or upgrade to add another.",
                tier.as_str()
            )));
        }
        self.audit(
            Event::success("apikey.created")
                .actor(&user.id)
                .subject(&user.id)
                .session(&principal.session_id)
                .api_key(&record.id)
                .details(
                    serde_json::json!({"scopes": record.scopes, "expires_at": record.expires_at}),
                ),
            meta,
        )
        .await;
        self.send_mail(self.api_key_email(&user.email, "created", &record, meta));
        Ok(IssuedKey { record, key })
    }

    /// The user's keys, newest first: the usable ones and those that ended in the last 30 days.
    pub async fn list_api_keys(&self, user_id: &str) -> Result<Vec<ApiKeyRecord>, IdentityError> {
        let mut keys = self
            .db
            .list_api_keys(user_id, now() - LISTED_AFTER_END_SECS)
            .await?;
        for key in &mut keys {
            self.usage.apply_latest(key);
        }
        Ok(keys)
    }

    /// One of the user's keys; another user's id is "not found".
    pub async fn api_key(&self, user_id: &str, id: &str) -> Result<ApiKeyRecord, IdentityError> {
        if uuid::Uuid::try_parse(id).is_err() {
            return Err(IdentityError::NotFound);
        }
        self.db
            .api_key(user_id, id)
            .await?
            .ok_or(IdentityError::NotFound)
    }

    /// `POST /api-keys/{id}/rotate` (step-up checked by the caller): a new key with the same name,
    /// scopes and expiry; the old one works until the grace period ends (at once for 0 hours).
    pub async fn rotate_api_key(
        &self,
        principal: &Principal,
        id: &str,
        grace_hours: Option<u32>,
        meta: &RequestMeta,
    ) -> Result<IssuedKey, IdentityError> {
        let grace_hours = grace_hours.unwrap_or(0);
        if grace_hours > MAX_GRACE_HOURS {
            return Err(invalid(
                "grace_hours",
                "out_of_range",
                format!("grace_hours must be between 0 and {MAX_GRACE_HOURS}."),
            ));
        }
        let old = self.api_key(&principal.user_id, id).await?;
        let user = self.profile(&principal.user_id).await?;
        let at = now();
        let (record, key) = self.new_key_record(
            &user.id,
            old.name.clone(),
            old.scopes.clone(),
            old.expires_at,
            at,
        );
        let grace_until = at + i64::from(grace_hours) * 3600;
        let tier: Tier = user.tier.parse().unwrap_or(Tier::Free);
        let allowance = key_allowance(tier);
        match self
            .db
            .rotate_api_key(&old.id, &record, grace_until, allowance)
            .await?
        {
            RotateOutcome::Rotated => {}
            RotateOutcome::NotFound if old.is_active(at) && grace_hours > 0 => {
                return Err(IdentityError::PlanLimit(format!(
                    "A rotation with a grace period keeps two keys working, and your {} plan allows \
                     {allowance}: rotate with grace_hours 0, or revoke another key first.",
                    tier.as_str()
                )));
            }
            // Revoked, expired, or already rotated: there is nothing live to rotate.
            RotateOutcome::NotFound => {
                return Err(IdentityError::Conflict(
                    "Only an active key can be rotated; this one is revoked, expired or already rotated.",
                ));
            }
        }
        self.audit(
            Event::success("apikey.rotated")
                .actor(&user.id)
                .subject(&user.id)
                .session(&principal.session_id)
                .api_key(&record.id)
                .details(serde_json::json!({"previous_key": old.id, "grace_hours": grace_hours})),
            meta,
        )
        .await;
        self.send_mail(self.api_key_email(&user.email, "rotated", &record, meta));
        Ok(IssuedKey { record, key })
    }

    /// `DELETE /api-keys/{id}`: revoked at once, on every instance (keys are checked in the database).
    pub async fn revoke_api_key(
        &self,
        principal: &Principal,
        id: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let key = self.api_key(&principal.user_id, id).await?;
        // Already revoked (by a rotation without grace a moment ago, say) is still "revoked": 204.
        self.db
            .revoke_api_key(&principal.user_id, &key.id, "revoked_by_owner", now())
            .await?;
        self.audit(
            Event::success("apikey.revoked")
                .actor(&principal.user_id)
                .subject(&principal.user_id)
                .session(&principal.session_id)
                .api_key(&key.id),
            meta,
        )
        .await;
        Ok(())
    }

    /// Per-day request counts of one of the user's keys over the last 90 days: the stored counts
    /// plus this instance's not yet written ones (other instances' arrive within their flush
    /// interval). Reading writes nothing.
    pub async fn api_key_usage(
        &self,
        user_id: &str,
        id: &str,
    ) -> Result<(ApiKeyRecord, Vec<DailyUsage>), IdentityError> {
        let mut key = self.api_key(user_id, id).await?;
        self.usage.apply_latest(&mut key);
        let from = day_of(now()) - (RETENTION_DAYS - 1);
        let mut days: std::collections::BTreeMap<i64, i64> = self
            .db
            .api_key_usage(&key.id, from)
            .await?
            .into_iter()
            .collect();
        for (day, requests) in self.usage.pending_for(&key.id) {
            if day >= from {
                *days.entry(day).or_default() += requests;
            }
        }
        Ok((
            key,
            days.into_iter()
                .map(|(day, requests)| DailyUsage { day, requests })
                .collect(),
        ))
    }

    /// Revokes every key of a user (account recovery and incident response: a key made by whoever
    /// had the account must not outlive the recovery); how many.
    pub async fn revoke_all_api_keys(
        &self,
        user_id: &str,
        actor: Option<&str>,
        reason: &'static str,
        meta: &RequestMeta,
    ) -> Result<usize, IdentityError> {
        let ids = self.db.revoke_user_api_keys(user_id, reason, now()).await?;
        if !ids.is_empty() {
            let mut event = Event::success("apikey.revoked")
                .subject(user_id)
                .details(serde_json::json!({"keys": ids.len(), "reason": reason}));
            if let Some(actor) = actor {
                event = event.actor(actor);
            }
            self.audit(event, meta).await;
        }
        Ok(ids.len())
    }

    /// Authenticates a request carrying an API key and, with `limits`, spends the owner's tier quota
    /// (the same bucket as their sessions) in one key-value round trip. `client_bucket` is what the
    /// client's address is counted under for failed checks.
    pub async fn authenticate_key(
        &self,
        presented: &str,
        limits: Option<&RateLimits>,
        client_bucket: Option<&str>,
    ) -> Result<(Caller, Option<(Quota, Option<GcraDecision>)>), AuthFailure> {
        let lookup = apikey::parse(presented).map_err(|e| AuthFailure::Rejected(e.to_string()))?;
        let failures_key = format!("akf:{}", client_bucket.unwrap_or("unknown"));
        if self
            .key_failures
            .get(&failures_key)
            .await
            .ok()
            .flatten()
            .and_then(|n| n.parse::<u64>().ok())
            .is_some_and(|n| n >= KEY_FAILURES_PER_MINUTE)
        {
            metrics::counter!("tradesignal_api_key_lookups_skipped_total").increment(1);
            return Err(AuthFailure::Rejected(
                "too many unknown API keys from this address".into(),
            ));
        }
        let found = self
            .db
            .api_key_for_auth(lookup)
            .await
            .map_err(|e| AuthFailure::Internal(e.into()))?;
        let found = found.filter(|f| {
            self.api_key_hasher
                .verify(presented.as_bytes(), &f.key.key_hash)
        });
        let Some(found) = found else {
            let _ = self
                .key_failures
                .incr(&failures_key, std::time::Duration::from_secs(60))
                .await;
            return Err(AuthFailure::Rejected(
                "unknown API key or wrong secret".into(),
            ));
        };
        if self.api_key_hasher.is_outdated(&found.key.key_hash) {
            // Hashed under a data key that has since been superseded: move it to the active one, so
            // the old ring key can be retired once every key has been used (or revoked).
            let rehashed = self.api_key_hasher.hash(presented.as_bytes());
            if let Err(e) = self.db.update_api_key_hash(&found.key.id, &rehashed).await {
                tracing::warn!(error = %e, "API key hash not moved to the active data key");
            }
        }
        let at = now();
        if !found.key.is_usable(at) {
            return Err(AuthFailure::Rejected(
                "API key revoked, expired or past its rotation grace".into(),
            ));
        }
        if found.owner_disabled_at.is_some() {
            return Err(AuthFailure::Rejected("API key owner disabled".into()));
        }
        let role = found
            .owner_role
            .parse::<Role>()
            .map_err(|()| AuthFailure::Rejected("unknown role".into()))?;
        let tier = found
            .owner_tier
            .parse::<Tier>()
            .map_err(|()| AuthFailure::Rejected("unknown tier".into()))?;
        let quota = limits.map(|l| l.tier(tier));
        let decision = match quota {
            Some(quota) => self
                .limiter
                .gcra(&super::kv_keys::user_rate_key(&found.key.user_id), quota, 1)
                .await
                .map_err(
                    |e| tracing::error!(error = %e, "rate limiter unavailable; request allowed"),
                )
                .ok(),
            None => None,
        };
        let scopes = found
            .key
            .scope_names()
            .filter_map(|s| s.parse::<Scope>().ok())
            .collect();
        let caller = Caller {
            user_id: found.key.user_id.clone(),
            role,
            tier,
            email_verified: found.owner_verified_at.is_some(),
            credential: CallerCredential::ApiKey(KeyGrant {
                key_id: found.key.id.clone(),
                scopes,
                owner_mfa_enabled: found.owner_mfa_enabled != 0,
            }),
        };
        Ok((caller, quota.map(|q| (q, decision))))
    }

    /// Refuses an API key found in a URL. A genuine key (known, right secret) is audited as
    /// `apikey.exposed_in_url`, naming it so its owner can rotate it — it is in someone's logs now;
    /// anything else is only counted, so junk in query strings cannot fill the audit trail.
    pub async fn note_key_in_url(&self, presented: &str, meta: &RequestMeta) {
        metrics::counter!("tradesignal_api_keys_in_urls_total").increment(1);
        let Ok((caller, _)) = self
            .authenticate_key(presented, None, meta.client_bucket.as_deref())
            .await
        else {
            return;
        };
        let mut event = Event::failure("apikey.exposed_in_url").subject(&caller.user_id);
        if let Some(key) = caller.api_key_id() {
            event = event.api_key(key);
        }
        self.audit(event, meta).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_scopes_are_checked() {
        assert!(validate_name("  ").is_err());
        assert!(validate_name(&"x".repeat(101)).is_err());
        assert!(validate_name("a\u{7}b").is_err());
        assert_eq!(
            validate_name(" CI deploy ").ok().as_deref(),
            Some("CI deploy")
        );
        assert!(validate_scopes(&[]).is_err());
        assert!(validate_scopes(&["market:write".into()]).is_err());
        let scopes = validate_scopes(&[
            "alerts:read".into(),
            "market:read".into(),
            "market:read".into(),
        ])
        .expect("valid");
        assert_eq!(scope_text(&scopes), "market:read alerts:read");
    }

    #[test]
    fn allowances_follow_the_plan() {
        assert_eq!(key_allowance(Tier::Free), 2);
        assert_eq!(key_allowance(Tier::Pro), 10);
        assert_eq!(key_allowance(Tier::Enterprise), 50);
    }
}
