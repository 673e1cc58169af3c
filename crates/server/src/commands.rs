//! What each subcommand does. Output for people goes to stdout/stderr as plain text; the server's own
//! logs are JSON.

use std::collections::HashMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use security::{keys, random};

use crate::app;
use crate::config::{self, ConfigErrors, Settings};
use crate::http::telemetry;
use crate::state::AppState;

/// The process environment as a map; variables that are not valid UTF-8 are skipped (none of ours can
/// be).
pub fn process_env() -> HashMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn load(
    config_path: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<Settings, ConfigErrors> {
    let file = config::config_file(config_path, env);
    config::load(file.as_deref(), env)
}

/// Loads and validates; on failure prints every problem.
pub fn load_valid(
    config_path: Option<&Path>,
    env: &HashMap<String, String>,
) -> Result<Settings, ExitCode> {
    let settings = load(config_path, env).map_err(|errors| {
        eprintln!("tradesignal: refusing to start: {errors}");
        ExitCode::from(2)
    })?;
    if let Err(errors) = settings.validate() {
        eprintln!(
            "tradesignal: refusing to start in {}: {errors}",
            settings.environment.name()
        );
        return Err(ExitCode::from(2));
    }
    Ok(settings)
}

/// `config check`: the effective configuration, then every problem; non-zero if there are any.
pub fn config_check(config_path: Option<&Path>, env: &HashMap<String, String>) -> ExitCode {
    let settings = match load(config_path, env) {
        Ok(settings) => settings,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(1);
        }
    };
    println!(
        "# effective configuration ({})",
        settings.environment.name()
    );
    for (name, value) in config::effective_report(&settings) {
        println!("{name} = {value}");
    }
    match settings.validate() {
        Ok(()) => {
            println!(
                "# ok: the configuration is valid for {}",
                settings.environment.name()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            eprintln!("{errors}");
            ExitCode::from(1)
        }
    }
}

/// `secrets generate`: dotenv lines with fresh random values.
pub fn secrets_generate() -> ExitCode {
    let date = time::OffsetDateTime::now_utc().date();
    let kid = format!(
        "k{:04}{:02}{:02}-{}",
        date.year(),
        u8::from(date.month()),
        date.day(),
        &random::token(3)
    );
    println!(
        "TRADESIGNAL_JWT_KEYS={}",
        keys::generate_ring_entry(&kid, 32)
    );
    println!(
        "TRADESIGNAL_DATA_KEYS={}",
        keys::generate_ring_entry("v1", 32)
    );
    println!("TRADESIGNAL_METRICS_TOKEN={}", random::token(32));
    ExitCode::SUCCESS
}

pub fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("tradesignal: cannot start the async runtime: {e}");
            ExitCode::from(1)
        })
}

/// `migrate`.
pub fn migrate(settings: Settings) -> ExitCode {
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        match app::connect(&settings).await {
            Ok((db, _)) => {
                println!("migrations applied ({})", db.backend().name());
                match db.fill_email_keys().await {
                    Ok(collisions) if collisions.is_empty() => ExitCode::SUCCESS,
                    Ok(collisions) => {
                        println!(
                            "{} account(s) have an email address that differs from an older account's only in case; \
                             each still signs in with its exact address and neither casing can be registered again. \
                             Resolve each pair (change or disable one):",
                            collisions.len()
                        );
                        for (id, holder) in collisions {
                            println!("  user {id} (older account: {holder})");
                        }
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("tradesignal: {e}");
                        ExitCode::from(1)
                    }
                }
            }
            Err(e) => {
                eprintln!("tradesignal: {e}");
                ExitCode::from(1)
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}

/// `serve`.
pub fn serve(settings: Settings) -> ExitCode {
    telemetry::init(&settings.log_filter);
    let runtime = match runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let settings = Arc::new(settings);
        let (db, kv) = match app::connect_to_serve(&settings).await {
            Ok(connected) => connected,
            Err(e) => {
                eprintln!("tradesignal: cannot start: {e}");
                if let Some(hint) = e.hint() {
                    eprintln!("tradesignal: hint: {hint}");
                }
                return ExitCode::from(1);
            }
        };
        let listener = match app::bind(settings.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("tradesignal: cannot start: {e}");
                return ExitCode::from(1);
            }
        };
        let mailer = match app::mailer(&settings) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("tradesignal: cannot start: {e}");
                return ExitCode::from(1);
            }
        };
        let state = match AppState::new(settings.clone(), db.clone(), kv, mailer) {
            Ok(state) => state,
            Err(e) => {
                eprintln!("tradesignal: cannot start: {e:#}");
                return ExitCode::from(1);
            }
        };
        if let Some(addr) = settings.metrics_listen {
            match app::bind(addr).await {
                Ok(listener) => {
                    let metrics = app::metrics_router(state.clone());
                    tokio::spawn(async move {
                        if let Err(e) = axum::serve(listener, metrics).await {
                            tracing::error!(error = %e, "metrics listener stopped");
                        }
                    });
                }
                Err(e) => {
                    eprintln!("tradesignal: cannot start: {e}");
                    return ExitCode::from(1);
                }
            }
        }
        // Before serving: the first request already sees the sample data.
        if settings.loads_sample_data() {
            match crate::market::sample::load_if_empty(&db, crate::identity::now()).await {
                Ok(Some(summary)) => {
                    tracing::info!(
                        filings = summary.filings.filings,
                        trades = summary.filings.trades,
                        congressional_trades = summary.congress.inserted,
                        "sample filings loaded into an empty database"
                    );
                    eprintln!(
                        "The database held no filings: loaded {} sample filings ({} trades) from sample/form4 \
                         (real SEC EDGAR filings) and {} congressional trades from sample/congress (real Senate \
                         disclosures). TRADESIGNAL_SAMPLE_DATA=off starts empty; production never loads them.",
                        summary.filings.filings, summary.filings.trades, summary.congress.inserted
                    );
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "sample filings not loaded"),
            }
        }
        let local = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        if db.count_users().await.is_ok_and(|n| n == 0) {
            eprintln!(
                "No accounts yet. Open {} in a browser to create one, or create the first administrator \
                 with:\n  tradesignal admin create-user --email you@example.com --role super_admin --tier pro --password-stdin",
                settings.public_link("/register")
            );
        }
        tracing::info!(
            environment = settings.environment.name(),
            database = db.backend().name(),
            kv = state.kv.backend(),
            listen = %local,
            "tradesignal started"
        );
        eprintln!(
            "TradeSignal ({}) listening on http://{local} — public URL {}",
            settings.environment.name(),
            settings.public_url
        );
        if crate::web::outbox::enabled(&settings) {
            eprintln!(
                "Mail is not sent in development: read it (verification links included) on this machine at {}",
                settings.public_link(&format!("/dev/outbox?key={}", state.dev_outbox_key))
            );
        }
        // The alert delivery worker stops when the server does (dropping `stop` wakes it).
        let (stop, stopped) = tokio::sync::watch::channel(());
        let worker = tokio::spawn(crate::market::delivery::run(state.market.clone(), {
            let mut stopped = stopped;
            async move {
                let _ = stopped.changed().await;
            }
        }));
        // Before requests are served, so the first sign-in already meets the padded timing.
        if let Err(e) = state.identity.calibrate_legacy_hashes().await {
            tracing::warn!(error = %e, "legacy hash timing not measured");
        }
        // API-key usage is written every few seconds and once more at shutdown.
        let usage = tokio::spawn(state.identity.clone().run_usage_flusher({
            let mut stopped = stop.subscribe();
            async move {
                let _ = stopped.changed().await;
            }
        }));
        // Scheduled syncs stop between documents at shutdown; what they stored stays stored.
        let (stop_syncs, syncs_stop) = crate::sync::Stop::new();
        let syncs = crate::sync::schedule::spawn(&settings, &db, &state.kv, &syncs_stop);
        let result = app::serve(listener, app::router(state.clone()), shutdown_signal()).await;
        drop(stop);
        let _ = stop_syncs.send(true);
        for sync in syncs {
            let _ = sync.await;
        }
        let _ = worker.await;
        let _ = usage.await;
        // Every audit event of the requests served is written before the process ends.
        state.identity.flush_audit().await;
        db.close().await;
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("tradesignal: server error: {e}");
                ExitCode::from(1)
            }
        }
    })
}
