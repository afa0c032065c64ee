//! Prometheus metrics: request counts and latencies (recorded by `http_api::observe`), readings
//! ingested (recorded by the ingest handlers), the alert evaluator's passes (recorded by
//! `app::evaluator`) and its lag, on PostgreSQL the pool's state at scrape time, the build
//! (`iot_build_info{version}`) and the process's memory, CPU time and open files (the standard
//! `process_*` names, read from /proc at scrape time by `metrics-process`).

use std::time::Duration;

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use app::evaluator::LastPass;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use store_postgres::PgStore;

/// Latency buckets in seconds, from sub-millisecond to the request deadline.
const LATENCY_BUCKETS: [f64; 14] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How often recorded latencies are folded into the histograms. Until then each sample is kept
/// on its own (about 16 bytes a request): without this, memory grows with traffic between
/// scrapes, and without bound when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Installs the global recorder, and a thread that runs its upkeep every [`UPKEEP_INTERVAL`].
///
/// # Errors
/// When a recorder is already installed.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("http_request_duration_seconds".to_owned()),
            &LATENCY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full("iot_webhook_attempt_duration_seconds".to_owned()),
            &LATENCY_BUCKETS,
        )?
        .install_recorder()?;
    let upkept = handle.clone();
    std::thread::Builder::new()
        .name("metrics-upkeep".to_owned())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_INTERVAL);
            upkept.run_upkeep();
        })?;
    metrics::describe_counter!(
        "http_requests_total",
        "HTTP requests by route template, method and status"
    );
    metrics::describe_histogram!(
        "http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency by route template and method"
    );
    metrics::describe_counter!(
        "iot_readings_ingested_total",
        "Readings stored by ingest requests"
    );
    metrics::describe_counter!(
        "iot_readings_deleted_total",
        "Readings deleted by range deletes (DELETE /api/devices/{id}/readings)"
    );
    metrics::describe_gauge!(
        "iot_evaluator_lag_seconds",
        metrics::Unit::Seconds,
        "Seconds since the start of the alert evaluator's last completed pass (grows while passes fail or stall)"
    );
    metrics::describe_counter!(
        "iot_evaluator_passes_total",
        "Alert evaluator passes completed"
    );
    metrics::describe_counter!(
        "iot_evaluator_failures_total",
        "Alert evaluator passes that failed (retried at the next tick)"
    );
    metrics::describe_counter!(
        "iot_evaluator_events_total",
        "Alert events recorded by the evaluator"
    );
    metrics::describe_counter!(
        "iot_webhook_attempts_total",
        "Webhook delivery attempts recorded, by outcome: delivered, retry (to be tried again), failed (for good)"
    );
    metrics::describe_histogram!(
        "iot_webhook_attempt_duration_seconds",
        metrics::Unit::Seconds,
        "Time a webhook delivery attempt took (sending and reading the answer)"
    );
    metrics::describe_gauge!(
        "iot_db_pool_connections",
        "PostgreSQL connections open in the pool"
    );
    metrics::describe_gauge!(
        "iot_db_pool_idle",
        "PostgreSQL connections idle in the pool"
    );
    metrics::describe_gauge!(
        "iot_db_pool_waiting",
        "Requests waiting for a slot of a full PostgreSQL pool"
    );
    metrics::describe_gauge!(
        "iot_db_pool_max",
        "Most PostgreSQL connections the pool opens"
    );
    metrics::describe_gauge!(
        "iot_build_info",
        "Always 1; the version of the running binary as a label"
    );
    metrics::gauge!("iot_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(handle)
}

/// The collector of the `process_*` metrics; [`install`] must have run first, so that its
/// descriptions reach the recorder.
#[must_use]
pub fn process_collector() -> Arc<metrics_process::Collector> {
    let collector = metrics_process::Collector::default();
    collector.describe();
    Arc::new(collector)
}

/// What `/metrics` renders.
#[derive(Clone)]
pub struct Scrape {
    pub prometheus: PrometheusHandle,
    pub pool: Option<PgStore>,
    /// When the evaluator's last completed pass started.
    pub last_pass: Arc<LastPass>,
    pub process: Arc<metrics_process::Collector>,
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render(scrape: web::Data<Scrape>) -> HttpResponse {
    scrape.process.collect();
    // Computed at scrape time, so a stalled evaluator shows as a growing lag.
    metrics::gauge!("iot_evaluator_lag_seconds")
        .set(scrape.last_pass.lag_seconds(domain::Timestamp::now()));
    if let Some(pool) = &scrape.pool {
        let status = pool.pool_status();
        metrics::gauge!("iot_db_pool_connections").set(status.size as f64);
        metrics::gauge!("iot_db_pool_idle").set(status.available as f64);
        metrics::gauge!("iot_db_pool_waiting").set(status.waiting as f64);
        metrics::gauge!("iot_db_pool_max").set(status.max_size as f64);
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(scrape.prometheus.render())
}
