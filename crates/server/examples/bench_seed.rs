//! Fills an empty database with a generated trade data set for `scripts/bench-read`, which then
//! starts `tradesignal serve` on it and measures with wrk. Prints `{"seed_seconds": …}`.
//!
//! Usage: `bench_seed --database-url URL [--trades N] [--companies N] [--insiders N]`

use std::time::Instant;

#[path = "support/seed.rs"]
mod seed;

fn main() -> std::process::ExitCode {
    let mut url = None;
    let mut set = seed::DataSet {
        trades: 200_000,
        companies: 100,
        insiders: 20_000,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_default();
        let number = || value.parse::<i64>().ok().filter(|n| *n > 0);
        match flag.as_str() {
            "--database-url" => url = Some(value.clone()),
            "--trades" => set.trades = number().unwrap_or(set.trades),
            "--companies" => set.companies = number().unwrap_or(set.companies),
            "--insiders" => set.insiders = number().unwrap_or(set.insiders),
            other => {
                eprintln!("bench_seed: unknown argument {other}");
                return std::process::ExitCode::from(2);
            }
        }
    }
    let Some(url) = url else {
        eprintln!("bench_seed: --database-url is required");
        return std::process::ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("bench_seed: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    runtime.block_on(async {
        let db = match store::Database::connect(&url, &store::DbOptions::default()).await {
            Ok(db) => db,
            Err(e) => {
                eprintln!("bench_seed: {e}");
                return std::process::ExitCode::from(1);
            }
        };
        if let Err(e) = db.migrate().await {
            eprintln!("bench_seed: {e}");
            return std::process::ExitCode::from(1);
        }
        let started = Instant::now();
        seed::seed(&db, set).await;
        db.close().await;
        println!(
            "{{\"seed_seconds\": {:.1}, \"trades\": {}, \"companies\": {}, \"insiders\": {}, \"trades_per_filing\": {}, \"first_insider_cik\": {}}}",
            started.elapsed().as_secs_f64(),
            set.trades,
            set.companies,
            set.insiders,
            seed::TRADES_PER_FILING,
            seed::FIRST_INSIDER_CIK
        );
        std::process::ExitCode::SUCCESS
    })
}
