//! Connections: the settings, the per-thread pools of [`PgStore`], the pacing of connection
//! attempts while the server is unreachable, and the health probe.

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use ports::{HealthProbe, StoreError};
use tokio_postgres::NoTls;

use crate::backoff::ConnectBackoff;
use crate::error::{pool_error, query_error};
use crate::migrations::migrate;

/// How to reach PostgreSQL and how patient to be with it.
#[derive(Clone)]
pub struct PgSettings {
    /// A `postgres://` URL or a `key=value` connection string.
    pub url: String,
    /// Most connections the pools open, all together.
    pub pool_size: usize,
    /// Threads serving requests, each with a pool of its own (a share of `pool_size`).
    pub workers: usize,
    /// How long a request waits for a free connection (and for a new one to open) before the
    /// store reports itself unavailable.
    pub wait_timeout: Duration,
    /// The most one statement may run, or wait for a lock, before PostgreSQL cancels it (set in
    /// every transaction): a little under the request deadline, so that a request's work ends
    /// with the request.
    pub statement_timeout: Duration,
}

impl std::fmt::Debug for PgSettings {
    // The URL may carry a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSettings")
            .field("url", &"<redacted>")
            .field("pool_size", &self.pool_size)
            .field("workers", &self.workers)
            .field("wait_timeout", &self.wait_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .finish()
    }
}

/// The store, holding its pools.
///
/// The connections are split into one pool per thread serving requests (`PgSettings::workers`):
/// a connection's I/O runs on the thread that opened it, so a request that used a connection of
/// another thread would wait on that thread's wake-ups (a quarter of a device GET's CPU went to
/// them). Each thread takes a pool on its first request and keeps it, borrowing from another
/// only when its own has nothing to spare.
#[derive(Clone)]
pub struct PgStore {
    pools: std::sync::Arc<[Pool]>,
    backoff: std::sync::Arc<ConnectBackoff>,
    /// The most a request waits for a connection, free slot and connecting together.
    wait_timeout: Duration,
    /// `PgSettings::statement_timeout`, also the longest wait to release a connection.
    pub(crate) statement_timeout: Duration,
    /// `PgSettings::statement_timeout` as `BIND_TENANT` sets it.
    pub(crate) statement_timeout_setting: std::sync::Arc<str>,
    /// For connections of its own (partition maintenance), outside the pools.
    config: tokio_postgres::Config,
    /// The slots of streamed exports, each of which holds a connection while it runs.
    pub(crate) exports: std::sync::Arc<tokio::sync::Semaphore>,
    export_slots: usize,
    /// Device lists' counts, kept at the tenant's scope revision (see `devices::ListCounts`).
    pub(crate) list_counts: std::sync::Arc<crate::devices::KeptListCounts>,
}

/// The pool a thread uses, in order of first use: threads number themselves as they come.
fn thread_slot() -> usize {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    thread_local! {
        static SLOT: usize = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    SLOT.with(|slot| *slot)
}

impl PgStore {
    /// Applies pending migrations, then opens the pools.
    ///
    /// # Errors
    /// When the connection string does not parse, the server cannot be reached, or a migration
    /// fails.
    pub async fn connect(settings: &PgSettings) -> anyhow::Result<Self> {
        let mut config: tokio_postgres::Config = settings
            .url
            .parse()
            .context("DATABASE_URL is not a valid PostgreSQL connection string")?;
        config.connect_timeout(settings.wait_timeout);
        migrate(&config).await?;
        // At least one connection per pool: with fewer connections than threads, threads share.
        let size = settings.pool_size.max(1);
        let count = settings.workers.clamp(1, size);
        let pools = (0..count)
            .map(|i| {
                let share = size / count + usize::from(i < size % count);
                open_pool(&config, share, settings.wait_timeout)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            pools: pools.into(),
            backoff: std::sync::Arc::default(),
            wait_timeout: settings.wait_timeout,
            statement_timeout: settings.statement_timeout,
            statement_timeout_setting: format!("{}ms", settings.statement_timeout.as_millis())
                .into(),
            config,
            exports: std::sync::Arc::new(tokio::sync::Semaphore::new(default_export_slots(size))),
            export_slots: default_export_slots(size),
            list_counts: std::sync::Arc::default(),
        })
    }

    /// Lets at most `slots` (at least one) streamed exports run at once.
    #[must_use]
    pub fn with_export_slots(self, slots: usize) -> Self {
        let slots = slots.max(1);
        Self {
            exports: std::sync::Arc::new(tokio::sync::Semaphore::new(slots)),
            export_slots: slots,
            ..self
        }
    }

    /// How many streamed exports may run at once.
    #[must_use]
    pub fn export_slots(&self) -> usize {
        self.export_slots
    }

    /// The pools' state now, added up, for metrics.
    #[must_use]
    pub fn pool_status(&self) -> deadpool_postgres::Status {
        let mut total = deadpool_postgres::Status {
            max_size: 0,
            size: 0,
            available: 0,
            waiting: 0,
        };
        for status in self.pools.iter().map(Pool::status) {
            total.max_size += status.max_size;
            total.size += status.size;
            total.available += status.available;
            total.waiting += held_back_by_a_full_pool(status);
        }
        total
    }

    /// A connection of its own, outside the pools, for work that is not a request's.
    pub(crate) async fn own_connection(&self) -> anyhow::Result<tokio_postgres::Client> {
        let (client, connection) = self
            .config
            .connect(NoTls)
            .await
            .context("failed to connect to PostgreSQL")?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(error = %e, "a maintenance connection ended with an error");
            }
        });
        Ok(client)
    }

    /// This thread's pool; when it has no connection to spare right now, the pool with the
    /// most to spare (a connection of another thread is slower to use than one of this
    /// thread's, but faster than waiting for one).
    fn pool_for_this_thread(&self) -> &Pool {
        let spare = |pool: &Pool| {
            let status = pool.status();
            status.available + status.max_size.saturating_sub(status.size)
        };
        let own = &self.pools[thread_slot() % self.pools.len()];
        if spare(own) > 0 {
            return own;
        }
        self.pools
            .iter()
            .max_by_key(|pool| spare(pool))
            .filter(|pool| spare(pool) > 0)
            .unwrap_or(own)
    }

    /// A pooled connection; while the server is unreachable, fails fast between the paced
    /// connection attempts.
    pub(crate) async fn client(&self) -> Result<Object, StoreError> {
        if !self.backoff.may_attempt(std::time::Instant::now()) {
            return Err(StoreError::Unavailable(anyhow::anyhow!(
                "PostgreSQL was unreachable moments ago; backing off"
            )));
        }
        // The pool times waiting for a slot and connecting separately; the promise is for both.
        let pool = self.pool_for_this_thread();
        let got = tokio::time::timeout(self.wait_timeout, pool.get())
            .await
            .unwrap_or(Err(deadpool_postgres::PoolError::Timeout(
                deadpool_postgres::TimeoutType::Create,
            )));
        match got {
            Ok(client) => {
                self.backoff.succeeded();
                Ok(client)
            }
            Err(e) => {
                // A full pool is load, not an outage: only failures to connect back off.
                // (A timeout of the whole wait counts as a failure to connect.)
                if !matches!(
                    e,
                    deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait)
                ) {
                    self.backoff.failed(std::time::Instant::now());
                }
                Err(pool_error(e))
            }
        }
    }
}

/// Streamed exports a pool of `size` connections runs at once by default: a quarter of it (at
/// least one), so that exports leave most connections to requests.
fn default_export_slots(size: usize) -> usize {
    (size / 4).max(1)
}

/// A pool of at most `size` connections, opened as needed.
fn open_pool(
    config: &tokio_postgres::Config,
    size: usize,
    wait_timeout: Duration,
) -> anyhow::Result<Pool> {
    let manager = Manager::from_config(
        config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait_timeout))
        .create_timeout(Some(wait_timeout))
        .recycle_timeout(Some(wait_timeout))
        .build()
        .context("failed to build the connection pool")
}

/// Whether `error` (from [`PgStore::connect`]) says PostgreSQL was not reachable or not taking
/// connections yet (starting, shutting down, full), which may pass by itself; not a refusal of
/// ours (credentials, no such database) nor a failed migration, which retrying does not mend.
#[must_use]
pub fn is_unreachable(error: &anyhow::Error) -> bool {
    use tokio_postgres::error::{DbError, SqlState};
    const TRANSIENT: [SqlState; 3] = [
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::TOO_MANY_CONNECTIONS,
    ];
    error.chain().any(|cause| {
        cause.is::<std::io::Error>()
            || cause
                .downcast_ref::<DbError>()
                .is_some_and(|db| TRANSIENT.contains(db.code()))
    })
}

#[async_trait]
impl HealthProbe for PgStore {
    async fn check(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(query_error)?;
        Ok(())
    }
}

/// Users held back because their pool is full. deadpool's own `waiting` is users minus size, so
/// it also counts a user whose slot is still connecting; a gauge of requests queued behind a full
/// pool should not show a pool that is merely filling.
fn held_back_by_a_full_pool(status: deadpool_postgres::Status) -> usize {
    let users = (status.size + status.waiting).saturating_sub(status.available);
    users.saturating_sub(status.max_size)
}

#[cfg(test)]
mod tests {
    use super::held_back_by_a_full_pool;
    use deadpool_postgres::Status;

    #[test]
    fn only_users_a_full_pool_holds_back_are_waiting() {
        let status = |max_size, size, available, waiting| Status {
            max_size,
            size,
            available,
            waiting,
        };
        // Filling: one slot made, a second user connecting its own.
        assert_eq!(held_back_by_a_full_pool(status(4, 1, 0, 1)), 0);
        // Idle slots: nobody waits.
        assert_eq!(held_back_by_a_full_pool(status(4, 3, 2, 0)), 0);
        // Full and busy, two more users queued.
        assert_eq!(held_back_by_a_full_pool(status(2, 2, 0, 2)), 2);
        // Not yet full, but more users than slots could ever serve.
        assert_eq!(held_back_by_a_full_pool(status(2, 1, 0, 3)), 2);
    }
}
