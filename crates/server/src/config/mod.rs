//! Typed settings from `tradesignal.toml` and environment variables (the environment wins). Loading
//! collects every problem instead of stopping at the first, so an operator fixes a configuration in one
//! pass; `validate` adds the production rules.

mod data_keys;
mod production;
mod raw;
mod report;
mod sync;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;
use security::keys::KeyRing;

pub use data_keys::data_ring;
pub use production::production_problems;
pub use raw::{RawSettings, VARIABLES, Variable};
pub use report::effective_report;
pub use sync::{SyncSettings, check_user_agent, is_loopback_http};

/// Where the service runs; production turns on every strict rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

impl Environment {
    pub fn name(self) -> &'static str {
        match self {
            Self::Development => "development",
            Self::Production => "production",
        }
    }
}

/// One thing wrong with the configuration, named by the variable an operator sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub variable: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// Every problem found; shown together.
#[derive(Debug, Clone)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.0.len())?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// The effective, typed configuration.
#[derive(Debug)]
pub struct Settings {
    pub environment: Environment,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub public_url: url::Url,
    /// Whether `public_url` was set explicitly (production requires it).
    pub public_url_configured: bool,
    pub database_url: SecretString,
    /// Whether `DATABASE_URL` was set (otherwise SQLite in the data directory).
    pub database_configured: bool,
    pub redis_url: Option<SecretString>,
    /// PEM certificates a `rediss://` server must chain to, instead of the public roots.
    pub redis_ca: Option<Vec<u8>>,
    pub redis_prefix: String,
    pub jwt_keys: Option<std::sync::Arc<KeyRing>>,
    pub data_keys: Option<std::sync::Arc<KeyRing>>,
    pub trusted_proxies: Vec<IpNet>,
    pub cors_origins: Vec<String>,
    pub smtp_url: Option<SecretString>,
    pub metrics_token: Option<SecretString>,
    pub metrics_listen: Option<SocketAddr>,
    pub request_timeout: Duration,
    pub body_limit: usize,
    pub log_filter: String,
    pub password_profile: security::password::PolicyProfile,
    /// API sessions end after this long without a refresh.
    pub session_idle: Duration,
    /// API sessions end this long after their login, whatever their activity.
    pub api_session_lifetime: Duration,
    /// Trade rows the market-data answer cache may hold; 0 turns it off.
    pub market_cache_rows: u64,
    /// How often an instance re-reads the market data's version (the bound on staleness).
    pub market_cache_refresh: Duration,
    /// Browser (`web`) sessions end after this long without a request.
    pub web_session_idle: Duration,
    /// Browser sessions end this long after their login, whatever their activity.
    pub web_session_lifetime: Duration,
    /// A rotated refresh token presented again within this window gets the new token, not a revocation.
    pub refresh_grace: Duration,
    pub rate_limits: security::ratelimit::RateLimits,
    /// Monitoring thresholds.
    pub alert_rules: security::monitoring::Rules,
    /// `TRADESIGNAL_SAMPLE_DATA` as set (`None`: the default, see `loads_sample_data`).
    pub sample_data: Option<bool>,
    /// Where every security alert is also posted (URL, signing secret).
    pub security_webhook: Option<(SecretString, SecretString)>,
    /// False only for measuring the limiter's cost (refused in production).
    pub rate_limiting: bool,
    /// The first account lock; later locks double up to a day.
    pub lockout: Duration,
    /// IPv6 clients are counted by networks of this many bits (per-address limits).
    pub ipv6_prefix: u8,
    /// Password hashes that may wait for a thread (`None`: 64 per thread).
    pub password_queue: Option<usize>,
    /// Audit events that may wait for the writer task.
    pub audit_queue: usize,
    pub mail_from: String,
    /// Lets alert webhooks go to `http://127.0.0.1` so the test suite can receive them. No variable
    /// or file sets it: only code that builds `Settings` itself (the tests) can, and production
    /// validation refuses it.
    pub loopback_webhooks_for_tests: bool,
    /// The syncs from SEC EDGAR and the congressional feeds.
    pub sync: SyncSettings,
    /// Problems in secrets found while loading; reported by `validate` in production only, because
    /// development runs with generated keys.
    secret_problems: Vec<ConfigProblem>,
}

/// Reads variables from a map (the process environment in `main`, a fixture in tests).
pub fn load(file: Option<&Path>, env: &HashMap<String, String>) -> Result<Settings, ConfigErrors> {
    let raw = RawSettings::from_sources(file, env).map_err(|p| ConfigErrors(vec![p]))?;
    raw.resolve()
}

/// The configuration file to read: `--config`, else `TRADESIGNAL_CONFIG`, else `./tradesignal.toml`
/// if it exists.
pub fn config_file(explicit: Option<&Path>, env: &HashMap<String, String>) -> Option<PathBuf> {
    if let Some(path) = explicit {
        return Some(path.to_path_buf());
    }
    if let Some(path) = env.get("TRADESIGNAL_CONFIG").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let default = PathBuf::from("tradesignal.toml");
    default.exists().then_some(default)
}

impl Settings {
    pub fn is_production(&self) -> bool {
        self.environment == Environment::Production
    }

    /// Whether `serve` loads the sample filings into an empty database: by default in development,
    /// never in production (where asking for it is a configuration error).
    pub fn loads_sample_data(&self) -> bool {
        !self.is_production() && self.sample_data.unwrap_or(true)
    }

    /// Every problem that forbids starting in this environment.
    pub fn validate(&self) -> Result<(), ConfigErrors> {
        let problems = match self.environment {
            Environment::Development => vec![],
            Environment::Production => {
                let mut p = self.secret_problems.clone();
                p.extend(production_problems(self));
                p
            }
        };
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigErrors(problems))
        }
    }

    /// The public URL with a path appended (links in emails, redirects); never derived from a request.
    pub fn public_link(&self, path_and_query: &str) -> String {
        let base = self.public_url.as_str().trim_end_matches('/');
        format!("{base}{path_and_query}")
    }

    /// Whether the public URL is https (cookies get `Secure` and the `__Host-` prefix, HSTS is sent).
    pub fn public_is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

#[cfg(test)]
mod tests;
