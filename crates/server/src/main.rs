//! The `iot-api` binary: reads configuration, wires a store to the HTTP adapter, and serves;
//! or prints the OpenAPI document, or a signed token.
#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::Service as _;
use actix_web::{middleware, App, HttpServer};
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

#[derive(Subcommand)]
enum Command {
    /// Serve the API (PostgreSQL when DATABASE_URL is set, else the embedded in-memory store).
    Serve(ServeArgs),
    /// Print the OpenAPI document (what openapi/openapi.json holds).
    Openapi,
    /// Print a signed bearer token for a tenant and role.
    Token(TokenArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free one; the log says which).
    #[arg(long, env = "IOT_BIND", default_value = "127.0.0.1:8080")]
    bind: String,
    /// PostgreSQL connection string (postgres://user:pass@host:port/db). Unset: embedded store,
    /// nothing persisted. Migrations are applied at start.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// HS256 signing secret for bearer tokens, at least 32 bytes.
    #[arg(long, env = "IOT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
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
    /// Seconds in-flight requests get to finish after SIGTERM/SIGINT.
    #[arg(long, env = "IOT_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    shutdown_timeout_secs: u64,
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
    /// HS256 signing secret, the same the server uses.
    #[arg(long, env = "IOT_JWT_SECRET", hide_env_values = true)]
    jwt_secret: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Openapi => {
            println!("{}", http_api::openapi::document());
            Ok(())
        }
        Command::Token(args) => token(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("iot-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn secret(value: String) -> anyhow::Result<SecretString> {
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

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    init_tracing();
    let secret = secret(args.jwt_secret)?;
    let database_url = args
        .database_url
        .filter(|u| !u.is_empty())
        .map(SecretString::from);
    let workers = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let listener = std::net::TcpListener::bind(&args.bind)
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let address = listener.local_addr()?;

    actix_web::rt::System::new().block_on(async move {
        let authenticator = Authenticator::new(secret.expose_secret().as_bytes());
        let state = match database_url {
            Some(url) => {
                let settings = PgSettings {
                    url: url.expose_secret().to_owned(),
                    pool_size: args.db_pool_size,
                    wait_timeout: Duration::from_millis(args.db_wait_timeout_ms),
                };
                let store = PgStore::connect(&settings).await?;
                tracing::info!(pool_size = settings.pool_size, "store: PostgreSQL (migrations applied)");
                AppState::from_store(Arc::new(store), authenticator)
            }
            None => {
                tracing::warn!(
                    "store: embedded in-memory store (DATABASE_URL is not set); data is NOT persisted and is lost when the process stops"
                );
                AppState::from_store(Arc::new(MemoryStore::new()), authenticator)
            }
        };
        let request_timeout = Duration::from_millis(args.request_timeout_ms.max(1));
        let server = HttpServer::new(move || {
            App::new()
                .wrap_fn(move |req, srv| http_api::timeout::within(request_timeout, srv.call(req)))
                // The path without its query string: a client may put a token there by mistake,
                // and logs must never hold one.
                .wrap(
                    middleware::Logger::new("%{method}xi %U %s %b %Dms")
                        .custom_request_replace("method", |req| req.method().to_string())
                        .log_target("iot_api::access"),
                )
                .configure(http_api::configure(&state))
        })
        .workers(workers)
        .shutdown_timeout(args.shutdown_timeout_secs)
        .listen(listener)?
        .run();
        tracing::info!("listening on http://{address}");
        server.await.context("server failed")
    })
}
