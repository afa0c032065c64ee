//! Tenant-bound transactions: every statement of a request runs in a transaction that first
//! binds it to the tenant ([`BIND_TENANT`]), on a connection of [`PgStore`]'s pools.

use std::time::Duration;

use deadpool_postgres::Object;
use domain::TenantId;
use ports::StoreError;
use tokio_postgres::NoTls;

use crate::error::query_error;
use crate::pool::PgStore;

/// Binds a transaction to a tenant (`$1`): as role `iot_app`, with `app.tenant_id` set, and
/// with `$2` as its statement and lock timeouts, all for this transaction only (so a pooled
/// connection carries nothing over).
pub(crate) const BIND_TENANT: &str = "SELECT set_config('role', 'iot_app', true), \
     set_config('app.tenant_id', $1, true), \
     set_config('statement_timeout', $2, true), set_config('lock_timeout', $2, true)";

impl PgStore {
    /// A pooled connection with a transaction open and bound to `tenant`, for an operation that
    /// writes or needs more than one round trip (else [`PgStore::reader`]). `BEGIN` and the
    /// binding go out together, one round trip. What the transaction writes moves the tenant's
    /// revision (triggers of migration V6), so views derived from the data before it commits
    /// are known to be stale after.
    pub(crate) async fn begin(&self, tenant: &TenantId) -> Result<TenantTx, StoreError> {
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
    pub(crate) async fn reader(&self, tenant: &TenantId) -> Result<ReadTx, StoreError> {
        self.reader_for(tenant.as_str()).await
    }

    /// A read-only transaction as `iot_app` bound to no tenant (row-level security then shows
    /// it no tenant's rows): for the service's own questions across tenants, which functions
    /// of the migrations answer with their owner's rights.
    pub(crate) async fn service_reader(&self) -> Result<ReadTx, StoreError> {
        self.reader_for("").await
    }

    async fn reader_for(&self, tenant: &str) -> Result<ReadTx, StoreError> {
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
            tenant: tenant.into(),
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
    /// `BIND_TENANT`'s `$1`.
    tenant: Box<str>,
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
        let tenant = &*self.tenant;
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
