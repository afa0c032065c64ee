//! Streamed exports of readings: one statement in a read-only transaction of its own, its rows
//! read from the socket as the client takes them (tokio-postgres stops reading while the
//! consumer is behind), so the service holds a few rows at a time whatever the export's size.
//!
//! An export keeps a pooled connection for as long as it runs: at most
//! [`PgStore::export_slots`] run at once (more are refused as unavailable, a 503, rather than
//! left to drain the pool), and each ends at [`EXPORT_DEADLINE`], by PostgreSQL's statement
//! timeout and by the stream's own clock. An export dropped early (the client went away) rolls
//! back and cancels its statement before the connection is reused (`TenantTx`'s drop).

use std::time::Duration;

use domain::reading::EXPORT_DEADLINE_SECS;
use domain::TenantId;
use futures_util::StreamExt as _;
use ports::{ReadingStream, StoreError};
use tokio::sync::OwnedSemaphorePermit;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use crate::error::query_error;
use crate::pool::PgStore;
use crate::tx::TenantTx;

/// The longest an export runs.
pub(crate) const EXPORT_DEADLINE: Duration = Duration::from_secs(EXPORT_DEADLINE_SECS);

/// Sets the transaction's statement timeout to the export's deadline (`$1`, as `set_config`
/// takes it).
const EXPORT_TIMEOUT: &str = "SELECT set_config('statement_timeout', $1, true)";

/// A tenant-bound transaction holding one of the export slots.
pub(crate) struct ExportTx {
    tx: TenantTx,
    slot: OwnedSemaphorePermit,
}

impl std::ops::Deref for ExportTx {
    type Target = TenantTx;

    fn deref(&self) -> &TenantTx {
        &self.tx
    }
}

impl PgStore {
    /// A free export slot and a transaction bound to `tenant` whose statements may run until
    /// the export's deadline.
    ///
    /// # Errors
    /// [`StoreError::Unavailable`] when every slot is taken, or the pool has no connection.
    pub(crate) async fn export_tx(&self, tenant: &TenantId) -> Result<ExportTx, StoreError> {
        let slot = std::sync::Arc::clone(&self.exports)
            .try_acquire_owned()
            .map_err(|_| {
                StoreError::Unavailable(anyhow::anyhow!(
                    "as many exports run as the store allows ({})",
                    self.export_slots()
                ))
            })?;
        let tx = self.begin(tenant).await?;
        let timeout = format!("{}ms", EXPORT_DEADLINE.as_millis());
        tx.execute(EXPORT_TIMEOUT, &[&timeout])
            .await
            .map_err(query_error)?;
        Ok(ExportTx { tx, slot })
    }
}

/// Streams the rows of `sql` (with `params`) decoded by `decode`, then commits; an error, or the
/// deadline, ends the stream with an error.
///
/// # Errors
/// The statement's, when it cannot start.
pub(crate) async fn stream<T, F>(
    export: ExportTx,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    decode: F,
) -> Result<ReadingStream<T>, StoreError>
where
    T: Send + 'static,
    F: Fn(&Row) -> Result<T, StoreError> + Send + 'static,
{
    let ExportTx { tx, slot } = export;
    let statement = tx.prepare_cached(sql).await.map_err(query_error)?;
    let rows = tx
        .query_raw(&statement, params.iter().copied())
        .await
        .map_err(query_error)?;
    let running = Running {
        tx: Some(tx),
        rows: Box::pin(rows),
        _slot: slot,
        deadline: tokio::time::Instant::now() + EXPORT_DEADLINE,
        decode,
    };
    let stream = futures_util::stream::unfold(Some(running), |state| async move {
        let mut running = state?;
        match tokio::time::timeout_at(running.deadline, running.rows.next()).await {
            Err(_) => Some((
                Err(StoreError::Unavailable(anyhow::anyhow!(
                    "the export ran past its deadline of {} s",
                    EXPORT_DEADLINE.as_secs()
                ))),
                None,
            )),
            Ok(Some(Ok(row))) => {
                let item = (running.decode)(&row);
                let next = item.is_ok().then_some(running);
                Some((item, next))
            }
            Ok(Some(Err(e))) => Some((Err(query_error(e)), None)),
            Ok(None) => {
                if let Some(tx) = running.tx.take() {
                    if let Err(e) = tx.commit_read().await {
                        return Some((Err(query_error(e)), None));
                    }
                }
                None
            }
        }
    });
    Ok(Box::pin(stream))
}

/// An export under way. Dropped before its end, the transaction rolls back (its statement
/// cancelled) before the connection goes back to the pool; the slot is freed with it.
struct Running<F> {
    tx: Option<TenantTx>,
    rows: std::pin::Pin<Box<tokio_postgres::RowStream>>,
    _slot: OwnedSemaphorePermit,
    deadline: tokio::time::Instant,
    decode: F,
}
