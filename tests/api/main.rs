//! Black-box tests of the `iot-api` binary: each test starts the real server (on the embedded
//! store or on a throwaway PostgreSQL database) and talks HTTP to it.

mod helpers;

mod auth_and_tenancy;
mod customer_groups;
mod customer_windows;
mod devices;
mod group_api;
mod hostile_input;
mod maintenance;
mod membership;
mod meta;
mod readings;
