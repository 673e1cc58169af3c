//! The configuration as written: every variable, its TOML key, default and meaning, read from the file
//! and the environment, then resolved into typed `Settings`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use secrecy::SecretString;
use security::keys;

use super::{ConfigErrors, ConfigProblem, Environment, Settings};

/// A configuration variable: environment name, default (as text) and meaning. `.env.example` and
/// `config check` are checked against this list.
#[derive(Debug, Clone, Copy)]
pub struct Variable {
    pub env: &'static str,
    pub default: &'static str,
    pub secret: bool,
    pub meaning: &'static str,
}

impl Variable {
    /// The key in `tradesignal.toml`: the variable name, lower-case, without `TRADESIGNAL_`.
    pub fn toml_key(&self) -> String {
        self.env
            .trim_start_matches("TRADESIGNAL_")
            .to_ascii_lowercase()
    }
}

const fn var(
    env: &'static str,
    default: &'static str,
    secret: bool,
    meaning: &'static str,
) -> Variable {
    Variable {
        env,
        default,
        secret,
        meaning,
    }
}

pub const VARIABLES: &[Variable] = &[
    var(
        "TRADESIGNAL_ENV",
        "development",
        false,
        "development | production; production refuses unsafe settings",
    ),
    var(
        "TRADESIGNAL_LISTEN",
        "127.0.0.1:8080",
        false,
        "address and port the HTTP server listens on",
    ),
    var(
        "TRADESIGNAL_DATA_DIR",
        "./data",
        false,
        "directory for the SQLite database and the development mail outbox",
    ),
    var(
        "TRADESIGNAL_PUBLIC_URL",
        "http://<listen address>",
        false,
        "the URL users reach the service at; links in emails and redirects are built from it (https in production)",
    ),
    var(
        "DATABASE_URL",
        "sqlite://<data dir>/tradesignal.db",
        true,
        "postgres://… (production, with sslmode=require off loopback; a private CA with sslrootcert=/path/ca.pem and sslmode=verify-full) or sqlite://…",
    ),
    var(
        "REDIS_URL",
        "(in-process store)",
        true,
        "redis:// or rediss:// (TLS, required off loopback in production), or redis+cluster:// / rediss+cluster:// with comma-separated seed nodes for a Redis Cluster; shared state for rate limits, lockouts and revocation",
    ),
    var(
        "TRADESIGNAL_REDIS_CA_FILE",
        "(public roots)",
        false,
        "PEM file of the CA a rediss:// server's certificate must chain to (a private CA) instead of the public roots",
    ),
    var(
        "TRADESIGNAL_REDIS_PREFIX",
        "ts:",
        false,
        "prefix of every Redis key, to share one Redis between deployments",
    ),
    var(
        "TRADESIGNAL_JWT_KEYS",
        "(generated per run in development)",
        true,
        "JWT signing key ring `kid:base64,…` (first signs, all verify), each ≥256 random bits",
    ),
    var(
        "TRADESIGNAL_DATA_KEYS",
        "(generated per run in development)",
        true,
        "field-encryption key ring `v2:base64,v1:base64` (first encrypts), each exactly 256 random bits",
    ),
    var(
        "TRADESIGNAL_TRUSTED_PROXIES",
        "(none)",
        false,
        "comma-separated CIDRs whose X-Forwarded-For/-Proto are trusted",
    ),
    var(
        "TRADESIGNAL_CORS_ORIGINS",
        "(none: same-origin only)",
        false,
        "comma-separated https origins allowed to call the API from a browser",
    ),
    var(
        "TRADESIGNAL_SMTP_URL",
        "(development: files in <data dir>/outbox)",
        true,
        "smtps://user:pass@host:465 or smtp://host:587?tls=required (required in production)",
    ),
    var(
        "TRADESIGNAL_MAIL_FROM",
        "TradeSignal <no-reply@<public host>>",
        false,
        "sender of every email",
    ),
    var(
        "TRADESIGNAL_PASSWORD_PROFILE",
        "default",
        false,
        "default (12-128 characters, upper/lower/digit/symbol, zxcvbn >= 3) | nist (NIST 800-63B: >= 15 characters, no composition rules)",
    ),
    var(
        "TRADESIGNAL_SESSION_IDLE_SECS",
        "86400",
        false,
        "an API session not refreshed for this long ends (300 to 30 days)",
    ),
    var(
        "TRADESIGNAL_API_SESSION_LIFETIME_SECS",
        "2592000",
        false,
        "an API session ends this long after its login, whatever its activity (1 hour to 90 days)",
    ),
    var(
        "TRADESIGNAL_MARKET_CACHE_ROWS",
        "100000",
        false,
        "trade rows kept in the market-data answer cache (0 turns the cache off; up to 10,000,000)",
    ),
    var(
        "TRADESIGNAL_MARKET_CACHE_REFRESH_MS",
        "1000",
        false,
        "how often an instance checks the market data's version; the longest a cached answer outlives an ingest (10 to 60,000)",
    ),
    var(
        "TRADESIGNAL_WEB_SESSION_IDLE_SECS",
        "1800",
        false,
        "a browser session without a request for this long ends (60 seconds to 1 day)",
    ),
    var(
        "TRADESIGNAL_WEB_SESSION_LIFETIME_SECS",
        "43200",
        false,
        "a browser session ends this long after its login, whatever its activity (5 minutes to 7 days)",
    ),
    var(
        "TRADESIGNAL_REFRESH_GRACE_SECS",
        "10",
        false,
        "seconds during which a just-rotated refresh token still yields the new token (two tabs at once); 0 = off",
    ),
    var(
        "TRADESIGNAL_RATE_LIMITS",
        "(the hardening plan's defaults)",
        false,
        "overrides as name=limit/seconds, e.g. login=10/60,tier.free=100/3600 (names: tier.free tier.pro tier.enterprise anonymous login register forgot.email forgot.ip reset verify unlock refresh password_strength mfa csp_report)",
    ),
    var(
        "TRADESIGNAL_ALERT_RULES",
        "(refresh_token_reuse=1/3600,lockout_wave=10/600,password_spraying=20/600,privilege_change=1/3600,ratelimit_spike=100/300,credential_many_ips=10/600,staff_new_device=1/3600)",
        false,
        "monitoring thresholds as rule=count/seconds: that many occurrences within the window raise one alert",
    ),
    var(
        "TRADESIGNAL_SECURITY_WEBHOOK_URL",
        "(none)",
        false,
        "https URL that receives every security alert as signed JSON (public addresses only, like alert webhooks)",
    ),
    var(
        "TRADESIGNAL_SECURITY_WEBHOOK_SECRET",
        "(none)",
        true,
        "signs security-alert webhooks (X-TradeSignal-Signature, as alert webhooks; ≥32 characters); required with the URL",
    ),
    var(
        "TRADESIGNAL_SAMPLE_DATA",
        "on in development, never in production",
        false,
        "on | off: load the sample filings (sample/form4, real EDGAR filings) at start when the database holds none",
    ),
    var(
        "TRADESIGNAL_RATE_LIMITING",
        "on",
        false,
        "on | off; off exists only to measure the limiter's cost in development and is refused in production",
    ),
    var(
        "TRADESIGNAL_LOCKOUT_SECS",
        "900",
        false,
        "first account lock after 5 failures in 15 minutes; each further lock within a day doubles (cap 24 h)",
    ),
    var(
        "TRADESIGNAL_PASSWORD_QUEUE",
        "(64 per hashing thread)",
        false,
        "password hashes that may wait for a hashing thread; beyond it sign-ins get 503 with Retry-After (1-100000)",
    ),
    var(
        "TRADESIGNAL_AUDIT_QUEUE",
        "10000",
        false,
        "audit events that may wait for the audit writer; beyond it an event is written within its request (1-1000000)",
    ),
    var(
        "TRADESIGNAL_IPV6_PREFIX",
        "64",
        false,
        "IPv6 clients are counted by networks of this many bits by every per-address limit (32-128)",
    ),
    var(
        "TRADESIGNAL_METRICS_TOKEN",
        "(none: /metrics closed)",
        true,
        "bearer token that opens /metrics on the main listener (≥32 characters)",
    ),
    var(
        "TRADESIGNAL_METRICS_LISTEN",
        "(none)",
        false,
        "separate address serving /metrics without a token (keep it private)",
    ),
    var(
        "TRADESIGNAL_REQUEST_TIMEOUT_SECS",
        "30",
        false,
        "seconds before a request is abandoned with 503",
    ),
    var(
        "TRADESIGNAL_BODY_LIMIT_BYTES",
        "1048576",
        false,
        "largest request body accepted (413 above)",
    ),
    var(
        "TRADESIGNAL_LOG",
        "info",
        false,
        "log filter (tracing EnvFilter syntax), e.g. info,tradesignal=debug",
    ),
    var(
        "TRADESIGNAL_SEC_USER_AGENT",
        "(not set: EDGAR syncs refuse to start)",
        false,
        "who you are to SEC EDGAR: your organisation and a contact email, e.g. \"Example Corp ops@example.com\" (SEC's fair-access policy)",
    ),
    var(
        "TRADESIGNAL_EDGAR_URL",
        "https://www.sec.gov",
        false,
        "the EDGAR archive; production accepts https://www.sec.gov only, development also a local mirror on http://127.0.0.1",
    ),
    var(
        "TRADESIGNAL_EDGAR_REQUESTS_PER_SEC",
        "10",
        false,
        "requests per second to EDGAR across every instance sharing the store (1 to 10, SEC's ceiling)",
    ),
    var(
        "TRADESIGNAL_SYNC_EDGAR_EVERY_SECS",
        "0",
        false,
        "the server syncs EDGAR's daily indexes this often (0: off; 60 to 86400); one instance at a time",
    ),
    var(
        "TRADESIGNAL_CONGRESS_HOUSE_URL",
        "(not set)",
        false,
        "House Stock Watcher JSON feed fetched by `sync congress` (https)",
    ),
    var(
        "TRADESIGNAL_CONGRESS_SENATE_URL",
        "(not set)",
        false,
        "Senate Stock Watcher JSON feed fetched by `sync congress` (https)",
    ),
    var(
        "TRADESIGNAL_SYNC_CONGRESS_EVERY_SECS",
        "0",
        false,
        "the server syncs the congressional feeds this often (0: off; 60 to 86400); one instance at a time",
    ),
];

/// The configuration as text, file values overridden by the environment.
#[derive(Debug, Default)]
pub struct RawSettings {
    values: HashMap<&'static str, String>,
}

fn toml_value_to_string(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(toml_value_to_string)
            .collect::<Option<Vec<_>>>()
            .map(|v| v.join(",")),
        _ => None,
    }
}

impl RawSettings {
    /// Reads the file (if any) then the environment. A missing explicit file or an unknown key is an
    /// error: a typo must not silently fall back to a default.
    pub fn from_sources(
        file: Option<&Path>,
        env: &HashMap<String, String>,
    ) -> Result<Self, ConfigProblem> {
        let mut values = HashMap::new();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| ConfigProblem {
                variable: "TRADESIGNAL_CONFIG",
                message: format!("cannot read {}: {e}", path.display()),
            })?;
            let table: toml::Table = toml::from_str(&text).map_err(|e| ConfigProblem {
                variable: "TRADESIGNAL_CONFIG",
                message: format!("{} is not valid TOML: {}", path.display(), e.message()),
            })?;
            for (key, value) in &table {
                let Some(variable) = VARIABLES.iter().find(|v| v.toml_key() == *key) else {
                    return Err(ConfigProblem {
                        variable: "TRADESIGNAL_CONFIG",
                        message: format!("{}: unknown key {key:?}", path.display()),
                    });
                };
                let Some(text) = toml_value_to_string(value) else {
                    return Err(ConfigProblem {
                        variable: variable.env,
                        message: format!(
                            "{}: {key} must be a string, number or list",
                            path.display()
                        ),
                    });
                };
                values.insert(variable.env, text);
            }
        }
        for variable in VARIABLES {
            if let Some(value) = env.get(variable.env) {
                values.insert(variable.env, value.clone());
            }
        }
        Ok(Self { values })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// Types every value, collecting all problems.
    pub fn resolve(&self) -> Result<Settings, ConfigErrors> {
        let mut problems = vec![];
        let mut problem = |variable: &'static str, message: String| {
            problems.push(ConfigProblem { variable, message });
        };

        let environment = match self.get("TRADESIGNAL_ENV").unwrap_or("development") {
            "development" | "dev" => Environment::Development,
            "production" | "prod" => Environment::Production,
            other => {
                problem(
                    "TRADESIGNAL_ENV",
                    format!("{other:?} is not development or production"),
                );
                Environment::Production
            }
        };

        let listen_text = self.get("TRADESIGNAL_LISTEN").unwrap_or("127.0.0.1:8080");
        let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
            problem(
                "TRADESIGNAL_LISTEN",
                format!("{listen_text:?} is not an address:port"),
            );
            SocketAddr::from(([127, 0, 0, 1], 8080))
        });

        let data_dir = PathBuf::from(self.get("TRADESIGNAL_DATA_DIR").unwrap_or("./data"));

        let public_url_configured = self.get("TRADESIGNAL_PUBLIC_URL").is_some();
        let public_text = self
            .get("TRADESIGNAL_PUBLIC_URL")
            .map(str::to_string)
            .unwrap_or_else(|| format!("http://{listen}"));
        let public_url = match url::Url::parse(&public_text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => {
                if url.query().is_some()
                    || url.fragment().is_some()
                    || !url.username().is_empty()
                    || url.password().is_some()
                {
                    problem(
                        "TRADESIGNAL_PUBLIC_URL",
                        "must not carry credentials, a query or a fragment".into(),
                    );
                }
                url
            }
            _ => {
                problem(
                    "TRADESIGNAL_PUBLIC_URL",
                    format!("{public_text:?} is not an http(s) URL"),
                );
                fallback_url()
            }
        };

        let database_configured = self.get("DATABASE_URL").is_some();
        let database_url = match self.get("DATABASE_URL") {
            Some(url) => {
                if store::Backend::from_url(url).is_none() {
                    problem(
                        "DATABASE_URL",
                        "must start with postgres://, postgresql:// or sqlite:".into(),
                    );
                }
                url.to_string()
            }
            None => store::db::sqlite_url_for(&data_dir.join("tradesignal.db")),
        };

        let redis_ca =
            self.get("TRADESIGNAL_REDIS_CA_FILE")
                .and_then(|path| match std::fs::read(path) {
                    Ok(pem) if pem_has_certificate(&pem) => Some(pem),
                    Ok(_) => {
                        problem(
                            "TRADESIGNAL_REDIS_CA_FILE",
                            format!("{path} holds no PEM certificate"),
                        );
                        None
                    }
                    Err(e) => {
                        problem(
                            "TRADESIGNAL_REDIS_CA_FILE",
                            format!("{path} cannot be read: {e}"),
                        );
                        None
                    }
                });
        let redis_url = self.get("REDIS_URL").map(|url| {
            if let Err(message) = store::parse_redis_url(url) {
                problem(
                    "REDIS_URL",
                    format!("{message} (redis://, rediss://, or redis+cluster://host:port,host:port for a Redis Cluster)"),
                );
            }
            SecretString::from(url.to_string())
        });
        let redis_prefix = self
            .get("TRADESIGNAL_REDIS_PREFIX")
            .unwrap_or("ts:")
            .to_string();
        if redis_prefix.contains(['{', '}']) {
            problem(
                "TRADESIGNAL_REDIS_PREFIX",
                "must not contain { or }: Redis Cluster would read them as the hash tag of every key".into(),
            );
        }

        let mut secret_problems = vec![];
        let mut ring = |variable: &'static str, rules| {
            let text = self.get(variable)?;
            match keys::parse_ring(text, rules) {
                Ok(ring) => Some(std::sync::Arc::new(ring)),
                Err(messages) => {
                    secret_problems.extend(
                        messages
                            .into_iter()
                            .map(|message| ConfigProblem { variable, message }),
                    );
                    None
                }
            }
        };
        let jwt_keys = ring("TRADESIGNAL_JWT_KEYS", keys::JWT_RING);
        let data_keys = ring("TRADESIGNAL_DATA_KEYS", keys::DATA_RING);

        let trusted_proxies = list(self.get("TRADESIGNAL_TRUSTED_PROXIES"))
            .filter_map(|entry| match parse_cidr(entry) {
                Some(net) => Some(net),
                None => {
                    problem(
                        "TRADESIGNAL_TRUSTED_PROXIES",
                        format!("{entry:?} is not an IP address or CIDR"),
                    );
                    None
                }
            })
            .collect();

        let cors_origins = list(self.get("TRADESIGNAL_CORS_ORIGINS"))
            .filter_map(|entry| match normalise_origin(entry) {
                Some(origin) => Some(origin),
                None => {
                    problem(
                        "TRADESIGNAL_CORS_ORIGINS",
                        format!("{entry:?} is not an origin (scheme://host[:port])"),
                    );
                    None
                }
            })
            .collect();

        let smtp_url = self.get("TRADESIGNAL_SMTP_URL").map(|url| {
            if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                problem(
                    "TRADESIGNAL_SMTP_URL",
                    "must start with smtp:// or smtps://".into(),
                );
            }
            SecretString::from(url.to_string())
        });

        let metrics_token = self.get("TRADESIGNAL_METRICS_TOKEN").map(|token| {
            if let Err(message) = keys::check_token_secret(token, 32) {
                secret_problems.push(ConfigProblem {
                    variable: "TRADESIGNAL_METRICS_TOKEN",
                    message,
                });
            }
            SecretString::from(token.to_string())
        });

        let security_webhook_secret =
            self.get("TRADESIGNAL_SECURITY_WEBHOOK_SECRET")
                .map(|secret| {
                    if let Err(message) = keys::check_token_secret(secret, 32) {
                        secret_problems.push(ConfigProblem {
                            variable: "TRADESIGNAL_SECURITY_WEBHOOK_SECRET",
                            message,
                        });
                    }
                    SecretString::from(secret.to_string())
                });
        let security_webhook = match (
            self.get("TRADESIGNAL_SECURITY_WEBHOOK_URL"),
            security_webhook_secret,
        ) {
            (None, None) => None,
            (Some(url), Some(secret)) => match market::webhook::check_webhook_url(url) {
                Ok(_) => Some((SecretString::from(url.to_string()), secret)),
                Err(e) => {
                    problem("TRADESIGNAL_SECURITY_WEBHOOK_URL", e.message().to_string());
                    None
                }
            },
            (Some(_), None) => {
                problem(
                    "TRADESIGNAL_SECURITY_WEBHOOK_SECRET",
                    "is required with TRADESIGNAL_SECURITY_WEBHOOK_URL (receivers check the signature)"
                        .into(),
                );
                None
            }
            (None, Some(_)) => {
                problem(
                    "TRADESIGNAL_SECURITY_WEBHOOK_URL",
                    "is required with TRADESIGNAL_SECURITY_WEBHOOK_SECRET".into(),
                );
                None
            }
        };

        let metrics_listen = self.get("TRADESIGNAL_METRICS_LISTEN").and_then(|text| {
            text.parse::<SocketAddr>()
                .map_err(|_| {
                    problem(
                        "TRADESIGNAL_METRICS_LISTEN",
                        format!("{text:?} is not an address:port"),
                    )
                })
                .ok()
        });

        let mut number = |variable: &'static str, default: u64, min: u64, max: u64| {
            let Some(text) = self.get(variable) else {
                return default;
            };
            match text.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    problem(
                        variable,
                        format!("{text:?} is not a whole number from {min} to {max}"),
                    );
                    default
                }
            }
        };
        let request_timeout =
            Duration::from_secs(number("TRADESIGNAL_REQUEST_TIMEOUT_SECS", 30, 1, 600));
        let refresh_grace =
            Duration::from_secs(number("TRADESIGNAL_REFRESH_GRACE_SECS", 10, 0, 60));
        let lockout = Duration::from_secs(number("TRADESIGNAL_LOCKOUT_SECS", 900, 1, 86_400));
        let ipv6_prefix =
            u8::try_from(number("TRADESIGNAL_IPV6_PREFIX", 64, 32, 128)).unwrap_or(64);
        let password_queue = self
            .get("TRADESIGNAL_PASSWORD_QUEUE")
            .is_some()
            .then(|| number("TRADESIGNAL_PASSWORD_QUEUE", 0, 1, 100_000))
            .and_then(|n| usize::try_from(n).ok());

        let audit_queue = usize::try_from(number("TRADESIGNAL_AUDIT_QUEUE", 10_000, 1, 1_000_000))
            .unwrap_or(10_000);
        let session_idle = Duration::from_secs(number(
            "TRADESIGNAL_SESSION_IDLE_SECS",
            86_400,
            300,
            30 * 86_400,
        ));
        let api_session_lifetime = Duration::from_secs(number(
            "TRADESIGNAL_API_SESSION_LIFETIME_SECS",
            30 * 86_400,
            3600,
            90 * 86_400,
        ));
        let market_cache_rows = number("TRADESIGNAL_MARKET_CACHE_ROWS", 100_000, 0, 10_000_000);
        let market_cache_refresh = Duration::from_millis(number(
            "TRADESIGNAL_MARKET_CACHE_REFRESH_MS",
            1000,
            10,
            60_000,
        ));
        let web_session_idle = Duration::from_secs(number(
            "TRADESIGNAL_WEB_SESSION_IDLE_SECS",
            1800,
            60,
            86_400,
        ));
        let web_session_lifetime = Duration::from_secs(number(
            "TRADESIGNAL_WEB_SESSION_LIFETIME_SECS",
            43_200,
            300,
            7 * 86_400,
        ));
        let body_limit = usize::try_from(number(
            "TRADESIGNAL_BODY_LIMIT_BYTES",
            1 << 20,
            1024,
            64 << 20,
        ))
        .unwrap_or(1 << 20);

        let rate_limits = security::ratelimit::RateLimits::parse(
            self.get("TRADESIGNAL_RATE_LIMITS").unwrap_or(""),
        )
        .unwrap_or_else(|errors| {
            for message in errors {
                problem("TRADESIGNAL_RATE_LIMITS", message);
            }
            security::ratelimit::RateLimits::default()
        });
        let alert_rules =
            security::monitoring::Rules::parse(self.get("TRADESIGNAL_ALERT_RULES").unwrap_or(""))
                .unwrap_or_else(|errors| {
                    for message in errors {
                        problem("TRADESIGNAL_ALERT_RULES", message);
                    }
                    security::monitoring::Rules::default()
                });
        let sample_data = match self.get("TRADESIGNAL_SAMPLE_DATA") {
            None => None,
            Some("on") => Some(true),
            Some("off") => Some(false),
            Some(other) => {
                problem(
                    "TRADESIGNAL_SAMPLE_DATA",
                    format!("{other:?} is not on or off"),
                );
                None
            }
        };
        let rate_limiting = match self.get("TRADESIGNAL_RATE_LIMITING").unwrap_or("on") {
            "on" => true,
            "off" => false,
            other => {
                problem(
                    "TRADESIGNAL_RATE_LIMITING",
                    format!("{other:?} is not on or off"),
                );
                true
            }
        };
        let password_profile = match self
            .get("TRADESIGNAL_PASSWORD_PROFILE")
            .unwrap_or("default")
        {
            "default" => security::password::PolicyProfile::Default,
            "nist" => security::password::PolicyProfile::Nist,
            other => {
                problem(
                    "TRADESIGNAL_PASSWORD_PROFILE",
                    format!("{other:?} is not default or nist"),
                );
                security::password::PolicyProfile::Default
            }
        };
        let mail_from = self
            .get("TRADESIGNAL_MAIL_FROM")
            .map(str::to_string)
            .unwrap_or_else(|| {
                format!(
                    "TradeSignal <no-reply@{}>",
                    public_url.host_str().unwrap_or("localhost")
                )
            });

        let sync = super::sync::resolve(|name| self.get(name), &mut problem);

        let log_filter = self.get("TRADESIGNAL_LOG").unwrap_or("info").to_string();
        if tracing_subscriber::EnvFilter::try_new(&log_filter).is_err() {
            problem(
                "TRADESIGNAL_LOG",
                format!("{log_filter:?} is not a valid log filter"),
            );
        }

        if !problems.is_empty() {
            return Err(ConfigErrors(problems));
        }
        Ok(Settings {
            environment,
            listen,
            data_dir,
            public_url,
            public_url_configured,
            database_url: SecretString::from(database_url),
            database_configured,
            redis_url,
            redis_ca,
            redis_prefix,
            jwt_keys,
            data_keys,
            trusted_proxies,
            cors_origins,
            smtp_url,
            metrics_token,
            metrics_listen,
            request_timeout,
            body_limit,
            log_filter,
            password_profile,
            session_idle,
            refresh_grace,
            rate_limits,
            alert_rules,
            security_webhook,
            sample_data,
            rate_limiting,
            lockout,
            ipv6_prefix,
            api_session_lifetime,
            market_cache_rows,
            market_cache_refresh,
            web_session_idle,
            web_session_lifetime,
            password_queue,
            audit_queue,
            mail_from,
            loopback_webhooks_for_tests: false,
            sync,
            secret_problems,
        })
    }
}

/// Whether PEM text holds at least one certificate block (the TLS library checks the rest).
fn pem_has_certificate(pem: &[u8]) -> bool {
    std::str::from_utf8(pem).is_ok_and(|text| text.contains("-----BEGIN CERTIFICATE-----"))
}

fn fallback_url() -> url::Url {
    url::Url::parse("http://127.0.0.1:8080").unwrap_or_else(|_| unreachable!("constant URL parses"))
}

fn list(text: Option<&str>) -> impl Iterator<Item = &str> {
    text.unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn parse_cidr(text: &str) -> Option<IpNet> {
    text.parse::<IpNet>()
        .ok()
        .or_else(|| text.parse::<std::net::IpAddr>().ok().map(IpNet::from))
}

/// `https://app.example.com/` → `https://app.example.com`; `*` is kept so production can name it.
fn normalise_origin(text: &str) -> Option<String> {
    if text == "*" {
        return Some(text.to_string());
    }
    let url = url::Url::parse(text).ok()?;
    let path_ok = url.path() == "/" || url.path().is_empty();
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !path_ok
        || url.query().is_some()
    {
        return None;
    }
    Some(url.origin().ascii_serialization())
}

impl From<Vec<ConfigProblem>> for ConfigErrors {
    fn from(problems: Vec<ConfigProblem>) -> Self {
        Self(problems)
    }
}
