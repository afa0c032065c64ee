//! Handler tests through the production route table (`http_api::configure`), with every port
//! mocked. Each test arranges the mocks, sends requests as a client would, and checks the status,
//! the JSON body and what reached (or did not reach) the repositories.
//!
//! One module per resource; `support` holds what they share.

mod support;

mod alerts;
mod auth;
mod authorship;
mod customer_groups;
mod customer_windows;
mod device_state;
mod devices;
mod dynamic_groups;
mod events;
mod group_api;
mod group_views;
mod idempotency;
mod lists;
mod membership;
mod readings;
mod routes;
mod store_failures;
