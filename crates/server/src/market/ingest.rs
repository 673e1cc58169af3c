//! Ingesting Form 3/4/5 filings from files, folders or a request body: parse (in parallel, off the
//! async runtime), then store each filing whole or not at all (committed in groups; a failing
//! group is stored again one filing at a time). Idempotent: a filing already stored (same accession number, or the same bytes when it
//! has none) is skipped. One bad file never stops the rest; every failure is reported with its
//! reason.

use std::path::{Path, PathBuf};

use market::form4::{self, Filing};
use sha2::{Digest, Sha256};
use store::Database;
use store::market::{IngestContext, StoreOutcome};

use super::tiers;

/// What happened to one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentOutcome {
    Stored {
        filing_id: String,
        trades: usize,
        alerts: usize,
        superseded: usize,
        superseded_by: Option<String>,
    },
    Duplicate {
        filing_id: String,
    },
    Failed {
        reason: String,
    },
}

/// Totals of an ingest run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub filings: usize,
    pub trades: usize,
    pub skipped: usize,
    pub superseded: usize,
    pub alerts: usize,
    /// Files in the given folders that are not `.xml` or `.txt`, left alone.
    pub ignored: usize,
    /// (file, reason) for every document that could not be ingested.
    pub failed: Vec<(String, String)>,
}

impl IngestSummary {
    pub fn record(&mut self, source: &str, outcome: &DocumentOutcome) {
        match outcome {
            DocumentOutcome::Stored {
                trades,
                alerts,
                superseded,
                ..
            } => {
                self.filings += 1;
                self.trades += trades;
                self.alerts += alerts;
                self.superseded += superseded;
            }
            DocumentOutcome::Duplicate { .. } => self.skipped += 1,
            DocumentOutcome::Failed { reason } => {
                self.failed.push((source.to_string(), reason.clone()));
            }
        }
    }
}

/// How a filing is recognised again: by accession number when known, else by its bytes.
pub fn dedup_key(filing: &Filing, bytes: &[u8]) -> String {
    match &filing.accession_number {
        Some(accession) => format!("acc:{accession}"),
        None => {
            format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
        }
    }
}

/// Parses one document; `file_name` may supply the accession number bare XML lacks.
pub fn parse(bytes: &[u8], file_name: Option<&str>) -> Result<Filing, String> {
    let mut filing = form4::parse_document(bytes).map_err(|e| e.to_string())?;
    if filing.accession_number.is_none() {
        filing.accession_number = file_name.and_then(form4::accession_from_file_name);
    }
    Ok(filing)
}

pub fn context(now: i64) -> IngestContext {
    IngestContext {
        now,
        free_since: tiers::history_start(security::authz::Tier::Free, tiers::today()),
        alert_limit: |tier| tiers::alert_limit(tier.parse().unwrap_or(security::authz::Tier::Free)),
    }
}

fn outcome(stored: StoreOutcome) -> DocumentOutcome {
    match stored {
        StoreOutcome::Stored {
            filing_id,
            trades,
            superseded,
            superseded_by,
            alerts,
        } => DocumentOutcome::Stored {
            filing_id,
            trades,
            alerts,
            superseded,
            superseded_by,
        },
        StoreOutcome::Duplicate { filing_id } => DocumentOutcome::Duplicate { filing_id },
        StoreOutcome::Conflict { filing_id } => DocumentOutcome::Failed {
            reason: format!(
                "filing {filing_id} already stored under this accession number has another issuer, form or \
                 reporting owners; the stored one is kept"
            ),
        },
    }
}

/// Stores parsed filings (see `Database::store_filings`): the outcome of each, in order. A filing whose own write failed is reported as failed with the database's reason; an
/// error of the whole batch (the commit) is the `Err`.
pub async fn store_batch(
    db: &Database,
    filings: &[(&Filing, &[u8])],
    now: i64,
) -> Result<Vec<DocumentOutcome>, store::StoreError> {
    let keys: Vec<String> = filings
        .iter()
        .map(|(filing, bytes)| dedup_key(filing, bytes))
        .collect();
    let batch: Vec<(&Filing, &str)> = filings
        .iter()
        .zip(&keys)
        .map(|((filing, _), key)| (*filing, key.as_str()))
        .collect();
    let results = db.store_filings(&batch, context(now)).await?;
    Ok(results
        .into_iter()
        .map(|result| match result {
            Ok(stored) => outcome(stored),
            // The operator running the ingest sees the database's own reason.
            Err(e) => DocumentOutcome::Failed {
                reason: format!("the database refused this filing: {e}"),
            },
        })
        .collect())
}

/// Stores a parsed filing.
pub async fn store(
    db: &Database,
    filing: &Filing,
    bytes: &[u8],
    now: i64,
) -> Result<DocumentOutcome, store::StoreError> {
    let key = dedup_key(filing, bytes);
    Ok(outcome(db.store_filing(filing, &key, context(now)).await?))
}

/// Parses and stores one document (the admin endpoint). Parsing runs on the blocking pool.
pub async fn ingest_bytes(
    db: &Database,
    bytes: bytes::Bytes,
    now: i64,
) -> Result<DocumentOutcome, store::StoreError> {
    let parsed = tokio::task::spawn_blocking({
        let bytes = bytes.clone();
        move || parse(&bytes, None)
    })
    .await
    .unwrap_or_else(|_| Err("the parser stopped unexpectedly".into()));
    match parsed {
        Ok(filing) => store(db, &filing, &bytes, now).await,
        Err(reason) => Ok(DocumentOutcome::Failed { reason }),
    }
}

/// Every file the paths name: files as given, folders walked recursively for `.xml` and `.txt`
/// files (symbolic links to folders are not followed, so a link loop cannot trap the walk).
/// Returns the files in a stable order, the number of other files ignored, and paths that could
/// not be read.
pub fn collect_files(paths: &[PathBuf]) -> (Vec<PathBuf>, usize, Vec<(String, String)>) {
    let mut files = Vec::new();
    let mut ignored = 0;
    let mut failed = Vec::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk(path, &mut files, &mut ignored, &mut failed),
            Ok(_) => files.push(path.clone()),
            Err(e) => failed.push((path.display().to_string(), io_reason(&e))),
        }
    }
    (files, ignored, failed)
}

fn walk(
    dir: &Path,
    files: &mut Vec<PathBuf>,
    ignored: &mut usize,
    failed: &mut Vec<(String, String)>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            failed.push((dir.display().to_string(), io_reason(&e)));
            return;
        }
    };
    let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for child in children {
        let Ok(meta) = std::fs::symlink_metadata(&child) else {
            continue;
        };
        if meta.is_dir() {
            walk(&child, files, ignored, failed);
        } else if is_filing_file(&child) && !meta.file_type().is_symlink()
            || is_filing_link(&child, &meta)
        {
            files.push(child);
        } else {
            *ignored += 1;
        }
    }
}

fn is_filing_link(path: &Path, meta: &std::fs::Metadata) -> bool {
    meta.file_type().is_symlink()
        && is_filing_file(path)
        && std::fs::metadata(path).is_ok_and(|m| m.is_file())
}

fn is_filing_file(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("xml") || e.eq_ignore_ascii_case("txt"))
}

fn io_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::NotFound => "no such file or folder".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => format!("cannot read: {error}"),
    }
}

/// Reads a file, refusing one larger than the parser accepts before reading it.
pub fn read_document(path: &Path) -> Result<Vec<u8>, String> {
    let limit = form4::Limits::DEFAULT.max_input_bytes;
    let meta = std::fs::metadata(path).map_err(|e| io_reason(&e))?;
    if meta.len() > limit as u64 {
        return Err(format!(
            "the file is {} bytes, over the {limit}-byte limit",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| io_reason(&e))
}

/// A file read and parsed, ready to store.
pub struct Parsed {
    pub path: PathBuf,
    pub result: Result<(Filing, Vec<u8>), String>,
}

/// Reads and parses `files` on `threads` OS threads, preserving order.
pub fn parse_files(files: &[PathBuf], threads: usize) -> Vec<Parsed> {
    let threads = threads.clamp(1, files.len().max(1));
    let chunk = files.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|path| {
                            let name = path.file_name().and_then(|n| n.to_str());
                            // A parser panic (a bug) fails this file alone, with its name.
                            let result = std::panic::catch_unwind(|| {
                                read_document(path)
                                    .and_then(|bytes| parse(&bytes, name).map(|f| (f, bytes)))
                            })
                            .unwrap_or_else(|_| Err("the parser stopped unexpectedly".into()));
                            Parsed {
                                path: path.clone(),
                                result,
                            }
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![Parsed {
                        path: PathBuf::from("?"),
                        result: Err("the parser stopped unexpectedly".into()),
                    }]
                })
            })
            .collect()
    })
}
