//! The `iot-api` binary: reads configuration, wires a store to the HTTP adapter, and serves;
//! or prints the OpenAPI document, or a signed token.
#![forbid(unsafe_code)]

mod evaluator;
mod metrics;
mod pruning;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::{web, App, HttpServer};
use anyhow::{bail, Context as _};
use clap::{Args, Parser, Subcommand};
use http_api::{AppState, Authenticator};
use secrecy::{ExposeSecret as _, SecretString};
use store_memory::MemoryStore;
use store_postgres::{PgSettings, PgStore};

/// Shortest accepted signing secret: HS256 wants at least as many key bytes as its output.
const MIN_SECRET_BYTES: usize = 32;

#[derive(Parser)]
#[command(
    name = "iot-api",
    version,
    about = "Multi-tenant IoT backend: device groups, alert status, readings, maintenance windows"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of the `serve` settings costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the API (PostgreSQL when DATABASE_URL is set, else the embedded in-memory store).
    Serve(ServeArgs),
    /// Print the OpenAPI document (what openapi/openapi.json holds).
    Openapi,
    /// Print a signed bearer token for a tenant and role.
    #[command(after_help = SECRET_HELP)]
    Token(TokenArgs),
    /// Print the SQL statements the benchmark's PostgreSQL references run, as a JSON object of
    /// name to statement (read by scripts/bench/prepare.py).
    #[command(hide = true)]
    SqlCatalog,
}

#[derive(Args)]
#[command(after_help = SECRET_HELP)]
struct ServeArgs {
    /// Address to listen on, host:port (port 0 picks a free one; the log says which).
    #[arg(long, env = "IOT_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// PostgreSQL connection string (postgres://user:pass@host:port/db). Unset: embedded store,
    /// nothing persisted. Migrations are applied at start.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// Hidden: a secret on the command line shows in `ps` and shell history; the help points
    /// to IOT_JWT_SECRET instead (kept working for scripts that pass it).
    #[arg(long, env = "IOT_JWT_SECRET", hide = true)]
    jwt_secret: Option<String>,
    /// Print a ready-to-paste banner (base URL, an admin token for tenant `demo`) once the
    /// address is bound: what `make run` shows.
    #[arg(long, hide = true)]
    dev_banner: bool,
    /// Most PostgreSQL connections in the pool.
    #[arg(long, env = "IOT_DB_POOL_SIZE", default_value_t = 8)]
    db_pool_size: usize,
    /// Milliseconds a request waits for a PostgreSQL connection before answering 503.
    #[arg(long, env = "IOT_DB_WAIT_TIMEOUT_MS", default_value_t = 2000)]
    db_wait_timeout_ms: u64,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "IOT_WORKERS")]
    workers: Option<usize>,
    /// Milliseconds a request may take before it is answered 503 (its work is abandoned).
    #[arg(long, env = "IOT_REQUEST_TIMEOUT_MS", default_value_t = 5000)]
    request_timeout_ms: u64,
    /// Milliseconds one PostgreSQL statement may run or wait for a lock before it is cancelled
    /// (answered 503); at most the request timeout. Default: 90% of the request timeout.
    #[arg(long, env = "IOT_DB_STATEMENT_TIMEOUT_MS")]
    db_statement_timeout_ms: Option<u64>,
    /// Days of readings to keep on PostgreSQL; older monthly partitions are dropped whole.
    /// Unset: keep everything.
    #[arg(long, env = "IOT_READINGS_RETENTION_DAYS")]
    readings_retention_days: Option<u32>,
    /// Serve Prometheus metrics on this address instead of at /metrics of the main one.
    #[arg(long, env = "IOT_METRICS_BIND")]
    metrics_bind: Option<String>,
    /// Seconds in-flight requests get to finish once the server stops accepting (after the drain).
    #[arg(long, env = "IOT_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    shutdown_timeout_secs: u64,
    /// Seconds between SIGTERM/SIGINT and the server ceasing to accept: meanwhile /health/ready
    /// answers 503 and every request is served as usual; 0 stops accepting at once.
    #[arg(long, env = "IOT_SHUTDOWN_DRAIN_SECS", default_value_t = 5)]
    shutdown_drain_secs: u64,
    /// Seconds to keep retrying an unreachable PostgreSQL at start before giving up.
    #[arg(long, env = "IOT_DB_START_TIMEOUT_SECS", default_value_t = 60)]
    db_start_timeout_secs: u64,
    /// MiB of group views kept between requests (groups' detail, with the structure it is
    /// rendered from; large groups' alerts; group readings) while they still hold; 0 keeps none.
    #[arg(long, env = "IOT_GROUP_VIEWS_MB", default_value_t = 32)]
    group_views_mb: u64,
    /// Seconds ahead of the server's clock a reading may be stamped; later ones are refused (422).
    #[arg(long, env = "IOT_MAX_FUTURE_SKEW_SECS", default_value_t = domain::reading::DEFAULT_MAX_FUTURE_SKEW_SECS)]
    max_future_skew_secs: u32,
    /// Milliseconds between passes of the alert evaluator (devices turning stale, windows
    /// starting or ending, acknowledgements running out), 100 to 10000.
    #[arg(
        long,
        env = "IOT_EVALUATOR_INTERVAL_MS",
        default_value_t = evaluator::DEFAULT_INTERVAL_MS,
        value_parser = clap::value_parser!(u64).range(*evaluator::INTERVAL_MS.start()..=*evaluator::INTERVAL_MS.end())
    )]
    evaluator_interval_ms: u64,
    /// Seconds the event log keeps events for the live stream's replay (a client reconnecting
    /// with an older Last-Event-ID starts over); older ones are deleted every minute. At least 60.
    #[arg(
        long,
        env = "IOT_EVENT_RETENTION_SECS",
        default_value_t = pruning::DEFAULT_RETENTION_SECS,
        value_parser = clap::value_parser!(u64).range(pruning::MIN_RETENTION_SECS..)
    )]
    event_retention_secs: u64,
    /// Origins a browser frontend may call the API from: a comma-separated list of
    /// scheme://host[:port], or `*` for any. Unset: no CORS headers at all.
    #[arg(long, env = "IOT_CORS_ORIGINS")]
    cors_origins: Option<String>,
    #[command(flatten)]
    memory: MemoryArgs,
    #[command(flatten)]
    webhooks: WebhookArgs,
    #[command(flatten)]
    events: EventArgs,
}

/// The live stream, `GET /api/events` (issue 15).
#[derive(Args)]
struct EventArgs {
    /// Milliseconds between two reads of a tenant's event log by the instance's feed (while
    /// the tenant has a stream open), 10 to 60000: the most an event waits before it is sent.
    #[arg(long, env = "IOT_EVENTS_POLL_MS", default_value_t = 250,
        value_parser = clap::value_parser!(u64).range(10..=60_000))]
    events_poll_ms: u64,
    /// Events a stream may fall behind before it is disconnected (the client reconnects with
    /// Last-Event-ID and replays), 16 to 65536.
    #[arg(long, env = "IOT_EVENTS_BUFFER", default_value_t = 1024,
        value_parser = clap::value_parser!(u64).range(16..=65_536))]
    events_buffer: u64,
    /// Event streams open at once on this instance; one more is answered 503, 1 to 100000.
    #[arg(long, env = "IOT_EVENTS_MAX_STREAMS", default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(1..=100_000))]
    events_max_streams: u64,
    /// Milliseconds between keep-alive comments on an event stream, 100 to 15000.
    #[arg(long, env = "IOT_EVENTS_KEEPALIVE_MS", default_value_t = 15_000,
        value_parser = clap::value_parser!(u64).range(100..=15_000))]
    events_keepalive_ms: u64,
}

impl EventArgs {
    fn settings(
        &self,
    ) -> (
        app::events::StreamSettings,
        http_api::events::StreamResponse,
    ) {
        (
            app::events::StreamSettings {
                poll: Duration::from_millis(self.events_poll_ms),
                buffer: usize::try_from(self.events_buffer).unwrap_or(1024),
                max_streams: usize::try_from(self.events_max_streams).unwrap_or(1000),
            },
            http_api::events::StreamResponse {
                keep_alive: Duration::from_millis(self.events_keepalive_ms),
            },
        )
    }
}

/// Webhook deliveries (issue 15).
#[derive(Args)]
struct WebhookArgs {
    /// Let webhook URLs point to loopback, private, link-local or metadata addresses (tests,
    /// closed networks). Off: such URLs are refused with 422, and deliveries never connect to
    /// such an address.
    #[arg(long, env = "IOT_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    webhook_allow_private: bool,
    /// Milliseconds one delivery attempt may take (connect, send, read the answer), 100 to 60000.
    #[arg(long, env = "IOT_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(100..=60_000))]
    webhook_timeout_ms: u64,
    /// Waits after the 1st, 2nd, ... failure of a delivery, in milliseconds, comma-separated;
    /// the last one repeats. Each is jittered by ±20 %.
    #[arg(
        long,
        env = "IOT_WEBHOOK_RETRY_SCHEDULE_MS",
        default_value = "5000,30000,120000,600000,3600000,10800000"
    )]
    webhook_retry_schedule_ms: String,
    /// Seconds after its first failure that a delivery is failed for good.
    #[arg(long, env = "IOT_WEBHOOK_RETRY_FOR_SECS", default_value_t = 259_200,
        value_parser = clap::value_parser!(u64).range(1..))]
    webhook_retry_for_secs: u64,
    /// Seconds of failures without a success after which a subscription is disabled.
    #[arg(long, env = "IOT_WEBHOOK_DISABLE_AFTER_SECS", default_value_t = 259_200,
        value_parser = clap::value_parser!(u64).range(1..))]
    webhook_disable_after_secs: u64,
    /// Milliseconds between looks for due deliveries when there were none, 10 to 60000.
    #[arg(long, env = "IOT_WEBHOOK_POLL_MS", default_value_t = 1000,
        value_parser = clap::value_parser!(u64).range(10..=60_000))]
    webhook_poll_ms: u64,
    /// Delivery attempts under way at once per instance, 1 to 256.
    #[arg(long, env = "IOT_WEBHOOK_CONCURRENCY", default_value_t = 16,
        value_parser = clap::value_parser!(u64).range(1..=256))]
    webhook_concurrency: u64,
}

impl WebhookArgs {
    fn settings(&self) -> anyhow::Result<webhooks::worker::Settings> {
        let schedule = self
            .webhook_retry_schedule_ms
            .split(',')
            .map(|ms| {
                ms.trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|ms| (1..=86_400_000).contains(ms))
                    .map(Duration::from_millis)
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "IOT_WEBHOOK_RETRY_SCHEDULE_MS (--webhook-retry-schedule-ms) must be comma-separated milliseconds from 1 to 86400000, got '{ms}'"
                        )
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if schedule.len() > 100 {
            bail!("IOT_WEBHOOK_RETRY_SCHEDULE_MS (--webhook-retry-schedule-ms) takes at most 100 waits");
        }
        Ok(webhooks::worker::Settings {
            poll: Duration::from_millis(self.webhook_poll_ms),
            concurrency: usize::try_from(self.webhook_concurrency).unwrap_or(16),
            timeout: Duration::from_millis(self.webhook_timeout_ms),
            retry: domain::webhook::RetryPolicy {
                schedule,
                retry_for: Duration::from_secs(self.webhook_retry_for_secs),
                disable_after: Duration::from_secs(self.webhook_disable_after_secs),
            },
            allow_private: self.webhook_allow_private,
        })
    }
}

/// Caps of the embedded store, in all tenants together: past one, writes answer 507.
#[derive(Args)]
struct MemoryArgs {
    /// Embedded store: most readings held.
    #[arg(long, env = "IOT_MEMORY_MAX_READINGS", default_value_t = store_memory::Limits::DEFAULT_READINGS)]
    memory_max_readings: u64,
    /// Embedded store: most devices held.
    #[arg(long, env = "IOT_MEMORY_MAX_DEVICES", default_value_t = store_memory::Limits::DEFAULT_DEVICES)]
    memory_max_devices: u64,
    /// Embedded store: most groups held.
    #[arg(long, env = "IOT_MEMORY_MAX_GROUPS", default_value_t = store_memory::Limits::DEFAULT_GROUPS)]
    memory_max_groups: u64,
    /// Embedded store: most device-in-group memberships held.
    #[arg(long, env = "IOT_MEMORY_MAX_MEMBERSHIPS", default_value_t = store_memory::Limits::DEFAULT_MEMBERSHIPS)]
    memory_max_memberships: u64,
    /// Embedded store: most maintenance windows held.
    #[arg(long, env = "IOT_MEMORY_MAX_WINDOWS", default_value_t = store_memory::Limits::DEFAULT_WINDOWS)]
    memory_max_windows: u64,
    /// Embedded store: most alert events held (every alert has at least its `opened` event).
    #[arg(long, env = "IOT_MEMORY_MAX_ALERT_EVENTS", default_value_t = store_memory::Limits::DEFAULT_ALERT_EVENTS)]
    memory_max_alert_events: u64,
}

impl MemoryArgs {
    fn limits(&self) -> store_memory::Limits {
        store_memory::Limits {
            readings: self.memory_max_readings,
            devices: self.memory_max_devices,
            groups: self.memory_max_groups,
            memberships: self.memory_max_memberships,
            windows: self.memory_max_windows,
        }
    }
}

#[derive(Args)]
struct TokenArgs {
    /// The tenant the token acts for.
    #[arg(long)]
    tenant: String,
    /// A role to grant (owner, admin, operator, viewer); repeat for several.
    #[arg(long = "role", default_value = "admin")]
    roles: Vec<String>,
    /// The token's subject (who acts).
    #[arg(long, default_value = "dev")]
    sub: String,
    /// Seconds until the token expires.
    #[arg(long, default_value_t = 24 * 3600)]
    ttl_secs: u64,
    /// Hidden, as for `serve`: the secret comes from IOT_JWT_SECRET.
    #[arg(long, env = "IOT_JWT_SECRET", hide = true)]
    jwt_secret: Option<String>,
}

/// The help's word on the one setting that is no flag.
const SECRET_HELP: &str = "The HS256 signing secret for bearer tokens is read from the \
IOT_JWT_SECRET environment variable (required, at least 32 bytes).";

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Openapi => {
            println!("{}", http_api::openapi::document());
            Ok(())
        }
        Command::Token(args) => token(&args),
        Command::SqlCatalog => sql_catalog(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iot-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn sql_catalog() -> anyhow::Result<()> {
    let catalog: serde_json::Map<String, serde_json::Value> = store_postgres::sql_catalog()
        .into_iter()
        .map(|(name, sql)| (name.to_owned(), sql.into()))
        .collect();
    println!("{}", serde_json::to_string_pretty(&catalog)?);
    Ok(())
}

fn secret(value: Option<String>) -> anyhow::Result<SecretString> {
    let Some(value) = value.filter(|v| !v.is_empty()) else {
        bail!(
            "IOT_JWT_SECRET is not set: set the IOT_JWT_SECRET environment variable to a secret \
             of at least {MIN_SECRET_BYTES} bytes (for example: export IOT_JWT_SECRET=$(openssl rand -hex 32))"
        );
    };
    if value.len() < MIN_SECRET_BYTES {
        bail!(
            "IOT_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long (got {})",
            value.len()
        );
    }
    Ok(SecretString::from(value))
}

fn token(args: &TokenArgs) -> anyhow::Result<()> {
    let secret = secret(args.jwt_secret.clone())?;
    domain::TenantId::parse(&args.tenant).context("--tenant")?;
    for role in &args.roles {
        if !["owner", "admin", "operator", "viewer"].contains(&role.as_str()) {
            bail!("--role must be one of owner, admin, operator, viewer (got '{role}')");
        }
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let token = http_api::auth::issue_token(
        secret.expose_secret().as_bytes(),
        &args.sub,
        &args.tenant,
        &args.roles,
        now,
        args.ttl_secs,
    )?;
    println!("{token}");
    Ok(())
}

/// `value` if it is `host:port` (`--bind 8081` is not: it names no host).
fn host_port<'a>(setting: &str, value: &'a str) -> anyhow::Result<&'a str> {
    let valid = value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
    if !valid {
        bail!("{setting} must be host:port, such as 127.0.0.1:8081; got '{value}'");
    }
    Ok(value)
}

/// Binds `address`; a busy port is said in words, with the setting that moves it.
fn listen(address: &str, metrics: bool) -> anyhow::Result<std::net::TcpListener> {
    let (what, setting) = if metrics {
        (" for metrics", "IOT_METRICS_BIND")
    } else {
        ("", "IOT_BIND")
    };
    std::net::TcpListener::bind(address).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            anyhow::anyhow!(
                "cannot listen on {address}{what}: the address is already in use \
                 (another process listens there; choose another with {setting})"
            )
        } else {
            anyhow::anyhow!("cannot listen on {address}{what}: {e}")
        }
    })
}

fn workers_or_default(workers: Option<usize>) -> usize {
    workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
}

/// Every setting in force, `name=value` by space, for the startup line: the signing secret
/// never, the database password replaced by `***`.
fn effective_settings(args: &ServeArgs, workers: usize) -> String {
    let optional = |v: Option<String>| v.unwrap_or_else(|| "unset".to_owned());
    let memory = &args.memory;
    [
        ("bind", args.bind.clone()),
        (
            "database_url",
            optional(
                args.database_url
                    .as_deref()
                    .filter(|u| !u.is_empty())
                    .map(redact_database_url),
            ),
        ),
        ("jwt_secret", "[redacted]".to_owned()),
        ("workers", workers.to_string()),
        ("db_pool_size", args.db_pool_size.to_string()),
        ("db_wait_timeout_ms", args.db_wait_timeout_ms.to_string()),
        ("request_timeout_ms", args.request_timeout_ms.to_string()),
        (
            "db_statement_timeout_ms",
            optional(args.db_statement_timeout_ms.map(|v| v.to_string())),
        ),
        (
            "readings_retention_days",
            optional(args.readings_retention_days.map(|v| v.to_string())),
        ),
        ("metrics_bind", optional(args.metrics_bind.clone())),
        ("cors_origins", optional(args.cors_origins.clone())),
        (
            "shutdown_timeout_secs",
            args.shutdown_timeout_secs.to_string(),
        ),
        ("shutdown_drain_secs", args.shutdown_drain_secs.to_string()),
        (
            "db_start_timeout_secs",
            args.db_start_timeout_secs.to_string(),
        ),
        ("group_views_mb", args.group_views_mb.to_string()),
        (
            "max_future_skew_secs",
            args.max_future_skew_secs.to_string(),
        ),
        (
            "evaluator_interval_ms",
            args.evaluator_interval_ms.to_string(),
        ),
        (
            "event_retention_secs",
            args.event_retention_secs.to_string(),
        ),
        (
            "memory_max_readings",
            memory.memory_max_readings.to_string(),
        ),
        ("memory_max_devices", memory.memory_max_devices.to_string()),
        ("memory_max_groups", memory.memory_max_groups.to_string()),
        (
            "memory_max_memberships",
            memory.memory_max_memberships.to_string(),
        ),
        ("memory_max_windows", memory.memory_max_windows.to_string()),
        (
            "memory_max_alert_events",
            memory.memory_max_alert_events.to_string(),
        ),
        (
            "webhook_allow_private",
            args.webhooks.webhook_allow_private.to_string(),
        ),
        (
            "webhook_timeout_ms",
            args.webhooks.webhook_timeout_ms.to_string(),
        ),
        (
            "webhook_retry_schedule_ms",
            args.webhooks.webhook_retry_schedule_ms.clone(),
        ),
        (
            "webhook_retry_for_secs",
            args.webhooks.webhook_retry_for_secs.to_string(),
        ),
        (
            "webhook_disable_after_secs",
            args.webhooks.webhook_disable_after_secs.to_string(),
        ),
        ("webhook_poll_ms", args.webhooks.webhook_poll_ms.to_string()),
        (
            "webhook_concurrency",
            args.webhooks.webhook_concurrency.to_string(),
        ),
        ("events_poll_ms", args.events.events_poll_ms.to_string()),
        ("events_buffer", args.events.events_buffer.to_string()),
        (
            "events_max_streams",
            args.events.events_max_streams.to_string(),
        ),
        (
            "events_keepalive_ms",
            args.events.events_keepalive_ms.to_string(),
        ),
    ]
    .iter()
    .map(|(name, value)| format!("{name}={value}"))
    .collect::<Vec<_>>()
    .join(" ")
}

/// A PostgreSQL connection string with its password replaced by `***`: in a URL's user info
/// (`postgres://user:pw@host`), in a `password=` query parameter, or in a key=value string.
fn redact_database_url(url: &str) -> String {
    let mut out = url.to_owned();
    if let Some(scheme_end) = out.find("://") {
        let rest = scheme_end + 3;
        let authority_end = out[rest..].find(['/', '?']).map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..authority_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            if let Some(colon) = userinfo.find(':') {
                out.replace_range(rest + colon + 1..rest + at, "***");
            }
        }
    }
    // `password=…` up to the next separator of either form (`&` in a query, a space in
    // key=value); a quoted key=value password up to its closing quote.
    let mut searched = 0;
    while let Some(found) = out[searched..].find("password=") {
        let start = searched + found + "password=".len();
        let end = if out[start..].starts_with('\'') {
            out[start + 1..]
                .find('\'')
                .map_or(out.len(), |i| start + 1 + i + 1)
        } else {
            out[start..]
                .find(['&', ' '])
                .map_or(out.len(), |i| start + i)
        };
        out.replace_range(start..end, "***");
        searched = start + 3;
    }
    out
}

/// Lifetime of the token the development banner prints.
const BANNER_TOKEN_TTL_SECS: u64 = 7 * 24 * 3600;

/// What `make run` shows, printed only once the address is bound (a busy port prints none).
fn print_banner(address: &str, secret: &SecretString, embedded: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let token = http_api::auth::issue_token(
        secret.expose_secret().as_bytes(),
        "demo-admin",
        "demo",
        &["admin".to_owned()],
        now,
        BANNER_TOKEN_TTL_SECS,
    )?;
    let store = if embedded {
        "embedded store: data lives until you stop it"
    } else {
        "PostgreSQL store"
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\n  iot-api on http://{address}  ({store})\n  \
         API reference: http://{address}/docs\n\n  \
         admin token for tenant 'demo' (valid 7 days):\n    export TOKEN={token}\n\n  \
         try:\n    curl -H \"Authorization: Bearer $TOKEN\" http://{address}/customer/device-groups\n"
    )?;
    out.flush()?;
    Ok(())
}

/// How often readings partitions are created ahead and retention is applied.
const PARTITION_MAINTENANCE_INTERVAL: Duration = Duration::from_secs(3600);
/// How many months of partitions exist ahead of the current one.
const PARTITION_MONTHS_AHEAD: u32 = 3;

/// Runs partition maintenance once; a failure is logged and retried at the next run.
async fn maintain_partitions(store: &PgStore, retention: Option<Duration>) {
    let now = std::time::SystemTime::now().into();
    match store
        .maintain_partitions(now, retention, PARTITION_MONTHS_AHEAD)
        .await
    {
        Ok(report) => tracing::info!(
            created = ?report.created,
            dropped = ?report.dropped,
            deleted_from_default = report.deleted_from_default,
            "readings partitions maintained"
        ),
        Err(e) => {
            tracing::warn!(error = %format_args!("{e:#}"), "readings partition maintenance failed; retrying later")
        }
    }
}

/// How often ended hours of readings are rolled up (issue 16.2), and how many (tenant, hour)
/// pairs at most each time: a backlog (after an outage, or a large backfill) is worked off over
/// the next runs, and reads stay exact meanwhile (a pending hour is read from the readings).
const ROLLUP_INTERVAL: Duration = Duration::from_secs(60);
const ROLLUP_HOURS_PER_RUN: u32 = 500;

/// Rolls up ended hours once; a failure is logged and retried at the next run.
async fn roll_up_readings(store: &PgStore) {
    let now = std::time::SystemTime::now().into();
    match store.roll_up_hours(now, ROLLUP_HOURS_PER_RUN).await {
        Ok(0) => {}
        Ok(hours) => tracing::debug!(hours, "readings rolled up"),
        Err(e) => {
            tracing::warn!(error = %format_args!("{e:#}"), "rolling up readings failed; retrying later")
        }
    }
}

/// First delay between attempts to reach PostgreSQL at start; it doubles up to the next.
const DB_START_FIRST_DELAY: Duration = Duration::from_millis(100);
const DB_START_MAX_DELAY: Duration = Duration::from_secs(5);

/// Connects to PostgreSQL (applying migrations), retrying while it is unreachable (not yet
/// started, restarting) for up to `timeout`; any other failure ends at once.
async fn connect_when_reachable(
    settings: &PgSettings,
    timeout: Duration,
) -> anyhow::Result<PgStore> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut delay = DB_START_FIRST_DELAY;
    let mut attempt = 0_u32;
    loop {
        attempt += 1;
        let error = match PgStore::connect(settings).await {
            Ok(store) => return Ok(store),
            Err(e) if store_postgres::is_unreachable(&e) => e,
            Err(e) => return Err(e),
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            return Err(error.context(format!(
                "PostgreSQL was not reachable within {} s (IOT_DB_START_TIMEOUT_SECS, --db-start-timeout-secs); {attempt} attempts",
                timeout.as_secs()
            )));
        }
        let wait = delay.min(left);
        tracing::warn!(
            attempt,
            retry_in_ms = wait.as_millis() as u64,
            error = %format_args!("{error:#}"),
            "PostgreSQL is not reachable; retrying"
        );
        tokio::time::sleep(wait).await;
        delay = (delay * 2).min(DB_START_MAX_DELAY);
    }
}

/// SIGTERM and SIGINT, listened for from [`Termination::install`] on.
struct Termination {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Termination {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot handle SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("cannot handle SIGINT")?,
        })
    }

    /// The name of the next signal.
    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// On the first signal, drains for `drain` (readiness 503, requests served as usual) so that
/// load balancers stop sending, then stops the server: it accepts nothing more and finishes the
/// requests it has started (IOT_SHUTDOWN_TIMEOUT_SECS). A second signal cuts the drain short.
async fn drain_then_stop(
    mut termination: Termination,
    readiness: http_api::readiness::Readiness,
    drain: Duration,
    server: actix_web::dev::ServerHandle,
    events: app::events::EventHub,
) {
    let signal = termination.next().await;
    readiness.start_draining();
    tracing::info!(
        signal,
        drain_secs = drain.as_secs(),
        "shutting down: draining (/health/ready answers 503, requests are still served)"
    );
    tokio::select! {
        () = tokio::time::sleep(drain) => {}
        signal = termination.next() => tracing::info!(signal, "second signal: drain cut short"),
    }
    tracing::info!("drain over: accepting no more connections, finishing requests in flight");
    // Event streams never finish by themselves: they end now, and their clients reconnect
    // elsewhere with their Last-Event-ID.
    events.close();
    server.stop(true).await;
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if std::env::var("IOT_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json")) {
        builder.json().init();
    } else {
        builder.with_ansi(std::io::stderr().is_terminal()).init();
    }
}

/// The statement timeout: as configured, else 90% of the request timeout (a statement's
/// cancellation and its 503 then travel before the deadline); never above the deadline.
fn statement_timeout_ms(configured: Option<u64>, request_timeout_ms: u64) -> anyhow::Result<u64> {
    match configured {
        None => Ok((request_timeout_ms.saturating_mul(9) / 10).max(1)),
        Some(0) => {
            bail!("IOT_DB_STATEMENT_TIMEOUT_MS (--db-statement-timeout-ms) must be at least 1")
        }
        Some(ms) if ms > request_timeout_ms => bail!(
            "IOT_DB_STATEMENT_TIMEOUT_MS (--db-statement-timeout-ms) must not exceed \
             IOT_REQUEST_TIMEOUT_MS ({request_timeout_ms}); got {ms}"
        ),
        Some(ms) => Ok(ms),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let secret = secret(args.jwt_secret.clone())?;
    let bind = host_port("IOT_BIND (--bind)", &args.bind)?;
    let metrics_bind = args
        .metrics_bind
        .as_deref()
        .map(|b| host_port("IOT_METRICS_BIND (--metrics-bind)", b))
        .transpose()?;
    for (name, flag, value) in [
        ("IOT_WORKERS", "workers", args.workers.unwrap_or(1) as u64),
        ("IOT_DB_POOL_SIZE", "db-pool-size", args.db_pool_size as u64),
        (
            "IOT_DB_WAIT_TIMEOUT_MS",
            "db-wait-timeout-ms",
            args.db_wait_timeout_ms,
        ),
        (
            "IOT_REQUEST_TIMEOUT_MS",
            "request-timeout-ms",
            args.request_timeout_ms,
        ),
    ] {
        if value == 0 {
            bail!("{name} (--{flag}) must be at least 1");
        }
    }
    let statement_timeout_ms =
        statement_timeout_ms(args.db_statement_timeout_ms, args.request_timeout_ms)?;
    let webhook_settings = args.webhooks.settings()?;
    let (stream_settings, stream_response) = args.events.settings();
    let settings_line = effective_settings(&args, workers_or_default(args.workers));
    let cors_origins = args
        .cors_origins
        .as_deref()
        .filter(|list| !list.trim().is_empty())
        .map(http_api::cors::Origins::parse)
        .transpose()
        .map_err(|why| anyhow::anyhow!("IOT_CORS_ORIGINS (--cors-origins) {why}"))?;
    let database_url = args
        .database_url
        .clone()
        .filter(|u| !u.is_empty())
        .map(SecretString::from);
    let workers = workers_or_default(args.workers);
    let listener = listen(bind, false)?;
    let address = listener.local_addr()?;
    let metrics_listener = metrics_bind.map(|b| listen(b, true)).transpose()?;
    let prometheus = metrics::install()?;

    actix_web::rt::System::new().block_on(async move {
        let authenticator = Authenticator::new(secret.expose_secret().as_bytes());
        let (state, pool, alert_evaluator, outbox, event_log) = match database_url {
            Some(url) => {
                let settings = PgSettings {
                    url: url.expose_secret().to_owned(),
                    pool_size: args.db_pool_size,
                    workers,
                    wait_timeout: Duration::from_millis(args.db_wait_timeout_ms),
                    statement_timeout: Duration::from_millis(statement_timeout_ms),
                };
                let store = connect_when_reachable(&settings, Duration::from_secs(args.db_start_timeout_secs)).await?;
                tracing::info!(pool_size = settings.pool_size, "store: PostgreSQL (migrations applied)");
                let retention = args.readings_retention_days.map(|days| Duration::from_secs(u64::from(days) * 86_400));
                maintain_partitions(&store, retention).await;
                let maintained = store.clone();
                actix_web::rt::spawn(async move {
                    let mut hourly = actix_web::rt::time::interval(PARTITION_MAINTENANCE_INTERVAL);
                    hourly.tick().await; // the first tick is immediate; start-up already ran
                    loop {
                        hourly.tick().await;
                        maintain_partitions(&maintained, retention).await;
                    }
                });
                let rolled = store.clone();
                actix_web::rt::spawn(async move {
                    let mut ticks = actix_web::rt::time::interval(ROLLUP_INTERVAL);
                    loop {
                        ticks.tick().await;
                        roll_up_readings(&rolled).await;
                    }
                });
                let state = AppState::from_store(Arc::new(store.clone()), authenticator)
                    .with_group_views(Arc::new(store.clone()), args.group_views_mb.saturating_mul(1024 * 1024));
                let alert_evaluator: Arc<dyn ports::AlertEvaluator> = Arc::new(store.clone());
                let outbox: Arc<dyn ports::WebhookOutbox> = Arc::new(store.clone());
                let event_log: Arc<dyn ports::EventLog> = Arc::new(store.clone());
                (state, Some(store), alert_evaluator, outbox, event_log)
            }
            None => {
                tracing::warn!(
                    "store: embedded in-memory store (DATABASE_URL is not set); data is NOT persisted and is lost when the process stops"
                );
                let store = Arc::new(MemoryStore::with_limits_and_alert_events(
                    args.memory.limits(),
                    args.memory.memory_max_alert_events,
                ));
                let alert_evaluator: Arc<dyn ports::AlertEvaluator> = store.clone();
                let outbox: Arc<dyn ports::WebhookOutbox> = store.clone();
                let event_log: Arc<dyn ports::EventLog> = store.clone();
                (AppState::from_store(store, authenticator), None, alert_evaluator, outbox, event_log)
            }
        };
        let state = state
            .with_ingest(http_api::IngestSettings {
                max_future_skew: domain::MaxFutureSkew::from_secs(args.max_future_skew_secs),
            })
            .with_webhook_targets(http_api::WebhookTargets {
                allow_private: webhook_settings.allow_private,
            })
            .with_event_stream(event_log.clone(), stream_settings, stream_response);
        // Deliveries carry the very data the stream shows.
        let event_payloads: Arc<dyn ports::EventPayloads> =
            Arc::new(http_api::events::RenderedPayloads::new(event_log.clone()));
        let webhook_worker = webhooks::worker::spawn(outbox, event_payloads, webhook_settings)?;
        tracing::info!("webhook worker started");
        let pruning_task = pruning::spawn(event_log, Duration::from_secs(args.event_retention_secs));
        tracing::info!(retention_secs = args.event_retention_secs, "event log pruning started");
        let last_pass = Arc::new(app::evaluator::LastPass::new(domain::Timestamp::now()));
        let evaluator_task = evaluator::spawn(
            alert_evaluator,
            Duration::from_millis(args.evaluator_interval_ms),
            last_pass.clone(),
        );
        tracing::info!(interval_ms = args.evaluator_interval_ms, "alert evaluator started");
        let scrape = metrics::Scrape { prometheus, pool: pool.clone(), last_pass, process: metrics::process_collector() };
        let request_timeout = Duration::from_millis(args.request_timeout_ms);
        let metrics_here = metrics_listener.is_none();
        let app_scrape = scrape.clone();
        let readiness = state.readiness.clone();
        let event_hub = state.events.clone();
        // Installed before the server listens: from then on a signal drains instead of killing.
        let termination = Termination::install()?;
        let server = HttpServer::new(move || {
            let cors = cors_origins.clone();
            // Outermost first: CORS (so that even a timeout's 503 is readable cross-origin), the
            // request id and access log, preflights, compression.
            let app = App::new()
                .wrap_fn(http_api::compress::compressed)
                .wrap_fn(move |req, srv| http_api::cors::preflight(cors.as_ref(), req, srv))
                .wrap_fn(move |req, srv| http_api::observe::observed(req, srv, request_timeout))
                .wrap(actix_web::middleware::Condition::new(
                    cors_origins.is_some(),
                    cors_origins.as_ref().map_or_else(actix_cors::Cors::default, http_api::cors::Origins::middleware),
                ))
                .configure(http_api::configure(&state));
            if metrics_here {
                app.app_data(web::Data::new(app_scrape.clone())).route("/metrics", web::get().to(metrics::render))
            } else {
                app
            }
        })
        .workers(workers)
        .shutdown_timeout(args.shutdown_timeout_secs)
        .disable_signals()
        .listen(listener)?
        .run();
        actix_web::rt::spawn(drain_then_stop(
            termination,
            readiness,
            Duration::from_secs(args.shutdown_drain_secs),
            server.handle(),
            event_hub,
        ));
        tracing::info!(
            version = env!("CARGO_PKG_VERSION"),
            store = if pool.is_some() { "postgres" } else { "embedded" },
            settings = %settings_line,
            "starting"
        );
        tracing::info!("listening on http://{address}");
        if args.dev_banner {
            print_banner(&address.to_string(), &secret, pool.is_none())?;
        }
        let served = match metrics_listener {
            None => server.await.context("server failed"),
            Some(listener) => {
                let metrics_address = listener.local_addr()?;
                // The metrics server stops after the main one.
                let metrics_server = HttpServer::new(move || {
                    App::new().app_data(web::Data::new(scrape.clone())).route("/metrics", web::get().to(metrics::render))
                })
                .workers(1)
                .disable_signals()
                .listen(listener)?
                .run();
                let metrics_handle = metrics_server.handle();
                actix_web::rt::spawn(metrics_server);
                tracing::info!("metrics on http://{metrics_address}/metrics");
                let result = server.await.context("server failed");
                metrics_handle.stop(true).await;
                result
            }
        };
        // After the last request: a pass never races the shutdown of what it writes to.
        evaluator_task.stop().await;
        tracing::info!("alert evaluator stopped");
        webhook_worker.stop().await;
        tracing::info!("webhook worker stopped");
        pruning_task.stop().await;
        if served.is_ok() {
            tracing::info!("stopped");
        }
        served
    })
}

#[cfg(test)]
mod wording_tests {
    use super::*;

    #[test]
    fn database_passwords_are_redacted_in_every_form() {
        for (url, redacted) in [
            (
                "postgres://user:hunter2@db:5432/iot",
                "postgres://user:***@db:5432/iot",
            ),
            ("postgres://user@db/iot", "postgres://user@db/iot"),
            ("postgres://db/iot", "postgres://db/iot"),
            (
                "postgresql://u:p%40ss@h/d?password=other&sslmode=require",
                "postgresql://u:***@h/d?password=***&sslmode=require",
            ),
            (
                "host=h user=u password=hunter2 dbname=d",
                "host=h user=u password=*** dbname=d",
            ),
            (
                "host=h password='hunter 2' dbname=d",
                "host=h password=*** dbname=d",
            ),
        ] {
            assert_eq!(redact_database_url(url), redacted, "{url}");
        }
    }

    #[test]
    fn a_bind_address_must_be_host_and_port() {
        for good in ["127.0.0.1:8081", "0.0.0.0:0", "localhost:80", "[::1]:8080"] {
            assert_eq!(host_port("IOT_BIND (--bind)", good).unwrap(), good);
        }
        for bad in [
            "8081",
            ":8081",
            "127.0.0.1",
            "127.0.0.1:",
            "host:99999",
            "nonsense",
        ] {
            let message = host_port("IOT_BIND (--bind)", bad).unwrap_err().to_string();
            assert_eq!(
                message,
                format!("IOT_BIND (--bind) must be host:port, such as 127.0.0.1:8081; got '{bad}'")
            );
        }
    }

    #[test]
    fn a_missing_secret_names_the_variable_and_no_flag() {
        for missing in [None, Some(String::new())] {
            let message = secret(missing).unwrap_err().to_string();
            assert!(
                message.contains("IOT_JWT_SECRET environment variable"),
                "{message}"
            );
            assert!(!message.contains("--"), "{message}");
        }
    }
}
