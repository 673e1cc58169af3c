//! `tradesignal sync edgar [--since DATE] [--until DATE]` and `tradesignal sync congress`: a
//! progress bar on a terminal, a summary on standard output, Ctrl-C stops between documents
//! (what was stored stays stored; the next run resumes). Exit status: 0 when everything listed was
//! ingested or found stored, 2 when some documents failed (each listed with its reason), 1 when the
//! sync could not start or had to stop early, 130 when interrupted.

use std::process::ExitCode;

use indicatif::ProgressBar;
use time::Date;

use crate::app;
use crate::commands::runtime;
use crate::config::Settings;
use crate::sync::congress::FeedOutcome;
use crate::sync::edgar::{self, EdgarOptions, EdgarReport, EdgarSync};
use crate::sync::fetch::{Backoff, SourceClient};
use crate::sync::{Progress, Stop};

struct Bar(ProgressBar);

impl Bar {
    fn new(quiet: bool) -> Self {
        Self(crate::ingest_cli::styled_bar(
            "{spinner} [{elapsed_precise}] {msg} {bar:40} {pos}/{len} documents ({per_sec}, eta {eta})",
            0,
            quiet,
        ))
    }
}

impl Progress for Bar {
    fn start(&self, label: &str, total: usize) {
        self.0.set_message(label.to_string());
        self.0.set_length(total as u64);
        self.0.set_position(0);
    }

    fn advance(&self, done: usize) {
        self.0.set_position(done as u64);
    }
}

fn parse_date(flag: &str, text: Option<&str>) -> Result<Option<Date>, ExitCode> {
    let Some(text) = text else { return Ok(None) };
    Date::parse(text, &time::format_description::well_known::Iso8601::DATE)
        .map(Some)
        .map_err(|_| {
            eprintln!("tradesignal: {flag} {text:?} is not a date (YYYY-MM-DD)");
            ExitCode::from(1)
        })
}

/// A stop that fires on Ctrl-C.
fn stop_on_ctrl_c() -> Stop {
    let (tx, stop) = Stop::new();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "tradesignal: stopping after the documents in flight (Ctrl-C again to abort)"
            );
            let _ = tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });
    stop
}

/// `sync edgar`.
pub fn edgar(
    settings: Settings,
    since: Option<&str>,
    until: Option<&str>,
    quiet: bool,
) -> ExitCode {
    let Some(user_agent) = settings.sync.sec_user_agent.clone() else {
        eprintln!(
            "tradesignal: refusing to sync EDGAR: TRADESIGNAL_SEC_USER_AGENT is not set. SEC's fair-access \
             policy asks every client to say who it is: set it to your organisation and a contact email, \
             e.g. TRADESIGNAL_SEC_USER_AGENT=\"Example Corp ops@example.com\""
        );
        return ExitCode::from(1);
    };
    let (since, until) = match (parse_date("--since", since), parse_date("--until", until)) {
        (Ok(since), Ok(until)) => (since, until),
        (Err(code), _) | (_, Err(code)) => return code,
    };
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        eprintln!("tradesignal: --since {since} is after --until {until}");
        return ExitCode::from(1);
    }
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let (db, kv) = match app::connect(&settings).await {
            Ok(connected) => connected,
            Err(e) => {
                eprintln!("tradesignal: {e}");
                return ExitCode::from(1);
            }
        };
        let client = match SourceClient::new(
            "edgar",
            &settings.sync.edgar_url,
            &user_agent,
            Some((kv, settings.sync.edgar_requests_per_sec)),
            Backoff::DEFAULT,
        ) {
            Ok(client) => client,
            Err(e) => {
                eprintln!("tradesignal: {e}");
                return ExitCode::from(1);
            }
        };
        let stop = stop_on_ctrl_c();
        let bar = Bar::new(quiet);
        let sync = EdgarSync {
            db: &db,
            client: &client,
            base: &settings.sync.edgar_url,
            stop: &stop,
            progress: &bar,
        };
        let options = EdgarOptions {
            since,
            until,
            today: time::OffsetDateTime::now_utc().date(),
        };
        let result = edgar::run(&sync, options).await;
        bar.0.finish_and_clear();
        db.close().await;
        match result {
            Ok(report) => {
                print_edgar(&report);
                edgar_exit(&report)
            }
            Err(e) => {
                eprintln!("tradesignal: EDGAR sync did not start: {e}");
                ExitCode::from(1)
            }
        }
    })
}

fn edgar_exit(report: &EdgarReport) -> ExitCode {
    if report.interrupted {
        ExitCode::from(130)
    } else if report.stopped.is_some() {
        ExitCode::from(1)
    } else if !report.ingest.failed.is_empty() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_edgar(report: &EdgarReport) {
    let day = |d: Option<Date>| d.map_or_else(|| "-".to_string(), |d| d.to_string());
    if report.since > report.until {
        println!(
            "EDGAR is synced through {}; nothing to do before tomorrow",
            day(report.checkpoint)
        );
        return;
    }
    println!(
        "synced EDGAR {} to {}: {} days ({} without an index), {} ownership filings listed, {} already stored",
        day(report.since),
        day(report.until),
        report.days_synced,
        report.days_without_index,
        report.listed,
        report.already_stored
    );
    let summary = &report.ingest;
    crate::ingest_cli::print_totals(summary);
    if report.rejected_rows > 0 {
        println!("{} index rows could not be read", report.rejected_rows);
    }
    println!(
        "{} requests to EDGAR ({} answered 429/5xx or cut off, retried)",
        report.requests, report.retried
    );
    if let Some(pending) = report.not_yet_published {
        println!("the index of {pending} is not published yet; the next run starts there");
    }
    println!("checkpoint: {}", day(report.checkpoint));
    for (document, reason) in &summary.failed {
        println!("failed: {document}: {reason}");
    }
    if let Some(why) = &report.stopped {
        println!("stopped early: {why}; run again to resume after the checkpoint");
    }
    if report.interrupted {
        println!("interrupted; run again to resume after the checkpoint");
    }
}

/// `sync congress`.
pub fn congress(settings: Settings, quiet: bool) -> ExitCode {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let db = match app::connect(&settings).await {
            Ok((db, _)) => db,
            Err(e) => {
                eprintln!("tradesignal: {e}");
                return ExitCode::from(1);
            }
        };
        let stop = stop_on_ctrl_c();
        let bar = Bar::new(quiet);
        let result = crate::sync::congress::run(
            &db,
            &settings.sync,
            Backoff::DEFAULT,
            &stop,
            |chamber, done, total| {
                bar.start(chamber, total);
                bar.advance(done);
            },
        )
        .await;
        bar.0.finish_and_clear();
        db.close().await;
        let reports = match result {
            Ok(reports) => reports,
            Err(e) => {
                eprintln!("tradesignal: congressional sync did not start: {e}");
                return ExitCode::from(1);
            }
        };
        let mut code = ExitCode::SUCCESS;
        for report in &reports {
            match &report.outcome {
                FeedOutcome::Ingested(summary) => {
                    println!(
                        "{}: inserted {} trades; skipped {} already stored; rejected {} records",
                        report.chamber,
                        summary.inserted,
                        summary.skipped,
                        summary.rejected.len()
                    );
                    for (index, reason) in &summary.rejected {
                        println!("rejected: {} record {index}: {reason}", report.chamber);
                    }
                }
                FeedOutcome::Unchanged => {
                    println!("{}: unchanged since the last sync", report.chamber);
                }
                FeedOutcome::Failed(why) => {
                    println!("{}: failed: {why}", report.chamber);
                    code = ExitCode::from(1);
                }
            }
        }
        if stop.requested() {
            println!("interrupted; run again to finish");
            return ExitCode::from(130);
        }
        code
    })
}
