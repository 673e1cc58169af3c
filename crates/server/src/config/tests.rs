//! Loading and validation rules, with the environment given as a map.

use std::collections::HashMap;

use super::*;
use security::keys;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

#[test]
fn defaults_are_development_on_loopback_with_sqlite() {
    let settings = load(None, &env(&[])).expect("defaults load");
    assert_eq!(settings.environment, Environment::Development);
    assert_eq!(settings.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(settings.public_url.as_str(), "http://127.0.0.1:8080/");
    assert!(settings.redis_url.is_none());
    assert_eq!(settings.body_limit, 1 << 20);
    assert!(settings.validate().is_ok());
}

#[test]
fn every_variable_is_documented_in_env_example() {
    let example = include_str!("../../../../.env.example");
    for variable in VARIABLES {
        assert!(
            example
                .lines()
                .any(|l| l.starts_with(&format!("{}=", variable.env))),
            "{} is not in .env.example",
            variable.env
        );
    }
    // And nothing undocumented is in the example.
    for line in example
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        let name = line.split('=').next().unwrap_or("");
        assert!(
            VARIABLES.iter().any(|v| v.env == name),
            "{name} is not a known variable"
        );
    }
}

#[test]
fn the_example_file_itself_is_refused_in_production() {
    let example = include_str!("../../../../.env.example");
    let mut vars: HashMap<String, String> = example
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    vars.insert("TRADESIGNAL_ENV".into(), "production".into());
    let settings = load(None, &vars).expect("loads");
    let problems = settings.validate().expect_err("refused").0;
    assert!(problems.len() >= 6, "{problems:?}");
}

#[test]
fn production_problem_list_is_complete_and_independent() {
    let settings = load(None, &env(&[("TRADESIGNAL_ENV", "production")])).expect("loads");
    let variables: Vec<&str> = settings
        .validate()
        .expect_err("refused")
        .0
        .iter()
        .map(|p| p.variable)
        .collect();
    for expected in [
        "TRADESIGNAL_JWT_KEYS",
        "TRADESIGNAL_DATA_KEYS",
        "DATABASE_URL",
        "REDIS_URL",
        "TRADESIGNAL_PUBLIC_URL",
        "TRADESIGNAL_SMTP_URL",
    ] {
        assert!(
            variables.contains(&expected),
            "{expected} not reported: {variables:?}"
        );
    }
}

#[test]
fn sample_data_loads_in_development_only() {
    assert!(load(None, &env(&[])).expect("loads").loads_sample_data());
    let off = load(None, &env(&[("TRADESIGNAL_SAMPLE_DATA", "off")])).expect("loads");
    assert!(!off.loads_sample_data());
    let production = load(None, &env(&[("TRADESIGNAL_ENV", "production")])).expect("loads");
    assert!(!production.loads_sample_data(), "never by default");
    let asked = load(
        None,
        &env(&[
            ("TRADESIGNAL_ENV", "production"),
            ("TRADESIGNAL_SAMPLE_DATA", "on"),
        ]),
    )
    .expect("loads");
    assert!(!asked.loads_sample_data(), "never even when asked");
    let problems = asked.validate().expect_err("refused").0;
    assert!(
        problems
            .iter()
            .any(|p| p.variable == "TRADESIGNAL_SAMPLE_DATA"),
        "{problems:?}"
    );
    assert!(load(None, &env(&[("TRADESIGNAL_SAMPLE_DATA", "yes")])).is_err());
}

/// A production configuration whose services are all on loopback but Redis, which is `redis`.
fn production_with_redis(redis: &str) -> Result<(), ConfigErrors> {
    let jwt = keys::generate_ring_entry("k1", 32);
    let data = keys::generate_ring_entry("v1", 32);
    load(
        None,
        &env(&[
            ("TRADESIGNAL_ENV", "production"),
            ("TRADESIGNAL_JWT_KEYS", &jwt),
            ("TRADESIGNAL_DATA_KEYS", &data),
            ("DATABASE_URL", "postgres://app@127.0.0.1/ts"),
            ("REDIS_URL", redis),
            ("TRADESIGNAL_PUBLIC_URL", "https://ts.example.com"),
            ("TRADESIGNAL_SMTP_URL", "smtp://[::1]:25"),
        ]),
    )
    .expect("loads")
    .validate()
}

#[test]
fn loopback_services_need_no_tls() {
    let validated = production_with_redis("redis://localhost:6379");
    assert!(validated.is_ok(), "{validated:?}");
}

#[test]
fn secret_problems_never_quote_the_secret() {
    let settings = load(
        None,
        &env(&[
            ("TRADESIGNAL_ENV", "production"),
            (
                "TRADESIGNAL_JWT_KEYS",
                "k1:bXktdmVyeS1zZWNyZXQtcGFzc3BocmFzZS0xMjM0NTY3ODk=",
            ),
        ]),
    )
    .expect("loads");
    let text = settings.validate().expect_err("refused").to_string();
    assert!(
        text.contains("TRADESIGNAL_JWT_KEYS: key \"k1\" does not look random"),
        "{text}"
    );
    assert!(!text.contains("bXktdmVyeS1zZWNyZXQ"));
}

#[test]
fn development_ignores_weak_secrets_but_not_malformed_values() {
    let settings = load(None, &env(&[("TRADESIGNAL_JWT_KEYS", "k:short")])).expect("loads");
    assert!(settings.validate().is_ok());
    let errors = load(
        None,
        &env(&[("TRADESIGNAL_CORS_ORIGINS", "https://a.example/path")]),
    )
    .expect_err("an origin has no path");
    assert_eq!(errors.0[0].variable, "TRADESIGNAL_CORS_ORIGINS");
}

#[test]
fn origins_are_normalised() {
    let settings = load(
        None,
        &env(&[(
            "TRADESIGNAL_CORS_ORIGINS",
            "https://App.Example.com/, http://localhost:3000",
        )]),
    )
    .expect("loads");
    assert_eq!(
        settings.cors_origins,
        vec!["https://app.example.com", "http://localhost:3000"]
    );
}

#[test]
fn public_links_use_the_configured_url() {
    let settings = load(
        None,
        &env(&[("TRADESIGNAL_PUBLIC_URL", "https://ts.example.com/")]),
    )
    .expect("loads");
    assert_eq!(
        settings.public_link("/verify-email?token=x"),
        "https://ts.example.com/verify-email?token=x"
    );
}

#[test]
fn redis_cluster_urls_are_read_and_checked_like_single_servers() {
    let production = production_with_redis;
    assert!(production("rediss+cluster://app:pw@10.0.0.1:6379,10.0.0.2:6379").is_ok());
    // A cluster announces its nodes' addresses, which may be anywhere: TLS even from loopback seeds.
    for plain in [
        "redis+cluster://app:pw@10.0.0.1:6379,10.0.0.2:6379",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
    ] {
        let refused = production(plain).expect_err(plain);
        assert!(
            refused.0.iter().any(|p| p.variable == "REDIS_URL"),
            "{refused}"
        );
    }

    for bad in [
        "redis+cluster://:hunter2@10.0.0.1:7000/4",
        "memcached://:hunter2@10.0.0.1",
    ] {
        let error = load(None, &env(&[("REDIS_URL", bad)])).expect_err(bad);
        assert!(error.0.iter().any(|p| p.variable == "REDIS_URL"), "{error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
    let error = load(None, &env(&[("TRADESIGNAL_REDIS_PREFIX", "ts{x}:")])).expect_err("braces");
    assert!(
        error
            .0
            .iter()
            .any(|p| p.variable == "TRADESIGNAL_REDIS_PREFIX"),
        "{error}"
    );
}
