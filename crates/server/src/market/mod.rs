//! The market-data service: ingesting filings and disclosures, watchlists and alert rules, and
//! delivering alert matches by email or signed webhook. It knows nothing of HTTP; handlers in
//! `crate::api` parse and authorise, then call in here.

pub mod alerts;
pub mod congress;
pub mod delivery;
pub mod ingest;
pub mod outbound;
pub mod tiers;
pub mod views;
pub mod watchlists;

use std::path::Path;
use std::sync::Arc;

use security::fieldcrypt::FieldCipher;
use security::keys;
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
}

impl MarketService {
    pub fn new(
        settings: Arc<Settings>,
        db: Database,
        mailer: Arc<dyn Mailer>,
    ) -> anyhow::Result<Self> {
        let destinations = if settings.loopback_webhooks_for_tests {
            Destinations::LoopbackForTests
        } else {
            Destinations::Public
        };
        let cipher = match &settings.data_keys {
            Some(ring) => FieldCipher::new(ring)?,
            None => development_cipher(&settings.data_dir)?,
        };
        Ok(Self {
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

/// Without `TRADESIGNAL_DATA_KEYS` (development only; production refuses to start), a data key is
/// generated once and kept in the data directory, readable by its owner only, so webhook secrets
/// survive a restart.
fn development_cipher(data_dir: &Path) -> anyhow::Result<FieldCipher> {
    use anyhow::Context;
    let path = data_dir.join("development-data-keys");
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("cannot create {}", data_dir.display()))?;
            let entry = keys::generate_ring_entry("dev1", 32);
            write_private(&path, &entry)
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::warn!(
                path = %path.display(),
                "TRADESIGNAL_DATA_KEYS not set: generated a development data key"
            );
            entry
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let ring = keys::parse_ring(text.trim(), keys::DATA_RING).map_err(|problems| {
        anyhow::anyhow!(
            "{} is not a valid key ring: {}",
            path.display(),
            problems.join("; ")
        )
    })?;
    Ok(FieldCipher::new(&ring)?)
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}
