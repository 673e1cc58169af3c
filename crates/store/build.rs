//! Rebuilds the crate when a migration is added or changed: `sqlx::migrate!` embeds the
//! migrations at compile time, and without this cargo only notices edits to files it already
//! embedded, so a new migration could be missing from a binary built after it was written.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
