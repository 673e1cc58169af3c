//! `tradesignal audit verify` and `audit export`: walking the sealed audit chain in pages (constant
//! memory however long the trail), and printing it as JSON lines for a SIEM.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use security::audit_chain::{Fault, HeadFault, Verifier};
use security::keyed_hash::KeyedHasher;
use store::Database;
use store::identity::{AuditFilter, StoredAudit};

use crate::admin_cli::with_database;
use crate::config::Settings;

/// Records read per query.
pub(crate) const PAGE: i64 = 1000;

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    Record {
        seq: i64,
        id: String,
        fault: Fault,
    },
    Head(HeadFault),
    /// The tail retention left is not what the key sealed: records were deleted, or the tail moved,
    /// without the key.
    Tail,
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Record { seq, id, fault } => write!(f, "record {seq} (id {id}): {fault}"),
            Self::Head(fault) => write!(f, "{fault}"),
            Self::Tail => f.write_str(
                "the retention tail's seal is wrong (records deleted or the tail moved without the key)",
            ),
        }
    }
}

/// What a walk found.
#[derive(Debug)]
pub struct Report {
    pub checked: u64,
    /// The position the chain head names (compare it with an exported copy to see a rolled-back head).
    pub head: Option<i64>,
    pub legacy: u64,
    /// Records retired by retention before the walk's start (they verify in their exports).
    pub retired: i64,
    pub elapsed: Duration,
    pub broken: Option<Broken>,
}

/// Walks the chain from the start, or from the first record at or after `since` (unix seconds,
/// trusting the link before it), up to the chain head read first: records appended while the walk
/// runs are left for the next one, so a live service never causes a false alarm.
pub async fn verify_chain(
    db: &Database,
    sealer: &KeyedHasher,
    since: Option<i64>,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut attempts = 0;
    loop {
        let tail_before = db.audit_tail().await?.map(|t| t.seq);
        let mut report = walk_chain(db, sealer, since).await?;
        attempts += 1;
        // A retirement that committed during the walk removes the records it was about to read: the
        // walk is taken again from the new tail rather than reported as a break.
        let retired_meanwhile = db.audit_tail().await?.map(|t| t.seq) != tail_before;
        if report.broken.is_none() || !retired_meanwhile || attempts == 3 {
            report.elapsed = started.elapsed();
            return Ok(report);
        }
    }
}

async fn walk_chain(
    db: &Database,
    sealer: &KeyedHasher,
    since: Option<i64>,
) -> anyhow::Result<Report> {
    let started = Instant::now();
    let mut head = db.audit_head().await?;
    let mut end = head.as_ref().map_or(0, |(seq, _, _)| *seq);
    let tail = db.audit_tail().await?;
    if let Some(tail) = &tail
        && !security::audit_chain::tail_is_sealed(
            sealer,
            tail.seq,
            &tail.hash,
            tail.retired,
            &tail.seal,
        )
    {
        return Ok(Report {
            checked: 0,
            legacy: 0,
            head: head.map(|(seq, _, _)| seq),
            retired: tail.retired,
            elapsed: started.elapsed(),
            broken: Some(Broken::Tail),
        });
    }
    let (mut after, mut verifier) = match since {
        // From the tail retention left, or from the first record.
        None => match &tail {
            Some(tail) => (tail.seq, Verifier::from_anchor(sealer, tail.hash.clone())),
            None => (0, Verifier::from_genesis(sealer)),
        },
        Some(ts) => match db.audit_anchor_since(ts).await? {
            Some((after, anchor)) => (after, Verifier::from_anchor(sealer, anchor)),
            // Nothing that recent: only the head is left to check.
            None => (end, Verifier::from_genesis(sealer)),
        },
    };
    let mut broken = None;
    let mut walked_any = false;
    // Set once records no head covers are being checked (to name the first bad one).
    let mut past_head = false;
    'walk: loop {
        while after < end {
            let page: Vec<StoredAudit> = db.audit_page(after, PAGE).await?;
            if page.is_empty() {
                break;
            }
            for record in page.iter().take_while(|r| r.seq <= end) {
                walked_any = true;
                after = record.seq;
                if let Err(fault) = verifier.check(
                    record.seq,
                    &record.prev_hash,
                    &record.hash,
                    &record.canonical(),
                ) {
                    broken = Some(Broken::Record {
                        seq: record.seq,
                        id: record.id.clone(),
                        fault,
                    });
                    break 'walk;
                }
            }
            if page.last().is_some_and(|r| r.seq > end) || (page.len() as i64) < PAGE {
                break;
            }
        }
        if past_head {
            break;
        }
        // Records and the head are committed together, so a record appended while the walk ran is
        // covered by the head read after it.
        let Some(next) = db.audit_page(after, 1).await?.first().map(|r| r.seq) else {
            break;
        };
        let newer = db.audit_head().await?;
        match newer.as_ref().map(|(seq, _, _)| *seq) {
            Some(seq) if seq >= next => {
                head = newer;
                end = seq;
            }
            // Added behind the service's back: check them so the first is named.
            _ => {
                past_head = true;
                end = i64::MAX;
            }
        }
    }
    // A partial walk that found nothing to check only has the head to vouch for.
    let partial_and_empty = since.is_some() && !walked_any;
    if broken.is_none() && past_head && head.is_some() {
        broken = Some(Broken::Head(HeadFault::Mismatch));
    } else if broken.is_none()
        && !partial_and_empty
        && let Err(fault) = verifier.finish(
            head.as_ref()
                .map(|(seq, hash, seal)| (*seq, hash.as_str(), seal.as_str())),
        )
    {
        broken = Some(Broken::Head(fault));
    }
    Ok(Report {
        checked: verifier.checked(),
        legacy: verifier.legacy(),
        head: head.map(|(seq, _, _)| seq),
        retired: tail.map_or(0, |t| t.retired),
        elapsed: started.elapsed(),
        broken,
    })
}

/// Midnight UTC of a `YYYY-MM-DD` day, in unix seconds.
pub fn day_start(text: &str) -> Result<i64, String> {
    time::Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .map(|d| d.midnight().assume_utc().unix_timestamp())
    .map_err(|_| format!("expected a date as YYYY-MM-DD, got {text:?}"))
}

/// The audit chain's sealer from the data key ring; a ring that cannot be read is reported here and
/// ends the command.
pub(crate) fn sealer(settings: &Settings) -> Result<KeyedHasher, ExitCode> {
    match crate::config::data_ring(settings) {
        Ok(ring) => Ok(KeyedHasher::new(&ring, security::audit_chain::LABEL)),
        Err(e) => {
            eprintln!("tradesignal: the data key ring: {e}");
            Err(ExitCode::from(1))
        }
    }
}

pub fn verify(settings: Settings, since: Option<&str>) -> ExitCode {
    let since = match since.map(day_start).transpose() {
        Ok(since) => since,
        Err(message) => {
            eprintln!("tradesignal: {message}");
            return ExitCode::from(2);
        }
    };
    let sealer = match sealer(&settings) {
        Ok(sealer) => sealer,
        Err(code) => return code,
    };
    let settings = std::sync::Arc::new(settings);
    let alert_settings = settings.clone();
    with_database(&settings, |db| async move {
        let settings = alert_settings;
        match verify_chain(&db, &sealer, since).await {
            Err(e) => {
                eprintln!("tradesignal: audit verify could not read the trail: {e}");
                ExitCode::from(1)
            }
            Ok(report) => {
                let legacy = if report.legacy > 0 {
                    format!(
                        " ({} with the unkeyed links of the first release)",
                        report.legacy
                    )
                } else {
                    String::new()
                };
                match report.broken {
                    None => {
                        let head = report.head.map_or_else(
                            || "no records yet".to_string(),
                            |seq| format!("head at record {seq}"),
                        );
                        let retired = if report.retired > 0 {
                            format!(
                                " from the sealed retention tail ({} older records retired into exports; check them with audit verify-export)",
                                report.retired
                            )
                        } else {
                            String::new()
                        };
                        println!(
                            "audit chain intact: {} records checked{legacy}{retired}, {head}, in {:.2}s",
                            report.checked,
                            report.elapsed.as_secs_f64()
                        );
                        ExitCode::SUCCESS
                    }
                    Some(broken) => {
                        // Raised like any alert: stored for the admin view, audited, mailed and
                        // posted to the security webhook.
                        if let Err(e) =
                            report_broken(&settings, db.clone(), &broken.to_string()).await
                        {
                            eprintln!("tradesignal: the alert could not be raised: {e:#}");
                        }
                        println!(
                            "AUDIT CHAIN BROKEN at {broken}; {} records before it verified{legacy} in {:.2}s",
                            report.checked,
                            report.elapsed.as_secs_f64()
                        );
                        ExitCode::from(1)
                    }
                }
            }
        }
    })
}

/// Stores `audit_chain_verification_failed` first (nothing else needed), then audits, mails and posts
/// it through the identity service, as the running service would, and waits for the delivery. Redis
/// out of reach only costs the shared mail limit (an in-process store stands in).
async fn report_broken(
    settings: &std::sync::Arc<Settings>,
    db: Database,
    broken: &str,
) -> anyhow::Result<()> {
    let details = serde_json::json!({"broken": broken});
    let id = db
        .insert_security_alert(
            security::monitoring::AUDIT_CHAIN_VERIFICATION_FAILED,
            "critical",
            None,
            &details,
            crate::identity::now(),
        )
        .await?;
    let kv: std::sync::Arc<dyn security::KvStore> = match &settings.redis_url {
        Some(url) => match store::RedisKv::connect_with_ca(
            url.expose_secret(),
            &settings.redis_prefix,
            settings.redis_ca.as_deref(),
        )
        .await
        {
            Ok(kv) => std::sync::Arc::new(kv),
            Err(e) => {
                eprintln!("tradesignal: Redis unavailable ({e}); delivering the alert without it");
                std::sync::Arc::new(store::MemoryKv::new())
            }
        },
        None => std::sync::Arc::new(store::MemoryKv::new()),
    };
    let mailer = crate::app::mailer(settings)?;
    let state = crate::state::AppState::new(settings.clone(), db, kv, mailer)?;
    state
        .identity
        .announce_audit_verification_failed(id, broken)
        .await;
    Ok(())
}

/// One record as exported: the admin view's fields plus its place in the chain.
pub fn export_line(record: &StoredAudit) -> serde_json::Value {
    serde_json::json!({
        "seq": record.seq,
        "id": record.id,
        "ts": crate::api::responses::rfc3339(record.ts),
        "event": record.event.event,
        "outcome": record.event.outcome.as_str(),
        "actor_id": record.event.actor_id,
        "subject": record.event.subject,
        "session_id": record.event.session_id,
        "api_key_id": record.event.api_key_id,
        "ip": record.event.ip,
        "user_agent": record.event.user_agent,
        "request_id": record.event.request_id,
        "details": record.event.details,
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    })
}

pub fn export(settings: Settings, since: Option<&str>, until: Option<&str>) -> ExitCode {
    let range = since
        .map(day_start)
        .transpose()
        .and_then(|since| Ok((since, until.map(day_start).transpose()?)));
    let (since, until) = match range {
        Ok((since, until)) => (since, until.map(|u| u + 86_399)),
        Err(message) => {
            eprintln!("tradesignal: {message}");
            return ExitCode::from(2);
        }
    };
    with_database(&settings, |db| async move {
        let filter = AuditFilter {
            since,
            until,
            ..AuditFilter::default()
        };
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        let mut after = 0;
        let mut written = 0u64;
        loop {
            let page = match db.audit_page(after, PAGE).await {
                Ok(page) => page,
                Err(e) => {
                    eprintln!("tradesignal: audit export could not read the trail: {e}");
                    return ExitCode::from(1);
                }
            };
            let Some(last) = page.last() else { break };
            after = last.seq;
            for record in page.iter().filter(|r| {
                filter.since.is_none_or(|s| r.ts >= s) && filter.until.is_none_or(|u| r.ts <= u)
            }) {
                if writeln!(out, "{}", export_line(record)).is_err() {
                    return ExitCode::from(1);
                }
                written += 1;
            }
        }
        if out.flush().is_err() {
            return ExitCode::from(1);
        }
        eprintln!("{written} audit records exported");
        ExitCode::SUCCESS
    })
}
