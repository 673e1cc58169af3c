//! The state every handler shares: configuration, database, key-value store, metrics.

use std::ops::Deref;
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use security::KvStore;
use store::Database;

use crate::config::Settings;

pub struct Inner {
    pub settings: Arc<Settings>,
    pub db: Database,
    pub kv: Arc<dyn KvStore>,
    pub metrics: PrometheusHandle,
}

/// Cheap to clone; handlers take it with `State<AppState>`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl AppState {
    pub fn new(settings: Arc<Settings>, db: Database, kv: Arc<dyn KvStore>) -> Self {
        Self(Arc::new(Inner {
            settings,
            db,
            kv,
            metrics: crate::http::metrics::handle(),
        }))
    }
}

impl Deref for AppState {
    type Target = Inner;

    fn deref(&self) -> &Inner {
        &self.0
    }
}
