//! Keyed hashes of high-value secrets the server must recognise but never store (API keys, backup
//! codes): HMAC-SHA256 under a key derived from the data key ring. A stolen table is useless without
//! the ring, and guessing needs the server. The stored form names the ring key, `<key id>:<hex>`, so
//! the ring rotates without invalidating what older keys hashed.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::keys::{self, KeyRing};

type HmacSha256 = Hmac<Sha256>;

/// One purpose's keys, derived from every key of a ring.
pub struct KeyedHasher {
    /// (ring key id, derived key); the first is the active one.
    keys: Vec<(String, Zeroizing<Vec<u8>>)>,
}

impl std::fmt::Debug for KeyedHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyedHasher")
            .field(
                "key_ids",
                &self.keys.iter().map(|(id, _)| id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    for part in parts {
        mac.update(part);
    }
    Some(mac.finalize().into_bytes().into())
}

impl KeyedHasher {
    /// Derives this purpose's key from each ring key: `HMAC(ring key, label)`. Distinct labels give
    /// unrelated keys, so one ring serves several purposes without two ever sharing a key.
    pub fn new(ring: &KeyRing, label: &str) -> Self {
        let keys = ring
            .keys()
            .iter()
            .map(|key| {
                let derived = hmac(keys::material(key), &[label.as_bytes()])
                    .map(|k| k.to_vec())
                    .unwrap_or_default();
                (key.id.clone(), Zeroizing::new(derived))
            })
            .collect();
        Self { keys }
    }

    /// The stored form of `secret` under the active key.
    pub fn hash(&self, secret: &[u8]) -> String {
        let (id, key) = &self.keys[0];
        let digest = hmac(key, &[secret]).unwrap_or_default();
        format!("{id}:{}", hex::encode(digest))
    }

    /// Whether `secret` is what `stored` was made from; the comparison takes the same time wherever
    /// the two differ. A stored value naming a key no longer in the ring never matches.
    pub fn verify(&self, secret: &[u8], stored: &str) -> bool {
        let Some((id, expected)) = stored.split_once(':') else {
            return false;
        };
        let Some((_, key)) = self.keys.iter().find(|(k, _)| k == id) else {
            return false;
        };
        let Some(digest) = hmac(key, &[secret]) else {
            return false;
        };
        let actual = hex::encode(digest);
        actual.len() == expected.len() && bool::from(actual.as_bytes().ct_eq(expected.as_bytes()))
    }

    /// Whether the ring still holds the key named `id`.
    pub fn has_key(&self, id: &str) -> bool {
        self.keys.iter().any(|(k, _)| k == id)
    }

    /// Whether `stored` was made with an older ring key (worth re-hashing at next use).
    pub fn is_outdated(&self, stored: &str) -> bool {
        stored
            .split_once(':')
            .is_none_or(|(id, _)| id != self.keys[0].0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{DATA_RING, generate_ring_entry, parse_ring};

    fn ring(entries: &[&str]) -> KeyRing {
        parse_ring(&entries.join(","), DATA_RING).expect("ring")
    }

    #[test]
    fn hashes_verify_and_name_their_key() {
        let entry = generate_ring_entry("k1", 32);
        let hasher = KeyedHasher::new(&ring(&[&entry]), "api key");
        let stored = hasher.hash(b"ts_live_secret");
        assert!(stored.starts_with("k1:") && stored.len() == 3 + 64);
        assert!(hasher.verify(b"ts_live_secret", &stored));
        assert!(!hasher.verify(b"ts_live_secreT", &stored));
        assert!(!hasher.verify(b"", &stored));
        for junk in [
            "",
            "k1",
            "k1:",
            "k1:zz",
            "k2:00",
            &stored.replace("k1:", "k9:"),
        ] {
            assert!(!hasher.verify(b"ts_live_secret", junk), "{junk}");
        }
    }

    #[test]
    fn labels_separate_purposes_and_rings_separate_deployments() {
        let entry = generate_ring_entry("k1", 32);
        let a = KeyedHasher::new(&ring(&[&entry]), "api key");
        let b = KeyedHasher::new(&ring(&[&entry]), "backup code");
        assert_ne!(a.hash(b"x"), b.hash(b"x"));
        let other = KeyedHasher::new(&ring(&[&generate_ring_entry("k1", 32)]), "api key");
        assert!(!other.verify(b"x", &a.hash(b"x")));
    }

    #[test]
    fn rotation_keeps_old_hashes_valid() {
        let old = generate_ring_entry("old", 32);
        let new = generate_ring_entry("new", 32);
        let before = KeyedHasher::new(&ring(&[&old]), "api key");
        let stored = before.hash(b"secret");
        let after = KeyedHasher::new(&ring(&[&new, &old]), "api key");
        assert!(after.verify(b"secret", &stored));
        assert!(after.is_outdated(&stored));
        assert!(after.hash(b"secret").starts_with("new:"));
        let removed = KeyedHasher::new(&ring(&[&new]), "api key");
        assert!(!removed.verify(b"secret", &stored));
        assert!(!format!("{after:?}").contains(&new[4..]));
    }
}
