//! Brute-force protection over a `KvStore`: failures are counted per account, per client IP and per
//! (account, IP) pair, with TTLs, keyed by the normalised email whether or not an account exists so the
//! answers never reveal existence.
//!
//! - Backoff: from the 3rd consecutive failure of a pair, that pair waits 2^(n-3) s (cap 15 min) before
//!   its next attempt is even checked.
//! - Lockout: 5 failures on an account within 15 min lock it for 15 min; each further lock within a day
//!   doubles (cap 24 h). A correct password during a lock is refused the same way.
//! - Spraying: more than 20 failures from one IP across accounts within 10 min throttle that IP.
//! - Device cookies (OWASP): a browser that logged in to the account before presents a signed cookie;
//!   its attempts are counted on their own and an attacker's lock does not stop it.
//!
//! Keys hold the moment a wait ends (Unix seconds) so the remaining time is known without a TTL query.

use std::sync::Arc;
use std::time::Duration;

use hmac::{KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::kv::{KvError, KvStore, Reserved, slot_tag};

/// The limits; defaults are the hardening plan's.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub failures_before_lock: u64,
    pub failure_window: Duration,
    pub first_lock: Duration,
    pub max_lock: Duration,
    pub backoff_from: u64,
    pub max_backoff: Duration,
    pub ip_failures_before_throttle: u64,
    pub ip_window: Duration,
    pub device_failures_before_lock: u64,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            failures_before_lock: 5,
            failure_window: Duration::from_secs(15 * 60),
            first_lock: Duration::from_secs(15 * 60),
            max_lock: Duration::from_secs(24 * 3600),
            backoff_from: 3,
            max_backoff: Duration::from_secs(15 * 60),
            ip_failures_before_throttle: 20,
            ip_window: Duration::from_secs(10 * 60),
            device_failures_before_lock: 5,
        }
    }
}

/// Why an attempt is not even checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Block {
    /// The (account, IP) pair is backing off.
    Backoff,
    /// The account is locked.
    Locked,
    /// The client IP is throttled for spraying across accounts.
    IpThrottled,
    /// This device cookie failed too often.
    DeviceLocked,
}

impl Block {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Backoff => "backoff",
            Self::Locked => "locked",
            Self::IpThrottled => "ip_throttled",
            Self::DeviceLocked => "device_locked",
        }
    }
}

/// A refused attempt and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocked {
    pub reason: Block,
    pub retry_after: Duration,
}

/// What recording a failure triggered, for audit and alerts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureEffects {
    /// The account was locked by this failure, for this long.
    pub locked_for: Option<Duration>,
    /// This failure put the IP over the spraying threshold.
    pub ip_throttled: bool,
    /// This device cookie is now locked.
    pub device_locked: bool,
}

/// An attempt counted before its secret is checked (see `BruteForce::reserve`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    /// The account's (or, with a device cookie, the device's) attempt count, this one included.
    pub count: u64,
}

/// Who is attempting: the account key (a hash of the normalised email), the client IP and, when the
/// browser presented a valid device cookie for this account, its id.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    pub account: &'a str,
    pub ip: &'a str,
    pub device: Option<&'a str>,
}

/// Hex SHA-256 of the normalised email: counters never hold the address itself.
pub fn account_key(normalized_email: &str) -> String {
    hex::encode(&Sha256::digest(normalized_email.as_bytes())[..16])
}

/// The store keys of brute-force state. Everything about one account, or one device, shares a hash tag,
/// so a reservation's counter and blockers sit in one Redis Cluster slot; per-IP keys stand alone.
mod keys {
    use super::slot_tag;

    pub fn ip_block(ip: &str) -> String {
        format!("bf:ipblock:{ip}")
    }
    pub fn ip_failures(ip: &str) -> String {
        format!("bf:ip:{ip}")
    }
    pub fn account_failures(account: &str) -> String {
        format!("bf:acct:{}", slot_tag(account))
    }
    pub fn lock(account: &str) -> String {
        format!("bf:lock:{}", slot_tag(account))
    }
    /// How many locks the account had lately (they double).
    pub fn locks(account: &str) -> String {
        format!("bf:locks:{}", slot_tag(account))
    }
    pub fn pair_failures(account: &str, ip: &str) -> String {
        format!("bf:pair:{}:{ip}", slot_tag(account))
    }
    pub fn backoff(account: &str, ip: &str) -> String {
        format!("bf:wait:{}:{ip}", slot_tag(account))
    }
    pub fn device_failures(device: &str) -> String {
        format!("bf:dev:{}", slot_tag(device))
    }
    pub fn device_lock(device: &str) -> String {
        format!("bf:devlock:{}", slot_tag(device))
    }
}

/// The current name of a key written by a release before hash tags (`bf:lock:ab12` becomes
/// `bf:lock:{ab12}`), so that an upgrade keeps the locks and counts already in Redis; `None` for a key
/// whose name did not change (per-IP keys) or that is already current.
pub fn retagged_key(legacy: &str) -> Option<String> {
    let (kind, rest) = legacy.strip_prefix("bf:")?.split_once(':')?;
    if rest.is_empty() || rest.starts_with('{') {
        return None;
    }
    match kind {
        "acct" => Some(keys::account_failures(rest)),
        "lock" => Some(keys::lock(rest)),
        "locks" => Some(keys::locks(rest)),
        "dev" => Some(keys::device_failures(rest)),
        "devlock" => Some(keys::device_lock(rest)),
        // The account key is hex, so the first colon ends it; the IP (IPv6 too) is the rest.
        "pair" | "wait" => {
            let (account, ip) = rest.split_once(':')?;
            Some(match kind {
                "pair" => keys::pair_failures(account, ip),
                _ => keys::backoff(account, ip),
            })
        }
        _ => None,
    }
}

pub struct BruteForce {
    kv: Arc<dyn KvStore>,
    clock: Arc<dyn Clock>,
    policy: LockoutPolicy,
}

fn secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

impl BruteForce {
    pub fn new(kv: Arc<dyn KvStore>, clock: Arc<dyn Clock>, policy: LockoutPolicy) -> Self {
        Self { kv, clock, policy }
    }

    pub fn policy(&self) -> &LockoutPolicy {
        &self.policy
    }

    fn now(&self) -> u64 {
        self.clock.now_micros() / 1_000_000
    }

    /// Remaining wait of an "until" key, if it is in the future.
    async fn until(&self, key: &str) -> Result<Option<Duration>, KvError> {
        let now = self.now();
        Ok(self
            .kv
            .get(key)
            .await?
            .and_then(|v| v.parse::<u64>().ok())
            .filter(|until| *until > now)
            .map(|until| Duration::from_secs(until - now)))
    }

    async fn set_until(&self, key: &str, wait: Duration) -> Result<(), KvError> {
        let until = self.now() + secs(wait);
        self.kv
            .set(key, &until.to_string(), Duration::from_secs(secs(wait)))
            .await
    }

    /// Refuses the attempt before the password is checked, if a wait applies.
    pub async fn check(&self, attempt: &Attempt<'_>) -> Result<Option<Blocked>, KvError> {
        let blocked = |reason, retry_after| {
            Some(Blocked {
                reason,
                retry_after,
            })
        };
        if let Some(wait) = self.until(&keys::ip_block(attempt.ip)).await? {
            return Ok(blocked(Block::IpThrottled, wait));
        }
        match attempt.device {
            Some(device) => {
                // A known device is judged on its own record, not the account's lock.
                if let Some(wait) = self.until(&keys::device_lock(device)).await? {
                    return Ok(blocked(Block::DeviceLocked, wait));
                }
            }
            None => {
                if let Some(wait) = self.until(&keys::lock(attempt.account)).await? {
                    return Ok(blocked(Block::Locked, wait));
                }
                if let Some(wait) = self
                    .until(&keys::backoff(attempt.account, attempt.ip))
                    .await?
                {
                    return Ok(blocked(Block::Backoff, wait));
                }
            }
        }
        Ok(None)
    }

    /// The counter an attempt is reserved on and its limit: the device's with a valid device cookie,
    /// else the account's.
    fn counter_of(&self, attempt: &Attempt<'_>) -> (String, u64) {
        match attempt.device {
            Some(device) => (
                keys::device_failures(device),
                self.policy.device_failures_before_lock,
            ),
            None => (
                keys::account_failures(attempt.account),
                self.policy.failures_before_lock,
            ),
        }
    }

    /// Counts the attempt before its secret is checked, in one atomic step with the checks that
    /// refuse it (lock or device lock, backoff): of any number of concurrent attempts, at most the
    /// allowed number are ever checked inside the window. A wrong secret then goes to
    /// `record_reserved_failure`, a right one to `record_success` (a completed sign-in) or `release`.
    ///
    /// The IP throttle is read just before, on its own: its key lives in another Redis Cluster slot
    /// than the account's or device's. That costs nothing in exactness — the throttle is raised after
    /// failures are counted, so it was never a reservation, and an attempt that reads it a moment
    /// before it is raised is the same as one that arrived a moment earlier.
    pub async fn reserve(
        &self,
        attempt: &Attempt<'_>,
    ) -> Result<Result<Reservation, Blocked>, KvError> {
        if let Some(wait) = self.until(&keys::ip_block(attempt.ip)).await? {
            return Ok(Err(Blocked {
                reason: Block::IpThrottled,
                retry_after: wait,
            }));
        }
        let (blockers, reasons) = match attempt.device {
            Some(device) => (
                vec![keys::device_lock(device)],
                [Block::DeviceLocked, Block::DeviceLocked],
            ),
            None => (
                vec![
                    keys::lock(attempt.account),
                    keys::backoff(attempt.account, attempt.ip),
                ],
                [Block::Locked, Block::Backoff],
            ),
        };
        let keys: Vec<&str> = blockers.iter().map(String::as_str).collect();
        let (counter, limit) = self.counter_of(attempt);
        let now = self.now();
        match self
            .kv
            .reserve(&keys, now, &counter, self.policy.failure_window)
            .await?
        {
            Reserved::Blocked { index, until } => Ok(Err(Blocked {
                reason: reasons.get(index).copied().unwrap_or(Block::Locked),
                retry_after: Duration::from_secs(until.saturating_sub(now).max(1)),
            })),
            // Over the allowance: the attempts that used it are still being checked (the lock comes
            // with the last of them), so this one waits as a lock would.
            Reserved::Counted(count) if count > limit => Ok(Err(Blocked {
                reason: if attempt.device.is_some() {
                    Block::DeviceLocked
                } else {
                    Block::Locked
                },
                retry_after: self.policy.first_lock,
            })),
            Reserved::Counted(count) => Ok(Ok(Reservation { count })),
        }
    }

    /// Gives back a reserved attempt whose secret was right, where the counters must not be reset
    /// (a password step still waiting for its second factor, a step-up).
    pub async fn release(&self, attempt: &Attempt<'_>) -> Result<(), KvError> {
        self.kv.release(&self.counter_of(attempt).0).await
    }

    /// Counts a failed password (or current-password, TOTP, backup code) check that was not reserved.
    pub async fn record_failure(&self, attempt: &Attempt<'_>) -> Result<FailureEffects, KvError> {
        let (counter, _) = self.counter_of(attempt);
        let count = self.kv.incr(&counter, self.policy.failure_window).await?;
        self.record_reserved_failure(attempt, &Reservation { count })
            .await
    }

    /// Records a failed check of a reserved attempt: the per-IP and per-pair counters, and the lock
    /// when this reservation used up the allowance (exactly one attempt does, however many raced).
    pub async fn record_reserved_failure(
        &self,
        attempt: &Attempt<'_>,
        reservation: &Reservation,
    ) -> Result<FailureEffects, KvError> {
        let p = self.policy;
        let mut effects = FailureEffects::default();

        let ip_failures = self
            .kv
            .incr(&keys::ip_failures(attempt.ip), p.ip_window)
            .await?;
        if ip_failures == p.ip_failures_before_throttle + 1 {
            self.set_until(&keys::ip_block(attempt.ip), p.ip_window)
                .await?;
            effects.ip_throttled = true;
        } else if ip_failures > p.ip_failures_before_throttle {
            self.set_until(&keys::ip_block(attempt.ip), p.ip_window)
                .await?;
        }

        if let Some(device) = attempt.device {
            if reservation.count == p.device_failures_before_lock {
                self.set_until(&keys::device_lock(device), p.first_lock)
                    .await?;
                self.kv.delete(&keys::device_failures(device)).await?;
                effects.device_locked = true;
            }
            return Ok(effects);
        }

        let pair = self
            .kv
            .incr(
                &keys::pair_failures(attempt.account, attempt.ip),
                p.failure_window,
            )
            .await?;
        if pair >= p.backoff_from {
            let exponent = u32::try_from(pair - p.backoff_from)
                .unwrap_or(u32::MAX)
                .min(20);
            let wait = Duration::from_secs(1u64 << exponent).min(p.max_backoff);
            self.set_until(&keys::backoff(attempt.account, attempt.ip), wait)
                .await?;
        }

        if reservation.count == p.failures_before_lock {
            // Locks are remembered for a day after the latest one ends, so a patient attacker who waits
            // out each lock still meets doubling locks.
            let locks_key = keys::locks(attempt.account);
            let locks = self
                .kv
                .get(&locks_key)
                .await?
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
                + 1;
            let doubling = u32::try_from(locks - 1).unwrap_or(u32::MAX).min(16);
            let duration = p
                .first_lock
                .saturating_mul(1u32 << doubling)
                .min(p.max_lock);
            self.kv
                .set(
                    &locks_key,
                    &locks.to_string(),
                    duration.saturating_add(p.max_lock),
                )
                .await?;
            self.set_until(&keys::lock(attempt.account), duration)
                .await?;
            self.kv
                .delete(&keys::account_failures(attempt.account))
                .await?;
            effects.locked_for = Some(duration);
        }
        Ok(effects)
    }

    /// A successful login resets the account's, the pair's and the device's counters.
    pub async fn record_success(&self, attempt: &Attempt<'_>) -> Result<(), KvError> {
        for key in [
            keys::account_failures(attempt.account),
            keys::pair_failures(attempt.account, attempt.ip),
            keys::backoff(attempt.account, attempt.ip),
        ] {
            self.kv.delete(&key).await?;
        }
        if let Some(device) = attempt.device {
            self.kv.delete(&keys::device_failures(device)).await?;
        }
        Ok(())
    }

    /// Ends a lock (email link, support staff) and forgets the failures that led to it.
    pub async fn unlock(&self, account: &str) -> Result<bool, KvError> {
        let was_locked = self.kv.delete(&keys::lock(account)).await?;
        self.kv.delete(&keys::account_failures(account)).await?;
        Ok(was_locked)
    }

    /// How long the account stays locked, if it is.
    pub async fn lock_remaining(&self, account: &str) -> Result<Option<Duration>, KvError> {
        self.until(&keys::lock(account)).await
    }
}

/// Device cookies: `v1.{id}.{mac}` where the MAC (HMAC-SHA256 under a server key) binds the random id to
/// the account, so a cookie from one account is worthless for another and cannot be forged.
pub struct DeviceCookies {
    key: Vec<u8>,
}

impl DeviceCookies {
    /// `key` is derived by the caller from a server secret.
    pub fn new(key: Vec<u8>) -> Self {
        Self { key }
    }

    /// Derives the cookie key from a server master key (so no separate secret must be configured).
    pub fn from_master_key(master: &[u8]) -> Self {
        let key = match hmac::Hmac::<Sha256>::new_from_slice(master) {
            Ok(mut mac) => {
                mac.update(b"tradesignal device cookie key v1");
                mac.finalize().into_bytes().to_vec()
            }
            Err(_) => crate::random::bytes(32),
        };
        Self { key }
    }

    fn mac(&self, account: &str, id: &str) -> String {
        let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(&self.key) else {
            return String::new();
        };
        mac.update(b"tradesignal device cookie v1\n");
        mac.update(account.as_bytes());
        mac.update(b"\n");
        mac.update(id.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    /// A new cookie value for `account`.
    pub fn issue(&self, account: &str) -> String {
        let id = crate::random::token(16);
        format!("v1.{id}.{}", self.mac(account, &id))
    }

    /// The device id if `value` is a genuine cookie for `account`.
    pub fn verify(&self, account: &str, value: &str) -> Option<String> {
        let mut parts = value.split('.');
        let (Some("v1"), Some(id), Some(mac), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        if id.len() != 22 || mac.len() != 64 {
            return None;
        }
        let expected = self.mac(account, id);
        let equal: bool = subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), mac.as_bytes()).into();
        equal.then(|| id.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_cookies_bind_to_their_account() {
        let cookies = DeviceCookies::new(vec![7; 32]);
        let value = cookies.issue("acct-a");
        assert!(cookies.verify("acct-a", &value).is_some());
        assert!(
            cookies.verify("acct-b", &value).is_none(),
            "another account's cookie is worthless"
        );
        // Change the MAC's last hex digit (to another digit: a flake once in 16 runs otherwise).
        let last = if value.ends_with('0') { '1' } else { '0' };
        let forged = format!("{}{last}", &value[..value.len() - 1]);
        assert!(cookies.verify("acct-a", &forged).is_none());
        assert!(
            DeviceCookies::new(vec![8; 32])
                .verify("acct-a", &value)
                .is_none()
        );
        for junk in ["", "v1", "v1..", "v2.x.y", &format!("{value}.extra")] {
            assert!(cookies.verify("acct-a", junk).is_none(), "{junk}");
        }
    }

    #[test]
    fn account_keys_hide_the_address() {
        let key = account_key("ann@example.com");
        assert_eq!(key.len(), 32);
        assert!(!key.contains("ann"));
        assert_eq!(key, account_key("ann@example.com"));
        assert_ne!(key, account_key("bob@example.com"));
    }

    #[test]
    fn keys_of_a_release_before_hash_tags_get_their_current_names() {
        let a = account_key("ann@example.com");
        assert_eq!(retagged_key(&format!("bf:lock:{a}")), Some(keys::lock(&a)));
        assert_eq!(
            retagged_key(&format!("bf:locks:{a}")),
            Some(keys::locks(&a))
        );
        assert_eq!(
            retagged_key(&format!("bf:acct:{a}")),
            Some(keys::account_failures(&a))
        );
        assert_eq!(
            retagged_key(&format!("bf:wait:{a}:2001:db8::1")),
            Some(keys::backoff(&a, "2001:db8::1"))
        );
        assert_eq!(
            retagged_key(&format!("bf:pair:{a}:10.0.0.1")),
            Some(keys::pair_failures(&a, "10.0.0.1"))
        );
        assert_eq!(retagged_key("bf:devlock:d1"), Some(keys::device_lock("d1")));
        assert_eq!(retagged_key("bf:dev:d1"), Some(keys::device_failures("d1")));
        for unchanged in [
            "bf:ipblock:10.0.0.1",
            "bf:ip:10.0.0.1",
            "bf:lock:",
            "rl:user:u1",
            "bf:pair:nocolon",
        ] {
            assert_eq!(retagged_key(unchanged), None, "{unchanged}");
        }
        let current = keys::lock(&a);
        assert_eq!(retagged_key(&current), None, "already current");
    }

    #[test]
    fn a_reservation_touches_one_slot() {
        let a = account_key("ann@example.com");
        let ip = "2001:db8::1";
        crate::kv::check_one_slot([
            keys::account_failures(&a).as_str(),
            keys::lock(&a).as_str(),
            keys::backoff(&a, ip).as_str(),
        ])
        .expect("account keys share a slot");
        crate::kv::check_one_slot([
            keys::device_failures("d1").as_str(),
            keys::device_lock("d1").as_str(),
        ])
        .expect("device keys share a slot");
    }
}
