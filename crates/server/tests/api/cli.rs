//! The binary: `config check`, `secrets generate`, and `serve` refusing unsafe production settings or
//! unreachable dependencies with clear messages.

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_tradesignal");

fn run(args: &[&str], env: &[(&str, &str)]) -> (Output, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("TRADESIGNAL_DATA_DIR", dir.path())
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .expect("run tradesignal");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

fn generated() -> Vec<(String, String)> {
    let (output, stdout, _) = run(&["secrets", "generate"], &[]);
    assert!(output.status.success());
    stdout
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn development_defaults_pass_config_check() {
    let (output, stdout, _) = run(&["config", "check"], &[]);
    assert!(output.status.success(), "{stdout}");
    for variable in server::config::VARIABLES {
        assert!(
            stdout.contains(variable.env),
            "{} missing from the report",
            variable.env
        );
    }
}

#[test]
fn secrets_generate_prints_fresh_valid_values() {
    let first = generated();
    let second = generated();
    let names: Vec<&str> = first.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        [
            "TRADESIGNAL_JWT_KEYS",
            "TRADESIGNAL_DATA_KEYS",
            "TRADESIGNAL_METRICS_TOKEN"
        ]
    );
    for ((_, a), (_, b)) in first.iter().zip(&second) {
        assert_ne!(a, b, "values are fresh each run");
    }
}

#[test]
fn production_with_nothing_configured_names_every_problem() {
    let (output, _, stderr) = run(&["config", "check"], &[("TRADESIGNAL_ENV", "production")]);
    assert_eq!(output.status.code(), Some(1));
    for expected in [
        "TRADESIGNAL_JWT_KEYS: is required",
        "TRADESIGNAL_DATA_KEYS: is required",
        "DATABASE_URL: production needs PostgreSQL",
        "REDIS_URL: production needs Redis",
        "TRADESIGNAL_PUBLIC_URL: is required",
        "TRADESIGNAL_SMTP_URL: is required",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
}

#[test]
fn production_names_weak_secrets_and_unsafe_settings_without_printing_them() {
    let short = "c2hvcnRrZXk"; // "shortkey"
    let env = [
        ("TRADESIGNAL_ENV", "production"),
        (
            "TRADESIGNAL_JWT_KEYS",
            "k1:c2hvcnRrZXk,k2:CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME-CHANGE-ME",
        ),
        (
            "TRADESIGNAL_DATA_KEYS",
            "v1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        ),
        (
            "DATABASE_URL",
            "postgres://app:hunter2pw@db.internal:5432/ts",
        ),
        ("REDIS_URL", "redis://:hunter2redis@cache.internal:6379"),
        ("TRADESIGNAL_PUBLIC_URL", "http://ts.example.com"),
        ("TRADESIGNAL_CORS_ORIGINS", "*,http://app.example.com"),
        (
            "TRADESIGNAL_SMTP_URL",
            "smtp://mailer:hunter2smtp@mail.internal:25",
        ),
        ("TRADESIGNAL_METRICS_TOKEN", "metrics"),
        ("TRADESIGNAL_TRUSTED_PROXIES", "0.0.0.0/0"),
    ];
    let (output, stdout, stderr) = run(&["config", "check"], &env);
    assert_eq!(output.status.code(), Some(1));
    for expected in [
        "TRADESIGNAL_JWT_KEYS: key \"k1\" is 64 bits",
        "TRADESIGNAL_JWT_KEYS: key \"k2\" is an example value",
        "TRADESIGNAL_DATA_KEYS: key \"v1\" does not look random",
        "DATABASE_URL: connects to a non-loopback host without TLS",
        "REDIS_URL: connects to a non-loopback host without verified TLS",
        "TRADESIGNAL_PUBLIC_URL: must be https",
        "TRADESIGNAL_CORS_ORIGINS: `*` allows every site",
        "TRADESIGNAL_CORS_ORIGINS: lists an http:// origin",
        "TRADESIGNAL_SMTP_URL: sends mail to a non-loopback host without TLS",
        "TRADESIGNAL_METRICS_TOKEN: is shorter than 32 characters",
        "TRADESIGNAL_TRUSTED_PROXIES: trusts a range wider than /8",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
    let everything = format!("{stdout}{stderr}");
    for secret in [
        "hunter2pw",
        "hunter2redis",
        "hunter2smtp",
        short,
        "AAAAAAAAAAAAAAAA",
    ] {
        assert!(
            !everything.contains(secret),
            "{secret} printed:\n{everything}"
        );
    }
    assert!(
        stdout.contains("postgres://app:***@db.internal:5432/ts"),
        "{stdout}"
    );
}

fn strong_production_env(secrets: &[(String, String)]) -> Vec<(&str, &str)> {
    let mut env: Vec<(&str, &str)> = secrets
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend([
        ("TRADESIGNAL_ENV", "production"),
        (
            "DATABASE_URL",
            "postgres://app:hunter2pw@db.internal:5432/ts?sslmode=verify-full",
        ),
        ("REDIS_URL", "rediss://:hunter2redis@cache.internal:6380"),
        ("TRADESIGNAL_PUBLIC_URL", "https://ts.example.com"),
        ("TRADESIGNAL_CORS_ORIGINS", "https://app.example.com"),
        (
            "TRADESIGNAL_SMTP_URL",
            "smtps://mailer:hunter2smtp@mail.example.com:465",
        ),
    ]);
    env
}

#[test]
fn a_sound_production_configuration_passes_and_prints_redacted() {
    let secrets = generated();
    let env = strong_production_env(&secrets);
    let (output, stdout, stderr) = run(&["config", "check"], &env);
    assert!(output.status.success(), "{stderr}");
    for (_, value) in &secrets {
        let material = value.split_once(':').map_or(value.as_str(), |(_, m)| m);
        assert!(!stdout.contains(material), "secret printed:\n{stdout}");
    }
    assert!(!stdout.contains("hunter2"));
    assert!(stdout.contains("[material redacted]"));
}

#[test]
fn tls_checks_read_urls_the_way_the_drivers_do() {
    let secrets = generated();
    for (variable, value, expected) in [
        (
            "DATABASE_URL",
            "postgres://app@db.internal/ts?sslmode=require&sslmode=disable",
            "DATABASE_URL: connects to a non-loopback host without TLS",
        ),
        (
            "DATABASE_URL",
            "postgres://app@localhost/ts?host=db.remote",
            "DATABASE_URL: connects to a non-loopback host without TLS",
        ),
        (
            "REDIS_URL",
            "rediss://cache.internal:6380/#insecure",
            "REDIS_URL: connects to a non-loopback host without verified TLS",
        ),
        (
            "TRADESIGNAL_PUBLIC_URL",
            "https://:hunter2@ts.example.com",
            "TRADESIGNAL_PUBLIC_URL: must not carry credentials",
        ),
    ] {
        let mut env = strong_production_env(&secrets);
        env.retain(|(k, _)| *k != variable);
        env.push((variable, value));
        let (output, stdout, stderr) = run(&["config", "check"], &env);
        assert_eq!(output.status.code(), Some(1), "{variable}={value}");
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
        assert!(!stdout.contains("hunter2") && !stderr.contains("hunter2"));
    }
}

#[test]
fn serve_refuses_an_unsafe_production_configuration_listing_every_problem() {
    let (output, _, stderr) = run(
        &["serve"],
        &[
            ("TRADESIGNAL_ENV", "production"),
            ("TRADESIGNAL_PUBLIC_URL", "http://x.example"),
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("refusing to start"));
    assert!(stderr.matches("\n  - ").count() >= 6, "{stderr}");
}

#[test]
fn serve_reports_an_unreachable_database_in_one_line() {
    let secrets = generated();
    let mut env = strong_production_env(&secrets);
    env.retain(|(k, _)| *k != "DATABASE_URL" && *k != "REDIS_URL");
    env.push(("DATABASE_URL", "postgres://app:hunter2pw@127.0.0.1:1/ts"));
    env.push(("REDIS_URL", "redis://127.0.0.1:6379"));
    env.push(("TRADESIGNAL_LISTEN", "127.0.0.1:0"));
    let (output, _, stderr) = run(&["serve"], &env);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot connect to postgresql at postgres://app:***@127.0.0.1:1/ts"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn serve_reports_an_unreachable_redis_in_one_line() {
    let (output, _, stderr) = run(
        &["serve"],
        &[
            ("REDIS_URL", "redis://:hunter2redis@127.0.0.1:1"),
            ("TRADESIGNAL_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("127.0.0.1:1") && stderr.contains("Redis"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2") && !stderr.contains("panicked"),
        "{stderr}"
    );
}

#[test]
fn a_config_file_is_read_and_typos_are_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "listen = \"127.0.0.1:9999\"\ntrusted_proxies = [\"10.0.0.0/8\", \"192.168.0.1\"]\n",
    )
    .expect("write");
    let (output, stdout, _) = run(
        &["--config", good.to_str().expect("path"), "config", "check"],
        &[],
    );
    assert!(output.status.success());
    assert!(stdout.contains("TRADESIGNAL_LISTEN = 127.0.0.1:9999"));
    assert!(
        stdout.contains("TRADESIGNAL_TRUSTED_PROXIES = 10.0.0.0/8,192.168.0.1/32"),
        "{stdout}"
    );

    let typo = dir.path().join("typo.toml");
    std::fs::write(&typo, "listne = \"127.0.0.1:9999\"\n").expect("write");
    let (output, _, stderr) = run(
        &["--config", typo.to_str().expect("path"), "config", "check"],
        &[],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("unknown key \"listne\""), "{stderr}");

    // The environment wins over the file.
    let (_, stdout, _) = run(
        &["--config", good.to_str().expect("path"), "config", "check"],
        &[("TRADESIGNAL_LISTEN", "127.0.0.1:7777")],
    );
    assert!(stdout.contains("TRADESIGNAL_LISTEN = 127.0.0.1:7777"));
}

#[test]
fn malformed_values_are_all_reported_even_in_development() {
    let (output, _, stderr) = run(
        &["config", "check"],
        &[
            ("TRADESIGNAL_LISTEN", "localhost"),
            ("TRADESIGNAL_TRUSTED_PROXIES", "10.0.0.0/33"),
            ("TRADESIGNAL_BODY_LIMIT_BYTES", "-1"),
            ("TRADESIGNAL_ENV", "staging"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    for variable in [
        "TRADESIGNAL_LISTEN",
        "TRADESIGNAL_TRUSTED_PROXIES",
        "TRADESIGNAL_BODY_LIMIT_BYTES",
        "TRADESIGNAL_ENV",
    ] {
        assert!(stderr.contains(variable), "{variable} not in {stderr}");
    }
}

fn run_in(dir: &std::path::Path, args: &[&str], stdin: &str) -> (Output, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .env_clear()
        .env("TRADESIGNAL_DATA_DIR", dir)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn tradesignal");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).expect("stdin");
    }
    let output = child.wait_with_output().expect("wait");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stdout, stderr)
}

#[test]
fn create_user_reads_the_password_from_stdin_and_enforces_the_policy() {
    let dir = tempfile::tempdir().expect("dir");
    let args = [
        "admin",
        "create-user",
        "--email",
        "Boss@Example.com",
        "--role",
        "super_admin",
        "--password-stdin",
    ];
    let (output, _, stderr) = run_in(dir.path(), &args, "password\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("does not meet the policy"), "{stderr}");
    assert!(
        !stderr.contains("password\n"),
        "the password is never echoed"
    );
    let (output, stdout, stderr) = run_in(dir.path(), &args, "Granite-Falcon-82-Orbit!\n");
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains("created Boss@example.com (super_admin, free)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("two-factor") && stdout.contains("/api/v1/auth/2fa/totp/setup"),
        "staff are told about 2FA: {stdout}"
    );
    let (output, _, stderr) = run_in(dir.path(), &args, "Granite-Falcon-82-Orbit!\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("already exists"));
    let (output, _, _) = run_in(
        dir.path(),
        &[
            "admin",
            "create-user",
            "--email",
            "x@example.com",
            "--role",
            "god",
            "--password-stdin",
        ],
        "Granite-Falcon-82-Orbit!\n",
    );
    assert_eq!(output.status.code(), Some(1));
    // Without --password-stdin the command refuses to run (no password on the command line).
    let (output, _, _) = run_in(
        dir.path(),
        &["admin", "create-user", "--email", "y@example.com"],
        "",
    );
    assert!(!output.status.success());
}

#[test]
fn import_users_takes_bcrypt_rows_and_reports_every_bad_line() {
    let dir = tempfile::tempdir().expect("dir");
    let good = bcrypt::hash_with_salt("Legacy-Passw0rd!2024", 4, [5u8; 16])
        .expect("bcrypt")
        .format_for_version(bcrypt::Version::TwoB);
    // A cost above 14 takes too long to verify at every login: refused at import.
    let too_slow = good.replacen("$04$", "$15$", 1);
    let csv = format!(
        "email,bcrypt_hash,role,tier\nann@example.com,{good},user,pro\nbad-email,{good},user,free\nbob@example.com,plaintext,user,free\ncid@example.com,{good},emperor,free\nann@example.com,{good},user,free\ndan@example.com,{too_slow},user,free\n"
    );
    let file = dir.path().join("users.csv");
    std::fs::write(&file, csv).expect("write");
    let (output, stdout, stderr) = run_in(
        dir.path(),
        &["admin", "import-users", file.to_str().expect("path")],
        "",
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "failures make the exit non-zero"
    );
    assert!(
        stdout.contains("imported 1, skipped 1 (email exists), failed 4"),
        "{stdout}"
    );
    for line in [
        "line 3:",
        "line 4: not a bcrypt hash",
        "line 5: unknown role",
        "line 7: bcrypt cost 15 is above 14",
    ] {
        assert!(stderr.contains(line), "{line} not in {stderr}");
    }
    assert!(!stderr.contains(&good), "hashes are not printed");
    // Re-running changes nothing.
    let (_, stdout, _) = run_in(
        dir.path(),
        &["admin", "import-users", file.to_str().expect("path")],
        "",
    );
    assert!(stdout.contains("imported 0, skipped 2"), "{stdout}");
}

/// Starts `serve` in `dir` until it listens (it loads the sample before listening), then stops it;
/// returns its standard error.
/// Whether an instance at `addr` answers `GET /healthz` with 200.
fn answers_health(addr: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn serve_once(dir: &std::path::Path, extra: &[(&str, &str)]) -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(BIN)
        .arg("serve")
        .env_clear()
        .env("TRADESIGNAL_DATA_DIR", dir)
        .env("TRADESIGNAL_LISTEN", &listen)
        .envs(extra.iter().copied())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start");
    // Serving, not just bound: an answer to /healthz (start-up work before serving is done).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !answers_health(&listen) {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "serve exited early"
        );
        assert!(std::time::Instant::now() < deadline, "serve did not answer");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let output = child.wait_with_output().expect("output");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// (filings, congressional trades) stored in `dir`'s database.
async fn sample_rows_in(dir: &std::path::Path) -> (i64, i64) {
    let url = store::db::sqlite_url_for(&dir.join("tradesignal.db"));
    let db = store::Database::connect(&url, &store::DbOptions::default())
        .await
        .expect("open");
    let (filings,): (i64,) = sqlx::query_as::<sqlx::Any, (i64,)>("SELECT COUNT(*) FROM filings")
        .fetch_one(db.pool())
        .await
        .expect("count");
    let (congress,): (i64,) =
        sqlx::query_as::<sqlx::Any, (i64,)>("SELECT COUNT(*) FROM congressional_trades")
            .fetch_one(db.pool())
            .await
            .expect("count");
    db.close().await;
    (filings, congress)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_in_development_shows_sample_filings_once() {
    let dir = tempfile::tempdir().expect("dir");
    let stderr = serve_once(dir.path(), &[]);
    assert!(stderr.contains("loaded 8 sample filings"), "{stderr}");
    assert!(stderr.contains("and 15 congressional trades"), "{stderr}");
    assert!(stderr.contains("TRADESIGNAL_SAMPLE_DATA=off"), "{stderr}");
    assert_eq!(sample_rows_in(dir.path()).await, (8, 15));
    // Not again: the database holds filings now.
    let stderr = serve_once(dir.path(), &[]);
    assert!(!stderr.contains("sample filings"), "{stderr}");
    assert_eq!(sample_rows_in(dir.path()).await, (8, 15));
    // Turned off: an empty database stays empty.
    let empty = tempfile::tempdir().expect("dir");
    let stderr = serve_once(empty.path(), &[("TRADESIGNAL_SAMPLE_DATA", "off")]);
    assert!(!stderr.contains("sample filings"), "{stderr}");
    assert_eq!(sample_rows_in(empty.path()).await, (0, 0));
}
