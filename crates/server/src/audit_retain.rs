//! Audit retention on the command line: `tradesignal audit retain --before DAY --out FILE` moves the
//! oldest records into a signed JSON-lines export and deletes them, leaving a sealed tail the rest of
//! the chain verifies from; `tradesignal audit verify-export FILE` checks such an export on its own.
//! The trail must verify before anything is retired (retiring a broken stretch would destroy the
//! evidence), and the export is written and synced before anything is deleted.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::ExitCode;

use security::audit_chain::{self, ExportSummary, Verifier};
use security::keyed_hash::KeyedHasher;
use sha2::{Digest, Sha256};
use store::Database;
use store::identity::{AuditEvent, AuditOutcome, RetireError};

use crate::admin_cli::with_database;
use crate::audit_cli::{PAGE, day_start, export_line, sealer, verify_chain};
use crate::config::Settings;

/// The `type` of an export's last line.
const SEAL_LINE: &str = "audit_export_seal";

pub fn retain(settings: Settings, before: &str, out: &Path) -> ExitCode {
    let before = match day_start(before) {
        Ok(ts) => ts,
        Err(message) => {
            eprintln!("tradesignal: {message}");
            return ExitCode::from(2);
        }
    };
    let sealer = match sealer(&settings) {
        Ok(sealer) => sealer,
        Err(code) => return code,
    };
    with_database(&settings, |db| async move {
        match run_retain(&db, &sealer, before, out).await {
            Ok(message) => {
                println!("{message}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("tradesignal: audit retain: {message}");
                ExitCode::from(1)
            }
        }
    })
}

async fn run_retain(
    db: &Database,
    sealer: &KeyedHasher,
    before: i64,
    out: &Path,
) -> Result<String, String> {
    let Some(cut) = db
        .audit_retention_cut(before)
        .await
        .map_err(|e| e.to_string())?
    else {
        return Ok(
            "nothing to retire: no record before that day (the newest record always stays)".into(),
        );
    };
    let report = verify_chain(db, sealer, None)
        .await
        .map_err(|e| format!("the trail could not be read: {e}"))?;
    if let Some(broken) = report.broken {
        return Err(format!(
            "the trail does not verify ({broken}); nothing was retired, so the evidence stays"
        ));
    }
    let start = db
        .audit_tail()
        .await
        .map_err(|e| e.to_string())?
        .map_or(0, |tail| tail.seq);
    let summary = write_export(db, sealer, start, cut, out).await?;
    let retired = match db
        .retire_audit(start, cut, &summary.last_hash, summary.records, sealer)
        .await
    {
        Ok(retired) => retired,
        Err(RetireError::Changed(what)) => {
            return Err(format!(
                "{what}; nothing was retired (the export {} is kept for inspection)",
                out.display()
            ));
        }
        Err(RetireError::Store(e)) => return Err(format!("nothing was retired: {e}")),
    };
    Ok(format!(
        "retired {retired} records (positions {} to {}) into {}; the chain now verifies from a sealed tail at record {}",
        summary.first_seq,
        summary.last_seq,
        out.display(),
        summary.last_seq
    ))
}

/// Writes records `start+1 ..= cut` and their seal line to a new file, synced to disk.
async fn write_export(
    db: &Database,
    sealer: &KeyedHasher,
    start: i64,
    cut: i64,
    out: &Path,
) -> Result<ExportSummary, String> {
    let file = create_private(out).map_err(|e| format!("{}: {e}", out.display()))?;
    let mut writer = std::io::BufWriter::new(file);
    let mut digest = Sha256::new();
    let mut summary = ExportSummary {
        records: 0,
        first_seq: 0,
        last_seq: 0,
        anchor: String::new(),
        last_hash: String::new(),
        lines_sha256: String::new(),
    };
    let mut verifier: Option<Verifier<'_>> = None;
    let mut after = start;
    'pages: while after < cut {
        let page = db
            .audit_page(after, PAGE)
            .await
            .map_err(|e| format!("the trail could not be read: {e}"))?;
        if page.is_empty() {
            break;
        }
        for record in page {
            if record.seq > cut {
                break 'pages;
            }
            if summary.records == 0 {
                summary.first_seq = record.seq;
                summary.anchor = record.prev_hash.clone();
            }
            // Checked again as written: nothing changes between the walk above and the export.
            let verifier = verifier
                .get_or_insert_with(|| Verifier::from_anchor(sealer, record.prev_hash.clone()));
            verifier
                .check(
                    record.seq,
                    &record.prev_hash,
                    &record.hash,
                    &record.canonical(),
                )
                .map_err(|fault| {
                    format!(
                        "record {} changed while it was exported ({fault}); nothing was retired",
                        record.seq
                    )
                })?;
            let mut line = export_line(&record).to_string();
            line.push('\n');
            digest.update(line.as_bytes());
            writer
                .write_all(line.as_bytes())
                .map_err(|e| format!("{}: {e}", out.display()))?;
            summary.records += 1;
            summary.last_seq = record.seq;
            summary.last_hash = record.hash;
            after = record.seq;
        }
    }
    summary.lines_sha256 = hex::encode(digest.finalize());
    let seal_line = serde_json::json!({
        "type": SEAL_LINE,
        "records": summary.records,
        "first_seq": summary.first_seq,
        "last_seq": summary.last_seq,
        "anchor": summary.anchor,
        "last_hash": summary.last_hash,
        "lines_sha256": summary.lines_sha256,
        "seal": audit_chain::seal_export(sealer, &summary),
    });
    writeln!(writer, "{seal_line}").map_err(|e| format!("{}: {e}", out.display()))?;
    let file = writer
        .into_inner()
        .map_err(|e| format!("{}: {e}", out.display()))?;
    file.sync_all()
        .map_err(|e| format!("{} not synced to disk: {e}", out.display()))?;
    // The file's name too, before anything is deleted.
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{} not synced to disk: {e}", dir.display()))?;
    }
    Ok(summary)
}

/// A new file readable by its owner only; an existing file is never overwritten.
fn create_private(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

pub fn verify_export(settings: Settings, file: &Path) -> ExitCode {
    let sealer = match sealer(&settings) {
        Ok(sealer) => sealer,
        Err(code) => return code,
    };
    let reader = match std::fs::File::open(file) {
        Ok(f) => std::io::BufReader::new(f),
        Err(e) => {
            eprintln!("tradesignal: {}: {e}", file.display());
            return ExitCode::from(1);
        }
    };
    match check_export(&sealer, reader) {
        Ok(summary) => {
            // The ends, so a series of exports can be checked to follow on from each other (and the
            // newest to end where the database's tail starts).
            println!(
                "audit export intact: {} records (positions {} to {}), sealed; follows {}, ends with {}",
                summary.records,
                summary.first_seq,
                summary.last_seq,
                summary.anchor,
                summary.last_hash
            );
            ExitCode::SUCCESS
        }
        Err(message) => {
            println!("AUDIT EXPORT BROKEN: {message}");
            ExitCode::from(1)
        }
    }
}

/// Checks an export line by line (bounded memory): each record follows the one before it under its
/// seal, and the last line's seal covers the count, the ends, the anchor and every record line.
pub fn check_export(sealer: &KeyedHasher, reader: impl BufRead) -> Result<ExportSummary, String> {
    let mut digest = Sha256::new();
    let mut verifier: Option<Verifier<'_>> = None;
    let mut seen = ExportSummary {
        records: 0,
        first_seq: 0,
        last_seq: 0,
        anchor: String::new(),
        last_hash: String::new(),
        lines_sha256: String::new(),
    };
    let mut seal_line: Option<serde_json::Value> = None;
    for (number, line) in reader.lines().enumerate() {
        let line = line.map_err(|e| format!("line {}: {e}", number + 1))?;
        if seal_line.is_some() {
            return Err(format!("line {}: text after the seal line", number + 1));
        }
        let value: serde_json::Value = serde_json::from_str(&line)
            .map_err(|_| format!("line {}: not a JSON object", number + 1))?;
        if value["type"] == SEAL_LINE {
            seal_line = Some(value);
            continue;
        }
        let (seq, prev_hash, hash, canonical) = record_of(&value)
            .ok_or_else(|| format!("line {}: not an exported audit record", number + 1))?;
        let verifier = verifier.get_or_insert_with(|| {
            seen.first_seq = seq;
            seen.anchor = prev_hash.clone();
            Verifier::from_anchor(sealer, prev_hash.clone())
        });
        verifier
            .check(seq, &prev_hash, &hash, &canonical)
            .map_err(|fault| format!("record {seq}: {fault}"))?;
        digest.update(line.as_bytes());
        digest.update(b"\n");
        seen.records += 1;
        seen.last_seq = seq;
        seen.last_hash = hash;
    }
    let seal_line = seal_line.ok_or("no seal line: the export is cut short")?;
    seen.lines_sha256 = hex::encode(digest.finalize());
    let claimed = ExportSummary {
        records: seal_line["records"].as_u64().unwrap_or(u64::MAX),
        first_seq: seal_line["first_seq"].as_i64().unwrap_or(-1),
        last_seq: seal_line["last_seq"].as_i64().unwrap_or(-1),
        anchor: seal_line["anchor"].as_str().unwrap_or("").to_string(),
        last_hash: seal_line["last_hash"].as_str().unwrap_or("").to_string(),
        lines_sha256: seal_line["lines_sha256"].as_str().unwrap_or("").to_string(),
    };
    let seal = seal_line["seal"].as_str().unwrap_or("");
    if let Some((key_id, _)) = seal.split_once(':')
        && !sealer.has_key(key_id)
    {
        return Err(format!(
            "sealed with data key {key_id:?}, which is not in this ring: check it with a ring that holds that key"
        ));
    }
    if !audit_chain::export_is_sealed(sealer, &claimed, seal) {
        return Err("the seal line is not sealed by this key ring (changed, or forged)".into());
    }
    if claimed != seen {
        return Err(format!(
            "the records do not match the seal line (sealed {} records {}..={}, found {} records {}..={}): lines were removed, added or changed",
            claimed.records,
            claimed.first_seq,
            claimed.last_seq,
            seen.records,
            seen.first_seq,
            seen.last_seq
        ));
    }
    Ok(seen)
}

/// (seq, prev_hash, hash, canonical encoding) of an exported record line.
fn record_of(value: &serde_json::Value) -> Option<(i64, String, String, Vec<u8>)> {
    let text = |key: &str| value[key].as_str().map(str::to_string);
    let optional = |key: &str| match &value[key] {
        serde_json::Value::Null => Some(None),
        serde_json::Value::String(s) => Some(Some(s.clone())),
        _ => None,
    };
    let ts = time::OffsetDateTime::parse(
        value["ts"].as_str()?,
        &time::format_description::well_known::Rfc3339,
    )
    .ok()?
    .unix_timestamp();
    let outcome = match value["outcome"].as_str()? {
        "success" => AuditOutcome::Success,
        "failure" => AuditOutcome::Failure,
        _ => return None,
    };
    let event = AuditEvent {
        event: text("event")?,
        outcome,
        actor_id: optional("actor_id")?,
        subject: optional("subject")?,
        session_id: optional("session_id")?,
        api_key_id: optional("api_key_id")?,
        ip: optional("ip")?,
        user_agent: optional("user_agent")?,
        request_id: optional("request_id")?,
        details: value["details"].clone(),
    };
    let id = text("id")?;
    let canonical = store::identity::audit::canonical(&id, ts, &event);
    Some((
        value["seq"].as_i64()?,
        text("prev_hash")?,
        text("hash")?,
        canonical,
    ))
}
