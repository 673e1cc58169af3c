//! Two-factor authentication: TOTP enrolment (secret, otpauth URI, QR code), turning it on with the
//! first code, turning it off, backup codes, and the check of a second factor that logins, step-up
//! and these operations share.
//!
//! The secret is sealed with the data key ring (associated data binds it to the user's row) and opened
//! only to check a code. A code is accepted once: its time step is claimed in the database with a
//! conditional UPDATE, so a replay — now, on another instance, or racing the original — fails.

use std::time::Duration;

use security::authz::Role;
use security::backup_codes;
use security::totp::{self, TotpSecret};
use store::identity::UserRecord;
use zeroize::Zeroizing;

use super::abuse::ReservedAttempt;
use super::audit::Event;
use super::{Identity, IdentityError, Principal, RequestMeta, now};

/// The issuer shown in authenticator apps.
pub const TOTP_ISSUER: &str = "TradeSignal";
/// An enrolment must be confirmed with a code within this time.
pub const ENROLMENT_TTL_SECS: i64 = 15 * 60;

/// A second factor as the client sent it. `Debug` names the kind, never the code.
#[derive(Clone, Copy)]
pub enum SecondFactor<'a> {
    Totp(&'a str),
    BackupCode(&'a str),
}

impl std::fmt::Debug for SecondFactor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecondFactor::{}([redacted])", self.method())
    }
}

impl<'a> SecondFactor<'a> {
    /// A code field that may hold either kind: six digits are an authenticator code, anything else is
    /// tried as a backup code.
    pub fn either(code: &'a str) -> Self {
        if totp::is_code_shaped(code.trim()) {
            Self::Totp(code.trim())
        } else {
            Self::BackupCode(code)
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            Self::Totp(_) => "totp",
            Self::BackupCode(_) => "backup_code",
        }
    }
}

/// The result of checking a second factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FactorCheck {
    /// Accepted; for a backup code, how many unused codes remain.
    Valid { backup_remaining: Option<usize> },
    /// Wrong, malformed, replayed or already used.
    Invalid,
}

/// Where a wrong code was sent, for the lockout and the audit trail.
pub(super) struct WrongCode<'a> {
    pub step: &'static str,
    pub method: &'static str,
    pub session: Option<&'a str>,
    /// The attempt as it was reserved (see `Identity::reserve_attempt`).
    pub slot: &'a ReservedAttempt,
}

/// What `/totp/setup` shows once.
pub struct TotpEnrolment {
    pub secret: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
    pub qr_svg: String,
}

fn unix_now() -> u64 {
    u64::try_from(now()).unwrap_or(0)
}

/// Associated data of a sealed TOTP secret: the row it belongs to.
fn totp_aad(user_id: &str) -> Vec<u8> {
    store::rotation::SealedColumn::TotpSecret.aad(user_id)
}

impl Identity {
    fn seal_totp(&self, user_id: &str, secret: &TotpSecret) -> Result<String, IdentityError> {
        self.cipher
            .encrypt(secret.as_bytes(), &totp_aad(user_id))
            .map_err(|e| IdentityError::Internal(e.into()))
    }

    fn open_totp(&self, user_id: &str, sealed: &str) -> Result<TotpSecret, IdentityError> {
        let bytes = self
            .cipher
            .decrypt(sealed, &totp_aad(user_id))
            .map_err(|e| IdentityError::Internal(e.into()))?;
        TotpSecret::from_bytes(&bytes).map_err(|e| IdentityError::Internal(e.into()))
    }

    /// A fresh set of backup codes: the codes to show once and their keyed hashes to store.
    fn new_backup_codes(&self) -> (Vec<String>, Vec<String>) {
        let codes = backup_codes::generate_set();
        let hashes = codes
            .iter()
            .filter_map(|code| backup_codes::normalize(code))
            .map(|canonical| self.backup_code_hasher.hash(canonical.as_bytes()))
            .collect();
        (codes.iter().map(|c| c.to_string()).collect(), hashes)
    }

    /// Reserves one code check against the account's guessing budget (`security::factor_throttle`)
    /// before any code is compared: however many tokens, addresses, devices or concurrent requests
    /// an attacker uses, the account's checks are counted one by one. A pause is a `Throttled`.
    async fn reserve_code_check(&self, user_id: &str) -> Result<(), IdentityError> {
        for _ in 0..5 {
            let Some(record) = self.db.totp_record(user_id).await? else {
                return Ok(());
            };
            let at = now();
            if record.blocked_until > at {
                let wait = u64::try_from(record.blocked_until - at).unwrap_or(1);
                return Err(IdentityError::Throttled(Duration::from_secs(wait)));
            }
            let pause_until = self
                .factor_throttle
                .pause_after(record.failed_checks + 1)
                .map_or(0, |pause| {
                    at + i64::try_from(pause.as_secs()).unwrap_or(i64::MAX / 2)
                });
            if self
                .db
                .reserve_factor_check(user_id, record.failed_checks, pause_until, at)
                .await?
            {
                return Ok(());
            }
        }
        // Other checks of this account keep winning the reservation: a flood, not a person.
        Err(IdentityError::Throttled(Duration::from_secs(1)))
    }

    /// Checks a second factor of a user with 2FA on, after reserving the check against the account's
    /// guessing budget. Each accepted code is consumed atomically; a correct one resets the budget.
    pub async fn check_second_factor(
        &self,
        user: &UserRecord,
        factor: SecondFactor<'_>,
    ) -> Result<FactorCheck, IdentityError> {
        self.reserve_code_check(&user.id).await?;
        let check = self.compare_second_factor(user, factor).await?;
        if check != FactorCheck::Invalid {
            self.db.clear_factor_checks(&user.id).await?;
        }
        Ok(check)
    }

    async fn compare_second_factor(
        &self,
        user: &UserRecord,
        factor: SecondFactor<'_>,
    ) -> Result<FactorCheck, IdentityError> {
        match factor {
            SecondFactor::Totp(code) => {
                let Some(record) = self
                    .db
                    .totp_record(&user.id)
                    .await?
                    .filter(|r| r.enabled_at.is_some())
                else {
                    return Ok(FactorCheck::Invalid);
                };
                let secret = self.open_totp(&user.id, &record.secret_sealed)?;
                let Some(step) = secret.matching_step(code, unix_now()) else {
                    return Ok(FactorCheck::Invalid);
                };
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                if self.db.claim_totp_step(&user.id, step).await? {
                    Ok(FactorCheck::Valid {
                        backup_remaining: None,
                    })
                } else {
                    tracing::warn!(user_id = %user.id, "replayed TOTP code refused");
                    Ok(FactorCheck::Invalid)
                }
            }
            SecondFactor::BackupCode(code) => {
                let Some(canonical) = backup_codes::normalize(code) else {
                    return Ok(FactorCheck::Invalid);
                };
                let unused = self.db.unused_backup_codes(&user.id).await?;
                // Every stored code is compared, so the time taken does not tell which one matched.
                let mut matched = None;
                for stored in &unused {
                    if self
                        .backup_code_hasher
                        .verify(canonical.as_bytes(), &stored.code_hash)
                    {
                        matched = Some(stored.id.clone());
                    }
                }
                match matched {
                    Some(id) if self.db.use_backup_code(&id, now()).await? => {
                        Ok(FactorCheck::Valid {
                            backup_remaining: Some(unused.len() - 1),
                        })
                    }
                    _ => Ok(FactorCheck::Invalid),
                }
            }
        }
    }

    /// A wrong code counts toward the account lockout like a wrong password, and is audited as
    /// `auth.mfa.failed`.
    pub(super) async fn note_wrong_code(
        &self,
        user: &UserRecord,
        wrong: WrongCode<'_>,
        meta: &RequestMeta,
    ) {
        self.note_failure(wrong.slot, Some((&user.id, &user.email)), meta)
            .await;
        let mut event = Event::failure("auth.mfa.failed")
            .actor(&user.id)
            .subject(&user.id)
            .details(serde_json::json!({"step": wrong.step, "method": wrong.method}));
        if let Some(session) = wrong.session {
            event = event.session(session);
        }
        self.audit(event, meta).await;
    }

    /// Audits a used backup code and warns the owner when few remain.
    pub(super) async fn note_backup_code_used(
        &self,
        user: &UserRecord,
        remaining: usize,
        session: Option<&str>,
        meta: &RequestMeta,
    ) {
        let mut event = Event::success("auth.mfa.backup_code_used")
            .actor(&user.id)
            .subject(&user.id)
            .details(serde_json::json!({"remaining": remaining}));
        if let Some(session) = session {
            event = event.session(session);
        }
        self.audit(event, meta).await;
        if remaining <= backup_codes::LOW_WATERMARK {
            self.send_mail(self.backup_codes_low_email(&user.email, remaining, meta));
        }
    }

    /// `POST /auth/2fa/totp/setup` (step-up checked by the caller): a new secret, pending until a code
    /// confirms it. An unfinished earlier enrolment is replaced; an enabled one is not.
    pub async fn start_totp_enrolment(
        &self,
        principal: &Principal,
    ) -> Result<TotpEnrolment, IdentityError> {
        let user = self.profile(&principal.user_id).await?;
        if user.has_mfa() {
            return Err(IdentityError::Conflict(
                "Two-factor authentication is already on. Turn it off first to enrol a new authenticator.",
            ));
        }
        let secret = TotpSecret::generate();
        let sealed = self.seal_totp(&user.id, &secret)?;
        if !self.db.put_pending_totp(&user.id, &sealed, now()).await? {
            return Err(IdentityError::Conflict(
                "Two-factor authentication is already on. Turn it off first to enrol a new authenticator.",
            ));
        }
        let otpauth_uri = secret
            .otpauth_uri(TOTP_ISSUER, &user.email)
            .map_err(|e| IdentityError::Internal(e.into()))?;
        let qr_svg = totp::qr_svg(&otpauth_uri).map_err(|e| IdentityError::Internal(e.into()))?;
        Ok(TotpEnrolment {
            secret: secret.to_base32(),
            otpauth_uri,
            qr_svg,
        })
    }

    /// `POST /auth/2fa/totp/enable`: the first code turns the pending secret on; the backup codes are
    /// returned once.
    pub async fn enable_totp(
        &self,
        principal: &Principal,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, IdentityError> {
        let user = self.profile(&principal.user_id).await?;
        if user.has_mfa() {
            return Err(IdentityError::Conflict(
                "Two-factor authentication is already on.",
            ));
        }
        let record = self
            .db
            .totp_record(&user.id)
            .await?
            .filter(|r| r.enabled_at.is_none())
            .ok_or(IdentityError::Conflict(
                "No enrolment is in progress: start with POST /api/v1/auth/2fa/totp/setup.",
            ))?;
        if now() - record.created_at > ENROLMENT_TTL_SECS {
            return Err(IdentityError::Conflict(
                "This enrolment expired: start again with POST /api/v1/auth/2fa/totp/setup.",
            ));
        }
        let slot = self
            .reserve_attempt(&super::abuse::account_of(&user.email), None, meta)
            .await?;
        if let Err(e) = self.reserve_code_check(&user.id).await {
            self.release_attempt(&slot, meta).await;
            return Err(e);
        }
        let secret = self.open_totp(&user.id, &record.secret_sealed)?;
        let step = secret
            .matching_step(code.trim(), unix_now())
            .and_then(|s| i64::try_from(s).ok());
        let (codes, hashes) = self.new_backup_codes();
        let enabled = match step {
            Some(step) => {
                self.db
                    .enable_totp(
                        &user.id,
                        &record.secret_sealed,
                        step,
                        &hashes,
                        &security::random::token(16),
                        now(),
                    )
                    .await?
            }
            None => false,
        };
        if !enabled {
            self.note_wrong_code(
                &user,
                WrongCode {
                    step: "enable",
                    method: "totp",
                    session: Some(&principal.session_id),
                    slot: &slot,
                },
                meta,
            )
            .await;
            return Err(IdentityError::WrongCode);
        }
        self.release_attempt(&slot, meta).await;
        self.db.clear_factor_checks(&user.id).await?;
        // Sessions opened with the password alone (perhaps by whoever made the user turn 2FA on)
        // end now; this one stays.
        let revoked = self
            .revoke_user_sessions(&user.id, Some(&principal.session_id), "mfa_enabled")
            .await?;
        self.audit(
            Event::success("auth.mfa.enabled")
                .actor(&user.id)
                .subject(&user.id)
                .session(&principal.session_id)
                .details(serde_json::json!({"sessions_revoked": revoked})),
            meta,
        )
        .await;
        self.send_mail(self.mfa_enabled_email(&user.email, meta));
        Ok(codes)
    }

    /// `POST /auth/2fa/totp/disable`: password and a code; refused for staff, who must keep 2FA.
    pub async fn disable_totp(
        &self,
        principal: &Principal,
        password: &str,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let user = self.profile(&principal.user_id).await?;
        if user.role.parse::<Role>().is_ok_and(Role::is_staff) {
            return Err(IdentityError::Forbidden(
                "Staff accounts must keep two-factor authentication; an administrator can reset it.",
            ));
        }
        if !user.has_mfa() {
            return Err(IdentityError::Conflict("Two-factor authentication is off."));
        }
        let user = self
            .confirm_current_password(principal, password, "auth.mfa.disabled", meta)
            .await?;
        self.require_code(
            &user,
            principal,
            SecondFactor::either(code),
            "disable",
            meta,
        )
        .await?;
        self.db
            .remove_mfa(&user.id, &security::random::token(16), now())
            .await?;
        // Access tokens issued with a second factor say so; they die, and a refresh issues `pwd`.
        self.invalidate_access_tokens(&user.id).await?;
        self.audit(
            Event::success("auth.mfa.disabled")
                .actor(&user.id)
                .subject(&user.id)
                .session(&principal.session_id)
                .details(serde_json::json!({"by": "owner"})),
            meta,
        )
        .await;
        self.send_mail(self.mfa_disabled_email(&user.email, false, meta));
        Ok(())
    }

    /// `POST /auth/2fa/backup-codes`: a current authenticator code buys a new set; the old set dies.
    pub async fn regenerate_backup_codes(
        &self,
        principal: &Principal,
        code: &str,
        meta: &RequestMeta,
    ) -> Result<Vec<String>, IdentityError> {
        let user = self.profile(&principal.user_id).await?;
        if !user.has_mfa() {
            return Err(IdentityError::Conflict("Two-factor authentication is off."));
        }
        self.require_code(
            &user,
            principal,
            SecondFactor::Totp(code.trim()),
            "backup_codes",
            meta,
        )
        .await?;
        let (codes, hashes) = self.new_backup_codes();
        self.db
            .replace_backup_codes(&user.id, &hashes, now())
            .await?;
        self.audit(
            Event::success("auth.mfa.backup_codes_regenerated")
                .actor(&user.id)
                .subject(&user.id)
                .session(&principal.session_id),
            meta,
        )
        .await;
        self.send_mail(self.backup_codes_regenerated_email(&user.email, meta));
        Ok(codes)
    }

    /// A code for an operation of a signed-in user; a wrong one counts toward the lockout.
    async fn require_code(
        &self,
        user: &UserRecord,
        principal: &Principal,
        factor: SecondFactor<'_>,
        operation: &'static str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let slot = self
            .reserve_attempt(&super::abuse::account_of(&user.email), None, meta)
            .await?;
        let check = match self.check_second_factor(user, factor).await {
            Ok(check) => check,
            Err(e) => {
                self.release_attempt(&slot, meta).await;
                return Err(e);
            }
        };
        match check {
            FactorCheck::Valid { backup_remaining } => {
                self.release_attempt(&slot, meta).await;
                if let Some(remaining) = backup_remaining {
                    self.note_backup_code_used(user, remaining, Some(&principal.session_id), meta)
                        .await;
                }
                Ok(())
            }
            FactorCheck::Invalid => {
                self.note_wrong_code(
                    user,
                    WrongCode {
                        step: operation,
                        method: factor.method(),
                        session: Some(&principal.session_id),
                        slot: &slot,
                    },
                    meta,
                )
                .await;
                Err(IdentityError::WrongCode)
            }
        }
    }
}
