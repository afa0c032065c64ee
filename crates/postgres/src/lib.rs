//! PostgreSQL adapter of the iot-api ports, on `tokio-postgres` with a `deadpool` pool.
//!
//! Layer rule: all SQL, transactions and driver types stay in this crate. Driver and pool errors
//! are translated here into the ports' error enums (constraint names into business variants,
//! connection trouble into `StoreError::Unavailable`), so nothing above knows PostgreSQL exists.
//!
//! Every operation runs in one transaction that first switches to the role `iot_app` and sets
//! `app.tenant_id`; the row-level security policies of the migrations then hold the transaction to
//! that tenant, whatever role the connection string names.
//!
//! Modules, each importing only modules listed before it (so none import each other in a
//! circle): `error` (driver errors into the ports' enums), `backoff`, `migrations`, `rows` (row
//! decoders and the column lists they read); `pool` (settings, [`PgStore`] and its pools); `tx`
//! (tenant-bound transactions); `lists` (list pages), `shared` (statements and steps more than
//! one repository runs) and `keeping` (the device state and alerts kept at write time: what
//! ingest, device updates, acknowledgements and the evaluator load, judge and write), `exports`
//! (streamed exports of readings, in slots of their own); the
//! repositories `devices`, `groups`, `windows`, `readings`, `alerts`, `evaluator`, `events` and
//! `partitions`, which never import one another; `revisions` (the tenant's revisions); and
//! `catalog`, the statements by name for the benchmark.
#![forbid(unsafe_code)]

mod alerts;
mod backoff;
mod buckets;
mod catalog;
mod devices;
mod error;
mod evaluator;
mod events;
mod exports;
mod groups;
mod idempotency;
mod keeping;
mod lists;
mod membership;
mod migrations;
mod partitions;
mod pool;
mod readings;
mod revisions;
mod rollups;
mod rows;
mod shared;
mod tree;
mod tx;
mod webhooks;
mod windows;

#[doc(hidden)]
pub use catalog::sql_catalog;
#[doc(hidden)]
pub use groups::{
    members_sql, tree_members_sql, tree_readings_sql, window_memberships_sql, GROUP_READINGS,
};
pub use migrations::{migrate, schema_fingerprint};
pub use partitions::PartitionReport;
pub use pool::{is_unreachable, PgSettings, PgStore};
