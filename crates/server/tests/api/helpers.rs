//! The test harness: `TestApp::spawn` builds settings for a backend, starts the app on 127.0.0.1:0 and
//! hands back a client; `FaultProxy` sits between the app and PostgreSQL/Redis so a test can cut them.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use server::config;
use server::state::AppState;
use sqlx::Connection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Postgres,
    /// PostgreSQL and a three-master Redis Cluster.
    Cluster,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

pub fn test_database_url() -> Option<String> {
    env_var("TRADESIGNAL_TEST_DATABASE_URL")
}

pub fn test_redis_url() -> Option<String> {
    env_var("TRADESIGNAL_TEST_REDIS_URL")
}

impl Backend {
    /// PostgreSQL + Redis when both URLs are set; a half configuration is an error, not a skip.
    pub fn external() -> Option<Self> {
        match (test_database_url(), test_redis_url()) {
            (Some(_), Some(_)) => Some(Self::Postgres),
            (None, None) => {
                eprintln!(
                    "TRADESIGNAL_TEST_DATABASE_URL/TRADESIGNAL_TEST_REDIS_URL not set: PostgreSQL + Redis run skipped"
                );
                None
            }
            _ => panic!(
                "set both TRADESIGNAL_TEST_DATABASE_URL and TRADESIGNAL_TEST_REDIS_URL, or neither"
            ),
        }
    }
}

impl Backend {
    /// PostgreSQL + a Redis Cluster whenever the external backends are configured: the cluster is
    /// `TRADESIGNAL_TEST_REDIS_CLUSTER_URL`, or one `scripts/redis-cluster` starts once per run.
    pub fn cluster() -> Option<Self> {
        Self::external()?;
        test_redis_cluster_url();
        Some(Self::Cluster)
    }

    pub fn is_external(self) -> bool {
        self != Self::Embedded
    }
}

/// The test Redis Cluster's URL (see `Backend::cluster`); a cluster that cannot start fails the test.
pub fn test_redis_cluster_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        if let Some(url) = env_var("TRADESIGNAL_TEST_REDIS_CLUSTER_URL") {
            return url;
        }
        let dir = format!("{}/redis-cluster", env!("CARGO_TARGET_TMPDIR"));
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/redis-cluster");
        let output = std::process::Command::new(script)
            .args(["start", &dir])
            .output()
            .expect("run scripts/redis-cluster");
        assert!(
            output.status.success(),
            "scripts/redis-cluster start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("REDIS_CLUSTER_URL="))
            .expect("scripts/redis-cluster printed its URL")
            .to_string()
    })
    .clone()
}

/// Runs a test body against every configured backend, as separate test functions. With `cluster`,
/// also against PostgreSQL and a Redis Cluster (for what Redis decides: limits, lockouts, revocations).
#[macro_export]
macro_rules! backend_test {
    ($name:ident, |$backend:ident| $body:block) => {
        $crate::backend_test!(@module $name, |$backend| $body, embedded postgres_redis);
    };
    ($name:ident, cluster, |$backend:ident| $body:block) => {
        $crate::backend_test!(
            @module $name, |$backend| $body, embedded postgres_redis postgres_redis_cluster
        );
    };
    (@module $name:ident, |$backend:ident| $body:block, $($variant:ident)*) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[allow(unused_imports)]
            use $crate::helpers::*;

            async fn run($backend: Backend) $body

            $($crate::backend_test!(@variant $variant);)*
        }
    };
    (@variant embedded) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn embedded() {
            run(Backend::Embedded).await
        }
    };
    (@variant postgres_redis) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres_redis() {
            if let Some(backend) = Backend::external() {
                run(backend).await
            }
        }
    };
    (@variant postgres_redis_cluster) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn postgres_redis_cluster() {
            if let Some(backend) = Backend::cluster() {
                run(backend).await
            }
        }
    };
}

/// Runs a test body against PostgreSQL with one Redis and with a Redis Cluster (tests of several
/// instances sharing the external stores), as separate test functions.
#[macro_export]
macro_rules! external_test {
    ($name:ident, |$backend:ident| $body:block) => {
        $crate::backend_test!(
            @module $name, |$backend| $body, postgres_redis postgres_redis_cluster
        );
    };
}

/// A PostgreSQL database created for one test and dropped after it.
struct ScratchDatabase {
    admin_url: String,
    name: String,
}

impl ScratchDatabase {
    async fn create(admin_url: &str) -> (Self, String) {
        let name = format!("ts_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin_url)
            .await
            .unwrap_or_else(|e| {
                panic!("TRADESIGNAL_TEST_DATABASE_URL is set but PostgreSQL is unreachable: {e}")
            });
        // Identifiers cannot be bound as parameters; `name` is generated above from a UUID only.
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create scratch database");
        let mut url = url::Url::parse(admin_url).expect("database URL");
        url.set_path(&format!("/{name}"));
        (
            Self {
                admin_url: admin_url.to_string(),
                name,
            },
            url.to_string(),
        )
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async context guarantees; a private runtime on a plain thread is safe here.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin_url).await {
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    _database: Option<ScratchDatabase>,
}

/// Options for `TestApp::spawn_with`.
#[derive(Default)]
pub struct Options {
    /// Extra variables (override the harness's).
    pub env: Vec<(&'static str, String)>,
    /// Routes mounted under the full middleware stack.
    pub extra_routes: Option<Router<AppState>>,
    /// Point DATABASE_URL / REDIS_URL through these proxies instead of at the servers.
    pub database_proxy: Option<SocketAddr>,
    pub redis_proxy: Option<SocketAddr>,
    /// Share a Redis key prefix with another instance (two instances, one quota).
    pub redis_prefix: Option<String>,
    /// Share the database of another instance.
    pub database_url: Option<String>,
    /// Let alert webhooks go to a plain-HTTP listener on 127.0.0.1 (the test receiver).
    pub loopback_webhooks: bool,
    /// Post security alerts to this (loopback) URL with this signing secret.
    pub security_webhook: Option<(String, String)>,
    /// Make `TRADESIGNAL_PUBLIC_URL` this instance's own address (so mailed links and the CSP report
    /// endpoint point at it, as a browser needs).
    pub public_url_is_self: bool,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Options::default()).await
    }

    /// An app whose key-value store is reached through `proxy` (a counting or fault proxy in front
    /// of the test Redis).
    pub async fn spawn_behind_redis_proxy(backend: Backend, proxy: SocketAddr) -> Self {
        Self::spawn_with(
            backend,
            Options {
                redis_proxy: Some(proxy),
                ..Options::default()
            },
        )
        .await
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let mut env: HashMap<String, String> = HashMap::new();
        env.insert(
            "TRADESIGNAL_DATA_DIR".into(),
            dir.path().display().to_string(),
        );
        env.insert("TRADESIGNAL_LISTEN".into(), addr.to_string());
        let mut database = None;
        if backend.is_external() {
            let admin = test_database_url().expect("database URL");
            let (scratch, mut url) = match &options.database_url {
                Some(shared) => (None, shared.clone()),
                None => {
                    let (scratch, url) = ScratchDatabase::create(&admin).await;
                    (Some(scratch), url)
                }
            };
            if let Some(proxy) = options.database_proxy {
                let mut parsed = url::Url::parse(&url).expect("url");
                parsed.set_ip_host(proxy.ip()).expect("host");
                parsed.set_port(Some(proxy.port())).expect("port");
                url = parsed.to_string();
            }
            env.insert("DATABASE_URL".into(), url);
            let redis = if backend == Backend::Cluster {
                // A proxy cannot stand before a cluster: its nodes tell clients each other's address.
                assert!(options.redis_proxy.is_none(), "no Redis proxy on a cluster");
                test_redis_cluster_url()
            } else {
                let mut redis =
                    url::Url::parse(&test_redis_url().expect("redis URL")).expect("redis url");
                if let Some(proxy) = options.redis_proxy {
                    redis.set_ip_host(proxy.ip()).expect("host");
                    redis.set_port(Some(proxy.port())).expect("port");
                }
                redis.to_string()
            };
            env.insert("REDIS_URL".into(), redis);
            env.insert(
                "TRADESIGNAL_REDIS_PREFIX".into(),
                format!("ts_test:{}:", uuid::Uuid::new_v4().simple()),
            );
            database = scratch;
        }
        // Generous limits by default so tests of other features are not throttled; abuse tests set
        // their own.
        env.insert(
            "TRADESIGNAL_RATE_LIMITS".into(),
            "anonymous=100000/3600,tier.free=100000/3600,tier.pro=100000/3600,register=1000/3600,login=1000/60,\
             forgot.email=1000/3600,forgot.ip=1000/3600,reset=1000/60,verify=1000/60,unlock=1000/60,refresh=1000/60,\
             password_strength=1000/60,mfa=1000/60,csp_report=1000/60,\
             mail.address=1000/86400,change_email=1000/86400"
                .into(),
        );
        if options.public_url_is_self {
            env.insert("TRADESIGNAL_PUBLIC_URL".into(), format!("http://{addr}"));
        }
        if let Some(prefix) = &options.redis_prefix {
            env.insert("TRADESIGNAL_REDIS_PREFIX".into(), prefix.clone());
        }
        for (k, v) in options.env {
            env.insert(k.to_string(), v);
        }
        let mut settings = config::load(None, &env).expect("test configuration is valid");
        settings.loopback_webhooks_for_tests =
            options.loopback_webhooks || options.security_webhook.is_some();
        settings.security_webhook = options.security_webhook.map(|(url, secret)| {
            (
                secrecy::SecretString::from(url),
                secrecy::SecretString::from(secret),
            )
        });
        let settings = Arc::new(settings);
        let (db, kv) = server::app::connect(&settings)
            .await
            .expect("connect backends");
        let mailer = server::app::mailer(&settings).expect("mailer");
        let state = AppState::new(settings, db, kv, mailer).expect("app state");
        let router =
            server::app::router_with(state.clone(), options.extra_routes.unwrap_or_default());
        let (tx, rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = server::app::serve(listener, router, async {
                let _ = rx.await;
            })
            .await;
        });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        Self {
            addr,
            base: format!("http://{addr}"),
            client,
            state,
            shutdown: Some(tx),
            _dir: dir,
            _database: database,
        }
    }

    /// Names of the audit events recorded so far (optionally about one user), oldest first, once the
    /// audit queue has written everything queued.
    pub async fn audit_trail(
        &self,
        subject: Option<&str>,
    ) -> Result<Vec<String>, store::StoreError> {
        self.state.identity.flush_audit().await;
        self.state.db.audit_event_names(subject).await
    }

    /// The DATABASE_URL this instance uses (to start a second instance on the same database).
    pub fn database_url(&self) -> String {
        use secrecy::ExposeSecret;
        self.state.settings.database_url.expose_secret().to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Sends raw bytes and returns the raw response text (for requests no HTTP client will build).
    pub async fn raw(&self, request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = TcpStream::connect(self.addr).await.expect("connect");
        stream.write_all(request).await.expect("write");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            stream.read_to_end(&mut out),
        )
        .await;
        String::from_utf8_lossy(&out).into_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Parses a problem document, checking its content type and that `request_id` matches the header.
pub async fn problem(response: reqwest::Response) -> serde_json::Value {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(
        content_type, "application/problem+json",
        "error responses are problem documents"
    );
    let header_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("X-Request-Id on every response")
        .to_string();
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.expect("problem JSON");
    assert_eq!(body["request_id"], header_id.as_str());
    assert_eq!(body["status"], status);
    for member in ["type", "title", "detail"] {
        assert!(
            body[member].is_string(),
            "problem member {member} missing: {body}"
        );
    }
    body
}

/// A TCP proxy that can be cut (existing connections dropped, new ones refused) and restored.
pub struct FaultProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    generation: watch::Sender<u64>,
}

impl FaultProxy {
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let (generation, _) = watch::channel(0u64);
        let accept_up = up.clone();
        let accept_generation = generation.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !accept_up.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let mut cut = accept_generation.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            generation,
        }
    }

    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// host:port of a URL, for pointing a proxy at it.
pub fn socket_of(url: &str) -> SocketAddr {
    let parsed = url::Url::parse(url).expect("url");
    let host = parsed.host_str().expect("host");
    let port = parsed
        .port_or_known_default()
        .unwrap_or(match parsed.scheme() {
            "redis" | "rediss" => 6379,
            _ => 5432,
        });
    let ip: std::net::IpAddr = if host == "localhost" {
        [127, 0, 0, 1].into()
    } else {
        host.parse().expect("tests use an IP or localhost")
    };
    SocketAddr::new(ip, port)
}

/// A browser-like client: its own cookie jar, so it holds its own fingerprint cookie.
pub fn browser() -> reqwest::Client {
    server::market::outbound::install_crypto_provider();
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// A logged-in client.
pub struct Session {
    pub client: reqwest::Client,
    pub access: String,
    pub refresh: String,
}

impl Session {
    pub fn claims(&self) -> serde_json::Value {
        jwt_claims(&self.access)
    }
}

/// The (unverified) payload of a JWT, for assertions.
pub fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("base64url");
    serde_json::from_slice(&bytes).expect("json")
}

pub const PASSWORD: &str = "Granite-Falcon-82-Orbit!";

static QUIET: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Held by the browser tests and by tests that measure time (timing medians, a one-second backoff
/// window): headless Chromium's CPU use on two cores would skew what they measure. Other tests
/// keep running beside either.
pub async fn quiet_machine() -> tokio::sync::MutexGuard<'static, ()> {
    QUIET.lock().await
}

impl TestApp {
    pub fn outbox(&self) -> std::path::PathBuf {
        self._dir.path().join("outbox")
    }

    /// The newest email to `to` (waits for background delivery), as text.
    pub async fn mail_to(&self, to: &str) -> String {
        self.mail_to_after(to, 0).await
    }

    /// The newest email to `to` once more than `seen` have arrived for them.
    pub async fn mail_to_after(&self, to: &str, seen: usize) -> String {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut mails: Vec<(std::time::SystemTime, String)> = vec![];
            if let Ok(entries) = std::fs::read_dir(self.outbox()) {
                for entry in entries.flatten() {
                    let Ok(text) = std::fs::read_to_string(entry.path()) else {
                        continue;
                    };
                    if text.contains(&format!("\r\nTo: {to}\r\n")) {
                        let modified = entry
                            .metadata()
                            .and_then(|m| m.modified())
                            .unwrap_or(std::time::UNIX_EPOCH);
                        mails.push((modified, text));
                    }
                }
            }
            if mails.len() > seen {
                mails.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
                // Files are named by UUIDv7, so the lexically greatest name is newest; sort by content
                // time first and fall back to order of arrival.
                return mails.pop().map(|(_, t)| t).unwrap_or_default();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no email to {to} arrived"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// The newest email to `to` containing `needle` (waits for background delivery).
    pub async fn mail_containing(&self, to: &str, needle: &str) -> String {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let mut found: Vec<String> = std::fs::read_dir(self.outbox())
                .map(|entries| {
                    entries
                        .flatten()
                        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                        .filter(|t| t.contains(&format!("\r\nTo: {to}\r\n")) && t.contains(needle))
                        .collect()
                })
                .unwrap_or_default();
            if let Some(mail) = found.pop() {
                return mail;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no email to {to} containing {needle:?} arrived"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn mails_to(&self, to: &str) -> usize {
        std::fs::read_dir(self.outbox())
            .map(|entries| {
                entries
                    .flatten()
                    .filter(|e| {
                        std::fs::read_to_string(e.path())
                            .is_ok_and(|t| t.contains(&format!("\r\nTo: {to}\r\n")))
                    })
                    .count()
            })
            .unwrap_or(0)
    }

    pub async fn post_json(
        &self,
        client: &reqwest::Client,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request")
    }

    /// Registers and verifies through the real flow.
    pub async fn register_verified(&self, email: &str) {
        let response = self
            .post_json(
                &self.client,
                "/api/v1/auth/register",
                serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 202);
        let mail = self.mail_to(email).await;
        let token = token_in(&mail, "/verify-email?token=");
        let response = self
            .post_json(
                &self.client,
                "/api/v1/auth/verify-email",
                serde_json::json!({"token": token}),
            )
            .await;
        assert_eq!(response.status(), 204);
    }

    /// Creates a verified user with a role directly in the database.
    pub async fn create_user(&self, email: &str, role: &str) -> String {
        let id = uuid::Uuid::now_v7().to_string();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let user = store::identity::NewUser {
            id: id.clone(),
            email: email.to_string(),
            password_hash: security::password::hash_password(PASSWORD).expect("hash"),
            full_name: None,
            role: role.to_string(),
            tier: "free".into(),
            verified_at: Some(now),
            security_stamp: "stamp".into(),
            now,
        };
        assert!(self.state.db.insert_user(&user).await.expect("insert"));
        id
    }

    /// Creates a verified user of `tier` and logs them in.
    pub async fn user_with_tier(&self, email: &str, tier: &str) -> (String, Session) {
        let id = self.create_user(email, "user").await;
        if tier != "free" {
            let change = store::identity::users::AdminChange {
                tier: Some(tier.to_string()),
                ..Default::default()
            };
            self.state
                .db
                .admin_update_user(
                    &id,
                    &change,
                    "stamp-2",
                    time::OffsetDateTime::now_utc().unix_timestamp(),
                )
                .await
                .expect("set tier");
        }
        (id, self.login(email).await)
    }

    pub async fn send_as(
        &self,
        session: &Session,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> reqwest::Response {
        let mut request = session
            .client
            .request(method, self.url(path))
            .bearer_auth(&session.access);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request")
    }

    pub async fn login_as(&self, email: &str, password: &str) -> Session {
        let client = browser();
        let response = self
            .post_json(
                &client,
                "/api/v1/auth/login",
                serde_json::json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email}");
        let body: serde_json::Value = response.json().await.expect("tokens");
        Session {
            client,
            access: body["access_token"].as_str().expect("access").to_string(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_string(),
        }
    }

    pub async fn login(&self, email: &str) -> Session {
        self.login_as(email, PASSWORD).await
    }

    /// GET with the session's token and cookies.
    pub async fn get_as(&self, session: &Session, path: &str) -> reqwest::Response {
        session
            .client
            .get(self.url(path))
            .bearer_auth(&session.access)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_as(
        &self,
        session: &Session,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        session
            .client
            .post(self.url(path))
            .bearer_auth(&session.access)
            .json(&body)
            .send()
            .await
            .expect("request")
    }
}

/// The token of the first link with `marker` in an email.
pub fn token_in(mail: &str, marker: &str) -> String {
    let start = mail
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} not in mail:\n{mail}"))
        + marker.len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// A TCP proxy to Redis that counts the commands passing through (RESP arrays whose first element is
/// an upper-case command name), to prove how many round trips a request costs.
pub struct CountingProxy {
    pub addr: SocketAddr,
    commands: Arc<std::sync::atomic::AtomicUsize>,
}

fn count_commands(bytes: &[u8]) -> usize {
    let mut count = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'*' {
            // *N\r\n$M\r\nCMD\r\n
            let rest = &bytes[i + 1..];
            let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
            let after = &rest[digits..];
            if digits > 0 && after.starts_with(b"\r\n$") {
                let len_digits = after[3..].iter().take_while(|b| b.is_ascii_digit()).count();
                let name_start = 3 + len_digits + 2;
                if len_digits > 0
                    && after.get(3 + len_digits..name_start) == Some(b"\r\n".as_slice())
                {
                    let name: Vec<u8> = after[name_start..]
                        .iter()
                        .take_while(|b| b.is_ascii_uppercase())
                        .copied()
                        .collect();
                    if !name.is_empty() {
                        count += 1;
                    }
                }
            }
        }
        i += 1;
    }
    count
}

impl CountingProxy {
    pub async fn start(target: SocketAddr) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let commands = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = commands.clone();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let counter = counter.clone();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut client_read, mut client_write) = inbound.into_split();
                    let (mut server_read, mut server_write) = outbound.into_split();
                    let upstream = async {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = client_read.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            counter.fetch_add(count_commands(&buf[..n]), Ordering::SeqCst);
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    };
                    let downstream = tokio::io::copy(&mut server_read, &mut client_write);
                    tokio::select! {
                        _ = upstream => {}
                        _ = downstream => {}
                    }
                });
            }
        });
        Self { addr, commands }
    }

    pub fn commands(&self) -> usize {
        self.commands.load(Ordering::SeqCst)
    }
}

/// An authenticator app: hands out codes the server will accept, in increasing time steps (a code is
/// accepted once and never one older than the last), waiting for the clock when the window is used up.
pub struct Authenticator {
    secret: security::totp::TotpSecret,
    last_step: u64,
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Authenticator {
    pub fn new(secret_base32: &str) -> Self {
        Self {
            secret: security::totp::TotpSecret::from_base32(secret_base32).expect("base32 secret"),
            last_step: 0,
        }
    }

    /// The code of `step` (for replay and stale-code tests).
    pub fn code_of_step(&self, step: u64) -> String {
        self.secret.code_at(step * 30).expect("code")
    }

    /// The code of the current step, without using it up (for requests refused before any code is
    /// checked).
    pub fn peek(&self) -> String {
        self.code_of_step(unix_now() / 30)
    }

    /// The code of the step just used (a replay).
    pub fn last_code(&self) -> String {
        self.code_of_step(self.last_step)
    }

    /// A fresh code: the next unused step inside the server's ±1 window. Never within 2 s of a step's
    /// end, so the server's clock cannot have moved on when it checks.
    pub async fn code(&mut self) -> String {
        loop {
            let now = unix_now();
            let into_step = now % 30;
            if into_step >= 28 {
                tokio::time::sleep(std::time::Duration::from_secs(30 - into_step)).await;
                continue;
            }
            let current = now / 30;
            let candidate = (self.last_step + 1).max(current - 1);
            if candidate <= current + 1 {
                self.last_step = candidate;
                return self.code_of_step(candidate);
            }
            tokio::time::sleep(std::time::Duration::from_secs(30 - into_step)).await;
        }
    }
}

impl TestApp {
    /// Turns 2FA on for a freshly logged-in session; the authenticator and the backup codes.
    pub async fn enrol_totp(&self, session: &Session) -> (Authenticator, Vec<String>) {
        let response = self
            .post_as(
                session,
                "/api/v1/auth/2fa/totp/setup",
                serde_json::json!({}),
            )
            .await;
        assert_eq!(response.status(), 200, "totp setup");
        let setup: serde_json::Value = response.json().await.expect("json");
        let mut authenticator = Authenticator::new(setup["secret"].as_str().expect("secret"));
        let code = authenticator.code().await;
        let response = self
            .post_as(
                session,
                "/api/v1/auth/2fa/totp/enable",
                serde_json::json!({"code": code}),
            )
            .await;
        assert_eq!(response.status(), 200, "totp enable");
        let body: serde_json::Value = response.json().await.expect("json");
        let codes = body["backup_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|c| c.as_str().expect("code").to_string())
            .collect();
        (authenticator, codes)
    }

    /// The password step of a login with 2FA on: the mfa_token.
    pub async fn login_for_mfa_token(&self, client: &reqwest::Client, email: &str) -> String {
        let response = self
            .post_json(
                client,
                "/api/v1/auth/login",
                serde_json::json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), 200, "password step of {email}");
        let body: serde_json::Value = response.json().await.expect("json");
        assert_eq!(body["mfa_required"], true, "{body}");
        body["mfa_token"].as_str().expect("mfa_token").to_string()
    }

    /// Both login steps with an authenticator code.
    pub async fn login_with_totp(&self, email: &str, authenticator: &mut Authenticator) -> Session {
        let client = browser();
        let mfa_token = self.login_for_mfa_token(&client, email).await;
        let code = authenticator.code().await;
        let response = self
            .post_json(
                &client,
                "/api/v1/auth/login/mfa",
                serde_json::json!({"mfa_token": mfa_token, "code": code}),
            )
            .await;
        assert_eq!(response.status(), 200, "second step of {email}");
        let body: serde_json::Value = response.json().await.expect("tokens");
        Session {
            client,
            access: body["access_token"].as_str().expect("access").to_string(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_string(),
        }
    }

    /// A verified user of `role` with 2FA on, signed in with it (staff reach the admin API only so).
    pub async fn create_user_with_2fa(
        &self,
        email: &str,
        role: &str,
    ) -> (String, Session, Authenticator) {
        let id = self.create_user(email, role).await;
        let first = self.login(email).await;
        let (mut authenticator, _) = self.enrol_totp(&first).await;
        let session = self.login_with_totp(email, &mut authenticator).await;
        (id, session, authenticator)
    }
}

/// A message an `SmtpSink` received: the envelope and the raw RFC 5322 text.
#[derive(Debug, Clone)]
pub struct ReceivedMail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

/// A minimal SMTP server on 127.0.0.1 that accepts every message (EHLO, MAIL, RCPT, DATA, RSET, NOOP,
/// QUIT), so tests can exercise the real SMTP transport end to end.
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<std::sync::Mutex<Vec<ReceivedMail>>>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let addr = listener.local_addr().expect("addr");
        let mails: Arc<std::sync::Mutex<Vec<ReceivedMail>>> = Arc::default();
        let store = mails.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(Self::session(stream, store.clone()));
            }
        });
        Self { addr, mails }
    }

    async fn session(stream: TcpStream, mails: Arc<std::sync::Mutex<Vec<ReceivedMail>>>) {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        let _ = write.write_all(b"220 sink.test ESMTP ready\r\n").await;
        let (mut from, mut to) = (String::new(), Vec::new());
        loop {
            let mut line = String::new();
            if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let command = line.trim_end().to_string();
            let upper = command.to_ascii_uppercase();
            let reply: &[u8] = if upper.starts_with("EHLO") {
                b"250-sink.test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
                b"250 OK\r\n"
            } else if upper.starts_with("RSET") {
                from.clear();
                to.clear();
                b"250 OK\r\n"
            } else if upper.starts_with("MAIL FROM:") {
                from = command[10..].trim().trim_matches(['<', '>']).to_string();
                b"250 OK\r\n"
            } else if upper.starts_with("RCPT TO:") {
                to.push(command[8..].trim().trim_matches(['<', '>']).to_string());
                b"250 OK\r\n"
            } else if upper == "DATA" {
                let _ = write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await;
                let mut data = String::new();
                loop {
                    let mut body_line = String::new();
                    if lines.read_line(&mut body_line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    if body_line == ".\r\n" {
                        break;
                    }
                    // Dot-stuffing (RFC 5321 4.5.2).
                    data.push_str(body_line.strip_prefix('.').unwrap_or(&body_line));
                }
                if let Ok(mut mails) = mails.lock() {
                    mails.push(ReceivedMail {
                        from: std::mem::take(&mut from),
                        to: std::mem::take(&mut to),
                        data,
                    });
                }
                b"250 queued\r\n"
            } else if upper.starts_with("QUIT") {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            } else {
                b"502 not implemented\r\n"
            };
            if write.write_all(reply).await.is_err() {
                return;
            }
        }
    }

    /// The first received message whose text contains `needle` (waits up to 10 s).
    pub async fn mail_containing(&self, needle: &str) -> ReceivedMail {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(mail) = self
                .mails
                .lock()
                .ok()
                .and_then(|mails| mails.iter().find(|m| m.data.contains(needle)).cloned())
            {
                return mail;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no mail containing {needle:?} reached the SMTP server"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn count(&self) -> usize {
        self.mails.lock().map(|m| m.len()).unwrap_or(0)
    }
}

impl TestApp {
    /// The session after a refresh: a new access token with the session's current claims.
    pub async fn refreshed(&self, session: &Session) -> Session {
        let response = self
            .post_json(
                &session.client,
                "/api/v1/auth/refresh",
                serde_json::json!({"refresh_token": session.refresh}),
            )
            .await;
        assert_eq!(response.status(), 200, "refresh");
        let body: serde_json::Value = response.json().await.expect("tokens");
        Session {
            client: session.client.clone(),
            access: body["access_token"].as_str().expect("access").to_string(),
            refresh: body["refresh_token"].as_str().expect("refresh").to_string(),
        }
    }

    /// Two instances on one PostgreSQL database and one Redis prefix with the same key rings, as a
    /// deployment behind a load balancer runs them.
    pub async fn two_instances(backend: Backend) -> (TestApp, TestApp) {
        Self::two_instances_with(backend, vec![]).await
    }

    /// `two_instances`, both with these extra variables.
    pub async fn two_instances_with(
        backend: Backend,
        extra: Vec<(&'static str, String)>,
    ) -> (TestApp, TestApp) {
        let prefix = format!("ts_test:{}:", uuid::Uuid::new_v4().simple());
        let mut keys = vec![
            (
                "TRADESIGNAL_JWT_KEYS",
                security::keys::generate_ring_entry("j1", 32),
            ),
            (
                "TRADESIGNAL_DATA_KEYS",
                security::keys::generate_ring_entry("d1", 32),
            ),
        ];
        keys.extend(extra);
        let options = |database_url: Option<String>| Options {
            env: keys.clone(),
            redis_prefix: Some(prefix.clone()),
            database_url,
            ..Options::default()
        };
        let first = TestApp::spawn_with(backend, options(None)).await;
        let second = TestApp::spawn_with(backend, options(Some(first.database_url()))).await;
        (first, second)
    }
}

/// Runs the command line on `database_url` with the data key ring `keys` (nothing else from this
/// environment): (exit code, stdout, stderr).
pub fn run_cli(database_url: &str, keys: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().expect("dir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tradesignal"))
        .args(args)
        .env_clear()
        .env("TRADESIGNAL_DATA_DIR", dir.path())
        .env("DATABASE_URL", database_url)
        .env("TRADESIGNAL_DATA_KEYS", keys)
        .output()
        .expect("run");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
