//! The text of every email the identity service sends. Links are built from the configured public URL,
//! never from a request's Host header.

use store::mail::Email;

use super::Identity;

impl Identity {
    fn link(&self, path: &str, token: &str) -> String {
        self.settings.public_link(&format!("{path}?token={token}"))
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

    pub fn password_changed_email(&self, to: &str) -> Email {
        Email {
            to: to.to_string(),
            subject: "Your TradeSignal password was changed".into(),
            body: "The password of your TradeSignal account was just changed and your other sessions were \
                   signed out.\n\nIf this was not you, reset your password now and contact support."
                .into(),
        }
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

    pub fn email_change_notice(&self, to: &str) -> Email {
        Email {
            to: to.to_string(),
            subject: "A change of your TradeSignal email was requested".into(),
            body: "Someone signed in to your account asked to move it to a new email address. It changes only \
                   once the new address is confirmed.\n\nIf this was not you, change your password now."
                .into(),
        }
    }

    pub fn email_changed_notice(&self, to: &str) -> Email {
        Email {
            to: to.to_string(),
            subject: "Your TradeSignal email was changed".into(),
            body: "Your TradeSignal account now signs in with a new email address, and this one no longer \
                   works for it.\n\nIf this was not you, contact support immediately."
                .into(),
        }
    }
}
