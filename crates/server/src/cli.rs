//! The `tradesignal` command line.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "tradesignal",
    version,
    about = "TradeSignal: insider-trading intelligence behind a hardened security platform"
)]
pub struct Cli {
    /// Configuration file (default: $TRADESIGNAL_CONFIG, else ./tradesignal.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Administer accounts.
    Admin {
        #[command(subcommand)]
        action: AdminAction,
    },
    /// Ingest market data.
    Ingest {
        #[command(subcommand)]
        action: IngestAction,
    },
    /// Sync market data from its public sources.
    Sync {
        #[command(subcommand)]
        action: SyncAction,
    },
    /// Check and export the audit trail.
    Audit {
        #[command(subcommand)]
        action: AuditAction,
    },
    /// Work with secrets.
    Secrets {
        #[command(subcommand)]
        action: SecretsAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum IngestAction {
    /// Ingest Form 3/4/5 XML files, EDGAR submission .txt files, or folders of them (recursive).
    /// Idempotent: filings already stored are skipped.
    Form4 {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Never show a progress bar (it is shown only on a terminal anyway).
        #[arg(long)]
        quiet: bool,
    },
    /// Ingest congressional trade disclosures (House/Senate Stock Watcher JSON).
    Congress {
        file: PathBuf,
        #[arg(long)]
        quiet: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum SyncAction {
    /// Fetch the Form 3/4/5 filings listed in SEC EDGAR's daily indexes and ingest them. Resumes
    /// after the last day synced; needs TRADESIGNAL_SEC_USER_AGENT. Ctrl-C stops between documents.
    Edgar {
        /// First day (YYYY-MM-DD); default: the day after the checkpoint, else yesterday.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Last day (YYYY-MM-DD); default and latest: today (UTC).
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
        /// Never show a progress bar (it is shown only on a terminal anyway).
        #[arg(long)]
        quiet: bool,
    },
    /// Fetch the configured House/Senate Stock Watcher feeds and ingest new disclosures.
    Congress {
        #[arg(long)]
        quiet: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditAction {
    /// Walk the sealed chain; exit 1 naming the first broken record (changed, removed, added or moved).
    Verify {
        /// Start at the first record of this day (YYYY-MM-DD), trusting the link before it.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
    },
    /// Print records as JSON lines (for a SIEM), oldest first.
    Export {
        /// First day (YYYY-MM-DD), inclusive.
        #[arg(long, value_name = "DATE")]
        since: Option<String>,
        /// Last day (YYYY-MM-DD), inclusive.
        #[arg(long, value_name = "DATE")]
        until: Option<String>,
    },
    /// Retire records older than a day into a signed JSON-lines export, then delete them; the
    /// remaining chain verifies from a sealed tail. The trail must verify first.
    Retain {
        /// Retire records before this day (YYYY-MM-DD); the newest record always stays.
        #[arg(long, value_name = "DATE")]
        before: String,
        /// The export to write (must not exist yet; written and synced before anything is deleted).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check a retention export on its own: its records' chain and its seal.
    VerifyExport { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum ConfigAction {
    /// Validate the configuration for its environment and print it with secrets redacted.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum SecretsAction {
    /// Print fresh values for every secret variable as NAME=value lines.
    Generate,
    /// Re-encrypt every sealed value under the data ring's first key and report what older keys
    /// still protect (run after prepending a new key to TRADESIGNAL_DATA_KEYS on every instance).
    Rotate {
        /// Rows read and rewritten per batch.
        #[arg(long, default_value_t = 500)]
        batch: i64,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminAction {
    /// Create a verified user (the first administrator); the password is read from standard input.
    CreateUser {
        #[arg(long)]
        email: String,
        /// user, support or super_admin
        #[arg(long, default_value = "user")]
        role: String,
        /// free, pro or enterprise
        #[arg(long, default_value = "free")]
        tier: String,
        /// Read the password from the first line of standard input (required: never on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Import users with bcrypt hashes from the previous system: CSV rows `email,bcrypt_hash,role,tier`.
    ImportUsers {
        /// The CSV file (a header row `email,...` is skipped).
        file: PathBuf,
    },
}
