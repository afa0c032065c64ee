//! The wire shapes of the service, one module per API surface: request bodies (`*Body`) and
//! answers (`*View`), and their conversion to and from the domain. All parsing of client input
//! into domain types happens here, once. The OpenAPI components keep the names the spec has
//! always had (`#[schema(as = ...)]`).

pub mod alerts;
pub mod buckets;
pub mod customer_groups;
pub mod customer_windows;
pub mod devices;
pub mod events;
pub mod group_api;
pub mod group_filter;
pub mod params;
pub mod readings;
pub mod webhooks;
