//! Signing in: the password step (`/login`), the second-factor step (`/login/mfa`) and step-up
//! re-authentication (`/reauth`). A session — and with it any token or cookie — exists only once every
//! factor the account needs has passed.
//!
//! With 2FA on, the password step hands out an `mfa_token` instead: single use, 5 minutes, 5 attempts
//! (reserved in the database before a code is checked, so concurrent guesses cannot exceed them),
//! bound to the security stamp the password step saw and to the client (its user agent and device
//! cookie). Wrong codes count toward the account lockout like wrong passwords, and a correct password
//! does not reset the failure count until the second factor passes — otherwise a thief holding the
//! password could alternate logins and guesses for ever.

use anyhow::Context;
use security::password::Verification;
use security::tokens::{OpaqueToken, hash_token};
use sha2::{Digest, Sha256};
use store::identity::mfa::NewChallenge;
use store::identity::{NewSession, UserRecord};

use super::abuse::account_of;
use super::audit::Event;
use super::mfa::{FactorCheck, SecondFactor, WrongCode};
use super::sessions::IssuedTokens;
use super::web_sessions::{Opened, SessionKind, WebSignIn};
use super::{Identity, IdentityError, Principal, RequestMeta, now};

/// The longest password we spend a hash on at login (longer ones cannot be valid under any policy).
const MAX_LOGIN_PASSWORD_CHARS: usize = 1024;
/// How long the second step may take.
pub const MFA_CHALLENGE_TTL_SECS: i64 = 5 * 60;
/// Codes tried per challenge before it is dead.
pub const MFA_MAX_ATTEMPTS: i64 = 5;

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

/// What the password step leads to. No `Debug`: it carries tokens.
pub enum LoginOutcome {
    /// A session is open: tokens for an API client, a cookie for a browser.
    Opened(Opened),
    /// 2FA is on: the client must send a code with this token to `/login/mfa`.
    SecondFactorRequired { mfa_token: String },
}

/// Hex SHA-256 of what identifies the client between the two login steps.
fn client_binding(meta: &RequestMeta, device_cookie: Option<&str>) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tradesignal mfa binding v1");
    // Length-prefixed, so no two different pairs hash the same input.
    for part in [meta.user_agent.as_deref(), device_cookie] {
        let bytes = part.unwrap_or("").as_bytes();
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    }
    hex::encode(hasher.finalize())
}

impl Identity {
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

    /// While imported bcrypt hashes remain, measures verifying the costliest of them so every other
    /// verification is padded to it: an imported account must not stand out by its timing.
    pub async fn calibrate_legacy_hashes(&self) -> Result<(), IdentityError> {
        let Some(cost) = self.db.max_bcrypt_cost().await? else {
            return Ok(());
        };
        let took = self
            .passwords
            .calibrate_legacy(cost.min(security::password::hash::MAX_BCRYPT_COST))
            .await?;
        tracing::info!(
            cost,
            millis = took.as_millis() as u64,
            "imported bcrypt hashes present: other password checks are padded to match"
        );
        Ok(())
    }

    /// `POST /auth/login`: brute-force checks first (identical for unknown accounts), then the password,
    /// then either a session or — with 2FA on — a challenge for the second step.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_cookie: Option<&str>,
        kind: SessionKind,
        meta: &RequestMeta,
    ) -> Result<LoginOutcome, IdentityError> {
        let account = account_of(email);
        let device = device_cookie.and_then(|c| self.devices.verify(&account, c));
        let slot = self
            .reserve_attempt(&account, device.as_deref(), meta)
            .await?;
        // A check that could not run (hashing saturated, database error) gives its attempt back.
        let checked = match self.check_password(email, password).await {
            Ok(checked) => checked,
            Err(e) => {
                self.release_attempt(&slot, meta).await;
                return Err(e);
            }
        };
        let user = match checked {
            Credentials::Valid(user) => user,
            Credentials::Invalid { account: known } => {
                self.note_failure(
                    &slot,
                    known
                        .as_ref()
                        .map(|(id, email)| (id.as_str(), email.as_str())),
                    meta,
                )
                .await;
                // Counted by a keyed hash of the password: the same password failing across many
                // sign-ins is spraying. The hash never leaves the shared store's key.
                // 64 bits of the keyed hash: enough to count, too little to test guesses against.
                let sealed = self.monitor_hasher.hash(password.as_bytes());
                let sprayed = sealed
                    .rsplit(':')
                    .next()
                    .and_then(|hex| hex.get(..16))
                    .unwrap_or_default();
                self.observe(
                    "password_spraying",
                    sprayed,
                    None,
                    serde_json::json!({}),
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
        if user.has_mfa() {
            // The password was right, but the sign-in is not complete: earlier failures still count.
            self.release_attempt(&slot, meta).await;
            let token = OpaqueToken::generate();
            let at = now();
            self.db
                .insert_mfa_challenge(&NewChallenge {
                    token_hash: token.hash,
                    user_id: user.id.clone(),
                    binding: client_binding(meta, device_cookie),
                    user_stamp: user.security_stamp.clone(),
                    device_id: device,
                    now: at,
                    expires_at: at + MFA_CHALLENGE_TTL_SECS,
                })
                .await?;
            self.audit(
                Event::success("auth.login.mfa_required")
                    .actor(&user.id)
                    .subject(&user.id),
                meta,
            )
            .await;
            return Ok(LoginOutcome::SecondFactorRequired {
                mfa_token: token.token,
            });
        }
        let opened = self
            .open_session(
                kind,
                &user,
                &user.security_stamp,
                "pwd",
                &account,
                device,
                meta,
            )
            .await?;
        self.note_success(&slot, meta).await;
        Ok(LoginOutcome::Opened(opened))
    }

    /// `POST /auth/login/mfa`: the second step. The attempt is reserved on the challenge before the
    /// code is checked; a client other than the one that passed the password step kills the challenge.
    pub async fn login_mfa(
        &self,
        mfa_token: &str,
        factor: SecondFactor<'_>,
        device_cookie: Option<&str>,
        kind: SessionKind,
        meta: &RequestMeta,
    ) -> Result<Opened, IdentityError> {
        if !security::tokens::opaque::looks_like_token(mfa_token) {
            return Err(IdentityError::InvalidToken);
        }
        let token_hash = hash_token(mfa_token);
        // A lock or backoff refuses the attempt before it spends one of the challenge's tries.
        let user_id = self
            .db
            .mfa_challenge_user(&token_hash, now(), MFA_MAX_ATTEMPTS)
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        let user = self
            .db
            .user_by_id(&user_id)
            .await?
            .ok_or(IdentityError::InvalidToken)?;
        let account = account_of(&user.email);
        let device = device_cookie.and_then(|c| self.devices.verify(&account, c));
        let slot = self
            .reserve_attempt(&account, device.as_deref(), meta)
            .await?;
        let Some(challenge) = self
            .db
            .reserve_mfa_attempt(&token_hash, now(), MFA_MAX_ATTEMPTS)
            .await?
            .filter(|c| c.user_id == user.id)
        else {
            // No code is checked: the counted attempt goes back.
            self.release_attempt(&slot, meta).await;
            return Err(IdentityError::InvalidToken);
        };
        let binding = client_binding(meta, device_cookie);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            binding.as_bytes(),
            challenge.binding.as_bytes(),
        )) {
            self.release_attempt(&slot, meta).await;
            self.db.finish_mfa_challenge(&token_hash, now()).await?;
            self.audit(
                Event::failure("auth.mfa.failed")
                    .subject(&user.id)
                    .details(serde_json::json!({"reason": "client_mismatch"})),
                meta,
            )
            .await;
            return Err(IdentityError::InvalidToken);
        }
        let check = match self.check_second_factor(&user, factor).await {
            Ok(check) => check,
            Err(e) => {
                self.release_attempt(&slot, meta).await;
                return Err(e);
            }
        };
        match check {
            FactorCheck::Valid { backup_remaining } => {
                // Finishing is the single-use step: of two requests with one token, one session.
                if !self.db.finish_mfa_challenge(&token_hash, now()).await? {
                    return Err(IdentityError::InvalidToken);
                }
                if let Some(remaining) = backup_remaining {
                    self.note_backup_code_used(&user, remaining, None, meta)
                        .await;
                }
                let opened = self
                    .open_session(
                        kind,
                        &user,
                        &challenge.user_stamp,
                        "pwd otp",
                        &account,
                        challenge.device_id.clone(),
                        meta,
                    )
                    .await?;
                self.note_success(&slot, meta).await;
                Ok(opened)
            }
            FactorCheck::Invalid => {
                self.note_wrong_code(
                    &user,
                    WrongCode {
                        step: "login",
                        method: factor.method(),
                        session: None,
                        slot: &slot,
                    },
                    meta,
                )
                .await;
                Err(IdentityError::InvalidCode)
            }
        }
    }

    /// Creates the session of a completed login and its first tokens (or, for a browser, its cookie).
    /// The insert is conditioned on `stamp`, the security stamp the password step saw: a reset or
    /// logout-all in between wins. A browser's session always gets a new id and cookie here, so a
    /// value planted before sign-in is never promoted (no session fixation).
    #[allow(clippy::too_many_arguments)]
    async fn open_session(
        &self,
        kind: SessionKind,
        user: &UserRecord,
        stamp: &str,
        amr: &str,
        account: &str,
        device: Option<String>,
        meta: &RequestMeta,
    ) -> Result<Opened, IdentityError> {
        let issued = now();
        let web_cookie = matches!(kind, SessionKind::Web).then(OpaqueToken::generate);
        let session = NewSession {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user.id.clone(),
            kind: kind.as_str().into(),
            now: issued,
            expires_at: issued
                + i64::try_from(self.session_lifetime(kind).as_secs()).unwrap_or(i64::MAX),
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
            amr: amr.into(),
            user_stamp: stamp.to_string(),
            web_token_hash: web_cookie.as_ref().map(|c| c.hash.clone()),
        };
        if !self.db.insert_session(&session).await? {
            // The password was reset, or every session ended, while this login was being checked.
            return Err(IdentityError::InvalidCredentials);
        }
        let refresh = match web_cookie {
            None => {
                let refresh = OpaqueToken::generate();
                self.db
                    .insert_refresh_token(&session.id, &refresh.hash, 1, issued, session.expires_at)
                    .await?;
                Some(refresh.token)
            }
            Some(_) => None,
        };
        let record = self
            .db
            .session_by_id(&session.id)
            .await?
            .context("session just created")?;
        self.audit(
            Event::success("auth.login.succeeded")
                .actor(&user.id)
                .subject(&user.id)
                .session(&session.id)
                .details(serde_json::json!({"amr": amr, "known_device": device.is_some(), "kind": kind.as_str()})),
            meta,
        )
        .await;
        let mut device_cookie = None;
        if device.is_none() {
            device_cookie = Some(self.devices.issue(account));
            self.note_new_device(user, meta).await;
            if user
                .role
                .parse::<security::authz::Role>()
                .is_ok_and(|role| role.is_staff())
            {
                self.observe(
                    "staff_new_device",
                    &user.id,
                    Some(&user.id),
                    serde_json::json!({"role": user.role, "session_id": session.id}),
                    meta,
                )
                .await;
            }
        }
        Ok(match web_cookie {
            Some(cookie) => Opened::Web(WebSignIn {
                cookie: cookie.token,
                session_id: session.id,
                device_cookie,
            }),
            None => {
                let mut tokens = self.tokens(user, &record, refresh, None)?;
                tokens.device_cookie = device_cookie;
                Opened::Api(tokens)
            }
        })
    }

    /// Tells the owner about a sign-in from a browser without a device cookie, unless this is the
    /// account's first session (a new account has no device to compare with).
    async fn note_new_device(&self, user: &UserRecord, meta: &RequestMeta) {
        match self.db.session_count(&user.id).await {
            Ok(sessions) if sessions > 1 => {
                self.send_mail(self.new_device_email(&user.email, meta));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "new-device notice skipped"),
        }
    }

    /// `POST /auth/reauth`: a fresh `auth_time` for this session after checking the password again —
    /// and, when 2FA is on, a code (an authenticator code or a backup code).
    pub async fn reauth(
        &self,
        principal: &Principal,
        password: &str,
        code: Option<&str>,
        fingerprint: Option<String>,
        meta: &RequestMeta,
    ) -> Result<IssuedTokens, IdentityError> {
        let (user, session) = self.confirm_reauth(principal, password, code, meta).await?;
        self.tokens(&user, &session, None, fingerprint)
    }

    /// The checks of step-up re-authentication and the session's fresh `auth_time` (and `amr`), for
    /// `/auth/reauth` and the web UI's confirmation form.
    pub(super) async fn confirm_reauth(
        &self,
        principal: &Principal,
        password: &str,
        code: Option<&str>,
        meta: &RequestMeta,
    ) -> Result<(UserRecord, store::identity::SessionRecord), IdentityError> {
        let user = self
            .db
            .user_by_id(&principal.user_id)
            .await?
            .ok_or(IdentityError::InvalidCredentials)?;
        let factor = match (user.has_mfa(), code) {
            (true, None) => {
                return Err(IdentityError::Invalid {
                    field: "code",
                    code: "required",
                    message: "Two-factor authentication is on: send a code from your authenticator app or a backup code.".into(),
                });
            }
            (true, Some(code)) => Some(SecondFactor::either(code)),
            (false, _) => None,
        };
        let slot = self
            .reserve_attempt(&account_of(&user.email), None, meta)
            .await?;
        let verification = match self
            .passwords
            .verify(
                password.chars().take(MAX_LOGIN_PASSWORD_CHARS).collect(),
                Some(user.password_hash.clone()),
            )
            .await
        {
            Ok(verification) => verification,
            Err(e) => {
                self.release_attempt(&slot, meta).await;
                return Err(e.into());
            }
        };
        if verification == Verification::Invalid {
            self.note_failure(&slot, Some((&user.id, &user.email)), meta)
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
        let amr = match factor {
            None => "pwd",
            Some(factor) => {
                let check = match self.check_second_factor(&user, factor).await {
                    Ok(check) => check,
                    Err(e) => {
                        self.release_attempt(&slot, meta).await;
                        return Err(e);
                    }
                };
                match check {
                    FactorCheck::Valid { backup_remaining } => {
                        if let Some(remaining) = backup_remaining {
                            self.note_backup_code_used(
                                &user,
                                remaining,
                                Some(&principal.session_id),
                                meta,
                            )
                            .await;
                        }
                    }
                    FactorCheck::Invalid => {
                        self.note_wrong_code(
                            &user,
                            WrongCode {
                                step: "reauth",
                                method: factor.method(),
                                session: Some(&principal.session_id),
                                slot: &slot,
                            },
                            meta,
                        )
                        .await;
                        return Err(IdentityError::InvalidCode);
                    }
                }
                "pwd otp"
            }
        };
        self.release_attempt(&slot, meta).await;
        self.db
            .set_auth_time(&principal.session_id, now(), amr)
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
                .session(&session.id)
                .details(serde_json::json!({"amr": amr})),
            meta,
        )
        .await;
        Ok((user, session))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_depends_on_user_agent_and_device_cookie() {
        let meta = |ua: &str| RequestMeta {
            user_agent: Some(ua.to_string()),
            ..RequestMeta::default()
        };
        let base = client_binding(&meta("Firefox"), Some("v1.dev.mac"));
        assert_eq!(base, client_binding(&meta("Firefox"), Some("v1.dev.mac")));
        assert_ne!(base, client_binding(&meta("Chrome"), Some("v1.dev.mac")));
        assert_ne!(base, client_binding(&meta("Firefox"), None));
        // Length prefixes keep "a" + "\nb" apart from "a\n" + "b".
        assert_ne!(
            client_binding(&meta("a"), Some("\nb")),
            client_binding(&meta("a\n"), Some("b"))
        );
    }
}
