//! `tradesignal ingest form4 PATH…` and `tradesignal ingest congress FILE`. Files are read and
//! parsed in parallel batches while the previous batch is stored; each filing is stored whole or
//! not at all, and filings commit in groups. A progress bar is drawn on a terminal only; the summary always goes to standard
//! output. Exit status: 0 when every file was ingested or skipped as already stored, 2 when some
//! failed (each is listed with its reason), 1 when the run could not start.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};

use crate::admin_cli::with_database;
use crate::config::Settings;
use crate::identity::now;
use crate::market::ingest::{self, DocumentOutcome, IngestSummary};

/// Files parsed per batch; big enough to keep every core busy, small enough to bound memory
/// (at most this many documents of ≤ 5 MiB are held at once).
const BATCH: usize = 500;

fn progress_bar(total: usize, quiet: bool) -> ProgressBar {
    styled_bar(
        "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} files ({per_sec}, eta {eta})",
        total,
        quiet,
    )
}

/// A progress bar drawn on a terminal only, never with `--quiet` (`sync` uses it too).
pub(crate) fn styled_bar(template: &str, total: usize, quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// `ingest form4`.
pub fn form4(settings: Settings, paths: &[PathBuf], quiet: bool) -> ExitCode {
    with_database(&settings, |db| async move {
        let (files, ignored, unreadable) = ingest::collect_files(paths);
        let bar = progress_bar(files.len(), quiet);
        let summary = match ingest_files(&db, files, &bar).await {
            Ok(mut summary) => {
                summary.ignored = ignored;
                summary.failed.splice(0..0, unreadable);
                summary
            }
            Err(e) => {
                bar.abandon();
                eprintln!("tradesignal: ingest stopped: {e}");
                return ExitCode::from(1);
            }
        };
        bar.finish_and_clear();
        print_summary(&summary);
        if summary.failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        }
    })
}

/// Parses batch N+1 on worker threads while batch N is stored. A database error of a whole group
/// stops the run (the groups committed before it stay stored; re-running stores the rest).
pub async fn ingest_files(
    db: &store::Database,
    files: Vec<PathBuf>,
    bar: &ProgressBar,
) -> Result<IngestSummary, store::StoreError> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut summary = IngestSummary::default();
    let mut batches = files.chunks(BATCH).map(<[PathBuf]>::to_vec);
    let spawn = |batch: Vec<PathBuf>| {
        let paths = batch.clone();
        let task = tokio::task::spawn_blocking(move || ingest::parse_files(&batch, threads));
        (task, paths)
    };
    let mut pending = batches.next().map(spawn);
    while let Some((task, paths)) = pending.take() {
        // If the parsing task itself died, every file of its batch is reported, none is lost.
        let parsed = task.await.unwrap_or_else(|_| {
            paths
                .into_iter()
                .map(|path| ingest::Parsed {
                    path,
                    result: Err("the parser stopped unexpectedly".into()),
                })
                .collect()
        });
        pending = batches.next().map(spawn);
        let ready: Vec<(&market::Filing, &[u8])> = parsed
            .iter()
            .filter_map(|item| item.result.as_ref().ok())
            .map(|(filing, bytes)| (filing, bytes.as_slice()))
            .collect();
        let mut stored = ingest::store_batch(db, &ready, now()).await?.into_iter();
        for item in &parsed {
            let source = item.path.display().to_string();
            let outcome = match &item.result {
                Ok(_) => stored.next().unwrap_or(DocumentOutcome::Failed {
                    reason: "not stored".into(),
                }),
                Err(reason) => DocumentOutcome::Failed {
                    reason: reason.clone(),
                },
            };
            summary.record(&source, &outcome);
            bar.inc(1);
        }
    }
    Ok(summary)
}

fn print_summary(summary: &IngestSummary) {
    print_totals(summary);
    if summary.ignored > 0 {
        println!(
            "ignored {} files that are not .xml or .txt",
            summary.ignored
        );
    }
    for (file, reason) in &summary.failed {
        println!("failed: {file}: {reason}");
    }
}

/// The totals of an ingest (also `sync edgar`'s): filings, trades, skipped and failed,
/// supersessions and alerts.
pub(crate) fn print_totals(summary: &IngestSummary) {
    println!(
        "ingested {} filings ({} trades); skipped {} already stored; {} failed",
        summary.filings,
        summary.trades,
        summary.skipped,
        summary.failed.len()
    );
    if summary.superseded > 0 {
        println!(
            "amendments superseded {} earlier filings",
            summary.superseded
        );
    }
    if summary.alerts > 0 {
        println!("queued {} alert deliveries", summary.alerts);
    }
}

/// `ingest congress`.
pub fn congress(settings: Settings, file: &Path, quiet: bool) -> ExitCode {
    with_database(&settings, |db| async move {
        let bar = progress_bar(0, quiet);
        let result = crate::market::congress::ingest_file(&db, file, now(), |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        })
        .await;
        bar.finish_and_clear();
        match result {
            Ok(summary) => {
                println!(
                    "ingested {} congressional trades; skipped {} already stored; {} records rejected",
                    summary.inserted,
                    summary.skipped,
                    summary.rejected.len()
                );
                for (index, reason) in &summary.rejected {
                    println!("rejected: record {index}: {reason}");
                }
                if summary.rejected.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(2)
                }
            }
            Err(e) => {
                eprintln!("tradesignal: {e:#}");
                ExitCode::from(1)
            }
        }
    })
}
