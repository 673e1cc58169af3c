//! Integration tests: each starts the real application on a random port with its own database and talks
//! HTTP to it. Every test runs against the embedded backends (SQLite + in-process store) and, when
//! `TRADESIGNAL_TEST_DATABASE_URL` and `TRADESIGNAL_TEST_REDIS_URL` are set, against PostgreSQL + Redis
//! (a fresh database and key prefix per test).

mod helpers;

mod fake_source;

mod abuse;
mod admin;
mod apikeys;
mod audit;
mod audit_retention;
mod auth;
mod bad_input;
mod browser;
mod cli;
mod dev_pages;
mod faults;
mod hardening;
mod headers;
mod kv_upgrade;
mod market;
mod market_cache;
mod market_data;
mod monitoring;
mod monitoring_rules;
mod notifications;
mod ops;
mod problems;
mod proxy;
mod secrets_rotation;
mod sessions;
mod sync;
mod tls;
mod tokens;
mod twofactor;
mod watchlists;
mod web;
mod web_client;
