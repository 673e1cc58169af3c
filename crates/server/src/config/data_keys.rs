//! The data key ring (`TRADESIGNAL_DATA_KEYS`): field encryption at rest and the keyed hashes of API
//! keys and backup codes are derived from it. Production requires it; in development without it, a
//! key is generated once into the data directory, readable by its owner only, so sealed values and
//! issued API keys survive a restart.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use security::keys::{self, KeyRing};

use super::Settings;

/// The configured ring, or the development ring kept in the data directory.
pub fn data_ring(settings: &Settings) -> anyhow::Result<Arc<KeyRing>> {
    match &settings.data_keys {
        Some(ring) => Ok(ring.clone()),
        None => development_ring(&settings.data_dir).map(Arc::new),
    }
}

fn development_ring(data_dir: &Path) -> anyhow::Result<KeyRing> {
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
    keys::parse_ring(text.trim(), keys::DATA_RING).map_err(|problems| {
        anyhow::anyhow!(
            "{} is not a valid key ring: {}",
            path.display(),
            problems.join("; ")
        )
    })
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
