//! Black-box tests of the `iot-api` binary: each test starts the real server (on the embedded
//! store or on a throwaway PostgreSQL database) and talks HTTP to it.

mod helpers;

mod alerts;
mod auth_and_tenancy;
mod buckets;
mod concurrency;
mod conditional;
mod configuration;
mod customer_groups;
mod customer_windows;
mod deadlines;
mod devices;
mod docs_page;
mod dynamic_groups;
mod embedded_store;
mod events;
mod faults;
mod group_api;
mod hostile;
mod idempotency;
mod labels;
mod lists;
mod maintenance;
mod manners;
mod membership;
mod meta;
mod nested_groups;
mod observability;
mod raw_readings;
mod readings;
mod scale_out;
mod security;
mod webhooks;
mod wording;
