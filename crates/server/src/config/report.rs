//! The effective configuration as `config check` prints it: every variable with its value, secrets
//! replaced by a description that reveals nothing.

use secrecy::ExposeSecret;
use store::url_redact::redact_url;

use super::{Settings, VARIABLES};

fn ring_summary(ring: Option<&security::keys::KeyRing>) -> String {
    match ring {
        Some(ring) => format!(
            "{} key(s), active {:?}, ids {:?} [material redacted]",
            ring.keys().len(),
            ring.active().id,
            ring.ids()
        ),
        None => "(not set)".to_string(),
    }
}

/// `NAME = value` lines for every variable.
pub fn effective_report(settings: &Settings) -> Vec<(&'static str, String)> {
    VARIABLES
        .iter()
        .map(|variable| {
            let value = match variable.env {
                "TRADESIGNAL_ENV" => settings.environment.name().to_string(),
                "TRADESIGNAL_LISTEN" => settings.listen.to_string(),
                "TRADESIGNAL_DATA_DIR" => settings.data_dir.display().to_string(),
                "TRADESIGNAL_PUBLIC_URL" => settings.public_url.to_string(),
                "DATABASE_URL" => redact_url(settings.database_url.expose_secret()),
                "REDIS_URL" => settings
                    .redis_url
                    .as_ref()
                    .map(|u| redact_url(u.expose_secret()))
                    .unwrap_or_else(|| "(in-process store)".to_string()),
                "TRADESIGNAL_REDIS_PREFIX" => settings.redis_prefix.clone(),
                "TRADESIGNAL_REDIS_CA_FILE" => settings
                    .redis_ca
                    .as_ref()
                    .map(|pem| format!("(set: {} bytes of PEM)", pem.len()))
                    .unwrap_or_else(|| "(public roots)".to_string()),
                "TRADESIGNAL_JWT_KEYS" => ring_summary(settings.jwt_keys.as_deref()),
                "TRADESIGNAL_DATA_KEYS" => ring_summary(settings.data_keys.as_deref()),
                "TRADESIGNAL_TRUSTED_PROXIES" => join(settings.trusted_proxies.iter()),
                "TRADESIGNAL_CORS_ORIGINS" => join(settings.cors_origins.iter()),
                "TRADESIGNAL_SMTP_URL" => settings
                    .smtp_url
                    .as_ref()
                    .map(|u| redact_url(u.expose_secret()))
                    .unwrap_or_else(|| "(not set: mail goes to the outbox folder)".to_string()),
                "TRADESIGNAL_METRICS_TOKEN" => settings
                    .metrics_token
                    .as_ref()
                    .map(|_| "(set) [redacted]".to_string())
                    .unwrap_or_else(|| "(not set)".to_string()),
                "TRADESIGNAL_METRICS_LISTEN" => settings
                    .metrics_listen
                    .map(|a| a.to_string())
                    .unwrap_or_else(|| "(not set)".to_string()),
                "TRADESIGNAL_REQUEST_TIMEOUT_SECS" => {
                    settings.request_timeout.as_secs().to_string()
                }
                "TRADESIGNAL_BODY_LIMIT_BYTES" => settings.body_limit.to_string(),
                "TRADESIGNAL_LOG" => settings.log_filter.clone(),
                "TRADESIGNAL_MAIL_FROM" => settings.mail_from.clone(),
                "TRADESIGNAL_PASSWORD_PROFILE" => match settings.password_profile {
                    security::password::PolicyProfile::Default => "default".to_string(),
                    security::password::PolicyProfile::Nist => "nist".to_string(),
                },
                "TRADESIGNAL_SESSION_IDLE_SECS" => settings.session_idle.as_secs().to_string(),
                "TRADESIGNAL_REFRESH_GRACE_SECS" => settings.refresh_grace.as_secs().to_string(),
                "TRADESIGNAL_RATE_LIMITS" => settings.rate_limits.describe(),
                "TRADESIGNAL_ALERT_RULES" => settings.alert_rules.describe(),
                "TRADESIGNAL_SECURITY_WEBHOOK_URL" => settings
                    .security_webhook
                    .as_ref()
                    // Hook URLs often carry a token in their path: only the origin is shown.
                    .and_then(|(url, _)| url::Url::parse(url.expose_secret()).ok())
                    .map(|url| format!("{}/… [path redacted]", url.origin().ascii_serialization()))
                    .unwrap_or_else(|| "(not set)".to_string()),
                "TRADESIGNAL_SECURITY_WEBHOOK_SECRET" => settings
                    .security_webhook
                    .as_ref()
                    .map(|_| "(set) [redacted]".to_string())
                    .unwrap_or_else(|| "(not set)".to_string()),
                "TRADESIGNAL_SAMPLE_DATA" => if settings.loads_sample_data() {
                    "on"
                } else {
                    "off"
                }
                .to_string(),
                "TRADESIGNAL_RATE_LIMITING" => {
                    if settings.rate_limiting { "on" } else { "off" }.to_string()
                }
                "TRADESIGNAL_LOCKOUT_SECS" => settings.lockout.as_secs().to_string(),
                "TRADESIGNAL_IPV6_PREFIX" => settings.ipv6_prefix.to_string(),
                "TRADESIGNAL_AUDIT_QUEUE" => settings.audit_queue.to_string(),
                "TRADESIGNAL_API_SESSION_LIFETIME_SECS" => {
                    settings.api_session_lifetime.as_secs().to_string()
                }
                "TRADESIGNAL_MARKET_CACHE_ROWS" => settings.market_cache_rows.to_string(),
                "TRADESIGNAL_MARKET_CACHE_REFRESH_MS" => {
                    settings.market_cache_refresh.as_millis().to_string()
                }
                "TRADESIGNAL_WEB_SESSION_IDLE_SECS" => {
                    settings.web_session_idle.as_secs().to_string()
                }
                "TRADESIGNAL_WEB_SESSION_LIFETIME_SECS" => {
                    settings.web_session_lifetime.as_secs().to_string()
                }
                "TRADESIGNAL_PASSWORD_QUEUE" => settings
                    .password_queue
                    .map_or_else(|| "64 per hashing thread".to_string(), |n| n.to_string()),
                "TRADESIGNAL_SEC_USER_AGENT" => settings
                    .sync
                    .sec_user_agent
                    .clone()
                    .unwrap_or_else(|| "(not set: EDGAR syncs refuse to start)".to_string()),
                "TRADESIGNAL_EDGAR_URL" => settings.sync.edgar_url.to_string(),
                "TRADESIGNAL_EDGAR_REQUESTS_PER_SEC" => {
                    settings.sync.edgar_requests_per_sec.to_string()
                }
                "TRADESIGNAL_SYNC_EDGAR_EVERY_SECS" => every(settings.sync.edgar_every),
                "TRADESIGNAL_CONGRESS_HOUSE_URL" => feed(settings.sync.congress_house_url.as_ref()),
                "TRADESIGNAL_CONGRESS_SENATE_URL" => {
                    feed(settings.sync.congress_senate_url.as_ref())
                }
                "TRADESIGNAL_SYNC_CONGRESS_EVERY_SECS" => every(settings.sync.congress_every),
                other => format!("(unknown variable {other})"),
            };
            (variable.env, value)
        })
        .collect()
}

fn every(interval: Option<std::time::Duration>) -> String {
    interval.map_or_else(|| "0 (off)".to_string(), |d| d.as_secs().to_string())
}

fn feed(url: Option<&url::Url>) -> String {
    url.map_or_else(|| "(not set)".to_string(), url::Url::to_string)
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    let joined: Vec<String> = items.map(|i| i.to_string()).collect();
    if joined.is_empty() {
        "(none)".to_string()
    } else {
        joined.join(",")
    }
}
