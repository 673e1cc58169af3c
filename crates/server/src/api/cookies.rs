//! The cookies the API sets: the access-token fingerprint and the refresh token. Over https they are
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
    secure: bool,
}

/// Device cookies outlive sessions: they mark a browser that logged in to the account before.
const DEVICE_COOKIE_DAYS: i64 = 365;

impl CookieNames {
    pub fn for_settings(settings: &Settings) -> Self {
        if settings.public_is_https() {
            Self {
                fingerprint: "__Host-ts_fgp",
                refresh: "__Host-ts_refresh",
                device: "__Host-ts_device",
                secure: true,
            }
        } else {
            Self {
                fingerprint: "ts_fgp",
                refresh: "ts_refresh",
                device: "ts_device",
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

    pub fn clear(&self, jar: CookieJar) -> CookieJar {
        jar.add(self.build(self.fingerprint, String::new(), Duration::ZERO))
            .add(self.build(self.refresh, String::new(), Duration::ZERO))
    }
}
