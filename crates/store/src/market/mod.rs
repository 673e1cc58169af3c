//! Repositories for the market-data domain: filings and their trades, companies and insiders,
//! congressional trades, watchlists, alert rules and their deliveries. The domain decisions
//! (amendment supersession, alert matching) come from the `market` crate; this module only
//! stores and fetches, with parameterised SQL (filters are assembled from fixed fragments).

pub mod alerts;
mod amendments;
pub mod congress;
pub mod deliveries;
pub mod ingest;
mod ingest_alerts;
mod ingest_lanes;
mod ingest_rows;
pub mod query;
pub mod watchlists;

pub use ingest::{IngestContext, StoreOutcome};
