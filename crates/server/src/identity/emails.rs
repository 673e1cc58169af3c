//! The text of every email the identity service sends. Links are built from the configured public URL,
//! never from a request's Host header. Security notices say when, from which address and with which
//! browser or program the change was made, and link to the account's security page.

use store::identity::apikeys::ApiKeyRecord;
use store::mail::Email;

use super::{Identity, RequestMeta};

/// "When / IP address / Device" lines for a security notice.
fn request_context(meta: &RequestMeta) -> String {
    let when = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap_or_else(|_| time::OffsetDateTime::now_utc())
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    format!(
        "When: {when}\nIP address: {}\nDevice: {}",
        meta.ip.as_deref().unwrap_or("unknown"),
        meta.user_agent.as_deref().unwrap_or("unknown"),
    )
}

impl Identity {
    fn link(&self, path: &str, token: &str) -> String {
        self.settings.public_link(&format!("{path}?token={token}"))
    }

    /// A monitoring alert for a super_admin: the rule and severity only; the details stay in the admin
    /// view (they can name accounts and addresses).
    pub fn security_alert_email(&self, to: &str, rule: &str, severity: &str) -> Email {
        Email {
            to: to.to_string(),
            subject: format!("TradeSignal security alert: {rule} ({severity})"),
            body: format!(
                "The monitoring rule {rule} raised a {severity}-severity alert.\n\n\
                 Review, acknowledge and resolve it in the admin API:\n{}\n\n\
                 You receive this because you are a super_admin of this TradeSignal deployment.",
                self.settings.public_link("/api/v1/admin/security/alerts")
            ),
        }
    }

    pub fn verification_email(&self, to: &str, token: &str) -> Email {
        Email {
            to: to.to_string(),
            subject: "Confirm your TradeSignal email address".into(),
            body: format!(
                "Welcome to TradeSignal.\n\nConfirm your email address within 24 hours:\n{}\n\n\
                 If you did not create an account, ignore this message.",
                self.link("/verify-email", token)
            ),
        }
    }

    pub fn existing_account_email(&self, to: &str) -> Email {
        Email {
            to: to.to_string(),
            subject: "Someone tried to register with your email".into(),
            body: format!(
                "Someone (perhaps you) tried to create a TradeSignal account with this address, which \
                 already has one.\n\nIf it was you, sign in instead, or reset your password:\n{}\n\n\
                 If it was not you, no action is needed: nothing has changed.",
                self.settings.public_link("/forgot-password")
            ),
        }
    }

    pub fn reset_email(&self, to: &str, token: &str) -> Email {
        Email {
            to: to.to_string(),
            subject: "Reset your TradeSignal password".into(),
            body: format!(
                "A password reset was requested for your account. The link works once, within 30 minutes:\n{}\n\n\
                 If you did not ask for this, ignore this message; your password is unchanged.",
                self.link("/reset-password", token)
            ),
        }
    }

    /// After a change (`reset` false: other sessions end, keys stay) or a reset by emailed link
    /// (every session and API key ends).
    pub fn password_changed_email(&self, to: &str, reset: bool, meta: &RequestMeta) -> Email {
        let what = if reset {
            "The password of your TradeSignal account was just reset through an emailed link. Every \
             session was signed out and every API key revoked; create new keys where you need them."
        } else {
            "The password of your TradeSignal account was just changed and your other sessions were \
             signed out. Your API keys keep working: review them on your security page."
        };
        self.notice(to, "Your TradeSignal password was changed", what, meta)
    }

    pub fn email_change_confirmation(&self, to: &str, token: &str) -> Email {
        Email {
            to: to.to_string(),
            subject: "Confirm your new TradeSignal email address".into(),
            body: format!(
                "Confirm that this address should become your TradeSignal sign-in email (valid 24 hours):\n{}\n\n\
                 If you did not ask for this, ignore this message.",
                self.link("/confirm-email", token)
            ),
        }
    }

    pub fn email_change_notice(&self, to: &str, meta: &RequestMeta) -> Email {
        self.notice(
            to,
            "A change of your TradeSignal email was requested",
            "Someone signed in to your account asked to move it to a new email address. It changes only \
             once the new address is confirmed.",
            meta,
        )
    }

    pub fn email_changed_notice(&self, to: &str, meta: &RequestMeta) -> Email {
        self.notice(
            to,
            "Your TradeSignal email was changed",
            "Your TradeSignal account now signs in with a new email address, and this one no longer \
             works for it.",
            meta,
        )
    }

    fn security_page(&self) -> String {
        self.settings.public_link("/account/security")
    }

    /// A security notice: what happened, the request's context, what to do if it was not the owner.
    fn notice(&self, to: &str, subject: &str, what: &str, meta: &RequestMeta) -> Email {
        Email {
            to: to.to_string(),
            subject: subject.into(),
            body: format!(
                "{what}\n\n{}\n\nReview your account's security settings: {}\n\n\
                 If this was not you, change your password now and contact support.",
                request_context(meta),
                self.security_page()
            ),
        }
    }

    pub fn new_device_email(&self, to: &str, meta: &RequestMeta) -> Email {
        self.notice(
            to,
            "New sign-in to your TradeSignal account",
            "Your TradeSignal account was just signed in to from a device or browser it has not been \
             used from before.",
            meta,
        )
    }

    pub fn account_locked_email(
        &self,
        to: &str,
        minutes: u64,
        unlock_link: &str,
        meta: &RequestMeta,
    ) -> Email {
        Email {
            to: to.to_string(),
            subject: "Your TradeSignal account was locked".into(),
            body: format!(
                "Several failed sign-in attempts locked your account for {minutes} minutes. If this was you, \
                 wait or unlock it now (the link works once):\n{unlock_link}\n\nThe last attempt:\n{}\n\n\
                 If it was not you, someone is guessing your password: consider changing it at {}. \
                 Your password was not revealed.",
                request_context(meta),
                self.security_page()
            ),
        }
    }

    pub fn mfa_enabled_email(&self, to: &str, meta: &RequestMeta) -> Email {
        self.notice(
            to,
            "Two-factor authentication is on",
            "Two-factor authentication was turned on for your TradeSignal account and its other \
             sessions were signed out. Keep your backup codes somewhere safe: each works once if you \
             lose your authenticator.",
            meta,
        )
    }

    pub fn mfa_disabled_email(&self, to: &str, by_admin: bool, meta: &RequestMeta) -> Email {
        let what = if by_admin {
            "An administrator reset two-factor authentication on your TradeSignal account and signed \
             out every session. Sign in and set it up again."
        } else {
            "Two-factor authentication was turned off for your TradeSignal account. Signing in now needs \
             only your password."
        };
        self.notice(to, "Two-factor authentication is off", what, meta)
    }

    pub fn backup_codes_regenerated_email(&self, to: &str, meta: &RequestMeta) -> Email {
        self.notice(
            to,
            "New backup codes for your TradeSignal account",
            "A new set of two-factor backup codes was made for your account; the previous codes no \
             longer work.",
            meta,
        )
    }

    pub fn backup_codes_low_email(&self, to: &str, remaining: usize, meta: &RequestMeta) -> Email {
        let what = format!(
            "A two-factor backup code was just used. Only {remaining} unused backup code{} remain{}: \
             make a new set on your security page before you run out.",
            if remaining == 1 { "" } else { "s" },
            if remaining == 1 { "s" } else { "" },
        );
        self.notice(to, "You are running low on backup codes", &what, meta)
    }

    /// `action` is "created" or "rotated".
    pub fn api_key_email(
        &self,
        to: &str,
        action: &str,
        key: &ApiKeyRecord,
        meta: &RequestMeta,
    ) -> Email {
        let what = format!(
            "An API key was {action} on your TradeSignal account: \"{}\" ({}), with scopes {}.",
            key.name,
            security::apikey::display_prefix(&key.lookup_id),
            key.scope_names().collect::<Vec<_>>().join(", "),
        );
        self.notice(to, &format!("An API key was {action}"), &what, meta)
    }
}
