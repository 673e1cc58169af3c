//! Assembly: connecting to the database and key-value store, the router with its middleware stack, and
//! serving. Layers run outermost first:
//!
//! request id → security headers (+ CSP nonce) → problem documents → panic catcher → trace → metrics →
//! timeout → body limit → method guard → client IP / host / HTTPS redirect → CORS → routes.
//!
//! Security headers and problem normalisation sit outside the rest (DESIGN.md lists them later) so that
//! responses produced by inner layers — 413 from the body limit, 503 from the timeout, 500 from a panic —
//! carry the headers and the problem shape too.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use secrecy::ExposeSecret;
use security::{KvError, KvStore};
use store::{Database, DbOptions, MemoryKv, RedisKv, StoreError};
use tokio::net::TcpListener;
use tower_http::LatencyUnit;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::api;
use crate::config::Settings;
use crate::http::body_limit::{self, BodyLimits};
use crate::http::client::{self, EdgePolicy, ProxyTrust};
use crate::http::headers::{HeaderPolicy, SecurityHeadersLayer};
use crate::http::normalize::{self, ErrorPolicy};
use crate::http::problem::ApiError;
use crate::http::{methods, metrics, ratelimit, request_id};
use crate::openapi;
use crate::ops;
use crate::state::AppState;
use crate::web;

/// Why the service could not start; each names the dependency and never a secret.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("database: {0}")]
    Database(#[from] StoreError),
    #[error("{0}")]
    Redis(#[from] KvError),
    #[error("mail: {0}")]
    Mail(store::mail::MailError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

impl StartupError {
    /// What to do about a TLS failure to a data store, which the TLS library words for experts.
    pub fn hint(&self) -> Option<&'static str> {
        let message = self.to_string();
        let untrusted = message.contains("UnknownIssuer");
        let wrong_name = message.contains("not valid for name");
        match self {
            Self::Database(_) if untrusted => Some(
                "the database server's certificate is not signed by a trusted CA: name the CA that signed it with sslrootcert=/path/ca.pem in DATABASE_URL",
            ),
            Self::Redis(_) if untrusted => Some(
                "the Redis server's certificate is not signed by a trusted CA: set TRADESIGNAL_REDIS_CA_FILE to the PEM file of the CA that signed it",
            ),
            Self::Database(_) | Self::Redis(_) if wrong_name => Some(
                "the server's certificate does not name the host in the URL: connect with a host name the certificate names",
            ),
            _ => None,
        }
    }
}

/// The configured mailer: SMTP when `TRADESIGNAL_SMTP_URL` is set, else `.eml` files in the outbox.
pub fn mailer(settings: &Settings) -> Result<Arc<dyn store::mail::Mailer>, StartupError> {
    Ok(match &settings.smtp_url {
        Some(url) => Arc::new(
            store::mail::SmtpMailer::from_url(url.expose_secret(), &settings.mail_from)
                .map_err(StartupError::Mail)?,
        ),
        None => Arc::new(store::mail::FileOutbox::new(
            settings.data_dir.join("outbox"),
            settings.mail_from.clone(),
        )),
    })
}

/// Connects to the configured database (applying migrations) and key-value store.
pub async fn connect(settings: &Settings) -> Result<(Database, Arc<dyn KvStore>), StartupError> {
    let db = connect_database(settings).await?;
    let (kv, _) = connect_kv(settings).await?;
    Ok((db, kv))
}

/// [`connect`] for an instance about to serve: on a single Redis it also carries the previous
/// release's brute-force state over to this release's key names, in the background, and watches
/// for instances of that release still at work (`kv_upgrade`).
pub async fn connect_to_serve(
    settings: &Settings,
) -> Result<(Database, Arc<dyn KvStore>), StartupError> {
    let db = connect_database(settings).await?;
    let (kv, redis) = connect_kv(settings).await?;
    if let Some(redis) = redis {
        crate::kv_upgrade::spawn(redis);
    }
    Ok((db, kv))
}

async fn connect_database(settings: &Settings) -> Result<Database, StartupError> {
    let db =
        Database::connect(settings.database_url.expose_secret(), &DbOptions::default()).await?;
    for (id, holder) in db.migrate().await? {
        tracing::warn!(
            user_id = %id,
            other_user_id = %holder,
            "two accounts' email addresses differ only in case: each signs in with its exact address \
             until an administrator changes or disables one"
        );
    }
    Ok(db)
}

async fn connect_kv(
    settings: &Settings,
) -> Result<(Arc<dyn KvStore>, Option<RedisKv>), StartupError> {
    Ok(match &settings.redis_url {
        Some(url) => {
            let redis = RedisKv::connect_with_ca(
                url.expose_secret(),
                &settings.redis_prefix,
                settings.redis_ca.as_deref(),
            )
            .await?;
            (Arc::new(redis.clone()), Some(redis))
        }
        None => (Arc::new(MemoryKv::new()), None),
    })
}

fn allowed_hosts(settings: &Settings) -> Vec<String> {
    let mut hosts = vec![];
    if let Some(host) = settings.public_url.host_str() {
        hosts.push(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_ascii_lowercase(),
        );
    }
    if !settings.is_production() {
        hosts.extend(["localhost", "127.0.0.1", "::1"].map(String::from));
        hosts.push(settings.listen.ip().to_string());
    }
    hosts
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic payload");
    tracing::error!(panic = message, "handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal-error",
        "An internal error occurred. Quote the request id when reporting it.",
    )
    .into_response()
}

fn cors(settings: &Settings) -> Option<CorsLayer> {
    if settings.cors_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = settings
        .cors_origins
        .iter()
        .filter(|o| *o != "*")
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("x-csrf-token"),
            ])
            .expose_headers([HeaderName::from_static("x-request-id"), header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The application router with every layer.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The application router with `extra` routes mounted under the same layers (tests mount probes such
/// as a panicking or slow handler this way).
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let settings = state.settings.clone();
    let csp_reports = Router::new()
        .route(
            "/security/csp-report",
            post(ops::csp_report).route_layer(from_fn_with_state(
                (state.clone(), "csp_report"),
                ratelimit::endpoint,
            )),
        )
        .layer(DefaultBodyLimit::max(ops::CSP_REPORT_BODY_LIMIT))
        .layer(RequestBodyLimitLayer::new(ops::CSP_REPORT_BODY_LIMIT));
    let no_store = axum::middleware::map_response(|mut response: Response| async move {
        response.extensions_mut().insert(crate::http::NoStore);
        response
    });
    let api = Router::new()
        .route("/openapi.json", get(openapi::openapi_json))
        .nest("/auth", api::auth::routes(&state).layer(no_store.clone()))
        .nest("/admin", api::admin::routes().layer(no_store.clone()))
        .merge(api::market::routes())
        // Account data, and the one answer that carries a webhook secret: never cached.
        .nest(
            "/watchlists",
            api::watchlists::routes().layer(no_store.clone()),
        )
        .nest("/alerts", api::alerts::routes().layer(no_store.clone()))
        .nest("/api-keys", api::apikeys::routes().layer(no_store))
        .merge(csp_reports);
    let mut router = Router::new()
        .merge(web::routes(&state))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .nest("/api/v1", api)
        .merge(extra);
    if web::outbox::enabled(&settings) {
        router = router.route("/dev/outbox", get(web::outbox::outbox));
    }
    let mut router = router.fallback(ops::not_found).with_state(state.clone());
    if let Some(cors) = cors(&settings) {
        router = router.layer(cors);
    }

    let edge = Arc::new(EdgePolicy {
        trust: ProxyTrust::new(settings.trusted_proxies.clone()),
        production: settings.is_production(),
        public_origin: settings.public_url.origin().ascii_serialization(),
        allowed_hosts: allowed_hosts(&settings),
        ipv6_prefix: settings.ipv6_prefix,
    });
    let header_policy = HeaderPolicy {
        strict_transport: settings.is_production() && settings.public_is_https(),
        report_uri: settings.public_link("/api/v1/security/csp-report"),
    };
    let error_policy = Arc::new(ErrorPolicy {
        production: settings.is_production(),
        page: Some(web::pages::error_page),
    });
    let trace = TraceLayer::new_for_http()
        .make_span_with(|request: &Request<_>| {
            let id = request
                .extensions()
                .get::<request_id::RequestId>()
                .map(|id| id.as_str().to_string())
                .unwrap_or_default();
            tracing::info_span!(
                "request",
                request_id = %id,
                method = %request.method(),
                path = %api::key_in_url::redact_keys(request.uri().path()),
                client_ip = tracing::field::Empty,
            )
        })
        .on_request(())
        .on_response(
            DefaultOnResponse::new()
                .level(Level::INFO)
                .latency_unit(LatencyUnit::Micros),
        )
        .on_failure(());

    router
        .layer(from_fn_with_state(state.clone(), ratelimit::quota))
        // Before the limiter: a key in a URL is refused (and a genuine one audited) even when the
        // client is over its limit, so its owner always learns of the exposure.
        .layer(from_fn_with_state(state.clone(), api::key_in_url::refuse))
        .layer(from_fn_with_state(edge, client::resolve))
        .layer(from_fn(methods::refuse_unknown))
        .layer(DefaultBodyLimit::max(settings.body_limit))
        .layer(from_fn_with_state(
            Arc::new(BodyLimits::new(
                settings.body_limit,
                vec![(api::admin::INGEST_PATH, api::admin::INGEST_BODY_LIMIT)],
            )),
            body_limit::limit,
        ))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            settings.request_timeout,
        ))
        .layer(from_fn(metrics::track))
        .layer(trace)
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(from_fn_with_state(error_policy, normalize::problems))
        .layer(SecurityHeadersLayer::new(header_policy))
        .layer(from_fn_with_state(
            Arc::new(ProxyTrust::new(settings.trusted_proxies.clone())),
            request_id::assign,
        ))
}

/// A router serving only `/metrics`, for `TRADESIGNAL_METRICS_LISTEN`: open when no token is configured
/// (a private scrape network), else the token is required here too.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(ops::metrics_listener))
        .with_state(state)
        .layer(SecurityHeadersLayer::new(HeaderPolicy {
            strict_transport: false,
            report_uri: String::new(),
        }))
}

/// Binds `addr`, naming it in the error.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, StartupError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartupError::Bind { addr, source })
}

/// A client must send its complete request head within this time (slow-loris protection).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Connections beyond this are closed at once instead of exhausting file descriptors and memory.
pub const MAX_CONNECTIONS: usize = 10_000;
/// In-flight requests get this long to finish at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves until `shutdown` completes, then lets in-flight requests finish. Connections are served by
/// hyper directly (not `axum::serve`) so that a header-read timeout and a connection cap apply.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::extract::ConnectInfo;
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    use hyper_util::server::graceful::GracefulShutdown;
    use tower::ServiceExt;

    let graceful = GracefulShutdown::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(e) => {
                    // Usually EMFILE/ENFILE under pressure: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            ::metrics::counter!("tradesignal_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = app.clone().map_request(
            move |mut request: axum::http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            },
        );
        let connection = builder
            .serve_connection(
                TokioIo::new(stream),
                hyper_util::service::TowerToHyperService::new(service),
            )
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within the shutdown grace period");
    }
    Ok(())
}
