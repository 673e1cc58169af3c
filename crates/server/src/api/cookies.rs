//! The cookies the service sets: the access-token fingerprint and the refresh token of the API, and
//! the web UI's session, pre-session (CSRF) and pending-second-factor cookies. Over https they are
//! `__Host-` cookies (Secure, Path=/, no Domain); in development over plain http on loopback the prefix
//! and `Secure` are dropped, as browsers would refuse them there.

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use time::Duration;

use crate::config::Settings;

pub struct CookieNames {
    pub fingerprint: &'static str,
    pub refresh: &'static str,
    /// The device cookie of brute-force protection (OWASP "device cookies").
    pub device: &'static str,
    /// The web UI's session (API.md: `__Host-ts_session`).
    pub session: &'static str,
    /// A visitor's pre-session value, which the login and register forms' CSRF tokens are bound to.
    pub visitor: &'static str,
    /// The second login step's challenge while a browser is on `/login/mfa`.
    pub mfa_pending: &'static str,
    secure: bool,
}

/// The pre-session cookie lives as long as a login form may stay open.
const VISITOR_COOKIE_HOURS: i64 = 12;

/// Device cookies outlive sessions: they mark a browser that logged in to the account before.
const DEVICE_COOKIE_DAYS: i64 = 365;

impl CookieNames {
    pub fn for_settings(settings: &Settings) -> Self {
        if settings.public_is_https() {
            Self {
                fingerprint: "__Host-ts_fgp",
                refresh: "__Host-ts_refresh",
                device: "__Host-ts_device",
                session: "__Host-ts_session",
                visitor: "__Host-ts_csrf",
                mfa_pending: "__Host-ts_mfa",
                secure: true,
            }
        } else {
            Self {
                fingerprint: "ts_fgp",
                refresh: "ts_refresh",
                device: "ts_device",
                session: "ts_session",
                visitor: "ts_csrf",
                mfa_pending: "ts_mfa",
                secure: false,
            }
        }
    }

    fn build(&self, name: &'static str, value: String, max_age: Duration) -> Cookie<'static> {
        Cookie::build((name, value))
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Strict)
            .path("/")
            .max_age(max_age)
            .build()
    }

    pub fn set_session(
        &self,
        jar: CookieJar,
        fingerprint: String,
        refresh: Option<String>,
        refresh_secs: u64,
    ) -> CookieJar {
        let max_age = Duration::seconds(i64::try_from(refresh_secs).unwrap_or(0));
        let jar = jar.add(self.build(self.fingerprint, fingerprint, max_age));
        match refresh {
            Some(token) => jar.add(self.build(self.refresh, token, max_age)),
            None => jar,
        }
    }

    /// The fingerprint cookie's value in `jar`, if sent and not empty.
    pub fn fingerprint_in(&self, jar: &CookieJar) -> Option<String> {
        jar.get(self.fingerprint)
            .map(|c| c.value().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn set_device(&self, jar: CookieJar, value: String) -> CookieJar {
        jar.add(self.build(self.device, value, Duration::days(DEVICE_COOKIE_DAYS)))
    }

    /// The web session cookie: SameSite=Lax so a link from elsewhere opens the page signed in, while
    /// cross-site form posts carry no session (and would fail the CSRF checks anyway). A session
    /// cookie (no Max-Age): the server ends the session; closing the browser ends the cookie.
    pub fn set_web_session(&self, jar: CookieJar, value: String) -> CookieJar {
        jar.add(
            Cookie::build((self.session, value))
                .http_only(true)
                .secure(self.secure)
                .same_site(SameSite::Lax)
                .path("/")
                .build(),
        )
    }

    pub fn clear_web_session(&self, jar: CookieJar) -> CookieJar {
        jar.add(self.build(self.session, String::new(), Duration::ZERO))
            .add(self.build(self.mfa_pending, String::new(), Duration::ZERO))
    }

    /// The value of cookie `name`, if sent and not empty.
    pub fn value_in(jar: &CookieJar, name: &str) -> Option<String> {
        jar.get(name)
            .map(|c| c.value().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn set_visitor(&self, jar: CookieJar, value: String) -> CookieJar {
        jar.add(self.build(self.visitor, value, Duration::hours(VISITOR_COOKIE_HOURS)))
    }

    pub fn set_mfa_pending(&self, jar: CookieJar, value: String, secs: i64) -> CookieJar {
        jar.add(self.build(self.mfa_pending, value, Duration::seconds(secs)))
    }

    pub fn clear_mfa_pending(&self, jar: CookieJar) -> CookieJar {
        jar.add(self.build(self.mfa_pending, String::new(), Duration::ZERO))
    }

    pub fn clear(&self, jar: CookieJar) -> CookieJar {
        jar.add(self.build(self.fingerprint, String::new(), Duration::ZERO))
            .add(self.build(self.refresh, String::new(), Duration::ZERO))
    }
}
