//! TradeSignal's server: configuration, the axum application with its security middleware, operational
//! endpoints and the command line. The binary in `main.rs` only dispatches to `commands`.

pub mod admin_cli;
pub mod api;
pub mod app;
pub mod audit_cli;
pub mod audit_retain;
pub mod cli;
pub mod commands;
pub mod config;
pub mod http;
pub mod identity;
pub mod ingest_cli;
pub mod kv_upgrade;
pub mod market;
pub mod openapi;
pub mod ops;
pub mod secrets_cli;
pub mod state;
pub mod sync;
pub mod sync_cli;
pub mod web;
