//! The `tradesignal` binary.

use std::process::ExitCode;

use clap::Parser;
use server::cli::{
    AdminAction, AuditAction, Cli, Command, ConfigAction, IngestAction, SecretsAction, SyncAction,
};
use server::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = commands::process_env();
    let config_path = cli.config.as_deref();
    match cli.command.unwrap_or(Command::Serve) {
        Command::Secrets {
            action: SecretsAction::Generate,
        } => commands::secrets_generate(),
        Command::Secrets {
            action: SecretsAction::Rotate { batch },
        } => match commands::load_valid(config_path, &env) {
            Ok(settings) => server::secrets_cli::rotate(settings, batch),
            Err(code) => code,
        },
        Command::Config {
            action: ConfigAction::Check,
        } => commands::config_check(config_path, &env),
        Command::Serve => match commands::load_valid(config_path, &env) {
            Ok(settings) => commands::serve(settings),
            Err(code) => code,
        },
        Command::Migrate => match commands::load_valid(config_path, &env) {
            Ok(settings) => commands::migrate(settings),
            Err(code) => code,
        },
        Command::Ingest { action } => match commands::load_valid(config_path, &env) {
            Ok(settings) => match action {
                IngestAction::Form4 { paths, quiet } => {
                    server::ingest_cli::form4(settings, &paths, quiet)
                }
                IngestAction::Congress { file, quiet } => {
                    server::ingest_cli::congress(settings, &file, quiet)
                }
            },
            Err(code) => code,
        },
        Command::Sync { action } => match commands::load_valid(config_path, &env) {
            Ok(settings) => match action {
                SyncAction::Edgar {
                    since,
                    until,
                    quiet,
                } => server::sync_cli::edgar(settings, since.as_deref(), until.as_deref(), quiet),
                SyncAction::Congress { quiet } => server::sync_cli::congress(settings, quiet),
            },
            Err(code) => code,
        },
        Command::Audit { action } => match commands::load_valid(config_path, &env) {
            Ok(settings) => match action {
                AuditAction::Verify { since } => {
                    server::audit_cli::verify(settings, since.as_deref())
                }
                AuditAction::Export { since, until } => {
                    server::audit_cli::export(settings, since.as_deref(), until.as_deref())
                }
                AuditAction::Retain { before, out } => {
                    server::audit_retain::retain(settings, &before, &out)
                }
                AuditAction::VerifyExport { file } => {
                    server::audit_retain::verify_export(settings, &file)
                }
            },
            Err(code) => code,
        },
        Command::Admin { action } => match commands::load_valid(config_path, &env) {
            Ok(settings) => match action {
                AdminAction::CreateUser {
                    email, role, tier, ..
                } => server::admin_cli::create_user(settings, &email, &role, &tier),
                AdminAction::ImportUsers { file } => {
                    server::admin_cli::import_users(settings, &file)
                }
            },
            Err(code) => code,
        },
    }
}
