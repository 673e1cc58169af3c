//! The state every handler shares: configuration, database, key-value store, metrics.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use security::KvStore;
use store::Database;

use security::ratelimit::RateLimits;
use store::mail::Mailer;
use store::{FailoverKv, MemoryKv};

use crate::api::cookies::CookieNames;
use crate::config::Settings;
use crate::identity::Identity;
use crate::market::MarketService;

pub struct Inner {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub kv: Arc<dyn KvStore>,
    pub metrics: PrometheusHandle,
    pub identity: Identity,
    pub market: Arc<MarketService>,
    pub cookies: CookieNames,
    /// Counters for rate limits and lockouts: Redis with an in-process fallback while it is down.
    pub limiter: Arc<dyn KvStore>,
    pub limits: RateLimits,
    /// The last readiness answer and when it was taken (see `ops::readyz`).
    pub readiness: tokio::sync::Mutex<Option<(std::time::Instant, Option<&'static str>)>>,
    /// Flood detection for CSP reports (see `ops::csp`).
    pub csp_sampler: crate::ops::csp::CspSampler,
    /// The key `/dev/outbox` asks for, fresh at every start (see `web::outbox`); printed by `serve`.
    pub dev_outbox_key: String,
}

/// Cheap to clone; handlers take it with `State<AppState>`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    /// Fails only if the data key ring cannot be read (an unreadable development data key).
    pub fn new(
        settings: Arc<Settings>,
        db: Database,
        kv: Arc<dyn KvStore>,
        mailer: Arc<dyn Mailer>,
    ) -> anyhow::Result<Self> {
        let limiter: Arc<dyn KvStore> = if kv.backend() == "memory" {
            kv.clone()
        } else {
            Arc::new(FailoverKv::new(kv.clone(), Arc::new(MemoryKv::new())))
        };
        let data_ring = crate::config::data_ring(&settings)?;
        let market = Arc::new(MarketService::new(
            settings.clone(),
            db.clone(),
            mailer.clone(),
            &data_ring,
        )?);
        let identity = Identity::new(
            settings.clone(),
            db.clone(),
            kv.clone(),
            limiter.clone(),
            mailer,
            &data_ring,
        )?;
        Ok(Self(Arc::new(Inner {
            cookies: CookieNames::for_settings(&settings),
            limits: settings.rate_limits.clone(),
            limiter,
            readiness: tokio::sync::Mutex::new(None),
            csp_sampler: Default::default(),
            dev_outbox_key: uuid::Uuid::new_v4().simple().to_string(),
            settings,
            db,
            kv,
            metrics: crate::http::metrics::handle(),
            identity,
            market,
        })))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
