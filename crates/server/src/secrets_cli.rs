//! `tradesignal secrets rotate`: after a new data key is prepended to `TRADESIGNAL_DATA_KEYS` (and
//! rolled out to every instance), re-encrypts every sealed value under it in batches, re-seals the
//! audit chain's head and tail, and reports, per older key, what still needs it: keyed hashes (API
//! keys, backup codes) and audit seals cannot be recomputed without their secret or without rewriting
//! the trail, so they move on their own (API keys at their next use, backup codes when replaced,
//! audit records when retired). Resumable (each batch commits on its own, a rerun continues) and safe
//! while instances run (each value is replaced only if it is still the one read).

use std::process::ExitCode;

use security::fieldcrypt::FieldCipher;
use security::keyed_hash::KeyedHasher;
use store::Database;
use store::rotation::SealedColumn;

use crate::admin_cli::with_database;
use crate::config::Settings;

/// What happened to one sealed column.
#[derive(Debug, Default)]
struct ColumnReport {
    checked: u64,
    reencrypted: u64,
    /// Rewritten by a running instance between the read and the write (already under a ring key).
    changed_meanwhile: u64,
    /// Row ids whose value no key in the ring opens.
    unreadable: Vec<String>,
}

pub fn rotate(settings: Settings, batch: i64) -> ExitCode {
    let ring = match crate::config::data_ring(&settings) {
        Ok(ring) => ring,
        Err(e) => {
            eprintln!("tradesignal: the data key ring: {e:#}");
            return ExitCode::from(1);
        }
    };
    let cipher = match FieldCipher::new(&ring) {
        Ok(cipher) => cipher,
        Err(e) => {
            eprintln!("tradesignal: the data key ring: {e}");
            return ExitCode::from(1);
        }
    };
    let sealer = KeyedHasher::new(&ring, security::audit_chain::LABEL);
    let ids: Vec<String> = ring.ids().into_iter().map(str::to_string).collect();
    let batch = batch.clamp(1, 10_000);
    with_database(&settings, |db| async move {
        let active = cipher.active_key_id().to_string();
        println!("re-encrypting sealed values under data key {active:?}");
        let mut failed = false;
        for column in SealedColumn::ALL {
            match reencrypt(&db, &cipher, column, batch).await {
                Ok(report) => {
                    println!(
                        "  {}: {} checked, {} re-encrypted, {} changed by a running instance meanwhile{}",
                        column.name(),
                        report.checked,
                        report.reencrypted,
                        report.changed_meanwhile,
                        if report.unreadable.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", {} that no key in the ring opens (rows {})",
                                report.unreadable.len(),
                                report.unreadable.join(", ")
                            )
                        }
                    );
                    failed |= !report.unreadable.is_empty();
                }
                Err(e) => {
                    eprintln!(
                        "tradesignal: {}: {e} (run the command again to continue)",
                        column.name()
                    );
                    return ExitCode::from(1);
                }
            }
        }
        match db.reseal_audit_ends(&sealer).await {
            Ok(n) => println!("  audit chain head and tail: {n} re-sealed"),
            Err(e) => {
                eprintln!("tradesignal: the audit chain's ends: {e} (run the command again)");
                return ExitCode::from(1);
            }
        }
        let mut sealed_left = std::collections::BTreeMap::<String, u64>::new();
        for column in SealedColumn::ALL {
            match left_under_older_keys(&db, &cipher, column, batch).await {
                Ok(found) => {
                    for (id, n) in found {
                        *sealed_left.entry(id).or_default() += n;
                    }
                }
                Err(e) => {
                    eprintln!(
                        "tradesignal: {}: {e} (run the command again)",
                        column.name()
                    );
                    return ExitCode::from(1);
                }
            }
        }
        let uses = match db.key_use().await {
            Ok(uses) => uses,
            Err(e) => {
                eprintln!("tradesignal: counting what older keys still protect: {e}");
                return ExitCode::from(1);
            }
        };
        for id in ids.iter().filter(|id| **id != active) {
            let found = uses.get(id).cloned().unwrap_or_default();
            let mut needs = Vec::new();
            if let Some(n) = sealed_left.get(id).filter(|n| **n > 0) {
                needs.push(format!(
                    "{n} sealed values (written since by an instance without the new key first in its ring: give every instance the new ring, then run this again)"
                ));
            }
            if found.api_keys > 0 {
                needs.push(format!(
                    "{} API keys (moved to the active key at their next use)",
                    found.api_keys
                ));
            }
            if found.backup_codes > 0 {
                needs.push(format!(
                    "{} unused backup codes (moved when their owners generate new codes)",
                    found.backup_codes
                ));
            }
            if found.audit_records > 0 {
                needs.push(format!(
                    "{} audit records (freed when `tradesignal audit retain` retires them)",
                    found.audit_records
                ));
            }
            if needs.is_empty() {
                println!(
                    "data key {id:?}: nothing needs it any more; remove it from TRADESIGNAL_DATA_KEYS"
                );
            } else {
                println!(
                    "data key {id:?}: keep it in the ring; still needed by {}",
                    needs.join(", ")
                );
            }
        }
        println!(
            "retention exports are sealed with the key that was first when they were written (named in their seal line): keep each retired key with its exports to check them later"
        );
        if failed {
            ExitCode::from(1)
        } else {
            ExitCode::SUCCESS
        }
    })
}

/// Re-encrypts one column's values that are not under the active key, page by page.
async fn reencrypt(
    db: &Database,
    cipher: &FieldCipher,
    column: SealedColumn,
    batch: i64,
) -> Result<ColumnReport, String> {
    let mut report = ColumnReport::default();
    let mut after = String::new();
    loop {
        let page = db
            .sealed_values_page(column, &after, batch)
            .await
            .map_err(|e| e.to_string())?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (id, sealed) in page {
            report.checked += 1;
            if !cipher.needs_reencrypt(&sealed) {
                continue;
            }
            let aad = column.aad(&id);
            let Ok(plain) = cipher.decrypt(&sealed, &aad) else {
                report.unreadable.push(id);
                continue;
            };
            let resealed = cipher
                .encrypt(&plain, &aad)
                .map_err(|e| format!("sealing failed: {e}"))?;
            if db
                .replace_sealed_value(column, &id, &sealed, &resealed)
                .await
                .map_err(|e| e.to_string())?
            {
                report.reencrypted += 1;
            } else {
                report.changed_meanwhile += 1;
            }
        }
    }
    Ok(report)
}

/// Per older key id, the values of `column` still sealed under it (after the pass above).
async fn left_under_older_keys(
    db: &Database,
    cipher: &FieldCipher,
    column: SealedColumn,
    batch: i64,
) -> Result<std::collections::BTreeMap<String, u64>, String> {
    let mut left = std::collections::BTreeMap::new();
    let mut after = String::new();
    loop {
        let page = db
            .sealed_values_page(column, &after, batch.max(100))
            .await
            .map_err(|e| e.to_string())?;
        let Some((last, _)) = page.last() else { break };
        after = last.clone();
        for (_, sealed) in page {
            if cipher.needs_reencrypt(&sealed)
                && let Some(key_id) = sealed
                    .strip_prefix("v1.")
                    .and_then(|rest| rest.rsplit_once('.'))
                    .map(|(id, _)| id.to_string())
            {
                *left.entry(key_id).or_default() += 1;
            }
        }
    }
    Ok(left)
}
