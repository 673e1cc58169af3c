//! The rules production adds: real infrastructure, TLS everywhere off loopback, strong secrets.

use secrecy::ExposeSecret;
use store::url_redact::host_of;

use super::{ConfigProblem, Settings};

/// The last value of a query parameter (drivers apply the last one).
fn query_value(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url).ok().and_then(|u| {
        u.query_pairs()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .last()
            .map(|(_, v)| v.to_ascii_lowercase())
    })
}

/// Every reason the settings are not fit for production (secrets are checked while loading).
pub fn production_problems(settings: &Settings) -> Vec<ConfigProblem> {
    let mut problems = vec![];
    let mut problem = |variable: &'static str, message: &str| {
        problems.push(ConfigProblem {
            variable,
            message: message.to_string(),
        });
    };

    if settings.jwt_keys.is_none() && !has_secret_problem(settings, "TRADESIGNAL_JWT_KEYS") {
        problem(
            "TRADESIGNAL_JWT_KEYS",
            "is required in production (generate with `tradesignal secrets generate`)",
        );
    }
    if settings.data_keys.is_none() && !has_secret_problem(settings, "TRADESIGNAL_DATA_KEYS") {
        problem(
            "TRADESIGNAL_DATA_KEYS",
            "is required in production (generate with `tradesignal secrets generate`)",
        );
    }

    for found in super::sync::production_problems(&settings.sync) {
        problem(found.variable, &found.message);
    }

    if settings.loopback_webhooks_for_tests {
        problem(
            "TRADESIGNAL_ENV",
            "loopback webhooks are a test-suite setting and are never allowed in production",
        );
    }

    let database = settings.database_url.expose_secret();
    if !settings.database_configured || database.starts_with("sqlite:") {
        problem(
            "DATABASE_URL",
            "production needs PostgreSQL (postgres://…), not the embedded SQLite database",
        );
    } else {
        match store::transport::postgres(database) {
            None => problem("DATABASE_URL", "is not a PostgreSQL URL the driver accepts"),
            Some(t) if !t.local && !t.tls => problem(
                "DATABASE_URL",
                "connects to a non-loopback host without TLS: add sslmode=verify-full (or require)",
            ),
            Some(_) => {}
        }
    }

    match &settings.redis_url {
        None => problem(
            "REDIS_URL",
            "production needs Redis so that rate limits, lockouts and revocations hold across instances",
        ),
        Some(url) => match store::transport::redis(url.expose_secret()) {
            None => problem("REDIS_URL", "is not a Redis URL the driver accepts"),
            Some(t) if !t.local && !t.tls => problem(
                "REDIS_URL",
                "connects to a non-loopback host without verified TLS: use rediss:// (without #insecure); a cluster always needs rediss+cluster://, as its nodes may be anywhere",
            ),
            Some(_) => {}
        },
    }

    if !settings.public_url_configured {
        problem(
            "TRADESIGNAL_PUBLIC_URL",
            "is required in production (the https URL users reach)",
        );
    } else if settings.public_url.scheme() != "https" {
        problem("TRADESIGNAL_PUBLIC_URL", "must be https in production");
    }

    for origin in &settings.cors_origins {
        if origin == "*" {
            problem(
                "TRADESIGNAL_CORS_ORIGINS",
                "`*` allows every site; list the allowed origins",
            );
        } else if origin.starts_with("http://") {
            problem(
                "TRADESIGNAL_CORS_ORIGINS",
                "lists an http:// origin; only https origins are allowed in production",
            );
        }
    }

    match &settings.smtp_url {
        None => problem(
            "TRADESIGNAL_SMTP_URL",
            "is required in production (verification, reset and security emails)",
        ),
        Some(url) => {
            let url = url.expose_secret();
            let tls = url.starts_with("smtps://")
                || query_value(url, "tls").is_some_and(|v| v == "required");
            if !tls && host_of(url).is_some_and(|h| !store::transport::is_loopback(&h)) {
                problem(
                    "TRADESIGNAL_SMTP_URL",
                    "sends mail to a non-loopback host without TLS: use smtps:// or ?tls=required",
                );
            }
        }
    }

    if settings
        .metrics_listen
        .is_some_and(|a| !a.ip().is_loopback())
        && settings.metrics_token.is_none()
    {
        problem(
            "TRADESIGNAL_METRICS_LISTEN",
            "serves metrics on a non-loopback address without a token; set TRADESIGNAL_METRICS_TOKEN (the listener then requires it) or bind to loopback",
        );
    }

    if settings.sample_data == Some(true) {
        problem(
            "TRADESIGNAL_SAMPLE_DATA",
            "is on; sample data is never loaded in production",
        );
    }

    if !settings.rate_limiting {
        problem(
            "TRADESIGNAL_RATE_LIMITING",
            "is off; rate limiting cannot be turned off in production",
        );
    }

    for net in &settings.trusted_proxies {
        let too_wide = match net {
            ipnet::IpNet::V4(v4) => v4.prefix_len() < 8,
            ipnet::IpNet::V6(v6) => v6.prefix_len() < 32,
        };
        if too_wide {
            problem(
                "TRADESIGNAL_TRUSTED_PROXIES",
                "trusts a range wider than /8 (IPv4) or /32 (IPv6); any client in it could spoof its address and scheme — list your proxies' addresses",
            );
        }
    }

    problems
}

fn has_secret_problem(settings: &Settings, variable: &str) -> bool {
    settings
        .secret_problems
        .iter()
        .any(|p| p.variable == variable)
}
