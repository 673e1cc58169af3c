//! Brute-force protection and rate limits inside identity flows: the checks before a password is
//! compared, the bookkeeping after, lock notifications with unlock links, and unlocking.
//! Store failures never lock anyone out: they are logged and the attempt proceeds.

use std::time::Duration;

use security::bruteforce::{Attempt, Blocked, FailureEffects, Reservation, account_key};
use security::gcra::Quota;
use security::tokens::OpaqueToken;
use store::identity::OneTimePurpose;

use super::audit::Event;
use super::{Identity, IdentityError, RequestMeta, now};

const UNLOCK_TTL_SECS: i64 = 24 * 3600;

/// The account key of an email as typed: the normal form when valid, else a trimmed lower-case form, so
/// invalid and unknown addresses are counted exactly like real ones.
pub fn account_of(email: &str) -> String {
    match security::email::normalize(email) {
        Ok(normalized) => account_key(&security::email::match_key(&normalized)),
        Err(_) => account_key(&email.trim().to_lowercase()),
    }
}

/// An attempt counted by `Identity::reserve_attempt`, to be settled with its outcome.
#[derive(Debug, Clone)]
pub struct ReservedAttempt {
    account: String,
    device: Option<String>,
    /// `None` when the store could not count it (the failure is then counted afterwards).
    reservation: Option<Reservation>,
}

impl Identity {
    /// What the client's address is counted under (its IPv6 network, or its IPv4 address).
    fn ip_of(meta: &RequestMeta) -> &str {
        meta.client_bucket
            .as_deref()
            .or(meta.ip.as_deref())
            .unwrap_or("unknown")
    }

    /// Counts the attempt before its secret is checked — atomically with the checks that refuse it
    /// (backoff, lock; the IP throttle just before; refusals audited once per account and wait) — so
    /// concurrent guesses get no more checks than the lock allows. The result goes back with the
    /// outcome: `note_failure`, `note_success` (a completed sign-in) or `release_attempt`. A store
    /// that cannot answer never locks anyone out: the attempt proceeds uncounted and its failure is
    /// counted afterwards. Keys in different cluster slots are a bug, not an outage: refused (500),
    /// never waved through uncounted.
    pub async fn reserve_attempt(
        &self,
        account: &str,
        device: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<ReservedAttempt, IdentityError> {
        let slot = |reservation| ReservedAttempt {
            account: account.to_string(),
            device: device.map(str::to_string),
            reservation,
        };
        let attempt = Attempt {
            account,
            ip: Self::ip_of(meta),
            device,
        };
        let Blocked {
            reason,
            retry_after,
        } = match self.guard.reserve(&attempt).await {
            Ok(Ok(reservation)) => return Ok(slot(Some(reservation))),
            Ok(Err(blocked)) => blocked,
            Err(e @ security::KvError::CrossSlot(_)) => {
                return Err(IdentityError::Internal(anyhow::Error::new(e)));
            }
            Err(e) => {
                tracing::error!(error = %e, "brute-force state unavailable; attempt allowed");
                return Ok(slot(None));
            }
        };
        metrics::counter!("tradesignal_auth_throttled_total", "reason" => reason.as_str())
            .increment(1);
        let first = self
            .limiter
            .incr(
                &format!("bf:audited:{account}:{}", reason.as_str()),
                retry_after.max(Duration::from_secs(1)),
            )
            .await
            .is_ok_and(|n| n == 1);
        if first {
            self.audit(
                Event::failure("auth.throttled").details(serde_json::json!({"reason": reason.as_str(), "retry_after": retry_after.as_secs()})),
                meta,
            )
            .await;
        }
        Err(IdentityError::Throttled(retry_after))
    }

    fn attempt_of<'a>(slot: &'a ReservedAttempt, meta: &'a RequestMeta) -> Attempt<'a> {
        Attempt {
            account: &slot.account,
            ip: Self::ip_of(meta),
            device: slot.device.as_deref(),
        }
    }

    /// Counts a failed check of a reserved attempt and acts on what it triggers.
    pub async fn note_failure(
        &self,
        slot: &ReservedAttempt,
        user: Option<(&str, &str)>,
        meta: &RequestMeta,
    ) {
        let attempt = Self::attempt_of(slot, meta);
        let recorded = match &slot.reservation {
            Some(reservation) => {
                self.guard
                    .record_reserved_failure(&attempt, reservation)
                    .await
            }
            None => self.guard.record_failure(&attempt).await,
        };
        let effects = match recorded {
            Ok(effects) => effects,
            Err(e) => {
                tracing::error!(error = %e, "failure not counted: brute-force state unavailable");
                FailureEffects::default()
            }
        };
        if let Some(duration) = effects.locked_for {
            metrics::counter!("tradesignal_lockouts_total").increment(1);
            self.observe(
                "lockout_wave",
                "all",
                None,
                serde_json::json!({"seconds": duration.as_secs()}),
                meta,
            )
            .await;
            let mut event = Event::failure("auth.lockout")
                .details(serde_json::json!({"seconds": duration.as_secs()}));
            if let Some((id, _)) = user {
                event = event.subject(id);
            }
            self.audit(event, meta).await;
            if let Some((id, email)) = user {
                // In the background: the answer to a locking attempt must not take longer for real
                // accounts.
                let this = self.clone();
                let (id, email, meta) = (id.to_string(), email.to_string(), meta.clone());
                tokio::spawn(
                    async move { this.send_unlock_link(&id, &email, duration, &meta).await },
                );
            }
        }
        if effects.device_locked {
            let mut event =
                Event::failure("auth.lockout").details(serde_json::json!({"scope": "device"}));
            if let Some((id, _)) = user {
                event = event.subject(id);
            }
            self.audit(event, meta).await;
        }
        if effects.ip_throttled {
            self.raise_alert(
                "credential_stuffing",
                "high",
                Some(Self::ip_of(meta)),
                serde_json::json!({"failures_from_ip": self.guard.policy().ip_failures_before_throttle + 1}),
                meta,
            )
            .await;
        }
    }

    /// A completed sign-in: the account's, the pair's and the device's counters start again.
    pub async fn note_success(&self, slot: &ReservedAttempt, meta: &RequestMeta) {
        if let Err(e) = self
            .guard
            .record_success(&Self::attempt_of(slot, meta))
            .await
        {
            tracing::error!(error = %e, "brute-force counters not reset");
        }
    }

    /// A right secret that is not a completed sign-in (a password step waiting for its second factor,
    /// a step-up, a confirmation): the reserved attempt is given back; earlier failures still count.
    pub async fn release_attempt(&self, slot: &ReservedAttempt, meta: &RequestMeta) {
        if slot.reservation.is_none() {
            return;
        }
        if let Err(e) = self.guard.release(&Self::attempt_of(slot, meta)).await {
            tracing::error!(error = %e, "reserved attempt not released");
        }
    }

    async fn send_unlock_link(
        &self,
        user_id: &str,
        email: &str,
        duration: Duration,
        meta: &RequestMeta,
    ) {
        let token = OpaqueToken::generate();
        let at = now();
        if let Err(e) = self
            .db
            .insert_one_time_token(
                OneTimePurpose::Unlock,
                &token.hash,
                user_id,
                None,
                at,
                at + UNLOCK_TTL_SECS,
            )
            .await
        {
            tracing::error!(error = %e, "unlock token not stored");
            return;
        }
        let link = self
            .settings
            .public_link(&format!("/unlock?token={}", token.token));
        self.send_mail(self.account_locked_email(
            email,
            duration.as_secs().div_ceil(60),
            &link,
            meta,
        ));
    }

    /// `POST /auth/unlock`: the emailed link ends the lock.
    pub async fn unlock_with_token(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        if !security::tokens::opaque::looks_like_token(token) {
            return Err(IdentityError::InvalidToken);
        }
        let consumed = self
            .db
            .consume_one_time_token(
                OneTimePurpose::Unlock,
                &security::tokens::hash_token(token),
                now(),
            )
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        let user = self
            .db
            .user_by_id(&consumed.user_id)
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        self.guard
            .unlock(&account_of(&user.email))
            .await
            .map_err(|e| IdentityError::Internal(e.into()))?;
        self.audit(
            Event::success("auth.unlock")
                .subject(&user.id)
                .details(serde_json::json!({"by": "email_link"})),
            meta,
        )
        .await;
        Ok(())
    }

    /// The remaining lock of a user's account, if any.
    pub async fn lock_remaining(&self, email: &str) -> Option<Duration> {
        self.guard
            .lock_remaining(&account_of(email))
            .await
            .ok()
            .flatten()
    }

    /// A rate limit checked inside a flow (per email, per session); store failures let the call through.
    pub async fn limit(&self, key: &str, policy: &'static str) -> Result<(), IdentityError> {
        let quota: Quota = self.limits.get(policy);
        match self.limiter.gcra(key, quota, 1).await {
            Ok(decision) if !decision.allowed => {
                metrics::counter!("tradesignal_ratelimit_exceeded_total", "policy" => policy)
                    .increment(1);
                Err(IdentityError::RateLimited { quota, decision })
            }
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "rate limiter unavailable; request allowed");
                Ok(())
            }
        }
    }
}
