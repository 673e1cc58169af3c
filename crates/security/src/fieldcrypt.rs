//! Field encryption at rest (DESIGN.md item 14): seals single column values, such as TOTP secrets and
//! webhook secrets, with XChaCha20-Poly1305 under the data key ring (`TRADESIGNAL_DATA_KEYS`, parsed
//! with [`keys::DATA_RING`]). This module owns the stored format, the per-key AEAD key derivation and
//! the checks on the way back in; the ring itself, and where values are stored, live elsewhere.
//!
//! # Stored format
//!
//! ```text
//! v1.<key id>.<base64url without padding of: nonce (24 bytes) || ciphertext || tag (16 bytes)>
//! ```
//!
//! - The version names this whole layout, so a later format can be read alongside this one.
//! - The key id names the ring entry that sealed the value. New values are always sealed with the
//!   ring's active (first) key; any key still in the ring opens them, so keys rotate without a flag
//!   day: old rows decrypt until re-encrypted ([`FieldCipher::needs_reencrypt`] finds them). Key ids
//!   may contain `.`, but base64url never does, so the payload is whatever follows the last `.`.
//! - The nonce is drawn at random for every value; 192 bits make collisions negligible however many
//!   values one key seals, so no counter has to be kept.
//!
//! # Keys
//!
//! The AEAD key is not the ring material itself but `HMAC-SHA256(material, "tradesignal field
//! encryption v1")`: a data key could later serve another purpose (another cipher, a blind index)
//! without the two uses ever sharing a key. HMAC with a fixed label is a PRF, which is all a KDF
//! with one uniformly random 256-bit input needs.
//!
//! # Associated data
//!
//! Callers pass associated data that names where the value lives, written `table.column:row id`
//! (`b"alerts.webhook_secret:<alert id>"`), so a ciphertext copied into another row or column fails
//! to open. The AEAD also authenticates the version and key id from the header, length-prefixed so
//! that no choice of key id and caller data can imitate another: a value's header cannot be edited
//! to name another key or version.
//!
//! Plaintext is returned in [`Zeroizing`] and the derived keys are wiped on drop. Error messages
//! name at most a key id or version, never plaintext or key material.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::{self, KeyRing};

/// The only stored format version so far.
const VERSION: &str = "v1";
/// Domain-separation label for deriving the AEAD key from a ring key.
const KDF_LABEL: &[u8] = b"tradesignal field encryption v1";
/// Ring keys must be exactly this long, as [`keys::DATA_RING`] requires.
const KEY_LEN: usize = 32;
/// XChaCha20 nonce length.
const NONCE_LEN: usize = 24;
/// Poly1305 tag length.
const TAG_LEN: usize = 16;
/// Key ids are at most this long in a ring; longer ids in a stored value are malformed.
const MAX_ID_LEN: usize = 32;
/// Versions are `v` and at most this many digits; anything else is malformed rather than unknown.
const MAX_VERSION_DIGITS: usize = 9;

/// Why a value could not be sealed or opened, or a ring not used. Messages never contain plaintext or
/// key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldCryptError {
    /// Not `version.key-id.base64url` with a payload long enough for a nonce and a tag.
    #[error("encrypted field value is malformed")]
    Malformed,
    /// A well-formed version this code does not read (for example written by a newer release).
    #[error("encrypted field value has unknown format version {0:?}")]
    UnknownVersion(String),
    /// The key that sealed the value is not in the ring (removed too early, or the wrong ring).
    #[error("encrypted field value names key id {0:?}, which is not in the data key ring")]
    UnknownKeyId(String),
    /// Wrong key material, associated data from another row or column, or a tampered value.
    #[error(
        "encrypted field value failed authentication (wrong key, wrong row or column, or tampered)"
    )]
    Authentication,
    /// A ring key is not 256 bits: the ring was not parsed with `DATA_RING`.
    #[error("data key {0:?} is not 256 bits; parse the data key ring with DATA_RING")]
    BadKey(String),
    /// The plaintext is beyond what one XChaCha20-Poly1305 message can hold (about 256 GiB).
    #[error("field value is too long to encrypt")]
    TooLong,
}

/// One ring key, ready to seal and open.
struct FieldKey {
    id: String,
    aead: XChaCha20Poly1305,
}

/// Seals values with the active data key and opens them with whichever ring key they name.
///
/// Built once from the ring at start-up (the derivation runs then, not per value); share it behind an
/// `Arc`. A ring change means a new `FieldCipher`.
pub struct FieldCipher {
    /// Never empty; the first is the active key, as in the ring.
    keys: Vec<FieldKey>,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("FieldCipher")
            .field("key_ids", &ids)
            .finish_non_exhaustive()
    }
}

/// The header fields of a stored value and its decoded payload.
struct Parsed<'a> {
    key_id: &'a str,
    payload: Vec<u8>,
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.')
}

fn looks_like_version(version: &str) -> bool {
    version.strip_prefix('v').is_some_and(|digits| {
        !digits.is_empty()
            && digits.len() <= MAX_VERSION_DIGITS
            && digits.bytes().all(|c| c.is_ascii_digit())
    })
}

/// Splits and decodes a stored value without touching any key.
fn parse(stored: &str) -> Result<Parsed<'_>, FieldCryptError> {
    let (version, rest) = stored.split_once('.').ok_or(FieldCryptError::Malformed)?;
    if version != VERSION {
        return Err(if looks_like_version(version) {
            FieldCryptError::UnknownVersion(version.to_string())
        } else {
            FieldCryptError::Malformed
        });
    }
    let (key_id, encoded) = rest.rsplit_once('.').ok_or(FieldCryptError::Malformed)?;
    if !valid_key_id(key_id) {
        return Err(FieldCryptError::Malformed);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| FieldCryptError::Malformed)?;
    if payload.len() < NONCE_LEN + TAG_LEN {
        return Err(FieldCryptError::Malformed);
    }
    Ok(Parsed { key_id, payload })
}

/// The associated data the AEAD authenticates: version and key id, each length-prefixed, then the
/// caller's data. The prefixes make the encoding injective, so no (key id, data) pair can pass for
/// another.
fn full_aad(key_id: &str, aad: &[u8]) -> Vec<u8> {
    let mut full = Vec::with_capacity(2 * 8 + VERSION.len() + key_id.len() + aad.len());
    for part in [VERSION.as_bytes(), key_id.as_bytes()] {
        full.extend_from_slice(&(part.len() as u64).to_be_bytes());
        full.extend_from_slice(part);
    }
    full.extend_from_slice(aad);
    full
}

/// `HMAC-SHA256(material, KDF_LABEL)` as an XChaCha20-Poly1305 key.
fn derive(id: &str, material: &[u8]) -> Result<XChaCha20Poly1305, FieldCryptError> {
    let bad_key = || FieldCryptError::BadKey(id.to_string());
    if material.len() != KEY_LEN {
        return Err(bad_key());
    }
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(material).map_err(|_| bad_key())?;
    mac.update(KDF_LABEL);
    let mut derived = mac.finalize().into_bytes();
    let aead = XChaCha20Poly1305::new_from_slice(derived.as_slice()).map_err(|_| bad_key());
    derived.as_mut_slice().zeroize();
    aead
}

impl FieldCipher {
    /// Derives an AEAD key for every key of `ring` (parsed with [`keys::DATA_RING`]).
    ///
    /// # Errors
    /// [`FieldCryptError::BadKey`] if a key is not exactly 256 bits.
    pub fn new(ring: &KeyRing) -> Result<Self, FieldCryptError> {
        let keys = ring
            .keys()
            .iter()
            .map(|key| {
                Ok(FieldKey {
                    id: key.id.clone(),
                    aead: derive(&key.id, keys::material(key))?,
                })
            })
            .collect::<Result<Vec<_>, FieldCryptError>>()?;
        if keys.is_empty() {
            // A parsed ring is never empty; refuse rather than index into nothing.
            return Err(FieldCryptError::BadKey(String::new()));
        }
        Ok(Self { keys })
    }

    /// The id of the key new values are sealed with.
    pub fn active_key_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    fn key(&self, id: &str) -> Option<&FieldKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// Seals `plaintext` with the active key and a fresh random nonce, bound to `aad` (which names the
    /// row and column, e.g. `b"alerts.webhook_secret:<alert id>"`). Two calls never give the same
    /// output.
    ///
    /// # Errors
    /// [`FieldCryptError::TooLong`] for a plaintext beyond about 256 GiB (the AEAD's limit).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, FieldCryptError> {
        let key = self
            .keys
            .first()
            .ok_or(FieldCryptError::BadKey(String::new()))?;
        let mut nonce = XNonce::default();
        rand::fill(nonce.as_mut_slice());
        // Sized up front so the plaintext copy is encrypted where it lies and never left behind in a
        // reallocated buffer; wiped on drop in case sealing fails.
        let mut buffer = Zeroizing::new(Vec::with_capacity(
            NONCE_LEN
                .saturating_add(plaintext.len())
                .saturating_add(TAG_LEN),
        ));
        buffer.extend_from_slice(nonce.as_slice());
        buffer.extend_from_slice(plaintext);
        let tag = key
            .aead
            .encrypt_inout_detached(
                &nonce,
                &full_aad(&key.id, aad),
                buffer[NONCE_LEN..].as_mut().into(),
            )
            .map_err(|_| FieldCryptError::TooLong)?;
        buffer.extend_from_slice(tag.as_slice());
        Ok(format!(
            "{VERSION}.{}.{}",
            key.id,
            URL_SAFE_NO_PAD.encode(buffer.as_slice())
        ))
    }

    /// Opens a value sealed by [`encrypt`](Self::encrypt) with any key still in the ring, checking it
    /// against the same `aad` it was sealed with.
    ///
    /// # Errors
    /// [`Malformed`](FieldCryptError::Malformed), [`UnknownVersion`](FieldCryptError::UnknownVersion),
    /// [`UnknownKeyId`](FieldCryptError::UnknownKeyId), or
    /// [`Authentication`](FieldCryptError::Authentication) for a wrong key, wrong `aad` or any change
    /// to the value.
    pub fn decrypt(&self, stored: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, FieldCryptError> {
        let Parsed { key_id, payload } = parse(stored)?;
        let key = self
            .key(key_id)
            .ok_or_else(|| FieldCryptError::UnknownKeyId(key_id.to_string()))?;
        let (nonce, sealed) = payload.split_at(NONCE_LEN);
        let (ciphertext, tag) = sealed.split_at(sealed.len() - TAG_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| FieldCryptError::Malformed)?;
        let tag = Tag::try_from(tag).map_err(|_| FieldCryptError::Malformed)?;
        let mut plaintext = Zeroizing::new(ciphertext.to_vec());
        key.aead
            .decrypt_inout_detached(
                &nonce,
                &full_aad(key_id, aad),
                plaintext.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| FieldCryptError::Authentication)?;
        Ok(plaintext)
    }

    /// Whether `stored` should be rewritten by a key rotation: true unless it is a well-formed value
    /// of the current version sealed with the active key. Unreadable values count too, so a rotation
    /// pass surfaces them (its `decrypt` reports why) instead of skipping them silently. Checks the
    /// header only; authenticity is `decrypt`'s job.
    pub fn needs_reencrypt(&self, stored: &str) -> bool {
        parse(stored).map_or(true, |parsed| parsed.key_id != self.active_key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{DATA_RING, JWT_RING, generate_ring_entry, parse_ring};
    use proptest::prelude::*;

    const AAD: &[u8] = b"alerts.webhook_secret:42";

    fn ring(entries: &[&str]) -> KeyRing {
        parse_ring(&entries.join(","), DATA_RING).expect("valid data ring")
    }

    fn cipher(entries: &[&str]) -> FieldCipher {
        FieldCipher::new(&ring(entries)).expect("valid cipher")
    }

    fn payload_of(stored: &str) -> Vec<u8> {
        let encoded = stored.rsplit_once('.').expect("payload").1;
        URL_SAFE_NO_PAD.decode(encoded).expect("base64url")
    }

    fn with_payload(stored: &str, payload: &[u8]) -> String {
        let header = stored.rsplit_once('.').expect("payload").0;
        format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload))
    }

    #[test]
    fn round_trip_and_format() {
        let c = cipher(&[&generate_ring_entry("k1", 32)]);
        for plaintext in [&b""[..], b"x", b"JBSWY3DPEHPK3PXP", &[0xffu8; 1000]] {
            let stored = c.encrypt(plaintext, AAD).expect("sealed");
            assert!(stored.starts_with("v1.k1."), "{stored}");
            assert_eq!(
                payload_of(&stored).len(),
                NONCE_LEN + plaintext.len() + TAG_LEN
            );
            let opened = c.decrypt(&stored, AAD).expect("opens");
            assert_eq!(opened.as_slice(), plaintext);
        }
    }

    #[test]
    fn key_ids_with_dots_round_trip() {
        let c = cipher(&[&generate_ring_entry("2025.06.k", 32)]);
        let stored = c.encrypt(b"secret", AAD).expect("sealed");
        assert!(stored.starts_with("v1.2025.06.k."));
        assert_eq!(
            c.decrypt(&stored, AAD).expect("opens").as_slice(),
            b"secret"
        );
        assert!(!c.needs_reencrypt(&stored));
    }

    #[test]
    fn wrong_aad_fails() {
        let c = cipher(&[&generate_ring_entry("k1", 32)]);
        let stored = c.encrypt(b"secret", AAD).expect("sealed");
        for other in [
            &b"alerts.webhook_secret:43"[..],
            b"users.totp_secret:42",
            b"",
            b"alerts.webhook_secret:42 ",
        ] {
            assert_eq!(
                c.decrypt(&stored, other),
                Err(FieldCryptError::Authentication)
            );
        }
    }

    #[test]
    fn any_flipped_bit_in_nonce_ciphertext_or_tag_fails() {
        let c = cipher(&[&generate_ring_entry("k1", 32)]);
        let stored = c.encrypt(b"a webhook secret", AAD).expect("sealed");
        let payload = payload_of(&stored);
        // Every byte: the nonce (0..24), the ciphertext, the tag (last 16).
        for index in 0..payload.len() {
            for bit in [0x01u8, 0x80] {
                let mut tampered = payload.clone();
                tampered[index] ^= bit;
                assert_eq!(
                    c.decrypt(&with_payload(&stored, &tampered), AAD),
                    Err(FieldCryptError::Authentication),
                    "byte {index}"
                );
            }
        }
        // Dropping or adding bytes fails too.
        let short = &payload[..payload.len() - 1];
        assert!(c.decrypt(&with_payload(&stored, short), AAD).is_err());
        let mut long = payload.clone();
        long.push(0);
        assert!(c.decrypt(&with_payload(&stored, &long), AAD).is_err());
    }

    #[test]
    fn swapped_key_id_fails() {
        let (k2, k1) = (generate_ring_entry("k2", 32), generate_ring_entry("k1", 32));
        let c = cipher(&[&k2, &k1]);
        let stored = c.encrypt(b"secret", AAD).expect("sealed");
        assert!(stored.starts_with("v1.k2."));
        let swapped = stored.replacen("v1.k2.", "v1.k1.", 1);
        assert_eq!(
            c.decrypt(&swapped, AAD),
            Err(FieldCryptError::Authentication)
        );
    }

    #[test]
    fn header_is_authenticated_even_when_two_ids_share_material() {
        // The same material under two ids (an operator's copy-paste): the id is still bound.
        let material = generate_ring_entry("a", 32);
        let encoded = material.split_once(':').expect("entry").1;
        let c = cipher(&[&format!("a:{encoded}"), &format!("b:{encoded}")]);
        let stored = c.encrypt(b"secret", AAD).expect("sealed");
        let renamed = stored.replacen("v1.a.", "v1.b.", 1);
        assert_eq!(
            c.decrypt(&renamed, AAD),
            Err(FieldCryptError::Authentication)
        );
    }

    #[test]
    fn unknown_key_id() {
        let c = cipher(&[&generate_ring_entry("k1", 32)]);
        let stored = c.encrypt(b"secret", AAD).expect("sealed");
        let other = cipher(&[&generate_ring_entry("k9", 32)]);
        assert_eq!(
            other.decrypt(&stored, AAD),
            Err(FieldCryptError::UnknownKeyId("k1".to_string()))
        );
    }

    #[test]
    fn same_id_with_other_material_fails_authentication() {
        let stored = cipher(&[&generate_ring_entry("k1", 32)])
            .encrypt(b"secret", AAD)
            .expect("sealed");
        let other = cipher(&[&generate_ring_entry("k1", 32)]);
        assert_eq!(
            other.decrypt(&stored, AAD),
            Err(FieldCryptError::Authentication)
        );
    }

    #[test]
    fn old_key_still_decrypts_after_rotation() {
        let (k1, k2) = (generate_ring_entry("k1", 32), generate_ring_entry("k2", 32));
        let before = cipher(&[&k1]);
        let old = before.encrypt(b"totp seed", AAD).expect("sealed");
        assert!(!before.needs_reencrypt(&old));

        let after = cipher(&[&k2, &k1]);
        assert_eq!(after.active_key_id(), "k2");
        assert_eq!(
            after.decrypt(&old, AAD).expect("old key opens").as_slice(),
            b"totp seed"
        );
        assert!(after.needs_reencrypt(&old));

        let fresh = after.encrypt(b"totp seed", AAD).expect("sealed");
        assert!(fresh.starts_with("v1.k2."));
        assert!(!after.needs_reencrypt(&fresh));
        // A node still on the old ring cannot read values sealed under the new key.
        assert_eq!(
            before.decrypt(&fresh, AAD),
            Err(FieldCryptError::UnknownKeyId("k2".to_string()))
        );
        // Once k1 leaves the ring, rows not re-encrypted are unreadable: rotate before removing.
        let retired = cipher(&[&k2]);
        assert_eq!(
            retired.decrypt(&old, AAD),
            Err(FieldCryptError::UnknownKeyId("k1".to_string()))
        );
    }

    #[test]
    fn encryptions_of_the_same_plaintext_differ() {
        let c = cipher(&[&generate_ring_entry("k1", 32)]);
        let a = c.encrypt(b"secret", AAD).expect("sealed");
        let b = c.encrypt(b"secret", AAD).expect("sealed");
        assert_ne!(a, b);
        assert_ne!(payload_of(&a)[..NONCE_LEN], payload_of(&b)[..NONCE_LEN]);
    }

    #[test]
    fn malformed_values_are_refused() {
        let c = cipher(&[&generate_ring_entry("k1", 32)]);
        let stored = c.encrypt(b"secret", AAD).expect("sealed");
        let minimal = URL_SAFE_NO_PAD.encode([0u8; NONCE_LEN + TAG_LEN - 1]);
        for bad in [
            String::new(),
            "v1".to_string(),
            "v1.".to_string(),
            "v1.k1".to_string(),
            "v1.k1.".to_string(),
            "v1..AAAA".to_string(),
            "v1.k1.!!!!".to_string(),
            "v1.k1.AAAA=".to_string(),
            format!("v1.k1.{minimal}"),
            format!("v1.{}.{minimal}AA", "k".repeat(33)),
            "V1.k1.AAAA".to_string(),
            "vv.k1.AAAA".to_string(),
            "garbage".to_string(),
            stored[..stored.len() - 1].to_string(),
            format!(" {stored}"),
            format!("{stored}\n"),
        ] {
            let result = c.decrypt(&bad, AAD);
            assert!(
                matches!(
                    result,
                    Err(FieldCryptError::Malformed | FieldCryptError::Authentication)
                ),
                "{bad:?}: {result:?}"
            );
            assert!(c.needs_reencrypt(&bad), "{bad:?}");
        }
        // Cut anywhere, the value never opens.
        for end in 0..stored.len() {
            assert!(c.decrypt(&stored[..end], AAD).is_err(), "{end}");
        }
    }

    #[test]
    fn unknown_versions_are_named() {
        let c = cipher(&[&generate_ring_entry("k1", 32)]);
        let stored = c.encrypt(b"secret", AAD).expect("sealed");
        let v2 = stored.replacen("v1.", "v2.", 1);
        assert_eq!(
            c.decrypt(&v2, AAD),
            Err(FieldCryptError::UnknownVersion("v2".to_string()))
        );
        assert!(c.needs_reencrypt(&v2));
    }

    #[test]
    fn keys_must_be_256_bits() {
        let jwt_ring =
            parse_ring(&generate_ring_entry("j1", 48), JWT_RING).expect("valid JWT ring");
        let err = FieldCipher::new(&jwt_ring).expect_err("48-byte key");
        assert_eq!(err, FieldCryptError::BadKey("j1".to_string()));
    }

    #[test]
    fn nothing_secret_is_printed() {
        let entry = generate_ring_entry("k1", 32);
        let encoded_key = entry.split_once(':').expect("entry").1.to_string();
        let c = cipher(&[&entry]);
        let printed = format!("{c:?}");
        assert!(printed.contains("k1"));
        assert!(!printed.contains(&encoded_key[..16]));
        let stored = c.encrypt(b"hunter2-webhook", AAD).expect("sealed");
        for err in [
            c.decrypt(&stored, b"other").expect_err("wrong aad"),
            c.decrypt(&stored.replacen("v1.k1.", "v1.k7.", 1), AAD)
                .expect_err("unknown id"),
            c.decrypt(&stored[..10], AAD).expect_err("malformed"),
        ] {
            let message = format!("{err} {err:?}");
            assert!(!message.contains("hunter2"), "{message}");
            assert!(!message.contains(&encoded_key[..16]), "{message}");
        }
    }

    proptest! {
        #[test]
        fn decrypt_never_panics_on_arbitrary_strings(text in "\\PC{0,200}") {
            let c = cipher(&[&generate_ring_entry("k1", 32)]);
            prop_assert!(c.decrypt(&text, AAD).is_err());
            let _ = c.needs_reencrypt(&text);
        }

        #[test]
        fn decrypt_never_panics_on_well_shaped_garbage(
            id in "[a-z0-9._-]{0,40}",
            payload in "[A-Za-z0-9_-]{0,120}",
        ) {
            let c = cipher(&[&generate_ring_entry("k1", 32)]);
            let text = format!("v1.{id}.{payload}");
            prop_assert!(c.decrypt(&text, AAD).is_err());
            let _ = c.needs_reencrypt(&text);
        }

        #[test]
        fn round_trips_any_value(
            plaintext in prop::collection::vec(any::<u8>(), 0..300),
            aad in prop::collection::vec(any::<u8>(), 0..64),
        ) {
            let c = cipher(&[&generate_ring_entry("k1", 32)]);
            let stored = c.encrypt(&plaintext, &aad).expect("sealed");
            let opened = c.decrypt(&stored, &aad).expect("opens");
            prop_assert_eq!(opened.as_slice(), plaintext.as_slice());
        }
    }
}
