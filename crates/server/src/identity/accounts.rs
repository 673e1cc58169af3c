//! Registration, email verification, password reset and change, email change, profile.
//!
//! Flows that take an email address answer identically whether or not an account exists: the same
//! status and body, with the expensive work (hashing) done on both paths and mail sent in the background.

use security::password::Assessment;
use security::tokens::{OpaqueToken, hash_token};
use store::identity::{NewUser, OneTimePurpose, UserRecord};

use super::abuse::account_of;
use super::audit::Event;
use super::login::Credentials;
use super::{Identity, IdentityError, Principal, RequestMeta, STEP_UP_WINDOW_SECS, now};

const VERIFY_TTL_SECS: i64 = 24 * 3600;
const RESET_TTL_SECS: i64 = 30 * 60;
const EMAIL_CHANGE_TTL_SECS: i64 = 24 * 3600;
pub const MAX_FULL_NAME_CHARS: usize = 100;

fn normalize_email(input: &str) -> Result<String, IdentityError> {
    security::email::normalize(input).map_err(|e| IdentityError::Invalid {
        field: "email",
        code: "invalid_email",
        message: e.to_string(),
    })
}

/// A display name: plain text, trimmed, no control characters, bounded.
pub fn validate_full_name(name: Option<&str>) -> Result<Option<String>, IdentityError> {
    let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > MAX_FULL_NAME_CHARS {
        return Err(IdentityError::Invalid {
            field: "full_name",
            code: "too_long",
            message: format!("Use at most {MAX_FULL_NAME_CHARS} characters."),
        });
    }
    if name.chars().any(char::is_control) {
        return Err(IdentityError::Invalid {
            field: "full_name",
            code: "invalid_characters",
            message: "Control characters are not allowed.".into(),
        });
    }
    Ok(Some(name.to_string()))
}

impl Identity {
    /// Runs the policy off the async runtime: zxcvbn is CPU-bound and crafted input makes it slow.
    pub async fn assess(
        &self,
        password: &str,
        email: Option<&str>,
    ) -> Result<Assessment, IdentityError> {
        let policy = self.policy;
        let password = password.to_string();
        let email = email.map(str::to_string);
        tokio::task::spawn_blocking(move || policy.assess(&password, email.as_deref()))
            .await
            .map_err(|e| IdentityError::Internal(e.into()))
    }

    async fn enforce_policy(
        &self,
        field: &'static str,
        password: &str,
        email: &str,
    ) -> Result<(), IdentityError> {
        let assessment = self.assess(password, Some(email)).await?;
        if assessment.acceptable {
            Ok(())
        } else {
            Err(IdentityError::WeakPassword {
                field,
                violations: assessment.violations,
            })
        }
    }

    async fn issue_one_time(
        &self,
        purpose: OneTimePurpose,
        user_id: &str,
        new_email: Option<&str>,
        ttl: i64,
    ) -> Result<String, IdentityError> {
        let token = OpaqueToken::generate();
        let at = now();
        self.db
            .insert_one_time_token(purpose, &token.hash, user_id, new_email, at, at + ttl)
            .await?;
        Ok(token.token)
    }

    async fn consume(
        &self,
        purpose: OneTimePurpose,
        token: &str,
    ) -> Result<store::identity::tokens::ConsumedToken, IdentityError> {
        if !security::tokens::opaque::looks_like_token(token) {
            return Err(IdentityError::InvalidToken);
        }
        self.db
            .consume_one_time_token(purpose, &hash_token(token), now())
            .await?
            .ok_or(IdentityError::InvalidToken)
    }

    /// `POST /auth/register`.
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        full_name: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let email = normalize_email(email)?;
        let full_name = validate_full_name(full_name)?;
        self.enforce_policy("password", password, &email).await?;
        // Hash on both paths so an existing address costs the same time as a new one.
        let hash = self.passwords.hash(password.to_string()).await?;
        let user = NewUser {
            id: uuid::Uuid::now_v7().to_string(),
            email: email.clone(),
            password_hash: hash,
            full_name,
            role: "user".into(),
            tier: "free".into(),
            verified_at: None,
            security_stamp: security::random::token(16),
            now: now(),
        };
        if self.db.insert_user(&user).await? {
            self.audit(
                Event::success("auth.register")
                    .actor(&user.id)
                    .subject(&user.id),
                meta,
            )
            .await;
            // The link is made in the background, like the notice on the other path, so both take
            // the same time.
            let this = self.clone();
            tokio::spawn(async move {
                match this
                    .issue_one_time(OneTimePurpose::Verify, &user.id, None, VERIFY_TTL_SECS)
                    .await
                {
                    Ok(token) => this.send_mail(this.verification_email(&email, &token)),
                    Err(e) => tracing::error!(error = %e, "verification link not issued"),
                }
            });
        } else {
            self.send_unsolicited_mail(self.existing_account_email(&email));
            self.audit(
                Event::failure("auth.register")
                    .details(serde_json::json!({"reason": "email_taken"})),
                meta,
            )
            .await;
        }
        Ok(())
    }

    /// `POST /auth/verify-email`.
    pub async fn verify_email(&self, token: &str, meta: &RequestMeta) -> Result<(), IdentityError> {
        let consumed = self.consume(OneTimePurpose::Verify, token).await?;
        self.db
            .mark_email_verified(&consumed.user_id, now())
            .await?;
        self.audit(
            Event::success("auth.email.verified").subject(&consumed.user_id),
            meta,
        )
        .await;
        Ok(())
    }

    /// `POST /auth/resend-verification` (answers the same whether or not anything was sent).
    pub async fn resend_verification(&self, principal: &Principal) -> Result<(), IdentityError> {
        let user = self
            .db
            .user_by_id(&principal.user_id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        if !user.is_verified() {
            // Per account, so nobody can turn this into a mail bomb at an address they registered.
            self.limit(&format!("rl:resend:{}", user.id), "forgot.email")
                .await?;
            let token = self
                .issue_one_time(OneTimePurpose::Verify, &user.id, None, VERIFY_TTL_SECS)
                .await?;
            self.send_mail(self.verification_email(&user.email, &token));
        }
        Ok(())
    }

    /// `POST /auth/forgot-password`: the token and mail are made in the background so the answer takes
    /// the same time for every address.
    pub async fn forgot_password(
        &self,
        email: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let Ok(email) = security::email::normalize(email) else {
            return Ok(());
        };
        // Per address, whether or not it has an account: the limit reveals nothing.
        self.limit(&format!("rl:forgot:{}", account_of(&email)), "forgot.email")
            .await?;
        let this = self.clone();
        let meta = meta.clone();
        tokio::spawn(async move {
            let result: Result<(), IdentityError> = async {
                let Some(user) = this.db.user_by_email(&email).await? else {
                    return Ok(());
                };
                if user.is_disabled() {
                    return Ok(());
                }
                let token = this
                    .issue_one_time(OneTimePurpose::Reset, &user.id, None, RESET_TTL_SECS)
                    .await?;
                this.send_mail(this.reset_email(&user.email, &token));
                this.audit(
                    Event::success("auth.password.reset_requested").subject(&user.id),
                    &meta,
                )
                .await;
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "password reset request failed");
            }
        });
        Ok(())
    }

    /// `POST /auth/reset-password`: a new password, every session revoked, no automatic login.
    pub async fn reset_password(
        &self,
        token: &str,
        new_password: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        if !security::tokens::opaque::looks_like_token(token) {
            return Err(IdentityError::InvalidToken);
        }
        let owner = self
            .db
            .one_time_token_owner(OneTimePurpose::Reset, &hash_token(token), now())
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        let user = self
            .db
            .user_by_id(&owner)
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        self.enforce_policy("new_password", new_password, &user.email)
            .await?;
        let hash = self.passwords.hash(new_password.to_string()).await?;
        // Consuming is the atomic step: of two concurrent resets with one token, one wins.
        let consumed = self.consume(OneTimePurpose::Reset, token).await?;
        if consumed.user_id != user.id {
            return Err(IdentityError::InvalidToken);
        }
        self.db
            .set_password_and_stamp(&user.id, &hash, &security::random::token(16), now())
            .await?;
        // Links mailed before the change must not outlive it.
        self.db.retire_one_time_tokens(&user.id, now()).await?;
        let revoked = self
            .revoke_user_sessions(&user.id, None, "password_reset")
            .await?;
        // Account recovery: a key made by whoever had the account must not outlive it.
        self.revoke_all_api_keys(&user.id, None, "password_reset", meta)
            .await?;
        self.send_mail(self.password_changed_email(&user.email, true, meta));
        self.audit(
            Event::success("auth.password.reset")
                .subject(&user.id)
                .details(serde_json::json!({"sessions_revoked": revoked})),
            meta,
        )
        .await;
        Ok(())
    }

    /// The caller's account after checking their current password; a wrong one counts toward the
    /// brute-force lock and is audited under `event`.
    pub(super) async fn confirm_current_password(
        &self,
        principal: &Principal,
        password: &str,
        event: &'static str,
        meta: &RequestMeta,
    ) -> Result<UserRecord, IdentityError> {
        let user = self
            .db
            .user_by_id(&principal.user_id)
            .await?
            .ok_or(IdentityError::NotFound)?;
        let slot = self
            .reserve_attempt(&account_of(&user.email), None, meta)
            .await?;
        let checked = match self.check_password(&user.email, password).await {
            Ok(checked) => checked,
            Err(e) => {
                self.release_attempt(&slot, meta).await;
                return Err(e);
            }
        };
        if matches!(checked, Credentials::Valid(_)) {
            self.release_attempt(&slot, meta).await;
            return Ok(user);
        }
        self.note_failure(&slot, Some((&user.id, &user.email)), meta)
            .await;
        self.audit(
            Event::failure(event)
                .actor(&user.id)
                .subject(&user.id)
                .details(serde_json::json!({"reason": "wrong_current_password"})),
            meta,
        )
        .await;
        Err(IdentityError::WrongCurrentPassword)
    }

    /// `POST /auth/change-password`: the current password is required; other sessions end.
    pub async fn change_password(
        &self,
        principal: &Principal,
        current: &str,
        new_password: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let user = self
            .confirm_current_password(principal, current, "auth.password.changed", meta)
            .await?;
        self.enforce_policy("new_password", new_password, &user.email)
            .await?;
        let hash = self.passwords.hash(new_password.to_string()).await?;
        self.db
            .set_password_and_stamp(&user.id, &hash, &security::random::token(16), now())
            .await?;
        // Links mailed before the change must not outlive it.
        self.db.retire_one_time_tokens(&user.id, now()).await?;
        let revoked = self
            .revoke_user_sessions(&user.id, Some(&principal.session_id), "password_changed")
            .await?;
        self.send_mail(self.password_changed_email(&user.email, false, meta));
        self.audit(
            Event::success("auth.password.changed")
                .actor(&user.id)
                .subject(&user.id)
                .session(&principal.session_id)
                .details(serde_json::json!({"sessions_revoked": revoked})),
            meta,
        )
        .await;
        Ok(())
    }

    /// Whether the login behind `principal` is recent enough for a sensitive operation.
    pub fn require_recent_login(&self, principal: &Principal) -> Result<(), IdentityError> {
        let age = u64::try_from(now())
            .unwrap_or(0)
            .saturating_sub(principal.auth_time);
        if age <= STEP_UP_WINDOW_SECS {
            Ok(())
        } else {
            Err(IdentityError::StepUpRequired)
        }
    }

    /// `POST /auth/change-email`: step-up and password; confirmation to the new address, notice to the
    /// old. A taken address gets the same answer and no link.
    pub async fn change_email(
        &self,
        principal: &Principal,
        new_email: &str,
        password: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        self.require_recent_login(principal)?;
        // Per account: a signed-in user cannot make the service mail address after address.
        self.limit(
            &format!("rl:change_email:{}", principal.user_id),
            "change_email",
        )
        .await?;
        let new_email = normalize_email(new_email)?;
        let user = self
            .confirm_current_password(principal, password, "auth.email.changed", meta)
            .await?;
        if security::email::match_key(&new_email) == security::email::match_key(&user.email) {
            return Err(IdentityError::Invalid {
                field: "new_email",
                code: "unchanged",
                message: "This is already your email address.".into(),
            });
        }
        // Whether the new address is free is decided in the background: the answer must not tell.
        let this = self.clone();
        let meta = meta.clone();
        tokio::spawn(async move {
            let result: Result<(), IdentityError> = async {
                if this.db.user_by_email(&new_email).await?.is_none() {
                    let token = this
                        .issue_one_time(
                            OneTimePurpose::EmailChange,
                            &user.id,
                            Some(&new_email),
                            EMAIL_CHANGE_TTL_SECS,
                        )
                        .await?;
                    this.send_unsolicited_mail(this.email_change_confirmation(&new_email, &token));
                }
                this.send_mail(this.email_change_notice(&user.email, &meta));
                Ok(())
            }
            .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "email change request failed");
            }
        });
        Ok(())
    }

    /// `POST /auth/confirm-email`.
    pub async fn confirm_email(
        &self,
        token: &str,
        meta: &RequestMeta,
    ) -> Result<(), IdentityError> {
        let consumed = self.consume(OneTimePurpose::EmailChange, token).await?;
        let new_email = consumed.new_email.ok_or(IdentityError::InvalidToken)?;
        let user = self
            .db
            .user_by_id(&consumed.user_id)
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        if !self.db.change_email(&user.id, &new_email, now()).await? {
            return Err(IdentityError::InvalidToken);
        }
        self.db.retire_one_time_tokens(&user.id, now()).await?;
        self.send_mail(self.email_changed_notice(&user.email, meta));
        self.audit(Event::success("auth.email.changed").subject(&user.id), meta)
            .await;
        Ok(())
    }

    pub async fn profile(&self, user_id: &str) -> Result<UserRecord, IdentityError> {
        self.db
            .user_by_id(user_id)
            .await?
            .ok_or(IdentityError::NotFound)
    }

    /// `PATCH /auth/me`.
    pub async fn update_profile(
        &self,
        user_id: &str,
        full_name: Option<&str>,
    ) -> Result<UserRecord, IdentityError> {
        let full_name = validate_full_name(full_name)?;
        self.db
            .set_full_name(user_id, full_name.as_deref(), now())
            .await?;
        self.profile(user_id).await
    }
}
