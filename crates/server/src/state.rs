//! The state every handler shares: configuration, database, key-value store, metrics.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use security::KvStore;
use store::Database;

use store::mail::Mailer;

use crate::api::cookies::CookieNames;
use crate::config::Settings;
use crate::identity::Identity;

pub struct Inner {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub kv: Arc<dyn KvStore>,
    pub metrics: PrometheusHandle,
    pub identity: Identity,
    pub cookies: CookieNames,
}

/// Cheap to clone; handlers take it with `State<AppState>`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(
        settings: Arc<Settings>,
        db: Database,
        kv: Arc<dyn KvStore>,
        mailer: Arc<dyn Mailer>,
    ) -> Self {
        let identity = Identity::new(settings.clone(), db.clone(), kv.clone(), mailer);
        Self(Arc::new(Inner {
            cookies: CookieNames::for_settings(&settings),
            settings,
            db,
            kv,
            metrics: crate::http::metrics::handle(),
            identity,
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
