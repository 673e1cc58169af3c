//! The market-data service: ingesting filings and disclosures, watchlists and alert rules, and
//! delivering alert matches by email or signed webhook. It knows nothing of HTTP; handlers in
//! `crate::api` parse and authorise, then call in here.

pub mod alerts;
pub mod cache;
pub mod congress;
pub mod delivery;
pub mod ingest;
pub mod outbound;
pub mod sample;
pub mod tiers;
pub mod views;
pub mod watchlists;

use std::sync::Arc;

use security::fieldcrypt::FieldCipher;
use security::keys::KeyRing;
use store::Database;
use store::mail::Mailer;

use crate::config::Settings;
use outbound::{Destinations, WebhookClient};

/// Why a market operation did not happen. Messages are safe to show.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        code: &'static str,
        message: String,
    },
    /// The caller's plan does not allow this.
    #[error("{0}")]
    PlanLimit(String),
    #[error("No such resource.")]
    NotFound,
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<store::StoreError> for MarketError {
    fn from(e: store::StoreError) -> Self {
        Self::Internal(e.into())
    }
}

impl MarketError {
    pub fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            code,
            message: message.into(),
        }
    }
}

/// Shared by handlers, the delivery worker and the CLI.
pub struct MarketService {
    pub db: Database,
    pub settings: Arc<Settings>,
    pub mailer: Arc<dyn Mailer>,
    cipher: FieldCipher,
    pub webhooks: WebhookClient,
    pub destinations: Destinations,
    /// Cached answers to the public market-data reads.
    pub reads: cache::MarketCache,
}

impl MarketService {
    /// `data_ring` seals webhook secrets (see `config::data_ring`).
    pub fn new(
        settings: Arc<Settings>,
        db: Database,
        mailer: Arc<dyn Mailer>,
        data_ring: &KeyRing,
    ) -> anyhow::Result<Self> {
        let destinations = if settings.loopback_webhooks_for_tests {
            Destinations::PlainHttpLoopback
        } else {
            Destinations::Public
        };
        let cipher = FieldCipher::new(data_ring)?;
        let reads = cache::MarketCache::new(
            db.clone(),
            settings.market_cache_rows,
            settings.market_cache_refresh,
        );
        Ok(Self {
            reads,
            webhooks: WebhookClient::new(destinations)?,
            destinations,
            cipher,
            db,
            settings,
            mailer,
        })
    }

    pub fn cipher(&self) -> &FieldCipher {
        &self.cipher
    }
}
