//! The audit trail's chain of seals. Each record is sealed with HMAC-SHA256 under a key derived from
//! the data key ring (the seal names the ring key: `<key id>:<hex>`) over the previous record's seal
//! and the record's canonical encoding, so a record cannot be changed, removed, added or moved without
//! the key. A single head (the last record's position and seal, itself sealed) makes removing the
//! newest records visible too. Records written before sealing existed carry an unkeyed SHA-256 link;
//! they verify as such, and once a sealed record has appeared an unkeyed one is a forgery.
//!
//! Retention retires the oldest records into a signed export and leaves a sealed tail (the last
//! retired record's position and seal): the remaining chain verifies from the tail as it did from the
//! start, and the export verifies on its own (its lines are the chain, its last line a seal over them).

use sha2::{Digest, Sha256};

use crate::keyed_hash::KeyedHasher;

/// The key derivation label of the audit chain.
pub const LABEL: &str = "tradesignal audit chain v1";
/// What the first record links to.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Prefixes keep the two kinds of sealed message apart: a record seal can never pass for a head seal.
const RECORD_TAG: &[u8] = b"audit record\n";

fn message(prev: &str, canonical: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(RECORD_TAG.len() + prev.len() + 1 + canonical.len());
    message.extend_from_slice(RECORD_TAG);
    message.extend_from_slice(prev.as_bytes());
    message.push(b'\n');
    message.extend_from_slice(canonical);
    message
}

fn head_message(seq: i64, hash: &str) -> Vec<u8> {
    format!("audit chain head\n{seq}\n{hash}").into_bytes()
}

fn tail_message(seq: i64, hash: &str, retired: i64) -> Vec<u8> {
    format!("audit chain tail\n{seq}\n{hash}\n{retired}").into_bytes()
}

fn export_message(summary: &ExportSummary) -> Vec<u8> {
    format!(
        "audit export v1\n{}\n{}\n{}\n{}\n{}\n{}",
        summary.records,
        summary.first_seq,
        summary.last_seq,
        summary.anchor,
        summary.last_hash,
        summary.lines_sha256
    )
    .into_bytes()
}

/// What a retention export covers: its records (`first_seq..=last_seq`), the seal the first one
/// follows, the last one's seal (the new tail) and the SHA-256 of the export's record lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportSummary {
    pub records: u64,
    pub first_seq: i64,
    pub last_seq: i64,
    pub anchor: String,
    pub last_hash: String,
    pub lines_sha256: String,
}

/// The seal over an export's summary (its last line).
pub fn seal_export(hasher: &KeyedHasher, summary: &ExportSummary) -> String {
    hasher.hash(&export_message(summary))
}

/// Whether `seal` is the seal of `summary`.
pub fn export_is_sealed(hasher: &KeyedHasher, summary: &ExportSummary, seal: &str) -> bool {
    hasher.verify(&export_message(summary), seal)
}

/// The seal of the chain tail: the last retired record's position and seal, and how many records
/// were retired in all.
pub fn seal_tail(hasher: &KeyedHasher, seq: i64, hash: &str, retired: i64) -> String {
    hasher.hash(&tail_message(seq, hash, retired))
}

/// Whether `seal` is the seal of the tail (`seq`, `hash`, `retired`).
pub fn tail_is_sealed(
    hasher: &KeyedHasher,
    seq: i64,
    hash: &str,
    retired: i64,
    seal: &str,
) -> bool {
    hasher.verify(&tail_message(seq, hash, retired), seal)
}

/// The seal of a record that follows `prev`.
pub fn seal(hasher: &KeyedHasher, prev: &str, canonical: &[u8]) -> String {
    hasher.hash(&message(prev, canonical))
}

/// The seal of the chain head: the newest record's position and seal.
pub fn seal_head(hasher: &KeyedHasher, seq: i64, hash: &str) -> String {
    hasher.hash(&head_message(seq, hash))
}

/// Whether `seal` is the seal of the head (`seq`, `hash`).
pub fn head_is_sealed(hasher: &KeyedHasher, seq: i64, hash: &str, seal: &str) -> bool {
    hasher.verify(&head_message(seq, hash), seal)
}

/// The unkeyed link of records written before sealing existed (the first release's encoding).
pub fn legacy_link(prev: &str, canonical: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical);
    hex::encode(hasher.finalize())
}

/// What a new record links to when the chain's end cannot be trusted (the head is missing or its seal
/// is wrong): never a real seal, so `audit verify` names the new record instead of the tampering
/// being papered over by the next write.
pub const UNTRUSTED_END: &str = "untrusted-chain-end";

/// The seal a new record must link to, given the newest stored record (seq, hash) and the head
/// (seq, hash, seal). The head, not the table, is trusted: rows removed or added at the end are then
/// visible to `audit verify` at the next record instead of being sealed over.
pub fn trusted_end(
    hasher: &KeyedHasher,
    last: Option<(i64, &str)>,
    head: Option<(i64, &str, &str)>,
) -> Result<String, String> {
    match (head, last) {
        (None, None) => Ok(GENESIS.to_string()),
        // Only unkeyed records of the first release: sealing starts from the newest.
        (None, Some((_, hash))) if !hash.contains(':') => Ok(hash.to_string()),
        (None, Some(_)) => Err(UNTRUSTED_END.to_string()),
        (Some((seq, hash, seal)), last) => {
            if !hasher.verify(&head_message(seq, hash), seal) {
                return Err(UNTRUSTED_END.to_string());
            }
            match last {
                Some((last_seq, last_hash)) if last_seq == seq && last_hash == hash => {
                    Ok(hash.to_string())
                }
                // Rows were removed or added after the head: link to the head's record, so the gap
                // shows at the new record.
                _ => Err(hash.to_string()),
            }
        }
    }
}

/// What is wrong with a record, in the order the checks find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// It does not follow the record before it: a record was removed before it, or it was added or
    /// moved here.
    Unlinked,
    /// Its content or seal is not what the key sealed: it was changed, or forged without the key.
    Altered,
    /// It is sealed with a ring key that is no longer in the ring.
    UnknownKey,
    /// An unkeyed link after sealed records: a forgery by someone without the key.
    Downgraded,
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Unlinked => {
                "does not follow the record before it (a record was removed before it, or it was added or moved)"
            }
            Self::Altered => "its content does not match its seal (changed, or forged without the key)",
            Self::UnknownKey => "it is sealed with a key that is not in the data key ring",
            Self::Downgraded => "it carries an unkeyed link after sealed records (forged)",
        })
    }
}

/// What the head says about the chain's end, checked after the last record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadFault {
    /// The head names a record the walk did not end on: the newest records were removed (or the head
    /// was replaced).
    Mismatch,
    /// The head's own seal is wrong, or there are records and no head.
    Altered,
}

impl std::fmt::Display for HeadFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Mismatch => {
                "the chain head names another last record: the newest records were removed or the head replaced"
            }
            Self::Altered => {
                "the chain head is missing or its seal is wrong (records exist that no sealed head covers)"
            }
        })
    }
}

/// Walks records in chain order in constant memory.
pub struct Verifier<'a> {
    hasher: &'a KeyedHasher,
    expected_prev: String,
    sealed_seen: bool,
    checked: u64,
    legacy: u64,
    last: Option<(i64, String)>,
}

impl<'a> Verifier<'a> {
    /// From the first record.
    pub fn from_genesis(hasher: &'a KeyedHasher) -> Self {
        Self::from_anchor(hasher, GENESIS.to_string())
    }

    /// From a record whose predecessor's seal is `anchor` (a partial walk, `--since`), trusted as given.
    pub fn from_anchor(hasher: &'a KeyedHasher, anchor: String) -> Self {
        let sealed_seen = anchor.contains(':');
        Self {
            hasher,
            expected_prev: anchor,
            sealed_seen,
            checked: 0,
            legacy: 0,
            last: None,
        }
    }

    /// Checks the next record.
    pub fn check(
        &mut self,
        seq: i64,
        prev_hash: &str,
        hash: &str,
        canonical: &[u8],
    ) -> Result<(), Fault> {
        if prev_hash != self.expected_prev {
            return Err(Fault::Unlinked);
        }
        if let Some((key_id, _)) = hash.split_once(':') {
            if !self.hasher.has_key(key_id) {
                return Err(Fault::UnknownKey);
            }
            if !self.hasher.verify(&message(prev_hash, canonical), hash) {
                return Err(Fault::Altered);
            }
            self.sealed_seen = true;
        } else {
            if self.sealed_seen {
                return Err(Fault::Downgraded);
            }
            if legacy_link(prev_hash, canonical) != hash {
                return Err(Fault::Altered);
            }
            self.legacy += 1;
        }
        self.expected_prev = hash.to_string();
        self.checked += 1;
        self.last = Some((seq, hash.to_string()));
        Ok(())
    }

    /// Checks the head against where the walk ended (`head`: seq, hash, seal).
    pub fn finish(&self, head: Option<(i64, &str, &str)>) -> Result<(), HeadFault> {
        match (head, &self.last) {
            // An empty trail (a new installation) has no head yet; any stored record means it must.
            (None, None) => Ok(()),
            (None, _) => Err(HeadFault::Altered),
            (Some((seq, hash, head_seal)), last) => {
                if !self.hasher.verify(&head_message(seq, hash), head_seal) {
                    return Err(HeadFault::Altered);
                }
                match last {
                    Some((last_seq, last_hash)) if *last_seq == seq && last_hash == hash => Ok(()),
                    _ => Err(HeadFault::Mismatch),
                }
            }
        }
    }

    /// Records checked so far.
    pub fn checked(&self) -> u64 {
        self.checked
    }

    /// Of those, records with an unkeyed link (written before sealing existed).
    pub fn legacy(&self) -> u64 {
        self.legacy
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{DATA_RING, generate_ring_entry, parse_ring};

    fn hasher(entries: &[&str]) -> KeyedHasher {
        KeyedHasher::new(
            &parse_ring(&entries.join(","), DATA_RING).expect("ring"),
            LABEL,
        )
    }

    /// (seq, prev, hash, canonical) of a sealed chain of `n` records.
    fn chain(h: &KeyedHasher, n: i64) -> Vec<(i64, String, String, Vec<u8>)> {
        let mut prev = GENESIS.to_string();
        (1..=n)
            .map(|seq| {
                let canonical = format!("{{\"event\":\"e{seq}\"}}").into_bytes();
                let hash = seal(h, &prev, &canonical);
                let record = (seq, prev.clone(), hash.clone(), canonical);
                prev = hash;
                record
            })
            .collect()
    }

    fn walk(
        h: &KeyedHasher,
        records: &[(i64, String, String, Vec<u8>)],
        head: Option<(i64, String, String)>,
    ) -> Result<u64, String> {
        let mut verifier = Verifier::from_genesis(h);
        for (seq, prev, hash, canonical) in records {
            verifier
                .check(*seq, prev, hash, canonical)
                .map_err(|f| format!("{seq}: {f:?}"))?;
        }
        verifier
            .finish(head.as_ref().map(|(s, h, m)| (*s, h.as_str(), m.as_str())))
            .map_err(|f| format!("head: {f:?}"))?;
        Ok(verifier.checked())
    }

    fn head_of(
        h: &KeyedHasher,
        records: &[(i64, String, String, Vec<u8>)],
    ) -> (i64, String, String) {
        let (seq, _, hash, _) = records.last().expect("records");
        (*seq, hash.clone(), seal_head(h, *seq, hash))
    }

    #[test]
    fn an_untouched_chain_verifies() {
        let h = hasher(&[&generate_ring_entry("k1", 32)]);
        let records = chain(&h, 5);
        assert_eq!(walk(&h, &records, Some(head_of(&h, &records))), Ok(5));
        assert_eq!(walk(&h, &[], None), Ok(0));
    }

    #[test]
    fn each_kind_of_tampering_names_the_first_broken_record() {
        let h = hasher(&[&generate_ring_entry("k1", 32)]);
        let records = chain(&h, 5);
        let head = Some(head_of(&h, &records));

        let mut modified = records.clone();
        modified[2].3 = b"{\"event\":\"other\"}".to_vec();
        assert_eq!(walk(&h, &modified, head.clone()), Err("3: Altered".into()));

        let mut deleted = records.clone();
        deleted.remove(1);
        assert_eq!(walk(&h, &deleted, head.clone()), Err("3: Unlinked".into()));

        let mut reordered = records.clone();
        reordered.swap(1, 2);
        assert_eq!(
            walk(&h, &reordered, head.clone()),
            Err("3: Unlinked".into())
        );

        // Inserted by someone without the key: linked correctly, sealed wrongly.
        let mut inserted = records.clone();
        let forged_canonical = b"{\"event\":\"forged\"}".to_vec();
        let attacker = hasher(&[&generate_ring_entry("k1", 32)]);
        let forged = seal(&attacker, &records[1].2, &forged_canonical);
        inserted.insert(2, (3, records[1].2.clone(), forged, forged_canonical));
        assert_eq!(walk(&h, &inserted, head.clone()), Err("3: Altered".into()));

        // An unkeyed link anyone can compute, after sealed records.
        let mut downgraded = records.clone();
        let canonical = b"{\"event\":\"forged\"}".to_vec();
        let link = legacy_link(&records[4].2, &canonical);
        downgraded.push((6, records[4].2.clone(), link, canonical));
        assert_eq!(
            walk(&h, &downgraded, head.clone()),
            Err("6: Downgraded".into())
        );

        let mut truncated = records.clone();
        truncated.pop();
        assert_eq!(
            walk(&h, &truncated, head.clone()),
            Err("head: Mismatch".into())
        );
        assert_eq!(walk(&h, &records, None), Err("head: Altered".into()));
        let (seq, hash, _) = head_of(&h, &records);
        assert_eq!(
            walk(
                &h,
                &records,
                Some((seq, hash, seal_head(&attacker, 5, "x")))
            ),
            Err("head: Altered".into())
        );
    }

    #[test]
    fn new_records_link_to_the_head_not_to_a_tampered_table() {
        let h = hasher(&[&generate_ring_entry("k1", 32)]);
        let records = chain(&h, 3);
        let (seq, hash, head_seal) = head_of(&h, &records);
        let head = Some((seq, hash.as_str(), head_seal.as_str()));
        let last = |i: usize| Some((records[i].0, records[i].2.as_str()));
        assert_eq!(trusted_end(&h, None, None), Ok(GENESIS.to_string()));
        assert_eq!(trusted_end(&h, last(2), head), Ok(hash.clone()));
        // The newest record removed: the next one links past the gap and verify names it.
        assert_eq!(trusted_end(&h, last(1), head), Err(hash.clone()));
        // The head removed, or forged without the key.
        assert_eq!(
            trusted_end(&h, last(2), None),
            Err(UNTRUSTED_END.to_string())
        );
        let forged = seal_head(&hasher(&[&generate_ring_entry("k1", 32)]), seq, &hash);
        assert_eq!(
            trusted_end(&h, last(2), Some((seq, hash.as_str(), forged.as_str()))),
            Err(UNTRUSTED_END.to_string())
        );
        // Records of the first release only: sealing starts from the newest.
        assert_eq!(
            trusted_end(&h, Some((7, "abc")), None),
            Ok("abc".to_string())
        );
        // A record seal never passes for a head seal.
        let record_seal = seal(&h, "x", b"y");
        assert_ne!(seal_head(&h, 1, "x"), record_seal);
    }

    #[test]
    fn legacy_links_verify_before_sealing_and_rotation_keeps_old_seals() {
        let old = generate_ring_entry("old", 32);
        let new = generate_ring_entry("new", 32);
        let mut records = Vec::new();
        let mut prev = GENESIS.to_string();
        for seq in 1..=2 {
            let canonical = format!("legacy {seq}").into_bytes();
            let hash = legacy_link(&prev, &canonical);
            records.push((seq, prev.clone(), hash.clone(), canonical));
            prev = hash;
        }
        let before = hasher(&[&old]);
        let canonical = b"sealed".to_vec();
        let hash = seal(&before, &prev, &canonical);
        records.push((3, prev, hash, canonical));
        let after = hasher(&[&new, &old]);
        assert_eq!(
            walk(&after, &records, Some(head_of(&after, &records))),
            Ok(3)
        );
        let dropped = hasher(&[&new]);
        assert_eq!(
            walk(&dropped, &records, Some(head_of(&dropped, &records))),
            Err("3: UnknownKey".into())
        );
    }

    #[test]
    fn tails_and_exports_are_sealed_apart_from_heads_and_records() {
        let h = hasher(&[&generate_ring_entry("k1", 32)]);
        let tail = seal_tail(&h, 5, "k1:ab", 5);
        assert!(tail_is_sealed(&h, 5, "k1:ab", 5, &tail));
        assert!(!tail_is_sealed(&h, 6, "k1:ab", 5, &tail), "moved tail");
        assert!(!tail_is_sealed(&h, 5, "k1:ac", 5, &tail), "other record");
        assert!(!tail_is_sealed(&h, 5, "k1:ab", 4, &tail), "another count");
        // A head seal over the same position and record is not a tail seal.
        assert!(!tail_is_sealed(
            &h,
            5,
            "k1:ab",
            5,
            &seal_head(&h, 5, "k1:ab")
        ));
        let other = hasher(&[&generate_ring_entry("k1", 32)]);
        assert!(!tail_is_sealed(&other, 5, "k1:ab", 5, &tail), "another key");

        let summary = ExportSummary {
            records: 3,
            first_seq: 1,
            last_seq: 3,
            anchor: GENESIS.to_string(),
            last_hash: "k1:cd".into(),
            lines_sha256: "00ff".into(),
        };
        let sealed = seal_export(&h, &summary);
        assert!(export_is_sealed(&h, &summary, &sealed));
        for changed in [
            ExportSummary {
                records: 2,
                ..summary.clone()
            },
            ExportSummary {
                lines_sha256: "00fe".into(),
                ..summary.clone()
            },
            ExportSummary {
                anchor: "k1:00".into(),
                ..summary.clone()
            },
        ] {
            assert!(!export_is_sealed(&h, &changed, &sealed), "{changed:?}");
        }
        assert!(!export_is_sealed(&other, &summary, &sealed));
    }
}
