//! Accounts, passwords, sessions and tokens: the identity service. It knows nothing of HTTP — handlers
//! in `crate::api` parse requests, call these functions and map `IdentityError` to responses.

pub mod abuse;
pub mod access;
pub mod accounts;
pub mod admin;
pub mod apikeys;
pub mod audit;
pub mod audit_queue;
pub mod emails;
pub mod kv_keys;
pub mod login;
pub mod mfa;
pub mod monitoring;
pub mod passwords;
pub mod principal;
pub mod revocation;
pub mod sessions;
pub mod usage;
pub mod web_sessions;

use std::sync::Arc;
use std::time::Duration;

use security::bruteforce::{BruteForce, DeviceCookies, LockoutPolicy};
use security::factor_throttle::FactorThrottle;
use security::fieldcrypt::FieldCipher;
use security::keyed_hash::KeyedHasher;
use security::keys::{self, KeyRing};
use security::password::{PasswordPolicy, Violation};
use security::ratelimit::RateLimits;
use security::tokens::JwtCodec;
use security::{KvStore, SystemClock};
use store::Database;
use store::mail::Mailer;

use crate::config::Settings;
pub use passwords::PasswordService;
pub use principal::{Caller, CallerCredential, Principal};

/// Credential and network pairs one instance remembers for `credential_many_ips` (bounded memory).
const SEEN_PAIRS: usize = 100_000;

/// Access tokens live this long.
pub const ACCESS_TTL: Duration = Duration::from_secs(15 * 60);
/// A recent login (for step-up) is at most this old.
pub const STEP_UP_WINDOW_SECS: u64 = 600;
pub const AUDIENCE: &str = "tradesignal-api";

/// Facts about the request that go into audit records and session rows.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    /// What per-address limits count the client under (the IPv6 network, see `ClientBucket`).
    pub client_bucket: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// Why an identity operation did not happen. Messages are safe to show.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("The email or password is incorrect.")]
    InvalidCredentials,
    #[error("The refresh token is invalid, expired or already used.")]
    InvalidGrant,
    #[error("This link is invalid, expired or already used.")]
    InvalidToken,
    #[error("The password does not meet the policy.")]
    WeakPassword {
        field: &'static str,
        violations: Vec<Violation>,
    },
    #[error("{message}")]
    Invalid {
        field: &'static str,
        code: &'static str,
        message: String,
    },
    #[error("The current password is incorrect.")]
    WrongCurrentPassword,
    #[error("This operation needs a recent login.")]
    StepUpRequired,
    #[error("No such resource.")]
    NotFound,
    /// Brute-force protection: wait before trying again (identical for unknown accounts).
    #[error("Too many attempts; retry later.")]
    Throttled(std::time::Duration),
    /// A rate limit of this operation (per email, per session).
    #[error("Too many requests; retry later.")]
    RateLimited {
        quota: security::Quota,
        decision: security::GcraDecision,
    },
    #[error("{0}")]
    Forbidden(&'static str),
    /// A wrong, replayed or already used second-factor code where it authenticates (the second login
    /// step, step-up).
    #[error("The code is incorrect or was already used.")]
    InvalidCode,
    /// The same, confirming an operation of a signed-in user (turning 2FA on or off, new backup
    /// codes): the session itself is fine.
    #[error("The code is incorrect or was already used.")]
    WrongCode,
    /// The request contradicts the account's current state (for example 2FA already on).
    #[error("{0}")]
    Conflict(&'static str),
    /// The caller's plan does not allow this.
    #[error("{0}")]
    PlanLimit(String),
    /// Password hashing is saturated (a flood): retry in a moment.
    #[error("The service is busy; retry in a moment.")]
    Busy,
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl From<passwords::PasswordError> for IdentityError {
    fn from(e: passwords::PasswordError) -> Self {
        match e {
            passwords::PasswordError::Busy => Self::Busy,
            passwords::PasswordError::Failed(e) => Self::Internal(e),
        }
    }
}

impl From<store::StoreError> for IdentityError {
    fn from(e: store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

/// Everything identity operations need; cheap to clone.
#[derive(Clone)]
pub struct Identity {
    pub db: Database,
    /// Revocation state (Redis or in-process); when it fails, the database answers instead.
    pub kv: Arc<dyn KvStore>,
    /// Counters for limits and lockouts, with an in-process fallback while Redis is down.
    pub limiter: Arc<dyn KvStore>,
    pub guard: Arc<BruteForce>,
    /// The per-account budget of second-factor code checks.
    pub factor_throttle: FactorThrottle,
    /// Revocations not yet written to the store (see `revocation::PendingRevocations`).
    pub pending: Arc<revocation::PendingRevocations>,
    /// Whether any instance could not write a revocation to the store (see `revocation`).
    pub watch: Arc<revocation::RevocationWatch>,
    pub devices: Arc<DeviceCookies>,
    pub limits: RateLimits,
    pub codec: JwtCodec,
    pub passwords: PasswordService,
    pub policy: PasswordPolicy,
    pub mailer: Arc<dyn Mailer>,
    pub settings: Arc<Settings>,
    /// Seals TOTP secrets (data key ring).
    pub cipher: Arc<FieldCipher>,
    /// Keyed hashes of API keys and of backup codes (data key ring, one derived key each).
    pub api_key_hasher: Arc<KeyedHasher>,
    pub backup_code_hasher: Arc<KeyedHasher>,
    /// Seals audit records and the chain head (`security::audit_chain`).
    pub audit_sealer: Arc<KeyedHasher>,
    /// Keys for counting secrets in monitoring (a sprayed password) without keeping them.
    pub monitor_hasher: Arc<KeyedHasher>,
    /// Synchronizer tokens of the web UI's forms (data key ring, their own derived key).
    pub csrf: Arc<security::csrf::CsrfTokens>,
    /// Audit writes off the request path (`None` outside a runtime: written inline).
    pub audit_queue: Option<Arc<audit_queue::AuditQueue>>,
    /// API-key usage counted in memory and flushed to the database in batches.
    pub usage: Arc<usage::UsageBuffer>,
    /// Failed API-key checks per address on this instance (see `apikeys::KEY_FAILURES_PER_MINUTE`).
    pub key_failures: Arc<store::MemoryKv>,
    /// Credential and network pairs this instance has already counted (see
    /// `Identity::note_credential_use`).
    pub seen_locally: Arc<store::MemoryKv>,
    /// The security webhook, when configured.
    pub alert_webhook: Option<Arc<monitoring::AlertWebhook>>,
    /// Woken when an audit append finds the trail's end tampered with; a background task raises the
    /// alert (the audit writer cannot, as raising one writes an audit event).
    pub audit_tampered: Arc<tokio::sync::Notify>,
}

impl Identity {
    /// Builds the service; in development without configured JWT keys a random ring is made for this
    /// run. `data_ring` is the data key ring (see `config::data_ring`).
    pub fn new(
        settings: Arc<Settings>,
        db: Database,
        kv: Arc<dyn KvStore>,
        limiter: Arc<dyn KvStore>,
        mailer: Arc<dyn Mailer>,
        data_ring: &KeyRing,
    ) -> anyhow::Result<Self> {
        let ring = match &settings.jwt_keys {
            Some(ring) => ring.clone(),
            None => {
                tracing::warn!(
                    "TRADESIGNAL_JWT_KEYS not set: using a key generated for this run (tokens end at restart)"
                );
                Arc::new(ephemeral_ring())
            }
        };
        let issuer = settings.public_url.origin().ascii_serialization();
        let audit_sealer = Arc::new(KeyedHasher::new(data_ring, security::audit_chain::LABEL));
        let policy = LockoutPolicy {
            first_lock: settings.lockout,
            ..LockoutPolicy::default()
        };
        let audit_tampered = Arc::new(tokio::sync::Notify::new());
        let identity = Self {
            audit_tampered: audit_tampered.clone(),
            alert_webhook: monitoring::AlertWebhook::new(&settings)?,
            seen_locally: Arc::new(store::MemoryKv::with_capacity(SEEN_PAIRS)),
            pending: Arc::default(),
            watch: Arc::default(),
            cipher: Arc::new(FieldCipher::new(data_ring)?),
            api_key_hasher: Arc::new(KeyedHasher::new(data_ring, "tradesignal api key hash v1")),
            audit_sealer: audit_sealer.clone(),
            monitor_hasher: Arc::new(KeyedHasher::new(data_ring, "tradesignal monitoring v1")),
            csrf: Arc::new(security::csrf::CsrfTokens::new(data_ring)),
            audit_queue: audit_queue::AuditQueue::start(
                db.clone(),
                audit_sealer,
                settings.audit_queue,
                audit_tampered,
            )
            .map(Arc::new),
            backup_code_hasher: Arc::new(KeyedHasher::new(
                data_ring,
                "tradesignal backup code hash v1",
            )),
            usage: Arc::default(),
            key_failures: Arc::new(store::MemoryKv::new()),
            factor_throttle: FactorThrottle::default(),
            guard: Arc::new(BruteForce::new(
                limiter.clone(),
                Arc::new(SystemClock),
                policy,
            )),
            devices: Arc::new(DeviceCookies::from_master_key(keys::material(
                ring.active(),
            ))),
            limits: settings.rate_limits.clone(),
            limiter,
            codec: JwtCodec::new(ring, issuer, AUDIENCE),
            passwords: {
                let threads = passwords::pool_size(
                    std::thread::available_parallelism().map_or(2, |n| n.get()),
                );
                PasswordService::new(
                    threads,
                    settings
                        .password_queue
                        .unwrap_or(threads * passwords::QUEUE_PER_THREAD),
                )
            },
            policy: PasswordPolicy::new(settings.password_profile),
            db,
            kv,
            mailer,
            settings,
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let this = identity.clone();
            runtime.spawn(async move {
                loop {
                    this.audit_tampered.notified().await;
                    this.alert_audit_tampered().await;
                }
            });
        }
        Ok(identity)
    }

    /// Sends mail that someone other than the recipient can trigger (an attempt to register their
    /// address, a confirmation to a new address), at most `mail.address` (3 a day) per address:
    /// beyond it the mail is dropped silently, so the answer and its timing stay the same and nobody
    /// can turn the service into a mail bomb. Decided in the background, like every send.
    pub fn send_unsolicited_mail(&self, email: store::mail::Email) {
        let this = self.clone();
        tokio::spawn(async move {
            let key = format!("rl:mail:{}", abuse::account_of(&email.to));
            let quota = this.limits.get("mail.address");
            match this.limiter.gcra(&key, quota, 1).await {
                Ok(decision) if !decision.allowed => {
                    metrics::counter!("tradesignal_mail_suppressed_total").increment(1);
                    tracing::info!(
                        to = %security::redact::mask_email(&email.to),
                        "mail to this address suppressed: daily limit reached"
                    );
                }
                // A limiter that cannot answer does not stop a legitimate message.
                _ => this.send_mail(email),
            }
        });
    }

    /// Sends mail in the background: delivery time must not show in response times (enumeration), and
    /// a slow relay must not hold a request.
    pub fn send_mail(&self, email: store::mail::Email) {
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            let to = security::redact::mask_email(&email.to);
            if let Err(e) = mailer.send(email).await {
                tracing::error!(to = %to, error = %e, "email not sent");
                metrics::counter!("tradesignal_mail_failures_total").increment(1);
            }
        });
    }
}

/// A fresh single-key ring (development without configured keys).
fn ephemeral_ring() -> KeyRing {
    loop {
        // A generated key fails the randomness heuristics with negligible probability; draw again then.
        if let Ok(ring) = keys::parse_ring(&keys::generate_ring_entry("dev", 32), keys::JWT_RING) {
            return ring;
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
