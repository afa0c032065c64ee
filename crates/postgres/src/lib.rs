//! PostgreSQL adapter of the iot-api ports, on `tokio-postgres` with a `deadpool` pool.
//!
//! Layer rule: all SQL, transactions and driver types stay in this crate. Driver and pool errors
//! are translated here into the ports' error enums (constraint names into business variants,
//! connection trouble into `StoreError::Unavailable`), so nothing above knows PostgreSQL exists.
//!
//! Every operation runs in one transaction that first switches to the role `iot_app` and sets
//! `app.tenant_id`; the row-level security policies of the migrations then hold the transaction to
//! that tenant, whatever role the connection string names.
#![forbid(unsafe_code)]

mod backoff;
mod devices;
mod error;
mod groups;
mod partitions;

#[doc(hidden)]
pub use groups::{members_sql, GROUP_READINGS};
pub use partitions::PartitionReport;
mod readings;
mod windows;

use std::time::Duration;

use anyhow::Context as _;
use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use domain::TenantId;
use ports::{HealthProbe, StoreError};
use tokio_postgres::NoTls;

use crate::error::{pool_error, query_error};

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Key of the advisory lock that serialises migrations between instances starting together.
const MIGRATION_LOCK_KEY: i64 = 0x0069_6f74_5f61_7069; // "iot_api"

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
    backoff: std::sync::Arc<backoff::ConnectBackoff>,
    /// The most a request waits for a connection, free slot and connecting together.
    wait_timeout: Duration,
    /// `PgSettings::statement_timeout`, also the longest wait to release a connection.
    statement_timeout: Duration,
    /// `PgSettings::statement_timeout` as `BIND_TENANT` sets it.
    statement_timeout_setting: std::sync::Arc<str>,
    /// For connections of its own (partition maintenance), outside the pools.
    config: tokio_postgres::Config,
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
        })
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
            total.waiting += status.waiting;
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
    async fn client(&self) -> Result<Object, StoreError> {
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

/// Applies the embedded migrations, one instance at a time.
///
/// # Errors
/// When the server cannot be reached or a migration fails.
pub async fn migrate(config: &tokio_postgres::Config) -> anyhow::Result<()> {
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .context("failed to connect to PostgreSQL to apply migrations")?;
    let driver = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .context("failed to take the migration lock")?;
    let report = embedded::migrations::runner()
        .set_grouped(true)
        .run_async(&mut client)
        .await
        .context("failed to apply migrations");
    // Closing the session releases the advisory lock.
    drop(client);
    driver.abort();
    let report = report?;
    for applied in report.applied_migrations() {
        tracing::info!(migration = %applied, "applied migration");
    }
    Ok(())
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

/// A fingerprint of the embedded migrations, to name test templates after the schema they hold.
#[must_use]
pub fn schema_fingerprint() -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for migration in embedded::migrations::runner().get_migrations() {
        migration.version().hash(&mut hasher);
        migration.checksum().hash(&mut hasher);
    }
    hasher.finish()
}

/// Binds a transaction to a tenant (`$1`): as role `iot_app`, with `app.tenant_id` set, and
/// with `$2` as its statement and lock timeouts, all for this transaction only (so a pooled
/// connection carries nothing over).
const BIND_TENANT: &str = "SELECT set_config('role', 'iot_app', true), \
     set_config('app.tenant_id', $1, true), \
     set_config('statement_timeout', $2, true), set_config('lock_timeout', $2, true)";

/// The tenant's revision: the sum over its shards, 0 before its first write.
pub(crate) const REVISION: &str =
    "SELECT coalesce(sum(revision), 0)::bigint FROM tenant_revisions WHERE tenant_id = $1";

impl PgStore {
    /// A pooled connection with a transaction open and bound to `tenant`, for an operation that
    /// writes or needs more than one round trip (else [`PgStore::reader`]). `BEGIN` and the
    /// binding go out together, one round trip. What the transaction writes moves the tenant's
    /// revision (triggers of migration V6), so views derived from the data before it commits
    /// are known to be stale after.
    async fn begin(&self, tenant: &TenantId) -> Result<TenantTx, StoreError> {
        // The binding comes prepared, so both requests below go out on their first poll. From
        // here on, an early return rolls the transaction back.
        let ReadTx { tx, bind, .. } = self.reader(tenant).await?;
        let client = tx.client();
        let tenant = tenant.as_str();
        let timeout = &*self.statement_timeout_setting;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant, &timeout];
        // `biased`: polled in this order, so BEGIN is on the wire before the binding.
        tokio::try_join!(
            biased;
            client.batch_execute("BEGIN"),
            client.execute(&bind, &params),
        )
        .map_err(query_error)?;
        Ok(tx)
    }
}

impl PgStore {
    /// A pooled connection for one read-only transaction, which [`ReadTx::run`] opens, binds to
    /// `tenant`, runs and commits in a single round trip.
    async fn reader(&self, tenant: &TenantId) -> Result<ReadTx, StoreError> {
        let client = self.client().await?;
        let bind = client
            .prepare_cached(BIND_TENANT)
            .await
            .map_err(query_error)?;
        Ok(ReadTx {
            tx: TenantTx {
                client: Some(client),
                finished: std::sync::atomic::AtomicBool::new(false),
                release_limit: self.statement_timeout,
            },
            bind,
            tenant: tenant.clone(),
            statement_timeout: std::sync::Arc::clone(&self.statement_timeout_setting),
        })
    }
}

/// A read-only transaction not yet begun. Its statements run inside [`ReadTx::run`], which
/// wraps them in the transaction and its tenant binding; its client is only for preparing them.
pub(crate) struct ReadTx {
    /// Rolls back on drop if [`ReadTx::run`] was cut short.
    tx: TenantTx,
    bind: tokio_postgres::Statement,
    tenant: TenantId,
    /// `BIND_TENANT`'s `$2`.
    statement_timeout: std::sync::Arc<str>,
}

impl ReadTx {
    /// The connection, to prepare statements on; nothing may run on it outside [`ReadTx::run`].
    pub(crate) fn client(&self) -> &deadpool_postgres::ClientWrapper {
        self.tx.client()
    }

    /// Prepares (once per connection) a statement for [`ReadTx::run`].
    pub(crate) async fn prepare(
        &self,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        self.tx.client().prepare_cached(sql).await
    }

    /// `BEGIN`, the tenant binding, the statements `work` sends, and `COMMIT`, in one round trip.
    /// `work` must only run statements already prepared (with [`ReadTx::prepare`]): it is polled
    /// once after the binding is on the wire and before the `COMMIT` is, and a statement still to
    /// be prepared would be sent after the `COMMIT`. An error of the transaction's own
    /// statements wins over `work`'s, which it causes.
    pub(crate) async fn run<'a, T, F>(
        &'a self,
        work: impl FnOnce(&'a deadpool_postgres::ClientWrapper) -> F,
    ) -> Result<T, tokio_postgres::Error>
    where
        F: std::future::Future<Output = Result<T, tokio_postgres::Error>> + 'a,
    {
        let client = self.tx.client();
        let tenant = self.tenant.as_str();
        let timeout = &*self.statement_timeout;
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&tenant, &timeout];
        let (begun, bound, result, committed) = tokio::join!(
            biased;
            client.batch_execute("BEGIN"),
            client.execute(&self.bind, &params),
            work(client),
            client.batch_execute("COMMIT"),
        );
        begun?;
        bound?;
        // A failed COMMIT leaves the state unknown; the drop then rolls back or discards.
        committed?;
        self.tx
            .finished
            .store(true, std::sync::atomic::Ordering::Relaxed);
        result
    }
}

/// An open transaction bound to a tenant, owning its pooled connection. Dropped without
/// [`TenantTx::commit`], it is rolled back before the connection goes back to the pool.
pub(crate) struct TenantTx {
    /// `None` only once committed.
    client: Option<Object>,
    /// Set once [`TenantTx::commit_with`] has ended the transaction.
    finished: std::sync::atomic::AtomicBool,
    /// The longest the release of an unfinished transaction may take before the connection is
    /// closed instead.
    release_limit: Duration,
}

impl TenantTx {
    fn client(&self) -> &Object {
        self.client
            .as_ref()
            .expect("a TenantTx holds its connection until it is consumed")
    }

    /// Commits a transaction that wrote; the connection then goes back to the pool.
    ///
    /// The COMMIT runs in a task of its own, reported to the request's [`ports::commit`]
    /// watch: a request dropped at its deadline does not cut it, and the deadline knows that
    /// the write may be stored.
    pub(crate) async fn commit(mut self) -> Result<(), tokio_postgres::Error> {
        let client = self.client.take().expect("commit consumes the transaction");
        let watch = ports::commit::committing();
        let committing = tokio::spawn(async move {
            let committed = client.batch_execute("COMMIT").await;
            match &committed {
                Ok(()) => watch.answered(),
                Err(e) => {
                    // Without a database error, the answer never came: it may have committed.
                    if e.as_db_error().is_some() {
                        watch.answered();
                    } else {
                        watch.lost();
                    }
                    // The connection's state is unknown: it must not serve anyone else.
                    drop(Object::take(client));
                }
            }
            committed
        });
        match committing.await {
            Ok(committed) => committed,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down, and this task goes with it.
            Err(_) => std::future::pending().await,
        }
    }

    /// Commits a transaction that only read; the connection then goes back to the pool.
    pub(crate) async fn commit_read(mut self) -> Result<(), tokio_postgres::Error> {
        let client = self.client.take().expect("commit consumes the transaction");
        let committed = client.batch_execute("COMMIT").await;
        if committed.is_err() {
            // The connection's state is unknown: it must not serve anyone else.
            drop(Object::take(client));
        }
        committed
    }
}

impl TenantTx {
    /// Runs a read-only transaction's last statements and its COMMIT in one round trip: `last`
    /// is polled first, so its statements (already prepared) are on the wire before the COMMIT.
    /// When they fail, the COMMIT ends the transaction as a rollback and their error is returned.
    pub(crate) async fn commit_with<T>(
        &self,
        last: impl std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, tokio_postgres::Error> {
        let (result, committed) = tokio::join!(biased; last, self.client().batch_execute("COMMIT"));
        // A failed COMMIT leaves the state unknown; the drop then rolls back or discards.
        committed?;
        self.finished
            .store(true, std::sync::atomic::Ordering::Relaxed);
        result
    }
}

impl std::ops::Deref for TenantTx {
    type Target = deadpool_postgres::ClientWrapper;

    fn deref(&self) -> &Self::Target {
        self.client()
    }
}

impl Drop for TenantTx {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        if *self.finished.get_mut() {
            return;
        }
        // The rollback must finish before the connection is reused, so the connection travels
        // with it; without a runtime to run it, the connection is closed instead.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(roll_back(client, self.release_limit));
            }
            Err(_) => drop(Object::take(client)),
        }
    }
}

/// How long a ROLLBACK may take before it is taken to wait behind a statement still running.
const ROLLBACK_PATIENCE: Duration = Duration::from_millis(100);

/// Rolls back an unfinished transaction, then lets the connection go back to the pool; closes
/// it instead when that fails or takes longer than `limit`.
///
/// A transaction dropped mid-statement (its request ran out of time) would hold the connection
/// until the statement ends, and a ROLLBACK queued behind it would wait as long: a ROLLBACK not
/// answered within `ROLLBACK_PATIENCE` has the statement cancelled. (Not cancelling at once
/// spares PostgreSQL a connection for every ordinary early return, which has nothing running.)
/// A cancel that arrives once the backend is idle is ignored by PostgreSQL; one that hits the
/// ROLLBACK itself fails it, and the connection is closed.
async fn roll_back(client: Object, limit: Duration) {
    let released = {
        let mut rollback = std::pin::pin!(client.batch_execute("ROLLBACK"));
        match tokio::time::timeout(ROLLBACK_PATIENCE, &mut rollback).await {
            Ok(rolled_back) => rolled_back.is_ok(),
            Err(_) => {
                let token = client.cancel_token();
                match tokio::time::timeout(limit, token.cancel_query(NoTls)).await {
                    Ok(Ok(())) => {
                        matches!(tokio::time::timeout(limit, rollback).await, Ok(Ok(())))
                    }
                    // The server does not answer: closing the connection is all there is to do.
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "could not cancel the statement of a dropped transaction");
                        false
                    }
                    Err(_) => {
                        tracing::warn!(
                            "cancelling the statement of a dropped transaction timed out"
                        );
                        false
                    }
                }
            }
        }
    };
    if !released {
        drop(Object::take(client));
    }
}

/// The SQL condition of a list's name filter (`$2`, NULL for none) on `column`: a substring,
/// ignoring the case of ASCII letters only, as `ListQuery::matches` does.
pub(crate) fn name_filter(column: &str) -> String {
    format!("($2::text IS NULL OR strpos(lower({column} COLLATE \"C\"), lower($2::text COLLATE \"C\")) > 0)")
}

/// Runs a list's page (`$1` tenant, `$2` filter, `$3` limit, `$4` offset) and its count (`$1`,
/// `$2`) in one read transaction: one round trip.
pub(crate) async fn fetch_page(
    store: &PgStore,
    page_sql: &str,
    count_sql: &str,
    tenant: &TenantId,
    query: &domain::ListQuery,
) -> Result<(Vec<tokio_postgres::Row>, u64), StoreError> {
    let tx = store.reader(tenant).await?;
    let page = tx.prepare(page_sql).await.map_err(query_error)?;
    let count = tx.prepare(count_sql).await.map_err(query_error)?;
    let tenant = tenant.as_str();
    let filter = query.name_contains();
    let limit = query.limit().map(i64::from);
    let offset = i64::from(query.offset());
    let page_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&tenant, &filter, &limit, &offset];
    let (rows, total) = tx
        .run(|client| async {
            tokio::try_join!(
                biased;
                client.query(&page, &page_params),
                client.query_one(&count, &page_params[..2])
            )
        })
        .await
        .map_err(query_error)?;
    let total: i64 = total.get(0);
    Ok((rows, u64::try_from(total).unwrap_or_default()))
}

#[async_trait]
impl HealthProbe for PgStore {
    async fn check(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await.map_err(query_error)?;
        Ok(())
    }
}
