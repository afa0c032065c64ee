//! Translation of driver and pool errors into the ports' [`StoreError`].

use anyhow::anyhow;
use deadpool_postgres::PoolError;
use ports::StoreError;
use tokio_postgres::error::SqlState;

/// A pool that cannot hand out a connection in time means the store is unavailable.
pub(crate) fn pool_error(e: PoolError) -> StoreError {
    StoreError::Unavailable(anyhow!(e).context("failed to get a PostgreSQL connection"))
}

/// Connection trouble is `Unavailable` (retry later); anything else is a bug or a broken
/// invariant and stays `Unknown`.
pub(crate) fn query_error(e: tokio_postgres::Error) -> StoreError {
    let unavailable = match e.code() {
        // No database error at all: the socket closed or failed.
        None => true,
        Some(code) => {
            code.code().starts_with("08") // connection exception
                || code.code().starts_with("57P") // admin / crash shutdown, cannot connect now
                || *code == SqlState::TOO_MANY_CONNECTIONS
                // The statement or lock timeout (or a cancel) ended a statement: busy, not broken.
                || *code == SqlState::QUERY_CANCELED
                || *code == SqlState::LOCK_NOT_AVAILABLE
                // Broken to free a cycle of waits: rolled back whole, so retrying is safe.
                || *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
        }
    };
    let e = anyhow!(e).context("PostgreSQL query failed");
    if unavailable {
        StoreError::Unavailable(e)
    } else {
        StoreError::Unknown(e)
    }
}

/// The constraint a unique violation hit, if that is what `e` is.
pub(crate) fn unique_violation(e: &tokio_postgres::Error) -> Option<&str> {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        e.as_db_error().and_then(|db| db.constraint())
    } else {
        None
    }
}

/// A stored row that the domain refuses: the database holds something the service never wrote.
pub(crate) fn corrupt_row(what: &str, reason: impl std::fmt::Display) -> StoreError {
    StoreError::Unknown(anyhow!("stored {what} is invalid: {reason}"))
}

/// Whether `e` only says the transaction lost a race (deadlock, serialisation failure) and
/// would succeed if run again.
pub(crate) fn is_transient(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&SqlState::T_R_DEADLOCK_DETECTED)
        || e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
}
